//! Release manager for multi-package template and asset monorepos.
//!
//! One entry function per command, each taking the repository root and its options:
//! [`status()`], [`bump()`], [`validate()`], [`publish()`]. Results are serde-serialisable
//! reports (stable snake_case fields for `--json`); errors are [`ReleaseError`], which
//! implements [`comfydock_core::Hinted`].

pub mod bump;
pub mod catalog;
pub mod config;
pub mod error;
pub mod git_repo;
pub mod notes;
pub mod package_index;
pub mod publish;
pub mod pyproject;
pub mod repo;
pub mod requirement;
pub mod status;
pub mod validate;
pub mod version;

pub use bump::{BumpOptions, BumpReport, bump};
pub use error::ReleaseError;
pub use notes::ReleaseNotes;
pub use publish::{PublishCredentials, PublishOptions, PublishReport, publish};
pub use status::{StatusOptions, StatusReport, status};
pub use validate::{ValidateOptions, ValidationReport, validate};

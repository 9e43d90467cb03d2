//! Release manager for multi-package template and asset monorepos (the layout of
//! Comfy-Org/workflow_templates): a root meta package pinning `packages/<dir>` sub-packages
//! exactly, templates in `templates/` with `index.json`, and `bundles.json` mapping bundles to
//! templates, each bundle shipping its assets in one package (see [`repo`]). Where a repository
//! departs from the conventions, `[tool.comfydock.release]` says how (see [`config`]): frozen and
//! unpinned packages, JSON-only files, inputs, logos, a sync command and core's manifest.
//! Versions already on the index are compared by content, not trusted by number ([`published`]).
//!
//! One entry function per command, each taking the repository root and its options:
//!
//! | command | entry | result | failure the CLI exits non-zero on |
//! |---|---|---|---|
//! | `release status [--since REF]` | [`status()`] | [`StatusReport`] | `Err` |
//! | `release bump [--dry-run] [--meta-version V] [--index-url URL] [--allow-frozen DIR]` | [`bump()`] | [`BumpReport`] | `Err` (e.g. meta version not raised, frozen package changed) |
//! | `release validate [--index-url URL] [--no-sync]` | [`validate()`] | [`ValidationReport`] | `Err`, or `!report.is_ok()` |
//! | `release publish [--index-url URL] [--publish-url URL] [--dry-run]` | [`publish()`] | [`PublishReport`] | `Err`, or `!report.complete` |
//!
//! Reports are serde-serialisable with stable snake_case fields (for `--json`); problems and
//! reasons carry a one-line `message`. Errors are [`ReleaseError`], which implements
//! [`comfydock_foundation::Hinted`] with the exact command that fixes them. Nothing here prints;
//! progress goes through [`comfydock_foundation::reporter::Reporter`]. The index client is blocking
//! (reqwest): call these functions outside an async runtime (or in `spawn_blocking`).

pub mod bump;
pub mod catalog;
pub mod config;
pub mod error;
pub mod git_repo;
pub mod layout;
pub mod notes;
pub mod package_index;
pub mod problems;
pub mod publish;
pub mod published;
pub mod pyproject;
pub mod repo;
pub mod requirement;
pub mod status;
pub mod sync;
pub mod validate;
pub mod version;

pub use bump::{BumpOptions, BumpReport, bump};
pub use error::ReleaseError;
pub use notes::ReleaseNotes;
pub use package_index::PYPI_SIMPLE_URL;
pub use publish::{PublishCredentials, PublishOptions, PublishReport, publish};
pub use status::{StatusOptions, StatusReport, status};
pub use validate::{ValidateOptions, ValidationReport, validate};

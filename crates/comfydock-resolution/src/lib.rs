//! Workflow resolution: which package provides each custom node type a workflow uses, and which
//! indexed file each model reference means; optionally installing and downloading what is
//! missing. The result is stored in the manifest (`[tool.comfydock.workflows."NAME"]`).
//!
//! [`resolve::resolve`] is the entry point; it asks the caller through [`Chooser`] when several
//! packages claim a node type. [`node_candidates`] ranks packages for a node type;
//! [`model_match`] is the chain that matches a model reference to the index.

pub mod context;
pub mod error;
pub mod model_match;
pub mod model_pin;
pub mod node_candidates;
pub mod node_mapping;
pub mod recovery;
pub mod resolve;

pub use error::ResolveError;
pub use node_candidates::Candidate;
pub use resolve::{Chooser, ResolveOptions, ResolveReport, resolve};

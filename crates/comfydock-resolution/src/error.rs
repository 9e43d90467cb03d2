//! Why a workflow could not be resolved.

use std::path::PathBuf;

use comfydock_environments::environment::EnvError;
use comfydock_environments::manifest::ManifestError;
use comfydock_environments::nodes::NodeError;
use comfydock_environments::workspace_models::WorkspaceModelsError;
use comfydock_foundation::Hinted;
use comfydock_models::download::DownloadError;
use comfydock_models::index::IndexError;
use comfydock_workflow::WorkflowError;

#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("Failed to read workflow `{}`", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`{}`: {source}", path.display())]
    Workflow { path: PathBuf, source: WorkflowError },
    #[error("Several packages provide `{node_type}` and there is no terminal to ask on")]
    NoTerminal { node_type: String },
    #[error("Several indexed files match model `{name}` and there is no terminal to ask on")]
    NoTerminalModel { name: String },
    #[error("`{answer}` is not one of the choices for `{node_type}`")]
    InvalidChoice { node_type: String, answer: String },
    #[error("Failed to download `{url}`")]
    Download {
        /// Redacted.
        url: String,
        #[source]
        source: DownloadError,
    },
    #[error("Workflow `{workflow}` has no model reference `{model}`")]
    UnknownModelReference {
        workflow: String,
        model: String,
        known: Vec<String>,
    },
    #[error("No indexed model for `{id}`")]
    ModelLookup {
        id: String,
        #[source]
        source: comfydock_models::query::LookupError,
    },
    #[error("The model index holds an invalid hash `{hash}`: {reason}")]
    InvalidIndexHash { hash: String, reason: String },
    #[error(transparent)]
    Env(#[from] EnvError),
    #[error(transparent)]
    Nodes(#[from] NodeError),
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error(transparent)]
    Models(#[from] WorkspaceModelsError),
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl Hinted for ResolveError {
    fn hint(&self) -> Option<String> {
        match self {
            Self::NoTerminal { .. } | Self::NoTerminalModel { .. } => {
                Some("pass `--auto` to take the best-ranked candidate".into())
            }
            Self::Download { source, .. } => source.hint(),
            Self::Env(e) => e.hint(),
            Self::Nodes(e) => e.hint(),
            Self::Manifest(e) => e.hint(),
            Self::Models(e) => e.hint(),
            Self::Index(e) => e.hint(),
            Self::UnknownModelReference { known, .. } if known.is_empty() => {
                Some("the workflow references no model files".into())
            }
            Self::UnknownModelReference { known, .. } => Some(format!(
                "its model references are {}",
                comfydock_foundation::display_text::backticked(known)
            )),
            Self::ModelLookup { source, .. } => source.hint(),
            Self::InvalidIndexHash { .. } => {
                Some("rebuild the index entry with `comfydock model scan`".into())
            }
            _ => None,
        }
    }
}

impl ResolveError {
    /// Whether the user asked for something impossible (exit code 2) rather than a failure.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            Self::NoTerminal { .. } | Self::NoTerminalModel { .. } | Self::InvalidChoice { .. }
        )
    }
}

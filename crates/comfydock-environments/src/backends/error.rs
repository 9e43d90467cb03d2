//! Everything that can go wrong while changing which torch backends an environment locks.

use crate::environment::EnvError;
use crate::lifecycle::SyncError;
use crate::manifest::ManifestError;
use crate::resolver_failure::ResolverOutput;
use crate::torch_backend::InvalidBackend;
use comfydock_foundation::Hinted;

#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("The lock of `{env}` does not cover the `{backend}` torch backend (it covers: {})", locked.join(", "))]
    NotLocked {
        backend: String,
        env: String,
        locked: Vec<String>,
    },
    #[error("`{backend}` is not a torch backend of `{env}` (it has: {})", known.join(", "))]
    NotPresent {
        backend: String,
        env: String,
        known: Vec<String>,
    },
    #[error("`{backend}` is the torch backend this machine syncs `{env}` with")]
    RemovingCurrent { backend: String, env: String },
    #[error("Failed to lock torch backend {backends} for `{env}` (index {indexes})")]
    Lock {
        backends: String,
        indexes: String,
        env: String,
        #[source]
        resolver: ResolverOutput,
    },
    #[error("After locking, `uv.lock` of `{env}` still does not cover the `{backend}` torch backend")]
    NotCovered { backend: String, env: String },
    #[error(transparent)]
    Invalid(#[from] InvalidBackend),
    #[error(transparent)]
    Env(Box<EnvError>),
    #[error(transparent)]
    Sync(Box<SyncError>),
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl From<EnvError> for BackendError {
    fn from(e: EnvError) -> Self {
        Self::Env(Box::new(e))
    }
}

impl From<SyncError> for BackendError {
    fn from(e: SyncError) -> Self {
        Self::Sync(Box::new(e))
    }
}

impl Hinted for BackendError {
    fn hint(&self) -> Option<String> {
        match self {
            Self::NotLocked { backend, env, .. } => Some(format!(
                "add it to the lock with `comfydock -e {env} backend add {backend}`"
            )),
            Self::NotPresent { env, .. } => Some(format!("see `comfydock -e {env} backend list`")),
            Self::RemovingCurrent { env, .. } => Some(format!(
                "switch this machine to another backend first with `comfydock -e {env} backend use NAME` (see `comfydock -e {env} backend list`)"
            )),
            Self::Lock { .. } => Some(
                "nothing was changed; check that the index publishes torch for that backend (its base is the `torch.index_url` setting, see `comfydock config get torch.index_url`)"
                    .into(),
            ),
            Self::NotCovered { .. } => {
                Some("nothing was changed; the backend's index does not provide torch".into())
            }
            Self::Invalid(_) => {
                Some("backends look like `cpu`, `cu128`, `rocm6.4` or `xpu`".into())
            }
            Self::Env(e) => e.hint(),
            Self::Sync(e) => e.hint(),
            Self::Manifest(e) => e.hint(),
            Self::Io(_) => None,
        }
    }
}

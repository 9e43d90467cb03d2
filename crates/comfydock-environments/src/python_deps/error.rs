//! Everything that can go wrong while changing the environment's own Python packages.

use crate::environment::EnvError;
use crate::manifest::ManifestError;
use crate::resolver_failure::{ConflictSide, ResolverOutput, conflict_message};
use comfydock_foundation::Hinted;

#[derive(Debug, thiserror::Error)]
pub enum PyError {
    #[error("`{requirement}` is not a PEP 508 requirement: {reason}")]
    InvalidRequirement { requirement: String, reason: String },
    #[error("`{requirement}` would change `{package}`, which comes from the environment's torch backend")]
    TorchRequirement {
        requirement: String,
        package: String,
        env: String,
    },
    #[error("`{group}` is not a valid dependency group name")]
    InvalidGroup { group: String },
    #[error("The dependency group `{group}` belongs to {owner}")]
    NotUserGroup {
        group: String,
        owner: String,
        env: String,
    },
    #[error("`{name}` is not in {place} of `{env}`")]
    NotPresent {
        name: String,
        place: String,
        env: String,
        /// Who has it instead (`ComfyUI's requirements`, `node `x``), if anyone.
        owner: Option<String>,
        /// What the place holds.
        known: Vec<String>,
    },
    #[error("`{name}` is not constrained in `{env}`")]
    NotConstrained {
        name: String,
        env: String,
        known: Vec<String>,
    },
    #[error("No package named `{name}` in the package index")]
    UnknownPackage {
        name: String,
        env: String,
        #[source]
        resolver: ResolverOutput,
    },
    #[error("{}", conflict_message(.sides))]
    Conflict {
        sides: Vec<ConflictSide>,
        env: String,
        #[source]
        resolver: ResolverOutput,
    },
    #[error("{requirements} cannot be resolved together with the rest of `{env}`")]
    Unresolvable {
        requirements: String,
        env: String,
        #[source]
        resolver: ResolverOutput,
    },
    #[error(
        "{requirements} would change `{package}` from {from} to {to}; torch packages come from the backend"
    )]
    TorchChanged {
        requirements: String,
        package: String,
        from: String,
        to: String,
    },
    #[error(transparent)]
    Env(Box<EnvError>),
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl From<EnvError> for PyError {
    fn from(e: EnvError) -> Self {
        Self::Env(Box::new(e))
    }
}

impl From<comfydock_foundation::uv::UvError> for PyError {
    fn from(e: comfydock_foundation::uv::UvError) -> Self {
        Self::Env(Box::new(EnvError::Uv(e)))
    }
}

impl Hinted for PyError {
    fn hint(&self) -> Option<String> {
        match self {
            Self::InvalidRequirement { .. } => Some(
                "write it as `NAME`, `NAME>=1.2`, `NAME[extra]==1.0` or `NAME @ URL` (quote it in the shell)"
                    .into(),
            ),
            Self::TorchRequirement { env, .. } => Some(format!(
                "torch, torchvision and torchaudio come from the backend extras of `environments/{env}/.cec/pyproject.toml` (`torch_backends` in `[tool.comfydock]`); leave them out of `py add` and `py constrain`"
            )),
            Self::InvalidGroup { .. } => Some(
                "use letters, digits, `-`, `_` and `.`, starting and ending with a letter or digit".into(),
            ),
            Self::NotUserGroup { env, .. } => Some(format!(
                "pick another group name; see the groups with `comfydock -e {env} py list`"
            )),
            Self::NotPresent {
                name,
                env,
                owner: Some(owner),
                ..
            } => Some(format!(
                "`{name}` comes from {owner}; it cannot be removed with `py remove` (see `comfydock -e {env} py list`)"
            )),
            Self::NotPresent { env, known, .. } if known.is_empty() => Some(format!(
                "there is nothing to remove; see `comfydock -e {env} py list`"
            )),
            Self::NotPresent { env, known, .. } => Some(format!(
                "present: {}; see `comfydock -e {env} py list`",
                known.join(", ")
            )),
            Self::NotConstrained { env, known, .. } if known.is_empty() => Some(format!(
                "`{env}` has no constraints; see `comfydock -e {env} py list`"
            )),
            Self::NotConstrained { env, known, .. } => Some(format!(
                "constraints: {}; see `comfydock -e {env} py list`",
                known.join(", ")
            )),
            Self::UnknownPackage { .. } => {
                Some("nothing was changed; check the spelling of the package name".into())
            }
            Self::Conflict { env, sides, .. } if sides.iter().any(|s| s.origin.contains("torch backend")) => {
                Some(format!(
                    "nothing was changed; torch is chosen by the environment's backend: pick a version that works with it (`comfydock -e {env} py add NAME==VERSION`)"
                ))
            }
            Self::Conflict { env, .. } => Some(format!(
                "nothing was changed; pick a compatible version (`comfydock -e {env} py add NAME==VERSION`) or remove the other side"
            )),
            Self::Unresolvable { env, .. } => Some(format!(
                "nothing was changed; see uv's explanation above, then try another version (`comfydock -e {env} py add NAME==VERSION`)"
            )),
            Self::TorchChanged { .. } => {
                Some("nothing was changed; pick a version that works with the environment's torch".into())
            }
            Self::Env(e) => e.hint(),
            Self::Manifest(e) => e.hint(),
            Self::Io(_) => None,
        }
    }
}

//! Deploy an environment (or some of its workflows) as a Docker build context or Kubernetes
//! manifests, reproducibly.
//!
//! Generation is a pure function of a [`spec::DeploySpec`] (read once from the environment) and
//! the options: [`docker_context::render`] and [`kubernetes::render`] return sorted
//! [`GeneratedFile`]s with no timestamps, so an unchanged environment gives identical bytes.
//! [`output::write_context`] writes them (atomically, marker last); [`output::stage_models`]
//! copies verified model files for `--models bake`; [`engine::DockerEngine`] builds and pushes;
//! [`build_history::BuildHistory`] records every step in `.metadata/builds.db`.
//!
//! CLI entry points: `deploy docker` → [`spec::DeploySpec::from_environment`],
//! [`target::Target::resolve`], [`docker_context::render`], [`output::write_context`],
//! then optionally [`engine::DockerEngine::connect`] + `build`/`push`; `deploy k8s` →
//! [`kubernetes::render`]; `deploy history` → [`build_history::BuildHistory::list`].

pub mod build_history;
pub mod docker_context;
pub mod dockerfile;
pub mod dockerfile_syntax;
pub mod engine;
pub mod kubernetes;
pub mod machine_local;
pub mod output;
pub mod spec;
pub mod target;

use std::path::PathBuf;

use comfydock_environments::manifest::ManifestError;
use comfydock_foundation::Hinted;

/// One file of a build context or manifest set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedFile {
    /// Relative path with `/` separators.
    pub path: String,
    pub contents: String,
    pub executable: bool,
}

impl GeneratedFile {
    pub fn text(path: &str, contents: String) -> Self {
        Self {
            path: path.to_owned(),
            contents,
            executable: false,
        }
    }

    pub fn executable(path: &str, contents: String) -> Self {
        Self {
            executable: true,
            ..Self::text(path, contents)
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    #[error("Environment `{env}` has no lock file `{path}`")]
    NoLock { path: PathBuf, env: String },
    #[error("`{path}` has no `{field}`")]
    Incomplete { path: PathBuf, field: String },
    #[error("Environment `{env}` has no resolved workflow `{name}`")]
    UnknownWorkflow {
        name: String,
        env: String,
        known: Vec<String>,
    },
    #[error("Workflow `{workflow}` needs node `{node}`, which environment `{env}` does not have")]
    MissingNode {
        workflow: String,
        node: String,
        env: String,
    },
    #[error("Node `{node}` of environment `{env}` cannot be deployed: {reason}")]
    UnpinnedNode {
        node: String,
        env: String,
        reason: String,
    },
    #[error("The lock of environment `{env}` does not cover the `{backend}` torch backend (it covers: {})", locked.join(", "))]
    BackendNotLocked {
        env: String,
        backend: String,
        locked: Vec<String>,
    },
    #[error(
        "The build context of `{env}` would name sources only this machine reaches: {}",
        found.join(", ")
    )]
    MachineLocal { env: String, found: Vec<String> },
    #[error("Invalid CUDA version `{0}`: expected e.g. 12.8 or cu128")]
    BadCudaVersion(String),
    #[error("No pinned runtime base image for the `{backend}` torch backend")]
    NoBaseImage { backend: String },
    #[error("Output folder `{dir}` is not empty and was not written by comfydock deploy")]
    ForeignOutDir { dir: PathBuf },
    #[error("Model `{target}` cannot be baked: {reason}")]
    ModelUnavailable { target: String, reason: String },
    #[error("No Docker engine is reachable ({reason}); the build context is ready in `{dir}`")]
    NoEngine { dir: PathBuf, reason: String },
    #[error("`docker {step}` of `{tag}` failed (exit code {})", code.map_or_else(|| "none".to_owned(), |c| c.to_string()))]
    EngineStep {
        step: &'static str,
        tag: String,
        code: Option<i32>,
    },
    #[error("Build history `{path}` failed")]
    History {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error(transparent)]
    OpenHistory(#[from] comfydock_foundation::sqlite::SqliteError),
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl Hinted for DeployError {
    fn hint(&self) -> Option<String> {
        match self {
            Self::NoLock { env, .. } => Some(format!("lock it with `comfydock -e {env} sync`")),
            Self::UnknownWorkflow { env, known, .. } if known.is_empty() => Some(format!(
                "no workflow of `{env}` is resolved yet; run `comfydock -e {env} workflow resolve NAME`, or deploy the whole environment without --workflow"
            )),
            Self::UnknownWorkflow { known, .. } => Some(format!(
                "resolved workflows: {}",
                known
                    .iter()
                    .map(|k| format!("`{k}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            Self::MachineLocal { found, .. } => Some(format!(
                "rewrite each to a public URL the builder reaches, e.g. `--public-url {}=https://PUBLIC`, or pass `--allow-local-urls` when the machine that builds reaches them",
                found.first().map_or("LOCAL", String::as_str)
            )),
            Self::MissingNode { workflow, env, .. } => Some(format!(
                "install it with `comfydock -e {env} workflow resolve {workflow} --install`"
            )),
            Self::UnpinnedNode { node, env, .. } => Some(format!(
                "publish it and add it from the registry or a git URL (`comfydock -e {env} node add ...`), or remove it with `comfydock -e {env} node remove {node}`"
            )),
            Self::BackendNotLocked { env, backend, .. } => Some(format!(
                "add it to the lock with `comfydock -e {env} backend add {backend}`, then deploy again; or pick another --gpu"
            )),
            Self::NoBaseImage { .. } => {
                Some("deploy with --gpu cpu, or --gpu cuda with a locked cuXXX backend".into())
            }
            Self::ForeignOutDir { .. } => Some("pass an empty or new folder to --out".into()),
            Self::ModelUnavailable { .. } => Some(
                "run `comfydock model verify`, or deploy with `--models fetch` or `--models mount`".into(),
            ),
            Self::NoEngine { dir, .. } => Some(format!(
                "start a Docker engine and run `docker buildx build {}`, or build the context on a machine that has one",
                dir.display()
            )),
            Self::Manifest(e) => e.hint(),
            Self::OpenHistory(e) => e.hint(),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests;

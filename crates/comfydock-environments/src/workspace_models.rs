//! The workspace's models: its model index, its model roots (and the `extra_model_paths.yaml`
//! rendered from them) and a downloader configured from the workspace's settings. Every command
//! that touches models opens them here, so the file names and settings keys live in one place.

use comfydock_foundation::Hinted;
use comfydock_foundation::reporter::NoReporter;
use comfydock_models::download::{DownloadError, DownloadReporter, DownloadRequest, Downloaded, Downloader};
use comfydock_models::endpoints::{Endpoints, Tokens};
use comfydock_models::extra_paths::{ExtraPathsError, write_extra_model_paths};
use comfydock_models::index::{IndexError, ModelIndex};
use comfydock_models::roots::{ModelRoot, ModelRoots, RootsError};

use crate::environment::{self, Environment};
use crate::settings::{Key, Settings};
use crate::workspace::Workspace;

/// Why the workspace's models could not be opened or configured.
#[derive(Debug, thiserror::Error)]
pub enum WorkspaceModelsError {
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error(transparent)]
    Roots(#[from] RootsError),
    #[error(transparent)]
    ExtraPaths(#[from] ExtraPathsError),
    #[error(transparent)]
    Download(#[from] DownloadError),
    #[error("`{key}` is not a valid URL: {reason}")]
    InvalidUrl { key: &'static str, reason: String },
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl Hinted for WorkspaceModelsError {
    fn hint(&self) -> Option<String> {
        match self {
            Self::Index(e) => e.hint(),
            Self::Roots(e) => e.hint(),
            Self::Download(e) => e.hint(),
            Self::InvalidUrl { key, .. } => Some(format!("fix it with `comfydock config set {key} URL`")),
            Self::ExtraPaths(e) => e.hint(),
            Self::Io(_) => None,
        }
    }
}

/// Open (creating) the workspace's model index.
pub fn open_index(workspace: &Workspace) -> Result<ModelIndex, WorkspaceModelsError> {
    Ok(ModelIndex::open(&workspace.model_index_path())?)
}

/// The workspace's model roots (the standard `models/` root when none were added).
pub fn load_roots(workspace: &Workspace) -> Result<ModelRoots, WorkspaceModelsError> {
    Ok(ModelRoots::load_or_default(
        &workspace.model_roots_path(),
        &workspace.models_dir(),
    )?)
}

/// Where downloads go: the first (default) model root.
pub fn default_root(workspace: &Workspace) -> Result<ModelRoot, WorkspaceModelsError> {
    let roots = load_roots(workspace)?;
    Ok(roots
        .default_root()
        .cloned()
        .unwrap_or_else(|| ModelRoot::standard(workspace.models_dir())))
}

/// Render the workspace's `extra_model_paths.yaml` from the roots and give it to every environment.
pub fn refresh_model_paths(workspace: &Workspace) -> Result<(), WorkspaceModelsError> {
    let roots = load_roots(workspace)?;
    write_extra_model_paths(&environment::workspace_model_paths(workspace), &roots.roots)?;
    for name in environment::list(workspace)? {
        environment::write_extra_model_paths(workspace, &Environment::at(workspace, &name))?;
    }
    Ok(())
}

/// Render the workspace's model paths once if they were never rendered (older workspaces).
pub fn ensure_model_paths(workspace: &Workspace) -> Result<(), WorkspaceModelsError> {
    if environment::workspace_model_paths(workspace).is_file() {
        return Ok(());
    }
    refresh_model_paths(workspace)
}

/// The model hosts, from `huggingface.endpoint` and `civitai.url`.
pub fn endpoints(settings: &Settings) -> Result<Endpoints, WorkspaceModelsError> {
    let parse = |key: Key| {
        let value = settings.value(key).unwrap_or_default();
        url::Url::parse(&value).map_err(|e| WorkspaceModelsError::InvalidUrl {
            key: key.name(),
            reason: e.to_string(),
        })
    };
    Ok(Endpoints {
        huggingface: parse(Key::HuggingfaceEndpoint)?,
        civitai: parse(Key::CivitaiUrl)?,
    })
}

/// A downloader for the configured hosts with the configured tokens, `jobs` at a time.
pub fn downloader(settings: &Settings, jobs: usize) -> Result<Downloader, WorkspaceModelsError> {
    let tokens = Tokens {
        huggingface: settings.value(Key::TokensHuggingface),
        civitai: settings.value(Key::TokensCivitai),
    };
    Ok(Downloader::new(endpoints(settings)?, tokens)?.with_concurrency(jobs.max(1)))
}

/// Run `requests` into `root` from synchronous code; results in request order.
pub fn download_blocking(
    downloader: &Downloader,
    root: &ModelRoot,
    requests: &[DownloadRequest],
    reporter: Option<&dyn DownloadReporter>,
) -> Result<Vec<Result<Downloaded, DownloadError>>, WorkspaceModelsError> {
    Ok(block_on(downloader.download_all(
        root,
        requests,
        reporter.unwrap_or(&NoReporter),
    ))?)
}

/// Run one model-host future (downloads, source lookups) to completion from synchronous code,
/// on a current-thread runtime: the one way commands outside `serve` drive async model work.
pub fn block_on<F: Future>(future: F) -> std::io::Result<F::Output> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    Ok(runtime.block_on(future))
}

//! The [`ModelProvider`] an import uses on this machine: files found in the workspace's model
//! index by hash, downloads verified into the default model root and recorded in the index.

use std::path::PathBuf;

use comfydock_environments::settings::Settings;
use comfydock_environments::workspace::Workspace;
use comfydock_environments::workspace_models::{self, WorkspaceModelsError};
use comfydock_foundation::reporter::Reporter;
use comfydock_models::download::{DownloadRequest, Downloader, ExpectedHash, ReportedDownloads};
use comfydock_models::index::{IndexError, ModelIndex};
use comfydock_models::query::ModelId;
use comfydock_models::roots::ModelRoot;

use crate::format::ModelRef;
use crate::import::{ModelFetchError, ModelProvider};

/// Model files through the workspace model index and verified downloads.
pub struct IndexedModels {
    index_path: PathBuf,
    root: ModelRoot,
    downloader: Downloader,
}

impl IndexedModels {
    /// Downloads go to the default model root, with the same endpoints and tokens as
    /// `comfydock model download`.
    pub fn new(workspace: &Workspace, settings: &Settings) -> Result<Self, WorkspaceModelsError> {
        Ok(Self {
            index_path: workspace.model_index_path(),
            root: workspace_models::default_root(workspace)?,
            downloader: workspace_models::downloader(settings, 1)?,
        })
    }

    fn index(&self) -> Result<ModelIndex, IndexError> {
        ModelIndex::open(&self.index_path)
    }
}

impl ModelProvider for IndexedModels {
    fn find_local(&self, model: &ModelRef) -> Option<String> {
        let index = self.index().ok()?;
        let hashes = [model.blake3.as_deref(), model.sha256.as_deref()];
        let record = hashes
            .into_iter()
            .flatten()
            .find_map(|h| index.resolve(&ModelId::HashPrefix(h.to_ascii_lowercase())).ok())?;
        let folder = model.target.split('/').next().unwrap_or_default();
        let mut present: Vec<_> = record.locations.iter().filter(|l| l.path().is_file()).collect();
        // Prefer the exact target, then the same folder.
        present.sort_by_key(|l| {
            (
                l.relative_path != model.target,
                l.folder.as_deref() != Some(folder) && !l.relative_path.starts_with(&format!("{folder}/")),
            )
        });
        present.first().map(|l| l.relative_path.clone())
    }

    fn download(&self, model: &ModelRef, reporter: &dyn Reporter) -> Result<(), ModelFetchError> {
        let expected = model
            .blake3
            .clone()
            .map(ExpectedHash::Blake3)
            .or_else(|| model.sha256.clone().map(ExpectedHash::Sha256));
        let mut last_error = ModelFetchError::NoSource;
        let progress = ReportedDownloads::new(reporter);
        for url in &model.sources {
            let request = DownloadRequest {
                url: url.clone(),
                to: Some(model.target.clone()),
                expected: expected.clone(),
            };
            let result =
                workspace_models::block_on(self.downloader.download(&self.root, &request, 0, &progress))
                    .map_err(WorkspaceModelsError::from)?;
            match result {
                Ok(done) => {
                    self.index()?.record_download(&done)?;
                    return Ok(());
                }
                Err(e) => last_error = e.into(),
            }
        }
        Err(last_error)
    }

    fn free_space(&self) -> Option<u64> {
        let mut dir = self.root.path.clone();
        while !dir.exists() {
            dir = dir.parent()?.to_path_buf();
        }
        fs4::available_space(&dir).ok()
    }

    fn root(&self) -> PathBuf {
        self.root.path.clone()
    }
}

//! `workflow model set`: say by hand what a workflow's model reference means — an indexed file,
//! a URL downloaded and verified now, or "optional" (the workflow runs without it). The answer
//! is saved in the workflow's entry like any resolution, so it is never asked again.

use comfydock_environments::manifest::schema::{WorkflowEntry, WorkflowModels};
use comfydock_environments::workflow_tracking as tracking;
use comfydock_environments::workspace_models;
use comfydock_foundation::redact::redact_url;
use comfydock_models::download::ReportedDownloads;
use comfydock_models::download::{DownloadRequest, ExpectedHash};
use comfydock_models::query::ModelId;
use comfydock_workflow::{Criticality, ModelReference};
use serde::Serialize;

use crate::context::{ResolveContext, analyze_live};
use crate::error::ResolveError;
use crate::model_match::pin;

/// What the user says a model reference is.
#[derive(Debug, Clone, Copy)]
pub enum ModelAnswer<'a> {
    /// An indexed file: a blake3/sha256 prefix or a path.
    File(&'a str),
    /// Download it from here (verified against the workflow's declared hash, if any).
    Url(&'a str),
    /// The workflow runs without it.
    Optional,
}

/// What [`set`] recorded.
#[derive(Debug, Clone, Serialize)]
pub struct ModelSet {
    pub workflow: String,
    pub model: String,
    /// The pinned file's blake3 (`None` for `--optional` without a file).
    pub blake3: Option<String>,
    pub criticality: Criticality,
    /// The URL it was downloaded from (redacted), for a URL answer.
    pub downloaded_from: Option<String>,
}

/// Record `answer` for the model reference `model` of tracked workflow `workflow`. Call under
/// the workspace lock.
pub fn set(
    ctx: &ResolveContext<'_>,
    workflow: &str,
    model: &str,
    answer: ModelAnswer<'_>,
) -> Result<ModelSet, ResolveError> {
    let env = ctx.env;
    let workflow = tracking::normalize_name(workflow);
    let analysis = analyze_live(env, &workflow)?;
    let wanted = model.replace('\\', "/");
    let mut reference: ModelReference = analysis
        .models
        .iter()
        .find(|r| r.relative_path == wanted || r.name == model)
        .cloned()
        .ok_or_else(|| ResolveError::UnknownModelReference {
            workflow: workflow.clone(),
            model: model.to_owned(),
            known: analysis.models.iter().map(|r| r.relative_path.clone()).collect(),
        })?;
    let mut manifest = env.manifest()?;
    let mut entry: WorkflowEntry = manifest
        .tool()
        .workflows
        .get(&workflow)
        .cloned()
        .unwrap_or_default();
    if entry.optional_models.contains(&reference.relative_path) {
        reference.criticality = Criticality::Optional;
    }
    let mut index = workspace_models::open_index(ctx.workspace)?;
    let mut downloaded_from = None;
    let record = match answer {
        ModelAnswer::Optional => {
            reference.criticality = Criticality::Optional;
            if !entry.optional_models.contains(&reference.relative_path) {
                entry.optional_models.push(reference.relative_path.clone());
            }
            None
        }
        ModelAnswer::File(id) => {
            Some(
                index
                    .resolve(&ModelId::parse(id))
                    .map_err(|source| ResolveError::ModelLookup {
                        id: id.to_owned(),
                        source,
                    })?,
            )
        }
        ModelAnswer::Url(url) => {
            workspace_models::ensure_model_paths(ctx.workspace)?;
            let to = match &reference.folder {
                Some(folder) => format!("{folder}/{}", reference.relative_path),
                None => reference.relative_path.clone(),
            };
            let request = DownloadRequest {
                url: url.to_owned(),
                to: Some(to),
                expected: reference.hash.clone().map(ExpectedHash::Sha256),
            };
            let root = workspace_models::default_root(ctx.workspace)?;
            let client = workspace_models::downloader(ctx.settings, 1)?;
            let downloaded = workspace_models::download_blocking(
                &client,
                &root,
                &[request],
                Some(&ReportedDownloads::new(ctx.reporter)),
            )?
            .pop()
            .expect("one result per request")
            .map_err(|source| ResolveError::Download {
                url: redact_url(url),
                source,
            })?;
            let id = index.record_download(&downloaded)?;
            ctx.reporter
                .status("Downloaded", &downloaded.path.display().to_string());
            downloaded_from = Some(redact_url(url));
            reference.url = Some(url.to_owned());
            index.model(id)?
        }
    };
    let blake3 = record.as_ref().map(|r| r.blake3.clone());
    if let Some(record) = &record {
        let (hash, pin) = pin(record, &reference)?;
        // Merged into the entry's other pins by `record_workflow_resolution`.
        entry.models = WorkflowModels::ByHash(std::iter::once((hash, pin)).collect());
    }
    // A pinned reference is resolved; one only marked optional stays listed as unpinned, but no
    // longer counts as a missing required model.
    if record.is_some() {
        entry.unresolved_models.retain(|m| *m != reference.relative_path);
    }
    manifest.record_workflow_resolution(&workflow, entry)?;
    manifest.save()?;
    Ok(ModelSet {
        workflow,
        model: reference.relative_path,
        blake3,
        criticality: reference.criticality,
        downloaded_from,
    })
}

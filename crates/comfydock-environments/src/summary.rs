//! A read-only summary of one environment: its ComfyUI pin and checkout, Python, torch backends,
//! custom nodes, models, tracked workflows and the history of `.cec`. `serve` shows it to key
//! holders (`GET /v1/environment`, the console's environment page).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::environment::{EnvError, Environment, uncommitted};
use crate::history::{self, LogEntry};
use crate::manifest::node_entry::{self, NodeEntry};
use crate::manifest::schema::{Criticality, ModelEntry};
use comfydock_foundation::git::Git;

/// What an environment is made of, read from its manifest, checkout and `.cec` history.
#[derive(Debug, Clone, Serialize)]
pub struct EnvironmentSummary {
    pub name: String,
    pub comfyui: ComfyUiSummary,
    /// Python minor version, e.g. `3.12`.
    pub python: Option<String>,
    /// Backends `uv.lock` is asked to cover.
    pub torch_backends: Vec<String>,
    /// The backend this machine syncs with.
    pub torch_backend: String,
    pub nodes: Vec<NodeEntry>,
    pub models: Vec<ModelSummary>,
    pub workflows: Vec<WorkflowSummary>,
    /// The newest commits of `.cec`, newest first: the environment's build history.
    pub history: Vec<LogEntry>,
    /// Files of `.cec` changed since its last commit.
    pub uncommitted: Vec<String>,
}

/// The ComfyUI the manifest pins, and what is checked out.
#[derive(Debug, Clone, Serialize)]
pub struct ComfyUiSummary {
    /// What was asked for (a tag, branch or commit).
    #[serde(rename = "ref")]
    pub reference: Option<String>,
    /// The pinned commit.
    pub commit: Option<String>,
    /// The commit of the checkout (differs from `commit` until `sync` runs).
    pub checkout: Option<String>,
}

/// One model: pinned by a tracked workflow, listed in the models catalog, or both.
#[derive(Debug, Clone, Serialize)]
pub struct ModelSummary {
    pub name: Option<String>,
    pub folder: Option<String>,
    pub relative_path: Option<String>,
    /// `blake3:…` or `sha256:…` when known.
    pub hash: Option<String>,
    pub size: Option<u64>,
    pub criticality: Option<Criticality>,
    /// Tracked workflows that use it.
    pub workflows: Vec<String>,
    /// Whether `[tool.comfydock.models]` lists it.
    pub in_catalog: bool,
}

/// A workflow of the manifest and what its resolution found.
#[derive(Debug, Clone, Serialize)]
pub struct WorkflowSummary {
    pub name: String,
    pub tracked: bool,
    /// Custom node packages it needs.
    pub nodes: Vec<String>,
    pub models: usize,
    pub unresolved_models: Vec<String>,
    pub unresolved_nodes: Vec<String>,
}

/// Reads the summary of `env`, with at most `history_limit` commits of history.
pub fn summarize(git: &Git, env: &Environment, history_limit: usize) -> Result<EnvironmentSummary, EnvError> {
    let manifest = env.manifest()?;
    let tool = manifest.tool();
    let mut models: BTreeMap<String, ModelSummary> = BTreeMap::new();
    let mut add_model = |key: Option<String>, entry: &ModelEntry, workflow: Option<&str>, catalog: bool| {
        let hash = key.or_else(|| entry.hash.as_ref().map(ToString::to_string));
        let identity = hash.clone().unwrap_or_else(|| {
            format!(
                "path:{}",
                entry
                    .relative_path
                    .as_deref()
                    .or(entry.name.as_deref())
                    .unwrap_or_default()
            )
        });
        let model = models.entry(identity).or_insert_with(|| ModelSummary {
            name: None,
            folder: None,
            relative_path: None,
            hash,
            size: None,
            criticality: None,
            workflows: Vec::new(),
            in_catalog: false,
        });
        model.name = model.name.take().or_else(|| entry.name.clone());
        model.folder = model.folder.take().or_else(|| entry.folder.clone());
        model.relative_path = model.relative_path.take().or_else(|| entry.relative_path.clone());
        model.size = model.size.or(entry.size);
        model.criticality = match (model.criticality, entry.criticality) {
            // The strongest need wins (`required` sorts first).
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if let Some(workflow) = workflow
            && !model.workflows.iter().any(|w| w == workflow)
        {
            model.workflows.push(workflow.to_owned());
        }
        model.in_catalog |= catalog;
    };
    let mut workflows = Vec::new();
    for (name, entry) in &tool.workflows {
        let pins = entry.models.entries();
        for pin in &pins {
            add_model(
                pin.key.as_ref().map(ToString::to_string),
                &pin.entry,
                Some(name),
                false,
            );
        }
        workflows.push(WorkflowSummary {
            name: name.clone(),
            tracked: entry.tracked,
            nodes: entry.nodes.clone(),
            models: pins.len(),
            unresolved_models: entry.unresolved_models.clone(),
            unresolved_nodes: entry.unresolved_nodes.clone(),
        });
    }
    for entry in tool.models.values() {
        add_model(None, entry, None, true);
    }
    let comfyui = tool.comfyui.as_ref();
    Ok(EnvironmentSummary {
        name: env.name.clone(),
        comfyui: ComfyUiSummary {
            reference: comfyui.and_then(|c| c.reference.clone()),
            commit: comfyui.and_then(|c| c.commit.clone()),
            checkout: env.comfyui_head(),
        },
        python: tool.python.clone(),
        torch_backends: tool
            .torch_backends
            .iter()
            .map(|b| b.as_str().to_owned())
            .collect(),
        torch_backend: env.backend().as_str().to_owned(),
        nodes: node_entry::read_all(&manifest),
        models: models.into_values().collect(),
        workflows,
        history: history::log(git, env, Some(history_limit))?,
        uncommitted: uncommitted(git, env)?,
    })
}

//! What `.cec` says the environment's workflows need and this machine lacks, and getting it back.
//!
//! After `import --models skip`, a failed download or a `pull`, the manifest still records every
//! model pin (hashes, size, sources) and every package a tracked workflow needs. [`check`] compares
//! them with the model index and the installed nodes — fast, nothing is hashed — so `status` can
//! list each gap with its fix; [`fetch_missing`] downloads the missing models from their recorded
//! sources, verifying each against its pinned hash. Nothing here edits the manifest.

use comfydock_models::download::ReportedDownloads;
use std::collections::BTreeMap;

use comfydock_environments::environment::Environment;
use comfydock_environments::manifest::schema::{ModelEntry, ModelHash};
use comfydock_environments::nodes::ops;
use comfydock_environments::workflow_tracking as tracking;
use comfydock_environments::workspace::Workspace;
use comfydock_environments::workspace_models;
use comfydock_foundation::redact::redact_url;
use comfydock_models::download::{DownloadRequest, ExpectedHash};
use comfydock_models::index::ModelIndex;
use comfydock_models::query::ModelId;
use comfydock_workflow::Criticality;
use serde::Serialize;

use crate::context::ResolveContext;
use crate::error::ResolveError;
use crate::node_candidates::is_installed;

/// A model `.cec` pins that no indexed file on this machine has.
#[derive(Debug, Clone, Serialize)]
pub struct MissingModel {
    /// Where it goes under a models root (`checkpoints/x.safetensors`), when recorded.
    pub target: Option<String>,
    pub criticality: Criticality,
    pub blake3: Option<String>,
    pub sha256: Option<String>,
    pub size: Option<u64>,
    /// Recorded download URLs, in order.
    pub sources: Vec<String>,
    /// Tracked workflows that pin it (empty: only the environment's `models` table lists it).
    pub workflows: Vec<String>,
}

impl MissingModel {
    /// How people name it: its target, else its hash.
    pub fn label(&self) -> String {
        self.target
            .clone()
            .or_else(|| {
                self.blake3
                    .clone()
                    .map(|h| format!("blake3:{}", &h[..12.min(h.len())]))
            })
            .or_else(|| {
                self.sha256
                    .clone()
                    .map(|h| format!("sha256:{}", &h[..12.min(h.len())]))
            })
            .unwrap_or_else(|| "?".to_owned())
    }
}

/// What one tracked workflow still lacks besides models.
#[derive(Debug, Clone, Serialize)]
pub struct WorkflowGaps {
    pub workflow: String,
    /// Model references no pin covers (resolve could not match them).
    pub unresolved_models: Vec<String>,
    /// Custom node types no package is known for.
    pub unresolved_nodes: Vec<String>,
    /// Packages the workflow needs that are not installed.
    pub missing_packages: Vec<String>,
}

impl WorkflowGaps {
    fn is_empty(&self) -> bool {
        self.unresolved_models.is_empty()
            && self.unresolved_nodes.is_empty()
            && self.missing_packages.is_empty()
    }
}

/// Everything the environment's tracked workflows and model table need that is not here.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Gaps {
    pub missing_models: Vec<MissingModel>,
    pub workflows: Vec<WorkflowGaps>,
}

/// One fix line for `status`: what is wrong and the command that fixes it.
#[derive(Debug, Clone, Serialize)]
pub struct GapIssue {
    pub what: String,
    pub fix: String,
}

impl Gaps {
    /// Each gap as a `status` issue with the command that fixes it.
    pub fn issues(&self, env: &str, models_root: &str) -> Vec<GapIssue> {
        let mut issues = Vec::new();
        for model in &self.missing_models {
            let needed_by = match model.workflows.as_slice() {
                [] => "listed in .cec".to_owned(),
                [one] => format!("needed by workflow `{one}`"),
                many => format!(
                    "needed by workflows {}",
                    comfydock_foundation::display_text::backticked(many)
                ),
            };
            let size = model
                .size
                .map(|s| format!(", {}", comfydock_foundation::display_text::human_bytes(s)))
                .unwrap_or_default();
            let fix = if model.sources.is_empty() {
                format!(
                    "put the file at {models_root}/{} and run `comfydock model scan`",
                    model.target.as_deref().unwrap_or("FOLDER/NAME")
                )
            } else if model.criticality == Criticality::Required {
                format!("comfydock -e {env} sync --models required")
            } else {
                format!("comfydock -e {env} sync --models all")
            };
            issues.push(GapIssue {
                what: format!(
                    "model `{}` ({}{size}) {needed_by} is not on this machine",
                    model.label(),
                    model.criticality.as_str()
                ),
                fix,
            });
        }
        for gaps in self.workflows.iter().filter(|g| !g.is_empty()) {
            let resolve = format!("comfydock -e {env} workflow resolve {}", gaps.workflow);
            if !gaps.unresolved_models.is_empty() {
                issues.push(GapIssue {
                    what: format!(
                        "workflow `{}` uses models no file is pinned for: {}",
                        gaps.workflow,
                        comfydock_foundation::display_text::backticked(&gaps.unresolved_models)
                    ),
                    fix: resolve.clone(),
                });
            }
            if !gaps.unresolved_nodes.is_empty() {
                issues.push(GapIssue {
                    what: format!(
                        "workflow `{}` uses node types no known package provides: {}",
                        gaps.workflow,
                        comfydock_foundation::display_text::backticked(&gaps.unresolved_nodes)
                    ),
                    fix: format!(
                        "map each to a package with `comfydock -e {env} workflow node map TYPE PACKAGE` (or `--none`), then `{resolve}`"
                    ),
                });
            }
            if !gaps.missing_packages.is_empty() {
                issues.push(GapIssue {
                    what: format!(
                        "workflow `{}` needs node packages that are not installed: {}",
                        gaps.workflow,
                        comfydock_foundation::display_text::backticked(&gaps.missing_packages)
                    ),
                    fix: format!("{resolve} --install"),
                });
            }
        }
        issues
    }
}

/// One recorded model: its pin and who needs it.
struct Pinned {
    entry: ModelEntry,
    key: Option<ModelHash>,
    workflows: Vec<String>,
}

/// Compare what `.cec` records with the model index and the installed nodes (nothing is hashed,
/// nothing changes).
pub fn check(workspace: &Workspace, env: &Environment) -> Result<Gaps, ResolveError> {
    let manifest = env.manifest()?;
    let tool = manifest.tool();
    let tracked = tracking::tracked(&manifest);
    let mut pinned: BTreeMap<String, Pinned> = BTreeMap::new();
    let mut add = |entry: &ModelEntry, key: Option<&ModelHash>, workflow: Option<&str>| {
        let identity = entry
            .blake3(key)
            .map(|h| format!("blake3:{}", h.as_str()))
            .or_else(|| entry.sha256(key).map(|h| format!("sha256:{}", h.as_str())))
            .or_else(|| entry.raw_target().map(|t| format!("path:{t}")));
        let Some(identity) = identity else { return };
        let slot = pinned.entry(identity).or_insert_with(|| Pinned {
            entry: ModelEntry::default(),
            key: key.cloned(),
            workflows: Vec::new(),
        });
        slot.entry.merge_from(entry.clone());
        if slot.key.is_none() {
            slot.key = key.cloned();
        }
        if let Some(w) = workflow
            && !slot.workflows.iter().any(|x| x == w)
        {
            slot.workflows.push(w.to_owned());
        }
    };
    for (_, entry) in &tool.models {
        add(entry, None, None);
    }
    let mut workflows = Vec::new();
    let installed = ops::list(env)?;
    for (name, entry) in &tool.workflows {
        if !tracked.contains(name) {
            continue;
        }
        for model in entry.models.entries() {
            add(&model.entry, model.key.as_ref(), Some(name));
        }
        workflows.push(WorkflowGaps {
            workflow: name.clone(),
            unresolved_models: entry.unresolved_models.clone(),
            unresolved_nodes: entry.unresolved_nodes.clone(),
            missing_packages: entry
                .nodes
                .iter()
                .filter(|p| !is_installed(&installed, p))
                .cloned()
                .collect(),
        });
    }

    let index = workspace_models::open_index(workspace)?;
    let mut missing_models = Vec::new();
    for pin in pinned.into_values() {
        if present(&index, &pin)? {
            continue;
        }
        let entry = &pin.entry;
        missing_models.push(MissingModel {
            target: entry.raw_target(),
            criticality: entry.criticality.unwrap_or(Criticality::Required),
            blake3: entry.blake3(pin.key.as_ref()).map(|h| h.as_str().to_owned()),
            sha256: entry.sha256(pin.key.as_ref()).map(|h| h.as_str().to_owned()),
            size: entry.size,
            sources: entry.urls(),
            workflows: pin.workflows,
        });
    }
    Ok(Gaps {
        missing_models,
        workflows,
    })
}

/// Whether an indexed file on this machine has the pin's hash. A pin without a hash counts as
/// present (there is nothing to verify it against; `workflow resolve` pins it).
fn present(index: &ModelIndex, pin: &Pinned) -> Result<bool, ResolveError> {
    let hashes = [
        pin.entry.blake3(pin.key.as_ref()).map(|h| h.as_str().to_owned()),
        pin.entry.sha256(pin.key.as_ref()).map(|h| h.as_str().to_owned()),
    ];
    let mut any_hash = false;
    for hash in hashes.into_iter().flatten() {
        any_hash = true;
        match index.resolve(&ModelId::HashPrefix(hash)) {
            Ok(record) if !record.locations.is_empty() => return Ok(true),
            Ok(_) | Err(comfydock_models::query::LookupError::NotFound(_)) => {}
            Err(comfydock_models::query::LookupError::Ambiguous { .. }) => return Ok(true),
            Err(comfydock_models::query::LookupError::Index(e)) => return Err(e.into()),
        }
    }
    Ok(!any_hash)
}

/// Which missing models [`fetch_missing`] downloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelSelection {
    /// Only models a workflow cannot run without.
    Required,
    /// Every missing model.
    All,
}

/// The outcome for one missing model.
#[derive(Debug, Clone, Serialize)]
pub struct FetchOutcome {
    pub model: String,
    /// `downloaded`, `skipped` (not selected), `no_source` or `failed`.
    pub state: &'static str,
    /// The source it came from (redacted), or why it failed.
    pub detail: Option<String>,
}

/// What [`fetch_missing`] did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FetchReport {
    pub outcomes: Vec<FetchOutcome>,
}

impl FetchReport {
    pub fn count(&self, state: &str) -> usize {
        self.outcomes.iter().filter(|o| o.state == state).count()
    }
}

/// Download the missing models `which` selects from their recorded sources (each source in
/// order until one gives the pinned bytes), verify each against its pinned hash, and index it.
/// Call under the workspace lock. Failures are reported per model, never stop the others.
pub fn fetch_missing(ctx: &ResolveContext<'_>, which: ModelSelection) -> Result<FetchReport, ResolveError> {
    let gaps = check(ctx.workspace, ctx.env)?;
    let mut report = FetchReport::default();
    let mut wanted = Vec::new();
    for model in gaps.missing_models {
        let selected = which == ModelSelection::All || model.criticality == Criticality::Required;
        let state = if !selected {
            Some("skipped")
        } else if model.sources.is_empty() {
            Some("no_source")
        } else {
            None
        };
        match state {
            Some(state) => report.outcomes.push(FetchOutcome {
                model: model.label(),
                state,
                detail: None,
            }),
            None => wanted.push(model),
        }
    }
    if wanted.is_empty() {
        return Ok(report);
    }
    workspace_models::ensure_model_paths(ctx.workspace)?;
    let root = workspace_models::default_root(ctx.workspace)?;
    let client = workspace_models::downloader(ctx.settings, 4)?;
    let mut index = workspace_models::open_index(ctx.workspace)?;
    for (n, model) in wanted.iter().enumerate() {
        ctx.reporter.status(
            "Downloading",
            &format!("[{}/{}] {}", n + 1, wanted.len(), model.label()),
        );
        let expected = model
            .sha256
            .clone()
            .map(ExpectedHash::Sha256)
            .or_else(|| model.blake3.clone().map(ExpectedHash::Blake3));
        let mut last_error = None;
        let mut done = None;
        for url in &model.sources {
            let request = DownloadRequest {
                url: url.clone(),
                to: model.target.clone(),
                expected: expected.clone(),
            };
            let result = workspace_models::download_blocking(
                &client,
                &root,
                &[request],
                Some(&ReportedDownloads::new(ctx.reporter)),
            )?
            .pop()
            .expect("one result per request");
            match result {
                Ok(downloaded) => {
                    index.record_download(&downloaded)?;
                    done = Some(redact_url(url));
                    break;
                }
                Err(err) => {
                    let chain = comfydock_foundation::hint::error_chain(&err);
                    ctx.reporter
                        .warning(&format!("{}: {} failed: {chain}", model.label(), redact_url(url)));
                    last_error = Some(chain);
                }
            }
        }
        report.outcomes.push(match done {
            Some(url) => FetchOutcome {
                model: model.label(),
                state: "downloaded",
                detail: Some(url),
            },
            None => FetchOutcome {
                model: model.label(),
                state: "failed",
                detail: last_error,
            },
        });
    }
    Ok(report)
}

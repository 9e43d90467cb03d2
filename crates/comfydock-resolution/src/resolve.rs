//! `workflow resolve`: map a tracked workflow's custom node types to packages and its models to
//! the index, optionally installing the packages and downloading the models, and record the
//! result in `[tool.comfydock.workflows."NAME"]`.

use comfydock_models::download::ReportedDownloads;
use std::collections::BTreeMap;

use comfydock_environments::environment::Environment;
use comfydock_environments::manifest::schema::{
    ModelEntry, ModelHash, NodeMapping, WorkflowEntry, WorkflowModels,
};
use comfydock_environments::nodes::{NodeContext, NodeSpec, ops};
use comfydock_environments::workflow_tracking as tracking;
use comfydock_environments::workspace_models;
use comfydock_foundation::redact::redact_url;
use comfydock_models::download::{DownloadRequest, ExpectedHash};
use comfydock_models::index::ModelRecord;
use comfydock_workflow::{Criticality, NodeCategory};
use serde::Serialize;

pub use crate::context::ResolveContext;
use crate::context::analyze_live;
use crate::error::ResolveError;
use crate::model_match::{find_models, pin};
use crate::model_pin::ModelAnswer;
use crate::node_candidates::{Candidate, candidates, is_installed};

/// Asks the user when the answer is theirs to give.
pub trait Chooser {
    /// Several packages claim `node_type`: the index of the chosen candidate and why it was
    /// chosen (shown in the report).
    fn choose_package(
        &self,
        node_type: &str,
        candidates: &[Candidate],
    ) -> Result<(usize, String), ResolveError>;

    /// Nothing matches the model reference `name` and no URL is known: what it is, or `Skip`
    /// to leave it unresolved (the answer without a terminal, and under `--auto`).
    fn missing_model(&self, name: &str, criticality: Criticality)
    -> Result<MissingModelAnswer, ResolveError>;

    /// Several indexed files match the model reference `name`: the index of the chosen one and
    /// why (the answer is saved as the workflow's pin and never asked again).
    fn choose_model(
        &self,
        name: &str,
        candidates: &[ModelCandidate],
    ) -> Result<(usize, String), ResolveError>;
}

/// The user's answer for a model nothing matches ([`Chooser::missing_model`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MissingModelAnswer {
    /// An indexed file: a blake3/sha256 prefix or a path.
    File(String),
    /// Download it from this URL.
    Url(String),
    /// The workflow runs without it.
    Optional,
    /// Leave it unresolved for now.
    Skip,
}

/// One indexed file a model reference could mean, as shown to the user who must choose.
#[derive(Debug, Clone, Serialize)]
pub struct ModelCandidate {
    /// Where it is (`/models/checkpoints/v1/model.safetensors`).
    pub path: String,
    pub size: u64,
    pub blake3: String,
    /// Other tracked workflows that already use it.
    pub used_by: Vec<String>,
}

impl ModelCandidate {
    fn of(record: &ModelRecord, other_pins: &[(String, String)], workflow: &str) -> Self {
        Self {
            path: record
                .locations
                .first()
                .map(|l| l.path().display().to_string())
                .unwrap_or_default(),
            size: record.size,
            blake3: record.blake3.clone(),
            used_by: other_pins
                .iter()
                .filter(|(w, b)| *b == record.blake3 && w != workflow)
                .map(|(w, _)| w.clone())
                .collect(),
        }
    }
}

/// What `resolve` may do besides looking.
#[derive(Debug, Clone, Copy, Default)]
pub struct ResolveOptions {
    /// Install missing packages and download missing models that have a URL.
    pub install: bool,
}

/// How one custom node type was resolved.
#[derive(Debug, Clone, Serialize)]
pub struct NodeResolution {
    pub node_type: String,
    pub package: Option<String>,
    pub installed: bool,
    pub why: String,
    pub candidates: Vec<Candidate>,
}

/// How one model reference was resolved.
#[derive(Debug, Clone, Serialize)]
pub struct ModelResolution {
    pub name: String,
    pub folder: Option<String>,
    pub criticality: Criticality,
    /// blake3 of the matched or downloaded file.
    pub blake3: Option<String>,
    pub how: String,
    pub url: Option<String>,
}

/// What `resolve` found and did.
#[derive(Debug, Serialize)]
pub struct ResolveReport {
    pub workflow: String,
    pub nodes: Vec<NodeResolution>,
    pub models: Vec<ModelResolution>,
    pub nodes_installed: Vec<String>,
    pub models_downloaded: Vec<String>,
    /// Problems that did not stop the resolution (e.g. the node index could not be refreshed).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl ResolveReport {
    /// Node types without an installed package.
    pub fn missing_nodes(&self) -> usize {
        self.nodes.iter().filter(|n| !n.installed).count()
    }
    /// Node types no package is known for (they need `workflow node map`).
    pub fn unknown_node_types(&self) -> Vec<&str> {
        self.nodes
            .iter()
            .filter(|n| n.package.is_none())
            .map(|n| n.node_type.as_str())
            .collect()
    }
    /// Required models that matched nothing.
    pub fn missing_required_models(&self) -> usize {
        self.models
            .iter()
            .filter(|m| m.blake3.is_none() && m.criticality == Criticality::Required)
            .count()
    }
}

/// Resolve the tracked workflow `name` of `ctx.env` (see the module docs). Call under the
/// workspace lock.
pub fn resolve(
    ctx: &ResolveContext<'_>,
    name: &str,
    options: ResolveOptions,
    chooser: &dyn Chooser,
) -> Result<ResolveReport, ResolveError> {
    let env = ctx.env;
    let name = tracking::normalize_name(name);
    let mut analysis = analyze_live(env, &name)?;
    // References the user marked optional (`workflow model set … --optional`).
    let optional = env
        .manifest()?
        .tool()
        .workflows
        .get(&name)
        .map(|w| w.optional_models.clone())
        .unwrap_or_default();
    for reference in &mut analysis.models {
        if optional.contains(&reference.relative_path) {
            reference.criticality = Criticality::Optional;
        }
    }

    let node_ctx = NodeContext {
        workspace: ctx.workspace,
        settings: ctx.settings,
        tools: ctx.tools,
        env,
        reporter: ctx.reporter,
    };
    let previous = previous_choices(env, &name)?;
    let mut warnings = Vec::new();

    // Nodes: refresh the index (installed nodes, ComfyUI-Manager's class map) before looking up.
    let has_custom_nodes = analysis
        .node_types
        .iter()
        .any(|t| t.category == NodeCategory::Custom);
    if has_custom_nodes && let Err(err) = ops::refresh_index(&node_ctx) {
        warnings.push(format!("could not refresh the node index: {err}"));
    }
    let installed = ops::list(env)?;
    let index = node_ctx.index()?;
    let mappings = env.manifest()?.tool().node_mappings.clone();
    let mut node_results = Vec::new();
    for usage in analysis
        .node_types
        .iter()
        .filter(|t| t.category == NodeCategory::Custom)
    {
        let mapped = mappings.get(&usage.node_type);
        if matches!(mapped, Some(NodeMapping::NoPackage(_))) {
            continue;
        }
        let mut found = candidates(usage, &index, &installed)?;
        if found.list.is_empty() && mapped.is_none() && !previous.contains_key(&usage.node_type) {
            // No local source knows the type: ask the registry by class name.
            match ops::search_registry_for_class(&node_ctx, &usage.node_type) {
                Ok(claims) if !claims.is_empty() => found = candidates(usage, &index, &installed)?,
                Ok(_) => {}
                Err(err) => warnings.push(format!(
                    "could not search the registry for `{}`: {err}",
                    usage.node_type
                )),
            }
        }
        let (package, why) = if let Some(NodeMapping::Package(pkg)) = mapped {
            (
                Some(pkg.clone()),
                "mapped by hand (`workflow node map`)".to_owned(),
            )
        } else if let Some(pkg) = found.installed.clone() {
            (Some(pkg), "already installed".to_owned())
        } else if let Some(choice) = previous.get(&usage.node_type) {
            (
                Some(choice.clone()),
                "chosen earlier (saved in pyproject.toml)".to_owned(),
            )
        } else {
            match found.distinct().len() {
                0 => (None, "no package known for this node type".to_owned()),
                1 => (Some(found.list[0].package.clone()), found.list[0].why.clone()),
                _ => {
                    let (pick, why) = chooser.choose_package(&usage.node_type, &found.list)?;
                    let chosen = found.list.get(pick).ok_or_else(|| ResolveError::InvalidChoice {
                        node_type: usage.node_type.clone(),
                        answer: (pick + 1).to_string(),
                    })?;
                    (Some(chosen.package.clone()), why)
                }
            }
        };
        let installed_now = package.as_deref().is_some_and(|p| is_installed(&installed, p));
        node_results.push(NodeResolution {
            node_type: usage.node_type.clone(),
            package,
            installed: installed_now,
            why,
            candidates: found.list,
        });
    }

    let mut nodes_installed = Vec::new();
    if options.install {
        let specs = install_specs(&node_results)?;
        if !specs.is_empty() {
            let report = ops::add(&node_ctx, &specs, false)?;
            nodes_installed.extend(report.nodes.iter().map(|changed| changed.entry.key.clone()));
            for n in &mut node_results {
                if n.package.is_some() {
                    n.installed = true;
                }
            }
        }
    }

    // Models.
    let recorded_pins = env
        .manifest()?
        .tool()
        .workflows
        .get(&name)
        .map(|w| w.models.entries())
        .unwrap_or_default();
    // Which other workflows pin each model (shown when the user must choose).
    let other_pins: Vec<(String, String)> = env
        .manifest()?
        .tool()
        .workflows
        .iter()
        .filter(|(n, _)| **n != name)
        .flat_map(|(n, w)| {
            w.models
                .entries()
                .into_iter()
                .filter_map(|m| m.entry.blake3(m.key.as_ref()))
                .map(move |b| (n.clone(), b.as_str().to_owned()))
        })
        .collect();
    let mut models_index = workspace_models::open_index(ctx.workspace)?;
    let records = models_index.list()?;
    let mut model_results = Vec::new();
    let mut pins: BTreeMap<ModelHash, ModelEntry> = BTreeMap::new();
    let mut downloads: Vec<(usize, DownloadRequest)> = Vec::new();
    for reference in &analysis.models {
        // A pin recorded earlier (by resolve, import or a teammate) knows the hash and sources
        // even when the workflow file names no URL, and is the answer to an earlier choice.
        let recorded = recorded_pins
            .iter()
            .find(|m| m.entry.name.as_deref() == Some(reference.relative_path.as_str()));
        // A recorded pin whose file is here wins: it is an answer given before (a choice,
        // `workflow model set`, a teammate's resolution).
        let pinned_here = recorded
            .and_then(|m| m.entry.blake3(m.key.as_ref()))
            .and_then(|b| {
                records
                    .iter()
                    .find(|r| r.blake3 == b.as_str() && !r.locations.is_empty())
            });
        let (matches, how) = match pinned_here {
            Some(record) => (vec![record], "pinned earlier (saved in pyproject.toml)"),
            None => find_models(&records, reference),
        };
        let found = match matches.as_slice() {
            [] => None,
            [one] => Some((*one, how.to_owned())),
            several => {
                // Shown in path order, whatever order the scan found them in.
                let mut several = several.to_vec();
                several.sort_by_key(|r| r.locations.first().map(comfydock_models::index::Location::path));
                let candidates: Vec<ModelCandidate> = several
                    .iter()
                    .map(|r| ModelCandidate::of(r, &other_pins, &name))
                    .collect();
                let (pick, why) = chooser.choose_model(&reference.relative_path, &candidates)?;
                let record = several.get(pick).ok_or_else(|| ResolveError::InvalidChoice {
                    node_type: reference.relative_path.clone(),
                    answer: (pick + 1).to_string(),
                })?;
                Some((*record, why))
            }
        };
        let url = reference
            .url
            .clone()
            .or_else(|| recorded.and_then(|m| m.entry.urls().into_iter().next()));
        let (blake3, how) = match &found {
            Some((record, how)) => (Some(record.blake3.clone()), how.clone()),
            None if reference.url.is_some() => (None, "not in the index; can be downloaded".to_owned()),
            None if url.is_some() => (
                None,
                "not in the index; can be downloaded from its recorded source".to_owned(),
            ),
            None => (None, "not in the index and no download URL".to_owned()),
        };
        if let Some((record, _)) = &found {
            let (hash, entry) = pin(record, reference)?;
            pins.insert(hash, entry);
        } else if options.install
            && let Some(url) = &url
        {
            let to = match &reference.folder {
                Some(folder) => format!("{folder}/{}", reference.relative_path),
                None => reference.relative_path.clone(),
            };
            let expected = reference.hash.clone().map(ExpectedHash::Sha256).or_else(|| {
                let m = recorded?;
                m.entry
                    .sha256(m.key.as_ref())
                    .map(|h| ExpectedHash::Sha256(h.as_str().to_owned()))
                    .or_else(|| {
                        m.entry
                            .blake3(m.key.as_ref())
                            .map(|h| ExpectedHash::Blake3(h.as_str().to_owned()))
                    })
            });
            downloads.push((
                model_results.len(),
                DownloadRequest {
                    url: url.clone(),
                    to: Some(to),
                    expected,
                },
            ));
        }
        model_results.push(ModelResolution {
            name: reference.relative_path.clone(),
            folder: reference.folder.clone(),
            criticality: reference.criticality,
            blake3,
            how,
            url,
        });
    }
    let mut models_downloaded = Vec::new();
    if !downloads.is_empty() {
        workspace_models::ensure_model_paths(ctx.workspace)?;
        let requests: Vec<DownloadRequest> = downloads.iter().map(|(_, r)| r.clone()).collect();
        let root = workspace_models::default_root(ctx.workspace)?;
        let client = workspace_models::downloader(ctx.settings, 4)?;
        let results = workspace_models::download_blocking(
            &client,
            &root,
            &requests,
            Some(&ReportedDownloads::new(ctx.reporter)),
        )?;
        for ((slot, request), result) in downloads.iter().zip(results) {
            let downloaded = result.map_err(|source| ResolveError::Download {
                url: redact_url(&request.url),
                source,
            })?;
            let model_id = models_index.record_download(&downloaded)?;
            ctx.reporter
                .status("Downloaded", &downloaded.path.display().to_string());
            models_downloaded.push(downloaded.relative_path.clone());
            // `slot` indexes both `model_results` and `analysis.models` (one result per reference).
            if let Some(record) = models_index.model(model_id)? {
                let reference = &analysis.models[*slot];
                let (hash, entry) = pin(&record, reference)?;
                pins.insert(hash, entry);
                model_results[*slot].blake3 = Some(record.blake3.clone());
                model_results[*slot].how = "downloaded and verified".into();
            }
        }
    }

    // Store the result.
    let entry = WorkflowEntry {
        tracked: true,
        nodes: {
            let mut n: Vec<String> = node_results.iter().filter_map(|n| n.package.clone()).collect();
            n.sort();
            n.dedup();
            n
        },
        node_choices: node_results
            .iter()
            .filter_map(|n| n.package.clone().map(|p| (n.node_type.clone(), p)))
            .collect(),
        models: WorkflowModels::ByHash(pins),
        unresolved_models: model_results
            .iter()
            .filter(|m| m.blake3.is_none())
            .map(|m| m.name.clone())
            .collect(),
        unresolved_nodes: node_results
            .iter()
            .filter(|n| n.package.is_none())
            .map(|n| n.node_type.clone())
            .collect(),
        optional_models: Vec::new(),
    };
    // Merged into what the manifest holds: pins and sources this run did not produce are kept.
    let mut manifest = env.manifest()?;
    manifest.record_workflow_resolution(&name, entry)?;
    manifest.save()?;

    // Models nothing matched and nothing can download: the user may know the file, a URL, or
    // that the workflow runs without it. Each answer is saved like `workflow model set`.
    for result in &mut model_results {
        if result.blake3.is_some() || result.url.is_some() {
            continue;
        }
        let answer = chooser.missing_model(&result.name, result.criticality)?;
        let answer = match &answer {
            MissingModelAnswer::Skip => continue,
            MissingModelAnswer::File(id) => ModelAnswer::File(id),
            MissingModelAnswer::Url(url) => ModelAnswer::Url(url),
            MissingModelAnswer::Optional => ModelAnswer::Optional,
        };
        let set = crate::model_pin::set(ctx, &name, &result.name, answer)?;
        result.criticality = set.criticality;
        if let Some(b) = set.blake3 {
            result.blake3 = Some(b);
            result.how = "set by you (saved in pyproject.toml)".into();
        } else {
            result.how = "marked optional by you (saved in pyproject.toml)".into();
        }
        if let Some(from) = set.downloaded_from {
            models_downloaded.push(from);
        }
    }

    Ok(ResolveReport {
        workflow: name,
        nodes: node_results,
        models: model_results,
        nodes_installed,
        models_downloaded,
        warnings,
    })
}

/// `node add` specs for the chosen packages that are not installed yet (a version pin when the
/// workflow recorded a release version).
fn install_specs(node_results: &[NodeResolution]) -> Result<Vec<NodeSpec>, ResolveError> {
    let mut specs: Vec<NodeSpec> = Vec::new();
    let mut seen = Vec::new();
    for n in node_results.iter().filter(|n| !n.installed) {
        let Some(package) = &n.package else { continue };
        if seen.contains(package) {
            continue;
        }
        seen.push(package.clone());
        let version = n
            .candidates
            .iter()
            .find(|c| &c.package == package)
            .and_then(|c| c.version.clone());
        let spec_text = match version
            .filter(|v| v.chars().next().is_some_and(|c| c.is_ascii_digit()) && v.contains('.'))
        {
            Some(v) => format!("{package}@{v}"),
            None => package.clone(),
        };
        specs.push(NodeSpec::parse(&spec_text)?);
    }
    Ok(specs)
}

/// Decisions saved by an earlier resolve.
fn previous_choices(env: &Environment, name: &str) -> Result<BTreeMap<String, String>, ResolveError> {
    Ok(env
        .manifest()?
        .tool()
        .workflows
        .get(name)
        .map(|w| w.node_choices.clone())
        .unwrap_or_default())
}

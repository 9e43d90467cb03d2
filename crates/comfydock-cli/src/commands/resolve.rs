//! `comfydock workflow resolve NAME [--auto] [--install]`: map a workflow's custom node types to
//! packages and its models to the index, optionally installing and downloading what is missing.
//! The result is stored in `[tool.comfydock.workflows."NAME"]`.
//!
//! This is orchestration across the workflow, node and model crates, so it lives at the CLI edge.

use std::collections::BTreeMap;
use std::io::{BufRead as _, IsTerminal as _, Write as _};

use comfydock_environments::environment::{self, Environment};
use comfydock_environments::manifest::schema::{
    ModelEntry, ModelHash, ModelSource, WorkflowEntry, WorkflowModels,
};
use comfydock_environments::nodes::index::ClaimSource;
use comfydock_environments::nodes::{NodeContext, NodeSpec, ops};
use comfydock_environments::workflow_tracking as tracking;
use comfydock_environments::workspace::Workspace;
use comfydock_models::download::{DownloadRequest, ExpectedHash};
use comfydock_models::index::{ModelIndex, ModelRecord};
use comfydock_workflow::{
    AnalysisOptions, Criticality, ModelReference, NodeCategory, WorkflowDocument, analyze,
};
use serde::Serialize;

use super::Context;
use crate::error::{CommandError, CommandResult};

/// One package that may provide a node type, and why we think so.
#[derive(Debug, Clone, Serialize)]
struct Candidate {
    /// Registry id or git URL.
    package: String,
    version: Option<String>,
    rank: i64,
    why: String,
}

/// How one custom node type was resolved.
#[derive(Debug, Clone, Serialize)]
struct NodeResolution {
    node_type: String,
    package: Option<String>,
    installed: bool,
    why: String,
    candidates: Vec<Candidate>,
}

/// How one model reference was resolved.
#[derive(Debug, Clone, Serialize)]
struct ModelResolution {
    name: String,
    folder: Option<String>,
    criticality: Criticality,
    /// blake3 of the matched or downloaded file.
    blake3: Option<String>,
    how: String,
    url: Option<String>,
}

#[derive(Debug, Serialize)]
struct ResolveReport {
    workflow: String,
    nodes: Vec<NodeResolution>,
    models: Vec<ModelResolution>,
    nodes_installed: Vec<String>,
    models_downloaded: Vec<String>,
}

pub fn resolve(ctx: &Context, name: &str, auto: bool, install: bool) -> CommandResult {
    let workspace = ctx.workspace()?;
    let env = environment::select(&workspace, ctx.global.env.as_deref())?;
    let _lock = ctx.lock(&workspace)?;
    let workspace = Workspace::open(workspace.root())?;
    let name = tracking::normalize_name(name);
    let live = tracking::live_path(&env, &name);
    let bytes = fs_err::read(&live)?;
    let doc = WorkflowDocument::parse_bytes(&bytes)
        .map_err(|e| CommandError::failed(format!("`{}`: {e}", live.display())))?;
    let options = AnalysisOptions {
        builtins: comfydock_environments::comfyui_builtins::builtin_nodes(&env),
        ..Default::default()
    };
    let analysis =
        analyze(&doc, &options).map_err(|e| CommandError::failed(format!("`{}`: {e}", live.display())))?;

    let settings = ctx.settings(&workspace);
    let tools = environment::tools(&workspace, &settings, &ctx.reporter)?;
    let node_ctx = NodeContext {
        workspace: &workspace,
        settings: &settings,
        tools: &tools,
        env: &env,
        reporter: &ctx.reporter,
    };
    let previous = previous_choices(&env, &name)?;

    // Nodes: refresh the index (installed nodes, ComfyUI-Manager's class map) before looking up.
    if let Err(err) = ops::refresh_index(&node_ctx) {
        ctx.printer
            .warn(format!("could not refresh the node index: {err}"));
    }
    let installed = ops::list(&env)?;
    let index = node_ctx.index()?;
    let mut node_results = Vec::new();
    for usage in analysis
        .node_types
        .iter()
        .filter(|t| t.category == NodeCategory::Custom)
    {
        let mut candidates: Vec<Candidate> = Vec::new();
        for hint in &usage.packages {
            if let Some(id) = &hint.cnr_id {
                push_candidate(
                    &mut candidates,
                    id.to_ascii_lowercase(),
                    hint.ver.clone(),
                    0,
                    "properties.cnr_id",
                );
            } else if let Some(aux) = &hint.aux_id {
                push_candidate(
                    &mut candidates,
                    format!("https://github.com/{aux}"),
                    hint.ver.clone(),
                    0,
                    "properties.aux_id",
                );
            }
        }
        let claims = index.lookup(&usage.node_type)?;
        for claim in &claims {
            let why = match claim.source {
                ClaimSource::Installed => "an installed node defines it",
                ClaimSource::Registry => "the registry lists it",
                ClaimSource::Manager => "ComfyUI-Manager's node map lists it",
            };
            push_candidate(
                &mut candidates,
                claim.package.clone(),
                claim.version.clone(),
                claim.rank,
                why,
            );
        }
        let installed_package = candidates
            .iter()
            .find(|c| is_installed(&installed, &c.package))
            .map(|c| c.package.clone())
            .or_else(|| {
                claims
                    .iter()
                    .find(|c| c.source == ClaimSource::Installed)
                    .map(|c| c.package.clone())
            });
        let (package, why) = if let Some(pkg) = installed_package {
            (Some(pkg), "already installed".to_owned())
        } else if let Some(choice) = previous.get(&usage.node_type) {
            (
                Some(choice.clone()),
                "chosen earlier (saved in pyproject.toml)".to_owned(),
            )
        } else {
            match distinct(&candidates).len() {
                0 => (None, "no package known for this node type".to_owned()),
                1 => (Some(candidates[0].package.clone()), candidates[0].why.clone()),
                _ => choose(ctx, &usage.node_type, &candidates, auto)?,
            }
        };
        let installed_now = package.as_deref().is_some_and(|p| is_installed(&installed, p));
        node_results.push(NodeResolution {
            node_type: usage.node_type.clone(),
            package,
            installed: installed_now,
            why,
            candidates,
        });
    }

    let mut nodes_installed = Vec::new();
    if install {
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
        if !specs.is_empty() {
            let report = ops::add(&node_ctx, &specs, false)?;
            for changed in &report.nodes {
                nodes_installed.push(
                    serde_json::to_value(changed)
                        .ok()
                        .and_then(|v| v.get("key").and_then(|k| k.as_str()).map(str::to_owned))
                        .unwrap_or_default(),
                );
            }
            for n in &mut node_results {
                if n.package.is_some() {
                    n.installed = true;
                }
            }
        }
    }

    // Models.
    let mut models_index = ModelIndex::open(&workspace.metadata_dir().join("model_index.db"))?;
    let records = models_index.list()?;
    let mut model_results = Vec::new();
    let mut pins: BTreeMap<ModelHash, ModelEntry> = BTreeMap::new();
    let mut downloads: Vec<(usize, DownloadRequest)> = Vec::new();
    for reference in &analysis.models {
        let found = find_model(&records, reference);
        let (blake3, how) = match &found {
            Some((record, how)) => (Some(record.blake3.clone()), (*how).to_owned()),
            None if reference.url.is_some() => (None, "not in the index; can be downloaded".to_owned()),
            None => (None, "not in the index and no download URL".to_owned()),
        };
        if let Some((record, _)) = &found {
            let (hash, entry) = pin(record, reference)?;
            pins.insert(hash, entry);
        } else if install && let Some(url) = &reference.url {
            let to = match &reference.folder {
                Some(folder) => format!("{folder}/{}", reference.relative_path),
                None => reference.relative_path.clone(),
            };
            let expected = reference.hash.clone().map(ExpectedHash::Sha256);
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
            url: reference.url.clone(),
        });
    }
    let mut models_downloaded = Vec::new();
    if !downloads.is_empty() {
        super::model::ensure_model_paths(&workspace)?;
        let requests: Vec<DownloadRequest> = downloads.iter().map(|(_, r)| r.clone()).collect();
        let root = super::model::default_root(&workspace)?;
        let client = super::model::downloader(ctx, &workspace, 4)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let results = runtime.block_on(client.download_all(
            &root,
            &requests,
            &comfydock_foundation::reporter::NoReporter,
        ));
        for ((slot, request), result) in downloads.iter().zip(results) {
            let downloaded = result.map_err(|e| {
                CommandError::context_failed(
                    format!(
                        "Failed to download `{}`",
                        comfydock_models::endpoints::redact_url(&request.url)
                    ),
                    e,
                )
            })?;
            let model_id = models_index.record_download(&downloaded)?;
            ctx.printer.status("Downloaded", downloaded.path.display());
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
    };
    // Merged into what the manifest holds: pins and sources this run did not produce are kept.
    let mut manifest = env.manifest()?;
    manifest.record_workflow_resolution(&name, entry)?;
    manifest.save()?;

    let report = ResolveReport {
        workflow: name.clone(),
        nodes: node_results,
        models: model_results,
        nodes_installed,
        models_downloaded,
    };
    print_report(ctx, &env, &report);
    let missing_nodes = report.nodes.iter().filter(|n| !n.installed).count();
    let missing_required = report
        .models
        .iter()
        .filter(|m| m.blake3.is_none() && m.criticality == Criticality::Required)
        .count();
    if missing_nodes + missing_required > 0 {
        return Err(CommandError::failed(format!(
            "`{name}` is not fully resolved: {missing_nodes} node type(s) without an installed package, {missing_required} required model(s) missing"
        ))
        .with_hint(format!("run `comfydock -e {} workflow resolve {name} --auto --install`", env.name)));
    }
    Ok(())
}

fn push_candidate(list: &mut Vec<Candidate>, package: String, version: Option<String>, rank: i64, why: &str) {
    if !list.iter().any(|c| c.package == package) {
        list.push(Candidate {
            package,
            version,
            rank,
            why: why.to_owned(),
        });
    }
    list.sort_by_key(|c| c.rank);
}

fn distinct(candidates: &[Candidate]) -> Vec<&str> {
    let mut packages: Vec<&str> = candidates.iter().map(|c| c.package.as_str()).collect();
    packages.dedup();
    packages
}

fn is_installed(installed: &[ops::ListedNode], package: &str) -> bool {
    let normalized = package
        .trim_end_matches(".git")
        .trim_end_matches('/')
        .to_ascii_lowercase();
    installed.iter().any(|n| {
        n.entry.key.eq_ignore_ascii_case(package)
            || n.entry.name.eq_ignore_ascii_case(package)
            || n.entry
                .url
                .as_deref()
                .or(n.entry.repository.as_deref())
                .is_some_and(|u| {
                    u.trim_end_matches(".git")
                        .trim_end_matches('/')
                        .to_ascii_lowercase()
                        == normalized
                })
    })
}

/// Several packages claim a node type: ask on a terminal, or pick the best-ranked with `--auto`.
fn choose(
    ctx: &Context,
    node_type: &str,
    candidates: &[Candidate],
    auto: bool,
) -> CommandResult<(Option<String>, String)> {
    if auto {
        let best = &candidates[0];
        let why = format!(
            "--auto picked the best-ranked of {} candidates ({})",
            candidates.len(),
            best.why
        );
        ctx.printer
            .info(format!("`{node_type}` → {}: {why}", best.package));
        return Ok((Some(best.package.clone()), why));
    }
    if !std::io::stdin().is_terminal() {
        return Err(CommandError::usage(format!(
            "Several packages provide `{node_type}` and there is no terminal to ask on"
        ))
        .with_hint("pass `--auto` to take the best-ranked candidate"));
    }
    let mut err = std::io::stderr();
    let _ = writeln!(err, "Several packages provide `{node_type}`:");
    for (i, c) in candidates.iter().enumerate() {
        let _ = writeln!(err, "  {}. {} ({})", i + 1, c.package, c.why);
    }
    let _ = write!(err, "Choose [1-{}]: ", candidates.len());
    let _ = err.flush();
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let pick: usize = line.trim().parse().unwrap_or(0);
    let chosen = candidates
        .get(pick.wrapping_sub(1))
        .ok_or_else(|| CommandError::usage(format!("`{}` is not one of the choices", line.trim())))?;
    Ok((Some(chosen.package.clone()), "chosen by you".to_owned()))
}

/// Decisions saved by an earlier resolve.
fn previous_choices(env: &Environment, name: &str) -> CommandResult<BTreeMap<String, String>> {
    Ok(env
        .manifest()?
        .tool()
        .workflows
        .get(name)
        .map(|w| w.node_choices.clone())
        .unwrap_or_default())
}

/// The resolution chain: declared hash, exact path, folder-aware path, file name, file name ignoring case.
fn find_model<'a>(
    records: &'a [ModelRecord],
    reference: &ModelReference,
) -> Option<(&'a ModelRecord, &'static str)> {
    if let Some(hash) = &reference.hash {
        let hash = hash.to_ascii_lowercase();
        if let Some(r) = records
            .iter()
            .find(|r| r.sha256.as_deref() == Some(hash.as_str()) || r.blake3 == hash)
        {
            return Some((r, "matched by declared hash"));
        }
    }
    let wanted = reference.relative_path.replace('\\', "/");
    let full = reference.folder.as_ref().map(|f| format!("{f}/{wanted}"));
    let file_name = wanted.rsplit('/').next().unwrap_or(&wanted).to_owned();
    let locations = || {
        records
            .iter()
            .flat_map(|r| r.locations.iter().map(move |l| (r, l)))
    };
    if let Some(full) = &full
        && let Some((r, _)) = locations().find(|(_, l)| &l.relative_path == full)
    {
        return Some((r, "exact path"));
    }
    if let Some((r, _)) = locations().find(|(_, l)| {
        l.folder.as_deref() == reference.folder.as_deref() && l.relative_path.ends_with(&format!("/{wanted}"))
    }) {
        return Some((r, "same folder and path"));
    }
    if let Some((r, _)) = locations().find(|(_, l)| l.file_name() == file_name) {
        return Some((r, "same file name"));
    }
    locations()
        .find(|(_, l)| l.file_name().eq_ignore_ascii_case(&file_name))
        .map(|(r, _)| (r, "same file name (ignoring case)"))
}

/// The manifest pin of an indexed model, keyed by its blake3.
fn pin(record: &ModelRecord, reference: &ModelReference) -> CommandResult<(ModelHash, ModelEntry)> {
    let mut sources: Vec<String> = record.sources.iter().map(|s| s.url.clone()).collect();
    if let Some(url) = &reference.url
        && !sources.contains(url)
    {
        sources.push(url.clone());
    }
    let invalid = |e| CommandError::failed(format!("the model index holds an invalid hash: {e}"));
    let hash = ModelHash::Blake3(record.blake3.parse().map_err(invalid)?);
    let entry = ModelEntry {
        name: Some(reference.relative_path.clone()),
        relative_path: Some(match &reference.folder {
            Some(folder) => format!("{folder}/{}", reference.relative_path),
            None => reference.relative_path.clone(),
        }),
        folder: reference.folder.clone(),
        criticality: Some(reference.criticality),
        size: Some(record.size),
        sha256: record
            .sha256
            .as_deref()
            .map(str::parse)
            .transpose()
            .map_err(invalid)?,
        sources: sources.into_iter().map(|url| ModelSource { url }).collect(),
        ..ModelEntry::default()
    };
    Ok((hash, entry))
}

fn print_report(ctx: &Context, env: &Environment, report: &ResolveReport) {
    if ctx.printer.json_mode() {
        ctx.printer.json(report);
        return;
    }
    ctx.printer
        .data(format!("Workflow `{}` in `{}`", report.workflow, env.name));
    for n in &report.nodes {
        let state = if n.installed { "installed" } else { "missing" };
        ctx.printer.data(format!(
            "  node  {}  → {} ({state}; {})",
            n.node_type,
            n.package.as_deref().unwrap_or("?"),
            n.why
        ));
    }
    for m in &report.models {
        let state = m
            .blake3
            .as_deref()
            .map_or_else(|| "unresolved".to_owned(), |b| b[..16.min(b.len())].to_owned());
        ctx.printer.data(format!(
            "  model {}  [{}] {state} ({})",
            m.name,
            m.folder.as_deref().unwrap_or("?"),
            m.how
        ));
    }
}

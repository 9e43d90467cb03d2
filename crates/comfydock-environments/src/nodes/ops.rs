//! `node add / remove / update / list / info / search / disable / enable` as transactions.
//!
//! Order of every change: fetch sources into the workspace cache (the environment is untouched),
//! edit the manifest and re-lock under a [`FileTransaction`], check torch did not move, then touch
//! `custom_nodes` and sync the venv. Any failure puts `pyproject.toml` and `uv.lock` back byte for
//! byte, removes folders this call created, and restores folders it moved aside.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::NodeContext;
use super::error::NodeError;
use super::index::{Claim, ClaimSource, normalize_repo_url};
use super::install::{self, InstalledMarker};
use super::registry::{Freshness, RegistryNode};
use super::resolution;
use super::spec::{NodeSpec, key_for, repo_name};
use crate::dependency_groups as layout;
use crate::environment::{self, EnvError, SyncMode};
use crate::manifest::node_entry::{self as entry, NodeEntry, NodeSource};
use crate::manifest::{FileTransaction, Manifest};
use crate::requirements_txt::{self, NodeRequirements};
use crate::resolver_failure::ResolverOutput;
use crate::settings::Key;

/// What happened to a node's `install.py`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InstallScript {
    None,
    NotRun,
    Ran,
}

/// One node added or updated.
#[derive(Debug, Clone, Serialize)]
pub struct ChangedNode {
    pub entry: NodeEntry,
    /// What it was before (`update`).
    pub previous: Option<NodeEntry>,
    pub requirements: Vec<String>,
    pub torch_dropped: Vec<String>,
    pub skipped: Vec<String>,
    pub install_script: InstallScript,
    /// The archive or commit came from the workspace cache.
    pub from_cache: bool,
}

/// The result of `add` or `update`.
#[derive(Debug, Clone, Serialize)]
pub struct ChangeReport {
    pub nodes: Vec<ChangedNode>,
    /// Nodes `update` found already current.
    pub unchanged: Vec<String>,
    /// Registry answers came from the cache because the registry was unreachable.
    pub offline: bool,
}

/// A node ready to be written: entry, requirements, and whether it came from the cache.
struct Prepared {
    entry: NodeEntry,
    requirements: NodeRequirements,
    from_cache: bool,
}

/// Add nodes (all or nothing).
pub fn add(
    ctx: &NodeContext<'_>,
    specs: &[NodeSpec],
    run_install_scripts: bool,
) -> Result<ChangeReport, NodeError> {
    let manifest = ctx.env.manifest()?;
    let existing = entry::read_all(&manifest);
    let client = ctx.registry()?;
    let mut prepared: Vec<Prepared> = Vec::new();
    for spec in specs {
        let p = prepare(ctx, &client, spec, false)?;
        if existing.iter().any(|e| e.key == p.entry.key)
            || prepared.iter().any(|q| q.entry.key == p.entry.key)
        {
            return Err(NodeError::AlreadyAdded {
                key: p.entry.key,
                env: ctx.env.name.clone(),
            });
        }
        let group = entry::normalize_group_name(&p.entry.group());
        if manifest
            .dependency_groups()
            .iter()
            .any(|(g, _)| entry::normalize_group_name(g) == group)
        {
            return Err(NodeError::GroupTaken {
                group: p.entry.group(),
                key: p.entry.key,
                env: ctx.env.name.clone(),
            });
        }
        let dir = install::node_dir(ctx.env, &p.entry);
        if fs_err::symlink_metadata(&dir).is_ok() && !install::matches(ctx.env, &p.entry, &dir) {
            return Err(NodeError::FolderExists {
                path: dir,
                key: p.entry.key,
            });
        }
        prepared.push(p);
    }
    apply_changes(ctx, &prepared, &[], SyncMode::Inexact)?;
    let nodes = finish(ctx, Some(&client), prepared, run_install_scripts, &[])?;
    Ok(ChangeReport {
        nodes,
        unchanged: Vec::new(),
        offline: client.offline(),
    })
}

/// Move nodes to the newest registry version or the newest commit of their ref.
pub fn update(ctx: &NodeContext<'_>, names: &[String], all: bool) -> Result<ChangeReport, NodeError> {
    let manifest = ctx.env.manifest()?;
    let existing = entry::read_all(&manifest);
    let targets: Vec<NodeEntry> = if all {
        existing
            .iter()
            .filter(|e| e.source != NodeSource::Dev)
            .cloned()
            .collect()
    } else {
        names
            .iter()
            .map(|n| find(ctx, &existing, n))
            .collect::<Result<_, _>>()?
    };
    let client = ctx.registry()?;
    let mut prepared = Vec::new();
    let mut previous = Vec::new();
    let mut unchanged = Vec::new();
    for old in targets {
        let spec = match old.source {
            NodeSource::Registry => NodeSpec::Registry {
                id: old.key.clone(),
                version: None,
            },
            NodeSource::Git => NodeSpec::Git {
                url: old.url.clone().unwrap_or_default(),
                reference: old.reference.clone(),
            },
            NodeSource::Dev => {
                unchanged.push(old.key.clone());
                continue;
            }
        };
        let mut p = prepare(ctx, &client, &spec, true)?;
        p.entry.key.clone_from(&old.key);
        p.entry.name.clone_from(&old.name);
        p.entry.enabled = old.enabled;
        let same =
            p.entry.version == old.version && p.entry.commit == old.commit && p.entry.sha256 == old.sha256;
        if same {
            unchanged.push(old.key.clone());
        } else {
            previous.push(old);
            prepared.push(p);
        }
    }
    if prepared.is_empty() {
        return Ok(ChangeReport {
            nodes: Vec::new(),
            unchanged,
            offline: client.offline(),
        });
    }
    apply_changes(ctx, &prepared, &previous, SyncMode::Inexact)?;
    let nodes = finish(ctx, Some(&client), prepared, false, &previous)?;
    Ok(ChangeReport {
        nodes,
        unchanged,
        offline: client.offline(),
    })
}

/// Remove nodes: their entries, groups and folders (dev folders are only unlinked), then re-lock
/// and sync exactly so their packages go too.
pub fn remove(ctx: &NodeContext<'_>, names: &[String]) -> Result<Vec<NodeEntry>, NodeError> {
    let manifest = ctx.env.manifest()?;
    let existing = entry::read_all(&manifest);
    let targets: Vec<NodeEntry> = names
        .iter()
        .map(|n| find(ctx, &existing, n))
        .collect::<Result<_, _>>()?;
    apply_changes(ctx, &[], &targets, SyncMode::Exact)?;
    if let Ok(mut index) = ctx.index() {
        for t in &targets {
            let _ = index.record(&t.key, ClaimSource::Installed, None, &[]);
        }
    }
    Ok(targets)
}

/// Disable or enable a node: its folder moves to or from `custom_nodes/.disabled` and the manifest
/// records `enabled = false`. Its packages stay locked and installed.
pub fn set_enabled(ctx: &NodeContext<'_>, name: &str, enabled: bool) -> Result<(NodeEntry, bool), NodeError> {
    let mut manifest = ctx.env.manifest()?;
    let existing = entry::read_all(&manifest);
    let mut target = find(ctx, &existing, name)?;
    if target.enabled == enabled {
        return Ok((target, false));
    }
    let was_synced = is_synced(ctx);
    let from = install::node_dir(ctx.env, &target);
    target.enabled = enabled;
    let to = install::node_dir(ctx.env, &target);
    let mut tx = FileTransaction::new();
    tx.track(&ctx.env.manifest_path())?;
    entry::write_entry(&mut manifest, &target);
    manifest.save()?;
    if fs_err::symlink_metadata(&from).is_ok() {
        fs_err::create_dir_all(to.parent().expect("has parent"))?;
        fs_err::rename(&from, &to)?;
    }
    tx.commit();
    if was_synced {
        stamp(ctx)?;
    }
    Ok((target, true))
}

/// A node entry by key or folder name, case-insensitively.
fn find(ctx: &NodeContext<'_>, entries: &[NodeEntry], name: &str) -> Result<NodeEntry, NodeError> {
    let wanted = name.to_ascii_lowercase();
    entries
        .iter()
        .find(|e| e.key == wanted || e.name.eq_ignore_ascii_case(name) || e.key == key_for(name))
        .cloned()
        .ok_or_else(|| NodeError::NotAdded {
            key: name.to_owned(),
            env: ctx.env.name.clone(),
            known: entries.iter().map(|e| e.key.clone()).collect(),
        })
}

/// Resolve a spec to an entry and its requirements, fetching into the workspace cache. The
/// entry's names (which become folders) are plain names.
fn prepare(
    ctx: &NodeContext<'_>,
    client: &super::registry::RegistryClient,
    spec: &NodeSpec,
    refresh: bool,
) -> Result<Prepared, NodeError> {
    if let NodeSpec::Git { url, reference } = spec {
        comfydock_foundation::git::check_url(url).map_err(comfydock_foundation::git::GitError::from)?;
        // The URL is stored in the manifest and travels in bundles: no credentials in it.
        if let Some(what) = comfydock_foundation::redact::credentials_in(url) {
            return Err(NodeError::CredentialsInUrl {
                url: comfydock_foundation::redact::redact_url(url),
                what,
            });
        }
        if let Some(reference) = reference {
            comfydock_foundation::git::check_revision(reference)
                .map_err(comfydock_foundation::git::GitError::from)?;
        }
        comfydock_foundation::path_part::check(&repo_name(url))?;
    }
    let prepared = prepare_unchecked(ctx, client, spec, refresh)?;
    prepared.entry.check_names()?;
    Ok(prepared)
}

fn prepare_unchecked(
    ctx: &NodeContext<'_>,
    client: &super::registry::RegistryClient,
    spec: &NodeSpec,
    refresh: bool,
) -> Result<Prepared, NodeError> {
    match spec {
        NodeSpec::Registry { id, version } => {
            let node = client.node(id, Freshness::Revalidate)?;
            let id = node.id.to_ascii_lowercase();
            let picked = client.pick_version(&id, version.as_deref())?;
            let archives = ctx.archives();
            let cached = archives.is_cached(&id, &picked.version);
            ctx.reporter.status(
                if cached { "Using" } else { "Downloading" },
                &format!("{id} {}{}", picked.version, if cached { " (cached)" } else { "" }),
            );
            let archive = archives.fetch(
                client,
                &id,
                &picked.version,
                &picked.download_url,
                None,
                ctx.reporter,
            )?;
            let store = archives.extract(&archive)?;
            let requirements = requirements_txt::collect(&|p| fs_err::read_to_string(store.join(p)).ok());
            let mut e = NodeEntry::new(&id, &id, NodeSource::Registry);
            e.version = Some(picked.version);
            e.url = Some(picked.download_url);
            e.sha256 = Some(archive.sha256);
            e.size = Some(archive.size);
            e.repository = node.repository;
            Ok(Prepared {
                entry: e,
                requirements,
                from_cache: !archive.downloaded,
            })
        }
        NodeSpec::Git { url, reference } => {
            let mirror = ctx.mirror(url);
            let cached = mirror.path().join("HEAD").is_file();
            ctx.reporter.status(
                if cached { "Using" } else { "Cloning" },
                &format!(
                    "{}{}",
                    comfydock_foundation::redact::RedactedUrl(url),
                    if cached { " (cached mirror)" } else { "" }
                ),
            );
            let commit = mirror.resolve(reference.as_deref(), refresh, ctx.reporter)?;
            let requirements = requirements_txt::collect(&|p| mirror.read_file(&commit, p));
            let name = repo_name(url);
            let mut e = NodeEntry::new(&key_for(&name), &name, NodeSource::Git);
            e.url = Some(url.clone());
            e.reference.clone_from(reference);
            e.commit = Some(commit);
            Ok(Prepared {
                entry: e,
                requirements,
                from_cache: cached,
            })
        }
        NodeSpec::Dev { path } => {
            let absolute = std::path::absolute(path)?;
            if !absolute.is_dir() {
                return Err(NodeError::DevPathMissing(absolute));
            }
            let canonical = fs_err::canonicalize(&absolute)?;
            let name = canonical
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let custom_nodes = fs_err::canonicalize(install::custom_nodes(ctx.env)).ok();
            let inside = custom_nodes.is_some_and(|c| canonical.parent() == Some(c.as_path()));
            let mut e = NodeEntry::new(&key_for(&name), &name, NodeSource::Dev);
            e.path = Some(if inside {
                format!("custom_nodes/{name}")
            } else {
                canonical.to_string_lossy().into_owned()
            });
            let requirements = requirements_txt::collect(&|p| fs_err::read_to_string(canonical.join(p)).ok());
            Ok(Prepared {
                entry: e,
                requirements,
                from_cache: false,
            })
        }
    }
}

/// Write `add` (new or replacing entries) and `drop` (entries to remove or replace), re-lock,
/// swap folders, sync. Returns the folders installed.
fn apply_changes(
    ctx: &NodeContext<'_>,
    add: &[Prepared],
    drop: &[NodeEntry],
    mode: SyncMode,
) -> Result<Vec<PathBuf>, NodeError> {
    let env = ctx.env;
    let mut manifest = env.manifest()?;
    let torch_before = resolution::torch_versions(&env.lock_path());
    let mut tx = FileTransaction::new();
    tx.track(&env.manifest_path())?;
    tx.track(&env.lock_path())?;
    for old in drop {
        entry::remove(&mut manifest, old);
    }
    for p in add {
        entry::write(&mut manifest, &p.entry, &p.requirements.requirements);
    }
    manifest.save()?;

    ctx.reporter.phase("Resolving Python dependencies");
    if let Err(err) = environment::uv_lock(ctx.tools, env, ctx.reporter) {
        let resolver = err.uv_stderr().map(str::to_owned);
        tx.rollback()?;
        return Err(lock_error(ctx, &manifest, add, err, resolver));
    }
    let torch_after = resolution::torch_versions(&env.lock_path());
    if torch_after != torch_before {
        let (package, from, to) =
            resolution::first_torch_change(&torch_before, &torch_after).unwrap_or_default();
        tx.rollback()?;
        return Err(NodeError::TorchChanged {
            key: add
                .iter()
                .map(|p| p.entry.key.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            package,
            from,
            to,
        });
    }

    // The lock is good: now change the environment.
    let trash = install::custom_nodes(env).join(".comfydock-trash");
    let mut moved: Vec<(PathBuf, PathBuf)> = Vec::new();
    let mut installed: Vec<PathBuf> = Vec::new();
    let result = (|| {
        for old in drop {
            let dir = install::node_dir(env, old);
            let keep_dev_folder = old.source == NodeSource::Dev
                && fs_err::symlink_metadata(&dir).is_ok_and(|m| !m.file_type().is_symlink());
            if keep_dev_folder {
                continue;
            }
            if let Some(aside) = install::move_aside(&dir, &trash)? {
                moved.push((dir, aside));
            }
        }
        for p in add {
            let dir = install::node_dir(env, &p.entry);
            if fs_err::symlink_metadata(&dir).is_ok() {
                continue; // a dev folder already in place
            }
            ctx.reporter.status(
                "Installing",
                &format!("node `{}` {}", p.entry.key, p.entry.pinned()),
            );
            installed.push(install::install(ctx, &p.entry)?);
        }
        ctx.reporter.phase("Installing Python packages");
        environment::uv_sync(ctx.tools, env, &env.backend(), mode, ctx.reporter)?;
        stamp(ctx)?;
        Ok::<(), NodeError>(())
    })();
    match result {
        Ok(()) => {
            tx.commit();
            let _ = fs_err::remove_dir_all(&trash);
            for old in drop.iter().filter(|o| o.source == NodeSource::Dev) {
                if !add.iter().any(|p| p.entry.name == old.name) {
                    install::forget_dev_link(env, &old.name)?;
                }
            }
            Ok(installed)
        }
        Err(err) => {
            for dir in &installed {
                let _ = install::uninstall(dir);
            }
            for (dir, aside) in &moved {
                let _ = fs_err::rename(aside, dir);
            }
            let _ = fs_err::remove_dir_all(&trash);
            tx.rollback()?;
            let _ = environment::uv_sync(ctx.tools, env, &env.backend(), SyncMode::Inexact, ctx.reporter);
            Err(err)
        }
    }
}

/// Turn a failed `uv lock` into a conflict naming both sides, when uv says there is no solution.
fn lock_error(
    ctx: &NodeContext<'_>,
    manifest: &Manifest,
    add: &[Prepared],
    err: EnvError,
    stderr: Option<String>,
) -> NodeError {
    let Some(stderr) = stderr.filter(|s| s.contains("No solution found")) else {
        return err.into();
    };
    let entries = entry::read_all(manifest);
    let origin_of_group = |group: &str| layout::group_origin(manifest, &entries, group);
    let mut sides =
        crate::resolver_failure::conflict_sides(&stderr, &origin_of_group, layout::project_origin(manifest));
    crate::resolver_failure::add_constraint_sides(&mut sides, &stderr, &manifest.constraints());
    let resolver = ResolverOutput::from_uv_stderr(&stderr);
    if sides.is_empty() {
        NodeError::Unresolvable {
            nodes: add
                .iter()
                .map(|p| format!("`{}`", p.entry.key))
                .collect::<Vec<_>>()
                .join(", "),
            env: ctx.env.name.clone(),
            resolver,
        }
    } else {
        NodeError::Conflict {
            sides,
            env: ctx.env.name.clone(),
            resolver,
        }
    }
}

/// After a successful change: index the new folders, handle install scripts, build the report.
fn finish(
    ctx: &NodeContext<'_>,
    client: Option<&super::registry::RegistryClient>,
    prepared: Vec<Prepared>,
    run_install_scripts: bool,
    previous: &[NodeEntry],
) -> Result<Vec<ChangedNode>, NodeError> {
    let mut index = ctx.index().ok();
    let mut out = Vec::new();
    for p in prepared {
        let dir = install::node_dir(ctx.env, &p.entry);
        if let Some(index) = index.as_mut() {
            let classes = super::index::scan_node_folder(&dir);
            let version = p.entry.version.clone().or_else(|| p.entry.commit.clone());
            let _ = index.record(&p.entry.key, ClaimSource::Installed, version.as_deref(), &classes);
            if p.entry.source == NodeSource::Registry
                && let (Some(version), Some(client)) = (&p.entry.version, client)
                && let Ok(registered) = client.comfy_nodes(&p.entry.key, version)
            {
                let _ = index.record(&p.entry.key, ClaimSource::Registry, Some(version), &registered);
            }
        }
        let install_script = if !p.requirements.has_install_script {
            InstallScript::None
        } else if run_install_scripts {
            ctx.reporter
                .status("Running", &format!("install.py of `{}`", p.entry.key));
            let mut cmd = std::process::Command::new(ctx.env.python());
            cmd.arg("install.py").current_dir(&dir);
            comfydock_foundation::subprocess::run_checked(&mut cmd).map_err(|source| {
                NodeError::InstallScript {
                    key: p.entry.key.clone(),
                    source: Box::new(source),
                }
            })?;
            InstallScript::Ran
        } else {
            ctx.reporter.warning(&format!(
                "node `{}` has an install.py; it was NOT run (it is arbitrary code). Run it with `comfydock -e {} node add --run-install-scripts ...` if you trust it",
                p.entry.key, ctx.env.name
            ));
            InstallScript::NotRun
        };
        out.push(ChangedNode {
            previous: previous.iter().find(|o| o.key == p.entry.key).cloned(),
            entry: p.entry,
            requirements: p.requirements.requirements,
            torch_dropped: p.requirements.torch_dropped,
            skipped: p.requirements.skipped,
            install_script,
            from_cache: p.from_cache,
        });
    }
    Ok(out)
}

/// Whether the venv was in sync with `.cec` (the last sync's stamp matches).
fn is_synced(ctx: &NodeContext<'_>) -> bool {
    let state = ctx.env.state();
    state.sync_stamp.is_some() && state.sync_stamp == ctx.env.fingerprint().ok()
}

/// Record that the venv now matches `.cec`.
fn stamp(ctx: &NodeContext<'_>) -> Result<(), NodeError> {
    let mut state = ctx.env.state();
    state.sync_stamp = Some(ctx.env.fingerprint()?);
    ctx.env.save_state(&state)?;
    Ok(())
}

/// A node's folder compared with its manifest entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeState {
    Installed,
    Missing,
    Disabled,
    /// The folder differs from the manifest (another version, commit or source).
    Wrong,
}

impl std::fmt::Display for NodeState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Installed => "installed",
            Self::Missing => "missing",
            Self::Disabled => "disabled",
            Self::Wrong => "wrong",
        })
    }
}

/// A node as `node list` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ListedNode {
    #[serde(flatten)]
    pub entry: NodeEntry,
    pub state: NodeState,
    pub requirements: Vec<String>,
}

/// Every node of the environment with its state on disk.
pub fn list(env: &environment::Environment) -> Result<Vec<ListedNode>, NodeError> {
    let manifest = env.manifest()?;
    let groups = manifest.dependency_groups();
    Ok(entry::read_all(&manifest)
        .into_iter()
        .map(|e| {
            let dir = install::node_dir(env, &e);
            let state = if fs_err::symlink_metadata(&dir).is_err() {
                NodeState::Missing
            } else if !install::matches(env, &e, &dir) {
                NodeState::Wrong
            } else if e.enabled {
                NodeState::Installed
            } else {
                NodeState::Disabled
            };
            let requirements = groups
                .iter()
                .find(|(g, _)| *g == e.group())
                .map(|(_, r)| r.clone())
                .unwrap_or_default();
            ListedNode {
                entry: e,
                state,
                requirements,
            }
        })
        .collect())
}

/// What `node info` shows.
#[derive(Debug, Clone, Serialize)]
pub struct NodeInfo {
    pub node: Option<ListedNode>,
    pub registry: Option<RegistryNode>,
    pub versions: Vec<String>,
    pub classes: Vec<Claim>,
    pub offline: bool,
}

/// A node of the environment, or (if not added) a registry node by id.
pub fn info(ctx: &NodeContext<'_>, name: &str) -> Result<NodeInfo, NodeError> {
    let listed = list(ctx.env)?;
    let node = listed
        .into_iter()
        .find(|n| n.entry.key == name.to_ascii_lowercase() || n.entry.name.eq_ignore_ascii_case(name));
    let client = ctx.registry()?;
    let registry_id = match &node {
        Some(n) if n.entry.source == NodeSource::Registry => Some(n.entry.key.clone()),
        Some(_) => None,
        None => Some(name.to_ascii_lowercase()),
    };
    let mut registry = None;
    let mut versions = Vec::new();
    if let Some(id) = &registry_id {
        match client.node(id, Freshness::Cached) {
            Ok(n) => {
                registry = Some(n);
                versions = client
                    .versions(id, Freshness::Cached)
                    .map(|v| v.into_iter().map(|v| v.version).collect())
                    .unwrap_or_default();
            }
            Err(e) if node.is_none() => return Err(e),
            Err(e) => tracing::debug!("registry lookup of {id} failed: {e}"),
        }
    }
    let key = node
        .as_ref()
        .map_or_else(|| name.to_ascii_lowercase(), |n| n.entry.key.clone());
    let classes = ctx.index().and_then(|i| i.classes_of(&key)).unwrap_or_default();
    Ok(NodeInfo {
        node,
        registry,
        versions,
        classes,
        offline: client.offline(),
    })
}

/// `node search` results.
#[derive(Debug, Clone, Serialize)]
pub struct SearchResults {
    pub registry: Vec<RegistryNode>,
    /// Node classes matching the query, with every package that claims them.
    pub classes: Vec<Claim>,
    /// Why the registry could not be asked, if it could not.
    pub registry_error: Option<String>,
    pub offline: bool,
}

/// Search the registry and the node index (refreshing Manager's class map from `manager_data.url`).
pub fn search(ctx: &NodeContext<'_>, query: &str, limit: usize) -> Result<SearchResults, NodeError> {
    let client = ctx.registry()?;
    let (registry, registry_error) = match client.search(query, limit) {
        Ok(r) => (r, None),
        Err(e) => (Vec::new(), Some(e.to_string())),
    };
    let mut index = ctx.index()?;
    let known: Vec<(String, String)> = registry
        .iter()
        .filter_map(|n| Some((n.repository.clone()?, n.id.clone())))
        .collect();
    import_manager_map(ctx, &client, &mut index, &known)?;
    record_registry_classes(&client, &mut index, &registry)?;
    let classes = index.search(query, limit * 5)?;
    Ok(SearchResults {
        registry,
        classes,
        registry_error,
        offline: client.offline(),
    })
}

/// Record the node classes each registry package's latest version lists (best effort: a package
/// whose list cannot be read is skipped).
fn record_registry_classes(
    client: &super::registry::RegistryClient,
    index: &mut super::index::NodeIndex,
    packages: &[RegistryNode],
) -> Result<(), NodeError> {
    for node in packages {
        if let Some(version) = &node.latest_version
            && let Ok(classes) = client.comfy_nodes(&node.id, version)
        {
            index.record(&node.id, ClaimSource::Registry, Some(version), &classes)?;
        }
    }
    Ok(())
}

/// Ask the registry which packages provide `class_name` when no index source claims it: search
/// the registry with the class name and record the classes of every package found. Returns the
/// claims on the class afterwards (empty when the registry knows none, or cannot be reached).
pub fn search_registry_for_class(ctx: &NodeContext<'_>, class_name: &str) -> Result<Vec<Claim>, NodeError> {
    let client = ctx.registry()?;
    let mut index = ctx.index()?;
    let found = client.search(class_name, REGISTRY_CLASS_SEARCH_LIMIT)?;
    record_registry_classes(&client, &mut index, &found)?;
    index.lookup(class_name)
}

/// How many registry packages a class-name search inspects.
const REGISTRY_CLASS_SEARCH_LIMIT: usize = 10;

/// Refresh the node index for this environment: rescan its installed nodes and import
/// ComfyUI-Manager's class map (cached for [`super::registry::CACHE_TTL`]). Returns the number of
/// class claims now recorded from installed nodes. For workflow resolution before a lookup.
pub fn refresh_index(ctx: &NodeContext<'_>) -> Result<usize, NodeError> {
    let client = ctx.registry()?;
    let mut index = ctx.index()?;
    let mut count = 0;
    for e in entry::read_all(&ctx.env.manifest()?) {
        let classes = super::index::scan_node_folder(&install::node_dir(ctx.env, &e));
        let version = e.version.clone().or_else(|| e.commit.clone());
        index.record(&e.key, ClaimSource::Installed, version.as_deref(), &classes)?;
        count += classes.len();
    }
    import_manager_map(ctx, &client, &mut index, &[])?;
    Ok(count)
}

/// Import `extension-node-map.json` from `manager_data.url`; repositories of this environment's
/// nodes and of `known` (repository, package) pairs are recorded under their package.
fn import_manager_map(
    ctx: &NodeContext<'_>,
    client: &super::registry::RegistryClient,
    index: &mut super::index::NodeIndex,
    known: &[(String, String)],
) -> Result<(), NodeError> {
    let mut known_repos: Vec<(String, String)> = known
        .iter()
        .map(|(repo, package)| (normalize_repo_url(repo), package.clone()))
        .collect();
    if let Ok(manifest) = ctx.env.manifest() {
        for e in entry::read_all(&manifest) {
            let repo = match e.source {
                NodeSource::Registry => e.repository.clone(),
                NodeSource::Git => e.url.clone(),
                NodeSource::Dev => None,
            };
            if let Some(repo) = repo {
                known_repos.push((normalize_repo_url(&repo), e.key.clone()));
            }
        }
    }
    let Some(base) = ctx.settings.value(Key::ManagerDataUrl) else {
        return Ok(());
    };
    let base = base.trim_end_matches('/');
    // Manager's pack list names the registry id of packs published there (`id`), so their
    // classes are claimed by the id `node add` installs, not by a bare repository URL.
    let list_url = format!("{base}/custom-node-list.json");
    match client.get_json(&list_url, Freshness::Cached) {
        Ok(Some(list)) => known_repos.extend(registry_ids_of_repos(&list)),
        Ok(None) => {}
        Err(e) => ctx.reporter.warning(&format!(
            "could not read {}: {e}",
            comfydock_foundation::redact::RedactedUrl(&list_url)
        )),
    }
    let package_of_repo = |repo: &str| {
        let wanted = normalize_repo_url(repo);
        known_repos
            .iter()
            .find(|(r, _)| *r == wanted)
            .map(|(_, p)| p.clone())
    };
    let url = format!("{base}/extension-node-map.json");
    match client.get_json(&url, Freshness::Cached) {
        Ok(Some(map)) => {
            index.import_extension_map(&map, &package_of_repo)?;
        }
        Ok(None) => {}
        Err(e) => ctx.reporter.warning(&format!(
            "could not read {}: {e}",
            comfydock_foundation::redact::RedactedUrl(&url)
        )),
    }
    Ok(())
}

/// `(normalized repository URL, registry id)` for each entry of ComfyUI-Manager's
/// `custom-node-list.json` that names a registry id (`id`) and a repository (`reference`).
fn registry_ids_of_repos(list: &serde_json::Value) -> Vec<(String, String)> {
    list["custom_nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|pack| {
            let id = pack["id"].as_str()?.trim();
            let repo = pack["reference"].as_str()?;
            let valid = !id.is_empty()
                && id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
            valid.then(|| (normalize_repo_url(repo), id.to_ascii_lowercase()))
        })
        .collect()
}

/// The installed marker of a node folder (for tools that inspect `custom_nodes`).
pub fn installed_marker(dir: &Path) -> Option<InstalledMarker> {
    InstalledMarker::read(dir)
}

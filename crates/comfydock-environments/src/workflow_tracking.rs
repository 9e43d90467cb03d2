//! Workflow tracking (seed 001): one-way, from ComfyUI's user workflows folder into `.cec`.
//!
//! `track` only records the name in `[tool.comfydock.workflows.<name>]`; `commit` copies the tracked
//! files into `.cec/workflows/`; comfydock never writes into ComfyUI's folder except on `restore`.
//! Names are paths relative to the workflows folder without `.json` (`portraits/flux`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::environment::{EnvError, Environment};
use crate::manifest::Manifest;
use comfydock_foundation::Hinted;
use comfydock_foundation::atomic_file::write_atomic;
use comfydock_foundation::git::Git;

#[derive(Debug, thiserror::Error)]
pub enum TrackingError {
    #[error("No workflow `{name}` in `{dir}`")]
    NotFound {
        name: String,
        dir: PathBuf,
        known: Vec<String>,
    },
    #[error("Workflow `{0}` is not tracked")]
    NotTracked(String),
    #[error(
        "Workflow `{name}` in ComfyUI has changes that are not committed; restoring would overwrite them"
    )]
    WouldOverwrite { name: String, env: String },
    #[error("Invalid workflow name `{0}`: not a plain portable name")]
    InvalidName(String),
    /// Tracked names in the manifest that cannot become files on every system; `commit` refuses
    /// rather than drop their copies.
    #[error(
        "Tracked workflow name(s) {} cannot be committed: not plain portable names",
        .names.iter().map(|n| format!("`{}`", comfydock_foundation::display_text::truncate(n, 80))).collect::<Vec<_>>().join(", ")
    )]
    NonPortableTracked { env: String, names: Vec<String> },
    #[error("`.comfydockignore` is invalid")]
    Ignore(#[source] ignore::Error),
    #[error(transparent)]
    Env(#[from] EnvError),
    #[error(transparent)]
    Manifest(#[from] crate::manifest::ManifestError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl Hinted for TrackingError {
    fn hint(&self) -> Option<String> {
        match self {
            Self::NotFound { known, .. } if !known.is_empty() => Some(format!(
                "workflows found: {}; see `comfydock workflow list`",
                known
                    .iter()
                    .take(5)
                    .map(|k| format!("`{k}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            Self::NotFound { .. } => {
                Some("save the workflow in ComfyUI first, then run `comfydock workflow list`".into())
            }
            Self::NotTracked(name) => Some(format!("track it with `comfydock workflow track {name}`")),
            Self::WouldOverwrite { name, env } => Some(format!(
                "see them with `comfydock -e {env} workflow diff {name}` and keep them with `comfydock -e {env} commit -m MESSAGE`, or pass `--force` to restore anyway (the current file is moved to the workspace trash)"
            )),
            Self::InvalidName(name) => Some(format!(
                "names must be plain (no `:`, `\\`, `..`, control characters or `<>\"|?*`); rename the workflow in ComfyUI, e.g. to `{}`, and track that name",
                comfydock_foundation::path_part::suggest_relative(name)
            )),
            Self::NonPortableTracked { env, names } => names.first().map(|name| {
                format!(
                    "rename the workflow in ComfyUI (e.g. to `{}`), run `comfydock -e {env} workflow track {}`, then `comfydock -e {env} workflow untrack '{name}'`",
                    comfydock_foundation::path_part::suggest_relative(name),
                    comfydock_foundation::path_part::suggest_relative(name),
                )
            }),
            Self::Env(e) => e.hint(),
            Self::Manifest(e) => e.hint(),
            _ => None,
        }
    }
}

/// Where ComfyUI saves workflows for the default user (`run` passes `--user-directory ComfyUI/user`).
pub fn comfyui_workflows_dir(env: &Environment) -> PathBuf {
    env.comfyui().join("user").join("default").join("workflows")
}

/// Where `commit` keeps tracked copies.
pub fn cec_workflows_dir(env: &Environment) -> PathBuf {
    env.cec().join("workflows")
}

fn file_for(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.json"))
}

/// Workflow names become paths: plain names separated by `/` ([`comfydock_foundation::path_part`]).
fn check_name(name: &str) -> Result<(), TrackingError> {
    comfydock_foundation::path_part::check_relative(name)
        .map_err(|_| TrackingError::InvalidName(name.to_owned()))
}

/// `portraits/flux.json` → `portraits/flux`; also accepts names given with `.json`. A `\\`
/// separates folders only on Windows; elsewhere it is part of a (non-portable) name, so a file
/// named `a\\b.json` is never tracked as `a/b`.
pub fn normalize_name(name: &str) -> String {
    let name = if cfg!(windows) {
        name.replace('\\', "/")
    } else {
        name.to_owned()
    };
    name.trim_end_matches(".json").to_owned()
}

/// Workflow names under `dir` (recursive), sorted.
fn workflow_names(dir: &Path) -> std::io::Result<Vec<String>> {
    let mut out = Vec::new();
    if dir.is_dir() {
        collect(dir, dir, &mut out)?;
    }
    out.sort();
    Ok(out)
}

fn collect(base: &Path, dir: &Path, out: &mut Vec<String>) -> std::io::Result<()> {
    for entry in fs_err::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            collect(base, &path, out)?;
        } else if path.extension().is_some_and(|e| e == "json") {
            // Folder parts joined with `/`; a `\\` inside a Unix file name stays in the name.
            let rel = path
                .strip_prefix(base)
                .unwrap_or(&path)
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/");
            out.push(rel.trim_end_matches(".json").to_owned());
        }
    }
    Ok(())
}

/// Names matched by `.cec/.comfydockignore` (gitignore syntax) are left out of `--all` and `list`.
fn ignore_matcher(env: &Environment) -> Result<ignore::gitignore::Gitignore, TrackingError> {
    let path = env.cec().join(".comfydockignore");
    let mut builder = ignore::gitignore::GitignoreBuilder::new(cec_workflows_dir(env));
    if path.is_file()
        && let Some(err) = builder.add(&path)
    {
        return Err(TrackingError::Ignore(err));
    }
    builder.build().map_err(TrackingError::Ignore)
}

fn is_ignored(matcher: &ignore::gitignore::Gitignore, name: &str) -> bool {
    matcher
        .matched_path_or_any_parents(format!("{name}.json"), false)
        .is_ignore()
}

/// Tracked workflow names from the manifest. Names that are not plain relative names (they
/// would become paths outside the workflows folders) are left out; see [`unsafe_tracked`].
pub fn tracked(manifest: &Manifest) -> BTreeSet<String> {
    let mut names = tracked_as_written(manifest);
    names.retain(|n| check_name(n).is_ok());
    names
}

/// Tracked workflows whose committed file uses custom node types or models while their entry
/// records no resolution at all (`workflow resolve` was never run on them): `export` refuses
/// them, since the bundle could not say what they need. Unreadable files are left to the
/// commands that read them.
pub fn never_resolved(env: &Environment, manifest: &Manifest) -> Vec<String> {
    let tool = manifest.tool();
    let builtins = crate::comfyui_builtins::builtin_nodes(env);
    let options = comfydock_workflow::AnalysisOptions {
        builtins,
        ..Default::default()
    };
    let mut out = Vec::new();
    for name in tracked(manifest) {
        let Some(entry) = tool.workflows.get(&name) else {
            continue;
        };
        let recorded = !entry.nodes.is_empty()
            || !entry.node_choices.is_empty()
            || !entry.models.is_empty()
            || !entry.unresolved_models.is_empty()
            || !entry.unresolved_nodes.is_empty();
        if recorded {
            continue;
        }
        let Ok(bytes) = fs_err::read(file_for(&cec_workflows_dir(env), &name)) else {
            continue;
        };
        let Ok(doc) = comfydock_workflow::WorkflowDocument::parse_bytes(&bytes) else {
            continue;
        };
        let Ok(analysis) = comfydock_workflow::analyze(&doc, &options) else {
            continue;
        };
        let needs_something = !analysis.models.is_empty()
            || analysis
                .node_types
                .iter()
                .any(|t| t.category == comfydock_workflow::NodeCategory::Custom);
        if needs_something {
            out.push(name);
        }
    }
    out
}

/// Tracked names in the manifest that [`tracked`] leaves out because they are unsafe; `status`
/// reports them and `commit` refuses while there are any.
pub fn unsafe_tracked(manifest: &Manifest) -> Vec<String> {
    tracked_as_written(manifest)
        .into_iter()
        .filter(|n| check_name(n).is_err())
        .collect()
}

fn tracked_as_written(manifest: &Manifest) -> BTreeSet<String> {
    manifest
        .tool()
        .workflows
        .iter()
        .filter(|(_, entry)| entry.tracked)
        .map(|(name, _)| name.clone())
        .collect()
}

/// How a workflow in ComfyUI compares with its tracked copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WorkflowState {
    /// In ComfyUI, never committed.
    New,
    /// Committed, and ComfyUI's file differs in content (view state ignored).
    Modified,
    /// Committed (or tracked) but gone from ComfyUI.
    Deleted,
    /// Same content in both places.
    Synced,
}

#[derive(Debug, Clone, Serialize)]
pub struct WorkflowEntry {
    pub name: String,
    pub tracked: bool,
    pub state: WorkflowState,
}

/// Every workflow in ComfyUI's folder plus every tracked one.
pub fn list(env: &Environment) -> Result<Vec<WorkflowEntry>, TrackingError> {
    let manifest = env.manifest()?;
    let tracked = tracked(&manifest);
    let matcher = ignore_matcher(env)?;
    let live_dir = comfyui_workflows_dir(env);
    let cec_dir = cec_workflows_dir(env);
    let mut names: BTreeSet<String> = workflow_names(&live_dir)?
        .into_iter()
        .filter(|n| !is_ignored(&matcher, n))
        .collect();
    names.extend(tracked.iter().cloned());
    names.extend(workflow_names(&cec_dir)?);
    let mut out = Vec::new();
    // Copies whose bytes differ are parsed and compared below, several at once.
    let mut differing: Vec<(usize, Vec<u8>, Vec<u8>)> = Vec::new();
    for name in names {
        let live = fs_err::read(file_for(&live_dir, &name)).ok();
        let kept = fs_err::read(file_for(&cec_dir, &name)).ok();
        let state = match (live, kept) {
            (Some(_), None) => WorkflowState::New,
            (None, _) => WorkflowState::Deleted,
            (Some(a), Some(b)) if a == b => WorkflowState::Synced,
            (Some(a), Some(b)) => {
                differing.push((out.len(), a, b));
                WorkflowState::Modified
            }
        };
        out.push(WorkflowEntry {
            tracked: tracked.contains(&name),
            name,
            state,
        });
    }
    for index in same_content_all(&differing, &env.root.join(HASH_CACHE_FILE)) {
        out[index].state = WorkflowState::Synced;
    }
    Ok(out)
}

/// Where `status` keeps the content hashes of the workflow texts it compared last, in the
/// environment's folder (machine-local, never committed).
const HASH_CACHE_FILE: &str = ".workflow-hashes.json";

/// Content hashes by the blake3 of a workflow file's bytes: a text seen before is neither parsed
/// nor hashed again, so `status` with many edited workflows stays fast from its second run on.
/// `commit` records the hashes of the `.cec` copies, so even the first `status` after workflows
/// were edited parses only the edited files.
#[derive(Debug, Default, PartialEq, serde::Deserialize, Serialize)]
struct HashCache {
    /// The [`comfydock_workflow::CONTENT_HASH_VERSION`] the hashes were made with; a cache made
    /// with another is ignored.
    version: u32,
    /// blake3 of the bytes → content hash, `None` for a text that is not a workflow: the texts
    /// `status` compared last.
    hashes: BTreeMap<String, Option<String>>,
    /// The same for the `.cec` copies as `commit` left them (kept by `status`).
    #[serde(default)]
    committed: BTreeMap<String, Option<String>>,
}

impl HashCache {
    /// The content hash of the text whose bytes' blake3 is `key`, when known.
    fn get(&self, key: &str) -> Option<&Option<String>> {
        self.hashes.get(key).or_else(|| self.committed.get(key))
    }

    /// The cache at `path`; empty when it is missing, unreadable or from another hash version.
    fn load(path: &Path) -> Self {
        fs_err::read(path)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<HashCache>(&bytes).ok())
            .filter(|cache| cache.version == comfydock_workflow::CONTENT_HASH_VERSION)
            .unwrap_or_default()
    }

    /// Replace the cache at `path` (renamed into place, never torn). Not flushed to disk: a
    /// cache lost in a crash is only made again.
    fn save(&self, path: &Path) -> std::io::Result<()> {
        use std::io::Write as _;
        let dir = path.parent().unwrap_or(Path::new("."));
        let mut temp = tempfile::Builder::new()
            .prefix(".workflow-hashes.")
            .suffix(".tmp")
            .tempfile_in(dir)?;
        temp.write_all(&serde_json::to_vec(self).expect("the cache serialises"))?;
        temp.persist(path).map_err(|err| err.error)?;
        Ok(())
    }
}

/// The indexes (first of each triple) of the pairs holding the same workflow once view state
/// is ignored. Texts whose content hash the cache at `cache` holds are not parsed; the others are
/// parsed on as many threads as there are cores (`status` with dozens of edited workflows parses
/// two documents per workflow). The cache is then rewritten with the texts of this comparison
/// only; a cache that cannot be written is left as it was.
fn same_content_all(pairs: &[(usize, Vec<u8>, Vec<u8>)], cache: &Path) -> Vec<usize> {
    if pairs.is_empty() {
        return Vec::new();
    }
    let known = HashCache::load(cache);
    let key = |bytes: &[u8]| blake3::hash(bytes).to_hex().to_string();
    let keys: Vec<(String, String)> = pairs.iter().map(|(_, a, b)| (key(a), key(b))).collect();
    let mut unknown: BTreeMap<&str, &[u8]> = BTreeMap::new();
    for ((a_key, b_key), (_, a, b)) in keys.iter().zip(pairs) {
        for (text_key, bytes) in [(a_key, a), (b_key, b)] {
            if known.get(text_key).is_none() {
                unknown.insert(text_key, bytes);
            }
        }
    }
    let unknown: Vec<(&str, &[u8])> = unknown.into_iter().collect();
    let computed = content_hashes(&unknown);
    let mut hashes = BTreeMap::new();
    for (text_key, hash) in unknown.iter().map(|(k, _)| *k).zip(computed) {
        hashes.insert(text_key.to_owned(), hash);
    }
    for (a_key, b_key) in &keys {
        for text_key in [a_key, b_key] {
            if let Some(hash) = known.get(text_key) {
                hashes.insert(text_key.clone(), hash.clone());
            }
        }
    }
    let same = pairs
        .iter()
        .zip(&keys)
        .filter(
            |(_, (a_key, b_key))| matches!((&hashes[a_key], &hashes[b_key]), (Some(a), Some(b)) if a == b),
        )
        .map(|((index, _, _), _)| *index)
        .collect();
    hashes.retain(|key, _| !known.committed.contains_key(key));
    let fresh = HashCache {
        version: comfydock_workflow::CONTENT_HASH_VERSION,
        hashes,
        committed: known.committed.clone(),
    };
    if fresh != known
        && let Err(error) = fresh.save(cache)
    {
        tracing::debug!("workflow hash cache not written: {error}");
    }
    same
}

/// The content hash of each text (`None` for one that is not a workflow), in order, computed on
/// as many threads as there are cores.
fn content_hashes(texts: &[(&str, &[u8])]) -> Vec<Option<String>> {
    let hash_all = |chunk: &[(&str, &[u8])]| -> Vec<Option<String>> {
        chunk
            .iter()
            .map(|(_, bytes)| {
                comfydock_workflow::WorkflowDocument::parse_bytes(bytes)
                    .ok()
                    .map(|document| comfydock_workflow::content_hash(&document))
            })
            .collect()
    };
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    if threads < 2 || texts.len() < 4 {
        return hash_all(texts);
    }
    let chunk_size = texts.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let workers: Vec<_> = texts
            .chunks(chunk_size)
            .skip(1)
            .map(|chunk| scope.spawn(move || hash_all(chunk)))
            .collect();
        let mut hashes = hash_all(&texts[..chunk_size]);
        for worker in workers {
            // A panic while hashing is a bug; surface it rather than misreport a state.
            hashes.extend(
                worker
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            );
        }
        hashes
    })
}

/// What `track` did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TrackReport {
    /// Names newly tracked.
    pub added: Vec<String>,
    /// With `--all`: workflows left untracked because their names are not portable, each with
    /// a portable name to rename it to.
    pub skipped: Vec<NonPortableName>,
}

/// A workflow whose name `import` would refuse, and a portable name for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NonPortableName {
    pub name: String,
    pub suggestion: String,
}

/// Start tracking `names` (or, with `all`, every workflow not ignored). Names that are not
/// portable are refused when given, and listed in [`TrackReport::skipped`] with `all`.
pub fn track(env: &Environment, names: &[String], all: bool) -> Result<TrackReport, TrackingError> {
    let live_dir = comfyui_workflows_dir(env);
    let available = workflow_names(&live_dir)?;
    let mut skipped = Vec::new();
    let chosen: Vec<String> = if all {
        let matcher = ignore_matcher(env)?;
        let mut chosen = Vec::new();
        for name in available.iter().filter(|n| !is_ignored(&matcher, n)) {
            if check_name(name).is_ok() {
                chosen.push(name.clone());
            } else {
                skipped.push(NonPortableName {
                    name: name.clone(),
                    suggestion: comfydock_foundation::path_part::suggest_relative(name),
                });
            }
        }
        chosen
    } else {
        let available_set: BTreeSet<&String> = available.iter().collect();
        let mut chosen = Vec::new();
        for name in names {
            let name = normalize_name(name);
            check_name(&name)?;
            if !available_set.contains(&name) {
                return Err(TrackingError::NotFound {
                    name,
                    dir: live_dir,
                    known: available.clone(),
                });
            }
            chosen.push(name);
        }
        chosen
    };
    let mut manifest = env.manifest()?;
    let already = tracked(&manifest);
    let added: Vec<String> = chosen.into_iter().filter(|n| !already.contains(n)).collect();
    for name in &added {
        manifest.set_workflow_tracked(name, true);
    }
    if !added.is_empty() {
        manifest.save()?;
    }
    Ok(TrackReport { added, skipped })
}

/// Stop tracking `name` (its committed copy is removed at the next commit).
pub fn untrack(env: &Environment, name: &str) -> Result<(), TrackingError> {
    let name = normalize_name(name);
    let mut manifest = env.manifest()?;
    // Any name written in the manifest can be untracked, portable or not (no path is made).
    if !tracked_as_written(&manifest).contains(&name) {
        return Err(TrackingError::NotTracked(name));
    }
    manifest.set_workflow_tracked(&name, false);
    manifest.save()?;
    Ok(())
}

/// What `commit` copied into `.cec/workflows/`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CopyReport {
    pub copied: Vec<String>,
    pub removed: Vec<String>,
}

/// Copy tracked workflows from ComfyUI into `.cec/workflows/` (one way); drop copies of workflows
/// that are no longer tracked or no longer exist in ComfyUI.
pub fn copy_tracked_into_cec(env: &Environment) -> Result<CopyReport, TrackingError> {
    let manifest = env.manifest()?;
    // A tracked name that cannot be a file would otherwise look untracked and lose its copy.
    let non_portable = unsafe_tracked(&manifest);
    if !non_portable.is_empty() {
        return Err(TrackingError::NonPortableTracked {
            env: env.name.clone(),
            names: non_portable,
        });
    }
    let tracked = tracked(&manifest);
    let live_dir = comfyui_workflows_dir(env);
    let cec_dir = cec_workflows_dir(env);
    let mut report = CopyReport::default();
    for name in &tracked {
        let source = file_for(&live_dir, name);
        let target = file_for(&cec_dir, name);
        if let Ok(bytes) = fs_err::read(&source)
            && fs_err::read(&target).ok().as_deref() != Some(bytes.as_slice())
        {
            if let Some(parent) = target.parent() {
                fs_err::create_dir_all(parent)?;
            }
            write_atomic(&target, bytes)?;
            report.copied.push(name.clone());
        }
    }
    let mut kept = Vec::new();
    for name in workflow_names(&cec_dir)? {
        let gone = !file_for(&live_dir, &name).is_file();
        if !tracked.contains(&name) || gone {
            fs_err::remove_file(file_for(&cec_dir, &name))?;
            report.removed.push(name);
        } else if let Ok(bytes) = fs_err::read(file_for(&cec_dir, &name)) {
            kept.push(bytes);
        }
    }
    remember_committed(&kept, &env.root.join(HASH_CACHE_FILE));
    Ok(report)
}

/// Records the content hashes of the `.cec` copies `kept` in the cache at `cache` (computing
/// those it does not know yet), replacing the copies recorded before. A cache that cannot be
/// written is left as it was: `status` then only works harder.
fn remember_committed(kept: &[Vec<u8>], cache: &Path) {
    let mut known = HashCache::load(cache);
    let keyed: Vec<(String, &[u8])> = kept
        .iter()
        .map(|bytes| (blake3::hash(bytes).to_hex().to_string(), bytes.as_slice()))
        .collect();
    let mut unknown: BTreeMap<&str, &[u8]> = BTreeMap::new();
    for (key, bytes) in &keyed {
        if known.get(key).is_none() {
            unknown.insert(key, bytes);
        }
    }
    let unknown: Vec<(&str, &[u8])> = unknown.into_iter().collect();
    let computed = content_hashes(&unknown);
    let mut committed: BTreeMap<String, Option<String>> = unknown
        .iter()
        .map(|(key, _)| (*key).to_owned())
        .zip(computed)
        .collect();
    for (key, _) in &keyed {
        if let Some(hash) = known.get(key) {
            committed.insert(key.clone(), hash.clone());
        }
    }
    if committed == known.committed && known.version == comfydock_workflow::CONTENT_HASH_VERSION {
        return;
    }
    known.hashes.retain(|key, _| !committed.contains_key(key));
    let fresh = HashCache {
        version: comfydock_workflow::CONTENT_HASH_VERSION,
        hashes: known.hashes,
        committed,
    };
    if let Err(error) = fresh.save(cache) {
        tracing::debug!("workflow hash cache not written: {error}");
    }
}

/// The committed content of a tracked workflow at `rev` (default: the working copy in `.cec`).
pub fn committed(
    git: &Git,
    env: &Environment,
    name: &str,
    rev: Option<&str>,
) -> Result<Vec<u8>, TrackingError> {
    let name = normalize_name(name);
    check_name(&name)?;
    let rel = format!("workflows/{name}.json");
    if let Some(rev) = rev {
        comfydock_foundation::git::check_revision(rev)
            .map_err(|e| EnvError::from(comfydock_foundation::git::GitError::from(e)))?;
    }
    match rev {
        Some(rev) => git
            .read_blob(&env.cec(), rev, &rel)
            .map_err(|_| TrackingError::NotFound {
                name,
                dir: env.cec().join("workflows"),
                known: Vec::new(),
            }),
        None => fs_err::read(env.cec().join(&rel)).map_err(|_| TrackingError::NotFound {
            name,
            dir: env.cec().join("workflows"),
            known: Vec::new(),
        }),
    }
}

/// What [`restore`] did.
#[derive(Debug, Clone, Serialize)]
pub struct Restored {
    pub path: PathBuf,
    /// Where the file it replaced was kept (when it differed from the restored one).
    pub trashed: Option<PathBuf>,
}

/// Write the committed version of `name` (at `rev`) back into ComfyUI's folder. A live file with
/// changes since the last commit is only replaced with `force`; a replaced file that differs from
/// the restored one is moved to the workspace trash first, so nothing the user saved is lost.
pub fn restore(
    git: &Git,
    workspace: &crate::workspace::Workspace,
    env: &Environment,
    name: &str,
    rev: Option<&str>,
    force: bool,
) -> Result<Restored, TrackingError> {
    let bytes = committed(git, env, name, rev)?;
    let name = normalize_name(name);
    let target = file_for(&comfyui_workflows_dir(env), &name);
    let mut trashed = None;
    if let Ok(live) = fs_err::read(&target)
        && live != bytes
    {
        let last_commit = committed(git, env, &name, Some("HEAD")).ok();
        if !force && last_commit.as_deref() != Some(live.as_slice()) {
            return Err(TrackingError::WouldOverwrite {
                name,
                env: env.name.clone(),
            });
        }
        let keep = workspace
            .trash_dir(&env.name)
            .join("workflows")
            .join(format!("{name}.json"));
        if let Some(parent) = keep.parent() {
            fs_err::create_dir_all(parent)?;
        }
        fs_err::rename(&target, &keep)?;
        trashed = Some(keep);
    }
    if let Some(parent) = target.parent() {
        fs_err::create_dir_all(parent)?;
    }
    write_atomic(&target, bytes)?;
    Ok(Restored {
        path: target,
        trashed,
    })
}

/// The live file of a workflow in ComfyUI.
pub fn live_path(env: &Environment, name: &str) -> PathBuf {
    file_for(&comfyui_workflows_dir(env), &normalize_name(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workflow(seed: u64, pos: f64) -> Vec<u8> {
        format!(
            r#"{{"last_node_id": 1, "last_link_id": 0, "links": [], "version": 0.4,
              "nodes": [{{"id": 1, "type": "KSampler", "pos": [{pos}, 0], "mode": 0,
                          "widgets_values": [{seed}, "fixed", 20]}}]}}"#
        )
        .into_bytes()
    }

    /// Compared on several threads, exactly the pairs that differ only in view state (a moved
    /// node) are the same workflow; a changed widget value, or text that is not a workflow, is
    /// not. The second comparison answers from the hash cache alike; a cache made by another hash
    /// version, or damaged, is ignored and rewritten.
    #[test]
    fn same_content_all_finds_exactly_the_view_only_changes() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join(HASH_CACHE_FILE);
        let mut pairs = Vec::new();
        let mut expected = Vec::new();
        for index in 0..23usize {
            let seed = index as u64;
            let (live, same) = match index % 3 {
                0 => (workflow(seed, 10.0), true),
                1 => (workflow(seed + 1000, 0.0), false),
                _ => (b"{not json".to_vec(), false),
            };
            if same {
                expected.push(index * 2);
            }
            pairs.push((index * 2, live, workflow(seed, 0.0)));
        }
        assert_eq!(same_content_all(&pairs, &cache), expected);
        let written = HashCache::load(&cache);
        assert_eq!(written.hashes.len(), 23 + 17, "each distinct text once");
        assert_eq!(written.hashes.values().filter(|h| h.is_none()).count(), 1);
        assert_eq!(same_content_all(&pairs, &cache), expected, "from the cache");
        assert_eq!(HashCache::load(&cache), written, "unchanged, not rewritten");

        let other_version = serde_json::json!({"version": 0, "hashes": {}});
        for stale in [other_version.to_string().into_bytes(), b"{damaged".to_vec()] {
            fs_err::write(&cache, stale).unwrap();
            assert_eq!(same_content_all(&pairs, &cache), expected);
            assert_eq!(HashCache::load(&cache), written);
        }
        assert_eq!(same_content_all(&pairs[..2], &cache), [0]);
        assert_eq!(
            HashCache::load(&cache).hashes.len(),
            4,
            "only this comparison's texts"
        );
        assert_eq!(same_content_all(&[], &cache), Vec::<usize>::new());
    }

    /// `commit` records the hashes of the `.cec` copies; the first `status` after an edit parses
    /// only the edited text, keeps the recorded copies, and trusts them; the next commit replaces
    /// them.
    #[test]
    fn committed_copies_are_hashed_once_at_commit() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join(HASH_CACHE_FILE);
        let key = |bytes: &[u8]| blake3::hash(bytes).to_hex().to_string();
        let kept = vec![workflow(1, 0.0), workflow(2, 0.0)];
        remember_committed(&kept, &cache);
        let recorded = HashCache::load(&cache);
        assert_eq!(recorded.committed.len(), 2);
        assert!(recorded.hashes.is_empty());

        let edited = workflow(1001, 0.0);
        assert!(same_content_all(&[(0, edited.clone(), kept[0].clone())], &cache).is_empty());
        let mut after = HashCache::load(&cache);
        assert_eq!(after.committed, recorded.committed, "kept by status");
        assert_eq!(
            after.hashes.keys().collect::<Vec<_>>(),
            [&key(&edited)],
            "only the edited text"
        );
        // Status answers from the recorded hash, without parsing the copy again.
        let edited_hash = after.hashes[&key(&edited)].clone();
        after.committed.insert(key(&kept[0]), edited_hash);
        after.save(&cache).unwrap();
        assert_eq!(same_content_all(&[(0, edited, kept[0].clone())], &cache), [0]);

        remember_committed(&kept[1..], &cache);
        assert_eq!(
            HashCache::load(&cache).committed.keys().collect::<Vec<_>>(),
            [&key(&kept[1])]
        );
    }
}

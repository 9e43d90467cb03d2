//! Environments: an isolated ComfyUI with its own venv, described by `.cec/pyproject.toml`.
//!
//! ```text
//! environments/NAME/.cec/               git repo: pyproject.toml, uv.lock, .python-version, workflows/
//! environments/NAME/ComfyUI/            checkout at the manifest's commit
//! environments/NAME/.venv/              synced from uv.lock with the machine's torch backend
//! environments/NAME/extra_model_paths.yaml   the workspace model roots, for ComfyUI
//! environments/NAME/.local.json         per-machine state (torch backend, sync stamp); not in git
//! environments/NAME/.ready              written last by `create`: without it the folder is debris
//! ```

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::Digest as _;

use crate::comfyui_source::SourceError;
use crate::manifest::{FileTransaction, Manifest, ManifestError};
use crate::settings::Key;
use crate::settings::Settings;
use crate::torch_backend::{InvalidBackend, TorchBackend};
use crate::workspace::{RESERVED_NAMES, Workspace, WorkspaceError};
use comfydock_foundation::Hinted;
use comfydock_foundation::atomic_file::write_atomic;
use comfydock_foundation::env_vars;
use comfydock_foundation::git::{Git, GitError};
use comfydock_foundation::reporter::Reporter;
use comfydock_foundation::uv::{Uv, UvError};

#[derive(Debug, thiserror::Error)]
pub enum EnvError {
    #[error("Invalid environment name `{name}`: {reason}")]
    InvalidName { name: String, reason: &'static str },
    #[error("Environment `{0}` already exists")]
    Exists(String),
    #[error("No environment named `{name}`")]
    NotFound { name: String, known: Vec<String> },
    #[error("No environment selected")]
    NoneSelected,
    #[error("Environment `{name}` is running (pid {pid})")]
    Running { name: String, pid: u32 },
    #[error("The lock of `{name}` does not cover the `{backend}` torch backend")]
    BackendNotLocked { name: String, backend: String },
    #[error("Interrupted; the partial environment was removed")]
    Interrupted,
    #[error("Failed to create environment `{name}`")]
    Create {
        name: String,
        #[source]
        source: Box<EnvError>,
    },
    #[error("`{name}` has uncommitted changes in .cec")]
    Uncommitted { name: String, files: Vec<String> },
    #[error(transparent)]
    ComfyUiRequirements(Box<ComfyUiRequirementsError>),
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error(transparent)]
    Uv(#[from] UvError),
    #[error(transparent)]
    Git(#[from] GitError),
    #[error(transparent)]
    Backend(#[from] InvalidBackend),
    #[error(transparent)]
    Workspace(#[from] WorkspaceError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl Hinted for EnvError {
    fn hint(&self) -> Option<String> {
        match self {
            Self::Exists(name) => Some(format!(
                "pick another name, or remove it first with `comfydock delete {name}`"
            )),
            Self::NotFound { known, .. } if known.is_empty() => {
                Some("create one with `comfydock create NAME`".into())
            }
            Self::NotFound { known, .. } => Some(format!(
                "known environments: {}; see `comfydock list`",
                known
                    .iter()
                    .map(|k| format!("`{k}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            Self::NoneSelected => Some(format!(
                "pass `-e NAME`, set `{}`, or pick one with `comfydock use NAME` (see `comfydock list`)",
                env_vars::COMFYDOCK_ENV
            )),
            Self::Running { name, .. } => Some(format!("stop it first with `comfydock -e {name} stop`")),
            Self::BackendNotLocked { name, backend } => Some(format!(
                "add it to the lock with `comfydock -e {name} backend add {backend}`, or pick a locked one (`comfydock -e {name} backend list`)"
            )),
            Self::Create { source, .. } => source.hint(),
            Self::ComfyUiRequirements(e) => e.hint(),
            Self::Uncommitted { name, .. } => Some(format!(
                "commit them with `comfydock -e {name} commit -m MESSAGE`, or pass `--force` to discard them"
            )),
            Self::Source(e) => e.hint(),
            Self::Manifest(e) => e.hint(),
            Self::Uv(e) => e.hint(),
            Self::Git(e) => e.hint(),
            Self::Workspace(e) => e.hint(),
            _ => None,
        }
    }
}

/// `comfyui update` could not lock the new version's requirements (nothing was changed).
#[derive(Debug, thiserror::Error)]
#[error("ComfyUI {reference} cannot be installed in `{name}`: {problem}")]
pub struct ComfyUiRequirementsError {
    pub name: String,
    pub reference: String,
    /// The current pin, kept.
    pub kept: String,
    /// What uv could not satisfy, with who asked for each side.
    pub problem: String,
    #[source]
    pub resolver: crate::resolver_failure::ResolverOutput,
}

impl Hinted for ComfyUiRequirementsError {
    fn hint(&self) -> Option<String> {
        let Self { name, kept, .. } = self;
        Some(format!(
            "nothing was changed (ComfyUI stays at {kept}); pick another version with `comfydock -e {name} comfyui update REF`, or bound a package with `comfydock -e {name} py constrain 'NAME<VERSION'`"
        ))
    }
}

impl EnvError {
    /// uv's stderr when a uv command failed (the resolver's explanation of a failed lock).
    pub fn uv_stderr(&self) -> Option<&str> {
        match self {
            Self::Uv(UvError::Process(p)) => Some(p.stderr()),
            _ => None,
        }
    }
}

/// Check a new environment's name.
pub fn validate_name(name: &str) -> Result<(), EnvError> {
    let invalid = |reason| {
        Err(EnvError::InvalidName {
            name: name.to_owned(),
            reason,
        })
    };
    if name.is_empty() {
        return invalid("it is empty");
    }
    if name.contains(['/', '\\']) || name == ".." || name == "." {
        return invalid("it may not contain path separators");
    }
    if name.starts_with('.') {
        return invalid("it may not start with a dot");
    }
    if name.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return invalid("it may not contain whitespace or control characters");
    }
    if RESERVED_NAMES.contains(&name) {
        return invalid("it is reserved for a workspace folder");
    }
    if name.len() > 64 {
        return invalid("it is longer than 64 characters");
    }
    Ok(())
}

/// Per-machine state of an environment (never committed).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LocalState {
    pub torch_backend: Option<String>,
    /// Fingerprint of what the last successful sync installed.
    pub sync_stamp: Option<String>,
}

/// The git and uv drivers an environment operation needs.
#[derive(Debug, Clone)]
pub struct Tools {
    pub git: Git,
    pub uv: Uv,
}

/// One environment of a workspace.
#[derive(Debug, Clone)]
pub struct Environment {
    pub name: String,
    pub root: PathBuf,
}

impl Environment {
    pub fn at(workspace: &Workspace, name: &str) -> Self {
        Self {
            name: name.to_owned(),
            root: workspace.environments_dir().join(name),
        }
    }

    pub fn cec(&self) -> PathBuf {
        self.root.join(".cec")
    }
    pub fn manifest_path(&self) -> PathBuf {
        self.cec().join("pyproject.toml")
    }
    pub fn lock_path(&self) -> PathBuf {
        self.cec().join("uv.lock")
    }
    pub fn comfyui(&self) -> PathBuf {
        self.root.join("ComfyUI")
    }
    pub fn venv(&self) -> PathBuf {
        self.root.join(".venv")
    }
    pub fn python(&self) -> PathBuf {
        self.venv().join("bin").join("python")
    }
    pub fn extra_model_paths(&self) -> PathBuf {
        self.root.join("extra_model_paths.yaml")
    }
    pub(crate) fn state_path(&self) -> PathBuf {
        self.root.join(".local.json")
    }
    pub(crate) fn ready_marker(&self) -> PathBuf {
        self.root.join(".ready")
    }
    pub fn is_complete(&self) -> bool {
        self.ready_marker().is_file()
    }

    pub fn manifest(&self) -> Result<Manifest, ManifestError> {
        Manifest::load(&self.manifest_path())
    }

    pub fn state(&self) -> LocalState {
        fs_err::read_to_string(self.state_path())
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default()
    }

    pub fn save_state(&self, state: &LocalState) -> std::io::Result<()> {
        let text = serde_json::to_string_pretty(state).expect("state serialises");
        write_atomic(&self.state_path(), text + "\n")
    }

    /// The backend this machine syncs with.
    pub fn backend(&self) -> TorchBackend {
        self.state()
            .torch_backend
            .and_then(|b| b.parse().ok())
            .unwrap_or_else(TorchBackend::cpu)
    }

    /// What a sync of the current `.cec` would install; compared with the stamp of the last sync.
    /// Only what decides Python packages counts: `[project]`, `[dependency-groups]`, `[tool.uv]`,
    /// `torch_backends`, the lock and the backend — tracking a workflow does not make packages stale.
    pub fn fingerprint(&self) -> std::io::Result<String> {
        let mut hasher = sha2::Sha256::new();
        let text = fs_err::read_to_string(self.manifest_path())?;
        match text.parse::<toml::Table>() {
            Ok(doc) => {
                for key in ["project", "dependency-groups"] {
                    hasher.update(doc.get(key).map(ToString::to_string).unwrap_or_default());
                    hasher.update([0]);
                }
                let uv = doc.get("tool").and_then(|t| t.get("uv"));
                hasher.update(uv.map(ToString::to_string).unwrap_or_default());
                hasher.update([0]);
                // The backends asked for: listing one by hand must make the next sync lock it.
                let backends = doc
                    .get("tool")
                    .and_then(|t| t.get("comfydock"))
                    .and_then(|t| t.get("torch_backends"));
                hasher.update(backends.map(ToString::to_string).unwrap_or_default());
            }
            Err(_) => hasher.update(text.as_bytes()),
        }
        hasher.update([0]);
        match fs_err::read(self.lock_path()) {
            Ok(lock) => hasher.update(lock),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        hasher.update([0]);
        hasher.update(self.backend().as_str().as_bytes());
        Ok(hex::encode(hasher.finalize()))
    }

    /// The commit the ComfyUI checkout is at, read from `.git/HEAD` without spawning git.
    pub fn comfyui_head(&self) -> Option<String> {
        let head = fs_err::read_to_string(self.comfyui().join(".git").join("HEAD")).ok()?;
        let head = head.trim();
        if let Some(reference) = head.strip_prefix("ref: ") {
            return fs_err::read_to_string(self.comfyui().join(".git").join(reference))
                .ok()
                .map(|s| s.trim().to_owned());
        }
        Some(head.to_owned())
    }
}

/// Names of complete environments, sorted.
pub fn list(workspace: &Workspace) -> std::io::Result<Vec<String>> {
    let dir = workspace.environments_dir();
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let mut names = Vec::new();
    for entry in fs_err::read_dir(&dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with('.') && Environment::at(workspace, &name).is_complete() {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

/// Open an existing, complete environment.
pub fn open(workspace: &Workspace, name: &str) -> Result<Environment, EnvError> {
    let env = Environment::at(workspace, name);
    if validate_name(name).is_err() || !env.is_complete() {
        return Err(EnvError::NotFound {
            name: name.to_owned(),
            known: list(workspace)?,
        });
    }
    Ok(env)
}

/// Pick the environment for a command: `-e NAME` > `COMFYDOCK_ENV` > the active one.
pub fn select(workspace: &Workspace, flag: Option<&str>) -> Result<Environment, EnvError> {
    let from_env = std::env::var(env_vars::COMFYDOCK_ENV)
        .ok()
        .filter(|s| !s.is_empty());
    let name = flag
        .map(str::to_owned)
        .or(from_env)
        .or_else(|| workspace.active_environment().map(str::to_owned))
        .ok_or(EnvError::NoneSelected)?;
    open(workspace, &name)
}

/// Remove environment folders that a killed `create` left behind. Call under the workspace lock:
/// holding it proves no `create` is still running.
pub fn sweep_partial(workspace: &Workspace, reporter: &dyn Reporter) -> std::io::Result<Vec<String>> {
    let dir = workspace.environments_dir();
    let mut removed = Vec::new();
    if !dir.is_dir() {
        return Ok(removed);
    }
    for entry in fs_err::read_dir(&dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.file_type()?.is_dir() && !Environment::at(workspace, &name).is_complete() {
            reporter.status(
                "Removing",
                &format!("incomplete environment `{name}` left by an interrupted command"),
            );
            fs_err::remove_dir_all(entry.path())?;
            removed.push(name);
        }
    }
    Ok(removed)
}

/// `uv lock` for the environment's `.cec` project; on a terminal uv's own resolution and
/// download progress shows through `reporter`.
pub fn uv_lock(tools: &Tools, env: &Environment, reporter: &dyn Reporter) -> Result<(), EnvError> {
    uv_lock_project(tools, &env.cec(), reporter)
}

/// `uv lock` of the project in `dir` (`.cec`, or a copy of it being prepared beside it).
pub fn uv_lock_project(tools: &Tools, dir: &Path, reporter: &dyn Reporter) -> Result<(), EnvError> {
    let mut cmd = tools.uv.command();
    cmd.current_dir(dir).arg("lock").arg("--project").arg(dir);
    tools.uv.run_showing_progress(&mut cmd, reporter)?;
    Ok(())
}

/// Whether `uv.lock` still satisfies `pyproject.toml`.
pub fn lock_is_current(tools: &Tools, env: &Environment) -> bool {
    let cec = env.cec();
    env.lock_path().is_file()
        && tools
            .uv
            .run(
                Some(&cec),
                [
                    std::ffi::OsStr::new("lock"),
                    "--check".as_ref(),
                    "--project".as_ref(),
                    cec.as_os_str(),
                ],
            )
            .is_ok()
}

/// How strictly `uv sync` treats packages the lock does not list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncMode {
    /// Keep extra packages (report them).
    Inexact,
    /// Remove extra packages.
    Exact,
    /// Only say what `Exact` would do.
    DryRun,
}

/// The last step of an all-or-nothing edit: sync the venv and record the sync stamp, then keep the
/// edited files; on failure restore their original bytes (`tx`) and sync back to them.
pub fn sync_or_restore(
    tools: &Tools,
    env: &Environment,
    mode: SyncMode,
    tx: FileTransaction,
    reporter: &dyn Reporter,
) -> Result<(), EnvError> {
    let synced = uv_sync(tools, env, &env.backend(), mode, reporter).and_then(|_| {
        let mut state = env.state();
        state.sync_stamp = Some(env.fingerprint()?);
        env.save_state(&state)?;
        Ok(())
    });
    if let Err(err) = synced {
        tx.rollback()?;
        let _ = uv_sync(tools, env, &env.backend(), SyncMode::Inexact, reporter);
        return Err(err);
    }
    tx.commit();
    Ok(())
}

/// `uv sync --frozen` into the environment's venv with one backend extra. Returns uv's stderr, or
/// for [`SyncMode::DryRun`] its JSON plan (`--output-format json`). On a terminal uv's own
/// download and install progress shows through `reporter` (never for the quiet dry run).
pub fn uv_sync(
    tools: &Tools,
    env: &Environment,
    backend: &TorchBackend,
    mode: SyncMode,
    reporter: &dyn Reporter,
) -> Result<String, EnvError> {
    uv_sync_checked(tools, env, backend, mode, true, reporter)
}

/// [`uv_sync`]; without `allow_builds`, uv builds nothing from source (`--no-build`).
pub(crate) fn uv_sync_checked(
    tools: &Tools,
    env: &Environment,
    backend: &TorchBackend,
    mode: SyncMode,
    allow_builds: bool,
    reporter: &dyn Reporter,
) -> Result<String, EnvError> {
    let covered = crate::lock_coverage::read(&env.lock_path())?;
    if !covered.iter().any(|l| l.backend == *backend) {
        return Err(EnvError::BackendNotLocked {
            name: env.name.clone(),
            backend: backend.to_string(),
        });
    }
    let cec = env.cec();
    let mut cmd = tools.uv.command();
    cmd.current_dir(&cec)
        .env("UV_PROJECT_ENVIRONMENT", env.venv())
        .args(["sync", "--frozen", "--all-groups", "--extra"])
        .arg(backend.extra())
        .arg("--project")
        .arg(&cec);
    if !allow_builds {
        cmd.arg("--no-build");
    }
    match mode {
        SyncMode::Inexact => {
            cmd.arg("--inexact");
        }
        SyncMode::Exact => {
            cmd.arg("--exact");
        }
        SyncMode::DryRun => {
            // uv's machine-readable plan, never its human text.
            cmd.args(["--exact", "--dry-run", "--output-format", "json"]);
        }
    }
    let out = if mode == SyncMode::DryRun {
        comfydock_foundation::subprocess::run_checked(&mut cmd).map_err(|e| UvError::Process(Box::new(e)))?
    } else {
        tools.uv.run_showing_progress(&mut cmd, reporter)?
    };
    let text = if mode == SyncMode::DryRun {
        &out.stdout
    } else {
        &out.stderr
    };
    Ok(String::from_utf8_lossy(text).into_owned())
}

/// The workspace's rendered model paths, kept in sync with the model roots by `comfydock model root`.
pub fn workspace_model_paths(workspace: &Workspace) -> PathBuf {
    workspace.metadata_dir().join("extra_model_paths.yaml")
}

/// Give the environment the workspace's `extra_model_paths.yaml` (rendered from the model roots
/// by the models layer). Without one, ComfyUI gets an empty file and uses its own `models/`.
pub fn write_extra_model_paths(workspace: &Workspace, env: &Environment) -> std::io::Result<()> {
    let text = match fs_err::read_to_string(workspace_model_paths(workspace)) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            "# No workspace model roots yet: run `comfydock model root list`.\n".to_owned()
        }
        Err(e) => return Err(e),
    };
    write_atomic(&env.extra_model_paths(), text)
}

pub(crate) fn init_cec_repo(git: &Git, env: &Environment) -> Result<(), EnvError> {
    let cec = env.cec();
    git.run(Some(&cec), ["init", "--quiet", "--initial-branch=main"])?;
    ensure_commit_identity(git, &cec)
}

/// Give the repository at `repo` a local commit identity when the user has none, so commits
/// never fail.
pub fn ensure_commit_identity(git: &Git, repo: &Path) -> Result<(), EnvError> {
    if git.run(Some(repo), ["config", "user.email"]).is_err() {
        git.run(Some(repo), ["config", "user.email", "comfydock@localhost"])?;
    }
    if git.run(Some(repo), ["config", "user.name"]).is_err() {
        git.run(Some(repo), ["config", "user.name", "comfydock"])?;
    }
    Ok(())
}

/// Stage everything in `.cec` and commit; returns the new commit, or `None` when nothing changed.
pub fn commit_all(git: &Git, env: &Environment, message: &str) -> Result<Option<String>, EnvError> {
    let cec = env.cec();
    git.run(Some(&cec), ["add", "--all"])?;
    if git.run(Some(&cec), ["diff", "--cached", "--quiet"]).is_ok()
        && git
            .run(Some(&cec), ["rev-parse", "--verify", "--quiet", "HEAD"])
            .is_ok()
    {
        return Ok(None);
    }
    git.run(Some(&cec), ["commit", "--quiet", "--no-verify", "-m", message])?;
    Ok(Some(git.run(Some(&cec), ["rev-parse", "HEAD"])?))
}

/// Files in `.cec` that differ from its last commit.
pub fn uncommitted(git: &Git, env: &Environment) -> Result<Vec<String>, EnvError> {
    let out = git.run(
        Some(&env.cec()),
        ["status", "--porcelain", "--untracked-files=all"],
    )?;
    Ok(out.lines().map(|l| l.get(3..).unwrap_or(l).to_owned()).collect())
}

/// Resolve `uv` for environment work, with the workspace-shared cache.
pub fn tools(workspace: &Workspace, settings: &Settings, reporter: &dyn Reporter) -> Result<Tools, EnvError> {
    let git = Git::find()?;
    let uv = Uv::locate_or_install(
        settings.value(Key::UvPath).as_deref(),
        &workspace.tools_dir(),
        reporter,
    )?
    .with_cache_dir(workspace.cache_dir().join("uv"));
    Ok(Tools { git, uv })
}

/// SIGINT/SIGTERM observed while a multi-step operation runs; the handlers are removed on drop.
pub struct Interrupt {
    flag: std::sync::Arc<std::sync::atomic::AtomicBool>,
    ids: Vec<signal_hook::SigId>,
}

impl Interrupt {
    /// Start watching for Ctrl-C and SIGTERM.
    pub fn watch() -> Self {
        let flag = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let ids = [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM]
            .into_iter()
            .filter_map(|signal| signal_hook::flag::register(signal, std::sync::Arc::clone(&flag)).ok())
            .collect();
        Self { flag, ids }
    }

    /// Whether a signal arrived.
    pub fn happened(&self) -> bool {
        self.flag.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Drop for Interrupt {
    fn drop(&mut self) {
        for id in self.ids.drain(..) {
            signal_hook::low_level::unregister(id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in ["a", "my-env", "env_2", "Flux.dev"] {
            validate_name(ok).unwrap();
        }
        for bad in [
            "",
            "../x",
            "a/b",
            ".hidden",
            "models",
            "environments",
            "a b",
            "..",
        ] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
    }
}

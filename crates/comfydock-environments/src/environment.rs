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

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use sha2::Digest as _;

use crate::comfyui_source::{ComfyUiMirror, SourceError};
use crate::manifest::{self, ComfyUiPin, FileTransaction, Manifest, ManifestError, NewManifest};
use crate::settings::Settings;
use crate::torch_backend::{self, DEFAULT_LOCKED_BACKENDS, InvalidBackend, TorchBackend};
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
    Nodes(Box<crate::nodes::NodeError>),
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
            Self::Uncommitted { name, .. } => Some(format!(
                "commit them with `comfydock -e {name} commit -m MESSAGE`, or pass `--force` to discard them"
            )),
            Self::Source(e) => e.hint(),
            Self::Manifest(e) => e.hint(),
            Self::Uv(e) => e.hint(),
            Self::Git(e) => e.hint(),
            Self::Workspace(e) => e.hint(),
            Self::Nodes(e) => e.hint(),
            _ => None,
        }
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
    fn state_path(&self) -> PathBuf {
        self.root.join(".local.json")
    }
    fn ready_marker(&self) -> PathBuf {
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

    /// The pid of a `run --background` ComfyUI that is still alive.
    pub fn running_pid(&self) -> Option<u32> {
        crate::comfyui_process::running(self).map(|r| r.pid)
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

/// How the torch backend is chosen.
#[derive(Debug, Clone)]
pub enum BackendChoice {
    Auto,
    Explicit(TorchBackend),
}

impl std::str::FromStr for BackendChoice {
    type Err = InvalidBackend;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "auto" {
            Ok(Self::Auto)
        } else {
            s.parse().map(Self::Explicit)
        }
    }
}

/// Options of `comfydock create`.
#[derive(Debug, Clone)]
pub struct CreateOptions {
    pub name: String,
    pub comfyui: Option<String>,
    pub python: Option<String>,
    pub backend: BackendChoice,
}

/// What `create` made.
#[derive(Debug, Clone, Serialize)]
pub struct Created {
    pub name: String,
    pub path: PathBuf,
    pub comfyui: ComfyUiPin,
    pub comfyui_tag: Option<String>,
    pub python: String,
    pub torch_backend: String,
    pub torch_backend_reason: String,
    pub mirror_cloned: bool,
}

/// Create an environment. On any failure the partial folder is removed.
pub fn create(
    workspace: &Workspace,
    settings: &Settings,
    tools: &Tools,
    options: &CreateOptions,
    reporter: &dyn Reporter,
) -> Result<Created, EnvError> {
    validate_name(&options.name)?;
    sweep_partial(workspace, reporter)?;
    let env = Environment::at(workspace, &options.name);
    if env.root.exists() {
        return Err(EnvError::Exists(options.name.clone()));
    }
    fs_err::create_dir_all(&env.root)?;
    // Ctrl-C or SIGTERM must not kill us half-way: the flag lets the running child (uv, git)
    // fail on its own signal, or the next phase stop, and the partial folder is removed below.
    let interrupt = Interrupt::watch();
    let result = create_inner(workspace, settings, tools, options, &env, reporter, &interrupt);
    match result {
        Ok(created) if !interrupt.happened() => Ok(created),
        outcome => {
            let _ = fs_err::remove_dir_all(&env.root);
            match outcome {
                Err(err) if !interrupt.happened() => Err(EnvError::Create {
                    name: options.name.clone(),
                    source: Box::new(err),
                }),
                _ => Err(EnvError::Interrupted),
            }
        }
    }
}

fn create_inner(
    workspace: &Workspace,
    settings: &Settings,
    tools: &Tools,
    options: &CreateOptions,
    env: &Environment,
    reporter: &dyn Reporter,
    interrupt: &Interrupt,
) -> Result<Created, EnvError> {
    let phase = |name: &str| {
        if interrupt.happened() {
            return Err(EnvError::Interrupted);
        }
        reporter.phase(name);
        Ok(())
    };
    let (backend, reason) = match &options.backend {
        BackendChoice::Explicit(b) => (b.clone(), "chosen with --torch-backend".to_owned()),
        BackendChoice::Auto => {
            let d = torch_backend::detect();
            (d.backend, d.reason)
        }
    };

    phase("Resolving ComfyUI")?;
    let repo = settings.value("comfyui.repo").unwrap_or_default();
    let mirror = ComfyUiMirror::new(tools.git.clone(), &workspace.cache_dir(), &repo);
    let mirror_cloned = !mirror.path().join("HEAD").is_file();
    let resolved = mirror.resolve(options.comfyui.as_deref(), reporter)?;
    phase(&format!(
        "Checking out ComfyUI {} ({})",
        resolved.reference,
        comfydock_foundation::display_text::short_hash(&resolved.commit)
    ))?;
    mirror.checkout(&resolved.commit, &env.comfyui())?;
    crate::comfyui_process::create_data_directories(env)?;

    phase("Writing .cec")?;
    let python = match &options.python {
        Some(p) => p.clone(),
        None => find_python_version(&tools.uv)?,
    };
    let requirements = match fs_err::read_to_string(env.comfyui().join("requirements.txt")) {
        Ok(text) => manifest::parse_requirements(&text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => manifest::Requirements::default(),
        Err(e) => return Err(e.into()),
    };
    let mut backends: Vec<TorchBackend> = DEFAULT_LOCKED_BACKENDS
        .iter()
        .filter_map(|b| b.parse().ok())
        .collect();
    if !backends.contains(&backend) {
        backends.push(backend.clone());
    }
    let pin = ComfyUiPin {
        reference: resolved.reference.clone(),
        commit: resolved.commit.clone(),
    };
    let torch_index_url = settings.value("torch.index_url").unwrap_or_default();
    fs_err::create_dir_all(env.cec())?;
    write_atomic(
        &env.manifest_path(),
        manifest::render_new(&NewManifest {
            name: &options.name,
            python: &python,
            comfyui: &pin,
            requirements: &requirements,
            backends: &backends,
            torch_index_url: &torch_index_url,
        }),
    )?;
    write_atomic(&env.cec().join(".python-version"), format!("{python}\n"))?;
    write_atomic(&env.cec().join(".gitignore"), ".venv/\n__pycache__/\n")?;
    fs_err::create_dir_all(env.cec().join("workflows"))?;
    write_atomic(&env.cec().join("workflows").join(".gitkeep"), "")?;
    env.save_state(&LocalState {
        torch_backend: Some(backend.to_string()),
        sync_stamp: None,
    })?;

    phase("Resolving Python dependencies")?;
    uv_lock(tools, env)?;
    phase(&format!("Installing Python packages (torch backend {backend})"))?;
    uv_sync(tools, env, &backend, SyncMode::Inexact)?;
    write_extra_model_paths(workspace, env)?;

    phase("Committing .cec")?;
    init_cec_repo(&tools.git, env)?;
    commit_all(&tools.git, env, &format!("Create environment {}", options.name))?;
    let stamp = env.fingerprint()?;
    env.save_state(&LocalState {
        torch_backend: Some(backend.to_string()),
        sync_stamp: Some(stamp),
    })?;
    write_atomic(&env.ready_marker(), "")?;
    Ok(Created {
        name: options.name.clone(),
        path: env.root.clone(),
        comfyui: pin,
        comfyui_tag: resolved.tag,
        python,
        torch_backend: backend.to_string(),
        torch_backend_reason: reason,
        mirror_cloned,
    })
}

/// The `major.minor` of the interpreter uv would pick.
fn find_python_version(uv: &Uv) -> Result<String, EnvError> {
    let out = uv.run(None, ["python", "find", ">=3.10"])?;
    let python = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let mut cmd = std::process::Command::new(&python);
    cmd.args(["-c", "import sys; print('%d.%d' % sys.version_info[:2])"]);
    let out =
        comfydock_foundation::subprocess::run_checked(&mut cmd).map_err(|e| UvError::Process(Box::new(e)))?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// `uv lock` for the environment's `.cec` project.
pub fn uv_lock(tools: &Tools, env: &Environment) -> Result<(), EnvError> {
    let cec = env.cec();
    tools.uv.run(
        Some(&cec),
        [
            std::ffi::OsStr::new("lock"),
            "--project".as_ref(),
            cec.as_os_str(),
        ],
    )?;
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
) -> Result<(), EnvError> {
    let synced = uv_sync(tools, env, &env.backend(), mode).and_then(|_| {
        let mut state = env.state();
        state.sync_stamp = Some(env.fingerprint()?);
        env.save_state(&state)?;
        Ok(())
    });
    if let Err(err) = synced {
        tx.rollback()?;
        let _ = uv_sync(tools, env, &env.backend(), SyncMode::Inexact);
        return Err(err);
    }
    tx.commit();
    Ok(())
}

/// `uv sync --frozen` into the environment's venv with one backend extra. Returns uv's stderr, or
/// for [`SyncMode::DryRun`] its JSON plan (`--output-format json`).
pub fn uv_sync(
    tools: &Tools,
    env: &Environment,
    backend: &TorchBackend,
    mode: SyncMode,
) -> Result<String, EnvError> {
    uv_sync_checked(tools, env, backend, mode, true)
}

/// [`uv_sync`]; without `allow_builds`, uv builds nothing from source (`--no-build`).
fn uv_sync_checked(
    tools: &Tools,
    env: &Environment,
    backend: &TorchBackend,
    mode: SyncMode,
    allow_builds: bool,
) -> Result<String, EnvError> {
    let covered = crate::backends::coverage::read(&env.lock_path())?;
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
    let out =
        comfydock_foundation::subprocess::run_checked(&mut cmd).map_err(|e| UvError::Process(Box::new(e)))?;
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

fn init_cec_repo(git: &Git, env: &Environment) -> Result<(), EnvError> {
    let cec = env.cec();
    git.run(Some(&cec), ["init", "--quiet", "--initial-branch=main"])?;
    // A local identity only when the user has none, so commits never fail.
    if git.run(Some(&cec), ["config", "user.email"]).is_err() {
        git.run(Some(&cec), ["config", "user.email", "comfydock@localhost"])?;
    }
    if git.run(Some(&cec), ["config", "user.name"]).is_err() {
        git.run(Some(&cec), ["config", "user.name", "comfydock"])?;
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

/// What `status` found.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub name: String,
    pub comfyui: ComfyUiStatus,
    pub packages_in_sync: bool,
    pub torch_backend: String,
    pub uncommitted: Vec<String>,
    pub running_pid: Option<u32>,
    /// Custom node folders that differ from the manifest.
    pub nodes: Vec<crate::nodes::install::NodeDrift>,
    /// Manifest entries every command ignores because a name in them cannot be a path here
    /// (also listed in `issues`).
    pub ignored: Vec<IgnoredEntry>,
    /// Each difference with the command that fixes it.
    pub issues: Vec<StatusIssue>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ComfyUiStatus {
    pub reference: String,
    pub expected_commit: String,
    pub actual_commit: Option<String>,
}

/// A manifest entry left out because a name in it is not a plain portable name.
#[derive(Debug, Clone, Serialize)]
pub struct IgnoredEntry {
    /// `node` or `workflow`.
    pub kind: &'static str,
    /// The node key or workflow name as written in the manifest.
    pub name: String,
    pub reason: String,
    /// A portable name to rename it to.
    pub suggestion: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct StatusIssue {
    pub what: String,
    pub fix: String,
}

impl Status {
    pub fn is_clean(&self) -> bool {
        self.issues.is_empty()
    }
}

/// Compare `.cec` with the environment on disk. Fast: no resolution, no uv call.
pub fn status(git: &Git, env: &Environment) -> Result<Status, EnvError> {
    let manifest = env.manifest()?;
    let pin = manifest.comfyui()?;
    let actual = env.comfyui_head();
    let mut issues = Vec::new();
    let sync = format!("comfydock -e {} sync", env.name);
    if actual.as_deref() != Some(pin.commit.as_str()) {
        issues.push(StatusIssue {
            what: format!(
                "ComfyUI is at {} but .cec pins {} ({})",
                actual
                    .as_deref()
                    .map_or("nothing", comfydock_foundation::display_text::short_hash),
                comfydock_foundation::display_text::short_hash(&pin.commit),
                pin.reference
            ),
            fix: sync.clone(),
        });
    }
    let state = env.state();
    let in_sync = state.sync_stamp.is_some() && state.sync_stamp == Some(env.fingerprint()?);
    if !in_sync {
        issues.push(StatusIssue {
            what: "Python packages differ from pyproject.toml/uv.lock (changed since the last sync)".into(),
            fix: sync.clone(),
        });
    }
    let mut ignored = Vec::new();
    for (key, err) in crate::nodes::entry::unsafe_entries(&manifest) {
        let suggestion = comfydock_foundation::path_part::suggest(&key);
        issues.push(StatusIssue {
            what: format!(
                "node `{}` in .cec/pyproject.toml is ignored: {err}",
                comfydock_foundation::display_text::truncate(&key, 80)
            ),
            fix: format!(
                "edit .cec/pyproject.toml: give `[tool.comfydock.nodes.\"{}\"]` plain names (e.g. `{suggestion}`), or remove the entry",
                comfydock_foundation::display_text::truncate(&key, 80)
            ),
        });
        ignored.push(IgnoredEntry {
            kind: "node",
            name: key,
            reason: err.reason().to_owned(),
            suggestion,
        });
    }
    for name in crate::workflow_tracking::unsafe_tracked(&manifest) {
        let suggestion = comfydock_foundation::path_part::suggest_relative(&name);
        let shown = comfydock_foundation::display_text::truncate(&name, 80);
        issues.push(StatusIssue {
            what: format!(
                "tracked workflow `{shown}` has a name that is not portable; `commit` refuses until it is renamed"
            ),
            fix: format!(
                "rename it in ComfyUI to `{suggestion}`, run `comfydock -e {env} workflow track {suggestion}`, then `comfydock -e {env} workflow untrack '{shown}'`",
                env = env.name
            ),
        });
        let reason = comfydock_foundation::path_part::check_relative(&name)
            .err()
            .map_or("not a plain relative name", |e| e.reason);
        ignored.push(IgnoredEntry {
            kind: "workflow",
            name,
            reason: reason.to_owned(),
            suggestion,
        });
    }
    let node_entries = crate::nodes::entry::read_all(&manifest);
    let node_drift = crate::nodes::install::drift(env, &node_entries);
    for drift in &node_drift {
        let fix = match drift {
            crate::nodes::install::NodeDrift::Unmanaged { name } => format!(
                "track it with `comfydock -e {} node add --dev {}`, or move it out of custom_nodes",
                env.name,
                env.comfyui().join("custom_nodes").join(name).display()
            ),
            _ => sync.clone(),
        };
        issues.push(StatusIssue {
            what: drift.describe(),
            fix,
        });
    }
    let uncommitted = uncommitted(git, env)?;
    if !uncommitted.is_empty() {
        issues.push(StatusIssue {
            what: format!("uncommitted changes in .cec: {}", uncommitted.join(", ")),
            fix: format!("comfydock -e {} commit -m MESSAGE", env.name),
        });
    }
    Ok(Status {
        name: env.name.clone(),
        comfyui: ComfyUiStatus {
            reference: pin.reference,
            expected_commit: pin.commit,
            actual_commit: actual,
        },
        packages_in_sync: in_sync,
        torch_backend: env.backend().to_string(),
        uncommitted,
        running_pid: env.running_pid(),
        nodes: node_drift,
        ignored,
        issues,
    })
}

/// What `sync` did (or, with `dry_run`, would do).
#[derive(Debug, Clone, Default, Serialize)]
pub struct SyncReport {
    pub comfyui_moved: Option<(Option<String>, String)>,
    pub relocked: bool,
    /// `torch_backends` listed backends the uv sections did not (or the reverse); they were
    /// rewritten to match before locking.
    pub backends_rewritten: bool,
    pub packages_changed: Vec<String>,
    /// Installed packages the lock does not list (removed only with `--prune`).
    pub extra_packages: Vec<String>,
    pub pruned: bool,
    pub dry_run: bool,
    /// Custom node folders installed, replaced, moved or removed to match the manifest.
    pub nodes_changed: Vec<String>,
}

/// Make the environment exactly what `.cec` says.
pub fn sync(
    workspace: &Workspace,
    settings: &Settings,
    tools: &Tools,
    env: &Environment,
    prune: bool,
    dry_run: bool,
    reporter: &dyn Reporter,
) -> Result<SyncReport, EnvError> {
    let mut report = SyncReport {
        dry_run,
        ..SyncReport::default()
    };
    let manifest = env.manifest()?;
    let pin = manifest.comfyui()?;
    let head = env.comfyui_head();
    if head.as_deref() != Some(pin.commit.as_str()) {
        report.comfyui_moved = Some((head, pin.commit.clone()));
        if !dry_run {
            reporter.phase(&format!(
                "Moving ComfyUI to {} ({})",
                pin.reference,
                comfydock_foundation::display_text::short_hash(&pin.commit)
            ));
            let repo = settings.value("comfyui.repo").unwrap_or_default();
            let mirror = ComfyUiMirror::new(tools.git.clone(), &workspace.cache_dir(), &repo);
            mirror.ensure(reporter)?;
            if mirror.resolve(Some(&pin.commit), reporter).is_err() {
                return Err(SourceError::UnknownRef {
                    reference: pin.commit,
                    repo,
                    closest: Vec::new(),
                }
                .into());
            }
            mirror.move_checkout(&env.comfyui(), &pin.commit)?;
        }
    }
    // `torch_backends` is what the user asks for; the extras, indexes and sources uv reads
    // follow it (a backend listed by hand is locked here).
    let declared = manifest.torch_backends();
    let mut extras = manifest.backend_extras();
    let mut wanted = declared.clone();
    extras.sort();
    wanted.sort();
    if !declared.is_empty() && extras != wanted {
        report.relocked = true;
        report.backends_rewritten = true;
        if !dry_run {
            let mut manifest = manifest.clone();
            let base = settings.value("torch.index_url").unwrap_or_default();
            manifest.set_torch_backends(&declared, &base);
            manifest.save()?;
        }
    }
    if report.relocked || !lock_is_current(tools, env) {
        report.relocked = true;
        if !dry_run {
            reporter.phase("Resolving Python dependencies");
            uv_lock(tools, env)?;
        }
    }
    let backend = env.backend();
    if !report.relocked || !dry_run {
        let plan = uv_sync(tools, env, &backend, SyncMode::DryRun)?;
        let (changes, extras) = parse_sync_plan(&plan)?;
        report.packages_changed = changes;
        report.extra_packages = extras;
    }
    let node_ctx = crate::nodes::NodeContext {
        workspace,
        settings,
        tools,
        env,
        reporter,
    };
    let node_entries = crate::nodes::entry::read_all(&manifest);
    report.nodes_changed = crate::nodes::install::apply(&node_ctx, &node_entries, dry_run)
        .map_err(|e| EnvError::Nodes(Box::new(e)))?;
    if !dry_run {
        reporter.phase(&format!("Installing Python packages (torch backend {backend})"));
        let mode = if prune { SyncMode::Exact } else { SyncMode::Inexact };
        uv_sync(tools, env, &backend, mode)?;
        report.pruned = prune && !report.extra_packages.is_empty();
        write_extra_model_paths(workspace, env)?;
        let mut state = env.state();
        state.torch_backend = Some(backend.to_string());
        state.sync_stamp = Some(env.fingerprint()?);
        env.save_state(&state)?;
    }
    Ok(report)
}

/// Split the JSON plan of `uv sync --dry-run --exact --output-format json` into lock-driven
/// changes (`+ name==version`, `- name==version`) and extra packages the lock does not list.
fn parse_sync_plan(json: &str) -> Result<(Vec<String>, Vec<String>), UvError> {
    #[derive(Deserialize)]
    struct Plan {
        sync: Option<PlanSync>,
    }
    #[derive(Deserialize)]
    struct PlanSync {
        #[serde(default)]
        changes: Vec<PlanChange>,
    }
    #[derive(Deserialize)]
    struct PlanChange {
        name: String,
        version: String,
        action: String,
    }
    let plan: Plan = serde_json::from_str(json).map_err(|e| UvError::UnexpectedOutput {
        command: "uv sync --dry-run --output-format json".into(),
        reason: e.to_string(),
    })?;
    let mut removed: Vec<String> = Vec::new();
    let mut added: Vec<String> = Vec::new();
    for change in plan.sync.map(|s| s.changes).unwrap_or_default() {
        let pkg = format!("{}=={}", change.name, change.version);
        match change.action.as_str() {
            "installed" => added.push(pkg),
            "uninstalled" => removed.push(pkg),
            // Same version again (e.g. a changed source): both sides of a change.
            _ => {
                removed.push(pkg.clone());
                added.push(pkg);
            }
        }
    }
    let added_names: Vec<String> = added.iter().map(|p| manifest::requirement_name(p)).collect();
    let mut changes: Vec<String> = added.iter().map(|p| format!("+ {p}")).collect();
    let mut extras = Vec::new();
    for pkg in removed {
        if added_names.contains(&manifest::requirement_name(&pkg)) {
            changes.push(format!("- {pkg}"));
        } else {
            extras.push(pkg);
        }
    }
    Ok((changes, extras))
}

/// Delete an environment's folder (never shared models or other environments).
pub fn delete(workspace: &mut Workspace, env: &Environment) -> Result<(), EnvError> {
    if let Some(pid) = env.running_pid() {
        return Err(EnvError::Running {
            name: env.name.clone(),
            pid,
        });
    }
    // Remove the marker first: an interrupted delete leaves debris, never a half environment.
    fs_err::remove_file(env.ready_marker())?;
    fs_err::remove_dir_all(&env.root)?;
    if workspace.active_environment() == Some(env.name.as_str()) {
        workspace.set_active_environment(None)?;
    }
    Ok(())
}

/// What `comfyui update` did.
#[derive(Debug, Clone, Serialize)]
pub struct ComfyUiUpdate {
    pub from: ComfyUiPin,
    pub to: ComfyUiPin,
    /// The user's own packages, kept as they were.
    pub packages: Vec<String>,
    /// The manifest was moved from the legacy layout first (what went where).
    pub migrated: Option<crate::python_deps::layout::LegacySplit>,
}

/// Move ComfyUI to another ref, replace ComfyUI's dependency group with its requirements,
/// re-lock and sync — all or nothing. The user's packages are kept; a legacy manifest is moved
/// to the split layout, judging by the OLD commit's `requirements.txt` what was ComfyUI's.
pub fn update_comfyui(
    workspace: &Workspace,
    settings: &Settings,
    tools: &Tools,
    env: &Environment,
    reference: Option<&str>,
    reporter: &dyn Reporter,
) -> Result<ComfyUiUpdate, EnvError> {
    use crate::python_deps::layout;
    let mut manifest = env.manifest()?;
    let old = manifest.comfyui()?;
    let repo = settings.value("comfyui.repo").unwrap_or_default();
    let mirror = ComfyUiMirror::new(tools.git.clone(), &workspace.cache_dir(), &repo);
    if reference.is_none() {
        mirror.ensure(reporter)?;
        mirror.fetch(reporter)?;
    }
    let resolved = mirror.resolve(reference, reporter)?;
    let new = ComfyUiPin {
        reference: resolved.reference.clone(),
        commit: resolved.commit.clone(),
    };
    let mut tx = FileTransaction::new();
    tx.track(&env.manifest_path())?;
    tx.track(&env.lock_path())?;
    tx.track(&env.state_path())?;
    let result = (|| {
        // Read before the checkout moves: it may be the only copy of the old requirements.
        let old_requirements = (manifest.layout() == manifest::Layout::Legacy)
            .then(|| layout::comfyui_requirements_at(&mirror, env, &old.commit))
            .flatten();
        reporter.phase(&format!(
            "Checking out ComfyUI {} ({})",
            new.reference,
            comfydock_foundation::display_text::short_hash(&new.commit)
        ));
        mirror.move_checkout(&env.comfyui(), &new.commit)?;
        let text = fs_err::read_to_string(env.comfyui().join("requirements.txt")).unwrap_or_default();
        let requirements = manifest::parse_requirements(&text);
        let migrated = layout::migrate(&mut manifest, old_requirements.as_ref());
        if let Some(split) = &migrated {
            reporter.status(
                "Migrated",
                "pyproject.toml: ComfyUI's requirements moved to the `comfyui` dependency group",
            );
            if split.guessed {
                reporter.warning(&format!(
                    "ComfyUI's requirements at {} could not be read; kept {} as your packages (remove any you do not want with `comfydock -e {} py remove NAME`)",
                    &old.commit[..12.min(old.commit.len())],
                    split.user.join(", "),
                    env.name
                ));
            }
        }
        manifest.set_comfyui(&new);
        manifest.set_dependency_group(manifest::COMFYUI_GROUP, &requirements.dependencies);
        manifest.save()?;
        reporter.phase("Resolving Python dependencies");
        uv_lock(tools, env)?;
        reporter.phase("Installing Python packages");
        uv_sync(tools, env, &env.backend(), SyncMode::Inexact)?;
        let mut state = env.state();
        state.sync_stamp = Some(env.fingerprint()?);
        env.save_state(&state)?;
        Ok::<_, EnvError>(migrated)
    })();
    match result {
        Ok(migrated) => {
            tx.commit();
            Ok(ComfyUiUpdate {
                from: old,
                to: new,
                packages: manifest.dependencies(),
                migrated,
            })
        }
        Err(err) => {
            tx.rollback()?;
            // Put ComfyUI and the packages back as they were.
            let _ = mirror.move_checkout(&env.comfyui(), &old.commit);
            let _ = uv_sync(tools, env, &env.backend(), SyncMode::Inexact);
            Err(err)
        }
    }
}

/// Resolve `uv` for environment work, with the workspace-shared cache.
pub fn tools(workspace: &Workspace, settings: &Settings, reporter: &dyn Reporter) -> Result<Tools, EnvError> {
    let git = Git::find()?;
    let uv = Uv::locate_or_install(
        settings.value("uv.path").as_deref(),
        &workspace.tools_dir(),
        reporter,
    )?
    .with_cache_dir(workspace.cache_dir().join("uv"));
    Ok(Tools { git, uv })
}

/// What an imported environment is made of (`comfydock import`): its name, this machine's
/// backend, and the `.cec` files it starts from.
#[derive(Debug, Clone)]
pub struct ImportFiles {
    pub name: String,
    pub backend: TorchBackend,
    /// Why this backend (shown by `import`).
    pub backend_reason: String,
    /// Whether uv may build packages from source (`--run-install-scripts`); without it, uv
    /// runs with `--no-build` so no code from the files runs.
    pub allow_builds: bool,
    /// `pyproject.toml`, byte for byte.
    pub pyproject: Vec<u8>,
    /// `uv.lock`, byte for byte.
    pub lock: Vec<u8>,
    /// `.python-version` contents (e.g. `3.12`).
    pub python_version: String,
    /// Workflows as `(name relative to .cec/workflows, bytes)`.
    pub workflows: Vec<(String, Vec<u8>)>,
}

/// Create an environment from recorded `.cec` files: ComfyUI at the manifest's commit, the lock
/// synced frozen with `backend`, an initial commit. `populate` runs after the files are written
/// and before the packages are installed (dev nodes, custom nodes, workflows); it returns
/// nothing on success. On any failure the partial environment is removed.
pub fn create_from_files(
    workspace: &Workspace,
    settings: &Settings,
    tools: &Tools,
    files: &ImportFiles,
    populate: &mut dyn FnMut(&Environment) -> Result<(), EnvError>,
    reporter: &dyn Reporter,
) -> Result<Created, EnvError> {
    let (name, backend) = (files.name.as_str(), &files.backend);
    validate_name(name)?;
    sweep_partial(workspace, reporter)?;
    let env = Environment::at(workspace, name);
    if env.root.exists() {
        return Err(EnvError::Exists(name.to_owned()));
    }
    fs_err::create_dir_all(&env.root)?;
    let result = (|| {
        let cec = env.cec();
        fs_err::create_dir_all(&cec)?;
        write_atomic(&env.manifest_path(), &files.pyproject)?;
        write_atomic(&env.lock_path(), &files.lock)?;
        write_atomic(
            &cec.join(".python-version"),
            format!("{}\n", files.python_version.trim()),
        )?;
        write_atomic(&cec.join(".gitignore"), ".venv/\n__pycache__/\n")?;
        let workflows = cec.join("workflows");
        fs_err::create_dir_all(&workflows)?;
        write_atomic(&workflows.join(".gitkeep"), "")?;
        for (rel, bytes) in &files.workflows {
            let path = workflows.join(rel);
            fs_err::create_dir_all(path.parent().unwrap_or(&workflows))?;
            write_atomic(&path, bytes)?;
        }
        let manifest = env.manifest()?;
        let pin = manifest.comfyui()?;
        reporter.phase("Resolving ComfyUI");
        let repo = settings.value("comfyui.repo").unwrap_or_default();
        let mirror = ComfyUiMirror::new(tools.git.clone(), &workspace.cache_dir(), &repo);
        let resolved = mirror.resolve(Some(&pin.commit), reporter)?;
        reporter.phase(&format!(
            "Checking out ComfyUI {} ({})",
            pin.reference,
            comfydock_foundation::display_text::short_hash(&resolved.commit)
        ));
        mirror.checkout(&resolved.commit, &env.comfyui())?;
        crate::comfyui_process::create_data_directories(&env)?;
        env.save_state(&LocalState {
            torch_backend: Some(backend.to_string()),
            sync_stamp: None,
        })?;
        populate(&env)?;
        reporter.phase(&format!("Installing Python packages (torch backend {backend})"));
        uv_sync_checked(tools, &env, backend, SyncMode::Inexact, files.allow_builds)?;
        write_extra_model_paths(workspace, &env)?;
        reporter.phase("Committing .cec");
        init_cec_repo(&tools.git, &env)?;
        commit_all(&tools.git, &env, &format!("Import environment {name}"))?;
        env.save_state(&LocalState {
            torch_backend: Some(backend.to_string()),
            sync_stamp: Some(env.fingerprint()?),
        })?;
        write_atomic(&env.ready_marker(), "")?;
        Ok(Created {
            name: name.to_owned(),
            path: env.root.clone(),
            comfyui: pin,
            comfyui_tag: resolved.tag,
            python: files.python_version.trim().to_owned(),
            torch_backend: backend.to_string(),
            torch_backend_reason: files.backend_reason.clone(),
            mirror_cloned: false,
        })
    })();
    result.map_err(|err| {
        let _ = fs_err::remove_dir_all(&env.root);
        EnvError::Create {
            name: name.to_owned(),
            source: Box::new(err),
        }
    })
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

    #[test]
    fn sync_plan_separates_extras() {
        let change = |name: &str, version: &str, action: &str| serde_json::json!({"name": name, "version": version, "action": action});
        let out = serde_json::json!({
            "schema": {"version": "preview"},
            "sync": {"action": "check", "changes": [
                change("extra-pkg", "1.0", "uninstalled"),
                change("tinynum", "1.26.4", "uninstalled"),
                change("tinynum", "2.1.0", "installed"),
                change("new-pkg", "3", "installed"),
            ]},
            "dry_run": true
        })
        .to_string();
        let (changes, extras) = parse_sync_plan(&out).unwrap();
        assert_eq!(extras, ["extra-pkg==1.0"]);
        assert!(changes.contains(&"+ new-pkg==3".to_owned()));
        assert!(changes.contains(&"- tinynum==1.26.4".to_owned()));
        assert!(parse_sync_plan("Would install 1 package").is_err());
    }
}

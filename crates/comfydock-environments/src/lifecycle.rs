//! Create, inspect, sync, update and delete whole environments: the operations that span an
//! environment's ComfyUI checkout, Python packages, custom nodes and tracked workflows. The
//! pieces they combine live below ([`crate::environment`], [`crate::nodes`],
//! [`crate::python_deps`], [`crate::comfyui_process`], [`crate::workflow_tracking`]).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::comfyui_source::{ComfyUiMirror, SourceError};
use crate::environment::{
    ComfyUiRequirementsError, EnvError, Environment, Interrupt, LocalState, SyncMode, Tools, commit_all,
    init_cec_repo, lock_is_current, sweep_partial, uncommitted, uv_lock, uv_sync, uv_sync_checked,
    validate_name, write_extra_model_paths,
};
use crate::manifest::{self, ComfyUiPin, FileTransaction, Manifest, ManifestError, NewManifest};
use crate::nodes::NodeError;
use crate::settings::Key;
use crate::settings::Settings;
use crate::torch_backend::{self, DEFAULT_LOCKED_BACKENDS, InvalidBackend, TorchBackend};
use crate::workspace::Workspace;
use comfydock_foundation::Hinted;
use comfydock_foundation::atomic_file::write_atomic;
use comfydock_foundation::git::Git;
use comfydock_foundation::reporter::Reporter;
use comfydock_foundation::uv::{Uv, UvError};

/// Why `sync` failed: an environment step, or installing the custom nodes the manifest lists.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Env(#[from] EnvError),
    #[error(transparent)]
    Nodes(#[from] NodeError),
}

impl Hinted for SyncError {
    fn hint(&self) -> Option<String> {
        match self {
            Self::Env(e) => e.hint(),
            Self::Nodes(e) => e.hint(),
        }
    }
}

impl SyncError {
    /// uv's stderr when a uv command failed.
    pub fn uv_stderr(&self) -> Option<&str> {
        match self {
            Self::Env(e) => e.uv_stderr(),
            Self::Nodes(_) => None,
        }
    }
}

macro_rules! sync_error_via_env {
    ($($t:ty),*) => {$(
        impl From<$t> for SyncError {
            fn from(e: $t) -> Self {
                Self::Env(e.into())
            }
        }
    )*};
}
sync_error_via_env!(ManifestError, SourceError, UvError, std::io::Error);

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
    let repo = settings.value(Key::ComfyuiRepo).unwrap_or_default();
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
    let torch_index_url = settings.value(Key::TorchIndexUrl).unwrap_or_default();
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
    uv_lock(tools, env, reporter)?;
    phase(&format!("Installing Python packages (torch backend {backend})"))?;
    uv_sync(tools, env, &backend, SyncMode::Inexact, reporter)?;
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
    for (key, err) in manifest::node_entry::unsafe_entries(&manifest) {
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
    let node_entries = manifest::node_entry::read_all(&manifest);
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
        running_pid: crate::comfyui_process::running(env).map(|r| r.pid),
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
) -> Result<SyncReport, SyncError> {
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
            let repo = settings.value(Key::ComfyuiRepo).unwrap_or_default();
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
            let base = settings.value(Key::TorchIndexUrl).unwrap_or_default();
            manifest.set_torch_backends(&declared, &base);
            manifest.save()?;
        }
    }
    if report.relocked || !lock_is_current(tools, env) {
        report.relocked = true;
        if !dry_run {
            reporter.phase("Resolving Python dependencies");
            uv_lock(tools, env, reporter)?;
        }
    }
    let backend = env.backend();
    if !report.relocked || !dry_run {
        let plan = uv_sync(tools, env, &backend, SyncMode::DryRun, reporter)?;
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
    let node_entries = manifest::node_entry::read_all(&manifest);
    report.nodes_changed = crate::nodes::install::apply(&node_ctx, &node_entries, dry_run)?;
    if !dry_run {
        reporter.phase(&format!("Installing Python packages (torch backend {backend})"));
        let mode = if prune { SyncMode::Exact } else { SyncMode::Inexact };
        uv_sync(tools, env, &backend, mode, reporter)?;
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
    if let Some(pid) = crate::comfyui_process::running(env).map(|r| r.pid) {
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
    pub migrated: Option<crate::dependency_groups::LegacySplit>,
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
    use crate::dependency_groups as layout;
    let mut manifest = env.manifest()?;
    let old = manifest.comfyui()?;
    let repo = settings.value(Key::ComfyuiRepo).unwrap_or_default();
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
        uv_lock(tools, env, reporter).map_err(|err| requirements_error(env, &manifest, &old, &new, err))?;
        reporter.phase("Installing Python packages");
        uv_sync(tools, env, &env.backend(), SyncMode::Inexact, reporter)?;
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
            let _ = uv_sync(tools, env, &env.backend(), SyncMode::Inexact, reporter);
            Err(err)
        }
    }
}

/// A failed lock of a new ComfyUI version, explained: which requirement (and whose) uv could
/// not satisfy.
fn requirements_error(
    env: &Environment,
    manifest: &Manifest,
    old: &ComfyUiPin,
    new: &ComfyUiPin,
    err: EnvError,
) -> EnvError {
    let Some(stderr) = err.uv_stderr() else {
        return err;
    };
    let nodes = manifest::node_entry::read_all(manifest);
    let origin_of_group = |group: &str| crate::dependency_groups::group_origin(manifest, &nodes, group);
    let sides = crate::resolver_failure::conflict_sides(
        stderr,
        &origin_of_group,
        crate::dependency_groups::project_origin(manifest),
    );
    let problem = if sides.is_empty() {
        "its requirements cannot be resolved".to_owned()
    } else {
        crate::resolver_failure::conflict_message(&sides)
    };
    EnvError::ComfyUiRequirements(Box::new(ComfyUiRequirementsError {
        name: env.name.clone(),
        reference: new.reference.clone(),
        kept: old.reference.clone(),
        problem,
        resolver: crate::resolver_failure::ResolverOutput::from_uv_stderr(stderr),
    }))
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
    /// Workflows as `(name relative to .cec/workflows, file to copy)`; copied by streaming, so a
    /// large file is never held in memory.
    pub workflows: Vec<(String, PathBuf)>,
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
        // A fresh folder removed on failure: plain copies (no per-file temp file and sync, which
        // made bundles with thousands of workflows slow).
        for (rel, source) in &files.workflows {
            let path = workflows.join(rel);
            fs_err::create_dir_all(path.parent().unwrap_or(&workflows))?;
            fs_err::copy(source, &path)?;
        }
        let manifest = env.manifest()?;
        let pin = manifest.comfyui()?;
        reporter.phase("Resolving ComfyUI");
        let repo = settings.value(Key::ComfyuiRepo).unwrap_or_default();
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
        uv_sync_checked(
            tools,
            &env,
            backend,
            SyncMode::Inexact,
            files.allow_builds,
            reporter,
        )?;
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

#[cfg(test)]
mod tests {
    use super::*;

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

//! `comfydock import`: validate a bundle completely, then create an environment from it.
//!
//! Nothing in the workspace is touched until [`open`] has checked the whole bundle. A failure
//! while creating the environment removes it; a node or model that fails does not stop the
//! import and is listed in the [`ImportReport`].

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::BundleError;
use super::archive::{self, Limits, Unpacked};
use super::comfygit::{self, ComfygitPlan};
use super::format::{
    BundleManifest, ComfyUiRecord, Counts, ModelRef, current_platform, current_version, is_newer_version,
};
use super::substitution::{self, Substitution};
use comfydock_environments::environment::{self, EnvError, Tools};
use comfydock_environments::lifecycle::{self, BackendChoice, Created, ImportFiles};
use comfydock_environments::lock_coverage;
use comfydock_environments::manifest::Manifest;
use comfydock_environments::manifest::node_entry as entry;
use comfydock_environments::nodes::{NodeContext, NodeSource, install};
use comfydock_environments::settings::Settings;
use comfydock_environments::torch_backend::{self, TorchBackend};
use comfydock_environments::workflow_tracking;
use comfydock_environments::workspace::Workspace;
use comfydock_foundation::reporter::Reporter;

/// A bundle that passed every check, unpacked in a temporary folder.
#[derive(Debug)]
pub struct OpenedBundle {
    pub path: PathBuf,
    /// For a comfygit export, a manifest synthesised from its `pyproject.toml` (format version 0).
    pub manifest: BundleManifest,
    /// `Some` for a comfygit export: what maps and what does not.
    pub comfygit: Option<ComfygitPlan>,
    /// Packages the lock would build from source (running their code); see [`super::builds`].
    pub builds: Vec<super::builds::BuildSource>,
    files: Unpacked,
    pyproject: Vec<u8>,
}

/// Validate `bundle` (container, checksums, format version) without touching any workspace.
pub fn open(bundle: &Path, limits: Limits) -> Result<OpenedBundle, BundleError> {
    let files = archive::read(bundle, limits)?;
    if !files.files.contains_key(super::format::MANIFEST_NAME)
        && let Ok(text) = files.read("pyproject.toml")
        && comfygit::is_comfygit(&String::from_utf8_lossy(&text))
    {
        let plan = comfygit::plan(&String::from_utf8_lossy(&text));
        let manifest = BundleManifest {
            format_version: 0,
            comfydock_version: String::new(),
            created_at: "unknown (comfygit export)".into(),
            environment_name: plan.environment_name.clone(),
            platform: String::new(),
            python: plan.python.clone().unwrap_or_default(),
            comfyui: ComfyUiRecord {
                reference: plan
                    .comfyui
                    .clone()
                    .unwrap_or_else(|| "the newest release".into()),
                commit: plan.comfyui.clone().unwrap_or_default(),
            },
            torch_backend: String::new(),
            torch_backends: Vec::new(),
            cec_commit: String::new(),
            counts: Counts {
                workflows: files.under("workflows").len(),
                registry_nodes: plan.registry_nodes,
                git_nodes: plan.git_nodes,
                dev_nodes: 0,
                models: 0,
            },
            models: Vec::new(),
            files: files.files.clone(),
        };
        return Ok(OpenedBundle {
            path: bundle.to_path_buf(),
            manifest,
            comfygit: Some(plan),
            builds: Vec::new(),
            files,
            pyproject: text,
        });
    }
    let manifest = archive::verify_manifest(bundle, &files)?;
    let pyproject = files.read("pyproject.toml")?;
    checked(bundle, manifest, files, pyproject)
}

/// The checks every source of an environment passes before anything is created from it: the
/// manifest parses and is not from a newer schema, node keys and versions, workflow names and
/// model targets are plain names, and packages the lock would build are listed for consent.
pub(crate) fn checked(
    bundle: &Path,
    manifest: BundleManifest,
    files: Unpacked,
    pyproject: Vec<u8>,
) -> Result<OpenedBundle, BundleError> {
    let invalid = |reason: String| BundleError::Invalid {
        path: bundle.to_path_buf(),
        reason,
    };
    let parsed =
        Manifest::parse(Path::new("pyproject.toml"), &String::from_utf8_lossy(&pyproject)).map_err(|e| {
            match e {
                // A bundle from a newer comfydock is not broken: say to upgrade.
                newer @ comfydock_environments::manifest::ManifestError::NewerSchema { .. } => {
                    BundleError::Manifest(newer)
                }
                e => invalid(format!("pyproject.toml does not parse ({e})")),
            }
        })?;
    // Names and targets become paths on this machine: plain names only.
    if let Some((key, err)) = entry::unsafe_entries(&parsed).into_iter().next() {
        return Err(invalid(format!(
            "node `{key}` has an unsafe {} `{}`: {}",
            err.what(),
            comfydock_foundation::redact::redact_text(err.value()),
            err.reason()
        )));
    }
    if let Some(name) = workflow_tracking::unsafe_tracked(&parsed).into_iter().next() {
        return Err(invalid(format!(
            "workflow name `{name}` is not a plain relative name"
        )));
    }
    for model in &manifest.models {
        if super::models::clean_target(&model.target).as_deref() != Some(model.target.as_str()) {
            return Err(invalid(format!(
                "model target `{}` is not a path under models/",
                model.target
            )));
        }
    }
    let lock = files.read("uv.lock").unwrap_or_default();
    let builds = super::builds::build_sources(
        &String::from_utf8_lossy(&pyproject),
        &String::from_utf8_lossy(&lock),
    );
    Ok(OpenedBundle {
        path: bundle.to_path_buf(),
        manifest,
        comfygit: None,
        builds,
        files,
        pyproject,
    })
}

impl OpenedBundle {
    /// Version and platform differences worth a warning (the import still proceeds).
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        if is_newer_version(&self.manifest.comfydock_version, current_version()) {
            out.push(format!(
                "bundle created with a newer comfydock ({}; this is {}); it may use things this version ignores",
                self.manifest.comfydock_version,
                current_version()
            ));
        }
        let here = current_platform();
        if !self.manifest.platform.is_empty() && self.manifest.platform != here {
            out.push(format!(
                "bundle created on {}, importing on {here}; packages and paths may differ",
                self.manifest.platform
            ));
        }
        out
    }

    /// Refuse a bundle whose packages would be built from source, unless the user allowed it
    /// (`--run-install-scripts`).
    pub fn check_build_consent(&self, allow_builds: bool) -> Result<(), BundleError> {
        if allow_builds || self.builds.is_empty() {
            return Ok(());
        }
        Err(BundleError::BuildNeedsConsent {
            path: self.path.clone(),
            sources: self.builds.clone(),
        })
    }

    /// Dev node folder names carried by the bundle.
    pub fn dev_node_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .files
            .under("dev_nodes")
            .iter()
            .filter_map(|p| p.split('/').next().map(str::to_owned))
            .collect();
        names.dedup();
        names
    }

    /// Models the lists would download under `strategy` before looking locally: (count, bytes).
    pub fn model_totals(&self) -> (usize, u64) {
        (
            self.manifest.models.len(),
            self.manifest.models.iter().filter_map(|m| m.size).sum(),
        )
    }

    /// How many models, and how many bytes, the required-only choice downloads at most.
    pub fn required_model_totals(&self) -> (usize, u64) {
        let required = self.manifest.models.iter().filter(|m| m.is_required());
        required
            .clone()
            .fold((0, 0), |(n, bytes), m| (n + 1, bytes + m.size.unwrap_or(0)))
    }
}

/// The name to import as: `wanted`, or `wanted-1`, `wanted-2`, … when taken. Returns the name
/// and whether it changed.
pub fn free_name(workspace: &Workspace, wanted: &str) -> (String, bool) {
    let taken = |n: &str| workspace.environments_dir().join(n).exists();
    if !taken(wanted) {
        return (wanted.to_owned(), false);
    }
    let mut i = 1;
    loop {
        let candidate = format!("{wanted}-{i}");
        if !taken(&candidate) {
            return (candidate, true);
        }
        i += 1;
    }
}

/// Which models to download (`--models`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelStrategy {
    All,
    Required,
    Skip,
}

impl std::str::FromStr for ModelStrategy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "all" => Ok(Self::All),
            "required" => Ok(Self::Required),
            "skip" => Ok(Self::Skip),
            other => Err(format!("unknown model strategy `{other}` (all, required, skip)")),
        }
    }
}

/// Why one model of a bundle could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum ModelFetchError {
    #[error("the bundle lists no download source")]
    NoSource,
    #[error(transparent)]
    Download(#[from] comfydock_models::download::DownloadError),
    #[error(transparent)]
    Index(#[from] comfydock_models::index::IndexError),
    #[error(transparent)]
    Models(#[from] comfydock_environments::workspace_models::WorkspaceModelsError),
}

/// Model files on this machine: lookup by hash, verified downloads, free space. Implemented by
/// the CLI on top of the model index.
pub trait ModelProvider {
    /// A file with this content already on this machine, as a path relative to the models root.
    fn find_local(&self, model: &ModelRef) -> Option<String>;
    /// Download `model` to `target` under the models root, verifying its hash.
    fn download(&self, model: &ModelRef, reporter: &dyn Reporter) -> Result<(), ModelFetchError>;
    /// Free bytes where models are downloaded to.
    fn free_space(&self) -> Option<u64>;
    /// Where models are downloaded to (for messages).
    fn root(&self) -> PathBuf;
}

/// Options of `comfydock import`.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// The environment name (already free; see [`free_name`]).
    pub name: String,
    pub models: ModelStrategy,
    /// `--torch-backend`: `auto` detects this machine's and falls back to `cpu` when the lock does
    /// not cover it; an explicit backend must be covered.
    pub backend: BackendChoice,
    /// `--run-install-scripts`: let uv build [`OpenedBundle::builds`] (running their code).
    pub allow_builds: bool,
}

/// What happened to one model of an import.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelState {
    /// Found on this machine by hash.
    Local,
    /// To be downloaded once the environment exists.
    Pending,
    Downloaded,
    /// Left out by the user's choice (`--models skip`).
    Skipped,
    Failed,
}

/// One model and what happened to it.
#[derive(Debug, Clone, Serialize)]
pub struct ModelOutcome {
    pub target: String,
    pub criticality: String,
    pub size: Option<u64>,
    pub state: ModelState,
    /// Where it was found locally (when not at `target`), or why it failed.
    pub detail: Option<String>,
}

/// What `import` did.
#[derive(Debug, Clone, Serialize)]
pub struct ImportReport {
    pub created: Created,
    pub workflows: Vec<String>,
    pub dev_nodes: Vec<String>,
    pub nodes_installed: Vec<String>,
    /// `(node key, error)`; fix later with `comfydock node add`.
    pub nodes_failed: Vec<(String, String)>,
    pub models: Vec<ModelOutcome>,
    pub substitutions: Vec<Substitution>,
    pub warnings: Vec<String>,
    /// What a comfygit export carried that could not be mapped, and why.
    pub unmapped: Vec<String>,
}

/// The backend to sync an imported lock with, and why: an explicit one must be covered; `auto`
/// detects this machine's and falls back to `cpu` (with a warning) when the lock lacks it.
fn choose_backend(
    bundle: &OpenedBundle,
    choice: &BackendChoice,
    covered: &[TorchBackend],
    warnings: &mut Vec<String>,
) -> Result<(TorchBackend, String), BundleError> {
    let no_backend = |wanted: &TorchBackend| BundleError::NoBackend {
        path: bundle.path.clone(),
        wanted: wanted.to_string(),
        covered: covered.iter().map(ToString::to_string).collect(),
    };
    match choice {
        BackendChoice::Explicit(b) if covered.contains(b) => {
            Ok((b.clone(), "chosen with --torch-backend".into()))
        }
        BackendChoice::Explicit(b) => Err(no_backend(b)),
        BackendChoice::Auto => {
            let detected = torch_backend::detect();
            if covered.contains(&detected.backend) {
                return Ok((detected.backend, detected.reason));
            }
            let cpu = TorchBackend::cpu();
            if !covered.contains(&cpu) {
                return Err(no_backend(&detected.backend));
            }
            let reason = format!(
                "{}, but the lock does not cover `{}`",
                detected.reason, detected.backend
            );
            warnings.push(format!(
                "the lock does not cover torch backend `{}`; using `cpu`",
                detected.backend
            ));
            Ok((cpu, reason))
        }
    }
}

/// Create environment `options.name` from `bundle`.
pub fn import(
    workspace: &Workspace,
    settings: &Settings,
    tools: &Tools,
    bundle: &OpenedBundle,
    options: &ImportOptions,
    models: &dyn ModelProvider,
    reporter: &dyn Reporter,
) -> Result<ImportReport, BundleError> {
    if let Some(plan) = &bundle.comfygit {
        return import_comfygit(workspace, settings, tools, bundle, plan, options, reporter);
    }
    bundle.check_build_consent(options.allow_builds)?;
    let mut warnings = Vec::new();
    let pyproject_text = String::from_utf8_lossy(&bundle.pyproject).into_owned();
    let manifest = Manifest::parse(Path::new("pyproject.toml"), &pyproject_text)?;
    let _ = &manifest;
    let lock = bundle.files.read("uv.lock")?;
    let covered: Vec<TorchBackend> = lock_coverage::parse(&String::from_utf8_lossy(&lock))
        .into_iter()
        .map(|l| l.backend)
        .collect();
    let (backend, backend_reason) = choose_backend(bundle, &options.backend, &covered, &mut warnings)?;

    // Models: what is here already, what to download, and whether it fits — before any change.
    reporter.phase("Looking for models on this machine");
    let mut outcomes = Vec::new();
    let mut to_download: Vec<&ModelRef> = Vec::new();
    let mut renames: Vec<(String, String)> = Vec::new();
    for model in &bundle.manifest.models {
        let mut outcome = ModelOutcome {
            target: model.target.clone(),
            criticality: model.criticality.clone(),
            size: model.size,
            state: ModelState::Skipped,
            detail: None,
        };
        if let Some(local) = models.find_local(model) {
            outcome.state = ModelState::Local;
            if local != model.target {
                renames.push((
                    substitution::widget_value(&model.target).to_owned(),
                    substitution::widget_value(&local).to_owned(),
                ));
                outcome.detail = Some(local);
            }
        } else {
            let wanted = match options.models {
                ModelStrategy::All => true,
                ModelStrategy::Required => model.is_required(),
                ModelStrategy::Skip => false,
            };
            if wanted && !model.sources.is_empty() {
                to_download.push(model);
                outcome.state = ModelState::Pending;
            } else if wanted {
                outcome.detail = Some("no download source".into());
            }
        }
        outcomes.push(outcome);
    }
    let needed: u64 = to_download.iter().filter_map(|m| m.size).sum();
    if let Some(available) = models.free_space()
        && needed > available
    {
        return Err(BundleError::DiskSpace {
            path: models.root(),
            needed,
            available,
        });
    }

    let files = ImportFiles {
        name: options.name.clone(),
        backend,
        backend_reason,
        allow_builds: options.allow_builds,
        pyproject: bundle.pyproject.clone(),
        lock,
        python_version: bundle.files.read(".python-version").map_or_else(
            |_| bundle.manifest.python.clone(),
            |b| String::from_utf8_lossy(&b).trim().to_owned(),
        ),
        workflows: bundle
            .files
            .under("workflows")
            .into_iter()
            .map(|rel| {
                let path = bundle.files.path(&format!("workflows/{rel}"));
                (rel, path)
            })
            .collect(),
    };

    let mut dev_nodes = Vec::new();
    let mut installed = Vec::new();
    let mut failed = Vec::new();
    let mut substitutions = Vec::new();
    let mut workflows = Vec::new();
    let mut populate = |env: &environment::Environment| -> Result<(), EnvError> {
        let mut manifest = env.manifest()?;
        let entries = entry::read_all(&manifest);
        // Dev nodes from the bundle, into custom_nodes.
        let mut rewritten = false;
        for node in entries.iter().filter(|n| n.source == NodeSource::Dev) {
            let prefix = format!("dev_nodes/{}", node.name);
            let dest = install::custom_nodes(env).join(&node.name);
            for rel in bundle.files.under(&prefix) {
                let to = dest.join(&rel);
                fs_err::create_dir_all(to.parent().unwrap_or(&dest))?;
                fs_err::copy(bundle.files.path(&format!("{prefix}/{rel}")), &to)?;
            }
            if !dest.is_dir() {
                failed.push((node.key.clone(), "its sources are not in the bundle".to_owned()));
                continue;
            }
            let local = format!("custom_nodes/{}", node.name);
            if node.path.as_deref() != Some(local.as_str()) {
                let mut moved = node.clone();
                moved.path = Some(local.clone());
                entry::write_entry(&mut manifest, &moved);
                rewritten = true;
                warnings.push(format!(
                    "dev node `{}` was at `{}` on the exporting machine; it is now at `ComfyUI/{local}`",
                    node.name,
                    node.path.as_deref().unwrap_or_default()
                ));
            }
            dev_nodes.push(node.name.clone());
        }
        if rewritten {
            manifest.save()?;
        }
        // Registry and git nodes at their recorded versions (hashes verified by `install`).
        let ctx = NodeContext {
            workspace,
            settings,
            tools,
            env,
            reporter,
        };
        for node in entries.iter().filter(|n| n.source != NodeSource::Dev) {
            reporter.status("Installing", &format!("node `{}` {}", node.key, node.pinned()));
            match install::install(&ctx, node) {
                Ok(_) => installed.push(node.key.clone()),
                Err(e) => {
                    let mut text = e.to_string();
                    let mut source = std::error::Error::source(&e);
                    while let Some(cause) = source {
                        text.push_str(": ");
                        text.push_str(&cause.to_string());
                        source = cause.source();
                    }
                    reporter.warning(&format!("node `{}` failed: {text}", node.key));
                    failed.push((node.key.clone(), text));
                }
            }
        }
        // Workflows into ComfyUI's user folder, with local model paths substituted.
        let live = workflow_tracking::comfyui_workflows_dir(env);
        // One workflow in memory at a time, and only when model paths are rewritten; otherwise
        // a streamed copy into the fresh environment.
        for (rel, source) in &files.workflows {
            if !is_json(rel) {
                continue;
            }
            let name = rel.trim_end_matches(".json").to_owned();
            let to = live.join(rel);
            fs_err::create_dir_all(to.parent().unwrap_or(&live))?;
            let mut rewritten = None;
            if !renames.is_empty()
                && let Ok(mut value) = serde_json::from_slice::<serde_json::Value>(&fs_err::read(source)?)
            {
                let mut made = Vec::new();
                for (from, to) in &renames {
                    made.extend(substitution::rewrite(&name, &mut value, from, to));
                }
                if !made.is_empty() {
                    rewritten = Some(serde_json::to_vec_pretty(&value).expect("workflow serialises"));
                    substitutions.extend(made);
                }
            }
            match rewritten {
                Some(out) => comfydock_foundation::atomic_file::write_atomic(&to, out)?,
                None => {
                    fs_err::copy(source, &to)?;
                }
            }
            workflows.push(name);
        }
        Ok(())
    };
    let created = lifecycle::create_from_files(workspace, settings, tools, &files, &mut populate, reporter)?;

    // Downloads: after the environment exists; a failure is listed, not fatal.
    for (i, model) in to_download.iter().enumerate() {
        reporter.status(
            "Downloading",
            &format!("[{}/{}] {}", i + 1, to_download.len(), model.target),
        );
        let result = models.download(model, reporter);
        if let Some(outcome) = outcomes.iter_mut().find(|o| o.target == model.target) {
            match result {
                Ok(()) => outcome.state = ModelState::Downloaded,
                Err(e) => {
                    outcome.state = ModelState::Failed;
                    outcome.detail = Some(e.to_string());
                }
            }
        }
    }

    Ok(ImportReport {
        created,
        workflows,
        dev_nodes,
        nodes_installed: installed,
        nodes_failed: failed,
        models: outcomes,
        substitutions,
        warnings,
        unmapped: Vec::new(),
    })
}

fn is_json(name: &str) -> bool {
    Path::new(name)
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"))
}

/// Create an environment from a comfygit export: ComfyUI and Python as recorded, nodes added at
/// their versions/commits one by one (a failure is listed), workflows tracked and committed.
fn import_comfygit(
    workspace: &Workspace,
    settings: &Settings,
    tools: &Tools,
    bundle: &OpenedBundle,
    plan: &ComfygitPlan,
    options: &ImportOptions,
    reporter: &dyn Reporter,
) -> Result<ImportReport, BundleError> {
    let created = lifecycle::create(
        workspace,
        settings,
        tools,
        &lifecycle::CreateOptions {
            name: options.name.clone(),
            comfyui: plan.comfyui.clone(),
            python: plan.python.clone(),
            backend: options.backend.clone(),
        },
        reporter,
    )?;
    let env = environment::Environment::at(workspace, &created.name);
    let ctx = NodeContext {
        workspace,
        settings,
        tools,
        env: &env,
        reporter,
    };
    let mut installed = Vec::new();
    let mut failed = Vec::new();
    let result = (|| -> Result<Vec<String>, BundleError> {
        for spec in &plan.node_specs {
            reporter.status("Adding", &format!("node {spec}"));
            let outcome = comfydock_environments::nodes::NodeSpec::parse(spec)
                .and_then(|parsed| comfydock_environments::nodes::ops::add(&ctx, &[parsed], false));
            match outcome {
                Ok(_) => installed.push(spec.clone()),
                Err(e) => {
                    reporter.warning(&format!("node {spec} failed: {e}"));
                    failed.push((spec.clone(), e.to_string()));
                }
            }
        }
        let live = workflow_tracking::comfyui_workflows_dir(&env);
        let mut workflows = Vec::new();
        for rel in bundle.files.under("workflows") {
            if !is_json(&rel) {
                continue;
            }
            let to = live.join(&rel);
            fs_err::create_dir_all(to.parent().unwrap_or(&live))?;
            fs_err::copy(bundle.files.path(&format!("workflows/{rel}")), &to)?;
            workflows.push(rel.trim_end_matches(".json").to_owned());
        }
        workflow_tracking::track(&env, &workflows, false)
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        workflow_tracking::copy_tracked_into_cec(&env).map_err(|e| std::io::Error::other(e.to_string()))?;
        environment::commit_all(&tools.git, &env, "Import comfygit export")?;
        Ok(workflows)
    })();
    let workflows = match result {
        Ok(w) => w,
        Err(e) => {
            // Catastrophic: nothing half-imported stays behind.
            let _ = fs_err::remove_file(env.root.join(".ready"));
            let _ = fs_err::remove_dir_all(&env.root);
            return Err(e);
        }
    };
    Ok(ImportReport {
        created,
        workflows,
        dev_nodes: Vec::new(),
        nodes_installed: installed,
        nodes_failed: failed,
        models: Vec::new(),
        substitutions: Vec::new(),
        warnings: Vec::new(),
        unmapped: plan.unmapped.clone(),
    })
}

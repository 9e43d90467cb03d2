//! `export` and `import`: share a whole environment as one verified, deterministic bundle.

use std::path::PathBuf;

use clap::Args;
use comfydock_bundles::archive::Limits;
use comfydock_bundles::export::{self, ExportOptions};
use comfydock_bundles::import::{self, ImportOptions, ModelProvider, ModelState, ModelStrategy};
use comfydock_environments::environment;
use comfydock_environments::lifecycle;
use comfydock_environments::torch_backend;
use comfydock_environments::workspace::Workspace;

use super::Context;
use crate::error::{CommandError, CommandResult};
use crate::prompt::confirm;

/// `comfydock export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Bundle to write [default: <env>_export_<date of the last commit>.tar.gz]
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Export even when some models cannot be referenced (no hash or no target path)
    #[arg(long)]
    pub allow_issues: bool,
    /// Pack dev nodes larger than 200 MB
    #[arg(long)]
    pub allow_large_dev_nodes: bool,
}

/// `comfydock import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// A bundle written by `comfydock export`
    pub file: PathBuf,
    /// Environment name [default: the exported environment's name]
    #[arg(long)]
    pub name: Option<String>,
    #[command(flatten)]
    pub choices: ImportChoices,
}

/// What `import` and `clone` ask of the user, as flags.
#[derive(Debug, Args)]
pub struct ImportChoices {
    /// Which missing models to download: all, required, skip [default: asked on a terminal
    /// with the sizes and the free space; `required` otherwise]
    #[arg(long, value_name = "STRATEGY")]
    pub models: Option<ModelStrategy>,
    /// Let uv build local, git and source-only packages the lock names (runs their code)
    #[arg(long)]
    pub run_install_scripts: bool,
    /// PyTorch backend: auto (this machine's, else cpu), or one the lock covers
    #[arg(long, value_name = "BACKEND", default_value = "auto")]
    pub torch_backend: String,
}

impl ImportChoices {
    /// The import request for environment `wanted`; a usage error for an unknown backend.
    pub(super) fn request(&self, wanted: String) -> CommandResult<ImportRequest> {
        Ok(ImportRequest {
            wanted,
            models: self.models,
            run_install_scripts: self.run_install_scripts,
            backend: self
                .torch_backend
                .parse()
                .map_err(|e: torch_backend::InvalidBackend| CommandError::usage(e.to_string()))?,
        })
    }
}

pub fn export(ctx: &Context, args: &ExportArgs) -> CommandResult {
    let workspace = ctx.workspace()?;
    let env = environment::select(&workspace, ctx.global.env.as_deref())?;
    let git = comfydock_foundation::git::Git::find()?;
    let out = args
        .output
        .clone()
        .unwrap_or_else(|| PathBuf::from(export::default_file_name(&git, &env)));
    let options = ExportOptions {
        allow_issues: args.allow_issues,
        allow_large_dev_nodes: args.allow_large_dev_nodes,
    };
    let report = export::export(&git, &env, &out, options, &ctx.reporter)?;
    if ctx.printer.json_mode() {
        ctx.printer.json(&report);
        return Ok(());
    }
    for warning in &report.warnings {
        ctx.printer.warn(warning);
    }
    let counts = &report.manifest.counts;
    ctx.printer.status(
        "Exported",
        format!(
            "{} ({})",
            report.path.display(),
            comfydock_foundation::display_text::human_bytes(report.size)
        ),
    );
    ctx.printer.info("Summary:");
    ctx.printer.info(format!("  • {} workflows", counts.workflows));
    ctx.printer.info(format!(
        "  • {} custom nodes ({} development, {} registry, {} git)",
        counts.nodes(),
        counts.dev_nodes,
        counts.registry_nodes,
        counts.git_nodes
    ));
    ctx.printer
        .info(format!("  • {} models referenced", counts.models));
    ctx.printer.hint(format!(
        "share it; anyone can recreate this environment with `comfydock import {}`",
        report.path.display()
    ));
    Ok(())
}

/// `--models`, or the user's answer on a terminal (sizes and free space shown), or `required`.
fn model_strategy(
    ctx: &Context,
    bundle: &import::OpenedBundle,
    chosen: Option<ModelStrategy>,
    models: &comfydock_bundles::indexed_models::IndexedModels,
) -> CommandResult<ModelStrategy> {
    use comfydock_foundation::display_text::human_bytes;
    if let Some(strategy) = chosen {
        return Ok(strategy);
    }
    let (all, all_bytes) = bundle.model_totals();
    let interactive =
        std::io::IsTerminal::is_terminal(&std::io::stdin()) && !ctx.global.yes && !ctx.printer.json_mode();
    if all == 0 || !interactive {
        return Ok(ModelStrategy::Required);
    }
    let (required, required_bytes) = bundle.required_model_totals();
    let free = models
        .free_space()
        .map_or_else(|| "unknown".to_owned(), human_bytes);
    let options = vec![
        format!("all: {all} models, up to {}", human_bytes(all_bytes)),
        format!(
            "required: {required} models, up to {}",
            human_bytes(required_bytes)
        ),
        "skip: none now (`comfydock -e NAME sync --models` fetches them later)".to_owned(),
    ];
    let question = format!(
        "Which models should be downloaded? (files already on this machine are reused; {free} free under {})",
        models.root().display()
    );
    match crate::prompt::choose(&question, &options)? {
        1 => Ok(ModelStrategy::All),
        2 => Ok(ModelStrategy::Required),
        3 => Ok(ModelStrategy::Skip),
        _ => Err(
            CommandError::usage("That is not one of the choices; nothing was changed")
                .with_hint("pass `--models all|required|skip`"),
        ),
    }
}

pub fn import(ctx: &Context, args: &ImportArgs) -> CommandResult {
    let workspace = ctx.workspace()?;
    // Everything is validated before the workspace is touched.
    let bundle = import::open(&args.file, Limits::default())?;
    let m = &bundle.manifest;
    let request = args
        .choices
        .request(args.name.clone().unwrap_or_else(|| m.environment_name.clone()))?;
    environment::validate_name(&request.wanted)?;
    let (count, bytes) = bundle.model_totals();
    if !ctx.printer.json_mode() {
        if bundle.comfygit.is_some() {
            ctx.printer.warn(
                "this is a comfygit export: no lock, checksums or dev-node sources; mapping what is clear",
            );
        }
        ctx.printer.info("Import summary:");
        ctx.printer.info(format!(
            "  Source:  {} (exported {})",
            m.environment_name, m.created_at
        ));
        ctx.printer.info(format!(
            "  ComfyUI: {} ({})",
            m.comfyui.reference,
            comfydock_foundation::display_text::short_hash(&m.comfyui.commit)
        ));
        ctx.printer.info(format!("  Python:  {}", m.python));
        ctx.printer.info(format!("  • {} workflows", m.counts.workflows));
        ctx.printer.info(format!(
            "  • {} custom nodes ({} dev, {} registry, {} git)",
            m.counts.nodes(),
            m.counts.dev_nodes,
            m.counts.registry_nodes,
            m.counts.git_nodes
        ));
        ctx.printer.info(format!(
            "  • {count} models ({} total)",
            comfydock_foundation::display_text::human_bytes(bytes)
        ));
        if !bundle.builds.is_empty() {
            ctx.printer.info(format!(
                "  • {} packages built from source (their code runs):",
                bundle.builds.len()
            ));
            for source in &bundle.builds {
                ctx.printer.info(format!("      {source}"));
            }
        }
    }
    import_opened(ctx, &workspace, &bundle, &request, &|_| Ok(()))
}

/// How to import an opened bundle (a bundle file, or a cloned `.cec`).
pub(super) struct ImportRequest {
    pub wanted: String,
    pub models: Option<ModelStrategy>,
    pub run_install_scripts: bool,
    pub backend: lifecycle::BackendChoice,
}

/// Import `bundle` into the workspace under `request.wanted` (or a free variant); `created`
/// runs once the environment exists, before the report is printed.
pub(super) fn import_opened(
    ctx: &Context,
    workspace: &Workspace,
    bundle: &import::OpenedBundle,
    request: &ImportRequest,
    created: &dyn Fn(&environment::Environment) -> CommandResult,
) -> CommandResult {
    let wanted = &request.wanted;
    for warning in bundle.warnings() {
        ctx.printer.warn(warning);
    }
    bundle.check_build_consent(request.run_install_scripts)?;
    let _lock = ctx.lock(workspace)?;
    let workspace = Workspace::open(workspace.root())?;
    // A killed `import` (or `create`) leaves an incomplete folder: remove it first, so that a
    // retry imports under the wanted name instead of `NAME-1`.
    environment::sweep_partial(&workspace, &ctx.reporter)?;
    let (name, renamed) = import::free_name(&workspace, wanted);
    if renamed {
        ctx.printer
            .warn(format!("environment `{wanted}` exists, importing as `{name}`"));
    }
    if !confirm(&format!("Import as environment `{name}`?"), ctx.global.yes)? {
        return Err(CommandError::failed("Cancelled; nothing was changed"));
    }
    let settings = ctx.settings(&workspace);
    let tools = environment::tools(&workspace, &settings, &ctx.reporter)?;
    let models =
        comfydock_bundles::indexed_models::IndexedModels::new(&workspace, &ctx.settings(&workspace))?;
    let strategy = model_strategy(ctx, bundle, request.models, &models)?;
    let options = ImportOptions {
        name,
        models: strategy,
        backend: request.backend.clone(),
        allow_builds: request.run_install_scripts,
    };
    let report = import::import(
        &workspace,
        &settings,
        &tools,
        bundle,
        &options,
        &models,
        &ctx.reporter,
    )?;
    created(&environment::open(&workspace, &report.created.name)?)?;
    if ctx.printer.json_mode() {
        ctx.printer.json(&report);
        return Ok(());
    }
    for warning in &report.warnings {
        ctx.printer.warn(warning);
    }
    let name = &report.created.name;
    ctx.printer.info(format!(
        "Torch backend: {} ({})",
        report.created.torch_backend, report.created.torch_backend_reason
    ));
    ctx.printer.status("Imported", format!("environment `{name}`"));
    ctx.printer
        .info(format!("Workflows: {} imported", report.workflows.len()));
    let total_nodes = report.dev_nodes.len() + report.nodes_installed.len() + report.nodes_failed.len();
    ctx.printer.info(format!(
        "Custom nodes: {}/{total_nodes} installed ({} development from the bundle, {} registry/git)",
        report.dev_nodes.len() + report.nodes_installed.len(),
        report.dev_nodes.len(),
        report.nodes_installed.len()
    ));
    for (key, error) in &report.nodes_failed {
        ctx.printer.warn(format!("node `{key}` failed: {error}"));
    }
    let state_count = |s: ModelState| report.models.iter().filter(|m| m.state == s).count();
    ctx.printer.info(format!(
        "Models: {}/{} available ({} found locally, {} downloaded, {} skipped, {} failed)",
        state_count(ModelState::Local) + state_count(ModelState::Downloaded),
        report.models.len(),
        state_count(ModelState::Local),
        state_count(ModelState::Downloaded),
        state_count(ModelState::Skipped),
        state_count(ModelState::Failed)
    ));
    for model in report.models.iter().filter(|m| m.state == ModelState::Failed) {
        ctx.printer.warn(format!(
            "model `{}` failed: {}",
            model.target,
            model.detail.as_deref().unwrap_or_default()
        ));
    }
    if !report.unmapped.is_empty() {
        ctx.printer.warn("not mapped from the comfygit export:");
        for line in &report.unmapped {
            ctx.printer.info(format!("  • {line}"));
        }
    }
    for sub in &report.substitutions {
        ctx.printer.info(format!(
            "  substituted in `{}` node {}: {} → {}",
            sub.workflow, sub.node_id, sub.from, sub.to
        ));
    }
    ctx.printer.info("Next steps:");
    ctx.printer
        .info(format!("  1. Set as active: comfydock use {name}"));
    ctx.printer
        .info(format!("  2. Run ComfyUI:   comfydock -e {name} run"));
    let missing: Vec<_> = report
        .models
        .iter()
        .filter(|m| m.state == ModelState::Failed || m.state == ModelState::Skipped)
        .collect();
    if !report.nodes_failed.is_empty() || !missing.is_empty() {
        ctx.printer.info("Optional - fix remaining issues:");
        for model in missing {
            ctx.printer.info(format!(
                "  • Model `{}` ({}) is missing: place it under {} and run `comfydock -e {name} status`",
                model.target,
                model.criticality,
                models.root().join(&model.target).display()
            ));
        }
        if !report.nodes_failed.is_empty() {
            ctx.printer
                .info(format!("  • Failed nodes: retry with `comfydock -e {name} sync`"));
        }
    }
    if !report.substitutions.is_empty() {
        ctx.printer.info(format!(
            "  • Keep the substituted paths: comfydock -e {name} commit -m \"Use local models\""
        ));
    }
    Ok(())
}

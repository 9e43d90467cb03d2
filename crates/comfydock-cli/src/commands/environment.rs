//! `create`, `list`, `use`, `delete`, `status`, `sync`, `comfyui update`.

use comfydock_environments::backends::{self, BackendContext};
use comfydock_environments::environment::{self, Environment};
use comfydock_environments::lifecycle::{self, BackendChoice, CreateOptions};
use comfydock_environments::torch_backend::TorchBackend;
use comfydock_environments::workflow_tracking::WorkflowState;
use comfydock_environments::workspace::Workspace;
use comfydock_resolution::recovery::{self, ModelSelection};
use comfydock_resolution::resolve::ResolveContext;
use serde_json::json;

use super::Context;
use crate::commands::args::{ComfyuiCommand, CreateArgs, ModelsToFetch, SyncArgs};
use crate::error::{CommandError, CommandResult};
use crate::prompt::confirm;

pub fn create(ctx: &Context, args: &CreateArgs) -> CommandResult {
    let workspace = ctx.workspace()?;
    let backend: BackendChoice =
        args.torch_backend
            .parse()
            .map_err(|e: comfydock_environments::torch_backend::InvalidBackend| {
                CommandError::usage(e.to_string())
            })?;
    environment::validate_name(&args.name)?;
    let _lock = ctx.lock(&workspace)?;
    let mut workspace = Workspace::open(workspace.root())?;
    comfydock_environments::workspace_models::ensure_model_paths(&workspace)?;
    let settings = ctx.settings(&workspace);
    let tools = environment::tools(&workspace, &settings, &ctx.reporter)?;
    let options = CreateOptions {
        name: args.name.clone(),
        comfyui: args.comfyui.clone(),
        python: args.python.clone(),
        backend,
    };
    let created = lifecycle::create(&workspace, &settings, &tools, &options, &ctx.reporter)?;
    if args.use_it {
        workspace.set_active_environment(Some(created.name.clone()))?;
    }
    if ctx.printer.json_mode() {
        ctx.printer.json(&created);
        return Ok(());
    }
    ctx.printer.info(format!(
        "Torch backend: {} ({})",
        created.torch_backend, created.torch_backend_reason
    ));
    ctx.printer.status(
        "Created",
        format!(
            "environment `{}`: ComfyUI {} ({}), Python {}",
            created.name,
            created.comfyui.reference,
            comfydock_foundation::display_text::short_hash(&created.comfyui.commit),
            created.python
        ),
    );
    if args.use_it {
        ctx.printer
            .info(format!("`{}` is now the active environment", created.name));
        ctx.printer.hint("start it with `comfydock run`");
    } else {
        ctx.printer.hint(format!(
            "start it with `comfydock -e {} run`, or make it active with `comfydock use {}`",
            created.name, created.name
        ));
    }
    Ok(())
}

pub fn list(ctx: &Context) -> CommandResult {
    let workspace = ctx.workspace()?;
    let names = environment::list(&workspace)?;
    let active = workspace.active_environment();
    let rows: Vec<serde_json::Value> = names
        .iter()
        .map(|name| {
            let env = Environment::at(&workspace, name);
            let pin = env.manifest().ok().and_then(|m| m.comfyui().ok());
            json!({
                "name": name,
                "active": active == Some(name.as_str()),
                "comfyui_ref": pin.as_ref().map(|p| p.reference.clone()),
                "comfyui_commit": pin.as_ref().map(|p| p.commit.clone()),
                "running": comfydock_environments::comfyui_process::running(&env).is_some(),
                "path": env.root,
            })
        })
        .collect();
    if ctx.printer.json_mode() {
        ctx.printer.json(&rows);
        return Ok(());
    }
    if rows.is_empty() {
        ctx.printer
            .info("No environments yet; create one with `comfydock create NAME`");
    }
    for row in rows {
        let marker = if row["active"] == true { "*" } else { " " };
        let running = if row["running"] == true { "  (running)" } else { "" };
        ctx.printer.data(format!(
            "{marker} {}  ComfyUI {}{running}",
            row["name"].as_str().unwrap_or_default(),
            row["comfyui_ref"].as_str().unwrap_or("?")
        ));
    }
    Ok(())
}

pub fn use_env(ctx: &Context, name: &str) -> CommandResult {
    let workspace = ctx.workspace()?;
    let _lock = ctx.lock(&workspace)?;
    let mut workspace = Workspace::open(workspace.root())?;
    environment::open(&workspace, name)?;
    workspace.set_active_environment(Some(name.to_owned()))?;
    if ctx.printer.json_mode() {
        ctx.printer.json(&json!({ "active": name }));
    } else {
        ctx.printer.status("Using", format!("environment `{name}`"));
    }
    Ok(())
}

pub fn delete(ctx: &Context, name: Option<&str>) -> CommandResult {
    let workspace = ctx.workspace()?;
    let env = environment::select(&workspace, name.or(ctx.global.env.as_deref()))?;
    if !confirm(
        &format!(
            "Delete environment `{}` and everything in {}?",
            env.name,
            env.root.display()
        ),
        ctx.global.yes,
    )? {
        return Err(CommandError::failed("Cancelled; nothing was deleted"));
    }
    let _lock = ctx.lock(&workspace)?;
    let mut workspace = Workspace::open(workspace.root())?;
    lifecycle::delete(&mut workspace, &env)?;
    if ctx.printer.json_mode() {
        ctx.printer.json(&json!({ "deleted": env.name }));
    } else {
        ctx.printer
            .status("Deleted", format!("environment `{}`", env.name));
    }
    Ok(())
}

pub fn status(ctx: &Context) -> CommandResult {
    let workspace = ctx.workspace()?;
    let env = environment::select(&workspace, ctx.global.env.as_deref())?;
    let git = comfydock_foundation::git::Git::find()?;
    let mut status = lifecycle::status(&git, &env)?;
    let workflows = comfydock_environments::workflow_tracking::list(&env)?;
    for w in workflows
        .iter()
        .filter(|w| w.tracked && w.state != WorkflowState::Synced)
    {
        let fix = if w.state == WorkflowState::Deleted {
            format!(
                "bring it back with `comfydock -e {env} workflow restore {name}`, or stop tracking it with `comfydock -e {env} workflow untrack {name}`",
                env = env.name,
                name = w.name
            )
        } else {
            format!("comfydock -e {} commit -m MESSAGE", env.name)
        };
        status.issues.push(lifecycle::StatusIssue {
            what: format!(
                "tracked workflow `{}` is {} since the last commit",
                w.name,
                state_word(w.state)
            ),
            fix,
        });
    }
    let gaps = recovery::check(&workspace, &env)?;
    let models_root = comfydock_environments::workspace_models::default_root(&workspace)
        .map_or_else(|_| "models".to_owned(), |r| r.path.display().to_string());
    for issue in gaps.issues(&env.name, &models_root) {
        status.issues.push(lifecycle::StatusIssue {
            what: issue.what,
            fix: issue.fix,
        });
    }
    let untracked: Vec<&str> = workflows
        .iter()
        .filter(|w| !w.tracked && w.state == WorkflowState::New)
        .map(|w| w.name.as_str())
        .collect();
    if ctx.printer.json_mode() {
        ctx.printer.json(&json!({
            "name": status.name,
            "clean": status.is_clean(),
            "workflows": workflows,
            "comfyui": status.comfyui,
            "packages_in_sync": status.packages_in_sync,
            "torch_backend": status.torch_backend,
            "uncommitted": status.uncommitted,
            "running_pid": status.running_pid,
            "nodes": status.nodes,
            "missing_models": gaps.missing_models,
            "workflow_gaps": gaps.workflows,
            "ignored": status.ignored,
            "issues": status.issues,
        }));
        return Ok(());
    }
    ctx.printer.data(format!(
        "Environment `{}`: ComfyUI {} ({}), torch backend {}{}",
        status.name,
        status.comfyui.reference,
        comfydock_foundation::display_text::short_hash(&status.comfyui.expected_commit),
        status.torch_backend,
        status
            .running_pid
            .map(|p| format!(", running (pid {p})"))
            .unwrap_or_default()
    ));
    if status.is_clean() {
        ctx.printer.data("Everything matches .cec");
    }
    for issue in &status.issues {
        ctx.printer
            .data(format!("  - {}\n    fix: {}", issue.what, issue.fix));
    }
    if !untracked.is_empty() {
        ctx.printer.hint(format!(
            "untracked workflows: {}; track them with `comfydock -e {} workflow track NAME`",
            untracked.join(", "),
            env.name
        ));
    }
    Ok(())
}

fn state_word(state: WorkflowState) -> &'static str {
    match state {
        WorkflowState::New => "new",
        WorkflowState::Modified => "modified",
        WorkflowState::Deleted => "deleted",
        WorkflowState::Synced => "unchanged",
    }
}

pub fn sync(ctx: &Context, args: &SyncArgs) -> CommandResult {
    let workspace = ctx.workspace()?;
    let env = environment::select(&workspace, ctx.global.env.as_deref())?;
    let _lock = if args.dry_run {
        None
    } else {
        Some(ctx.lock(&workspace)?)
    };
    let backend = args
        .torch_backend
        .as_deref()
        .map(str::parse::<TorchBackend>)
        .transpose()
        .map_err(|e| CommandError::usage(e.to_string()))?;
    let settings = ctx.settings(&workspace);
    let tools = environment::tools(&workspace, &settings, &ctx.reporter)?;
    let report = match &backend {
        Some(backend) => {
            let backend_ctx = BackendContext {
                workspace: &workspace,
                settings: &settings,
                tools: &tools,
                env: &env,
                reporter: &ctx.reporter,
            };
            let switch = backends::use_backend(&backend_ctx, backend, args.prune)?;
            if switch.from != switch.to && !ctx.printer.json_mode() {
                ctx.printer
                    .info(format!("Torch backend: {} (was {})", switch.to, switch.from));
            }
            switch.sync
        }
        None => lifecycle::sync(
            &workspace,
            &settings,
            &tools,
            &env,
            args.prune,
            args.dry_run,
            &ctx.reporter,
        )?,
    };
    // Folders the user put in custom_nodes: reported by `status`; `--prune` moves them to the trash.
    let trashed = if args.prune && !args.dry_run {
        let entries = comfydock_environments::manifest::node_entry::read_all(&env.manifest()?);
        comfydock_environments::nodes::install::trash_unmanaged(&workspace, &env, &entries)?
    } else {
        Vec::new()
    };
    let fetched = match args.models {
        Some(which) => Some(recovery::fetch_missing(
            &ResolveContext {
                workspace: &workspace,
                settings: &settings,
                tools: &tools,
                env: &env,
                reporter: &ctx.reporter,
            },
            match which {
                ModelsToFetch::Required => ModelSelection::Required,
                ModelsToFetch::All => ModelSelection::All,
            },
        )?),
        None => None,
    };
    let fetch_failure = fetched.as_ref().and_then(|f| {
        let failed = f.count("failed") + f.count("no_source");
        (failed > 0).then(|| {
            CommandError::failed(format!(
                "{failed} missing model(s) could not be downloaded; the environment is synced otherwise"
            ))
            .with_hint(format!(
                "see `comfydock -e {} status` for each model and its fix",
                env.name
            ))
        })
    });
    if ctx.printer.json_mode() {
        let mut value = serde_json::to_value(&report).unwrap_or_default();
        value["trashed"] = json!(
            trashed
                .iter()
                .map(|(name, path)| json!({"name": name, "path": path}))
                .collect::<Vec<_>>()
        );
        if let Some(fetched) = &fetched {
            value["models"] = json!(fetched.outcomes);
        }
        ctx.printer.json(&value);
        return fetch_failure.map_or(Ok(()), Err);
    }
    if let Some(fetched) = &fetched {
        for outcome in &fetched.outcomes {
            match outcome.state {
                "downloaded" => ctx.printer.status(
                    "Downloaded",
                    format!(
                        "{} from {}",
                        outcome.model,
                        outcome.detail.as_deref().unwrap_or("?")
                    ),
                ),
                "skipped" => ctx.printer.info(format!(
                    "Skipped optional model {} (fetch it with `comfydock -e {} sync --models all`)",
                    outcome.model, env.name
                )),
                "no_source" => ctx.printer.warn(format!(
                    "{}: .cec records no download source; put the file in place and run `comfydock model scan`",
                    outcome.model
                )),
                _ => ctx.printer.warn(format!(
                    "{}: every source failed: {}",
                    outcome.model,
                    outcome.detail.as_deref().unwrap_or("?")
                )),
            }
        }
        if fetched.outcomes.is_empty() {
            ctx.printer.info("Every model .cec pins is on this machine");
        }
    }
    for (name, path) in &trashed {
        ctx.printer.status(
            "Trashed",
            format!("unmanaged node folder `{name}` → {}", path.display()),
        );
    }
    let would = if args.dry_run { "Would " } else { "" };
    if let Some((from, to)) = &report.comfyui_moved {
        ctx.printer.data(format!(
            "{would}move ComfyUI {} -> {}",
            from.as_deref()
                .map_or("(none)", comfydock_foundation::display_text::short_hash),
            comfydock_foundation::display_text::short_hash(to)
        ));
    }
    if report.backends_rewritten {
        ctx.printer.data(format!(
            "{would}rewrite the backend extras, indexes and sources for `torch_backends`"
        ));
    }
    if report.relocked {
        ctx.printer.data(format!(
            "{would}re-lock: pyproject.toml changed since uv.lock was written"
        ));
    }
    for change in &report.nodes_changed {
        ctx.printer.data(format!("{would}node: {change}"));
    }
    for change in &report.packages_changed {
        ctx.printer.data(format!("  {change}"));
    }
    if !report.extra_packages.is_empty() {
        if report.pruned {
            ctx.printer.data(format!(
                "Removed packages the lock does not list: {}",
                report.extra_packages.join(", ")
            ));
        } else {
            ctx.printer.warn(format!(
                "installed but not in the lock (kept): {}; remove them with `comfydock -e {} sync --prune`",
                report.extra_packages.join(", "),
                env.name
            ));
        }
    }
    if !args.dry_run {
        ctx.printer
            .status("Synced", format!("environment `{}`", env.name));
    }
    fetch_failure.map_or(Ok(()), Err)
}

pub fn comfyui(ctx: &Context, command: &ComfyuiCommand) -> CommandResult {
    let ComfyuiCommand::Update { reference } = command;
    let workspace = ctx.workspace()?;
    let env = environment::select(&workspace, ctx.global.env.as_deref())?;
    let _lock = ctx.lock(&workspace)?;
    let settings = ctx.settings(&workspace);
    let tools = environment::tools(&workspace, &settings, &ctx.reporter)?;
    let update = lifecycle::update_comfyui(
        &workspace,
        &settings,
        &tools,
        &env,
        reference.as_deref(),
        &ctx.reporter,
    )?;
    if ctx.printer.json_mode() {
        ctx.printer.json(&update);
        return Ok(());
    }
    let (old, new) = (&update.from, &update.to);
    ctx.printer.status(
        "Updated",
        format!(
            "ComfyUI {} ({}) -> {} ({})",
            old.reference,
            comfydock_foundation::display_text::short_hash(&old.commit),
            new.reference,
            comfydock_foundation::display_text::short_hash(&new.commit)
        ),
    );
    if !update.packages.is_empty() {
        ctx.printer
            .info(format!("kept your packages: {}", update.packages.join(", ")));
    }
    ctx.printer.hint(format!(
        "commit it with `comfydock -e {} commit -m \"ComfyUI {}\"`; undo with `comfydock -e {} rollback`",
        env.name, new.reference, env.name
    ));
    Ok(())
}

//! `backend list | add | remove | use`: the torch backends an environment's lock covers.

use clap::Subcommand;
use comfydock_environments::backends::{self, BackendChange, BackendContext};
use comfydock_environments::environment::{self, Environment};
use comfydock_environments::torch_backend::TorchBackend;

use super::Context;
use crate::error::{CommandError, CommandResult};

#[derive(Debug, Subcommand)]
pub enum BackendCommand {
    /// Backends the lock covers, the index each uses, and the one this machine syncs with
    List,
    /// Lock more backends (extras, indexes, sources), re-lock, all or nothing
    Add {
        /// Backends: cpu, cuXXX (e.g. cu128), rocmX.Y (e.g. rocm6.4) or xpu
        #[arg(required = true, value_name = "NAME")]
        names: Vec<String>,
    },
    /// Stop locking backends (never the one this machine syncs with), re-lock
    Remove {
        /// Backend names
        #[arg(required = true, value_name = "NAME")]
        names: Vec<String>,
    },
    /// Sync this machine with another locked backend (stored per machine, not committed)
    Use {
        /// Backend name
        name: String,
    },
}

pub fn run(ctx: &Context, command: &BackendCommand) -> CommandResult {
    match command {
        BackendCommand::List => list(ctx),
        BackendCommand::Add { names } => {
            let wanted = parse_all(names)?;
            change(ctx, |b| backends::add(b, &wanted))
        }
        BackendCommand::Remove { names } => {
            let wanted = parse_all(names)?;
            change(ctx, |b| backends::remove(b, &wanted))
        }
        BackendCommand::Use { name } => use_backend(ctx, name),
    }
}

fn parse_all(names: &[String]) -> CommandResult<Vec<TorchBackend>> {
    names.iter().map(|n| parse(n)).collect()
}

fn parse(name: &str) -> CommandResult<TorchBackend> {
    name.parse()
        .map_err(|e: comfydock_environments::torch_backend::InvalidBackend| {
            CommandError::usage(e.to_string())
        })
}

fn list(ctx: &Context) -> CommandResult {
    let workspace = ctx.workspace()?;
    let env = environment::select(&workspace, ctx.global.env.as_deref())?;
    let listing = backends::list(&env)?;
    if ctx.printer.json_mode() {
        ctx.printer.json(&listing);
        return Ok(());
    }
    for locked in &listing.locked {
        let mark = if locked.backend.as_str() == listing.current {
            "*"
        } else {
            " "
        };
        ctx.printer.data(format!(
            "{mark} {:<10} {}",
            locked.backend,
            locked.index.as_deref().unwrap_or("(default index)")
        ));
    }
    if listing.locked.is_empty() {
        ctx.printer.warn("the lock covers no torch backend");
    }
    if !listing
        .locked
        .iter()
        .any(|l| l.backend.as_str() == listing.current)
    {
        ctx.printer.warn(format!(
            "this machine's backend `{}` is not locked; add it with `comfydock -e {} backend add {}`",
            listing.current, env.name, listing.current
        ));
    }
    for pending in &listing.pending {
        ctx.printer.warn(format!(
            "`{pending}` is in `torch_backends` but not locked yet; lock it with `comfydock -e {} sync`",
            env.name
        ));
    }
    Ok(())
}

/// Run an add/remove under the workspace lock and print what it did.
fn change(
    ctx: &Context,
    op: impl FnOnce(&BackendContext<'_>) -> Result<BackendChange, backends::BackendError>,
) -> CommandResult {
    let workspace = ctx.workspace()?;
    let env = environment::select(&workspace, ctx.global.env.as_deref())?;
    let _lock = ctx.lock(&workspace)?;
    let settings = ctx.settings(&workspace);
    let tools = environment::tools(&workspace, &settings, &ctx.reporter)?;
    let backend_ctx = BackendContext {
        workspace: &workspace,
        settings: &settings,
        tools: &tools,
        env: &env,
        reporter: &ctx.reporter,
    };
    let report = op(&backend_ctx)?;
    print_change(ctx, &env, &report);
    Ok(())
}

fn print_change(ctx: &Context, env: &Environment, report: &BackendChange) {
    if ctx.printer.json_mode() {
        ctx.printer.json(report);
        return;
    }
    for name in &report.added {
        let index = report
            .locked
            .iter()
            .find(|l| l.backend.as_str() == name)
            .and_then(|l| l.index.as_deref())
            .unwrap_or("(default index)");
        ctx.printer
            .status("Locked", format!("torch backend `{name}` from {index}"));
    }
    for name in &report.removed {
        ctx.printer.status("Removed", format!("torch backend `{name}`"));
    }
    for name in &report.unchanged {
        ctx.printer.info(format!("`{name}` is already locked"));
    }
    if !report.added.is_empty() || !report.removed.is_empty() {
        ctx.printer.hint(format!(
            "commit it with `comfydock -e {} commit -m MESSAGE`",
            env.name
        ));
    }
}

fn use_backend(ctx: &Context, name: &str) -> CommandResult {
    let backend = parse(name)?;
    let workspace = ctx.workspace()?;
    let env = environment::select(&workspace, ctx.global.env.as_deref())?;
    let _lock = ctx.lock(&workspace)?;
    let settings = ctx.settings(&workspace);
    let tools = environment::tools(&workspace, &settings, &ctx.reporter)?;
    let backend_ctx = BackendContext {
        workspace: &workspace,
        settings: &settings,
        tools: &tools,
        env: &env,
        reporter: &ctx.reporter,
    };
    let switch = backends::use_backend(&backend_ctx, &backend, false)?;
    if ctx.printer.json_mode() {
        ctx.printer.json(&switch);
        return Ok(());
    }
    ctx.printer.status(
        "Switched",
        format!(
            "`{}` from torch backend `{}` to `{}` (this machine only) and synced",
            env.name, switch.from, switch.to
        ),
    );
    Ok(())
}

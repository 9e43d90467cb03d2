//! `py add / remove / list / constrain / unconstrain`: the environment's own Python packages.

use clap::Subcommand;
use comfydock_environments::environment::{self, Environment};
use comfydock_environments::python_deps::ops::{self, PyChange};
use comfydock_environments::python_deps::{self, PyContext};
use comfydock_environments::workspace::Workspace;
use comfydock_foundation::git::Git;

use super::Context;
use crate::error::CommandResult;

#[derive(Debug, Subcommand)]
pub enum PyCommand {
    /// Add PEP 508 requirements to your packages (or a group of yours); re-lock, then sync (all or nothing)
    Add {
        /// Requirements, e.g. `requests` or `requests>=2.31` (quote them in the shell)
        #[arg(required = true, value_name = "REQ")]
        requirements: Vec<String>,
        /// Put them in your dependency group GROUP instead of `[project].dependencies`
        #[arg(long, value_name = "GROUP")]
        group: Option<String>,
    },
    /// Remove packages you added (by name); re-lock, then sync exactly so they are uninstalled
    Remove {
        /// Package names
        #[arg(required = true, value_name = "NAME")]
        names: Vec<String>,
        /// Remove them from your dependency group GROUP
        #[arg(long, value_name = "GROUP")]
        group: Option<String>,
    },
    /// List the environment's requirements: yours, ComfyUI's, each node's, and the constraints
    List,
    /// Bound the versions the lock may pick (`[tool.uv] constraint-dependencies`), e.g. `numpy<2`
    Constrain {
        /// Constraints as PEP 508 requirements
        #[arg(required = true, value_name = "REQ")]
        requirements: Vec<String>,
    },
    /// Drop constraints by package name
    Unconstrain {
        /// Package names
        #[arg(required = true, value_name = "NAME")]
        names: Vec<String>,
    },
}

pub fn run(ctx: &Context, command: &PyCommand) -> CommandResult {
    match command {
        PyCommand::Add { requirements, group } => {
            change(ctx, |py| ops::add(py, requirements, group.as_deref()))
        }
        PyCommand::Remove { names, group } => change(ctx, |py| ops::remove(py, names, group.as_deref())),
        PyCommand::List => list(ctx),
        PyCommand::Constrain { requirements } => change(ctx, |py| ops::constrain(py, requirements)),
        PyCommand::Unconstrain { names } => change(ctx, |py| ops::unconstrain(py, names)),
    }
}

/// Workspace, settings, tools and environment for a `py` change.
struct Session {
    workspace: Workspace,
    settings: comfydock_environments::settings::Settings,
    tools: environment::Tools,
    env: Environment,
}

/// Run one change under the workspace lock and print what it did.
fn change(
    ctx: &Context,
    op: impl FnOnce(&PyContext<'_>) -> Result<PyChange, python_deps::PyError>,
) -> CommandResult {
    let workspace = ctx.workspace()?;
    let env = environment::select(&workspace, ctx.global.env.as_deref())?;
    let settings = ctx.settings(&workspace);
    let tools = environment::tools(&workspace, &settings, &ctx.reporter)?;
    let session = Session {
        workspace,
        settings,
        tools,
        env,
    };
    let _lock = ctx.lock(&session.workspace)?;
    let py = PyContext {
        workspace: &session.workspace,
        settings: &session.settings,
        tools: &session.tools,
        env: &session.env,
        reporter: &ctx.reporter,
    };
    let report = op(&py)?;
    print_change(ctx, &session.env, &report);
    Ok(())
}

fn print_change(ctx: &Context, env: &Environment, report: &PyChange) {
    if ctx.printer.json_mode() {
        ctx.printer.json(report);
        return;
    }
    let place = &report.place;
    for r in &report.added {
        ctx.printer.status("Added", format!("`{r}` to {place}"));
    }
    for r in &report.replaced {
        ctx.printer
            .status("Replaced", format!("`{}` with `{}` in {place}", r.old, r.new));
    }
    for r in &report.removed {
        ctx.printer.status("Removed", format!("`{r}` from {place}"));
    }
    if report.added.is_empty() && report.replaced.is_empty() && report.removed.is_empty() {
        ctx.printer
            .info(format!("{place} already say that; nothing changed"));
        return;
    }
    ctx.printer.hint(format!(
        "commit it with `comfydock -e {} commit -m MESSAGE`",
        env.name
    ));
}

fn list(ctx: &Context) -> CommandResult {
    let workspace = ctx.workspace()?;
    let env = environment::select(&workspace, ctx.global.env.as_deref())?;
    let settings = ctx.settings(&workspace);
    let git = Git::find()?;
    let mirror = python_deps::comfyui_mirror(&workspace, &settings, &git);
    let deps = ops::list(&env, &mirror)?;
    if ctx.printer.json_mode() {
        ctx.printer.json(&deps);
        return Ok(());
    }
    let section = |title: String, items: &[String]| {
        ctx.printer.data(format!("{title}:"));
        if items.is_empty() {
            ctx.printer.data("  (none)");
        }
        for item in items {
            ctx.printer.data(format!("  {item}"));
        }
    };
    section("Your packages".into(), &deps.packages);
    for g in &deps.groups {
        section(format!("Your group `{}`", g.name), &g.requirements);
    }
    section(
        format!("ComfyUI {} (group `comfyui`)", deps.comfyui.reference),
        &deps.comfyui.requirements,
    );
    for n in &deps.nodes {
        section(
            format!("Node `{}` (group `{}`)", n.node, n.group),
            &n.requirements,
        );
    }
    section("Constraints".into(), &deps.constraints);
    if deps.guessed {
        ctx.printer.warn(
            "ComfyUI's requirements at the pinned commit could not be read; every package of `[project].dependencies` is listed as yours",
        );
    }
    if deps.packages.is_empty() {
        ctx.printer.hint(format!(
            "add a package with `comfydock -e {} py add NAME`",
            env.name
        ));
    }
    Ok(())
}

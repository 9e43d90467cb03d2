//! `commit`, `log`, `rollback`, `diff`.

use comfydock_environments::environment;
use comfydock_environments::history::{self, ChangeKind, EnvDiff, NamedChange};
use comfydock_environments::lifecycle;
use comfydock_foundation::git::Git;
use serde_json::json;

use super::Context;
use crate::commands::args::{CommitArgs, DiffArgs, LogArgs, RollbackArgs};
use crate::error::CommandResult;

pub fn commit(ctx: &Context, args: &CommitArgs) -> CommandResult {
    let workspace = ctx.workspace()?;
    let env = environment::select(&workspace, ctx.global.env.as_deref())?;
    let _lock = ctx.lock(&workspace)?;
    let git = Git::find()?;
    let copied = comfydock_environments::workflow_tracking::copy_tracked_into_cec(&env)?;
    let commit = environment::commit_all(&git, &env, &args.message)?;
    if ctx.printer.json_mode() {
        ctx.printer.json(&json!({ "commit": commit, "workflows_copied": copied.copied, "workflows_removed": copied.removed }));
        return Ok(());
    }
    for name in &copied.copied {
        ctx.printer.status("Copied", format!("workflow {name}"));
    }
    match commit {
        Some(c) => ctx.printer.status(
            "Committed",
            format!(
                "{} {}",
                comfydock_foundation::display_text::short_hash(&c),
                args.message
            ),
        ),
        None => ctx
            .printer
            .info("Nothing to commit; .cec matches its last commit"),
    }
    Ok(())
}

pub fn log(ctx: &Context, args: &LogArgs) -> CommandResult {
    let workspace = ctx.workspace()?;
    let env = environment::select(&workspace, ctx.global.env.as_deref())?;
    let entries = history::log(&Git::find()?, &env, args.limit)?;
    if ctx.printer.json_mode() {
        ctx.printer.json(&entries);
        return Ok(());
    }
    for e in entries {
        ctx.printer.data(format!(
            "{}  {}  {}",
            e.short,
            &e.date[..10.min(e.date.len())],
            e.message
        ));
    }
    Ok(())
}

pub fn rollback(ctx: &Context, args: &RollbackArgs) -> CommandResult {
    let workspace = ctx.workspace()?;
    let env = environment::select(&workspace, ctx.global.env.as_deref())?;
    let _lock = ctx.lock(&workspace)?;
    let settings = ctx.settings(&workspace);
    let tools = environment::tools(&workspace, &settings, &ctx.reporter)?;
    let rev = args.rev.as_deref().unwrap_or("HEAD");
    let commit = history::rollback(&tools.git, &env, rev, args.force)?;
    // A rollback restores the installed packages exactly: what the earlier lock lacks is removed.
    let report = lifecycle::sync(&workspace, &settings, &tools, &env, true, false, &ctx.reporter)?;
    if ctx.printer.json_mode() {
        ctx.printer.json(&json!({ "commit": commit, "sync": report }));
        return Ok(());
    }
    match commit {
        Some(c) => ctx.printer.status(
            "Rolled back",
            format!(
                "`{}` to {rev} as {}",
                env.name,
                comfydock_foundation::display_text::short_hash(&c)
            ),
        ),
        None => ctx.printer.info(format!("`{}` already matches {rev}", env.name)),
    }
    Ok(())
}

pub fn diff(ctx: &Context, args: &DiffArgs) -> CommandResult {
    let workspace = ctx.workspace()?;
    let env = environment::select(&workspace, ctx.global.env.as_deref())?;
    let diff = history::diff(&Git::find()?, &env, args.rev.as_deref(), args.rev2.as_deref())?;
    if ctx.printer.json_mode() {
        ctx.printer.json(&diff);
        return Ok(());
    }
    print_diff(ctx, &diff);
    Ok(())
}

pub(super) fn print_diff(ctx: &Context, diff: &EnvDiff) {
    if diff.is_empty() {
        ctx.printer.data("No differences");
        return;
    }
    if let Some(c) = &diff.comfyui {
        ctx.printer.data(format!("ComfyUI: {} -> {}", c.old, c.new));
    }
    if let Some(c) = &diff.python {
        ctx.printer.data(format!("Python: {} -> {}", c.old, c.new));
    }
    let sections: [(&str, &Vec<NamedChange>); 7] = [
        ("Requirements", &diff.requirements),
        ("Locked packages", &diff.locked),
        ("Dependency groups", &diff.node_groups),
        ("Nodes", &diff.nodes),
        ("Models", &diff.models),
        ("Workflows", &diff.workflows),
        ("Workflow files", &diff.workflow_files),
    ];
    for (title, changes) in sections {
        if changes.is_empty() {
            continue;
        }
        ctx.printer.data(format!("{title}:"));
        for c in changes {
            let line = match c.kind {
                ChangeKind::Added => format!("  + {} {}", c.name, c.new.as_deref().unwrap_or_default()),
                ChangeKind::Removed => format!("  - {} {}", c.name, c.old.as_deref().unwrap_or_default()),
                ChangeKind::Changed => format!(
                    "  ~ {} {} -> {}",
                    c.name,
                    c.old.as_deref().unwrap_or_default(),
                    c.new.as_deref().unwrap_or_default()
                ),
            };
            ctx.printer.data(line);
        }
    }
}

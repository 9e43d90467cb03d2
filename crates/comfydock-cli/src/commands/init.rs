//! `comfydock init [PATH]`

use comfydock_environments::workspace::{InitOutcome, Workspace};
use serde_json::json;

use super::Context;
use crate::commands::args::InitArgs;
use crate::error::CommandResult;

pub fn run(ctx: &Context, args: &InitArgs) -> CommandResult {
    let root = match &args.path {
        Some(path) => path.clone(),
        None => Workspace::locate(ctx.global.workspace.as_deref())?.0,
    };
    let (workspace, outcome) = Workspace::init(&root, args.force)?;
    if outcome == InitOutcome::Created {
        comfydock_environments::workspace_models::refresh_model_paths(&workspace)?;
    }
    let root = workspace.root().display();
    if ctx.printer.json_mode() {
        let created = outcome == InitOutcome::Created;
        ctx.printer
            .json(&json!({ "path": workspace.root(), "created": created }));
        return Ok(());
    }
    match outcome {
        InitOutcome::Created => {
            ctx.printer.status("Created", format!("workspace at {root}"));
            ctx.printer.hint(format!(
                "use it with `--workspace {root}` or `export COMFYDOCK_HOME={root}`"
            ));
        }
        InitOutcome::AlreadyExists => ctx
            .printer
            .info(format!("{root} is already a workspace; nothing changed")),
    }
    Ok(())
}

//! `comfydock config list|get|set|unset`

use comfydock_environments::settings::{self, Resolved};
use serde::Serialize;

use super::Context;
use crate::commands::args::ConfigCommand;
use crate::error::{CommandError, CommandResult};

/// One row of `config list --json`. Field names are stable.
#[derive(Debug, Serialize)]
struct SettingRow {
    key: &'static str,
    value: Option<String>,
    origin: settings::Origin,
    env: &'static str,
    secret: bool,
    description: &'static str,
}

impl From<&Resolved> for SettingRow {
    fn from(r: &Resolved) -> Self {
        Self {
            key: r.spec.name,
            value: r.display_value(),
            origin: r.origin,
            env: r.spec.env,
            secret: r.spec.is_secret(),
            description: r.spec.description,
        }
    }
}

pub fn run(ctx: &Context, command: &ConfigCommand) -> CommandResult {
    match command {
        ConfigCommand::List => list(ctx),
        ConfigCommand::Get { key } => get(ctx, key),
        ConfigCommand::Set { key, value } => set(ctx, key, value),
        ConfigCommand::Unset { key } => unset(ctx, key),
    }
}

fn list(ctx: &Context) -> CommandResult {
    let workspace = ctx.workspace()?;
    let rows: Vec<SettingRow> = ctx
        .settings(&workspace)
        .all()
        .iter()
        .map(SettingRow::from)
        .collect();
    if ctx.printer.json_mode() {
        ctx.printer.json(&rows);
        return Ok(());
    }
    let width = rows.iter().map(|r| r.key.len()).max().unwrap_or(0);
    for row in rows {
        let value = row.value.as_deref().unwrap_or("(not set)");
        ctx.printer
            .data(format!("{:<width$}  {value}  ({})", row.key, row.origin));
    }
    Ok(())
}

fn get(ctx: &Context, key: &str) -> CommandResult {
    let workspace = ctx.workspace()?;
    let spec = settings::key_spec(key)?;
    let resolved = ctx.settings(&workspace).get(spec);
    if ctx.printer.json_mode() {
        ctx.printer.json(&SettingRow::from(&resolved));
        return Ok(());
    }
    match resolved.display_value() {
        Some(value) => {
            ctx.printer.data(value);
            Ok(())
        }
        None => Err(
            CommandError::failed(format!("`{}` is not set", spec.name)).with_hint(format!(
                "set it with `comfydock config set {} VALUE` or `{}`",
                spec.name, spec.env
            )),
        ),
    }
}

fn set(ctx: &Context, key: &str, value: &str) -> CommandResult {
    let mut workspace = ctx.workspace()?;
    let _lock = ctx.lock(&workspace)?;
    // Re-read under the lock so a concurrent change is not lost.
    workspace = comfydock_environments::workspace::Workspace::open(workspace.root())?;
    let stored = workspace.set_setting(key, value)?;
    let spec = settings::key_spec(key)?;
    let shown = if spec.is_secret() {
        settings::mask(&stored)
    } else {
        stored
    };
    if ctx.printer.json_mode() {
        ctx.printer
            .json(&serde_json::json!({ "key": spec.name, "value": shown }));
    } else {
        ctx.printer.status("Set", format!("{} = {shown}", spec.name));
        if let Some(env) = ctx.settings(&workspace).env.get(spec.env) {
            let _ = env;
            ctx.printer.warn(format!(
                "`{}` is set in the environment and takes precedence",
                spec.env
            ));
        }
    }
    Ok(())
}

fn unset(ctx: &Context, key: &str) -> CommandResult {
    let workspace = ctx.workspace()?;
    let _lock = ctx.lock(&workspace)?;
    let mut workspace = comfydock_environments::workspace::Workspace::open(workspace.root())?;
    let removed = workspace.unset_setting(key)?;
    let spec = settings::key_spec(key)?;
    if ctx.printer.json_mode() {
        ctx.printer
            .json(&serde_json::json!({ "key": spec.name, "removed": removed }));
    } else if removed {
        ctx.printer.status("Unset", spec.name);
    } else {
        ctx.printer
            .info(format!("`{}` was not set; nothing changed", spec.name));
    }
    Ok(())
}

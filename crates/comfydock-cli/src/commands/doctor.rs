//! `comfydock doctor`: are the tools comfydock drives usable?

use comfydock_core::git::Git;
use comfydock_core::uv::Uv;
use serde::Serialize;

use super::Context;
use crate::error::CommandResult;

#[derive(Debug, Serialize)]
struct Tool {
    name: &'static str,
    path: String,
    version: String,
    origin: String,
}

pub fn run(ctx: &Context) -> CommandResult {
    let workspace = ctx.workspace()?;
    let git = Git::find()?;
    let mut tools = vec![Tool {
        name: "git",
        path: git.program().display().to_string(),
        version: git.version()?,
        origin: "PATH".into(),
    }];
    let settings = ctx.settings(&workspace);
    let configured = settings.value("uv.path");
    let uv = if let Some(uv) = Uv::locate(configured.as_deref(), &workspace.tools_dir())? {
        uv
    } else {
        let _lock = ctx.lock(&workspace)?;
        Uv::locate_or_install(configured.as_deref(), &workspace.tools_dir(), &ctx.reporter)?
    };
    tools.push(Tool {
        name: "uv",
        path: uv.program().display().to_string(),
        version: uv.version()?,
        origin: uv.origin().to_string(),
    });
    if ctx.printer.json_mode() {
        ctx.printer.json(&tools);
        return Ok(());
    }
    for tool in tools {
        ctx.printer.data(format!(
            "{:<4} {:<10} {} ({})",
            tool.name, tool.version, tool.path, tool.origin
        ));
    }
    Ok(())
}

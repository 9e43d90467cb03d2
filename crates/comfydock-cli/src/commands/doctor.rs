//! `comfydock doctor`: are the tools comfydock drives usable?

use comfydock_environments::settings::Key;
use comfydock_foundation::git::Git;
use comfydock_foundation::uv::{self as uv_tool, PassedOverUv, Uv};
use serde::Serialize;

use super::Context;
use crate::error::CommandResult;

#[derive(Debug, Serialize)]
struct Tool {
    name: &'static str,
    path: String,
    version: String,
    origin: String,
    /// Whether comfydock supports this version (uv: [`uv_tool::SUPPORTED_UV`]).
    supported: bool,
    /// A uv on PATH that was not used because its version is unsupported.
    #[serde(skip_serializing_if = "Option::is_none")]
    passed_over: Option<PassedOverUv>,
}

pub fn run(ctx: &Context) -> CommandResult {
    let workspace = ctx.workspace()?;
    let git = Git::find()?;
    let mut tools = vec![Tool {
        name: "git",
        path: git.program().display().to_string(),
        version: git.version()?,
        origin: "PATH".into(),
        supported: true,
        passed_over: None,
    }];
    let settings = ctx.settings(&workspace);
    let configured = settings.value(Key::UvPath);
    let uv = if let Some(uv) = Uv::locate(configured.as_deref(), &workspace.tools_dir())? {
        uv
    } else {
        let _lock = ctx.lock(&workspace)?;
        Uv::locate_or_install(configured.as_deref(), &workspace.tools_dir(), &ctx.reporter)?
    };
    let version = uv.version()?;
    tools.push(Tool {
        name: "uv",
        path: uv.program().display().to_string(),
        supported: uv_tool::is_supported(&version),
        version,
        origin: uv.origin().to_string(),
        passed_over: uv.passed_over().cloned(),
    });
    if ctx.printer.json_mode() {
        ctx.printer.json(&tools);
        return Ok(());
    }
    for tool in &tools {
        ctx.printer.data(format!(
            "{:<4} {:<10} {} ({})",
            tool.name, tool.version, tool.path, tool.origin
        ));
        if let Some(skipped) = &tool.passed_over {
            ctx.printer.warn(format!(
                "uv {} at {} is outside the supported range {}; not used",
                skipped.version,
                skipped.path.display(),
                uv_tool::supported_range()
            ));
        }
        if !tool.supported {
            ctx.printer.warn(format!(
                "{} {} is outside the supported range {}; comfydock may misread its output",
                tool.name,
                tool.version,
                uv_tool::supported_range()
            ));
        }
    }
    Ok(())
}

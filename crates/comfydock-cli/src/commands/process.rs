//! `run`, `stop`, `logs`.

use std::io::{Read as _, Seek as _};
use std::time::Duration;

use comfydock_environments::comfyui_process::{self, RunOptions};
use comfydock_environments::environment;
use comfydock_environments::lifecycle;

use super::Context;
use crate::commands::args::{LogsArgs, RunArgs};
use crate::error::{CommandResult, ExitStatus};

fn log_path(ctx: &Context, name: &str) -> CommandResult<std::path::PathBuf> {
    Ok(ctx.workspace()?.logs_dir().join(name).join("comfyui.log"))
}

pub fn run(ctx: &Context, args: &RunArgs) -> CommandResult<ExitStatus> {
    let workspace = ctx.workspace()?;
    let env = environment::select(&workspace, ctx.global.env.as_deref())?;
    if !args.no_sync {
        let git = comfydock_foundation::git::Git::find()?;
        let status = lifecycle::status(&git, &env)?;
        let stale = status.comfyui.actual_commit.as_deref() != Some(status.comfyui.expected_commit.as_str())
            || !status.packages_in_sync;
        if stale {
            let _lock = ctx.lock(&workspace)?;
            let settings = ctx.settings(&workspace);
            let tools = environment::tools(&workspace, &settings, &ctx.reporter)?;
            ctx.printer
                .status("Syncing", format!("`{}` before starting", env.name));
            lifecycle::sync(&workspace, &settings, &tools, &env, false, false, &ctx.reporter)?;
        }
    }
    comfydock_environments::workspace_models::ensure_model_paths(&workspace)?;
    environment::write_extra_model_paths(&workspace, &env)?;
    let options = RunOptions {
        host: args.listen.clone(),
        port: args.port,
        extra_args: args.comfy_args.clone(),
        log: log_path(ctx, &env.name)?,
    };
    if args.background {
        let record = comfyui_process::run_background(&env, &options, Duration::from_mins(2))?;
        if ctx.printer.json_mode() {
            ctx.printer.json(&record);
        } else {
            ctx.printer.status(
                "Started",
                format!(
                    "ComfyUI of `{}` (pid {}) at http://{}:{}",
                    env.name, record.pid, record.host, record.port
                ),
            );
            ctx.printer.hint(format!(
                "follow its log with `comfydock -e {} logs -f`; stop it with `comfydock -e {} stop`",
                env.name, env.name
            ));
        }
        return Ok(ExitStatus::Success);
    }
    ctx.printer.status(
        "Starting",
        format!(
            "ComfyUI of `{}` at http://{}:{}",
            env.name, args.listen, args.port
        ),
    );
    let code = comfyui_process::run_foreground(&env, &options, &mut std::io::stderr())?;
    Ok(match code {
        0 => ExitStatus::Success,
        code => ExitStatus::External(u8::try_from(code.clamp(1, 255)).unwrap_or(1)),
    })
}

pub fn stop(ctx: &Context) -> CommandResult {
    let workspace = ctx.workspace()?;
    let env = environment::select(&workspace, ctx.global.env.as_deref())?;
    let grace = Duration::from_secs(10);
    let stopped = comfyui_process::stop(&env, grace)?;
    if ctx.printer.json_mode() {
        ctx.printer.json(&stopped);
        return Ok(());
    }
    if stopped.killed {
        ctx.printer.warn(format!(
            "ComfyUI of `{}` did not exit within {} s of SIGTERM; it was killed (SIGKILL)",
            env.name,
            grace.as_secs()
        ));
    }
    ctx.printer.status(
        "Stopped",
        format!("ComfyUI of `{}` (pid {})", env.name, stopped.record.pid),
    );
    if !stopped.port_free {
        ctx.printer.warn(format!(
            "port {} on {} is still in use by another process",
            stopped.record.port, stopped.record.host
        ));
    }
    Ok(())
}

/// After the log: why ComfyUI died, if a module it imports is missing.
fn hint_startup_failure(ctx: &Context, env: &environment::Environment, log: &std::path::Path) {
    if let Some(missing) = comfyui_process::startup_failure(env, log) {
        ctx.printer.hint(format!(
            "ComfyUI stopped because Python module `{}` is not installed; {}",
            missing.module,
            comfyui_process::add_package_hint(&env.name, &missing)
        ));
    }
}

pub fn logs(ctx: &Context, args: &LogsArgs) -> CommandResult {
    let workspace = ctx.workspace()?;
    let env = environment::select(&workspace, ctx.global.env.as_deref())?;
    let path = log_path(ctx, &env.name)?;
    if !path.is_file() {
        return Err(crate::error::CommandError::failed(format!(
            "`{}` has no log yet at {}",
            env.name,
            path.display()
        ))
        .with_hint(format!(
            "start it with `comfydock -e {} run --background`",
            env.name
        )));
    }
    for line in comfyui_process::tail(&path, args.lines)? {
        ctx.printer.data(line);
    }
    if args.follow {
        let mut file = fs_err::File::open(&path)?;
        let mut offset = file.seek(std::io::SeekFrom::End(0))?;
        loop {
            std::thread::sleep(Duration::from_millis(250));
            let len = fs_err::metadata(&path)?.len();
            if len < offset {
                offset = 0;
            }
            if len > offset {
                file.seek(std::io::SeekFrom::Start(offset))?;
                let mut chunk = String::new();
                file.read_to_string(&mut chunk)?;
                offset = len;
                for line in chunk.lines() {
                    ctx.printer.data(line);
                }
            }
            if comfyui_process::running(&env).is_none() {
                break;
            }
        }
    }
    hint_startup_failure(ctx, &env, &path);
    Ok(())
}

//! One module per command group. [`Context`] carries the resolved global options.

use std::collections::BTreeMap;

use comfydock_environments::settings::Settings;
use comfydock_environments::workspace::Workspace;
use comfydock_foundation::workspace_lock::WorkspaceLock;

use crate::commands::args::GlobalArgs;
use crate::error::{CommandError, CommandResult};
use crate::printer::Printer;
use crate::reporter::CliReporter;

pub mod args;
pub mod backend;
pub mod bundle;
pub mod completions;
pub mod config;
pub mod deploy;
pub mod doctor;
pub mod environment;
pub mod history;
pub mod init;
pub mod model;
pub mod node;
pub mod process;
pub mod python;
pub mod release;
pub mod remote;
pub mod resolve;
pub mod self_update;
pub mod serve;
pub mod workflow;

/// Global options resolved once, shared by every command.
pub struct Context {
    pub global: GlobalArgs,
    pub printer: Printer,
    pub reporter: CliReporter,
    /// `-c KEY=VALUE` overrides, validated.
    pub overrides: BTreeMap<String, String>,
    /// The command line, for the lock holder message.
    pub command_line: String,
}

impl Context {
    pub fn new(global: GlobalArgs, command_line: String) -> CommandResult<Self> {
        let printer = Printer::new(global.quiet > 0, global.json, global.verbose > 0);
        let overrides = Settings::parse_flags(&global.config).map_err(|e| {
            let usage = CommandError::usage(e.to_string());
            match comfydock_foundation::Hinted::hint(&e) {
                Some(h) => usage.with_hint(h),
                None => usage,
            }
        })?;
        Ok(Self {
            reporter: CliReporter::new(printer),
            global,
            printer,
            overrides,
            command_line,
        })
    }

    /// The workspace chosen by `--workspace` > `COMFYDOCK_HOME` > `~/comfydock`.
    pub fn workspace(&self) -> CommandResult<Workspace> {
        Ok(Workspace::discover(self.global.workspace.as_deref())?)
    }

    /// Settings of `workspace` with this command's overrides on top.
    pub fn settings(&self, workspace: &Workspace) -> Settings {
        workspace.settings(self.overrides.clone())
    }

    /// Take the workspace lock for a mutating command.
    pub fn lock(&self, workspace: &Workspace) -> CommandResult<WorkspaceLock> {
        Ok(WorkspaceLock::acquire(
            &workspace.lock_path(),
            &self.command_line,
            WorkspaceLock::timeout_from_env(),
            &self.reporter,
        )?)
    }
}

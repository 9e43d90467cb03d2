//! `comfydock completions <shell>`

use std::io::Write as _;

use clap::CommandFactory as _;

use crate::commands::args::{Cli, CompletionsArgs};
use crate::error::ExitStatus;

/// What a shell reports for a program ended by a broken pipe (128 + SIGPIPE).
const BROKEN_PIPE_STATUS: u8 = 141;

pub fn run(args: &CompletionsArgs) -> ExitStatus {
    let mut command = Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut command, "comfydock", &mut script);
    // `comfydock completions bash | head`: the reader left; end quietly like other tools.
    let written = std::io::stdout().lock().write_all(&script);
    match written {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitStatus::External(BROKEN_PIPE_STATUS),
        Err(_) => ExitStatus::Failure,
        Ok(()) => ExitStatus::Success,
    }
}

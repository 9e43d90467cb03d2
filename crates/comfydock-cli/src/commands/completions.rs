//! `comfydock completions <shell>`

use clap::CommandFactory as _;

use crate::args::{Cli, CompletionsArgs};
pub fn run(args: &CompletionsArgs) {
    let mut command = Cli::command();
    clap_complete::generate(args.shell, &mut command, "comfydock", &mut std::io::stdout());
}

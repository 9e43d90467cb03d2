//! The comfydock command line: parse → resolve settings → run, then render errors once.

use std::process::ExitCode;

use clap::{CommandFactory as _, FromArgMatches as _};

mod commands;
mod error;
mod logging;
mod printer;
mod prompt;
mod reporter;

pub use commands::args::Cli;
use commands::args::Command;
use error::{CommandResult, ExitStatus};

/// Run the CLI on a big-stack thread and turn the outcome into an exit code.
pub fn main() -> ExitCode {
    let handle = std::thread::Builder::new()
        .name("comfydock-main".into())
        .stack_size(16 * 1024 * 1024)
        .spawn(run_from_args)
        .expect("spawn main thread");
    handle.join().unwrap_or(ExitStatus::Failure).into()
}

fn run_from_args() -> ExitStatus {
    let parsed = Cli::command()
        .try_get_matches()
        .and_then(|matches| Ok((Cli::from_arg_matches(&matches)?, subcommand_path(&matches))));
    let (cli, command_line) = match parsed {
        Ok(parsed) => parsed,
        Err(err) => {
            let _ = err.print();
            return match err.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                    ExitStatus::Success
                }
                _ => ExitStatus::Usage,
            };
        }
    };
    logging::setup(cli.global.verbose, cli.global.quiet > 0);
    let json = cli.global.json;
    let result =
        commands::Context::new(cli.global, command_line).and_then(|ctx| dispatch(&ctx, &cli.command));
    match result {
        Ok(status) => {
            printer::finish_json(None);
            status
        }
        Err(err) => {
            use std::io::Write as _;
            if json {
                printer::finish_json(Some(err.to_json()));
            }
            let mut stderr = anstream::stderr();
            let _ = write!(stderr, "{}", err.render());
            err.status()
        }
    }
}

fn dispatch(ctx: &commands::Context, command: &Command) -> CommandResult<ExitStatus> {
    use commands::{environment as env, history, process};
    let done = |r: CommandResult| r.map(|()| ExitStatus::Success);
    match command {
        Command::Init(args) => done(commands::init::run(ctx, args)),
        Command::Config(command) => done(commands::config::run(ctx, command)),
        Command::Doctor => done(commands::doctor::run(ctx)),
        Command::Completions(args) => Ok(commands::completions::run(args)),
        Command::Remote(command) => done(commands::remote::remote(ctx, command)),
        Command::Push(args) => done(commands::remote::push(ctx, args)),
        Command::Pull(args) => done(commands::remote::pull(ctx, args)),
        Command::Merge(args) => done(commands::remote::merge(ctx, args)),
        Command::Clone(args) => done(commands::remote::clone(ctx, args)),
        Command::Branch(args) => done(commands::remote::branch(ctx, args)),
        Command::Switch(args) => done(commands::remote::switch(ctx, args)),
        Command::SelfCommand(command) => done(commands::self_update::run(ctx, command)),
        Command::Create(args) => done(env::create(ctx, args)),
        Command::List => done(env::list(ctx)),
        Command::Use { name } => done(env::use_env(ctx, name)),
        Command::Delete { name } => done(env::delete(ctx, name.as_deref())),
        Command::Status => done(env::status(ctx)),
        Command::Sync(args) => done(env::sync(ctx, args)),
        Command::Comfyui(command) => done(env::comfyui(ctx, command)),
        Command::Run(args) => process::run(ctx, args),
        Command::Stop => done(process::stop(ctx)),
        Command::Logs(args) => done(process::logs(ctx, args)),
        Command::Commit(args) => done(history::commit(ctx, args)),
        Command::Log(args) => done(history::log(ctx, args)),
        Command::Rollback(args) => done(history::rollback(ctx, args)),
        Command::Diff(args) => done(history::diff(ctx, args)),
        Command::Node(command) => done(commands::node::run(ctx, command)),
        Command::Py(command) => done(commands::python::run(ctx, command)),
        Command::Backend(command) => done(commands::backend::run(ctx, command)),
        Command::Release(args) => commands::release::run(ctx, args),
        Command::Workflow(command) => commands::workflow::run(ctx, command),
        Command::Model(command) => done(commands::model::run(ctx, command)),
        Command::Deploy(command) => done(commands::deploy::run(ctx, command)),
        Command::Export(args) => done(commands::bundle::export(ctx, args)),
        Command::Import(args) => done(commands::bundle::import(ctx, args)),
        Command::Serve(args) => done(commands::serve::run(ctx, args)),
    }
}

/// `comfydock node add`: the subcommand names only, never an argument value (values can hold
/// secrets such as `-c tokens.huggingface=…`). Shown to whoever waits for the workspace lock.
fn subcommand_path(matches: &clap::ArgMatches) -> String {
    let mut path = String::from("comfydock");
    let mut current = matches;
    while let Some((name, sub)) = current.subcommand() {
        path.push(' ');
        path.push_str(name);
        current = sub;
    }
    path
}

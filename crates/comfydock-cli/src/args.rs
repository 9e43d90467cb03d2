//! Command-line arguments. Plain clap structs: no behaviour lives here.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Reproducible, shareable, deployable ComfyUI environments.
#[derive(Debug, Parser)]
#[command(
    name = "comfydock",
    version,
    propagate_version = true,
    disable_help_subcommand = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command accepts.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Workspace to use [default: $COMFYDOCK_HOME, else ~/comfydock]
    #[arg(long, global = true, value_name = "PATH")]
    pub workspace: Option<PathBuf>,

    /// Environment to act on [default: $COMFYDOCK_ENV, else the active one]
    #[arg(short = 'e', long = "env", global = true, value_name = "NAME")]
    pub env: Option<String>,

    /// Override a setting for this command (repeatable), e.g. `-c registry.url=http://...`
    #[arg(short = 'c', long = "config", global = true, value_name = "KEY=VALUE")]
    pub config: Vec<String>,

    /// Print machine-readable JSON on stdout
    #[arg(long, global = true)]
    pub json: bool,

    /// Answer yes to every prompt (required when there is no terminal to ask on)
    #[arg(short = 'y', long, global = true)]
    pub yes: bool,

    /// More log output (-v debug, -vv trace); RUST_LOG overrides
    #[arg(short = 'v', long, global = true, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,

    /// Less output: only data and errors
    #[arg(short = 'q', long, global = true, action = clap::ArgAction::Count)]
    pub quiet: u8,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a workspace
    Init(InitArgs),
    /// Show and change workspace settings
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Check that git, uv and Python are usable; installs uv into the workspace when missing
    Doctor,
    /// Print a shell completion script
    Completions(CompletionsArgs),
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Where to create the workspace [default: --workspace, $COMFYDOCK_HOME, else ~/comfydock]
    pub path: Option<PathBuf>,
    /// Create the workspace even if the folder is not empty
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// List every setting with its value and where it comes from
    List,
    /// Print one setting's value
    Get {
        /// Setting key, e.g. `registry.url`
        key: String,
    },
    /// Store a setting in the workspace (tokens go to credentials.json, mode 0600)
    Set {
        /// Setting key, e.g. `registry.url`
        key: String,
        /// New value
        value: String,
    },
    /// Remove a stored setting (the default or env value applies again)
    Unset {
        /// Setting key
        key: String,
    },
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// Shell to generate completions for
    pub shell: clap_complete::Shell,
}

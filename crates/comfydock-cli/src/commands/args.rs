//! Command-line arguments. Plain clap structs: no behaviour lives here.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Reproducible, shareable, deployable ComfyUI environments.
#[derive(Debug, Parser)]
#[command(
    name = "comfydock",
    version = env!("COMFYDOCK_LONG_VERSION"),
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
    /// Manage the comfydock installation itself
    #[command(name = "self", subcommand)]
    SelfCommand(crate::commands::self_update::SelfCommand),

    /// Create an environment: ComfyUI at an exact commit, its own venv, a versioned .cec
    Create(CreateArgs),
    /// List environments (the active one is marked)
    List,
    /// Make an environment the active one
    Use {
        /// Environment name
        name: String,
    },
    /// Delete an environment (never touches shared models or other environments)
    Delete {
        /// Environment name [default: -e / the active one]
        name: Option<String>,
    },
    /// Show every difference between .cec and the environment on disk, with the fix for each
    Status,
    /// Make the environment exactly what .cec says (ComfyUI commit, locked Python packages)
    Sync(SyncArgs),
    /// Start ComfyUI (syncs first if the environment is stale)
    Run(RunArgs),
    /// Stop a ComfyUI started with `run --background`
    Stop,
    /// Show the log of a background ComfyUI
    Logs(LogsArgs),
    /// Commit the current state of .cec
    Commit(CommitArgs),
    /// Show the commits of .cec
    Log(LogArgs),
    /// Restore .cec to an earlier commit (as a new commit), then sync
    Rollback(RollbackArgs),
    /// Semantic difference between commits of .cec: ComfyUI, Python packages, nodes, models, workflows
    Diff(DiffArgs),
    /// Manage the environment's ComfyUI version
    #[command(subcommand)]
    Comfyui(ComfyuiCommand),
    /// Add, remove, update and inspect custom nodes
    #[command(subcommand)]
    Node(crate::commands::node::NodeCommand),
    /// Your own Python packages and constraints, kept apart from ComfyUI's and the nodes'
    #[command(subcommand)]
    Py(crate::commands::python::PyCommand),
    /// Torch backends the lock covers (cpu, cuXXX, rocmX.Y, xpu) and the one this machine uses
    #[command(subcommand)]
    Backend(crate::commands::backend::BackendCommand),
    /// Release manager for multi-package template and asset monorepos
    Release(crate::commands::release::ReleaseArgs),
    /// Model roots, the content-addressed model index and verified downloads
    #[command(subcommand)]
    Model(crate::commands::model::ModelCommand),
    /// Analyze, validate and convert workflows; track them in an environment
    #[command(subcommand)]
    Workflow(crate::commands::workflow::WorkflowCommand),
    /// Deploy an environment as a reproducible Docker build context or Kubernetes manifests
    #[command(subcommand)]
    Deploy(crate::commands::deploy::DeployCommand),
    /// Export the environment as a verified, deterministic bundle (.tar.gz)
    Export(crate::commands::bundle::ExportArgs),
    /// Create an environment from a bundle written by `export`
    Import(crate::commands::bundle::ImportArgs),
    /// Git remotes of the environment's .cec, for sharing it with a team
    #[command(subcommand)]
    Remote(crate::commands::remote::RemoteCommand),
    /// Push the committed .cec to a git remote (refuses what `export` refuses)
    Push(crate::commands::remote::PushArgs),
    /// Bring in a git remote's commits (fast-forward or semantic merge), then sync
    Pull(crate::commands::remote::PullArgs),
    /// Merge a branch into .cec by meaning (manifest by table, lock re-resolved), then sync
    Merge(crate::commands::remote::MergeArgs),
    /// Create an environment from a shared .cec git repository (like `import`)
    Clone(crate::commands::remote::CloneArgs),
    /// List the branches of .cec, or create one
    Branch(crate::commands::remote::BranchArgs),
    /// Switch .cec to another branch, then sync the environment to it
    Switch(crate::commands::remote::SwitchArgs),
    /// Serve workflows as a typed HTTP API with a durable job queue
    Serve(crate::commands::serve::ServeArgs),
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Environment name
    pub name: String,
    /// ComfyUI tag, branch or commit [default: the newest vX.Y.Z release]
    #[arg(long, value_name = "REF")]
    pub comfyui: Option<String>,
    /// Python version, e.g. 3.12 [default: the newest Python 3.10+ uv finds]
    #[arg(long, value_name = "VER")]
    pub python: Option<String>,
    /// PyTorch backend: auto, cpu, cuXXX, rocmX.Y or xpu
    #[arg(long, value_name = "BACKEND", default_value = "auto")]
    pub torch_backend: String,
    /// Make it the active environment
    #[arg(long = "use")]
    pub use_it: bool,
}

#[derive(Debug, Args)]
pub struct SyncArgs {
    /// Only report what would change
    #[arg(long)]
    pub dry_run: bool,
    /// Also uninstall Python packages the lock does not list
    #[arg(long)]
    pub prune: bool,
    /// Switch this machine to this torch backend first (as `backend use`); the lock must cover it
    #[arg(long, value_name = "BACKEND", conflicts_with = "dry_run")]
    pub torch_backend: Option<String>,
    /// Also download the models .cec pins that this machine lacks, from their recorded sources
    /// (verified against the pinned hash): `required` (the default) or `all`
    #[arg(long, value_name = "WHICH", num_args = 0..=1, default_missing_value = "required", conflicts_with = "dry_run")]
    pub models: Option<ModelsToFetch>,
}

/// Which missing models `sync --models` downloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ModelsToFetch {
    /// Models a workflow cannot run without
    Required,
    /// Every missing model, optional ones too
    All,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Port ComfyUI listens on
    #[arg(long, default_value_t = 8188)]
    pub port: u16,
    /// Address ComfyUI listens on
    #[arg(long, default_value = "127.0.0.1")]
    pub listen: String,
    /// Start in the background; logs go to logs/NAME/comfyui.log
    #[arg(long)]
    pub background: bool,
    /// Do not sync a stale environment first
    #[arg(long)]
    pub no_sync: bool,
    /// Extra arguments for ComfyUI's main.py
    #[arg(last = true, value_name = "COMFY_ARGS")]
    pub comfy_args: Vec<String>,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Keep printing new lines
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Number of lines to show
    #[arg(short = 'n', long, default_value_t = 50)]
    pub lines: usize,
}

#[derive(Debug, Args)]
pub struct CommitArgs {
    /// Commit message
    #[arg(short = 'm', long)]
    pub message: String,
}

#[derive(Debug, Args)]
pub struct LogArgs {
    /// Show at most N commits
    #[arg(short = 'n', long)]
    pub limit: Option<usize>,
}

#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// Revision to return to (e.g. HEAD~1 or a commit) [default: HEAD, i.e. discard uncommitted changes]
    pub rev: Option<String>,
    /// Discard uncommitted changes in .cec
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// From this revision [default: HEAD]
    pub rev: Option<String>,
    /// To this revision [default: the working tree]
    pub rev2: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum ComfyuiCommand {
    /// Move ComfyUI to another tag, branch or commit, re-lock and sync, as one transaction
    Update {
        /// Target ref [default: the newest release]
        reference: Option<String>,
    },
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

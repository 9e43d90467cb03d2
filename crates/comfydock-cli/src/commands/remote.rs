//! Sharing through git remotes: `remote add|remove|list`, `push`, `pull`, `clone`. The work is
//! `comfydock_bundles::git_remote`; `clone` imports like `import` does.

use clap::{Args, Subcommand};
use comfydock_bundles::git_remote::{self, PullContext, Side};
use comfydock_environments::cec_merge::{LockOutcome, MergePlan};
use comfydock_environments::environment;
use comfydock_environments::workspace::Workspace;
use comfydock_foundation::git::{self, Git};

use super::Context;
use super::bundle::{ImportChoices, import_opened};
use crate::error::{CommandError, CommandResult};

/// `comfydock remote`.
#[derive(Debug, Subcommand)]
pub enum RemoteCommand {
    /// Add a git remote to the environment's .cec (any URL git accepts: https, ssh, file, a path)
    Add { name: String, url: String },
    /// Remove a git remote
    Remove { name: String },
    /// List the git remotes (credentials in URLs are not shown)
    List,
}

/// `comfydock push`.
#[derive(Debug, Args)]
pub struct PushArgs {
    /// Remote [default: the only remote, else `origin`]
    pub remote: Option<String>,
    /// Branch [default: the branch .cec is on]
    pub branch: Option<String>,
    /// Replace the remote branch, but only if it is still what was last fetched
    #[arg(long)]
    pub force: bool,
    /// Push even with workflows or models a teammate could not reproduce
    #[arg(long)]
    pub allow_issues: bool,
}

/// `comfydock pull`.
#[derive(Debug, Args)]
pub struct PullArgs {
    /// Remote [default: the only remote, else `origin`]
    pub remote: Option<String>,
    /// Branch [default: the branch .cec is on]
    pub branch: Option<String>,
    /// Only show what pulling would change (ComfyUI, packages, nodes, models, workflows)
    #[arg(long)]
    pub preview: bool,
    /// Let uv build local, git and source-only packages the pulled lock adds (runs their code)
    #[arg(long)]
    pub run_install_scripts: bool,
    #[command(flatten)]
    pub side: SideArgs,
}

/// `--ours` / `--theirs`: the side kept where both changed the same thing.
#[derive(Debug, Args)]
pub struct SideArgs {
    /// Where both sides changed the same thing differently, keep this environment's version
    #[arg(long, conflicts_with = "theirs")]
    pub ours: bool,
    /// Where both sides changed the same thing differently, take the merged-in version
    #[arg(long)]
    pub theirs: bool,
}

impl SideArgs {
    fn side(&self) -> Option<Side> {
        if self.ours {
            Some(Side::Ours)
        } else if self.theirs {
            Some(Side::Theirs)
        } else {
            None
        }
    }
}

/// `comfydock merge`.
#[derive(Debug, Args)]
pub struct MergeArgs {
    /// What to merge: a branch of .cec, a remote branch (`origin/main`) or a commit
    pub rev: String,
    /// Only show what the merge would make (ComfyUI, packages, nodes, models, workflows,
    /// conflicts); changes nothing
    #[arg(long)]
    pub preview: bool,
    /// Let uv build local, git and source-only packages the merged lock adds (runs their code)
    #[arg(long)]
    pub run_install_scripts: bool,
    #[command(flatten)]
    pub side: SideArgs,
}

/// `comfydock branch`.
#[derive(Debug, Args)]
pub struct BranchArgs {
    /// Create this branch at the current commit (without switching to it) [default: list]
    pub name: Option<String>,
}

/// `comfydock switch`.
#[derive(Debug, Args)]
pub struct SwitchArgs {
    /// Branch to switch to
    pub name: String,
    /// Create the branch at the current commit first
    #[arg(long)]
    pub create: bool,
    /// Let uv build local, git and source-only packages the branch adds (runs their code)
    #[arg(long)]
    pub run_install_scripts: bool,
}

/// `comfydock clone`.
#[derive(Debug, Args)]
pub struct CloneArgs {
    /// Git URL of a shared .cec (https, ssh, file, a path)
    pub url: String,
    /// Environment name [default: the repository's name]
    #[arg(long)]
    pub name: Option<String>,
    /// Branch to clone [default: the remote's default branch]
    #[arg(long)]
    pub branch: Option<String>,
    #[command(flatten)]
    pub choices: ImportChoices,
}

pub fn remote(ctx: &Context, command: &RemoteCommand) -> CommandResult {
    let workspace = ctx.workspace()?;
    let env = environment::select(&workspace, ctx.global.env.as_deref())?;
    let git = Git::find()?;
    match command {
        RemoteCommand::Add { name, url } => {
            git_remote::add_remote(&git, &env, name, url)?;
            if ctx.printer.json_mode() {
                ctx.printer.json(&git_remote::remotes(&git, &env)?);
            } else {
                ctx.printer
                    .status("Added", format!("remote `{name}` to `{}`", env.name));
            }
        }
        RemoteCommand::Remove { name } => {
            git_remote::remove_remote(&git, &env, name)?;
            if ctx.printer.json_mode() {
                ctx.printer.json(&git_remote::remotes(&git, &env)?);
            } else {
                ctx.printer
                    .status("Removed", format!("remote `{name}` from `{}`", env.name));
            }
        }
        RemoteCommand::List => {
            let remotes = git_remote::remotes(&git, &env)?;
            if ctx.printer.json_mode() {
                ctx.printer.json(&remotes);
            } else if remotes.is_empty() {
                ctx.printer.info(format!(
                    "`{}` has no remotes; add one with `comfydock -e {} remote add origin URL`",
                    env.name, env.name
                ));
            } else {
                let width = remotes.iter().map(|r| r.name.len()).max().unwrap_or(0);
                for r in &remotes {
                    ctx.printer.data(format!("{:<width$}  {}", r.name, r.url));
                }
            }
        }
    }
    Ok(())
}

pub fn push(ctx: &Context, args: &PushArgs) -> CommandResult {
    let workspace = ctx.workspace()?;
    let env = environment::select(&workspace, ctx.global.env.as_deref())?;
    let _lock = ctx.lock(&workspace)?;
    let git = Git::find()?;
    let report = git_remote::push(
        &git,
        &env,
        args.remote.as_deref(),
        args.branch.as_deref(),
        args.force,
        args.allow_issues,
    )?;
    if ctx.printer.json_mode() {
        ctx.printer.json(&report);
        return Ok(());
    }
    for warning in &report.warnings {
        ctx.printer.warn(warning);
    }
    ctx.printer.status(
        "Pushed",
        format!(
            "`{}` {} to {}/{}",
            env.name,
            comfydock_foundation::display_text::short_hash(&report.commit),
            report.remote,
            report.branch
        ),
    );
    Ok(())
}

/// Run `work` on `env` under the workspace lock, with the settings and tools it needs.
fn under_lock<T>(
    ctx: &Context,
    workspace: &Workspace,
    env: &environment::Environment,
    work: &dyn Fn(&PullContext<'_>) -> Result<T, comfydock_bundles::BundleError>,
) -> CommandResult<T> {
    let _lock = ctx.lock(workspace)?;
    let workspace = Workspace::open(workspace.root())?;
    let settings = ctx.settings(&workspace);
    let tools = environment::tools(&workspace, &settings, &ctx.reporter)?;
    Ok(work(&PullContext {
        workspace: &workspace,
        settings: &settings,
        tools: &tools,
        env,
        reporter: &ctx.reporter,
    })?)
}

pub fn pull(ctx: &Context, args: &PullArgs) -> CommandResult {
    let workspace = ctx.workspace()?;
    let env = environment::select(&workspace, ctx.global.env.as_deref())?;
    if args.preview {
        let preview = under_lock(ctx, &workspace, &env, &|work| {
            git_remote::preview_pull(
                work,
                args.remote.as_deref(),
                args.branch.as_deref(),
                args.side.side(),
            )
        })?;
        if ctx.printer.json_mode() {
            ctx.printer.json(&preview);
            return Ok(());
        }
        ctx.printer.info(format!(
            "{}/{} compared with `{}` ({}):",
            preview.remote,
            preview.branch,
            env.name,
            if preview.fast_forward {
                "`pull` fast-forwards"
            } else {
                "both have new commits: `pull` merges them"
            }
        ));
        super::history::print_diff(ctx, &preview.diff);
        if let Some(plan) = &preview.merge {
            print_merge_plan(ctx, plan);
        }
        return Ok(());
    }
    let report = under_lock(ctx, &workspace, &env, &|work| {
        git_remote::pull(
            work,
            args.remote.as_deref(),
            args.branch.as_deref(),
            args.side.side(),
            args.run_install_scripts,
        )
    })?;
    if ctx.printer.json_mode() {
        ctx.printer.json(&report);
        return Ok(());
    }
    let short = comfydock_foundation::display_text::short_hash;
    if report.sync.is_none() {
        ctx.printer.info(format!(
            "`{}` is up to date with {}/{}",
            env.name, report.remote, report.branch
        ));
    } else {
        if let Some(plan) = &report.merge {
            print_merge_result(ctx, plan);
        }
        ctx.printer.status(
            "Pulled",
            format!(
                "`{}` {} → {} from {}/{}, synced",
                env.name,
                short(&report.from),
                short(&report.to),
                report.remote,
                report.branch
            ),
        );
        ctx.printer.info(format!(
            "Models the workflows need and this machine lacks: `comfydock -e {} status`; fetch them with `comfydock -e {} sync --models`",
            env.name, env.name
        ));
    }
    Ok(())
}

pub fn merge(ctx: &Context, args: &MergeArgs) -> CommandResult {
    let workspace = ctx.workspace()?;
    let env = environment::select(&workspace, ctx.global.env.as_deref())?;
    git::check_revision(&args.rev).map_err(|e| CommandError::usage(e.to_string()))?;
    if args.preview {
        let plan = under_lock(ctx, &workspace, &env, &|work| {
            git_remote::preview_merge(work, &args.rev, args.side.side())
        })?;
        if ctx.printer.json_mode() {
            ctx.printer.json(&plan);
            return Ok(());
        }
        ctx.printer
            .info(format!("Merging `{}` into `{}` would make:", args.rev, env.name));
        super::history::print_diff(ctx, &plan.diff);
        print_merge_plan(ctx, &plan);
        return Ok(());
    }
    let report = under_lock(ctx, &workspace, &env, &|work| {
        git_remote::merge(work, &args.rev, args.side.side(), args.run_install_scripts)
    })?;
    if ctx.printer.json_mode() {
        ctx.printer.json(&report);
        return Ok(());
    }
    print_merge_result(ctx, &report.plan);
    ctx.printer.status(
        "Merged",
        format!(
            "`{}` into `{}` ({}), synced",
            args.rev,
            env.name,
            comfydock_foundation::display_text::short_hash(&report.commit)
        ),
    );
    Ok(())
}

/// What a merge would do beyond the diff: conflicts, workflows kept twice, the lock.
fn print_merge_plan(ctx: &Context, plan: &MergePlan) {
    let side = |v: &Option<String>| v.clone().unwrap_or_else(|| "(removed)".into());
    for c in &plan.conflicts {
        let chosen = match plan.chosen {
            Some(Side::Ours) => " — keeping ours",
            Some(Side::Theirs) => " — taking theirs",
            None => "",
        };
        ctx.printer.data(format!(
            "conflict: {} (`{}`): ours {}, theirs {}, was {}{chosen}",
            c.subject,
            c.key,
            side(&c.ours),
            side(&c.theirs),
            side(&c.base)
        ));
    }
    print_kept_both(ctx, plan);
    match &plan.lock {
        LockOutcome::Unchanged => ctx.printer.data("lock: unchanged"),
        LockOutcome::Resolved => ctx.printer.data("lock: re-resolved from the merged manifest"),
        LockOutcome::NotTried => {
            ctx.printer
                .data("lock: not resolved until every conflict has a side (`--ours` or `--theirs`)");
        }
        LockOutcome::Unresolvable { problem, .. } => {
            ctx.printer.data(format!("lock: does not resolve: {problem}"));
        }
    }
}

fn print_kept_both(ctx: &Context, plan: &MergePlan) {
    for k in &plan.kept_both {
        ctx.printer.data(format!(
            "workflow `{}`: both sides changed it; this side's version keeps the name, theirs is kept as `{}`",
            k.workflow, k.theirs_as
        ));
    }
}

/// After a merge: the sides chosen and the workflows kept twice.
fn print_merge_result(ctx: &Context, plan: &MergePlan) {
    for c in &plan.conflicts {
        let kept = if plan.chosen == Some(Side::Theirs) {
            "theirs"
        } else {
            "ours"
        };
        ctx.printer
            .warn(format!("{}: both changed `{}`; kept {kept}", c.subject, c.key));
    }
    for k in &plan.kept_both {
        ctx.printer.warn(format!(
            "workflow `{}`: both sides changed it; theirs is kept as `{}` (open both in ComfyUI, keep one, commit)",
            k.workflow, k.theirs_as
        ));
    }
}

pub fn branch(ctx: &Context, args: &BranchArgs) -> CommandResult {
    let workspace = ctx.workspace()?;
    let env = environment::select(&workspace, ctx.global.env.as_deref())?;
    let git = Git::find()?;
    if let Some(name) = &args.name {
        let _lock = ctx.lock(&workspace)?;
        git_remote::create_branch(&git, &env, name)?;
        if !ctx.printer.json_mode() {
            ctx.printer.status(
                "Created",
                format!(
                    "branch `{name}`; switch to it with `comfydock -e {} switch {name}`",
                    env.name
                ),
            );
        }
    }
    let branches = git_remote::branches(&git, &env)?;
    if ctx.printer.json_mode() {
        ctx.printer.json(&branches);
    } else if args.name.is_none() {
        for b in &branches {
            ctx.printer.data(format!(
                "{} {}  {}",
                if b.current { "*" } else { " " },
                b.name,
                comfydock_foundation::display_text::short_hash(&b.commit)
            ));
        }
    }
    Ok(())
}

pub fn switch(ctx: &Context, args: &SwitchArgs) -> CommandResult {
    let workspace = ctx.workspace()?;
    let env = environment::select(&workspace, ctx.global.env.as_deref())?;
    let report = under_lock(ctx, &workspace, &env, &|work| {
        git_remote::switch(work, &args.name, args.create, args.run_install_scripts)
    })?;
    if ctx.printer.json_mode() {
        ctx.printer.json(&report);
    } else {
        ctx.printer.status(
            "Switched",
            format!(
                "`{}` to branch `{}` ({}), synced",
                env.name,
                report.branch,
                comfydock_foundation::display_text::short_hash(&report.to)
            ),
        );
    }
    Ok(())
}

/// The environment name a clone of `url` gets: the repository's last path part, without `.git`.
fn name_from_url(url: &str) -> String {
    let tail = url
        .trim_end_matches('/')
        .rsplit(['/', ':'])
        .next()
        .unwrap_or_default();
    let name = tail.strip_suffix(".git").unwrap_or(tail);
    let name = name.strip_suffix(".cec").unwrap_or(name);
    if name.is_empty() {
        "cloned".to_owned()
    } else {
        name.to_owned()
    }
}

pub fn clone(ctx: &Context, args: &CloneArgs) -> CommandResult {
    let workspace = ctx.workspace()?;
    let request = args
        .choices
        .request(args.name.clone().unwrap_or_else(|| name_from_url(&args.url)))?;
    git::check_url(&args.url).map_err(|e| CommandError::usage(e.to_string()))?;
    if let Some(branch) = &args.branch {
        git::check_revision(branch).map_err(|e| CommandError::usage(e.to_string()))?;
    }
    environment::validate_name(&request.wanted)?;
    let git = Git::find()?;
    // Cloned next to the environments (one file system, so `.git` moves by rename).
    fs_err::create_dir_all(workspace.cache_dir())?;
    let staging = tempfile::Builder::new()
        .prefix("clone-")
        .tempdir_in(workspace.cache_dir())?;
    let checkout = staging.path().join("cec");
    let mut clone_args = vec!["clone", "--quiet"];
    if let Some(branch) = &args.branch {
        clone_args.extend(["--branch", branch.as_str()]);
    }
    let checkout_text = checkout.to_string_lossy().into_owned();
    clone_args.extend(["--", args.url.as_str(), checkout_text.as_str()]);
    ctx.printer
        .status("Cloning", comfydock_foundation::redact::redact_text(&args.url));
    git.run(None, clone_args)?;
    let bundle = git_remote::open_cloned(&git, &checkout, &request.wanted)?;
    let cloned_git = checkout.join(".git");
    let take_history = |env: &environment::Environment| -> CommandResult {
        Ok(git_remote::adopt_clone_history(&git, env, &cloned_git)?)
    };
    import_opened(ctx, &workspace, &bundle, &request, &take_history)
}

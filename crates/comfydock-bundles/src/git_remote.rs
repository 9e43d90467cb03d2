//! Sharing an environment through a git remote of its `.cec` repository: remotes, `push` (only
//! a committed, shareable state; never forced unless asked), `pull` (fast-forward, then the
//! environment made exactly what the new `.cec` says; on failure `.cec` and the environment go
//! back to where they were) and `clone` (a remote `.cec` opened like a bundle, then imported).

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use super::BundleError;
use super::archive::{self, Unpacked};
use super::format::{BundleManifest, ComfyUiRecord, Counts, FORMAT_VERSION, current_version};
use super::import::OpenedBundle;
use comfydock_environments::cec_merge::{self, MergePlan};
use comfydock_environments::environment::Environment;
use comfydock_environments::lifecycle::{self, SyncReport};
use comfydock_environments::manifest::Manifest;
use comfydock_environments::manifest::node_entry as entry;
pub use comfydock_environments::manifest::three_way::Side;
use comfydock_environments::nodes::NodeSource;
use comfydock_environments::workflow_tracking;
use comfydock_foundation::git::{self, Git};
use comfydock_foundation::redact::redact_text;

/// Why a remote operation could not start.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    #[error("Environment `{env}` has no git remote")]
    NoRemote { env: String },
    #[error("Environment `{env}` has several git remotes ({}); say which", names.join(", "))]
    WhichRemote { env: String, names: Vec<String> },
    #[error("Environment `{env}` has no remote named `{name}`")]
    UnknownRemote { env: String, name: String },
    #[error("`{name}` is not a usable remote or branch name")]
    BadName { name: String },
    #[error("`.cec` of `{env}` has no branch `{name}`")]
    UnknownBranch { env: String, name: String },
    #[error("`.cec` of `{env}` is not on a branch (detached HEAD)")]
    Detached { env: String },
    #[error("`{rev}` is already part of the history of `{env}`: nothing to merge")]
    NothingToMerge { env: String, rev: String },
}

impl comfydock_foundation::Hinted for RemoteError {
    fn hint(&self) -> Option<String> {
        Some(match self {
            Self::NoRemote { env } => {
                format!("add one: `comfydock -e {env} remote add origin URL`")
            }
            Self::WhichRemote { env, names } => format!(
                "name it, e.g. `comfydock -e {env} push {}`",
                names.first().map_or("origin", String::as_str)
            ),
            Self::UnknownRemote { env, .. } => {
                format!("see the remotes with `comfydock -e {env} remote list`")
            }
            Self::BadName { .. } => {
                "remote and branch names are plain names (letters, digits, `-`, `_`, `.`, `/`)".into()
            }
            Self::UnknownBranch { env, name } => format!(
                "see the branches with `comfydock -e {env} branch`, or create it with `comfydock -e {env} switch --create {name}`"
            ),
            Self::NothingToMerge { env, .. } => {
                format!("see the branches with `comfydock -e {env} branch`")
            }
            Self::Detached { env } => format!(
                "commit on a branch first: `git -C <env>/.cec switch -c main`, then `comfydock -e {env} push`"
            ),
        })
    }
}

/// One remote of a `.cec` repository (URLs shown with credentials redacted).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Remote {
    pub name: String,
    pub url: String,
}

/// A remote or branch name: plain, never an option, never a path escape.
fn check_name(name: &str) -> Result<(), RemoteError> {
    let plain = !name.is_empty()
        && !name.starts_with(['-', '.', '/'])
        && !name.ends_with(['/', '.'])
        && !name.contains("..")
        && !name.contains("//")
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'));
    if plain {
        Ok(())
    } else {
        Err(RemoteError::BadName {
            name: name.to_owned(),
        })
    }
}

/// The remotes of `env`'s `.cec`, by name.
pub fn remotes(git: &Git, env: &Environment) -> Result<Vec<Remote>, BundleError> {
    let names = git.run(Some(&env.cec()), ["remote"])?;
    let mut out = Vec::new();
    for name in names.lines().map(str::trim).filter(|n| !n.is_empty()) {
        let url = git.run(Some(&env.cec()), ["remote", "get-url", "--", name])?;
        out.push(Remote {
            name: name.to_owned(),
            url: redact_text(url.trim()),
        });
    }
    Ok(out)
}

/// Add remote `name` → `url` (any git URL git accepts: https, ssh, file, a path).
pub fn add_remote(git: &Git, env: &Environment, name: &str, url: &str) -> Result<(), BundleError> {
    check_name(name)?;
    git::check_url(url).map_err(git::GitError::from)?;
    git.run(Some(&env.cec()), ["remote", "add", "--", name, url])?;
    Ok(())
}

/// Remove remote `name`.
pub fn remove_remote(git: &Git, env: &Environment, name: &str) -> Result<(), BundleError> {
    check_name(name)?;
    require_remote(git, env, name)?;
    git.run(Some(&env.cec()), ["remote", "remove", "--", name])?;
    Ok(())
}

fn require_remote(git: &Git, env: &Environment, name: &str) -> Result<(), BundleError> {
    if remotes(git, env)?.iter().any(|r| r.name == name) {
        Ok(())
    } else {
        Err(RemoteError::UnknownRemote {
            env: env.name.clone(),
            name: name.to_owned(),
        }
        .into())
    }
}

/// `remote`, or the only remote, or `origin` when there are several.
fn pick_remote(git: &Git, env: &Environment, remote: Option<&str>) -> Result<String, BundleError> {
    if let Some(name) = remote {
        check_name(name)?;
        require_remote(git, env, name)?;
        return Ok(name.to_owned());
    }
    let all = remotes(git, env)?;
    match all.as_slice() {
        [] => Err(RemoteError::NoRemote {
            env: env.name.clone(),
        }
        .into()),
        [one] => Ok(one.name.clone()),
        several if several.iter().any(|r| r.name == "origin") => Ok("origin".to_owned()),
        several => Err(RemoteError::WhichRemote {
            env: env.name.clone(),
            names: several.iter().map(|r| r.name.clone()).collect(),
        }
        .into()),
    }
}

/// `branch`, or the branch `.cec` is on.
fn pick_branch(git: &Git, env: &Environment, branch: Option<&str>) -> Result<String, BundleError> {
    if let Some(name) = branch {
        check_name(name)?;
        return Ok(name.to_owned());
    }
    git.run(Some(&env.cec()), ["symbolic-ref", "--short", "-q", "HEAD"])
        .ok()
        .map(|b| b.trim().to_owned())
        .filter(|b| !b.is_empty())
        .ok_or_else(|| {
            RemoteError::Detached {
                env: env.name.clone(),
            }
            .into()
        })
}

/// What `push` did.
#[derive(Debug, Clone, Serialize)]
pub struct PushReport {
    pub remote: String,
    pub branch: String,
    pub commit: String,
    /// Issues let through with `allow_issues`.
    pub warnings: Vec<String>,
}

/// Push `env`'s committed `.cec` to `remote`/`branch`. Refuses uncommitted changes and what
/// `export` refuses (unless `allow_issues`); `force` replaces the remote branch only if it is
/// still what was last fetched (`--force-with-lease`).
pub fn push(
    git: &Git,
    env: &Environment,
    remote: Option<&str>,
    branch: Option<&str>,
    force: bool,
    allow_issues: bool,
) -> Result<PushReport, BundleError> {
    super::export::check_committed(git, env)?;
    let manifest = env.manifest()?;
    let shareable = super::export::check_shareable(env, &manifest, allow_issues)?;
    let remote = pick_remote(git, env, remote)?;
    let branch = pick_branch(git, env, branch)?;
    let cec = env.cec();
    let refspec = format!("HEAD:refs/heads/{branch}");
    let mut args = vec!["push", "--set-upstream"];
    if force {
        args.push("--force-with-lease");
    }
    args.extend(["--", remote.as_str(), refspec.as_str()]);
    git.run(Some(&cec), args)?;
    let commit = git.run(Some(&cec), ["rev-parse", "HEAD"])?.trim().to_owned();
    Ok(PushReport {
        remote,
        branch,
        commit,
        warnings: shareable.warnings,
    })
}

/// What `pull` did.
#[derive(Debug, Clone, Serialize)]
pub struct PullReport {
    pub remote: String,
    pub branch: String,
    /// `.cec` commit before and after.
    pub from: String,
    pub to: String,
    /// The semantic merge made when both sides had new commits (`None`: a fast-forward).
    pub merge: Option<MergePlan>,
    /// `None` when there was nothing new.
    pub sync: Option<SyncReport>,
}

/// Where `pull` makes the environment match the new `.cec` (the environment's working context).
pub type PullContext<'a> = comfydock_environments::nodes::NodeContext<'a>;

/// A fetched remote branch: `.cec`'s HEAD (`from`) and the branch's tip (`to`).
struct Fetched {
    remote: String,
    branch: String,
    from: String,
    to: String,
}

fn fetch(
    git: &Git,
    env: &Environment,
    remote: Option<&str>,
    branch: Option<&str>,
) -> Result<Fetched, BundleError> {
    let remote = pick_remote(git, env, remote)?;
    let branch = pick_branch(git, env, branch)?;
    let cec = env.cec();
    git.run(Some(&cec), ["fetch", "--", remote.as_str(), branch.as_str()])?;
    let rev = |name: &str| -> Result<String, BundleError> {
        Ok(git.run(Some(&cec), ["rev-parse", name])?.trim().to_owned())
    };
    Ok(Fetched {
        from: rev("HEAD")?,
        to: rev("FETCH_HEAD")?,
        remote,
        branch,
    })
}

/// Packages the `.cec` state at `to` would build from source (running their code) that the
/// state at `from` did not: what a teammate's commit must not run without the user's consent.
fn new_build_sources(git: &Git, env: &Environment, from: &str, to: &str) -> Vec<super::builds::BuildSource> {
    let cec = env.cec();
    let at = |rev: &str| {
        let read = |file: &str| {
            git.read_blob(&cec, rev, file)
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default()
        };
        super::builds::build_sources(&read("pyproject.toml"), &read("uv.lock"))
    };
    let before = at(from);
    at(to)
        .into_iter()
        .filter(|source| !before.contains(source))
        .collect()
}

/// Refuse to move `.cec` from `from` to `to` when that would build new sources, unless allowed.
fn check_build_consent(
    git: &Git,
    env: &Environment,
    from: &str,
    to: &str,
    command: &str,
    allow_builds: bool,
) -> Result<(), BundleError> {
    let sources = new_build_sources(git, env, from, to);
    if allow_builds || sources.is_empty() {
        return Ok(());
    }
    Err(BundleError::CommitBuildsNeedConsent {
        env: env.name.clone(),
        command: command.to_owned(),
        sources,
    })
}

/// Whether commit `a` is an ancestor of (or equal to) `b` in `env`'s `.cec`.
fn is_ancestor(git: &Git, env: &Environment, a: &str, b: &str) -> bool {
    git.run(Some(&env.cec()), ["merge-base", "--is-ancestor", a, b])
        .is_ok()
}

/// What `pull --preview` shows: what the remote branch would change, without changing anything.
#[derive(Debug, Clone, Serialize)]
pub struct PullPreview {
    pub remote: String,
    pub branch: String,
    pub from: String,
    pub to: String,
    /// Whether `pull` could fast-forward (false: the histories diverged and would be merged).
    pub fast_forward: bool,
    /// The semantic difference from this state to the pulled (or merged) one: ComfyUI,
    /// packages, nodes, models, workflows.
    pub diff: comfydock_environments::history::EnvDiff,
    /// The merge `pull` would make when the histories diverged: conflicts, workflows kept
    /// twice, whether the merged manifest resolves.
    pub merge: Option<MergePlan>,
}

/// Fetch `remote`/`branch` and describe what pulling it would change (with diverged histories,
/// the merge it would make, lock re-resolved on a copy); nothing else changes.
pub fn preview_pull(
    ctx: &PullContext<'_>,
    remote: Option<&str>,
    branch: Option<&str>,
    prefer: Option<Side>,
) -> Result<PullPreview, BundleError> {
    let (git, env) = (&ctx.tools.git, ctx.env);
    let fetched = fetch(git, env, remote, branch)?;
    let (remote, branch, from, to) = (fetched.remote, fetched.branch, fetched.from, fetched.to);
    let fast_forward = is_ancestor(git, env, &from, &to) || is_ancestor(git, env, &to, &from);
    let (diff, merge) = if fast_forward {
        let target = if is_ancestor(git, env, &to, &from) {
            &from
        } else {
            &to
        };
        (
            comfydock_environments::history::diff(git, env, Some(&from), Some(target))?,
            None,
        )
    } else {
        let label = format!("{remote}/{branch}");
        let plan = cec_merge::plan(git, ctx.tools, env, &to, &label, prefer, ctx.reporter)?;
        (plan.diff.clone(), Some(plan))
    };
    Ok(PullPreview {
        remote,
        branch,
        from,
        to,
        fast_forward,
        diff,
        merge,
    })
}

/// Fetch `remote`/`branch`, fast-forward `.cec` to it (or, when both sides have new commits,
/// merge it semantically: see [`merge`]), then sync the environment (ComfyUI, packages, nodes).
/// Refuses uncommitted changes. When anything fails, `.cec` is reset to where it was and the
/// environment synced back, and the error returned.
pub fn pull(
    ctx: &PullContext<'_>,
    remote: Option<&str>,
    branch: Option<&str>,
    prefer: Option<Side>,
    allow_builds: bool,
) -> Result<PullReport, BundleError> {
    let (git, env) = (&ctx.tools.git, ctx.env);
    super::export::check_committed(git, env)?;
    ctx.reporter.phase("Fetching");
    let fetched = fetch(git, env, remote, branch)?;
    let (remote, branch, from, to) = (fetched.remote, fetched.branch, fetched.from, fetched.to);
    let cec = env.cec();
    let ancestor = |a: &str, b: &str| is_ancestor(git, env, a, b);
    if from == to || ancestor(&to, &from) {
        return Ok(PullReport {
            remote,
            branch,
            from: from.clone(),
            to: from,
            merge: None,
            sync: None,
        });
    }
    if !ancestor(&from, &to) {
        let label = format!("{remote}/{branch}");
        let merged = merge_and_apply(ctx, &to, &label, "pull", prefer, allow_builds)?;
        return Ok(PullReport {
            remote,
            branch,
            from,
            to: merged.commit,
            merge: Some(merged.plan),
            sync: Some(merged.sync),
        });
    }
    check_build_consent(git, env, &from, &to, "pull", allow_builds)?;
    git.run(Some(&cec), ["merge", "--ff-only", "--quiet", to.as_str()])?;
    let report = apply_checkout(ctx, "the pulled state", &|| {
        git.run(Some(&cec), ["reset", "--hard", "--quiet", from.as_str()])
            .map(drop)
    })?;
    Ok(PullReport {
        remote,
        branch,
        from,
        to,
        merge: None,
        sync: Some(report),
    })
}

/// What `merge` did.
#[derive(Debug, Clone, Serialize)]
pub struct MergeReport {
    /// The merge commit in `.cec` (parents: the previous HEAD and the merged commit).
    pub commit: String,
    pub plan: MergePlan,
    pub sync: SyncReport,
}

/// Describe merging `rev` (a branch, `origin/main`, a commit) into `.cec`: the semantic diff,
/// conflicts, workflows kept twice, whether the merged manifest resolves. Changes nothing.
pub fn preview_merge(
    ctx: &PullContext<'_>,
    rev: &str,
    prefer: Option<Side>,
) -> Result<MergePlan, BundleError> {
    let (git, env) = (&ctx.tools.git, ctx.env);
    check_rev(rev)?;
    Ok(cec_merge::plan(
        git,
        ctx.tools,
        env,
        rev,
        rev,
        prefer,
        ctx.reporter,
    )?)
}

/// Merge `rev` into `.cec` by meaning (see [`cec_merge`]), commit it with both parents, then
/// make the environment what the merged `.cec` says. Refuses uncommitted changes, open
/// conflicts (unless `prefer` picks a side) and a merged manifest that does not resolve; when
/// anything fails, `.cec` and the environment are as they were.
pub fn merge(
    ctx: &PullContext<'_>,
    rev: &str,
    prefer: Option<Side>,
    allow_builds: bool,
) -> Result<MergeReport, BundleError> {
    let (git, env) = (&ctx.tools.git, ctx.env);
    check_rev(rev)?;
    super::export::check_committed(git, env)?;
    let cec = env.cec();
    let head = git.run(Some(&cec), ["rev-parse", "HEAD"])?.trim().to_owned();
    let theirs = git
        .resolve_commit(&cec, rev)
        .ok_or_else(|| RemoteError::UnknownBranch {
            env: env.name.clone(),
            name: rev.to_owned(),
        })?;
    if is_ancestor(git, env, &theirs, &head) {
        return Err(RemoteError::NothingToMerge {
            env: env.name.clone(),
            rev: rev.to_owned(),
        }
        .into());
    }
    merge_and_apply(ctx, &theirs, rev, &format!("merge {rev}"), prefer, allow_builds)
}

fn check_rev(rev: &str) -> Result<(), BundleError> {
    git::check_revision(rev).map_err(git::GitError::from)?;
    Ok(())
}

/// Plan the merge of `theirs`, refuse what must not be merged, commit it, and sync; on a failed
/// sync `.cec` goes back to its previous HEAD and the environment is synced back.
fn merge_and_apply(
    ctx: &PullContext<'_>,
    theirs: &str,
    label: &str,
    command: &str,
    prefer: Option<Side>,
    allow_builds: bool,
) -> Result<MergeReport, BundleError> {
    let (git, env) = (&ctx.tools.git, ctx.env);
    ctx.reporter.phase(&format!("Merging `{label}`"));
    let plan = cec_merge::plan(git, ctx.tools, env, theirs, label, prefer, ctx.reporter)?;
    plan.check(env, command)?;
    let before = super::builds::build_sources(
        &plan.merged_text(git, env, "pyproject.toml").unwrap_or_default(),
        &plan.merged_text(git, env, "uv.lock").unwrap_or_default(),
    );
    let ours_sources = {
        let read = |file: &str| {
            git.read_blob(&env.cec(), &plan.ours, file)
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default()
        };
        super::builds::build_sources(&read("pyproject.toml"), &read("uv.lock"))
    };
    let sources: Vec<_> = before.into_iter().filter(|s| !ours_sources.contains(s)).collect();
    if !allow_builds && !sources.is_empty() {
        return Err(BundleError::CommitBuildsNeedConsent {
            env: env.name.clone(),
            command: command.to_owned(),
            sources,
        });
    }
    let commit = cec_merge::commit(git, env, &plan, &format!("Merge {label}"))?;
    let cec = env.cec();
    let ours = plan.ours.clone();
    let sync = apply_checkout(ctx, "the merged state", &|| {
        git.run(Some(&cec), ["reset", "--hard", "--quiet", ours.as_str()])
            .map(drop)
    })?;
    Ok(MergeReport { commit, plan, sync })
}

/// After `.cec` moved to another commit: sync the environment to it and put the tracked
/// workflows' committed versions into ComfyUI (the local ones were committed, so nothing is lost;
/// replaced files go to the trash). When the sync fails, `undo` moves `.cec` back, the
/// environment is synced back, and the error returned.
fn apply_checkout(
    ctx: &PullContext<'_>,
    what: &str,
    undo: &dyn Fn() -> Result<(), git::GitError>,
) -> Result<SyncReport, BundleError> {
    let (git, env) = (&ctx.tools.git, ctx.env);
    let sync = || {
        lifecycle::sync(
            ctx.workspace,
            ctx.settings,
            ctx.tools,
            env,
            false,
            false,
            ctx.reporter,
        )
        .map_err(Box::new)
    };
    match sync() {
        Ok(report) => {
            for name in &workflow_tracking::tracked(&env.manifest()?) {
                workflow_tracking::restore(git, ctx.workspace, env, name, None, true)
                    .map_err(|e| BundleError::Workflow(Box::new(e)))?;
            }
            Ok(report)
        }
        Err(err) => {
            ctx.reporter
                .warning(&format!("{what} does not sync ({err}); going back"));
            undo()?;
            if let Err(back) = sync() {
                ctx.reporter.warning(&format!("syncing back failed too: {back}"));
            }
            Err(BundleError::Sync(err))
        }
    }
}

/// A branch of `.cec`.
#[derive(Debug, Clone, Serialize)]
pub struct Branch {
    pub name: String,
    pub current: bool,
    pub commit: String,
}

/// The local branches of `env`'s `.cec`.
pub fn branches(git: &Git, env: &Environment) -> Result<Vec<Branch>, BundleError> {
    let out = git.run(
        Some(&env.cec()),
        [
            "for-each-ref",
            "--format=%(HEAD)%00%(refname:short)%00%(objectname)",
            "refs/heads",
        ],
    )?;
    Ok(out
        .lines()
        .filter_map(|line| {
            let mut parts = line.split('\0');
            let head = parts.next()?;
            Some(Branch {
                current: head == "*",
                name: parts.next()?.to_owned(),
                commit: parts.next()?.to_owned(),
            })
        })
        .collect())
}

/// Create branch `name` at `.cec`'s HEAD (without switching to it).
pub fn create_branch(git: &Git, env: &Environment, name: &str) -> Result<(), BundleError> {
    check_name(name)?;
    git.run(Some(&env.cec()), ["branch", "--", name])?;
    Ok(())
}

/// What `switch` did.
#[derive(Debug, Clone, Serialize)]
pub struct SwitchReport {
    pub from_branch: String,
    pub branch: String,
    pub from: String,
    pub to: String,
    pub sync: SyncReport,
}

/// Switch `.cec` to branch `name` (created at HEAD with `create`), then make the environment
/// what it says. Refuses uncommitted changes; when the sync fails, `.cec` goes back to the
/// branch it was on and the environment is synced back.
pub fn switch(
    ctx: &PullContext<'_>,
    name: &str,
    create: bool,
    allow_builds: bool,
) -> Result<SwitchReport, BundleError> {
    let (git, env) = (&ctx.tools.git, ctx.env);
    check_name(name)?;
    super::export::check_committed(git, env)?;
    let from_branch = pick_branch(git, env, None)?;
    let cec = env.cec();
    let from = git.run(Some(&cec), ["rev-parse", "HEAD"])?.trim().to_owned();
    if !create {
        let target = git
            .resolve_commit(&cec, &format!("refs/heads/{name}"))
            .ok_or_else(|| RemoteError::UnknownBranch {
                env: env.name.clone(),
                name: name.to_owned(),
            })?;
        check_build_consent(git, env, &from, &target, &format!("switch {name}"), allow_builds)?;
    }
    let create_arg = format!("--create={name}");
    let args = if create {
        vec!["switch", "--quiet", create_arg.as_str()]
    } else {
        vec!["switch", "--quiet", "--", name]
    };
    git.run(Some(&cec), args)?;
    let to = git.run(Some(&cec), ["rev-parse", "HEAD"])?.trim().to_owned();
    let sync = apply_checkout(ctx, &format!("branch `{name}`"), &|| {
        git.run(Some(&cec), ["switch", "--quiet", "--", from_branch.as_str()])
            .map(drop)
    })?;
    Ok(SwitchReport {
        from_branch,
        branch: name.to_owned(),
        from,
        to,
        sync,
    })
}

/// Make the history of a clone (`cloned_git`, the clone's `.git`) the history of `env`'s `.cec`,
/// which import filled with the cloned files: the remote stays tracked and nothing the team
/// committed is lost.
pub fn adopt_clone_history(git: &Git, env: &Environment, cloned_git: &Path) -> Result<(), BundleError> {
    let cec_git = env.cec().join(".git");
    fs_err::remove_dir_all(&cec_git)?;
    fs_err::rename(cloned_git, &cec_git)?;
    comfydock_environments::environment::ensure_commit_identity(git, &env.cec())?;
    Ok(())
}

/// Open a cloned `.cec` (a git work tree at `dir`) like a bundle: the same checks as
/// [`super::import::open`] (names, targets, consent for builds) and the models its pins name.
/// `name` is the environment name it would get.
pub fn open_cloned(git: &Git, dir: &Path, name: &str) -> Result<OpenedBundle, BundleError> {
    let invalid = |reason: String| BundleError::Invalid {
        path: dir.to_path_buf(),
        reason,
    };
    let read = |rel: &str| {
        fs_err::read(dir.join(rel)).map_err(|source| BundleError::Read {
            path: dir.join(rel),
            source,
        })
    };
    for needed in ["pyproject.toml", "uv.lock"] {
        if !dir.join(needed).is_file() {
            return Err(invalid(format!(
                "the cloned branch has no `{needed}`: it is not a comfydock `.cec` (or the remote's default branch is another one: pass `--branch`)"
            )));
        }
    }
    let pyproject = read("pyproject.toml")?;
    let manifest = Manifest::parse(&dir.join("pyproject.toml"), &String::from_utf8_lossy(&pyproject))?;
    let pin = manifest.comfyui()?;
    let python = fs_err::read_to_string(dir.join(".python-version"))
        .map_or_else(|_| manifest.python().unwrap_or_default(), |v| v.trim().to_owned());

    // The committed files a bundle would carry, copied out of the work tree (never followed
    // through a link: git writes links as links, and only regular files are taken).
    let unpacked = tempfile::tempdir().map_err(|source| BundleError::Read {
        path: dir.to_path_buf(),
        source,
    })?;
    let tracked = git.run(Some(dir), ["ls-files", "-z"])?;
    let mut files = BTreeMap::new();
    let mut workflows = 0;
    for rel in tracked.split('\0').filter(|r| !r.is_empty()) {
        let wanted = matches!(rel, "pyproject.toml" | "uv.lock" | ".python-version")
            || (rel.starts_with("workflows/")
                && Path::new(rel)
                    .extension()
                    .is_some_and(|e| e.eq_ignore_ascii_case("json")));
        if !wanted {
            continue;
        }
        archive::check_path(rel).map_err(|e| invalid(format!("`{rel}`: {e}")))?;
        let source = dir.join(rel);
        let meta = fs_err::symlink_metadata(&source).map_err(|source| BundleError::Read {
            path: dir.join(rel),
            source,
        })?;
        if !meta.file_type().is_file() {
            return Err(invalid(format!("`{rel}` is not a regular file")));
        }
        let bytes = read(rel)?;
        let to = unpacked.path().join(rel);
        fs_err::create_dir_all(to.parent().unwrap_or(unpacked.path())).map_err(|source| {
            BundleError::Read {
                path: to.clone(),
                source,
            }
        })?;
        fs_err::write(&to, &bytes).map_err(|source| BundleError::Read {
            path: to.clone(),
            source,
        })?;
        if rel.starts_with("workflows/") {
            workflows += 1;
        }
        files.insert(rel.to_owned(), archive::digest(&bytes));
    }
    let mut counts = Counts {
        workflows,
        ..Counts::default()
    };
    for node in entry::read_all(&manifest) {
        match node.source {
            NodeSource::Registry => counts.registry_nodes += 1,
            NodeSource::Git => counts.git_nodes += 1,
            NodeSource::Dev => counts.dev_nodes += 1,
        }
    }
    let models = super::models::collect(&manifest, name).models;
    counts.models = models.len();
    let commit = git.run(Some(dir), ["rev-parse", "HEAD"])?.trim().to_owned();
    let created_at = git
        .run(Some(dir), ["log", "-1", "--format=%cI", "HEAD"])?
        .trim()
        .to_owned();
    let bundle_manifest = BundleManifest {
        format_version: FORMAT_VERSION,
        comfydock_version: current_version().to_owned(),
        created_at,
        environment_name: name.to_owned(),
        platform: String::new(),
        python,
        comfyui: ComfyUiRecord {
            reference: pin.reference.clone(),
            commit: pin.commit.clone(),
        },
        torch_backend: String::new(),
        torch_backends: manifest
            .torch_backends()
            .iter()
            .map(ToString::to_string)
            .collect(),
        cec_commit: commit,
        counts,
        models,
        files: files.clone(),
    };
    super::import::checked(dir, bundle_manifest, Unpacked { dir: unpacked, files }, pyproject)
}

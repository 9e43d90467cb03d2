//! Errors of the release manager; the ones a user can act on carry a [`Hinted`] hint.

use std::path::PathBuf;

use comfydock_foundation::Hinted;
use comfydock_foundation::git::GitError;
use comfydock_foundation::subprocess::ProcessError;
use comfydock_foundation::uv::UvError;

use crate::problems::{FrozenChange, ValidationReport};

#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    #[error("`{0}` is not a release repository: it has no pyproject.toml")]
    NotARepository(PathBuf),
    #[error("Failed to read `{path}`")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("Failed to write `{path}`")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`{path}` is not valid TOML")]
    Toml {
        path: PathBuf,
        #[source]
        source: toml_edit::TomlError,
    },
    #[error("`{path}`: {message}")]
    Pyproject { path: PathBuf, message: String },
    #[error("`{path}`: [tool.comfydock.release] {message}")]
    Config { path: PathBuf, message: String },
    #[error("`{path}` is not valid JSON")]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("`{path}`: {message}")]
    Malformed { path: PathBuf, message: String },
    #[error("`{0}` is not a git repository with at least one commit")]
    NoCommits(PathBuf),
    #[error(
        "`{0}` is a shallow clone without release tags: the last release cannot be found, and every file would count as changed"
    )]
    ShallowWithoutTags(PathBuf),
    #[error("Failed to read `{path}` at git revision `{rev}`")]
    ReadAtRevision {
        rev: String,
        path: String,
        #[source]
        source: Box<GitError>,
    },
    #[error(transparent)]
    Git(Box<GitError>),
    #[error(
        "The meta package `{name}` is still at version {version}, the version released as `{tag}`; \
         its version is yours to choose and must be raised before sub-packages are bumped"
    )]
    MetaVersionNotRaised {
        name: String,
        version: String,
        tag: String,
        suggested: String,
        pyproject: PathBuf,
    },
    #[error("The requested meta version {requested} is not higher than {released}, released as `{tag}`")]
    MetaVersionNotHigher {
        requested: String,
        released: String,
        tag: String,
    },
    #[error("`{version}` is not a valid PEP 440 version for the meta package")]
    InvalidMetaVersion { version: String },
    #[error("Cannot patch-bump `{package}` version {version} in `{path}`: {reason}")]
    UnbumpableVersion {
        package: String,
        version: String,
        path: PathBuf,
        reason: String,
    },
    #[error(
        "Frozen package(s) changed: {}",
        changes.iter().map(|c| format!("{} ({}/{}: {})", c.package, crate::layout::PACKAGES_DIR, c.dir, c.reasons.join("; "))).collect::<Vec<_>>().join(", ")
    )]
    FrozenPackagesChanged { changes: Vec<FrozenChange> },
    #[error("`{dir}` is not a frozen package (frozen: {})", if frozen.is_empty() { "none".to_owned() } else { frozen.join(", ") })]
    NotFrozen { dir: String, frozen: Vec<String> },
    #[error("The sync command `{command}` failed")]
    SyncCommand {
        command: String,
        #[source]
        source: Box<ProcessError>,
    },
    #[error("The working tree of `{path}` has uncommitted changes ({})", files.join(", "))]
    DirtyWorktree { path: PathBuf, files: Vec<String> },
    #[error("Tag `{tag}` already exists on commit {commit}, not on HEAD ({head})")]
    TagElsewhere {
        tag: String,
        commit: String,
        head: String,
        suggested: String,
    },
    #[error("Release validation found {} problem(s), first: {}", report.problems.len(), report.problems.first().map(ToString::to_string).unwrap_or_default())]
    ValidationFailed {
        report: Box<ValidationReport>,
        index_url: Option<String>,
    },
    #[error("`{url}` is not a valid package index URL")]
    InvalidIndexUrl {
        url: String,
        #[source]
        source: url::ParseError,
    },
    #[error("Failed to query the package index at {url}")]
    IndexRequest {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("The package index at {url} answered HTTP {status}")]
    IndexStatus { url: String, status: u16 },
    #[error("`uv build` failed for `{path}`")]
    Build {
        path: PathBuf,
        #[source]
        source: Box<ProcessError>,
    },
    #[error("`uv publish` of {package} {version} to {url} failed")]
    Upload {
        package: String,
        version: String,
        url: String,
        #[source]
        source: Box<ProcessError>,
    },
    #[error("Failed to create a temporary build directory")]
    TempDir(#[source] std::io::Error),
    #[error(transparent)]
    Uv(Box<UvError>),
}

impl From<GitError> for ReleaseError {
    fn from(err: GitError) -> Self {
        Self::Git(Box::new(err))
    }
}

impl From<UvError> for ReleaseError {
    fn from(err: UvError) -> Self {
        Self::Uv(Box::new(err))
    }
}

impl Hinted for ReleaseError {
    fn hint(&self) -> Option<String> {
        match self {
            Self::NotARepository(path) => Some(format!(
                "run the command in the repository root (the folder with the meta package's pyproject.toml), e.g. `cd {}`",
                path.display()
            )),
            Self::NoCommits(path) => Some(format!(
                "commit the repository first: `git -C {} add -A && git -C {} commit -m \"Initial commit\"`",
                path.display(),
                path.display()
            )),
            Self::ShallowWithoutTags(path) => Some(format!(
                "fetch the history and tags: `git -C {} fetch --unshallow --tags` (in CI: `fetch-depth: 0`), or name the last release with `--since <ref>`",
                path.display()
            )),
            Self::MetaVersionNotRaised { suggested, pyproject, .. } => Some(format!(
                "raise it with `comfydock release bump --meta-version {suggested}` (or set `version = \"{suggested}\"` in [project] of {}), then run `comfydock release bump` again",
                pyproject.display()
            )),
            Self::MetaVersionNotHigher { released, .. } => Some(format!(
                "choose a version above {released}, e.g. `comfydock release bump --meta-version {}`",
                crate::version::suggest_next(released).unwrap_or_else(|| "<version>".into())
            )),
            Self::UnbumpableVersion { path, .. } => Some(format!(
                "set the next version of this package by hand in {}",
                path.display()
            )),
            Self::FrozenPackagesChanged { changes } => Some(format!(
                "frozen packages keep their version: put new templates in an active bundle of bundles.json and revert the changes to the frozen ones, or raise them deliberately with `comfydock release bump {}`",
                changes.iter().map(|c| format!("--allow-frozen {}", c.dir)).collect::<Vec<_>>().join(" ")
            )),
            Self::NotFrozen { .. } => Some(
                "list it under `frozen-packages` in [tool.comfydock.release], or drop `--allow-frozen` for it".into(),
            ),
            Self::SyncCommand { command, .. } => Some(format!(
                "run `{command}` in the repository root and fix what it reports (it is `sync-command` in [tool.comfydock.release])"
            )),
            Self::DirtyWorktree { .. } => Some(
                "commit the release changes first: `git add -A && git commit -m \"Release\"`, then run `comfydock release publish` again"
                    .into(),
            ),
            Self::TagElsewhere { suggested, .. } => Some(format!(
                "this meta version was already released; raise it with `comfydock release bump --meta-version {suggested}`"
            )),
            Self::ValidationFailed { index_url, .. } => Some(match index_url {
                Some(url) => format!("see every problem with `comfydock release validate --index-url {url}`"),
                None => "see every problem with `comfydock release validate`".into(),
            }),
            Self::InvalidIndexUrl { .. } | Self::IndexRequest { .. } | Self::IndexStatus { .. } => Some(
                "pass the simple API URL of the index, e.g. `--index-url https://pypi.org/simple/`".into(),
            ),
            Self::Git(err) | Self::ReadAtRevision { source: err, .. } => err.hint(),
            Self::Uv(err) => err.hint(),
            _ => None,
        }
    }
}

/// Render an error with its causes on one line: `outer: cause: cause`.
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = cause.source();
    }
    out
}

//! Environment bundles: `comfydock export` and `comfydock import` (issue 7).
//!
//! A bundle is a deterministic `.tar.gz` (no top folder):
//!
//! ```text
//! manifest.json        format version, tool version, origin, pins, counts, models, sha256 of every other entry
//! pyproject.toml       .cec/pyproject.toml, byte for byte
//! uv.lock              .cec/uv.lock, byte for byte
//! .python-version
//! workflows/**.json    the committed workflows
//! dev_nodes/<name>/**  dev node sources (respecting .gitignore)
//! ```
//!
//! Models travel as references (hashes, size, sources, criticality), never as files.
//! [`archive::read`] validates a bundle completely (entry types, paths, caps, checksums, format
//! version) in a temporary folder before anything in the workspace is touched.
//!
//! Model references come from the manifest's catalog and `workflow resolve` resolutions
//! ([`models::collect`]). A model found locally by hash under another path has the workflows'
//! widget values rewritten ([`substitution`]). comfygit exports are mapped where clear
//! ([`comfygit::plan`]) and the rest is listed.
//!
//! CLI entry points: `export` → [`export::export`]; `import` → [`import::open`] (validate and
//! summarise), [`import::free_name`], then [`import::import`] with a [`import::ModelProvider`].

pub mod archive;
pub mod builds;
pub mod comfygit;
pub mod export;
pub mod format;
pub mod git_remote;
pub mod import;
pub mod indexed_models;
pub mod models;
pub mod substitution;

use std::path::PathBuf;

use comfydock_environments::environment::EnvError;
use comfydock_foundation::Hinted;

/// Why an export or import failed.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("Environment `{env}` has uncommitted changes: {}", files.join(", "))]
    Uncommitted { env: String, files: Vec<String> },
    #[error("Environment `{env}` has unresolved issues:\n{}", issues.iter().map(|i| format!("  - {i}")).collect::<Vec<_>>().join("\n"))]
    Issues { env: String, issues: Vec<String> },
    #[error("Dev node `{name}` is {size_mb} MB (limit {limit_mb} MB) at `{path}`")]
    DevNodeTooLarge {
        name: String,
        path: PathBuf,
        size_mb: u64,
        limit_mb: u64,
    },
    /// The bundle would exceed a limit `import` enforces, so it is not written.
    #[error("Environment `{env}` would make a bundle that `import` refuses: {reason}")]
    WouldNotImport { env: String, reason: String },
    #[error("Dev node `{name}` has no folder at `{path}`")]
    DevNodeMissing { name: String, path: PathBuf },
    /// Names `import` would refuse (they cannot be files on every system).
    #[error(
        "Environment `{env}` has names that `import` would refuse: {}",
        names.iter().map(|(n, why)| format!("`{}` ({why})", comfydock_foundation::display_text::truncate(n, 80))).collect::<Vec<_>>().join(", ")
    )]
    NonPortableNames {
        env: String,
        /// Each name (a workflow, node or bundle path) and why it is refused.
        names: Vec<(String, String)>,
    },
    #[error("Invalid bundle `{path}`: {reason}")]
    Invalid { path: PathBuf, reason: String },
    /// More entries than [`archive::Limits::max_entries`].
    #[error("Invalid bundle `{path}`: more than {limit} entries")]
    TooManyEntries { path: PathBuf, limit: usize },
    /// A file `import` reads whole is larger than its cap in [`archive::Limits`].
    #[error(
        "Invalid bundle `{path}`: entry `{entry}` is {}, more than the {} allowed for it",
        comfydock_foundation::display_text::human_bytes(*size),
        comfydock_foundation::display_text::human_bytes(*limit)
    )]
    EntryTooLarge {
        path: PathBuf,
        entry: String,
        size: u64,
        limit: u64,
    },
    #[error("Bundle `{path}` has format version {found}; this comfydock reads up to {supported}")]
    NewerFormat {
        path: PathBuf,
        found: u32,
        supported: u32,
    },
    #[error("Failed to read bundle `{path}`")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("Failed to write bundle `{path}`")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "Not enough disk space for models under `{}`: need {}, {} available",
        path.display(),
        comfydock_foundation::display_text::human_bytes(*needed),
        comfydock_foundation::display_text::human_bytes(*available)
    )]
    DiskSpace {
        path: PathBuf,
        needed: u64,
        available: u64,
    },
    #[error(
        "Bundle `{path}` is locked for torch backends {covered:?}; this machine needs `{wanted}` (or `cpu`)"
    )]
    NoBackend {
        path: PathBuf,
        wanted: String,
        covered: Vec<String>,
    },
    #[error(
        "Bundle `{path}` would build {} package(s) from source, running their code: {}",
        sources.len(),
        sources.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
    )]
    BuildNeedsConsent {
        path: PathBuf,
        sources: Vec<builds::BuildSource>,
    },
    #[error(
        "The new `.cec` state of `{env}` would build {} package(s) from source, running their code: {}",
        sources.len(),
        sources.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
    )]
    CommitBuildsNeedConsent {
        env: String,
        /// The command to repeat with consent (`pull`, `switch NAME`).
        command: String,
        sources: Vec<builds::BuildSource>,
    },
    #[error(transparent)]
    Env(#[from] EnvError),
    #[error(transparent)]
    Manifest(#[from] comfydock_environments::manifest::ManifestError),
    #[error(transparent)]
    Git(#[from] comfydock_foundation::git::GitError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Remote(#[from] git_remote::RemoteError),
    #[error(transparent)]
    Merge(Box<comfydock_environments::cec_merge::MergeError>),
    /// The pulled `.cec` did not sync; `.cec` was put back.
    #[error("The pulled state could not be applied; `.cec` is back where it was")]
    Sync(#[source] Box<comfydock_environments::lifecycle::SyncError>),
    #[error(transparent)]
    Workflow(Box<comfydock_environments::workflow_tracking::TrackingError>),
}

impl From<comfydock_environments::cec_merge::MergeError> for BundleError {
    fn from(e: comfydock_environments::cec_merge::MergeError) -> Self {
        Self::Merge(Box::new(e))
    }
}

impl Hinted for BundleError {
    fn hint(&self) -> Option<String> {
        match self {
            Self::Uncommitted { env, .. } => Some(format!(
                "commit them first with `comfydock -e {env} commit -m \"Pre-export checkpoint\"`"
            )),
            Self::Issues { env, .. } => Some(format!(
                "fix them (see `comfydock -e {env} status` and `comfydock -e {env} workflow list`), or pass `--allow-issues`"
            )),
            Self::WouldNotImport { .. } => Some(
                "add build outputs and data to the dev nodes' .gitignore, or shrink the workflow, then export again".into(),
            ),
            Self::DevNodeTooLarge { .. } => Some(
                "add build outputs and data to the node's .gitignore, or pass `--allow-large-dev-nodes`"
                    .into(),
            ),
            Self::NonPortableNames { env, .. } => Some(format!(
                "rename them to plain names (no `:`, `\\`, `..`, control characters or `<>\"|?*`); `comfydock -e {env} status` suggests a name for each"
            )),
            Self::NewerFormat { .. } => Some("upgrade comfydock, then import again".into()),
            Self::Invalid { .. } => Some(
                "the bundle is damaged or not a comfydock export; ask for a fresh `comfydock export`".into(),
            ),
            Self::TooManyEntries { .. } => Some(
                "an exported environment holds far fewer files; ask the sender to add build outputs and data to their dev nodes' .gitignore and export again".into(),
            ),
            Self::EntryTooLarge { entry, .. } => Some(format!(
                "`{entry}` is larger than any real one; ask the sender to check it and export again"
            )),
            Self::NoBackend { wanted, covered, .. } if !covered.is_empty() => Some(format!(
                "import with a backend the lock covers (`--torch-backend {}`), or ask for a bundle whose environment locks `{wanted}` (`comfydock backend add {wanted}`, then `comfydock export`)",
                covered[0]
            )),
            Self::NoBackend { wanted, .. } => Some(format!(
                "ask for a bundle whose environment locks `{wanted}` (`comfydock backend add {wanted}`, then `comfydock export`)"
            )),
            Self::BuildNeedsConsent { path, .. } => Some(format!(
                "nothing was changed; if you trust the bundle's author, import it with `comfydock import {} --run-install-scripts`",
                path.display()
            )),
            Self::CommitBuildsNeedConsent { env, command, .. } => Some(format!(
                "nothing was changed; see what changed with `comfydock -e {env} pull --preview`, and if you trust its author run `comfydock -e {env} {command} --run-install-scripts`"
            )),
            Self::Env(e) => e.hint(),
            Self::Manifest(e) => e.hint(),
            Self::Git(e) => e.hint(),
            Self::Remote(e) => e.hint(),
            Self::Merge(e) => e.hint(),
            Self::Sync(e) => e.hint(),
            Self::Workflow(e) => e.hint(),
            _ => None,
        }
    }
}

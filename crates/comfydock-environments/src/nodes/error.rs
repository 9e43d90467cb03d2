//! Everything that can go wrong while adding, removing, updating or installing custom nodes.

use std::path::PathBuf;

use crate::environment::EnvError;
use crate::manifest::ManifestError;
use crate::resolver_failure::{ConflictSide, ResolverOutput, conflict_message};
use comfydock_foundation::Hinted;
use comfydock_foundation::git::GitError;

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("`{spec}` is not a node id, a git URL or a folder")]
    InvalidSpec { spec: String, reason: String },
    #[error("Node `{id}` is not in the registry at `{registry}`")]
    UnknownNode { id: String, registry: String },
    #[error("Node `{id}` has no installable version in the registry at `{registry}`")]
    NoInstallableVersion { id: String, registry: String },
    #[error("Node `{id}` has no version `{version}` in the registry")]
    UnknownVersion {
        id: String,
        version: String,
        available: Vec<String>,
    },
    #[error("The registry at `{}` is unreachable and nothing about it is cached", comfydock_foundation::redact::RedactedUrl(.url))]
    RegistryUnreachable {
        url: String,
        #[source]
        source: Box<reqwest::Error>,
    },
    #[error("The registry answered `{}` with HTTP {status}", comfydock_foundation::redact::RedactedUrl(.url))]
    RegistryStatus { url: String, status: u16 },
    #[error("The registry sent an unexpected document for `{}`: {reason}", comfydock_foundation::redact::RedactedUrl(.url))]
    RegistryDocument { url: String, reason: String },
    #[error("Failed to download `{}`", comfydock_foundation::redact::RedactedUrl(.url))]
    Download {
        url: String,
        #[source]
        source: Box<reqwest::Error>,
    },
    #[error("Hash mismatch for `{path}`: expected sha256 {expected}, found {actual}")]
    HashMismatch {
        path: PathBuf,
        expected: String,
        actual: String,
    },
    #[error("Size mismatch for `{path}`: expected {expected} bytes, found {actual}")]
    SizeMismatch {
        path: PathBuf,
        expected: u64,
        actual: u64,
    },
    #[error("Refusing to extract `{archive}`: entry `{entry}` {reason}; nothing was written")]
    UnsafeArchive {
        archive: PathBuf,
        entry: String,
        reason: &'static str,
    },
    /// A node archive over one of the extraction limits ([`super::archive::ZipLimits`]).
    #[error("Refusing to extract `{archive}`: {what} {limit}; nothing was installed")]
    ArchiveTooLarge {
        archive: PathBuf,
        /// What is too large: `entry `x.bin`` or `the archive`.
        what: String,
        limit: ArchiveLimit,
    },
    #[error("`{archive}` is not a readable zip archive")]
    BadArchive {
        archive: PathBuf,
        #[source]
        source: zip::result::ZipError,
    },
    /// A git URL with a password or token, which would be stored in the manifest.
    #[error("Refusing to record `{url}`: it carries credentials ({what})")]
    CredentialsInUrl { url: String, what: String },
    #[error("Unknown git ref `{reference}` in `{}`", comfydock_foundation::redact::RedactedUrl(.url))]
    UnknownRef { url: String, reference: String },
    #[error("Failed to fetch the git repository `{}`", comfydock_foundation::redact::RedactedUrl(.url))]
    GitFetch {
        url: String,
        #[source]
        source: Box<GitError>,
    },
    #[error("Node `{key}` is already in `{env}`")]
    AlreadyAdded { key: String, env: String },
    #[error("Node `{key}` is not in `{env}`")]
    NotAdded {
        key: String,
        env: String,
        known: Vec<String>,
    },
    #[error(
        "Node `{key}` needs the dependency group `{group}`, which `{env}` already uses for other packages"
    )]
    GroupTaken { key: String, group: String, env: String },
    #[error("`{path}` already exists and is not managed by comfydock")]
    FolderExists { path: PathBuf, key: String },
    #[error("Dev node folder `{0}` does not exist")]
    DevPathMissing(PathBuf),
    #[error("{}", conflict_message(.sides))]
    Conflict {
        sides: Vec<ConflictSide>,
        env: String,
        #[source]
        resolver: ResolverOutput,
    },
    #[error("The Python dependencies of {nodes} cannot be resolved")]
    Unresolvable {
        nodes: String,
        env: String,
        #[source]
        resolver: ResolverOutput,
    },
    #[error(
        "Node `{key}` would change `{package}` from {from} to {to}; torch packages are never changed by nodes"
    )]
    TorchChanged {
        key: String,
        package: String,
        from: String,
        to: String,
    },
    #[error("`install.py` of node `{key}` failed")]
    InstallScript {
        key: String,
        #[source]
        source: Box<comfydock_foundation::subprocess::ProcessError>,
    },
    #[error("Failed to read the node index or API cache `{path}`")]
    Database {
        path: PathBuf,
        #[source]
        source: Box<rusqlite::Error>,
    },
    #[error(transparent)]
    OpenDatabase(Box<comfydock_foundation::sqlite::SqliteError>),
    #[error(transparent)]
    UnsafeName(#[from] comfydock_foundation::path_part::UnsafePathPart),
    #[error(transparent)]
    Env(Box<EnvError>),
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error(transparent)]
    Git(Box<GitError>),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl From<comfydock_foundation::uv::UvError> for NodeError {
    fn from(e: comfydock_foundation::uv::UvError) -> Self {
        Self::Env(Box::new(EnvError::Uv(e)))
    }
}

impl From<crate::manifest::node_entry::UnsafeEntry> for NodeError {
    fn from(e: crate::manifest::node_entry::UnsafeEntry) -> Self {
        match e {
            crate::manifest::node_entry::UnsafeEntry::Name(e) => Self::UnsafeName(e),
            crate::manifest::node_entry::UnsafeEntry::Git(e) => Self::Git(Box::new(GitError::Unsafe(e))),
        }
    }
}

impl From<comfydock_foundation::sqlite::SqliteError> for NodeError {
    fn from(e: comfydock_foundation::sqlite::SqliteError) -> Self {
        Self::OpenDatabase(Box::new(e))
    }
}

impl From<GitError> for NodeError {
    fn from(e: GitError) -> Self {
        Self::Git(Box::new(e))
    }
}

impl From<EnvError> for NodeError {
    fn from(e: EnvError) -> Self {
        Self::Env(Box::new(e))
    }
}

impl Hinted for NodeError {
    fn hint(&self) -> Option<String> {
        match self {
            Self::InvalidSpec { reason, .. } => Some(format!(
                "{reason}; use `comfydock node add ID[@VERSION]`, `comfydock node add GIT_URL[@REF]` or `comfydock node add --dev PATH`"
            )),
            Self::UnknownNode { id, .. } => Some(format!(
                "search the registry with `comfydock node search {id}`, or add it from git with `comfydock node add GIT_URL`"
            )),
            Self::NoInstallableVersion { id, .. } => Some(format!(
                "the registry lists no active version with a download for `{id}`; see its versions with `comfydock node info {id}`, or add it from git with `comfydock node add GIT_URL`"
            )),
            Self::UnknownVersion { id, available, .. } => Some(format!(
                "available versions: {}; e.g. `comfydock node add {id}@{}`",
                available.join(", "),
                available.first().map_or("VERSION", String::as_str)
            )),
            Self::RegistryUnreachable { .. } | Self::RegistryStatus { .. } => Some(
                "check your network and `comfydock config get registry.url`, then retry".into(),
            ),
            Self::RegistryDocument { .. } => Some(
                "nothing was installed; check `comfydock config get registry.url`, or add the node from git with `comfydock node add GIT_URL`".into(),
            ),
            Self::Download { .. } => Some("check your network and retry".into()),
            Self::HashMismatch { path, .. } | Self::SizeMismatch { path, .. } => Some(format!(
                "the cached file was changed or corrupted; delete `{}` and retry to download it again",
                path.display()
            )),
            Self::ArchiveTooLarge { .. } => Some(
                "no registry node needs this much; report it to the node's author (or the registry) and do not install it".into(),
            ),
            Self::UnsafeArchive { .. } => Some(
                "the archive tries to write outside its folder; report it to the node's author and do not install it".into(),
            ),
            Self::UnknownRef { url, .. } => Some(format!(
                "list its tags and branches with `git ls-remote {url}` and pass one with `URL@REF`"
            )),
            Self::CredentialsInUrl { .. } => Some(
                "add the URL without them; git asks its credential helper for private repositories (`git config --global credential.helper store`), or use an SSH URL (`git@HOST:OWNER/REPO.git`); nothing was recorded"
                    .into(),
            ),
            Self::GitFetch { .. } => Some("check the URL and your network, then retry".into()),
            Self::AlreadyAdded { key, env } => Some(format!(
                "change its version with `comfydock -e {env} node update {key}`, or remove it first with `comfydock -e {env} node remove {key}`"
            )),
            Self::NotAdded { env, known, .. } if known.is_empty() => {
                Some(format!("`{env}` has no nodes; add one with `comfydock -e {env} node add ID`"))
            }
            Self::NotAdded { env, known, .. } => Some(format!(
                "nodes of `{env}`: {}; see `comfydock -e {env} node list`",
                known.join(", ")
            )),
            Self::GroupTaken { group, env, .. } => Some(format!(
                "see what is in it with `comfydock -e {env} py list`; move those packages with `comfydock -e {env} py remove NAME --group {group}` and `comfydock -e {env} py add REQ --group OTHER`"
            )),
            Self::FolderExists { path, key } => Some(format!(
                "move `{}` away, or track it as a dev node with `comfydock node add --dev {}` (key `{key}`)",
                path.display(),
                path.display()
            )),
            Self::DevPathMissing(_) => Some("pass the path of an existing node folder".into()),
            Self::Conflict { env, sides, .. }
                if sides.iter().any(|s| s.origin.contains("torch backend")) =>
            {
                Some(format!(
                    "nothing was changed; torch is chosen by the environment's backend and never by a node: pick another version of the node (`comfydock -e {env} node add ID@VERSION`)"
                ))
            }
            Self::Conflict { env, .. } => Some(format!(
                "nothing was changed; pick a compatible version (`comfydock -e {env} node add ID@VERSION`) or remove the other node with `comfydock -e {env} node remove NAME`"
            )),
            Self::Unresolvable { env, .. } => Some(format!(
                "nothing was changed; see uv's explanation above, then try another version with `comfydock -e {env} node add ID@VERSION`"
            )),
            Self::TorchChanged { key, .. } => Some(format!(
                "nothing was changed; node `{key}` needs a different torch, so pick another version of it, or change the torch backend of the environment"
            )),
            Self::InstallScript { key, .. } => Some(format!(
                "the node was installed but its install.py failed; fix it, or remove the node with `comfydock node remove {key}`"
            )),
            Self::Database { path, .. } => Some(format!(
                "it is only a cache: delete `{}` and retry",
                path.display()
            )),
            Self::OpenDatabase(e)
                if matches!(**e, comfydock_foundation::sqlite::SqliteError::CreateDir { .. }) =>
            {
                e.hint()
            }
            Self::OpenDatabase(e) => Some(format!(
                "it is only a cache: delete `{}` and retry",
                e.path().display()
            )),
            Self::UnsafeName(e) => e.hint(),
            Self::Env(e) => e.hint(),
            Self::Manifest(e) => e.hint(),
            Self::Git(e) => e.hint(),
            _ => None,
        }
    }
}

impl NodeError {
    /// The resolver's own explanation, for conflicts (shown below the one-line message).
    pub fn resolver_output(&self) -> Option<&str> {
        match self {
            Self::Conflict { resolver, .. } | Self::Unresolvable { resolver, .. } => Some(&resolver.0),
            _ => None,
        }
    }
}

/// Which extraction limit a node archive exceeds, with the limit's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveLimit {
    /// More entries than allowed.
    Entries { found: usize, limit: usize },
    /// One entry unpacks (or says it unpacks) to more bytes than allowed.
    EntryBytes { limit: u64 },
    /// All entries together unpack to more bytes than allowed.
    TotalBytes { limit: u64 },
}

impl std::fmt::Display for ArchiveLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use comfydock_foundation::display_text::human_bytes;
        match self {
            Self::Entries { found, limit } => {
                write!(f, "holds {found} entries, more than the limit of {limit}")
            }
            Self::EntryBytes { limit } => write!(
                f,
                "unpacks to more than the limit of {} for one file",
                human_bytes(*limit)
            ),
            Self::TotalBytes { limit } => write!(
                f,
                "makes the archive unpack to more than the limit of {} in total",
                human_bytes(*limit)
            ),
        }
    }
}

//! Git nodes: one cached bare mirror per repository under `<workspace>/cache/git/nodes/`, refs
//! resolved to exact commits, checkouts with submodules.

use std::path::Path;

use sha2::Digest as _;

use super::error::NodeError;
use super::spec::{key_for, repo_name};
use comfydock_foundation::git::Git;
use comfydock_foundation::git_mirror::{GitMirror, MirrorError};
use comfydock_foundation::reporter::Reporter;

/// The cached mirror of one node repository.
#[derive(Debug, Clone)]
pub struct NodeMirror {
    mirror: GitMirror,
}

impl NodeMirror {
    pub fn new(git: Git, cache_dir: &Path, url: &str) -> Self {
        // Keyed by the URL's hash; the readable prefix is reduced to `[a-z0-9._-]`.
        let digest = hex::encode(sha2::Sha256::digest(url.as_bytes()));
        let folder = format!("{}-{}.git", key_for(&repo_name(url)), &digest[..12]);
        let path = cache_dir.join("git").join("nodes").join(folder);
        Self {
            mirror: GitMirror::new(git, url, path),
        }
    }

    pub fn path(&self) -> &Path {
        self.mirror.path()
    }

    fn url(&self) -> &str {
        self.mirror.url()
    }

    /// Clone the mirror if missing; returns whether it was cloned now.
    pub fn ensure(&self, reporter: &dyn Reporter) -> Result<bool, NodeError> {
        self.mirror.ensure(reporter).map_err(|e| self.mirror_error(e))
    }

    /// Fetch new commits and refs.
    pub fn fetch(&self, reporter: &dyn Reporter) -> Result<(), NodeError> {
        self.mirror.fetch(reporter).map_err(|e| self.mirror_error(e))
    }

    fn mirror_error(&self, error: MirrorError) -> NodeError {
        match error {
            MirrorError::Clone { source, .. } | MirrorError::Fetch { source, .. } => NodeError::GitFetch {
                url: self.url().to_owned(),
                source: Box::new(source),
            },
            MirrorError::Git(e) => e.into(),
            MirrorError::Io { source, .. } => source.into(),
        }
    }

    /// Resolve `reference` (tag, branch, commit; `None` = the default branch) to a full sha,
    /// fetching once when the mirror does not know it (or always, with `refresh`).
    pub fn resolve(
        &self,
        reference: Option<&str>,
        refresh: bool,
        reporter: &dyn Reporter,
    ) -> Result<String, NodeError> {
        let cloned = self.ensure(reporter)?;
        if refresh && !cloned {
            self.fetch(reporter)?;
        }
        let wanted = reference.unwrap_or("HEAD");
        if let Some(sha) = self.mirror.rev_parse(wanted) {
            return Ok(sha);
        }
        if !cloned && !refresh {
            self.fetch(reporter)?;
            if let Some(sha) = self.mirror.rev_parse(wanted) {
                return Ok(sha);
            }
        }
        Err(NodeError::UnknownRef {
            url: self.url().to_owned(),
            reference: wanted.to_owned(),
        })
    }

    /// Whether `commit` is in the mirror.
    pub fn has_commit(&self, commit: &str) -> bool {
        self.mirror.has_commit(commit)
    }

    /// A text file of the repository at `commit`, byte for byte, without a checkout (`None`
    /// when absent or not UTF-8).
    pub fn read_file(&self, commit: &str, relative: &str) -> Option<String> {
        self.mirror.read_file(commit, relative)
    }

    /// Check out `commit` with its submodules into `dest` (which must not exist).
    pub fn checkout(&self, commit: &str, dest: &Path) -> Result<(), NodeError> {
        comfydock_foundation::git::check_url(self.url())
            .map_err(comfydock_foundation::git::GitError::from)?;
        self.mirror.checkout(commit, dest)?;
        let git = self.mirror.git();
        // Submodules with relative URLs resolve against the node's own URL, not the mirror.
        git.run(Some(dest), ["remote", "set-url", "--", "origin", self.url()])?;
        if dest.join(".gitmodules").is_file() {
            let mut args: Vec<&str> = Vec::new();
            // Local repositories (file:// or paths) need file transport for their submodules.
            if self.url().starts_with("file://") || self.url().starts_with('/') {
                args.extend(["-c", "protocol.file.allow=always"]);
            }
            args.extend(["submodule", "--quiet", "update", "--init", "--recursive"]);
            git.run(Some(dest), &args).map_err(|source| NodeError::GitFetch {
                url: self.url().to_owned(),
                source: Box::new(source),
            })?;
        }
        // The install marker is ours, not the node's.
        let exclude = dest.join(".git").join("info").join("exclude");
        if let Some(parent) = exclude.parent() {
            fs_err::create_dir_all(parent)?;
        }
        let mut text = fs_err::read_to_string(&exclude).unwrap_or_default();
        text.push('/');
        text.push_str(super::install::MARKER);
        text.push('\n');
        fs_err::write(&exclude, text)?;
        Ok(())
    }
}

/// The commit a checkout is at (reads `.git/HEAD`, no process).
pub fn checkout_head(dir: &Path) -> Option<String> {
    let head = fs_err::read_to_string(dir.join(".git").join("HEAD")).ok()?;
    let head = head.trim();
    match head.strip_prefix("ref: ") {
        Some(r) => fs_err::read_to_string(dir.join(".git").join(r))
            .ok()
            .map(|s| s.trim().to_owned()),
        None => Some(head.to_owned()),
    }
}

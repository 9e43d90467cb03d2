//! Git nodes: one cached bare mirror per repository under `<workspace>/cache/git/nodes/`, refs
//! resolved to exact commits, checkouts with submodules.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use sha2::Digest as _;

use super::error::NodeError;
use super::spec::{key_for, repo_name};
use comfydock_foundation::git::Git;

/// The cached mirror of one node repository.
#[derive(Debug, Clone)]
pub struct NodeMirror {
    git: Git,
    url: String,
    path: PathBuf,
}

impl NodeMirror {
    pub fn new(git: Git, cache_dir: &Path, url: &str) -> Self {
        // Keyed by the URL's hash; the readable prefix is reduced to `[a-z0-9._-]`.
        let digest = hex::encode(sha2::Sha256::digest(url.as_bytes()));
        let folder = format!("{}-{}.git", key_for(&repo_name(url)), &digest[..12]);
        let path = cache_dir.join("git").join("nodes").join(folder);
        Self {
            git,
            url: url.to_owned(),
            path,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Clone the mirror if missing; returns whether it was cloned now.
    pub fn ensure(&self) -> Result<bool, NodeError> {
        if self.path.join("HEAD").is_file() {
            return Ok(false);
        }
        comfydock_foundation::git::check_url(&self.url).map_err(comfydock_foundation::git::GitError::from)?;
        let parent = self.path.parent().expect("mirror has a parent");
        fs_err::create_dir_all(parent)?;
        let staging = tempfile::Builder::new().prefix(".mirror-").tempdir_in(parent)?;
        let target = staging.path().join("m.git");
        self.git
            .run(
                None,
                [
                    OsStr::new("clone"),
                    OsStr::new("--mirror"),
                    OsStr::new("--quiet"),
                    OsStr::new("--"),
                    OsStr::new(&self.url),
                    target.as_os_str(),
                ],
            )
            .map_err(|source| NodeError::GitFetch {
                url: self.url.clone(),
                source: Box::new(source),
            })?;
        match fs_err::rename(&target, &self.path) {
            Ok(()) => Ok(true),
            Err(_) if self.path.join("HEAD").is_file() => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Fetch new commits and refs.
    pub fn fetch(&self) -> Result<(), NodeError> {
        self.git
            .run(
                Some(&self.path),
                ["fetch", "--quiet", "--prune", "--tags", "origin"],
            )
            .map_err(|source| NodeError::GitFetch {
                url: self.url.clone(),
                source: Box::new(source),
            })?;
        Ok(())
    }

    /// Resolve `reference` (tag, branch, commit; `None` = the default branch) to a full sha,
    /// fetching once when the mirror does not know it (or always, with `refresh`).
    pub fn resolve(&self, reference: Option<&str>, refresh: bool) -> Result<String, NodeError> {
        let cloned = self.ensure()?;
        if refresh && !cloned {
            self.fetch()?;
        }
        let wanted = reference.unwrap_or("HEAD");
        if let Some(sha) = self.rev_parse(wanted) {
            return Ok(sha);
        }
        if !cloned && !refresh {
            self.fetch()?;
            if let Some(sha) = self.rev_parse(wanted) {
                return Ok(sha);
            }
        }
        Err(NodeError::UnknownRef {
            url: self.url.clone(),
            reference: wanted.to_owned(),
        })
    }

    fn rev_parse(&self, reference: &str) -> Option<String> {
        self.git.resolve_commit(&self.path, reference)
    }

    /// Whether `commit` is in the mirror.
    pub fn has_commit(&self, commit: &str) -> bool {
        self.path.join("HEAD").is_file() && self.rev_parse(commit).as_deref() == Some(commit)
    }

    /// A text file of the repository at `commit`, byte for byte, without a checkout (`None`
    /// when absent or not UTF-8).
    pub fn read_file(&self, commit: &str, relative: &str) -> Option<String> {
        comfydock_foundation::git::check_revision(commit).ok()?;
        let bytes = self.git.read_blob(&self.path, commit, relative).ok()?;
        String::from_utf8(bytes).ok()
    }

    /// Check out `commit` with its submodules into `dest` (which must not exist).
    pub fn checkout(&self, commit: &str, dest: &Path) -> Result<(), NodeError> {
        comfydock_foundation::git::check_revision(commit)
            .map_err(comfydock_foundation::git::GitError::from)?;
        comfydock_foundation::git::check_url(&self.url).map_err(comfydock_foundation::git::GitError::from)?;
        self.git.run(
            None,
            [
                OsStr::new("clone"),
                OsStr::new("--quiet"),
                OsStr::new("--no-checkout"),
                OsStr::new("--"),
                self.path.as_os_str(),
                dest.as_os_str(),
            ],
        )?;
        self.git
            .run(Some(dest), ["remote", "set-url", "--", "origin", &self.url])?;
        self.git
            .run(Some(dest), ["checkout", "--quiet", "--detach", commit])?;
        if dest.join(".gitmodules").is_file() {
            let mut args: Vec<&str> = Vec::new();
            // Local repositories (file:// or paths) need file transport for their submodules.
            if self.url.starts_with("file://") || self.url.starts_with('/') {
                args.extend(["-c", "protocol.file.allow=always"]);
            }
            args.extend(["submodule", "--quiet", "update", "--init", "--recursive"]);
            self.git
                .run(Some(dest), &args)
                .map_err(|source| NodeError::GitFetch {
                    url: self.url.clone(),
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

//! The git questions a release asks: the last release tag, what changed since, a file's
//! content at a revision, whether the tree is clean, and creating the release tag.
//!
//! Every command runs in the release repository root with paths relative to it, so the
//! monorepo may also live in a sub-folder of a larger git repository.

use std::path::{Path, PathBuf};

use comfydock_foundation::git::{Git, GitError};
use comfydock_foundation::subprocess::ProcessError;
use serde::Serialize;

use crate::error::ReleaseError;

/// The prefix of release tags (`v1.2.3`).
pub const TAG_PREFIX: &str = "v";

/// How a file differs from the reference revision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    Added,
    Modified,
    Deleted,
}

/// A file that differs between the reference revision and the working tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChangedPath {
    /// Path relative to the repository root, with `/` separators.
    pub path: String,
    pub change: Change,
    /// Whether the change is (also) in the working tree or index rather than only in commits.
    pub uncommitted: bool,
}

/// The git side of a release repository.
#[derive(Debug, Clone)]
pub struct RepoGit {
    git: Git,
    root: PathBuf,
}

impl RepoGit {
    /// Open the repository at `root`; it must have at least one commit.
    pub fn open(root: &Path) -> Result<Self, ReleaseError> {
        let repo = Self {
            git: Git::find()?,
            root: root.to_owned(),
        };
        if repo.run(["rev-parse", "--verify", "--quiet", "HEAD"]).is_err() {
            return Err(ReleaseError::NoCommits(root.to_owned()));
        }
        Ok(repo)
    }

    fn run<I, S>(&self, args: I) -> Result<String, GitError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        self.git.run(Some(&self.root), args)
    }

    /// The commit HEAD points to.
    pub fn head(&self) -> Result<String, ReleaseError> {
        Ok(self.run(["rev-parse", "HEAD"])?)
    }

    /// Resolve a revision to its commit id.
    pub fn resolve(&self, rev: &str) -> Result<String, ReleaseError> {
        comfydock_foundation::git::check_revision(rev).map_err(GitError::from)?;
        Ok(self.run(["rev-parse", "--verify", &format!("{rev}^{{commit}}")])?)
    }

    /// The newest `v*` tag reachable from HEAD, optionally ignoring one tag. In a shallow clone
    /// without one, "no tag" would silently mean "everything is new": that is an error instead.
    pub fn newest_release_tag(&self, exclude: Option<&str>) -> Result<Option<String>, ReleaseError> {
        let tag = self.newest_reachable_tag(exclude)?;
        if tag.is_none() && self.run(["rev-parse", "--is-shallow-repository"])? == "true" {
            return Err(ReleaseError::ShallowWithoutTags(self.root.clone()));
        }
        Ok(tag)
    }

    fn newest_reachable_tag(&self, exclude: Option<&str>) -> Result<Option<String>, ReleaseError> {
        let pattern = format!("{TAG_PREFIX}*");
        let mut args = vec![
            "describe".to_owned(),
            "--tags".into(),
            "--abbrev=0".into(),
            "--match".into(),
            pattern.clone(),
        ];
        if let Some(exclude) = exclude {
            args.push("--exclude".into());
            args.push(exclude.to_owned());
        }
        args.push("HEAD".into());
        match self.run(&args) {
            Ok(tag) => Ok(Some(tag)),
            Err(GitError::Process(ProcessError::Failed { stderr, .. }))
                if stderr.contains("No names found")
                    || stderr.contains("No tags can describe")
                    || stderr.contains("cannot describe") =>
            {
                Ok(None)
            }
            Err(err) => Err(err.into()),
        }
    }

    /// Files that differ between `since` (or, without it, nothing: every file is new) and the
    /// working tree, including staged, unstaged and untracked changes.
    pub fn changed_paths(&self, since: Option<&str>) -> Result<Vec<ChangedPath>, ReleaseError> {
        let uncommitted: std::collections::BTreeSet<String> = split_nul(&self.run([
            "diff",
            "--name-only",
            "-z",
            "--no-renames",
            "--relative",
            "HEAD",
            "--",
        ])?)
        .chain(split_nul(&self.untracked()?))
        .map(str::to_owned)
        .collect();
        let mut out = Vec::new();
        if let Some(since) = since {
            comfydock_foundation::git::check_revision(since).map_err(GitError::from)?;
            let listing = self.run([
                "diff",
                "--name-status",
                "-z",
                "--no-renames",
                "--relative",
                since,
                "--",
            ])?;
            let mut fields = split_nul(&listing);
            while let (Some(status), Some(path)) = (fields.next(), fields.next()) {
                let change = match status.chars().next() {
                    Some('A') => Change::Added,
                    Some('D') => Change::Deleted,
                    _ => Change::Modified,
                };
                out.push(ChangedPath {
                    uncommitted: uncommitted.contains(path),
                    path: path.to_owned(),
                    change,
                });
            }
        } else {
            for path in split_nul(&self.run(["ls-files", "-z"])?) {
                if self.root.join(path).exists() {
                    out.push(ChangedPath {
                        uncommitted: uncommitted.contains(path),
                        path: path.to_owned(),
                        change: Change::Added,
                    });
                }
            }
        }
        for path in split_nul(&self.untracked()?) {
            if !out.iter().any(|c| c.path == path) {
                out.push(ChangedPath {
                    path: path.to_owned(),
                    change: Change::Added,
                    uncommitted: true,
                });
            }
        }
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }

    fn untracked(&self) -> Result<String, GitError> {
        self.run(["ls-files", "-z", "--others", "--exclude-standard"])
    }

    /// The content of `path` (relative to the repository root) at `rev`; `None` if absent there.
    pub fn read_at(&self, rev: &str, path: &str) -> Result<Option<String>, ReleaseError> {
        comfydock_foundation::git::check_revision(rev).map_err(GitError::from)?;
        let spec = format!("{rev}:./{path}");
        if self.run(["cat-file", "-e", &spec]).is_err() {
            return Ok(None);
        }
        self.git
            .read_blob(&self.root, rev, &format!("./{path}"))
            .map(|bytes| Some(String::from_utf8_lossy(&bytes).into_owned()))
            .map_err(|source| ReleaseError::ReadAtRevision {
                rev: rev.to_owned(),
                path: path.to_owned(),
                source: Box::new(source),
            })
    }

    /// Paths with uncommitted changes (tracked or untracked, ignoring ignored files).
    pub fn dirty_paths(&self) -> Result<Vec<String>, ReleaseError> {
        let listing = self.run(["status", "--porcelain", "-z", "--untracked-files=all", "--", "."])?;
        let mut paths = Vec::new();
        let mut entries = split_nul(&listing);
        while let Some(entry) = entries.next() {
            if let Some(path) = entry.get(3..) {
                paths.push(path.to_owned());
            }
            // Renames and copies are followed by their source path.
            if entry.starts_with(['R', 'C']) {
                entries.next();
            }
        }
        Ok(paths)
    }

    /// The commit a tag points to, if the tag exists.
    pub fn tag_commit(&self, tag: &str) -> Result<Option<String>, ReleaseError> {
        comfydock_foundation::git::check_revision(tag).map_err(GitError::from)?;
        let spec = format!("refs/tags/{tag}^{{commit}}");
        match self.run(["rev-parse", "--verify", "--quiet", &spec]) {
            Ok(commit) if !commit.is_empty() => Ok(Some(commit)),
            Ok(_) | Err(GitError::Process(ProcessError::Failed { .. })) => Ok(None),
            Err(err) => Err(err.into()),
        }
    }

    /// Create an annotated tag on HEAD.
    pub fn create_annotated_tag(&self, tag: &str, message: &str) -> Result<(), ReleaseError> {
        self.run([
            "tag",
            "--annotate",
            "--cleanup=verbatim",
            tag,
            "--message",
            message,
        ])?;
        Ok(())
    }
}

fn split_nul(listing: &str) -> impl Iterator<Item = &str> {
    listing.split('\0').filter(|s| !s.is_empty())
}

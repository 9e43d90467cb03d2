//! ComfyUI sources: one cached bare mirror per workspace, shared by every environment.
//!
//! The mirror lives at `<workspace>/cache/git/comfyui.git`. It is cloned once from `comfyui.repo`
//! and fetched again only when a requested ref is not in it. Environments get a local clone of
//! the mirror (objects hardlinked, no network) checked out at an exact commit.

use std::path::Path;

use crate::settings::edit_distance;
use comfydock_foundation::Hinted;
use comfydock_foundation::git::{Git, GitError};
use comfydock_foundation::git_mirror::{GitMirror, MirrorError};
use comfydock_foundation::reporter::Reporter;

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("Unknown ComfyUI ref `{reference}` in `{}`", comfydock_foundation::redact::RedactedUrl(.repo))]
    UnknownRef {
        reference: String,
        repo: String,
        closest: Vec<String>,
    },
    #[error("`{}` has no release tags (vX.Y.Z)", comfydock_foundation::redact::RedactedUrl(.repo))]
    NoReleases { repo: String },
    #[error("Failed to clone ComfyUI from `{}`", comfydock_foundation::redact::RedactedUrl(.repo))]
    Clone {
        repo: String,
        #[source]
        source: GitError,
    },
    #[error(transparent)]
    Git(#[from] GitError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl Hinted for SourceError {
    fn hint(&self) -> Option<String> {
        match self {
            Self::UnknownRef { closest, .. } if !closest.is_empty() => Some(format!(
                "the closest release tags are {}; pass one with `--comfyui TAG`",
                closest
                    .iter()
                    .map(|t| format!("`{t}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            Self::UnknownRef { .. } => {
                Some("pass a tag, branch or commit that exists with `--comfyui REF`".into())
            }
            Self::Clone { .. } => Some(
                "check the URL with `comfydock config get comfyui.repo` and your network, then retry".into(),
            ),
            Self::Git(e) => e.hint(),
            _ => None,
        }
    }
}

/// A ref resolved to an exact commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedRef {
    /// What the user asked for (or the release tag picked by default).
    pub reference: String,
    /// The full commit sha.
    pub commit: String,
    /// The release tag at that commit, if there is one.
    pub tag: Option<String>,
}

/// The workspace's ComfyUI mirror.
#[derive(Debug, Clone)]
pub struct ComfyUiMirror {
    mirror: GitMirror,
}

impl ComfyUiMirror {
    pub fn new(git: Git, cache_dir: &Path, repo: &str) -> Self {
        Self {
            mirror: GitMirror::new(git, repo, cache_dir.join("git").join("comfyui.git")),
        }
    }

    pub fn path(&self) -> &Path {
        self.mirror.path()
    }

    fn repo(&self) -> &str {
        self.mirror.url()
    }

    /// Clone the mirror if it does not exist yet; returns whether it was cloned now.
    pub fn ensure(&self, reporter: &dyn Reporter) -> Result<bool, SourceError> {
        if self.mirror.exists() {
            return Ok(false);
        }
        reporter.status(
            "Cloning",
            &format!(
                "ComfyUI from {}",
                comfydock_foundation::redact::RedactedUrl(self.repo())
            ),
        );
        self.mirror.ensure(reporter).map_err(|e| self.mirror_error(e))
    }

    /// Fetch new refs from the source.
    pub fn fetch(&self, reporter: &dyn Reporter) -> Result<(), SourceError> {
        reporter.status(
            "Fetching",
            &format!(
                "ComfyUI updates from {}",
                comfydock_foundation::redact::RedactedUrl(self.repo())
            ),
        );
        self.mirror.fetch(reporter).map_err(|e| self.mirror_error(e))
    }

    fn mirror_error(&self, error: MirrorError) -> SourceError {
        match error {
            MirrorError::Clone { source, .. } | MirrorError::Fetch { source, .. } => SourceError::Clone {
                repo: self.repo().to_owned(),
                source,
            },
            MirrorError::Git(e) => SourceError::Git(e),
            MirrorError::Io { source, .. } => SourceError::Io(source),
        }
    }

    /// Release tags (`vX.Y.Z`), newest first.
    pub fn release_tags(&self) -> Result<Vec<String>, SourceError> {
        let out = self
            .mirror
            .git()
            .run(Some(self.path()), ["tag", "--list", "v*"])?;
        let mut tags: Vec<(Vec<u64>, String)> = out
            .lines()
            .filter_map(|t| parse_release(t).map(|v| (v, t.to_owned())))
            .collect();
        tags.sort();
        Ok(tags.into_iter().rev().map(|(_, t)| t).collect())
    }

    /// Resolve `reference` (tag, branch or commit; `None` = newest release) to a commit,
    /// fetching once if the mirror does not know it.
    pub fn resolve(
        &self,
        reference: Option<&str>,
        reporter: &dyn Reporter,
    ) -> Result<ResolvedRef, SourceError> {
        let cloned = self.ensure(reporter)?;
        let reference = match reference {
            Some(r) => r.to_owned(),
            None => self
                .release_tags()?
                .into_iter()
                .next()
                .ok_or_else(|| SourceError::NoReleases {
                    repo: self.repo().to_owned(),
                })?,
        };
        let commit = match self.mirror.rev_parse(&reference) {
            Some(c) => c,
            None if !cloned => {
                self.fetch(reporter)?;
                self.mirror
                    .rev_parse(&reference)
                    .ok_or_else(|| self.unknown(&reference))?
            }
            None => return Err(self.unknown(&reference)),
        };
        let tag = self.release_tag_at(&commit)?;
        Ok(ResolvedRef {
            reference,
            commit,
            tag,
        })
    }

    fn release_tag_at(&self, commit: &str) -> Result<Option<String>, SourceError> {
        let out = self
            .mirror
            .git()
            .run(Some(self.path()), ["tag", "--points-at", commit])?;
        let mut tags: Vec<(Vec<u64>, &str)> = out
            .lines()
            .filter_map(|t| parse_release(t).map(|v| (v, t)))
            .collect();
        tags.sort();
        Ok(tags.last().map(|(_, t)| (*t).to_owned()))
    }

    fn unknown(&self, reference: &str) -> SourceError {
        let mut closest: Vec<(usize, String)> = self
            .release_tags()
            .unwrap_or_default()
            .into_iter()
            .map(|t| (edit_distance(reference, &t), t))
            .collect();
        closest.sort();
        SourceError::UnknownRef {
            reference: reference.to_owned(),
            repo: self.repo().to_owned(),
            closest: closest.into_iter().take(3).map(|(_, t)| t).collect(),
        }
    }

    /// The text of `path` at `commit`, or `None` if the mirror lacks the commit or the file.
    pub fn read_file(&self, commit: &str, path: &str) -> Option<String> {
        self.mirror.read_file(commit, path)
    }

    /// Check out `commit` into `dest` (a new folder) from the mirror, without network.
    pub fn checkout(&self, commit: &str, dest: &Path) -> Result<(), SourceError> {
        Ok(self.mirror.checkout(commit, dest)?)
    }

    /// Move an existing checkout to `commit`, fetching it from the mirror first.
    pub fn move_checkout(&self, dest: &Path, commit: &str) -> Result<(), SourceError> {
        Ok(self.mirror.move_checkout(dest, commit)?)
    }
}

/// `v0.3.41` → `[0, 3, 41]`; anything else is not a release tag.
fn parse_release(tag: &str) -> Option<Vec<u64>> {
    let parts: Vec<u64> = tag
        .strip_prefix('v')?
        .split('.')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    (parts.len() == 3).then_some(parts)
}

#[cfg(test)]
mod tests {
    use super::parse_release;

    #[test]
    fn release_tags_sort_numerically() {
        assert_eq!(parse_release("v0.3.41"), Some(vec![0, 3, 41]));
        assert_eq!(parse_release("v0.3"), None);
        assert_eq!(parse_release("latest"), None);
        assert!(parse_release("v0.3.9").unwrap() < parse_release("v0.3.10").unwrap());
    }
}

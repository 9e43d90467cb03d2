//! Cached bare mirrors of remote git repositories, shared by every environment of a workspace.
//!
//! ComfyUI and every git node are kept as `git clone --mirror` folders in the workspace cache.
//! A mirror is cloned once into a staging folder next to its final place and renamed into it,
//! so a clone killed halfway never leaves a half mirror behind; it is fetched again only when
//! a wanted ref is missing. Checkouts are local clones of the mirror (no network).

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use crate::git::{Git, GitError, check_revision, check_url};
use crate::redact::RedactedUrl;
use crate::reporter::Reporter;

/// Why a mirror could not be cloned or fetched. Callers wrap this in their own error naming
/// what the repository is (ComfyUI, a node).
#[derive(Debug, thiserror::Error)]
pub enum MirrorError {
    #[error("Failed to clone `{}`", crate::redact::RedactedUrl(.url))]
    Clone {
        url: String,
        #[source]
        source: GitError,
    },
    #[error("Failed to fetch `{}`", crate::redact::RedactedUrl(.url))]
    Fetch {
        url: String,
        #[source]
        source: GitError,
    },
    #[error(transparent)]
    Git(#[from] GitError),
    #[error("Failed to prepare the git cache folder `{}`", .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// One bare mirror: where it lives and where it comes from.
#[derive(Debug, Clone)]
pub struct GitMirror {
    git: Git,
    url: String,
    path: PathBuf,
}

impl GitMirror {
    /// A mirror of `url` kept at `path` (a `….git` folder; created on [`GitMirror::ensure`]).
    pub fn new(git: Git, url: &str, path: PathBuf) -> Self {
        Self {
            git,
            url: url.to_owned(),
            path,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn git(&self) -> &Git {
        &self.git
    }

    /// Whether the mirror has been cloned.
    pub fn exists(&self) -> bool {
        self.path.join("HEAD").is_file()
    }

    /// Clone the mirror if it does not exist yet; returns whether it was cloned now.
    ///
    /// The clone goes to a staging folder beside the mirror and is renamed into place, so a
    /// killed clone leaves no half mirror. Two processes cloning at once both succeed: the
    /// second rename fails and finds the first one's mirror in place.
    ///
    /// The clone shows as a unit of work named after the repository on `reporter`.
    pub fn ensure(&self, reporter: &dyn Reporter) -> Result<bool, MirrorError> {
        if self.exists() {
            return Ok(false);
        }
        check_url(&self.url).map_err(GitError::from)?;
        let parent = self.path.parent().expect("a mirror path has a parent");
        let io = |source| MirrorError::Io {
            path: parent.to_owned(),
            source,
        };
        fs_err::create_dir_all(parent).map_err(io)?;
        let staging = tempfile::Builder::new()
            .prefix(".mirror-")
            .tempdir_in(parent)
            .map_err(io)?;
        let target = staging.path().join("m.git");
        let work = reporter.start(&format!("Cloning {}", RedactedUrl(&self.url)), None);
        let cloned = self
            .git
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
            .map_err(|source| MirrorError::Clone {
                url: self.url.clone(),
                source,
            });
        reporter.finish(work);
        cloned?;
        match fs_err::rename(&target, &self.path) {
            Ok(()) => Ok(true),
            Err(_) if self.exists() => Ok(false),
            Err(source) => Err(io(source)),
        }
    }

    /// Fetch new commits, branches and tags (pruning deleted ones), shown as a unit of work
    /// named after the repository on `reporter`.
    pub fn fetch(&self, reporter: &dyn Reporter) -> Result<(), MirrorError> {
        let work = reporter.start(&format!("Fetching {}", RedactedUrl(&self.url)), None);
        let fetched = self
            .git
            .run(
                Some(&self.path),
                ["fetch", "--quiet", "--prune", "--tags", "origin"],
            )
            .map_err(|source| MirrorError::Fetch {
                url: self.url.clone(),
                source,
            });
        reporter.finish(work);
        fetched.map(drop)
    }

    /// The full commit `reference` names in the mirror, or `None`.
    pub fn rev_parse(&self, reference: &str) -> Option<String> {
        self.git.resolve_commit(&self.path, reference)
    }

    /// Whether the mirror holds `commit` (a full sha).
    pub fn has_commit(&self, commit: &str) -> bool {
        self.exists() && self.rev_parse(commit).as_deref() == Some(commit)
    }

    /// A text file of the repository at `commit`, byte for byte, without a checkout (`None`
    /// when the mirror, the commit or the file is missing, or the file is not UTF-8).
    pub fn read_file(&self, commit: &str, relative: &str) -> Option<String> {
        if check_revision(commit).is_err() || !self.exists() {
            return None;
        }
        let bytes = self.git.read_blob(&self.path, commit, relative).ok()?;
        String::from_utf8(bytes).ok()
    }

    /// Check out `commit` into `dest` (a new folder) as a local clone of the mirror, detached,
    /// without network.
    pub fn checkout(&self, commit: &str, dest: &Path) -> Result<(), GitError> {
        check_revision(commit)?;
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
            .run(Some(dest), ["checkout", "--quiet", "--detach", commit])?;
        Ok(())
    }

    /// Move an existing checkout at `dest` to `commit`, fetching it from the mirror first when
    /// the checkout does not have it.
    pub fn move_checkout(&self, dest: &Path, commit: &str) -> Result<(), GitError> {
        check_revision(commit)?;
        if self
            .git
            .run(Some(dest), ["cat-file", "-e", &format!("{commit}^{{commit}}")])
            .is_err()
        {
            self.git.run(
                Some(dest),
                [
                    OsStr::new("fetch"),
                    OsStr::new("--quiet"),
                    OsStr::new("--"),
                    self.path.as_os_str(),
                    OsStr::new("+refs/*:refs/remotes/mirror/*"),
                ],
            )?;
        }
        self.git
            .run(Some(dest), ["checkout", "--quiet", "--detach", commit])?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reporter::NoReporter;

    fn source_repo(git: &Git, dir: &Path) -> String {
        fs_err::create_dir_all(dir).unwrap();
        git.run(Some(dir), ["init", "--quiet", "--initial-branch=main"])
            .unwrap();
        fs_err::write(dir.join("a.txt"), "one\n").unwrap();
        commit_all(git, dir, "one")
    }

    fn commit_all(git: &Git, dir: &Path, message: &str) -> String {
        git.run(Some(dir), ["add", "-A"]).unwrap();
        let identity = ["-c", "user.name=t", "-c", "user.email=t@t"];
        git.run(
            Some(dir),
            identity.iter().chain(&["commit", "--quiet", "-m", message]),
        )
        .unwrap();
        git.run(Some(dir), ["rev-parse", "HEAD"]).unwrap()
    }

    #[test]
    fn clones_once_fetches_new_commits_and_checks_out_without_network() {
        let git = Git::find().unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let upstream = tmp.path().join("upstream");
        let first = source_repo(&git, &upstream);
        let mirror = GitMirror::new(
            git.clone(),
            upstream.to_str().unwrap(),
            tmp.path().join("cache/git/x.git"),
        );
        assert!(!mirror.exists());
        assert!(mirror.ensure(&NoReporter).unwrap(), "first ensure clones");
        assert!(!mirror.ensure(&NoReporter).unwrap(), "second ensure reuses");
        assert!(mirror.has_commit(&first));
        assert_eq!(mirror.read_file(&first, "a.txt").as_deref(), Some("one\n"));
        // No staging folder is left next to the mirror.
        let leftovers: Vec<_> = fs_err::read_dir(tmp.path().join("cache/git"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(leftovers, vec![std::ffi::OsString::from("x.git")]);

        fs_err::write(upstream.join("a.txt"), "two\n").unwrap();
        let second = commit_all(&git, &upstream, "two");
        assert!(!mirror.has_commit(&second));
        mirror.fetch(&NoReporter).unwrap();
        assert!(mirror.has_commit(&second));

        let dest = tmp.path().join("checkout");
        mirror.checkout(&first, &dest).unwrap();
        assert_eq!(fs_err::read_to_string(dest.join("a.txt")).unwrap(), "one\n");
        mirror.move_checkout(&dest, &second).unwrap();
        assert_eq!(fs_err::read_to_string(dest.join("a.txt")).unwrap(), "two\n");
    }

    #[test]
    fn a_failed_clone_leaves_nothing_and_names_the_url() {
        let git = Git::find().unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let missing = tmp.path().join("no-such-repo");
        let mirror = GitMirror::new(git, missing.to_str().unwrap(), tmp.path().join("cache/x.git"));
        let err = mirror.ensure(&NoReporter).unwrap_err();
        assert!(
            matches!(&err, MirrorError::Clone { url, .. } if url == missing.to_str().unwrap()),
            "{err:?}"
        );
        assert_eq!(
            fs_err::read_dir(tmp.path().join("cache")).unwrap().count(),
            0,
            "the staging folder is removed"
        );
    }

    #[test]
    fn refuses_option_like_urls_and_revisions_before_running_git() {
        let git = Git::find().unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let mirror = GitMirror::new(git, "--upload-pack=touch x", tmp.path().join("m.git"));
        assert!(matches!(
            mirror.ensure(&NoReporter),
            Err(MirrorError::Git(GitError::Unsafe(_)))
        ));
        assert_eq!(mirror.read_file("--output=x", "a"), None);
        assert!(matches!(
            mirror.checkout("--bad", &tmp.path().join("d")),
            Err(GitError::Unsafe(_))
        ));
    }
}

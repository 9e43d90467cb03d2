//! A small typed driver for the `git` command line.
//!
//! Every call runs with `GIT_TERMINAL_PROMPT=0` so a missing credential fails instead of
//! hanging, and failures carry argv and git's stderr.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::Hinted;
use crate::subprocess::{ProcessError, run_checked};

#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("git was not found on PATH")]
    NotFound,
    #[error(transparent)]
    Process(#[from] ProcessError),
    #[error(transparent)]
    Unsafe(#[from] UnsafeGitArgument),
}

/// A URL or revision that must not reach git: it would read as an option (`-…`), or it names a
/// transport that runs commands (`ext::…`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Refusing git {what} `{}`: {reason}", crate::redact::redact_text(crate::display_text::truncate(.value, 120)))]
pub struct UnsafeGitArgument {
    /// `URL` or `revision`.
    pub what: &'static str,
    pub value: String,
    pub reason: &'static str,
}

impl Hinted for UnsafeGitArgument {
    fn hint(&self) -> Option<String> {
        Some(match self.what {
            "URL" => "git URLs start with https://, http://, ssh://, git://, file://, `git@HOST:` or `/`; fix the manifest entry or ask its author for a corrected one".into(),
            _ => "revisions are tags, branches or commit ids and never start with `-`; see them with `comfydock log`".into(),
        })
    }
}

/// Check a git URL from the command line, a manifest, a bundle or the settings: one of the
/// known schemes (or an absolute local path, or `user@host:path`), never an option and never a
/// `transport::address` form (git's `ext::` transport runs a command).
pub fn check_url(url: &str) -> Result<(), UnsafeGitArgument> {
    const SCHEMES: &[&str] = &["https://", "http://", "ssh://", "git://", "file://"];
    let refuse = |reason| {
        Err(UnsafeGitArgument {
            what: "URL",
            value: url.to_owned(),
            reason,
        })
    };
    if url.is_empty() {
        return refuse("it is empty");
    }
    if url.starts_with('-') {
        return refuse("it starts with `-` and would be read as an option");
    }
    if url.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return refuse("it contains whitespace or a control character");
    }
    let lower = url.to_ascii_lowercase();
    if SCHEMES.iter().any(|s| lower.starts_with(s)) || url.starts_with('/') {
        return Ok(());
    }
    if url.contains("::") {
        return refuse("git transports named with `::` (such as `ext::`) are not allowed");
    }
    // scp-like `user@host:path`.
    if let Some((user_host, path)) = url.split_once(':')
        && user_host.contains('@')
        && !user_host.contains('/')
        && !path.is_empty()
    {
        return Ok(());
    }
    refuse("the scheme is not one of https, http, ssh, git, file (or `git@HOST:PATH`)")
}

/// Check a revision (tag, branch, commit, `HEAD~2`) from a user or a manifest before it is
/// passed to git: it must not start with `-` (it would be read as an option).
pub fn check_revision(rev: &str) -> Result<(), UnsafeGitArgument> {
    let reason = if rev.is_empty() {
        "it is empty"
    } else if rev.starts_with('-') {
        "it starts with `-` and would be read as an option"
    } else if rev.chars().any(char::is_control) {
        "it contains a control character"
    } else {
        return Ok(());
    };
    Err(UnsafeGitArgument {
        what: "revision",
        value: rev.to_owned(),
        reason,
    })
}

impl Hinted for GitError {
    fn hint(&self) -> Option<String> {
        match self {
            Self::NotFound => {
                Some("install git (e.g. `apt-get install git`) and make sure it is on PATH".into())
            }
            Self::Process(_) => None,
            Self::Unsafe(e) => e.hint(),
        }
    }
}

/// The `git` binary.
#[derive(Debug, Clone)]
pub struct Git {
    program: PathBuf,
}

impl Git {
    /// Find `git` on PATH.
    pub fn find() -> Result<Self, GitError> {
        which::which("git")
            .map(|program| Self { program })
            .map_err(|_| GitError::NotFound)
    }

    pub fn program(&self) -> &Path {
        &self.program
    }

    /// A `git` command in `dir` (or the current directory) with the common environment set.
    pub fn command(&self, dir: Option<&Path>) -> Command {
        let mut cmd = Command::new(&self.program);
        if let Some(dir) = dir {
            cmd.current_dir(dir);
        }
        cmd.env("GIT_TERMINAL_PROMPT", "0").env("LC_ALL", "C");
        cmd
    }

    /// Run git with `args` in `dir` and return its stdout with trailing whitespace removed.
    ///
    /// Only for commands that answer with a token or a listing (a commit id, tag names,
    /// `status --porcelain`). Never for file contents, whose trailing newline is part of the
    /// file: read those with [`Git::read_blob`].
    pub fn run<I, S>(&self, dir: Option<&Path>, args: I) -> Result<String, GitError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = self.command(dir);
        cmd.args(args);
        let output = run_checked(&mut cmd)?;
        Ok(String::from_utf8_lossy(&output.stdout).trim_end().to_owned())
    }

    /// Run git and return its stdout byte for byte (file contents, NUL-separated listings).
    pub fn run_bytes<I, S>(&self, dir: Option<&Path>, args: I) -> Result<Vec<u8>, GitError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = self.command(dir);
        cmd.args(args);
        Ok(run_checked(&mut cmd)?.stdout)
    }

    /// The content of `path` at revision `rev` in the repository at `dir`, byte for byte.
    ///
    /// Uses the plumbing `cat-file blob`, which applies no text conversion and keeps every byte
    /// (a file's final newline included), so it compares equal to the same file read from disk.
    pub fn read_blob(&self, dir: &Path, rev: &str, path: &str) -> Result<Vec<u8>, GitError> {
        check_revision(rev)?;
        self.run_bytes(Some(dir), ["cat-file", "blob", &format!("{rev}:{path}")])
    }

    /// The full commit `reference` (a tag, branch or sha) names in the repository at `dir`, or
    /// `None`. A reference starting with `-` is never passed to git (it would read as an option).
    pub fn resolve_commit(&self, dir: &Path, reference: &str) -> Option<String> {
        if check_revision(reference).is_err() {
            return None;
        }
        self.run(
            Some(dir),
            [
                "rev-parse",
                "--verify",
                "--quiet",
                &format!("{reference}^{{commit}}"),
            ],
        )
        .ok()
    }

    /// `git --version`, e.g. `2.47.3`.
    pub fn version(&self) -> Result<String, GitError> {
        let out = self.run(None, ["--version"])?;
        Ok(out.trim_start_matches("git version").trim().to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn commit_file(git: &Git, dir: &Path, name: &str, content: &[u8]) {
        git.run(Some(dir), ["init", "--quiet", "--initial-branch=main"])
            .unwrap();
        fs_err::write(dir.join(name), content).unwrap();
        git.run(Some(dir), ["add", name]).unwrap();
        git.run(
            Some(dir),
            [
                "-c",
                "user.email=t@localhost",
                "-c",
                "user.name=t",
                "commit",
                "--quiet",
                "-m",
                "add",
            ],
        )
        .unwrap();
    }

    #[test]
    fn read_blob_keeps_every_byte_including_trailing_newlines_and_spaces() {
        let git = Git::find().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let content = b"{\n  \"a\": 1\n}\n\n  \n";
        commit_file(&git, dir.path(), "w.json", content);
        assert_eq!(git.read_blob(dir.path(), "HEAD", "w.json").unwrap(), content);
    }

    #[test]
    fn read_blob_of_a_missing_path_fails() {
        let git = Git::find().unwrap();
        let dir = tempfile::tempdir().unwrap();
        commit_file(&git, dir.path(), "w.json", b"{}\n");
        assert!(git.read_blob(dir.path(), "HEAD", "missing.json").is_err());
    }

    #[test]
    fn urls_like_the_command_line() {
        for ok in [
            "https://github.com/a/b.git",
            "HTTP://host/x",
            "ssh://git@host/x",
            "git://host/x",
            "file:///srv/repo",
            "/srv/repo.git",
            "git@github.com:a/b.git",
        ] {
            assert_eq!(check_url(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "--upload-pack=touch /tmp/x",
            "-oProxyCommand=x",
            "ext::sh -c touch% /tmp/x",
            "fd::3",
            "transport::x",
            "relative/path",
            "https://host/x\n--foo",
            "https://host/a b",
            "C:\\repo",
        ] {
            assert!(check_url(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn revisions_never_read_as_options() {
        for ok in ["v1.0", "HEAD~2", "main", "0123abcd"] {
            assert_eq!(check_revision(ok), Ok(()));
        }
        for bad in ["", "-n1", "--output=/tmp/x", "a\nb"] {
            let err = check_revision(bad).unwrap_err();
            assert_eq!(err.what, "revision");
            assert!(err.hint().is_some());
        }
    }
}

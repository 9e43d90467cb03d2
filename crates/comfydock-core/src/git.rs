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
}

impl Hinted for GitError {
    fn hint(&self) -> Option<String> {
        match self {
            Self::NotFound => {
                Some("install git (e.g. `apt-get install git`) and make sure it is on PATH".into())
            }
            Self::Process(_) => None,
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
        self.run_bytes(Some(dir), ["cat-file", "blob", &format!("{rev}:{path}")])
    }

    /// The full commit `reference` (a tag, branch or sha) names in the repository at `dir`, or
    /// `None`. A reference starting with `-` is never passed to git (it would read as an option).
    pub fn resolve_commit(&self, dir: &Path, reference: &str) -> Option<String> {
        if reference.starts_with('-') {
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
}

//! Running the real `git` hermetically for fixture repositories: no user or system config, a fixed
//! identity and fixed commit dates so the same fixture always has the same commit ids.

use std::path::Path;
use std::process::Command;

/// A `git` command in `dir` with hermetic config, identity and dates.
pub fn git_command(dir: &Path) -> Command {
    let mut cmd = Command::new("git");
    cmd.current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_SYSTEM", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "Fixture Author")
        .env("GIT_AUTHOR_EMAIL", "fixture@example.invalid")
        .env("GIT_COMMITTER_NAME", "Fixture Author")
        .env("GIT_COMMITTER_EMAIL", "fixture@example.invalid")
        .env("GIT_AUTHOR_DATE", "2025-01-01T00:00:00Z")
        .env("GIT_COMMITTER_DATE", "2025-01-01T00:00:00Z")
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .env_remove("GIT_INDEX_FILE")
        .args([
            "-c",
            "user.name=Fixture Author",
            "-c",
            "user.email=fixture@example.invalid",
            "-c",
            "init.defaultBranch=master",
            "-c",
            "commit.gpgsign=false",
            "-c",
            "tag.gpgsign=false",
            "-c",
            "protocol.file.allow=always",
            "-c",
            "core.autocrlf=false",
        ]);
    cmd
}

/// Runs git in `dir` and returns trimmed stdout; panics with git's stderr on failure.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let output = git_command(dir).args(args).output().unwrap_or_else(|e| {
        panic!(
            "cannot run git {args:?} in {}: {e} (is git installed?)",
            dir.display()
        )
    });
    assert!(
        output.status.success(),
        "git {args:?} failed in {}: {}",
        dir.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// Stages everything in `dir` and commits it; each commit is dated one hour after the previous one
/// on the branch, so history order is stable. Returns the new commit id.
pub fn commit_all(dir: &Path, message: &str) -> String {
    git(dir, &["add", "-A"]);
    let count: u32 = git_command(dir)
        .args(["rev-list", "--count", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(0);
    let timestamp = format!("{} +0000", 1_735_689_600 + u64::from(count) * 3600);
    let output = git_command(dir)
        .env("GIT_AUTHOR_DATE", &timestamp)
        .env("GIT_COMMITTER_DATE", &timestamp)
        .args(["commit", "-q", "--allow-empty", "-m", message])
        .output()
        .unwrap_or_else(|e| panic!("cannot run git commit in {}: {e}", dir.display()));
    assert!(
        output.status.success(),
        "git commit failed in {}: {}",
        dir.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    git(dir, &["rev-parse", "HEAD"])
}

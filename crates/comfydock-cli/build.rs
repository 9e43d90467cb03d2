//! Records the commit comfydock is built from, for `comfydock --version`.
//!
//! `COMFYDOCK_BUILD_COMMIT` (set by the release workflow, or by whoever builds from a source
//! archive) wins; otherwise the commit comes from git when the source is a checkout; otherwise
//! the version stands alone.

use std::path::Path;
use std::process::Command;

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git").arg("-C").arg(dir).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
        .filter(|s| !s.is_empty())
}

fn main() {
    println!("cargo:rerun-if-env-changed=COMFYDOCK_BUILD_COMMIT");
    let dir = std::path::PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let commit = std::env::var("COMFYDOCK_BUILD_COMMIT")
        .ok()
        .filter(|c| !c.trim().is_empty())
        .or_else(|| {
            // Rebuild when HEAD moves (a checkout, or a commit on the current branch).
            for file in ["HEAD", "packed-refs"] {
                if let Some(path) = git(&dir, &["rev-parse", "--git-path", file]) {
                    println!("cargo:rerun-if-changed={}", dir.join(path).display());
                }
            }
            if let Some(branch) = git(&dir, &["symbolic-ref", "-q", "HEAD"])
                && let Some(path) = git(&dir, &["rev-parse", "--git-path", &branch])
            {
                println!("cargo:rerun-if-changed={}", dir.join(path).display());
            }
            let hash = git(&dir, &["rev-parse", "--short=9", "HEAD"])?;
            let date = git(&dir, &["log", "-1", "--format=%cd", "--date=short", "HEAD"]);
            Some(match date {
                Some(date) => format!("{hash} {date}"),
                None => hash,
            })
        });
    let version = std::env::var("CARGO_PKG_VERSION").unwrap_or_default();
    let long = match commit {
        Some(commit) => format!("{version} ({})", commit.trim()),
        None => version,
    };
    println!("cargo:rustc-env=COMFYDOCK_LONG_VERSION={long}");
}

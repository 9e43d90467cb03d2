//! The repository's own sync step (`sync-command`): it generates package asset folders (often
//! gitignored) and the core manifest from `templates/` and `bundles.json`. It runs before
//! validation and before anything is built, so both see what the release will ship; a tracked
//! file it rewrites was out of date in the commit, which is a problem to commit, not to ship.

use std::collections::BTreeMap;

use comfydock_foundation::reporter::Reporter;
use comfydock_foundation::subprocess::run_checked;
use sha2::{Digest, Sha256};

use crate::error::ReleaseError;
use crate::git_repo::RepoGit;
use crate::repo::ReleaseRepo;

/// Run the configured sync command in the repository root; returns the files (relative paths)
/// it changed among those git tracks or would track (ignored files are its business).
/// Without a configured command, nothing runs and nothing changed.
pub fn run_sync(
    repo: &ReleaseRepo,
    git: &RepoGit,
    reporter: &dyn Reporter,
) -> Result<Vec<String>, ReleaseError> {
    let Some(command) = repo.config.sync_command.as_deref() else {
        return Ok(Vec::new());
    };
    let before = snapshot(repo, git)?;
    reporter.status("Syncing", command);
    let mut cmd = std::process::Command::new("sh");
    cmd.arg("-c").arg(command).current_dir(repo.root());
    run_checked(&mut cmd).map_err(|source| ReleaseError::SyncCommand {
        command: command.to_owned(),
        source: Box::new(source),
    })?;
    let after = snapshot(repo, git)?;
    let mut changed: Vec<String> = after
        .iter()
        .filter(|(path, digest)| before.get(*path) != Some(digest))
        .map(|(path, _)| path.clone())
        .collect();
    changed.extend(before.keys().filter(|p| !after.contains_key(*p)).cloned());
    changed.sort();
    Ok(changed)
}

/// Uncommitted, not ignored paths and a digest of their content (`None`: deleted).
fn snapshot(repo: &ReleaseRepo, git: &RepoGit) -> Result<BTreeMap<String, Option<Vec<u8>>>, ReleaseError> {
    let mut out = BTreeMap::new();
    for path in git.dirty_paths()? {
        let full = repo.root().join(&path);
        let digest = if full.is_file() {
            let bytes = fs_err::read(&full).map_err(|source| ReleaseError::Read { path: full, source })?;
            Some(Sha256::digest(&bytes).to_vec())
        } else {
            None
        };
        out.insert(path, digest);
    }
    Ok(out)
}

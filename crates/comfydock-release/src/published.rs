//! Content-aware releasing: is a package's content still what its version on the index holds?
//!
//! A version can be published once. When a package's files change after its version reached the
//! index (a partial release followed by new commits, generated assets that changed), skipping it
//! "because the version is already there" ships the old content under a meta package that
//! expects the new one. So the local package is built and its wheel compared, file by file,
//! with the wheel of the same version on the index: what differs must get a new version.
//!
//! Compared: every file's SHA-256 except the build-tool-specific `*.dist-info/RECORD` and
//! `WHEEL`, and of `METADATA` the name, version, dependencies and extras.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use comfydock_foundation::reporter::Reporter;
use comfydock_foundation::subprocess::run_checked;
use comfydock_foundation::uv::Uv;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::error::ReleaseError;
use crate::package_index::{DistKind, PackageIndex};
use crate::version;

/// How a local package compares with its version on the index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum PublishedContent {
    /// The index has no wheel of this version: publishing it is safe.
    NotOnIndex,
    /// The index holds exactly this content.
    Same,
    /// The index holds other content under this version.
    Differs {
        /// Wheel members added, removed or changed (`+path`, `-path`, `~path`).
        changes: Vec<String>,
    },
}

/// Build the package in `dir` and compare its wheel with `name`'s `version` on the index.
pub fn compare_with_index(
    uv: &Uv,
    index: &PackageIndex,
    name: &str,
    version: &str,
    dir: &Path,
    reporter: &dyn Reporter,
) -> Result<PublishedContent, ReleaseError> {
    let Some(published) = index
        .files(name)?
        .into_iter()
        .find(|f| f.kind == DistKind::Wheel && version::same(&f.version, version) && !f.url.is_empty())
    else {
        return Ok(PublishedContent::NotOnIndex);
    };
    reporter.status("Comparing", &format!("{name} {version} with the index"));
    let work = tempfile::Builder::new()
        .prefix("comfydock-release-compare-")
        .tempdir()
        .map_err(ReleaseError::TempDir)?;
    let local = build_wheel(uv, dir, &work.path().join("local"))?;
    // Builds are reproducible (fixed SOURCE_DATE_EPOCH), so an equal file hash settles it
    // without downloading what may be a very large wheel.
    if let Some(stated) = &published.sha256 {
        let bytes = fs_err::read(&local).map_err(|source| ReleaseError::Read {
            path: local.clone(),
            source,
        })?;
        if hex::encode(Sha256::digest(&bytes)) == *stated {
            return Ok(PublishedContent::Same);
        }
    }
    let remote = work.path().join(&published.filename);
    index.download(&published, &remote)?;
    let changes = diff(&wheel_digest(&remote)?, &wheel_digest(&local)?);
    Ok(if changes.is_empty() {
        PublishedContent::Same
    } else {
        PublishedContent::Differs { changes }
    })
}

/// `uv build --wheel` of the package in `dir` into `out_dir`; the wheel's path.
pub fn build_wheel(uv: &Uv, dir: &Path, out_dir: &Path) -> Result<PathBuf, ReleaseError> {
    let mut cmd = build_command(uv, dir);
    cmd.args(["--wheel", "--out-dir"]).arg(out_dir).arg(".");
    run_checked(&mut cmd).map_err(|source| ReleaseError::Build {
        path: dir.to_owned(),
        source: Box::new(source),
    })?;
    let entries = fs_err::read_dir(out_dir).map_err(|source| ReleaseError::Read {
        path: out_dir.to_owned(),
        source,
    })?;
    for entry in entries {
        let path = entry
            .map_err(|source| ReleaseError::Read {
                path: out_dir.to_owned(),
                source,
            })?
            .path();
        if path.extension().is_some_and(|e| e == "whl") {
            return Ok(path);
        }
    }
    Err(ReleaseError::Malformed {
        path: dir.to_owned(),
        message: "`uv build --wheel` produced no wheel".into(),
    })
}

/// The timestamp archives get when the user set none: 1980-01-01, the earliest a zip can hold.
const REPRODUCIBLE_EPOCH: &str = "315532800";

/// `uv build` in `dir` with reproducible archive timestamps (`SOURCE_DATE_EPOCH`, unless the
/// user set one), so rebuilding unchanged sources gives byte-identical files.
pub fn build_command(uv: &Uv, dir: &Path) -> std::process::Command {
    let mut cmd = uv.command();
    if std::env::var_os("SOURCE_DATE_EPOCH").is_none() {
        cmd.env("SOURCE_DATE_EPOCH", REPRODUCIBLE_EPOCH);
    }
    cmd.arg("build").current_dir(dir);
    cmd
}

/// Member → digest of what matters in a wheel.
fn wheel_digest(path: &Path) -> Result<BTreeMap<String, String>, ReleaseError> {
    let malformed = |message: String| ReleaseError::Malformed {
        path: path.to_owned(),
        message,
    };
    let file = fs_err::File::open(path).map_err(|source| ReleaseError::Read {
        path: path.to_owned(),
        source,
    })?;
    let mut archive = zip::ZipArchive::new(std::io::BufReader::new(file))
        .map_err(|e| malformed(format!("not a wheel: {e}")))?;
    let mut out = BTreeMap::new();
    for i in 0..archive.len() {
        let mut entry = archive
            .by_index(i)
            .map_err(|e| malformed(format!("unreadable member {i}: {e}")))?;
        if entry.is_dir() {
            continue;
        }
        let name = entry
            .name()
            .map_err(|e| malformed(format!("member {i} has no readable name: {e}")))?
            .into_owned();
        let in_dist_info = name
            .split_once('/')
            .is_some_and(|(top, _)| top.ends_with(".dist-info"));
        let file_name = name.rsplit('/').next().unwrap_or_default();
        if in_dist_info && matches!(file_name, "RECORD" | "WHEEL") {
            continue;
        }
        let mut bytes = Vec::new();
        entry
            .read_to_end(&mut bytes)
            .map_err(|source| ReleaseError::Read {
                path: path.to_owned(),
                source,
            })?;
        if in_dist_info && file_name == "METADATA" {
            let text = String::from_utf8_lossy(&bytes);
            let kept: Vec<&str> = text
                .lines()
                .filter(|l| {
                    ["Name:", "Version:", "Requires-Dist:", "Provides-Extra:"]
                        .iter()
                        .any(|k| l.starts_with(k))
                })
                .collect();
            bytes = kept.join("\n").into_bytes();
        }
        // dist-info folder names carry the version, which is equal by construction.
        let key = if in_dist_info {
            format!("<dist-info>/{file_name}")
        } else {
            name
        };
        out.insert(key, hex::encode(Sha256::digest(&bytes)));
    }
    Ok(out)
}

fn diff(published: &BTreeMap<String, String>, local: &BTreeMap<String, String>) -> Vec<String> {
    let mut changes = Vec::new();
    for (name, digest) in local {
        match published.get(name) {
            None => changes.push(format!("+{name}")),
            Some(other) if other != digest => changes.push(format!("~{name}")),
            Some(_) => {}
        }
    }
    for name in published.keys().filter(|n| !local.contains_key(*n)) {
        changes.push(format!("-{name}"));
    }
    changes
}

/// A short list of changes for one line of output.
pub fn summarize(changes: &[String]) -> String {
    const SHOWN: usize = 3;
    let text = changes.iter().take(SHOWN).cloned().collect::<Vec<_>>().join(", ");
    match changes.len().checked_sub(SHOWN) {
        Some(more) if more > 0 => format!("{text}, and {more} more"),
        _ => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_names_added_removed_and_changed_members() {
        let published: BTreeMap<String, String> = [("a", "1"), ("b", "2")]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .into();
        let local: BTreeMap<String, String> = [("a", "1"), ("b", "3"), ("c", "4")]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .into();
        assert_eq!(diff(&published, &local), ["~b", "+c"]);
        assert_eq!(diff(&local, &published), ["~b", "-c"]);
        assert!(diff(&local, &local).is_empty());
        let many: Vec<String> = (0..5).map(|i| format!("+f{i}")).collect();
        assert_eq!(summarize(&many), "+f0, +f1, +f2, and 2 more");
    }
}

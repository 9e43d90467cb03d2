//! `release bump`: patch-bump every affected sub-package and pin them all in the meta package.
//! With an index to compare with, also every package whose current version is on the index with
//! other content (a partial release followed by new commits): its version can never carry the
//! new content, whatever git says.
//!
//! The meta package's version is the human's choice: bump never raises it on its own and
//! refuses to run while it still equals the last release's (so a release can never ship new
//! sub-package pins under an old meta version). `--meta-version` is the explicit way to set it.
//! Only version strings change; no file other than the pyprojects is written, and every new
//! content is computed and checked before the first file is replaced.

use std::cmp::Ordering;
use std::path::Path;

use comfydock_foundation::atomic_file::write_atomic;
use comfydock_foundation::package_name;
use comfydock_foundation::reporter::Reporter;
use comfydock_foundation::uv::Uv;
use serde::Serialize;

use crate::error::ReleaseError;
use crate::git_repo::RepoGit;
use crate::layout::META_PYPROJECT;
use crate::package_index::PackageIndex;
pub use crate::problems::FrozenChange;
use crate::published::{PublishedContent, compare_with_index, summarize};
use crate::repo::{ReleaseRepo, RevisionView};
use crate::status::{compute, resolve_since};
use crate::sync::run_sync;
use crate::version;

/// Options of [`bump`].
#[derive(Debug, Clone, Default)]
pub struct BumpOptions {
    /// Compare against this revision instead of the newest `v*` tag.
    pub since: Option<String>,
    /// Compute and report, write nothing.
    pub dry_run: bool,
    /// Set the meta package to this version (the human's explicit choice).
    pub meta_version: Option<String>,
    /// Frozen package folders (`frozen-packages`) that may be bumped all the same.
    pub allow_frozen: Vec<String>,
    /// The index to compare with; `None`: the configured `index-url`.
    pub index_url: Option<String>,
    /// Compare every package whose version would be kept with the same version on the index
    /// (building it with this uv, after running the sync command) and bump it when the content
    /// differs. Runs only when an index is known (`index_url` or the configured one).
    pub content_check: Option<Uv>,
}

/// What happened to one affected sub-package's version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BumpAction {
    /// Patch-bumped now.
    Bumped,
    /// Already higher than at the last release (bumped before); kept.
    AlreadyRaised,
    /// The package did not exist at the last release; its version is kept.
    NewPackage,
    /// Its version is on the index with other content (e.g. after a partial release): bumped.
    BumpedPastPublished,
}

impl BumpAction {
    /// Whether the version is raised now.
    pub fn raises(self) -> bool {
        matches!(self, Self::Bumped | Self::BumpedPastPublished)
    }
}

impl std::fmt::Display for BumpAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Bumped => "bumped",
            Self::AlreadyRaised => "already raised since the last release",
            Self::NewPackage => "new since the last release",
            Self::BumpedPastPublished => "its version is on the index with other content",
        })
    }
}

/// One affected sub-package's version change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PackageBump {
    pub package: String,
    pub dir: String,
    pub from: String,
    pub to: String,
    pub action: BumpAction,
    /// For [`BumpAction::BumpedPastPublished`]: the wheel members that differ from the index's.
    pub published_changes: Vec<String>,
}

/// One rewritten dependency string of the meta package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PinChange {
    pub dependency: String,
    /// `dependencies` or `optional-dependencies.<extra>`.
    pub location: String,
    pub from: String,
    pub to: String,
}

/// The meta package's version before and after.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MetaVersion {
    pub package: String,
    pub from: String,
    pub to: String,
    /// The version at the last release tag, if any.
    pub released: Option<String>,
}

/// The result of [`bump`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BumpReport {
    pub dry_run: bool,
    pub since: Option<String>,
    pub meta: MetaVersion,
    pub bumps: Vec<PackageBump>,
    pub pins: Vec<PinChange>,
    /// Files replaced, relative to the repository root (empty on a dry run).
    pub files_written: Vec<String>,
    pub warnings: Vec<String>,
}

impl BumpReport {
    /// Whether anything was (or, on a dry run, would be) changed.
    pub fn changes_anything(&self) -> bool {
        self.meta.from != self.meta.to
            || self.pins.iter().any(|p| p.from != p.to)
            || self.bumps.iter().any(|b| b.action.raises())
    }
}

/// Patch-bump affected sub-packages and pin every sub-package exactly in the meta package.
pub fn bump(
    repo_root: &Path,
    options: &BumpOptions,
    reporter: &dyn Reporter,
) -> Result<BumpReport, ReleaseError> {
    let repo = ReleaseRepo::load(repo_root)?;
    let git = RepoGit::open(repo.root())?;
    let index_url = options
        .index_url
        .clone()
        .or_else(|| repo.config.index_url.clone());
    let published_check = match (&options.content_check, index_url) {
        (Some(uv), Some(url)) => Some((uv, PackageIndex::new(&url)?)),
        _ => None,
    };
    // Compare what the release will ship: generated package folders and manifest included.
    let repo = if published_check.is_some() && !options.dry_run && repo.config.sync_command.is_some() {
        run_sync(&repo, &git, reporter)?;
        ReleaseRepo::load(repo.root())?
    } else {
        repo
    };
    let since = resolve_since(&git, options.since.as_deref())?;
    let status = compute(&repo, &git, since.as_deref())?;
    let released = since
        .as_deref()
        .map(|rev| RevisionView::read(&git, &repo, rev))
        .transpose()?
        .unwrap_or_default();

    for dir in &options.allow_frozen {
        if !repo.config.is_frozen(dir) {
            return Err(ReleaseError::NotFrozen {
                dir: dir.clone(),
                frozen: repo.config.frozen_packages.clone(),
            });
        }
    }
    let mut bumps = Vec::new();
    let mut frozen = Vec::new();
    for package in &repo.packages {
        let dir = package.dir.as_str();
        let affected = status.packages.iter().find(|p| p.dir.as_deref() == Some(dir));
        let current = package.version();
        let released_version = released.package_versions.get(dir);
        let raised =
            released_version.is_none_or(|old| version::compare(current, old) == Some(Ordering::Greater));
        // A package bumped anyway needs no comparison: its new version is not on the index.
        let published_changes = match &published_check {
            Some((uv, index)) if raised || affected.is_none() => match compare_with_index(
                uv,
                index,
                package.name(),
                current,
                &repo.root().join(package.rel_path()),
                reporter,
            )? {
                PublishedContent::Differs { changes } => changes,
                PublishedContent::Same | PublishedContent::NotOnIndex => Vec::new(),
            },
            _ => Vec::new(),
        };
        let action = if !published_changes.is_empty() {
            BumpAction::BumpedPastPublished
        } else if affected.is_none() {
            continue;
        } else if released_version.is_none() {
            BumpAction::NewPackage
        } else if raised {
            BumpAction::AlreadyRaised
        } else {
            BumpAction::Bumped
        };
        let to = if action.raises() {
            if repo.config.is_frozen(dir) && !options.allow_frozen.iter().any(|d| d == dir) {
                let mut reasons: Vec<String> = affected
                    .map(|a| a.reasons.iter().map(|r| r.message.clone()).collect())
                    .unwrap_or_default();
                if !published_changes.is_empty() {
                    reasons.push(format!(
                        "{current} is on the index with other content ({})",
                        summarize(&published_changes)
                    ));
                }
                frozen.push(FrozenChange {
                    dir: dir.to_owned(),
                    package: package.name().to_owned(),
                    reasons,
                });
                continue;
            }
            version::patch_bump(current).map_err(|reason| ReleaseError::UnbumpableVersion {
                package: package.name().to_owned(),
                version: current.to_owned(),
                path: package.pyproject.path().to_owned(),
                reason: reason.to_string(),
            })?
        } else {
            current.to_owned()
        };
        bumps.push(PackageBump {
            package: package.name().to_owned(),
            dir: dir.to_owned(),
            from: current.to_owned(),
            to,
            action,
            published_changes,
        });
    }
    if !frozen.is_empty() {
        return Err(ReleaseError::FrozenPackagesChanged { changes: frozen });
    }
    let new_version_of = |dir: &str| -> String {
        bumps.iter().find(|b| b.dir == dir).map_or_else(
            || {
                repo.package(dir)
                    .map(|p| p.version().to_owned())
                    .unwrap_or_default()
            },
            |b| b.to.clone(),
        )
    };

    let mut warnings = Vec::new();
    let mut pins = Vec::new();
    let mut meta_edit = repo.meta.edit();
    for entry in repo.meta.dependencies() {
        let Some(package) = repo
            .package_named(entry.requirement.name())
            .filter(|p| repo.config.is_pinned(&p.dir))
        else {
            continue;
        };
        let wanted = new_version_of(&package.dir);
        if entry
            .requirement
            .exact_pin()
            .is_some_and(|pinned| version::same(pinned, &wanted))
        {
            continue;
        }
        let Some(new_text) = entry.requirement.with_exact_pin(&wanted) else {
            warnings.push(format!(
                "{META_PYPROJECT}: `{}` in {} is a direct reference and cannot be pinned",
                entry.requirement.name(),
                entry.location
            ));
            continue;
        };
        meta_edit.set_dependency(entry, &new_text);
        pins.push(PinChange {
            dependency: entry.requirement.name().to_owned(),
            location: entry.location.clone(),
            from: entry.requirement.as_str().to_owned(),
            to: new_text,
        });
    }
    for package in repo.packages.iter().filter(|p| repo.config.is_pinned(&p.dir)) {
        let pinned = repo.meta.dependencies().iter().any(|d| {
            package_name::normalize(d.requirement.name()) == package_name::normalize(package.name())
        });
        if !pinned {
            warnings.push(format!(
                "{META_PYPROJECT}: the meta package does not depend on `{}` ({}); add `\"{}=={}\"` to its dependencies",
                package.name(),
                package.rel_path(),
                package.name(),
                new_version_of(&package.dir)
            ));
        }
    }

    let current_meta = repo.meta.version().to_owned();
    let meta_to = match &options.meta_version {
        Some(requested) => {
            if version::parse(requested).is_none() {
                return Err(ReleaseError::InvalidMetaVersion {
                    version: requested.clone(),
                });
            }
            if let (Some(released_version), Some(tag)) = (&released.meta_version, &since)
                && version::compare(requested, released_version) != Some(Ordering::Greater)
            {
                return Err(ReleaseError::MetaVersionNotHigher {
                    requested: requested.clone(),
                    released: released_version.clone(),
                    tag: tag.clone(),
                });
            }
            if requested != &current_meta {
                meta_edit.set_version(requested);
            }
            requested.clone()
        }
        None => current_meta.clone(),
    };
    let has_release_work = !bumps.is_empty() || !pins.is_empty();
    if has_release_work
        && let (Some(released_version), Some(tag)) = (&released.meta_version, &since)
        && version::compare(&meta_to, released_version) != Some(Ordering::Greater)
    {
        return Err(ReleaseError::MetaVersionNotRaised {
            name: repo.meta.name().to_owned(),
            version: meta_to,
            tag: tag.clone(),
            suggested: version::suggest_next(released_version).unwrap_or_else(|| "<version>".into()),
            pyproject: repo.meta.path().to_owned(),
        });
    }

    // Compute every new file content first; write only when all are valid.
    let mut writes = Vec::new();
    for bump in bumps.iter().filter(|b| b.action.raises()) {
        let package = repo.package(&bump.dir).expect("bumped packages exist");
        let mut edit = package.pyproject.edit();
        edit.set_version(&bump.to);
        writes.push((
            format!("{}/pyproject.toml", package.rel_path()),
            package.pyproject.path().to_owned(),
            edit.finish()?,
        ));
    }
    if !meta_edit.is_empty() {
        writes.push((
            META_PYPROJECT.to_owned(),
            repo.meta.path().to_owned(),
            meta_edit.finish()?,
        ));
    }
    let mut files_written = Vec::new();
    if !options.dry_run {
        for (rel, path, text) in writes {
            write_atomic(&path, text).map_err(|source| ReleaseError::Write { path, source })?;
            reporter.status("Updated", &rel);
            files_written.push(rel);
        }
    }
    Ok(BumpReport {
        dry_run: options.dry_run,
        since,
        meta: MetaVersion {
            package: repo.meta.name().to_owned(),
            from: current_meta,
            to: meta_to,
            released: released.meta_version,
        },
        bumps,
        pins,
        files_written,
        warnings,
    })
}

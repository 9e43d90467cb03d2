//! `release publish`: build and upload in dependency order, then tag.
//!
//! 1. refuse on uncommitted changes; run the configured sync command; refuse on a release tag
//!    that exists elsewhere and on any validation problem, including tracked files the sync
//!    rewrote (so assets, manifest and pins are in sync before anything is uploaded);
//! 2. every sub-package (changed ones first): skip it when its version is on the index (its
//!    content was compared with the index's during validation: a version on the index with
//!    other content is a validation problem, never a skip), else `uv build` into a temporary
//!    folder and `uv publish` the files the index lacks;
//!    a failure is recorded and the other sub-packages still go out;
//! 3. the meta package only when every sub-package is on the index (re-checked after the
//!    uploads); never after a sub-package failed;
//! 4. the annotated `v<meta version>` tag on HEAD, its message the release notes.
//!
//! A re-run after a partial failure skips what is already on the index and finishes the job.

use std::path::{Path, PathBuf};

use comfydock_foundation::reporter::Reporter;
use comfydock_foundation::subprocess::run_checked;
use comfydock_foundation::uv::Uv;
use serde::Serialize;

use crate::error::{ReleaseError, error_chain};
use crate::git_repo::{RepoGit, TAG_PREFIX};
use crate::notes::{ReleaseNotes, release_notes};
use crate::package_index::{DistFile, DistKind, PackageIndex};
use crate::published::build_command;
use crate::repo::ReleaseRepo;
use crate::status::{PackageRole, compute};
use crate::sync::run_sync;
use crate::validate::{report_sync_changes, validate_repo};
use crate::version;

/// Upload credentials, passed to uv as `UV_PUBLISH_USERNAME` / `UV_PUBLISH_PASSWORD`.
/// Without them uv uses its own configuration (`UV_PUBLISH_TOKEN`, keyring, trusted publishing).
#[derive(Clone)]
pub struct PublishCredentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for PublishCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublishCredentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Options of [`publish`].
#[derive(Debug, Clone, Default)]
pub struct PublishOptions {
    /// The simple API of the index (what is published already); `None`: the configured
    /// `index-url`, else PyPI.
    pub index_url: Option<String>,
    /// The upload endpoint; `None`: the configured `publish-url`, else derived from the index
    /// URL (PyPI's upload API for PyPI, the index URL without its trailing `simple/` otherwise).
    pub publish_url: Option<String>,
    pub credentials: Option<PublishCredentials>,
    /// Report what would happen; build, upload and tag nothing.
    pub dry_run: bool,
}

/// What happened to one package.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PublishOutcome {
    Published,
    AlreadyOnIndex,
    WouldPublish,
    Failed,
    /// Not attempted because an earlier step failed (the meta package after a sub-package failure).
    NotAttempted,
}

impl std::fmt::Display for PublishOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Published => "published",
            Self::AlreadyOnIndex => "already on the index",
            Self::WouldPublish => "would be published",
            Self::Failed => "failed",
            Self::NotAttempted => "not attempted",
        })
    }
}

/// One package's publication.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PackagePublish {
    pub package: String,
    /// Folder under `packages/`; `None` for the meta package.
    pub dir: Option<String>,
    pub role: PackageRole,
    pub version: String,
    /// Whether the package changed since the previous release.
    pub changed: bool,
    pub outcome: PublishOutcome,
    /// Files uploaded.
    pub files: Vec<String>,
    pub error: Option<String>,
}

/// What happened to the release tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TagOutcome {
    Created,
    AlreadyOnHead,
    WouldCreate,
    NotCreated,
}

/// The result of [`publish`]; `complete` is false when anything failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PublishReport {
    pub dry_run: bool,
    pub index_url: String,
    pub publish_url: Option<String>,
    /// In the order handled: sub-packages, then the meta package.
    pub packages: Vec<PackagePublish>,
    pub tag: String,
    pub tag_outcome: TagOutcome,
    pub notes: ReleaseNotes,
    pub complete: bool,
    /// The command that finishes an incomplete release.
    pub next_step: Option<String>,
}

impl PublishReport {
    /// The packages whose publication failed.
    pub fn failures(&self) -> impl Iterator<Item = &PackagePublish> {
        self.packages
            .iter()
            .filter(|p| p.outcome == PublishOutcome::Failed)
    }
}

/// Build and upload changed packages in dependency order, then tag the release.
pub fn publish(
    repo_root: &Path,
    options: &PublishOptions,
    uv: &Uv,
    reporter: &dyn Reporter,
) -> Result<PublishReport, ReleaseError> {
    let repo = ReleaseRepo::load(repo_root)?;
    let git = RepoGit::open(repo.root())?;
    let head = git.head()?;
    let tag = format!("{TAG_PREFIX}{}", repo.meta.version());
    let tag_commit = git.tag_commit(&tag)?;
    if !options.dry_run {
        let dirty = git.dirty_paths()?;
        if !dirty.is_empty() {
            return Err(ReleaseError::DirtyWorktree {
                path: repo.root().to_owned(),
                files: dirty,
            });
        }
    }
    // The sync command generates what the packages ship; the tree was clean before it ran, so
    // whatever tracked file it rewrites was stale in the commit (a validation problem below).
    let synced = run_sync(&repo, &git, reporter)?;
    let repo = if repo.config.sync_command.is_some() {
        ReleaseRepo::load(repo.root())?
    } else {
        repo
    };
    let index_url = repo.index_url(options.index_url.as_deref());
    let index = PackageIndex::new(&index_url)?;
    let publish_url = options
        .publish_url
        .clone()
        .or_else(|| repo.config.publish_url.clone())
        .or_else(|| default_publish_url(&index_url));

    // The release being published is tagged already when a finished release is re-run.
    let previous_tag = if tag_commit.as_ref() == Some(&head) {
        git.newest_release_tag(Some(&tag))?
    } else {
        git.newest_release_tag(None)?
    };
    reporter.phase("Validating");
    let mut validation = validate_repo(
        &repo,
        &git,
        previous_tag.as_deref(),
        Some(&index),
        Some((&index, uv)),
        reporter,
    )?;
    report_sync_changes(&repo, &synced, &mut validation);
    if !validation.is_ok() {
        return Err(ReleaseError::ValidationFailed {
            report: Box::new(validation),
            index_url: Some(index_url.clone()),
        });
    }

    if let Some(commit) = &tag_commit
        && commit != &head
    {
        return Err(ReleaseError::TagElsewhere {
            tag,
            commit: commit.clone(),
            head,
            suggested: version::suggest_next(repo.meta.version()).unwrap_or_else(|| "<version>".into()),
        });
    }

    let status = compute(&repo, &git, previous_tag.as_deref())?;
    let changed = |dir: Option<&str>| status.packages.iter().any(|p| p.dir.as_deref() == dir);
    let notes = release_notes(&repo, &git, &tag, previous_tag.as_deref())?;

    let uploader = Uploader {
        uv,
        index: &index,
        publish_url: publish_url.as_deref(),
        credentials: options.credentials.as_ref(),
        dry_run: options.dry_run,
        reporter,
    };
    let mut subs: Vec<_> = repo.packages.iter().collect();
    subs.sort_by_key(|p| (!changed(Some(&p.dir)), p.dir.clone()));
    let mut packages = Vec::new();
    reporter.phase("Publishing sub-packages");
    for package in subs {
        let mut record = uploader.publish_one(
            package.name(),
            package.version(),
            &repo.root().join(package.rel_path()),
        );
        record.dir = Some(package.dir.clone());
        record.changed = changed(Some(&package.dir));
        packages.push(record);
    }

    let sub_failed = packages.iter().any(|p| p.outcome == PublishOutcome::Failed);
    let meta_blocker = if sub_failed {
        Some("not published because a sub-package failed".to_owned())
    } else if options.dry_run {
        None
    } else {
        missing_pins(&repo, &index)
    };
    let mut meta = if let Some(reason) = meta_blocker {
        PackagePublish {
            package: repo.meta.name().to_owned(),
            dir: None,
            role: PackageRole::Meta,
            version: repo.meta.version().to_owned(),
            changed: false,
            outcome: PublishOutcome::NotAttempted,
            files: Vec::new(),
            error: Some(reason),
        }
    } else {
        reporter.phase("Publishing the meta package");
        uploader.publish_one(repo.meta.name(), repo.meta.version(), repo.root())
    };
    meta.role = PackageRole::Meta;
    meta.changed = changed(None);
    let meta_ok = matches!(
        meta.outcome,
        PublishOutcome::Published | PublishOutcome::AlreadyOnIndex | PublishOutcome::WouldPublish
    );
    packages.push(meta);

    let complete = meta_ok && !packages.iter().any(|p| p.outcome == PublishOutcome::Failed);
    let tag_outcome = if !complete {
        TagOutcome::NotCreated
    } else if tag_commit.is_some() {
        TagOutcome::AlreadyOnHead
    } else if options.dry_run {
        TagOutcome::WouldCreate
    } else {
        git.create_annotated_tag(&tag, &notes.to_text())?;
        reporter.status("Tagged", &tag);
        TagOutcome::Created
    };
    let next_step = (!complete).then(|| {
        format!(
            "fix the failure above, then run `comfydock release publish --index-url {index_url}` again: what is already on the index is skipped"
        )
    });
    Ok(PublishReport {
        dry_run: options.dry_run,
        index_url,
        publish_url,
        packages,
        tag,
        tag_outcome,
        notes,
        complete,
        next_step,
    })
}

/// The upload endpoint for a simple API URL.
fn default_publish_url(index_url: &str) -> Option<String> {
    let url = url::Url::parse(index_url).ok()?;
    match url.host_str() {
        Some("pypi.org") => None,
        Some("test.pypi.org") => Some("https://test.pypi.org/legacy/".into()),
        _ => {
            let text = url.as_str();
            let trimmed = text.trim_end_matches('/');
            Some(
                trimmed
                    .strip_suffix("/simple")
                    .map_or_else(|| text.to_owned(), |base| format!("{base}/")),
            )
        }
    }
}

/// A reason the meta package must not go out: a pinned sub-package version missing on the index.
fn missing_pins(repo: &ReleaseRepo, index: &PackageIndex) -> Option<String> {
    let mut missing = Vec::new();
    for entry in repo.meta.dependencies() {
        let (Some(package), Some(pin)) = (
            repo.package_named(entry.requirement.name()),
            entry.requirement.exact_pin(),
        ) else {
            continue;
        };
        match index.versions(package.name()) {
            Ok(versions) if versions.iter().any(|v| version::same(v, pin)) => {}
            Ok(_) => missing.push(format!("{}=={pin}", package.name())),
            Err(err) => missing.push(format!("{}=={pin} ({})", package.name(), error_chain(&err))),
        }
    }
    missing.dedup();
    (!missing.is_empty()).then(|| {
        format!(
            "not published because pinned versions are not on the index: {}",
            missing.join(", ")
        )
    })
}

struct Uploader<'a> {
    uv: &'a Uv,
    index: &'a PackageIndex,
    publish_url: Option<&'a str>,
    credentials: Option<&'a PublishCredentials>,
    dry_run: bool,
    reporter: &'a dyn Reporter,
}

impl Uploader<'_> {
    /// Publish one package folder unless its version is complete on the index.
    fn publish_one(&self, name: &str, version: &str, dir: &Path) -> PackagePublish {
        let mut record = PackagePublish {
            package: name.to_owned(),
            dir: None,
            role: PackageRole::Sub,
            version: version.to_owned(),
            changed: false,
            outcome: PublishOutcome::Failed,
            files: Vec::new(),
            error: None,
        };
        match self.try_publish(name, version, dir) {
            Ok((outcome, files)) => {
                record.outcome = outcome;
                record.files = files;
            }
            Err(err) => {
                self.reporter
                    .warning(&format!("{name} {version}: {}", error_chain(&err)));
                record.error = Some(error_chain(&err));
            }
        }
        record
    }

    fn try_publish(
        &self,
        name: &str,
        version: &str,
        dir: &Path,
    ) -> Result<(PublishOutcome, Vec<String>), ReleaseError> {
        let on_index: Vec<DistFile> = self
            .index
            .files(name)?
            .into_iter()
            .filter(|f| version::same(&f.version, version))
            .collect();
        let complete = [DistKind::Wheel, DistKind::Sdist]
            .iter()
            .all(|kind| on_index.iter().any(|f| f.kind == *kind));
        if complete {
            self.reporter
                .status("Skipped", &format!("{name} {version} (already on the index)"));
            return Ok((PublishOutcome::AlreadyOnIndex, Vec::new()));
        }
        if self.dry_run {
            return Ok((PublishOutcome::WouldPublish, Vec::new()));
        }
        let out_dir = tempfile::Builder::new()
            .prefix("comfydock-release-build-")
            .tempdir()
            .map_err(ReleaseError::TempDir)?;
        self.reporter.status("Building", &format!("{name} {version}"));
        let mut build_cmd = build_command(self.uv, dir);
        build_cmd.arg("--out-dir").arg(out_dir.path()).arg(".");
        run_checked(&mut build_cmd).map_err(|source| ReleaseError::Build {
            path: dir.to_owned(),
            source: Box::new(source),
        })?;
        let built = built_files(out_dir.path())?;
        let to_upload: Vec<&PathBuf> = built
            .iter()
            .filter(|path| {
                let file_name = path.file_name().unwrap_or_default().to_string_lossy();
                !on_index.iter().any(|f| f.filename == file_name)
            })
            .collect();
        if to_upload.is_empty() {
            return Ok((PublishOutcome::AlreadyOnIndex, Vec::new()));
        }
        self.reporter.status("Uploading", &format!("{name} {version}"));
        let mut upload = self.uv.command();
        upload.arg("publish").arg("--check-url").arg(self.index.url());
        if let Some(url) = self.publish_url {
            upload.arg("--publish-url").arg(url);
        }
        if let Some(credentials) = self.credentials {
            upload
                .env("UV_PUBLISH_USERNAME", &credentials.username)
                .env("UV_PUBLISH_PASSWORD", &credentials.password);
        }
        upload.args(&to_upload).current_dir(dir);
        run_checked(&mut upload).map_err(|source| ReleaseError::Upload {
            package: name.to_owned(),
            version: version.to_owned(),
            url: self.publish_url.unwrap_or("PyPI").to_owned(),
            source: Box::new(source),
        })?;
        self.reporter.status("Published", &format!("{name} {version}"));
        Ok((
            PublishOutcome::Published,
            to_upload
                .iter()
                .map(|p| p.file_name().unwrap_or_default().to_string_lossy().into_owned())
                .collect(),
        ))
    }
}

fn built_files(dir: &Path) -> Result<Vec<PathBuf>, ReleaseError> {
    let entries = fs_err::read_dir(dir).map_err(|source| ReleaseError::Read {
        path: dir.to_owned(),
        source,
    })?;
    let mut files = Vec::new();
    for entry in entries {
        let path = entry
            .map_err(|source| ReleaseError::Read {
                path: dir.to_owned(),
                source,
            })?
            .path();
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        if name.ends_with(".whl") || name.ends_with(".tar.gz") {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derives_the_upload_endpoint() {
        assert_eq!(default_publish_url("https://pypi.org/simple/"), None);
        assert_eq!(
            default_publish_url("http://127.0.0.1:8080/simple/").as_deref(),
            Some("http://127.0.0.1:8080/")
        );
        assert_eq!(
            default_publish_url("https://example.invalid/repo/simple").as_deref(),
            Some("https://example.invalid/repo/")
        );
        assert_eq!(
            default_publish_url("https://test.pypi.org/simple/").as_deref(),
            Some("https://test.pypi.org/legacy/")
        );
    }
}

//! `release validate`: everything that must hold before a release can ship, one problem per line.
//!
//! - every template of `templates/index.json` has its workflow and first thumbnail in
//!   `templates/`, is a valid ComfyUI workflow, and sits in exactly one bundle;
//! - every bundle entry exists and every bundle's package exists;
//! - every asset of a template (`templates/<name>-N.<ext>`, the sample inputs it uses from
//!   `input/`) is inside the package its bundle maps to, with the same content — the
//!   nano banana check;
//! - with `manifest` configured, every template of the index is in core's manifest, in its
//!   bundle, with every asset file and its SHA-256 (after the sync command ran);
//! - a version already on the index holds the local content (see [`crate::published`]);
//! - the meta package pins every sub-package with `==` at its local version, and each pinned
//!   version either exists on the index or is newer than everything there (about to be published).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use comfydock_foundation::package_name;
use comfydock_foundation::reporter::Reporter;
use comfydock_foundation::uv::Uv;
use comfydock_workflow::{AnalysisOptions, FileLocation, WorkflowDocument, analyze};
use sha2::{Digest, Sha256};

use crate::catalog::is_asset_of;
use crate::error::{ReleaseError, error_chain};
use crate::git_repo::RepoGit;
use crate::layout::{BUNDLES_FILE, INDEX_FILE, INPUT_DIR, META_PYPROJECT, PACKAGES_DIR, TEMPLATES_DIR};
use crate::package_index::PackageIndex;
pub use crate::problems::{Problem, ProblemKind, ValidationReport};
use crate::published::{PublishedContent, compare_with_index, summarize};
use crate::repo::{ReleaseRepo, RevisionView, SubPackage};
use crate::status::compute;
use crate::sync::run_sync;
use crate::version;

/// Options of [`validate`].
#[derive(Debug, Clone, Default)]
pub struct ValidateOptions {
    /// The simple API of the index to check pinned versions against; `None`: the configured
    /// `index-url`, else PyPI.
    pub index_url: Option<String>,
    /// Skip every check that asks the index.
    pub offline: bool,
    /// Do not run the configured `sync-command` first.
    pub skip_sync: bool,
    /// Build every package whose version is on the index and compare its content with what
    /// the index holds (see [`crate::published`]); `None` skips that check.
    pub content_check: Option<Uv>,
}

/// Check the repository at `repo_root` for everything a release needs.
pub fn validate(
    repo_root: &Path,
    options: &ValidateOptions,
    reporter: &dyn Reporter,
) -> Result<ValidationReport, ReleaseError> {
    let (repo, git, synced) = load_synced(repo_root, !options.skip_sync, reporter)?;
    let index = if options.offline {
        None
    } else {
        Some(PackageIndex::new(&repo.index_url(options.index_url.as_deref()))?)
    };
    let since = git.newest_release_tag(None)?;
    let content = index.as_ref().zip(options.content_check.as_ref());
    let mut report = validate_repo(&repo, &git, since.as_deref(), index.as_ref(), content, reporter)?;
    report_sync_changes(&repo, &synced, &mut report);
    Ok(report)
}

/// Load the repository, run its sync command (when configured and wanted) and load it again,
/// so everything after sees the generated files; also returns the files the sync changed.
fn load_synced(
    repo_root: &Path,
    sync: bool,
    reporter: &dyn Reporter,
) -> Result<(ReleaseRepo, RepoGit, Vec<String>), ReleaseError> {
    let repo = ReleaseRepo::load(repo_root)?;
    let git = RepoGit::open(repo.root())?;
    if !sync || repo.config.sync_command.is_none() {
        return Ok((repo, git, Vec::new()));
    }
    let changed = run_sync(&repo, &git, reporter)?;
    Ok((ReleaseRepo::load(repo.root())?, git, changed))
}

/// A file the sync command rewrote was stale in the working tree: what would ship differs from
/// what is committed (a stale manifest, a hand-copied asset).
pub(crate) fn report_sync_changes(repo: &ReleaseRepo, changed: &[String], report: &mut ValidationReport) {
    let command = repo.config.sync_command.as_deref().unwrap_or_default();
    for path in changed {
        push(
            report,
            ProblemKind::SyncChangedFile,
            path.clone(),
            format!(
                "the sync command `{command}` rewrote it, so the committed version is out of date; review and commit it (`git add -A && git commit -m \"Sync\"`)"
            ),
        );
    }
}

/// Validate `repo`; `since` is the last release tag (the reference for "was it bumped?").
pub(crate) fn validate_repo(
    repo: &ReleaseRepo,
    git: &RepoGit,
    since: Option<&str>,
    index: Option<&PackageIndex>,
    content: Option<(&PackageIndex, &Uv)>,
    reporter: &dyn Reporter,
) -> Result<ValidationReport, ReleaseError> {
    let mut report = ValidationReport {
        index_url: index.map(|i| i.url().to_owned()),
        packages_checked: repo.packages.len(),
        ..ValidationReport::default()
    };
    reporter.status("Checking", "templates, bundles and package assets");
    check_catalog(repo, &mut report)?;
    reporter.status("Checking", "versions against the last release");
    if let Some(since) = since {
        check_release_state(repo, git, since, &mut report)?;
    }
    reporter.status("Checking", "meta package pins");
    check_pins(repo, index, &mut report);
    if let Some((index, uv)) = content {
        reporter.status("Checking", "package content against the index");
        check_published_content(repo, index, uv, &mut report, reporter)?;
        report.content_checked = true;
    }
    Ok(report)
}

/// A version already on the index must hold the local content, or the local content can never
/// ship under it (the partial-release trap): every such package is built and compared.
fn check_published_content(
    repo: &ReleaseRepo,
    index: &PackageIndex,
    uv: &Uv,
    report: &mut ValidationReport,
    reporter: &dyn Reporter,
) -> Result<(), ReleaseError> {
    let mut targets: Vec<(String, String, PathBuf, Option<&str>)> = repo
        .packages
        .iter()
        .map(|p| {
            (
                p.name().to_owned(),
                p.version().to_owned(),
                repo.root().join(p.rel_path()),
                Some(p.dir.as_str()),
            )
        })
        .collect();
    targets.push((
        repo.meta.name().to_owned(),
        repo.meta.version().to_owned(),
        repo.root().to_owned(),
        None,
    ));
    for (name, version, dir, package_dir) in targets {
        let subject =
            package_dir.map_or_else(|| META_PYPROJECT.to_owned(), |d| format!("{PACKAGES_DIR}/{d}"));
        match compare_with_index(uv, index, &name, &version, &dir, reporter) {
            Ok(PublishedContent::Differs { changes }) => {
                let fix = match package_dir {
                    Some(d) if repo.config.is_frozen(d) => {
                        format!(
                            "`comfydock release bump --allow-frozen {d}` (it is frozen: better revert the change)"
                        )
                    }
                    Some(_) => "`comfydock release bump`".to_owned(),
                    None => format!(
                        "`comfydock release bump --meta-version {}`",
                        version::suggest_next(&version).unwrap_or_else(|| "<version>".into())
                    ),
                };
                push(
                    report,
                    ProblemKind::PublishedContentDiffers,
                    subject,
                    format!(
                        "{name} {version} is on {} with other content ({}); a version is published once, so this content needs a new one: run {fix}",
                        index.url(),
                        summarize(&changes)
                    ),
                );
            }
            Ok(PublishedContent::Same | PublishedContent::NotOnIndex) => {}
            Err(err @ (ReleaseError::IndexRequest { .. } | ReleaseError::IndexStatus { .. })) => {
                push(report, ProblemKind::IndexQueryFailed, subject, error_chain(&err));
            }
            Err(err) => return Err(err),
        }
    }
    Ok(())
}

/// Changed packages must carry a version other than the released one, or their new content
/// would never reach users (pip keeps the old files under the old version).
fn check_release_state(
    repo: &ReleaseRepo,
    git: &RepoGit,
    since: &str,
    report: &mut ValidationReport,
) -> Result<(), ReleaseError> {
    let status = compute(repo, git, Some(since))?;
    let released = RevisionView::read(git, repo, since)?;
    for package in &status.packages {
        let why = package
            .reasons
            .first()
            .map(|r| r.message.clone())
            .unwrap_or_default();
        match &package.dir {
            Some(dir) => {
                let unchanged_version = released
                    .package_versions
                    .get(dir)
                    .is_some_and(|old| version::same(old, &package.version));
                if unchanged_version && repo.config.is_frozen(dir) {
                    push(
                        report,
                        ProblemKind::FrozenPackageChanged,
                        format!("{PACKAGES_DIR}/{dir}"),
                        format!(
                            "{} is frozen but changed since {since} ({why}); put new templates in an active bundle and revert this change, or raise it with `comfydock release bump --allow-frozen {dir}`",
                            package.package
                        ),
                    );
                } else if unchanged_version {
                    push(
                        report,
                        ProblemKind::PackageNotBumped,
                        format!("{PACKAGES_DIR}/{dir}"),
                        format!(
                            "{} changed since {since} ({why}) but is still at {}, the released version; run `comfydock release bump`",
                            package.package, package.version
                        ),
                    );
                }
            }
            None => {
                if released.meta_version.as_ref().is_some_and(|old| {
                    version::compare(&package.version, old) != Some(std::cmp::Ordering::Greater)
                }) {
                    push(
                        report,
                        ProblemKind::MetaVersionNotRaised,
                        META_PYPROJECT,
                        format!(
                            "the meta package {} is still at {} although packages changed since {since}; raise it with `comfydock release bump --meta-version {}`",
                            package.package,
                            package.version,
                            version::suggest_next(&package.version).unwrap_or_else(|| "<version>".into())
                        ),
                    );
                }
            }
        }
    }
    Ok(())
}

fn push(
    report: &mut ValidationReport,
    kind: ProblemKind,
    subject: impl Into<String>,
    message: impl Into<String>,
) {
    report.problems.push(Problem {
        kind,
        subject: subject.into(),
        message: message.into(),
    });
}

fn check_catalog(repo: &ReleaseRepo, report: &mut ValidationReport) -> Result<(), ReleaseError> {
    let templates_dir = repo.root().join(TEMPLATES_DIR);
    let template_files = list_files(&templates_dir)?;
    let Some(bundles) = &repo.bundles else {
        push(
            report,
            ProblemKind::MissingBundles,
            BUNDLES_FILE,
            "the file is missing",
        );
        return Ok(());
    };
    let Some(index) = &repo.index else {
        push(
            report,
            ProblemKind::MissingIndex,
            INDEX_FILE,
            "the file is missing",
        );
        return Ok(());
    };
    report.templates_checked = index.templates.len();
    report.bundles_checked = bundles.iter().count();

    // Bundles: packages exist, entries exist.
    let mut package_files: HashMap<String, PackageFiles> = HashMap::new();
    for (bundle, names) in bundles.iter() {
        let dir = repo.package_dir_of_bundle(bundle);
        match repo.package(&dir) {
            Some(package) => {
                if !package_files.contains_key(&dir) {
                    package_files.insert(
                        dir.clone(),
                        PackageFiles::scan(&repo.root().join(package.rel_path()))?,
                    );
                }
            }
            None => push(
                report,
                ProblemKind::BundlePackageMissing,
                format!("bundle {bundle}"),
                format!(
                    "its package {PACKAGES_DIR}/{dir} does not exist (no {PACKAGES_DIR}/{dir}/pyproject.toml)"
                ),
            ),
        }
        for name in names {
            if !template_files.contains(&format!("{name}.json")) {
                push(
                    report,
                    ProblemKind::BundleTemplateMissing,
                    format!("bundle {bundle}"),
                    format!("lists `{name}` but {TEMPLATES_DIR}/{name}.json does not exist"),
                );
            }
        }
    }

    // Index entries: files, thumbnail, workflow validity, exactly one bundle.
    let analysis_options = AnalysisOptions::default();
    let mut seen = BTreeSet::new();
    let mut node_inputs: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for template in &index.templates {
        let name = &template.name;
        if !seen.insert(name.clone()) {
            push(
                report,
                ProblemKind::DuplicateTemplate,
                format!("template {name}"),
                format!("listed more than once in {INDEX_FILE}"),
            );
            continue;
        }
        let json_rel = format!("{TEMPLATES_DIR}/{name}.json");
        if template_files.contains(&format!("{name}.json")) {
            let path = repo.root().join(&json_rel);
            let text = fs_err::read_to_string(&path).map_err(|source| ReleaseError::Read { path, source })?;
            match check_workflow(&text, &analysis_options) {
                Ok(inputs) => {
                    node_inputs.insert(name.clone(), inputs);
                }
                Err(message) => push(report, ProblemKind::InvalidWorkflow, json_rel.clone(), message),
            }
        } else {
            push(
                report,
                ProblemKind::TemplateFileMissing,
                format!("template {name}"),
                format!("{json_rel} does not exist"),
            );
        }
        let thumbnail = template
            .media_subtype
            .as_ref()
            .map(|ext| format!("{name}-1.{ext}"));
        let has_thumbnail = match &thumbnail {
            Some(file) => template_files.contains(file),
            None => template_files
                .iter()
                .any(|f| f.starts_with(&format!("{name}-1."))),
        };
        if !has_thumbnail {
            push(
                report,
                ProblemKind::ThumbnailMissing,
                format!("template {name}"),
                format!(
                    "{TEMPLATES_DIR}/{} does not exist",
                    thumbnail.unwrap_or_else(|| format!("{name}-1.<ext>"))
                ),
            );
        }
        match bundles.bundles_of(name).as_slice() {
            [] => push(
                report,
                ProblemKind::TemplateNotInBundle,
                format!("template {name}"),
                format!("no bundle of {BUNDLES_FILE} lists it, so no package ships its assets"),
            ),
            [_] => {}
            several => push(
                report,
                ProblemKind::TemplateInSeveralBundles,
                format!("template {name}"),
                format!("listed in several bundles: {}", several.join(", ")),
            ),
        }
        for file in &template.input_files {
            if !repo.root().join(INPUT_DIR).join(file).is_file() {
                push(
                    report,
                    ProblemKind::InputFileMissing,
                    format!("template {name}"),
                    format!("its input {INPUT_DIR}/{file} (index.json io.inputs) does not exist"),
                );
            }
        }
    }

    // Assets: every template file and used input is inside the bundle's package.
    for (bundle, names) in bundles.iter() {
        let dir = repo.package_dir_of_bundle(bundle);
        let (Some(package), Some(files)) = (repo.package(&dir), package_files.get(&dir)) else {
            continue;
        };
        for name in names.iter().filter(|n| !repo.config.is_json_only_entry(n)) {
            let mut assets: Vec<String> = template_files
                .iter()
                .filter(|f| is_asset_of(f, name))
                .map(|f| format!("{TEMPLATES_DIR}/{f}"))
                .collect();
            let mut inputs: BTreeSet<&str> = BTreeSet::new();
            if !repo.config.ship_inputs {
                // Served from the repository: their existence is checked above, not their copy.
            } else if let Some(entry) = index.templates.iter().find(|t| &t.name == name) {
                inputs.extend(entry.input_files.iter().map(String::as_str));
            }
            if repo.config.ship_inputs
                && let Some(used) = node_inputs.get(name)
            {
                inputs.extend(used.iter().map(String::as_str));
            }
            for input in inputs {
                if repo.root().join(INPUT_DIR).join(input).is_file() {
                    assets.push(format!("{INPUT_DIR}/{input}"));
                }
            }
            for asset in assets {
                check_asset(repo, package, bundle, name, files, &asset, report)?;
            }
        }
    }

    check_logos(repo, report)?;
    check_manifest(repo, index, bundles, &template_files, report)?;

    // The JSON package, when there is one, ships every template workflow.
    if let Some(json_dir) = repo.json_package()
        && let Some(json_package) = repo.package(json_dir)
    {
        let files = PackageFiles::scan(&repo.root().join(json_package.rel_path()))?;
        for template in &index.templates {
            let file = format!("{}.json", template.name);
            if template_files.contains(&file) && !files.by_name.contains_key(&file) {
                push(
                    report,
                    ProblemKind::AssetMissingFromPackage,
                    format!("{TEMPLATES_DIR}/{file}"),
                    format!(
                        "not inside {} (the package that ships template JSON)",
                        json_package.rel_path()
                    ),
                );
            }
        }
    }
    Ok(())
}

/// Core's manifest (`manifest` in the config) is what the runtime looks templates up in: every
/// template of the index must be there, in its bundle, with every asset file and its SHA-256.
fn check_manifest(
    repo: &ReleaseRepo,
    index: &crate::catalog::TemplateIndex,
    bundles: &crate::catalog::Bundles,
    template_files: &BTreeSet<String>,
    report: &mut ValidationReport,
) -> Result<(), ReleaseError> {
    let Some(rel) = repo.config.manifest.as_deref() else {
        return Ok(());
    };
    let fix = repo.config.sync_command.as_deref().map_or_else(
        || "regenerate it and commit it".to_owned(),
        |command| format!("run `{command}` and commit the manifest"),
    );
    let path = repo.root().join(rel);
    if !path.is_file() {
        push(
            report,
            ProblemKind::ManifestMissing,
            rel,
            format!("core's manifest does not exist; {fix}"),
        );
        return Ok(());
    }
    let text = fs_err::read_to_string(&path).map_err(|source| ReleaseError::Read {
        path: path.clone(),
        source,
    })?;
    let manifest = Manifest::parse(&path, &text)?;
    for template in &index.templates {
        let name = &template.name;
        let Some(entry) = manifest.templates.get(name) else {
            push(
                report,
                ProblemKind::ManifestTemplateMissing,
                format!("template {name}"),
                format!(
                    "not in {rel}, so the installed package raises \"Template '{name}' not found in manifest\"; {fix}"
                ),
            );
            continue;
        };
        if let [bundle] = bundles.bundles_of(name).as_slice()
            && entry.bundle.as_deref().is_some_and(|b| b != *bundle)
        {
            push(
                report,
                ProblemKind::ManifestBundleMismatch,
                format!("template {name}"),
                format!(
                    "{rel} puts it in bundle `{}` but {BUNDLES_FILE} in `{bundle}`; {fix}",
                    entry.bundle.as_deref().unwrap_or_default()
                ),
            );
        }
        for file in template_files.iter().filter(|f| is_asset_of(f, name)) {
            let asset = format!("{TEMPLATES_DIR}/{file}");
            match entry.assets.get(file.as_str()) {
                None => push(
                    report,
                    ProblemKind::ManifestAssetMissing,
                    asset,
                    format!("asset of template `{name}` is not listed in {rel}; {fix}"),
                ),
                Some(Some(listed)) => {
                    let source = repo.root().join(&asset);
                    let actual = hex::encode(Sha256::digest(read_bytes(&source)?));
                    if !listed.eq_ignore_ascii_case(&actual) {
                        push(
                            report,
                            ProblemKind::ManifestAssetOutdated,
                            asset,
                            format!("{rel} lists another SHA-256 for this asset of `{name}`; {fix}"),
                        );
                    }
                }
                Some(None) => {}
            }
        }
    }
    Ok(())
}

/// The parts of core's `manifest.json` the release checks: template id → bundle and assets
/// (file name → SHA-256 when listed).
struct Manifest {
    templates: HashMap<String, ManifestTemplate>,
}

struct ManifestTemplate {
    bundle: Option<String>,
    assets: HashMap<String, Option<String>>,
}

impl Manifest {
    fn parse(path: &Path, text: &str) -> Result<Self, ReleaseError> {
        let value: serde_json::Value = serde_json::from_str(text).map_err(|source| ReleaseError::Json {
            path: path.to_owned(),
            source,
        })?;
        let entries = value
            .get("templates")
            .and_then(serde_json::Value::as_array)
            .ok_or_else(|| ReleaseError::Malformed {
                path: path.to_owned(),
                message: "expected an object with a `templates` array".into(),
            })?;
        let str_of = |v: &serde_json::Value, key: &str| {
            v.get(key).and_then(serde_json::Value::as_str).map(str::to_owned)
        };
        let mut templates = HashMap::new();
        for entry in entries {
            let Some(id) = str_of(entry, "id").or_else(|| str_of(entry, "name")) else {
                continue;
            };
            let assets = entry
                .get("assets")
                .and_then(serde_json::Value::as_array)
                .map(|assets| {
                    assets
                        .iter()
                        .filter_map(|a| Some((str_of(a, "filename")?, str_of(a, "sha256"))))
                        .collect()
                })
                .unwrap_or_default();
            templates.insert(
                id,
                ManifestTemplate {
                    bundle: str_of(entry, "bundle"),
                    assets,
                },
            );
        }
        Ok(Self { templates })
    }
}

/// Every provider logo is inside the logo package with the same content.
fn check_logos(repo: &ReleaseRepo, report: &mut ValidationReport) -> Result<(), ReleaseError> {
    let Some((logo_dir, logo_package)) = repo.config.logos() else {
        return Ok(());
    };
    let Some(package) = repo.package(logo_package) else {
        push(
            report,
            ProblemKind::BundlePackageMissing,
            format!("logo-package {logo_package}"),
            format!("{PACKAGES_DIR}/{logo_package} (`logo-package`) is not a package"),
        );
        return Ok(());
    };
    let files = PackageFiles::scan(&repo.root().join(package.rel_path()))?;
    for logo in list_files(&repo.root().join(logo_dir))? {
        let rel = format!("{logo_dir}/{logo}");
        match find_copy(&repo.root().join(&rel), files.by_name.get(&logo))? {
            CopyState::Missing => push(
                report,
                ProblemKind::LogoMissingFromPackage,
                rel,
                format!(
                    "logo is not inside {}, the package that ships logos",
                    package.rel_path()
                ),
            ),
            CopyState::Differs(_) => push(
                report,
                ProblemKind::LogoOutdatedInPackage,
                rel,
                format!("logo differs from its copy in {}", package.rel_path()),
            ),
            CopyState::Same => {}
        }
    }
    Ok(())
}

enum CopyState<'a> {
    Missing,
    Same,
    /// No copy has the same bytes; the first copy.
    Differs(&'a Path),
}

/// Whether one of `copies` has the content of `source`.
fn find_copy<'a>(source: &Path, copies: Option<&'a Vec<PathBuf>>) -> Result<CopyState<'a>, ReleaseError> {
    let Some(copies) = copies.filter(|c| !c.is_empty()) else {
        return Ok(CopyState::Missing);
    };
    let size = file_size(source)?;
    let mut wanted: Option<Vec<u8>> = None;
    for copy in copies {
        // Sizes first: most assets are media files, read them only when they may be equal.
        if file_size(copy)? != size {
            continue;
        }
        if wanted.is_none() {
            wanted = Some(read_bytes(source)?);
        }
        if wanted.as_deref() == Some(read_bytes(copy)?.as_slice()) {
            return Ok(CopyState::Same);
        }
    }
    Ok(CopyState::Differs(&copies[0]))
}

fn check_asset(
    repo: &ReleaseRepo,
    package: &SubPackage,
    bundle: &str,
    template: &str,
    files: &PackageFiles,
    asset: &str,
    report: &mut ValidationReport,
) -> Result<(), ReleaseError> {
    let file_name = asset.rsplit('/').next().unwrap_or(asset);
    let Some(copies) = files.by_name.get(file_name) else {
        push(
            report,
            ProblemKind::AssetMissingFromPackage,
            asset,
            format!(
                "asset of template `{template}` (bundle {bundle}) is not inside {}; {}",
                package.rel_path(),
                repo.config.sync_command.as_deref().map_or_else(
                    || format!("add it there so `{}` ships it", package.name()),
                    |command| format!("run `{command}`, which puts it there"),
                )
            ),
        );
        return Ok(());
    };
    if let CopyState::Differs(first) = find_copy(&repo.root().join(asset), Some(copies))? {
        let shown = first
            .strip_prefix(repo.root())
            .unwrap_or(first)
            .display()
            .to_string();
        push(
            report,
            ProblemKind::AssetOutdatedInPackage,
            asset,
            format!(
                "asset of template `{template}` differs from its copy {shown} in {}",
                package.rel_path()
            ),
        );
    }
    Ok(())
}

fn file_size(path: &Path) -> Result<u64, ReleaseError> {
    fs_err::metadata(path)
        .map(|m| m.len())
        .map_err(|source| ReleaseError::Read {
            path: path.to_owned(),
            source,
        })
}

fn read_bytes(path: &Path) -> Result<Vec<u8>, ReleaseError> {
    fs_err::read(path).map_err(|source| ReleaseError::Read {
        path: path.to_owned(),
        source,
    })
}

/// Parse a template as a workflow; on success, the input-folder files its nodes load.
fn check_workflow(text: &str, options: &AnalysisOptions) -> Result<BTreeSet<String>, String> {
    let document = WorkflowDocument::parse(text).map_err(|e| format!("not a valid workflow: {e}"))?;
    if let Some(ui) = document.as_ui() {
        let malformed = ui.graph().malformed_links();
        if !malformed.is_empty() {
            return Err(format!(
                "not a valid workflow: malformed links at positions {malformed:?} (expected [id, origin, slot, target, slot, type])"
            ));
        }
        if ui.as_map().get("models").is_some() {
            return Err("has a deprecated top-level `models` array; put model metadata in the loader node's properties.models".into());
        }
    }
    let analysis = analyze(&document, options).map_err(|e| format!("not a valid workflow: {e}"))?;
    Ok(analysis
        .file_inputs
        .into_iter()
        .filter(|f| f.location == FileLocation::Input && !f.disabled)
        .map(|f| f.value.replace('\\', "/"))
        .collect())
}

fn check_pins(repo: &ReleaseRepo, index: Option<&PackageIndex>, report: &mut ValidationReport) {
    for package in repo.packages.iter().filter(|p| repo.config.is_pinned(&p.dir)) {
        let entries: Vec<_> = repo
            .meta
            .dependencies()
            .iter()
            .filter(|d| {
                package_name::normalize(d.requirement.name()) == package_name::normalize(package.name())
            })
            .collect();
        let subject = format!("{META_PYPROJECT} {}", package.name());
        if entries.is_empty() {
            push(
                report,
                ProblemKind::SubPackageNotPinned,
                subject.clone(),
                format!(
                    "the meta package does not depend on {} ({}); add \"{}=={}\" to [project].dependencies",
                    package.name(),
                    package.rel_path(),
                    package.name(),
                    package.version()
                ),
            );
        }
        let mut pins = BTreeSet::new();
        for entry in entries {
            match entry.requirement.exact_pin() {
                None => push(
                    report,
                    ProblemKind::NotExactlyPinned,
                    subject.clone(),
                    format!(
                        "`{}` in {} is not an exact pin; asset packages need \"{}=={}\" (run `comfydock release bump`)",
                        entry.requirement.as_str(),
                        entry.location,
                        package.name(),
                        package.version()
                    ),
                ),
                Some(pin) => {
                    if !version::same(pin, package.version()) {
                        push(
                            report,
                            ProblemKind::PinMismatch,
                            subject.clone(),
                            format!(
                                "{} pins {pin} but {} is at {} (run `comfydock release bump`)",
                                entry.location,
                                package.rel_path(),
                                package.version()
                            ),
                        );
                    }
                    pins.insert(pin.to_owned());
                }
            }
        }
        let Some(index) = index else { continue };
        if pins.is_empty() {
            continue;
        }
        let published = match index.versions(package.name()) {
            Ok(versions) => versions,
            Err(err) => {
                push(
                    report,
                    ProblemKind::IndexQueryFailed,
                    subject.clone(),
                    error_chain(&err),
                );
                continue;
            }
        };
        for pin in pins {
            let on_index = published.iter().any(|v| version::same(v, &pin));
            let to_publish = version::same(&pin, package.version())
                && published
                    .iter()
                    .all(|v| version::compare(&pin, v) == Some(std::cmp::Ordering::Greater));
            if !on_index && !to_publish {
                let newest = published
                    .iter()
                    .max_by(|a, b| version::compare(a, b).unwrap_or(std::cmp::Ordering::Equal))
                    .cloned()
                    .unwrap_or_default();
                push(
                    report,
                    ProblemKind::PinnedVersionUnavailable,
                    subject.clone(),
                    format!(
                        "pinned version {pin} is not on {} and is not newer than what is there ({newest}), so it will never be published",
                        index.url()
                    ),
                );
            }
        }
    }
}

/// Files directly in a folder (names only).
fn list_files(dir: &Path) -> Result<BTreeSet<String>, ReleaseError> {
    if !dir.is_dir() {
        return Ok(BTreeSet::new());
    }
    let entries = fs_err::read_dir(dir).map_err(|source| ReleaseError::Read {
        path: dir.to_owned(),
        source,
    })?;
    let mut out = BTreeSet::new();
    for entry in entries {
        let entry = entry.map_err(|source| ReleaseError::Read {
            path: dir.to_owned(),
            source,
        })?;
        if entry.path().is_file() {
            out.insert(entry.file_name().to_string_lossy().into_owned());
        }
    }
    Ok(out)
}

/// Every file of a package folder by file name (build outputs and caches excluded).
struct PackageFiles {
    by_name: HashMap<String, Vec<PathBuf>>,
}

impl PackageFiles {
    fn scan(root: &Path) -> Result<Self, ReleaseError> {
        let mut by_name: HashMap<String, Vec<PathBuf>> = HashMap::new();
        let walker = walkdir::WalkDir::new(root).into_iter().filter_entry(|e| {
            let name = e.file_name().to_string_lossy();
            e.depth() == 0
                || !(name.starts_with('.')
                    || matches!(name.as_ref(), "dist" | "build" | "__pycache__" | "node_modules")
                    || name.ends_with(".egg-info"))
        });
        for entry in walker {
            let entry = entry.map_err(|err| ReleaseError::Read {
                path: err.path().unwrap_or(root).to_owned(),
                source: err.into(),
            })?;
            if entry.file_type().is_file() {
                by_name
                    .entry(entry.file_name().to_string_lossy().into_owned())
                    .or_default()
                    .push(entry.into_path());
            }
        }
        Ok(Self { by_name })
    }
}

//! `release status`: which packages the changes since the last release affect, and why.
//!
//! Mapping of a changed file to packages:
//! - root `pyproject.toml` → meta; `packages/<dir>/…` → that sub-package (or meta when `<dir>`
//!   is not a package, e.g. the meta package's own sources);
//! - configured `json-only` files → the JSON package only; `package-paths` → their package;
//!   files of the configured `logo-dir` → the logo package;
//! - `templates/<name>-N.<ext>` → the media package of every bundle listing `<name>` (now or at
//!   the reference); `templates/<name>.json` → the JSON package if there is one, else like assets;
//! - `bundles.json` → the media package of every bundle whose template list changed (and the
//!   JSON package if any);
//! - `input/<file>` → the media packages of the templates that use the file (nothing when
//!   `ship-inputs = false`: the frontend fetches inputs from the repository);
//! - meta is affected whenever a sub-package is, because it pins them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::Serialize;

use crate::catalog::{Bundles, template_of_file};
use crate::config::ReleaseConfig;
use crate::error::ReleaseError;
use crate::git_repo::{Change, RepoGit};
use crate::layout::{BUNDLES_FILE, INPUT_DIR, META_PYPROJECT, PACKAGES_DIR, TEMPLATES_DIR};
use crate::repo::{ReleaseRepo, RevisionView};

/// Options of [`status`].
#[derive(Debug, Clone, Default)]
pub struct StatusOptions {
    /// Compare against this revision instead of the newest `v*` tag reachable from HEAD.
    pub since: Option<String>,
}

/// Whether a package is the meta package or a sub-package.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PackageRole {
    Sub,
    Meta,
}

/// Why a package is affected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Cause {
    /// A file inside the package folder changed.
    PackageFile { path: String },
    /// A template file changed whose bundle ships in this package.
    TemplateFile {
        path: String,
        template: String,
        bundle: String,
    },
    /// A template JSON file changed (the JSON package ships them).
    TemplateJson { path: String },
    /// A sample input used by a template of this package's bundle changed.
    InputFile {
        path: String,
        template: String,
        bundle: String,
    },
    /// `bundles.json` added or removed templates of this package's bundle.
    BundleMembership {
        bundle: String,
        added: Vec<String>,
        removed: Vec<String>,
    },
    /// `bundles.json` changed (the JSON package ships it).
    BundlesFile,
    /// A file configured as `json-only` changed.
    JsonOnlyFile { path: String },
    /// A provider logo changed (the configured logo package ships them).
    LogoFile { path: String },
    /// The meta package's pyproject or sources changed.
    MetaFile { path: String },
    /// Sub-packages the meta package pins are affected.
    PinnedPackagesChanged { packages: Vec<String> },
}

impl std::fmt::Display for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::PackageFile { path } | Self::MetaFile { path } => write!(f, "{path} changed"),
            Self::TemplateFile {
                path,
                template,
                bundle,
            } => write!(
                f,
                "{path} changed: template `{template}` is in bundle `{bundle}`, whose assets this package ships"
            ),
            Self::TemplateJson { path } => {
                write!(f, "{path} changed: this package ships the template JSON files")
            }
            Self::InputFile {
                path,
                template,
                bundle,
            } => write!(
                f,
                "{path} changed: it is an input of template `{template}` in bundle `{bundle}`"
            ),
            Self::BundleMembership {
                bundle,
                added,
                removed,
            } => {
                write!(f, "{BUNDLES_FILE} changed bundle `{bundle}`:")?;
                if !added.is_empty() {
                    write!(f, " added {}", added.join(", "))?;
                }
                if !added.is_empty() && !removed.is_empty() {
                    f.write_str(";")?;
                }
                if !removed.is_empty() {
                    write!(f, " removed {}", removed.join(", "))?;
                }
                Ok(())
            }
            Self::BundlesFile => write!(f, "{BUNDLES_FILE} changed: this package ships it"),
            Self::JsonOnlyFile { path } => write!(
                f,
                "{path} changed: it ships in this package only (`json-only` in [tool.comfydock.release])"
            ),
            Self::LogoFile { path } => write!(f, "{path} changed: this package ships the logos"),
            Self::PinnedPackagesChanged { packages } => {
                write!(f, "it pins changed sub-packages: {}", packages.join(", "))
            }
        }
    }
}

/// A cause and its one-line explanation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reason {
    #[serde(flatten)]
    pub cause: Cause,
    pub message: String,
}

impl From<Cause> for Reason {
    fn from(cause: Cause) -> Self {
        let message = cause.to_string();
        Self { cause, message }
    }
}

/// A package the changes affect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AffectedPackage {
    /// Distribution name.
    pub package: String,
    /// Folder under `packages/`; `None` for the meta package.
    pub dir: Option<String>,
    pub role: PackageRole,
    /// Local version.
    pub version: String,
    pub reasons: Vec<Reason>,
}

/// A changed file and the packages it affects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChangedFile {
    pub path: String,
    pub change: Change,
    pub uncommitted: bool,
    /// Distribution names of the packages this file affects.
    pub packages: Vec<String>,
}

/// The result of [`status`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatusReport {
    /// The revision compared against (the last release tag, or `--since`); `None` before the
    /// first release, when every file counts as new.
    pub since: Option<String>,
    pub head: String,
    pub changed_files: Vec<ChangedFile>,
    /// Affected sub-packages by folder, then the meta package.
    pub packages: Vec<AffectedPackage>,
    /// Changed files that should belong to a package but do not (e.g. a template no bundle lists).
    pub warnings: Vec<String>,
}

impl StatusReport {
    /// The affected sub-packages' folders.
    pub fn affected_sub_packages(&self) -> impl Iterator<Item = &str> {
        self.packages.iter().filter_map(|p| p.dir.as_deref())
    }
}

/// Files changed since the last release tag (or `options.since`), mapped to affected packages.
pub fn status(repo_root: &Path, options: &StatusOptions) -> Result<StatusReport, ReleaseError> {
    let repo = ReleaseRepo::load(repo_root)?;
    let git = RepoGit::open(repo.root())?;
    let since = resolve_since(&git, options.since.as_deref())?;
    compute(&repo, &git, since.as_deref())
}

/// `since` as given (checked to exist), else the newest release tag.
pub(crate) fn resolve_since(git: &RepoGit, since: Option<&str>) -> Result<Option<String>, ReleaseError> {
    match since {
        Some(rev) => {
            git.resolve(rev)?;
            Ok(Some(rev.to_owned()))
        }
        None => git.newest_release_tag(None),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Target<'a> {
    Sub(&'a str),
    Meta,
}

pub(crate) fn compute(
    repo: &ReleaseRepo,
    git: &RepoGit,
    since: Option<&str>,
) -> Result<StatusReport, ReleaseError> {
    let old = since
        .map(|rev| RevisionView::read(git, repo, rev))
        .transpose()?
        .unwrap_or_default();
    let changes = git.changed_paths(since)?;
    let empty = Bundles::default();
    let new_bundles = repo.bundles.as_ref().unwrap_or(&empty);
    let old_bundles = old.bundles.as_ref().unwrap_or(&empty);
    let known = |name: &str| {
        new_bundles.contains(name)
            || old_bundles.contains(name)
            || repo.index.as_ref().is_some_and(|i| i.contains(name))
            || old.index.as_ref().is_some_and(|i| i.contains(name))
    };
    let json_package = repo.json_package();

    let mut reasons: BTreeMap<Target<'_>, Vec<Reason>> = BTreeMap::new();
    let mut warnings = Vec::new();
    let mut changed_files = Vec::new();
    for change in &changes {
        let path = change.path.as_str();
        let mut hits: Vec<(Target<'_>, Cause)> = Vec::new();
        if path == META_PYPROJECT {
            hits.push((Target::Meta, Cause::MetaFile { path: path.into() }));
        } else if repo.config.is_json_only(path) {
            match json_package.and_then(|dir| repo.package(dir)) {
                Some(json) => hits.push((Target::Sub(&json.dir), Cause::JsonOnlyFile { path: path.into() })),
                None => warnings.push(format!(
                    "{path}: configured as `json-only` but there is no JSON package (`json-package`)"
                )),
            }
        } else if let Some(dir) = repo.config.package_of_extra_path(path) {
            match repo.package(dir) {
                Some(package) => hits.push((
                    Target::Sub(&package.dir),
                    Cause::PackageFile { path: path.into() },
                )),
                None => warnings.push(format!(
                    "{path}: `package-paths` assigns it to {PACKAGES_DIR}/{dir}, which is not a package"
                )),
            }
        } else if let Some((logo_dir, logo_package)) = repo.config.logos()
            && path
                .strip_prefix(logo_dir)
                .is_some_and(|rest| rest.starts_with('/'))
        {
            match repo.package(logo_package) {
                Some(package) => {
                    hits.push((Target::Sub(&package.dir), Cause::LogoFile { path: path.into() }));
                }
                None => warnings.push(format!(
                    "{path}: `logo-package` is {PACKAGES_DIR}/{logo_package}, which is not a package"
                )),
            }
        } else if let Some(rest) = path.strip_prefix(&format!("{PACKAGES_DIR}/")) {
            let dir = rest.split('/').next().unwrap_or_default();
            match repo.package(dir) {
                Some(package) => hits.push((
                    Target::Sub(&package.dir),
                    Cause::PackageFile { path: path.into() },
                )),
                None => hits.push((Target::Meta, Cause::MetaFile { path: path.into() })),
            }
        } else if path == BUNDLES_FILE {
            for (bundle, added, removed) in membership_changes(&repo.config, old_bundles, new_bundles) {
                let dir = repo.package_dir_of_bundle(&bundle);
                match repo.package(&dir) {
                    Some(package) => hits.push((
                        Target::Sub(&package.dir),
                        Cause::BundleMembership {
                            bundle,
                            added,
                            removed,
                        },
                    )),
                    None => warnings.push(format!(
                        "{BUNDLES_FILE}: bundle `{bundle}` changed but its package {PACKAGES_DIR}/{dir} does not exist"
                    )),
                }
            }
            if let Some(json) = json_package.and_then(|dir| repo.package(dir)) {
                hits.push((Target::Sub(&json.dir), Cause::BundlesFile));
            }
        } else if let Some(file) = path.strip_prefix(&format!("{TEMPLATES_DIR}/"))
            && !file.contains('/')
        {
            let is_json = Path::new(file)
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("json"));
            let json_target = json_package.and_then(|dir| repo.package(dir)).filter(|_| is_json);
            if let Some(json) = json_target {
                hits.push((Target::Sub(&json.dir), Cause::TemplateJson { path: path.into() }));
            }
            match template_of_file(file, known) {
                // The JSON package ships workflow files; media packages ship the other assets.
                Some(_) if json_target.is_some() => {}
                Some(template) => {
                    let bundles = bundles_holding(&template, old_bundles, new_bundles);
                    if bundles.is_empty() {
                        warnings.push(format!(
                            "{path}: template `{template}` is in no bundle of {BUNDLES_FILE}, so no package ships it"
                        ));
                    }
                    for bundle in bundles {
                        push_bundle_hit(repo, &mut hits, &mut warnings, path, &bundle, |bundle| {
                            Cause::TemplateFile {
                                path: path.into(),
                                template: template.clone(),
                                bundle,
                            }
                        });
                    }
                }
                // The index files describe templates; their effect shows through bundles.
                None if !(file.starts_with("index") || is_json && json_package.is_some()) => {
                    warnings.push(format!(
                        "{path}: not a file of any template listed in {BUNDLES_FILE} or the index"
                    ));
                }
                None => {}
            }
        } else if path.starts_with(&format!("{TEMPLATES_DIR}/")) {
            // A sub-folder of templates/ (logos, say) that no configuration assigns.
            warnings.push(format!(
                "{path}: no package ships it; assign its folder with `logo-dir`/`logo-package` or `package-paths` in [tool.comfydock.release]"
            ));
        } else if let Some(file) = path.strip_prefix(&format!("{INPUT_DIR}/"))
            && repo.config.ship_inputs
        {
            let mut templates: BTreeSet<&str> = BTreeSet::new();
            for index in [repo.index.as_ref(), old.index.as_ref()].into_iter().flatten() {
                templates.extend(index.templates_using_input(file));
            }
            for template in templates {
                for bundle in bundles_holding(template, old_bundles, new_bundles) {
                    push_bundle_hit(repo, &mut hits, &mut warnings, path, &bundle, |bundle| {
                        Cause::InputFile {
                            path: path.into(),
                            template: template.to_owned(),
                            bundle,
                        }
                    });
                }
            }
        }
        let mut names: Vec<String> = Vec::new();
        for (target, cause) in hits {
            let name = target_name(repo, target);
            if !names.contains(&name) {
                names.push(name);
            }
            let entry = reasons.entry(target).or_default();
            let reason = Reason::from(cause);
            if !entry.contains(&reason) {
                entry.push(reason);
            }
        }
        changed_files.push(ChangedFile {
            path: change.path.clone(),
            change: change.change,
            uncommitted: change.uncommitted,
            packages: names,
        });
    }

    let changed_subs: Vec<String> = reasons
        .keys()
        .filter_map(|t| match t {
            Target::Sub(dir) => Some(target_name(repo, Target::Sub(dir))),
            Target::Meta => None,
        })
        .collect();
    if !changed_subs.is_empty() {
        reasons
            .entry(Target::Meta)
            .or_default()
            .push(Reason::from(Cause::PinnedPackagesChanged {
                packages: changed_subs,
            }));
    }
    let packages = reasons
        .into_iter()
        .map(|(target, reasons)| match target {
            Target::Sub(dir) => {
                let package = repo.package(dir).expect("targets are existing packages");
                AffectedPackage {
                    package: package.name().to_owned(),
                    dir: Some(package.dir.clone()),
                    role: PackageRole::Sub,
                    version: package.version().to_owned(),
                    reasons,
                }
            }
            Target::Meta => AffectedPackage {
                package: repo.meta.name().to_owned(),
                dir: None,
                role: PackageRole::Meta,
                version: repo.meta.version().to_owned(),
                reasons,
            },
        })
        .collect();
    Ok(StatusReport {
        since: since.map(str::to_owned),
        head: git.head()?,
        changed_files,
        packages,
        warnings,
    })
}

fn target_name(repo: &ReleaseRepo, target: Target<'_>) -> String {
    match target {
        Target::Sub(dir) => repo
            .package(dir)
            .map_or_else(|| dir.to_owned(), |p| p.name().to_owned()),
        Target::Meta => repo.meta.name().to_owned(),
    }
}

fn push_bundle_hit<'a>(
    repo: &'a ReleaseRepo,
    hits: &mut Vec<(Target<'a>, Cause)>,
    warnings: &mut Vec<String>,
    path: &str,
    bundle: &str,
    cause: impl FnOnce(String) -> Cause,
) {
    let dir = repo.package_dir_of_bundle(bundle);
    match repo.package(&dir) {
        Some(package) => hits.push((Target::Sub(&package.dir), cause(bundle.to_owned()))),
        None => warnings.push(format!(
            "{path}: bundle `{bundle}` maps to {PACKAGES_DIR}/{dir}, which is not a package"
        )),
    }
}

fn bundles_holding(template: &str, old: &Bundles, new: &Bundles) -> Vec<String> {
    let mut out: Vec<String> = new.bundles_of(template).into_iter().map(str::to_owned).collect();
    for bundle in old.bundles_of(template) {
        if !out.iter().any(|b| b == bundle) {
            out.push(bundle.to_owned());
        }
    }
    out
}

/// Per bundle (in either version): the templates added and removed (JSON-only entries such as
/// `index` ship in the JSON package, so they change no bundle's package).
fn membership_changes(
    config: &ReleaseConfig,
    old: &Bundles,
    new: &Bundles,
) -> Vec<(String, Vec<String>, Vec<String>)> {
    let mut names: Vec<&str> = new.iter().map(|(b, _)| b).collect();
    for (bundle, _) in old.iter() {
        if !names.contains(&bundle) {
            names.push(bundle);
        }
    }
    names
        .into_iter()
        .filter_map(|bundle| {
            let before = old.templates_of(bundle);
            let after = new.templates_of(bundle);
            let counts = |t: &&String| !config.is_json_only_entry(t);
            let added: Vec<String> = after
                .iter()
                .filter(|t| !before.contains(t))
                .filter(counts)
                .cloned()
                .collect();
            let removed: Vec<String> = before
                .iter()
                .filter(|t| !after.contains(t))
                .filter(counts)
                .cloned()
                .collect();
            (!added.is_empty() || !removed.is_empty()).then(|| (bundle.to_owned(), added, removed))
        })
        .collect()
}

//! The release repository model, read from the working tree or from a git revision.
//!
//! ```text
//! pyproject.toml            meta package (what users install), pins every sub-package with ==
//! packages/<dir>/pyproject.toml   one sub-package each (core, json, media bundles, ...)
//! templates/                <name>.json, <name>-N.<ext> thumbnails, index.json
//! input/                    sample inputs referenced by index.json `io.inputs`
//! bundles.json              bundle -> template names; bundle -> packages/<dir> by convention
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use comfydock_foundation::package_name;

use crate::catalog::{Bundles, TemplateIndex};
use crate::config::{DEFAULT_JSON_PACKAGE, ReleaseConfig};
use crate::error::ReleaseError;
use crate::git_repo::RepoGit;
use crate::layout::{BUNDLES_FILE, INDEX_FILE, META_PYPROJECT, PACKAGES_DIR};
use crate::pyproject::Pyproject;

/// A sub-package: `packages/<dir>/pyproject.toml`.
#[derive(Debug, Clone)]
pub struct SubPackage {
    /// The folder name under `packages/`.
    pub dir: String,
    pub pyproject: Pyproject,
}

impl SubPackage {
    /// The distribution name as written in its pyproject.
    pub fn name(&self) -> &str {
        self.pyproject.name()
    }

    /// The local version.
    pub fn version(&self) -> &str {
        self.pyproject.version()
    }

    /// `packages/<dir>`, relative to the repository root.
    pub fn rel_path(&self) -> String {
        format!("{PACKAGES_DIR}/{}", self.dir)
    }
}

/// The release repository as it is in the working tree.
#[derive(Debug, Clone)]
pub struct ReleaseRepo {
    root: PathBuf,
    pub meta: Pyproject,
    pub config: ReleaseConfig,
    /// Sub-packages sorted by folder name.
    pub packages: Vec<SubPackage>,
    /// `None` when `bundles.json` is missing.
    pub bundles: Option<Bundles>,
    /// `None` when `templates/index.json` is missing.
    pub index: Option<TemplateIndex>,
}

impl ReleaseRepo {
    /// Read the repository at `root` (made absolute, so every path derived from it stays valid
    /// whatever folder a subprocess runs in).
    pub fn load(root: &Path) -> Result<Self, ReleaseError> {
        let root = &std::path::absolute(root).map_err(|source| ReleaseError::Read {
            path: root.to_owned(),
            source,
        })?;
        let meta_path = root.join(META_PYPROJECT);
        if !meta_path.is_file() {
            return Err(ReleaseError::NotARepository(root.to_owned()));
        }
        let meta = Pyproject::read(&meta_path)?;
        let config = ReleaseConfig::from_table(&meta_path, meta.release_config())?;
        let mut packages = Vec::new();
        let packages_dir = root.join(PACKAGES_DIR);
        if packages_dir.is_dir() {
            let entries = fs_err::read_dir(&packages_dir).map_err(|source| ReleaseError::Read {
                path: packages_dir.clone(),
                source,
            })?;
            for entry in entries {
                let entry = entry.map_err(|source| ReleaseError::Read {
                    path: packages_dir.clone(),
                    source,
                })?;
                let pyproject = entry.path().join("pyproject.toml");
                if pyproject.is_file() {
                    packages.push(SubPackage {
                        dir: entry.file_name().to_string_lossy().into_owned(),
                        pyproject: Pyproject::read(&pyproject)?,
                    });
                }
            }
        }
        packages.sort_by(|a, b| a.dir.cmp(&b.dir));
        let bundles = read_optional(root, BUNDLES_FILE)?
            .map(|text| Bundles::parse(&root.join(BUNDLES_FILE), &text))
            .transpose()?;
        let index = read_optional(root, INDEX_FILE)?
            .map(|text| TemplateIndex::parse(&root.join(INDEX_FILE), &text))
            .transpose()?;
        Ok(Self {
            root: root.to_owned(),
            meta,
            config,
            packages,
            bundles,
            index,
        })
    }

    /// The absolute repository root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The sub-package in `packages/<dir>`.
    pub fn package(&self, dir: &str) -> Option<&SubPackage> {
        self.packages.iter().find(|p| p.dir == dir)
    }

    /// The sub-package whose distribution name normalises to the same name as `name`.
    pub fn package_named(&self, name: &str) -> Option<&SubPackage> {
        let wanted = package_name::normalize(name);
        self.packages
            .iter()
            .find(|p| package_name::normalize(p.name()) == wanted)
    }

    /// The package folder a bundle's assets ship in.
    pub fn package_dir_of_bundle(&self, bundle: &str) -> String {
        self.config.package_dir_of_bundle(bundle)
    }

    /// The index to check and publish to: `flag` when given, else the configured `index-url`,
    /// else PyPI.
    pub fn index_url(&self, flag: Option<&str>) -> String {
        flag.map(str::to_owned)
            .or_else(|| self.config.index_url.clone())
            .unwrap_or_else(|| crate::package_index::PYPI_SIMPLE_URL.to_owned())
    }

    /// The package that ships template JSON files: the configured one, else `packages/json`
    /// when it exists.
    pub fn json_package(&self) -> Option<&str> {
        match &self.config.json_package {
            Some(dir) => Some(dir.as_str()),
            None => self.package(DEFAULT_JSON_PACKAGE).map(|p| p.dir.as_str()),
        }
    }
}

fn read_optional(root: &Path, rel: &str) -> Result<Option<String>, ReleaseError> {
    let path = root.join(rel);
    if !path.is_file() {
        return Ok(None);
    }
    fs_err::read_to_string(&path)
        .map(Some)
        .map_err(|source| ReleaseError::Read { path, source })
}

/// What the repository looked like at a revision (the last release tag): what bump and the
/// release notes compare against.
#[derive(Debug, Clone, Default)]
pub struct RevisionView {
    pub rev: String,
    pub meta_version: Option<String>,
    /// Package folder → version at the revision (absent: the package did not exist).
    pub package_versions: BTreeMap<String, String>,
    pub bundles: Option<Bundles>,
    pub index: Option<TemplateIndex>,
}

impl RevisionView {
    /// Read the meta version, the versions of the current sub-packages, bundles and index at `rev`.
    pub fn read(git: &RepoGit, repo: &ReleaseRepo, rev: &str) -> Result<Self, ReleaseError> {
        let at = |rel: &str| -> PathBuf { PathBuf::from(format!("{rev}:{rel}")) };
        let meta_version = git
            .read_at(rev, META_PYPROJECT)?
            .map(|text| Pyproject::parse(&at(META_PYPROJECT), text))
            .transpose()?
            .map(|p| p.version().to_owned());
        let mut package_versions = BTreeMap::new();
        for package in &repo.packages {
            let rel = format!("{}/pyproject.toml", package.rel_path());
            if let Some(text) = git.read_at(rev, &rel)? {
                let old = Pyproject::parse(&at(&rel), text)?;
                package_versions.insert(package.dir.clone(), old.version().to_owned());
            }
        }
        let bundles = git
            .read_at(rev, BUNDLES_FILE)?
            .map(|text| Bundles::parse(&at(BUNDLES_FILE), &text))
            .transpose()?;
        let index = git
            .read_at(rev, INDEX_FILE)?
            .map(|text| TemplateIndex::parse(&at(INDEX_FILE), &text))
            .transpose()?;
        Ok(Self {
            rev: rev.to_owned(),
            meta_version,
            package_versions,
            bundles,
            index,
        })
    }
}

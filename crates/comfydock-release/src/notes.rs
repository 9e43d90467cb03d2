//! Release notes: per package, the templates added, changed and removed since the previous
//! release tag. They become the annotated tag's message.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::catalog::{Bundles, template_of_file};
use crate::error::ReleaseError;
use crate::git_repo::RepoGit;
use crate::layout::{INPUT_DIR, TEMPLATES_DIR};
use crate::repo::{ReleaseRepo, RevisionView};

/// The template changes shipped by one package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PackageNotes {
    pub package: String,
    pub version: String,
    pub added: Vec<String>,
    pub changed: Vec<String>,
    pub removed: Vec<String>,
}

/// The notes of one release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReleaseNotes {
    pub tag: String,
    pub previous_tag: Option<String>,
    pub meta_package: String,
    pub meta_version: String,
    pub packages: Vec<PackageNotes>,
}

impl ReleaseNotes {
    /// The notes as text (the tag message).
    pub fn to_text(&self) -> String {
        use std::fmt::Write as _;
        let mut out = format!(
            "Release {}: {} {}\n",
            self.tag, self.meta_package, self.meta_version
        );
        match &self.previous_tag {
            Some(previous) => {
                let _ = writeln!(out, "\nTemplate changes since {previous}:");
            }
            None => out.push_str("\nFirst release.\n"),
        }
        if self.packages.is_empty() {
            out.push_str("\nNo template changes.\n");
        }
        for package in &self.packages {
            let _ = writeln!(out, "\n{} {}", package.package, package.version);
            for (label, names) in [
                ("added", &package.added),
                ("changed", &package.changed),
                ("removed", &package.removed),
            ] {
                if !names.is_empty() {
                    let _ = writeln!(out, "- {label}: {}", names.join(", "));
                }
            }
        }
        out
    }
}

/// Templates added, changed and removed.
type TemplateChanges = (BTreeSet<String>, BTreeSet<String>, BTreeSet<String>);

/// Compute the notes for `tag` against `previous_tag` (none: everything is new).
pub fn release_notes(
    repo: &ReleaseRepo,
    git: &RepoGit,
    tag: &str,
    previous_tag: Option<&str>,
) -> Result<ReleaseNotes, ReleaseError> {
    let old = previous_tag
        .map(|rev| RevisionView::read(git, repo, rev))
        .transpose()?
        .unwrap_or_default();
    let empty = Bundles::default();
    let new_bundles = repo.bundles.as_ref().unwrap_or(&empty);
    let old_bundles = old.bundles.as_ref().unwrap_or(&empty);
    let known = |name: &str| new_bundles.contains(name) || old_bundles.contains(name);

    // Templates whose files (or inputs) changed.
    let mut touched: BTreeSet<String> = BTreeSet::new();
    if previous_tag.is_some() {
        for change in git.changed_paths(previous_tag)? {
            if let Some(file) = change.path.strip_prefix(&format!("{TEMPLATES_DIR}/"))
                && !file.contains('/')
                && let Some(template) = template_of_file(file, known)
            {
                touched.insert(template);
            } else if let Some(file) = change.path.strip_prefix(&format!("{INPUT_DIR}/")) {
                for index in [repo.index.as_ref(), old.index.as_ref()].into_iter().flatten() {
                    touched.extend(index.templates_using_input(file).map(str::to_owned));
                }
            }
        }
    }

    let mut by_package: BTreeMap<String, TemplateChanges> = BTreeMap::new();
    let mut bundle_names: Vec<&str> = new_bundles.iter().map(|(b, _)| b).collect();
    for (bundle, _) in old_bundles.iter() {
        if !bundle_names.contains(&bundle) {
            bundle_names.push(bundle);
        }
    }
    for bundle in bundle_names {
        let dir = repo.package_dir_of_bundle(bundle);
        let entry = by_package.entry(dir).or_default();
        let before = old_bundles.templates_of(bundle);
        let after = new_bundles.templates_of(bundle);
        for name in after {
            if previous_tag.is_none() || !before.contains(name) {
                entry.0.insert(name.clone());
            } else if touched.contains(name) {
                entry.1.insert(name.clone());
            }
        }
        for name in before {
            if !after.contains(name) {
                entry.2.insert(name.clone());
            }
        }
    }
    let packages = by_package
        .into_iter()
        .filter(|(_, (a, c, r))| !(a.is_empty() && c.is_empty() && r.is_empty()))
        .map(|(dir, (added, changed, removed))| {
            let (package, version) = repo.package(&dir).map_or_else(
                || (dir.clone(), String::new()),
                |p| (p.name().to_owned(), p.version().to_owned()),
            );
            PackageNotes {
                package,
                version,
                added: added.into_iter().collect(),
                changed: changed.into_iter().collect(),
                removed: removed.into_iter().collect(),
            }
        })
        .collect();
    Ok(ReleaseNotes {
        tag: tag.to_owned(),
        previous_tag: previous_tag.map(str::to_owned),
        meta_package: repo.meta.name().to_owned(),
        meta_version: repo.meta.version().to_owned(),
        packages,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_per_package_sections() {
        let notes = ReleaseNotes {
            tag: "v1.1.0".into(),
            previous_tag: Some("v1.0.0".into()),
            meta_package: "tmpl-meta".into(),
            meta_version: "1.1.0".into(),
            packages: vec![PackageNotes {
                package: "tmpl-media-api".into(),
                version: "0.1.1".into(),
                added: vec!["nano_banana".into()],
                changed: vec![],
                removed: vec!["old_one".into(), "older".into()],
            }],
        };
        assert_eq!(
            notes.to_text(),
            "Release v1.1.0: tmpl-meta 1.1.0\n\nTemplate changes since v1.0.0:\n\n\
             tmpl-media-api 0.1.1\n- added: nano_banana\n- removed: old_one, older\n"
        );
    }
}

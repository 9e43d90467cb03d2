//! Reading a `pyproject.toml` (name, version, dependencies) and rewriting version strings in
//! place.
//!
//! Parsing uses `toml_edit`'s span-preserving document; edits splice new string literals into
//! the original text at the spans of the values they replace, so everything else — comments,
//! spacing, quoting style, key order — is byte-for-byte unchanged.

use std::ops::Range;
use std::path::{Path, PathBuf};

use toml_edit::{Document, Item, Value};

use crate::error::ReleaseError;
use crate::requirement::Requirement;

/// One dependency string of `[project]`, with where it sits in the file.
#[derive(Debug, Clone)]
pub struct DependencyEntry {
    /// `dependencies` or `optional-dependencies.<extra>`.
    pub location: String,
    pub requirement: Requirement,
    span: Range<usize>,
}

/// A parsed `pyproject.toml`.
#[derive(Debug, Clone)]
pub struct Pyproject {
    path: PathBuf,
    text: String,
    name: String,
    version: String,
    version_span: Range<usize>,
    dependencies: Vec<DependencyEntry>,
    release_config: Option<toml_edit::Table>,
}

impl Pyproject {
    /// Read and parse `path`.
    pub fn read(path: &Path) -> Result<Self, ReleaseError> {
        let text = fs_err::read_to_string(path).map_err(|source| ReleaseError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(path, text)
    }

    /// Parse `text` as the content of `path` (which is only used in messages).
    pub fn parse(path: &Path, text: String) -> Result<Self, ReleaseError> {
        let doc = Document::parse(text.as_str()).map_err(|source| ReleaseError::Toml {
            path: path.to_owned(),
            source,
        })?;
        let invalid = |message: String| ReleaseError::Pyproject {
            path: path.to_owned(),
            message,
        };
        let project = doc
            .get("project")
            .and_then(Item::as_table_like)
            .ok_or_else(|| invalid("it has no [project] table".into()))?;
        let name = project
            .get("name")
            .and_then(Item::as_str)
            .ok_or_else(|| invalid("[project] has no `name` string".into()))?
            .to_owned();
        let version_value = project.get("version").and_then(Item::as_value);
        let Some(Value::String(version)) = version_value else {
            return Err(invalid(
                "[project] has no static `version` string (dynamic versions cannot be bumped)".into(),
            ));
        };
        let version_span = version
            .span()
            .ok_or_else(|| invalid("could not locate [project].version".into()))?;
        let mut dependencies = Vec::new();
        if let Some(array) = project.get("dependencies").and_then(Item::as_array) {
            collect_dependencies(array, "dependencies", &mut dependencies);
        }
        if let Some(extras) = project.get("optional-dependencies").and_then(Item::as_table_like) {
            for (extra, item) in extras.iter() {
                if let Some(array) = item.as_array() {
                    collect_dependencies(
                        array,
                        &format!("optional-dependencies.{extra}"),
                        &mut dependencies,
                    );
                }
            }
        }
        let release_config = doc
            .get("tool")
            .and_then(|t| t.get("comfydock"))
            .and_then(|t| t.get("release"))
            .and_then(Item::as_table_like)
            .map(|t| {
                let mut table = toml_edit::Table::new();
                for (k, v) in t.iter() {
                    table.insert(k, v.clone());
                }
                table
            });
        Ok(Self {
            path: path.to_owned(),
            name,
            version: version.value().clone(),
            version_span,
            dependencies,
            release_config,
            text,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `[project].name` as written.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `[project].version` as written.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// Every dependency string of `[project]` (main and optional).
    pub fn dependencies(&self) -> &[DependencyEntry] {
        &self.dependencies
    }

    /// The `[tool.comfydock.release]` table, when present.
    pub fn release_config(&self) -> Option<&toml_edit::Table> {
        self.release_config.as_ref()
    }

    /// Start an edit of this file's text.
    pub fn edit(&self) -> PyprojectEdit<'_> {
        PyprojectEdit {
            pyproject: self,
            splices: Vec::new(),
        }
    }
}

fn collect_dependencies(array: &toml_edit::Array, location: &str, out: &mut Vec<DependencyEntry>) {
    for value in array {
        if let (Value::String(s), Some(span)) = (value, value.span())
            && let Some(requirement) = Requirement::parse(s.value())
        {
            out.push(DependencyEntry {
                location: location.to_owned(),
                requirement,
                span,
            });
        }
    }
}

/// Pending in-place replacements of string values in one pyproject.
#[derive(Debug)]
pub struct PyprojectEdit<'a> {
    pyproject: &'a Pyproject,
    splices: Vec<(Range<usize>, String)>,
}

impl PyprojectEdit<'_> {
    /// Replace `[project].version`.
    pub fn set_version(&mut self, version: &str) {
        let raw = &self.pyproject.text[self.pyproject.version_span.clone()];
        self.splices.push((
            self.pyproject.version_span.clone(),
            string_literal_like(raw, version),
        ));
    }

    /// Replace one dependency string with `new_text`.
    pub fn set_dependency(&mut self, entry: &DependencyEntry, new_text: &str) {
        let raw = &self.pyproject.text[entry.span.clone()];
        self.splices
            .push((entry.span.clone(), string_literal_like(raw, new_text)));
    }

    /// Whether any replacement is pending.
    pub fn is_empty(&self) -> bool {
        self.splices.is_empty()
    }

    /// The edited text; re-parsed to make sure it is still valid TOML.
    pub fn finish(mut self) -> Result<String, ReleaseError> {
        self.splices
            .sort_by_key(|(range, _)| std::cmp::Reverse(range.start));
        let mut text = self.pyproject.text.clone();
        for (range, replacement) in self.splices {
            text.replace_range(range, &replacement);
        }
        Document::parse(text.as_str()).map_err(|source| ReleaseError::Toml {
            path: self.pyproject.path.clone(),
            source,
        })?;
        Ok(text)
    }
}

/// A TOML string literal for `value` in the quoting style of `original_raw` where possible.
fn string_literal_like(original_raw: &str, value: &str) -> String {
    let literal_ok = !value.contains(['\'', '\n', '\r']);
    if original_raw.starts_with('\'') && !original_raw.starts_with("'''") && literal_ok {
        format!("'{value}'")
    } else {
        Value::from(value).to_string().trim().to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const META: &str = r#"# The meta package users install.
[project]
name = "templates"   # keep
version = '1.0.0'
dependencies = [
    "templates-core==0.1.0",      # core
    'templates-media-api>=0.1.0',
]

[project.optional-dependencies]
api = ["templates-media-api >= 0.1.0 ; python_version >= '3.9'"]

[tool.comfydock.release.bundle-packages]
media-api = "media_api"
"#;

    fn meta() -> Pyproject {
        Pyproject::parse(Path::new("pyproject.toml"), META.to_owned()).unwrap()
    }

    #[test]
    fn reads_name_version_dependencies_and_config() {
        let p = meta();
        assert_eq!(p.name(), "templates");
        assert_eq!(p.version(), "1.0.0");
        let deps: Vec<_> = p
            .dependencies()
            .iter()
            .map(|d| (d.location.as_str(), d.requirement.name()))
            .collect();
        assert_eq!(
            deps,
            [
                ("dependencies", "templates-core"),
                ("dependencies", "templates-media-api"),
                ("optional-dependencies.api", "templates-media-api"),
            ]
        );
        assert!(p.release_config().unwrap().contains_key("bundle-packages"));
    }

    #[test]
    fn edits_change_only_the_version_strings() {
        let p = meta();
        let mut edit = p.edit();
        edit.set_version("1.1.0");
        for dep in p.dependencies() {
            if dep.requirement.name() == "templates-media-api" {
                edit.set_dependency(dep, &dep.requirement.with_exact_pin("0.1.1").unwrap());
            }
        }
        let out = edit.finish().unwrap();
        let expected = META
            .replace("'1.0.0'", "'1.1.0'")
            .replace("'templates-media-api>=0.1.0'", "'templates-media-api==0.1.1'")
            .replace(
                "\"templates-media-api >= 0.1.0 ; python_version >= '3.9'\"",
                "\"templates-media-api ==0.1.1 ; python_version >= '3.9'\"",
            );
        assert_eq!(out, expected);
    }

    #[test]
    fn dynamic_version_is_rejected() {
        let err = Pyproject::parse(
            Path::new("p/pyproject.toml"),
            "[project]\nname='x'\ndynamic=['version']\n".into(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("static `version`"), "{err}");
    }
}

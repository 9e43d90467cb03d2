//! The template catalogue: `bundles.json` (bundle → template names) and `templates/index.json`
//! (the categories and template entries the frontend shows), plus which files of `templates/`
//! belong to which template.

use std::path::Path;

use indexmap::IndexMap;
use serde_json::Value;

use crate::error::ReleaseError;

/// `bundles.json`: bundle name → template names, in file order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Bundles {
    bundles: IndexMap<String, Vec<String>>,
}

impl Bundles {
    /// Parse the JSON text of `path`: an object of string arrays.
    pub fn parse(path: &Path, text: &str) -> Result<Self, ReleaseError> {
        let value: Value = serde_json::from_str(text).map_err(|source| ReleaseError::Json {
            path: path.to_owned(),
            source,
        })?;
        let malformed = |message: String| ReleaseError::Malformed {
            path: path.to_owned(),
            message,
        };
        let object = value
            .as_object()
            .ok_or_else(|| malformed("expected an object mapping bundle names to template names".into()))?;
        let mut bundles = IndexMap::new();
        for (bundle, names) in object {
            let names = names
                .as_array()
                .ok_or_else(|| malformed(format!("bundle `{bundle}` must be an array of template names")))?
                .iter()
                .map(|n| {
                    n.as_str()
                        .map(str::to_owned)
                        .ok_or_else(|| malformed(format!("bundle `{bundle}` has a non-string entry {n}")))
                })
                .collect::<Result<Vec<_>, _>>()?;
            bundles.insert(bundle.clone(), names);
        }
        Ok(Self { bundles })
    }

    /// Every bundle and its templates.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[String])> {
        self.bundles.iter().map(|(b, t)| (b.as_str(), t.as_slice()))
    }

    /// The templates of one bundle (empty when the bundle does not exist).
    pub fn templates_of(&self, bundle: &str) -> &[String] {
        self.bundles.get(bundle).map_or(&[], Vec::as_slice)
    }

    /// The bundles that list `template`.
    pub fn bundles_of(&self, template: &str) -> Vec<&str> {
        self.bundles
            .iter()
            .filter(|(_, names)| names.iter().any(|n| n == template))
            .map(|(b, _)| b.as_str())
            .collect()
    }

    /// Whether any bundle lists `template`.
    pub fn contains(&self, template: &str) -> bool {
        self.bundles
            .values()
            .any(|names| names.iter().any(|n| n == template))
    }
}

/// One template entry of `templates/index.json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexedTemplate {
    /// `name` (= file stem of `templates/<name>.json`).
    pub name: String,
    /// `mediaSubtype`: the thumbnail extension.
    pub media_subtype: Option<String>,
    /// `io.inputs[].file`: sample inputs under `input/`.
    pub input_files: Vec<String>,
}

/// `templates/index.json`: the categories' template entries, flattened.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TemplateIndex {
    pub templates: Vec<IndexedTemplate>,
}

impl TemplateIndex {
    /// Parse an array of categories (`{templates: [...]}`) or of template entries.
    pub fn parse(path: &Path, text: &str) -> Result<Self, ReleaseError> {
        let value: Value = serde_json::from_str(text).map_err(|source| ReleaseError::Json {
            path: path.to_owned(),
            source,
        })?;
        let malformed = |message: String| ReleaseError::Malformed {
            path: path.to_owned(),
            message,
        };
        let items = value
            .as_array()
            .ok_or_else(|| malformed("expected an array of categories".into()))?;
        let mut templates = Vec::new();
        for (position, item) in items.iter().enumerate() {
            match item.get("templates").and_then(Value::as_array) {
                Some(entries) => {
                    for entry in entries {
                        templates.push(parse_entry(entry).ok_or_else(|| {
                            malformed(format!("a template of category {position} has no `name`"))
                        })?);
                    }
                }
                None => templates.push(parse_entry(item).ok_or_else(|| {
                    malformed(format!(
                        "entry {position} is neither a category nor a named template"
                    ))
                })?),
            }
        }
        Ok(Self { templates })
    }

    /// Whether the index lists `name`.
    pub fn contains(&self, name: &str) -> bool {
        self.templates.iter().any(|t| t.name == name)
    }

    /// The templates that take `file` (under `input/`) as a sample input.
    pub fn templates_using_input<'a>(&'a self, file: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.templates
            .iter()
            .filter(move |t| t.input_files.iter().any(|f| f == file))
            .map(|t| t.name.as_str())
    }
}

fn parse_entry(entry: &Value) -> Option<IndexedTemplate> {
    let name = entry.get("name")?.as_str()?.to_owned();
    let media_subtype = entry
        .get("mediaSubtype")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let input_files = entry
        .get("io")
        .and_then(|io| io.get("inputs"))
        .and_then(Value::as_array)
        .map(|inputs| {
            inputs
                .iter()
                .filter_map(|i| i.get("file").and_then(Value::as_str))
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    Some(IndexedTemplate {
        name,
        media_subtype,
        input_files,
    })
}

/// The template a file directly in `templates/` belongs to: `<name>.json` and thumbnails or
/// other media `<name>-<N>.<ext>`. `is_known` tells which names are templates; a stem that is
/// a known name wins over stripping a `-N` suffix.
pub fn template_of_file(file_name: &str, is_known: impl Fn(&str) -> bool) -> Option<String> {
    let stem = file_name.rsplit_once('.').map_or(file_name, |(stem, _)| stem);
    if is_known(stem) {
        return Some(stem.to_owned());
    }
    let (base, number) = stem.rsplit_once('-')?;
    (!number.is_empty() && number.bytes().all(|b| b.is_ascii_digit()) && is_known(base))
        .then(|| base.to_owned())
}

/// Whether a file in `templates/` is an asset (not the workflow JSON) of `template`.
pub fn is_asset_of(file_name: &str, template: &str) -> bool {
    file_name
        .strip_prefix(template)
        .and_then(|rest| rest.strip_prefix('-'))
        .and_then(|rest| rest.split_once('.'))
        .is_some_and(|(number, ext)| {
            !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit()) && !ext.is_empty()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bundles_in_order() {
        let bundles = Bundles::parse(
            Path::new("bundles.json"),
            r#"{"media-image": ["flux", "sdxl"], "media-api": ["nano_banana"]}"#,
        )
        .unwrap();
        assert_eq!(bundles.bundles_of("nano_banana"), ["media-api"]);
        assert_eq!(bundles.templates_of("media-image"), ["flux", "sdxl"]);
        assert!(Bundles::parse(Path::new("b.json"), r#"{"x": "y"}"#).is_err());
    }

    #[test]
    fn parses_index_categories_and_inputs() {
        let index = TemplateIndex::parse(
            Path::new("index.json"),
            r#"[{"moduleName": "default", "title": "Basics", "templates": [
                {"name": "flux", "mediaType": "image", "mediaSubtype": "webp",
                 "io": {"inputs": [{"nodeId": 3, "nodeType": "LoadImage", "file": "cat.png", "mediaType": "image"}]}}
            ]}]"#,
        )
        .unwrap();
        assert_eq!(index.templates.len(), 1);
        assert_eq!(index.templates[0].media_subtype.as_deref(), Some("webp"));
        assert_eq!(
            index.templates_using_input("cat.png").collect::<Vec<_>>(),
            ["flux"]
        );
    }

    #[test]
    fn maps_files_to_templates() {
        let known = |n: &str| ["flux", "wan-2", "index.schema"].contains(&n);
        assert_eq!(template_of_file("flux.json", known).as_deref(), Some("flux"));
        assert_eq!(template_of_file("flux-1.webp", known).as_deref(), Some("flux"));
        assert_eq!(template_of_file("wan-2.json", known).as_deref(), Some("wan-2"));
        assert_eq!(
            template_of_file("index.schema.json", known).as_deref(),
            Some("index.schema")
        );
        assert_eq!(template_of_file("other-1.webp", known), None);
        assert!(is_asset_of("flux-12.mp4", "flux"));
        assert!(!is_asset_of("flux.json", "flux"));
        assert!(!is_asset_of("flux-x.webp", "flux"));
    }
}

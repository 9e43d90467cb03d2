//! `[tool.comfydock.release]` in the root pyproject: overrides of the layout conventions.
//!
//! ```toml
//! [tool.comfydock.release]
//! json-package = "json"              # package that ships the template JSON files (optional)
//! index-url = "https://pypi.org/simple/"  # the index validate and publish check (optional)
//! publish-url = "https://upload.pypi.org/legacy/"  # the upload endpoint (optional)
//!
//! [tool.comfydock.release.bundle-packages]
//! media-api = "media_api_legacy"     # bundle -> folder under packages/
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use toml_edit::Table;

use crate::error::ReleaseError;

/// The folder under `packages/` whose package ships template JSON files when nothing is configured.
pub const DEFAULT_JSON_PACKAGE: &str = "json";

const KNOWN_KEYS: &str = "bundle-packages, index-url, json-package, publish-url";

/// Layout overrides; everything has a convention-based default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReleaseConfig {
    /// Bundle name → package folder under `packages/`.
    pub bundle_packages: BTreeMap<String, String>,
    /// Folder under `packages/` of the package that ships the template JSON files.
    pub json_package: Option<String>,
    /// Simple API of the index releases go to; the `--index-url` flag wins over it.
    pub index_url: Option<String>,
    /// Upload endpoint; the `--publish-url` flag wins over it.
    pub publish_url: Option<String>,
}

impl ReleaseConfig {
    /// Read the table (absent → defaults); unknown keys are errors so typos do not go unnoticed.
    pub fn from_table(path: &Path, table: Option<&Table>) -> Result<Self, ReleaseError> {
        let mut config = Self::default();
        let Some(table) = table else {
            return Ok(config);
        };
        let invalid = |message: String| ReleaseError::Config {
            path: path.to_owned(),
            message,
        };
        for (key, item) in table {
            match key {
                "bundle-packages" => {
                    let map = item
                        .as_table_like()
                        .ok_or_else(|| invalid("`bundle-packages` must be a table".into()))?;
                    for (bundle, dir) in map.iter() {
                        let dir = dir.as_str().ok_or_else(|| {
                            invalid(format!("`bundle-packages.{bundle}` must be a folder name string"))
                        })?;
                        config.bundle_packages.insert(bundle.to_owned(), dir.to_owned());
                    }
                }
                "json-package" => {
                    let dir = item
                        .as_str()
                        .ok_or_else(|| invalid("`json-package` must be a folder name string".into()))?;
                    config.json_package = Some(dir.to_owned());
                }
                "index-url" | "publish-url" => {
                    let url = item
                        .as_str()
                        .ok_or_else(|| invalid(format!("`{key}` must be a URL string")))?
                        .to_owned();
                    if key == "index-url" {
                        config.index_url = Some(url);
                    } else {
                        config.publish_url = Some(url);
                    }
                }
                other => {
                    return Err(invalid(format!("unknown key `{other}` (known: {KNOWN_KEYS})")));
                }
            }
        }
        Ok(config)
    }

    /// The package folder of a bundle: the override, else `-` replaced by `_` (`media-api` → `media_api`).
    pub fn package_dir_of_bundle(&self, bundle: &str) -> String {
        self.bundle_packages
            .get(bundle)
            .cloned()
            .unwrap_or_else(|| bundle.replace('-', "_"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ReleaseConfig, ReleaseError> {
        let doc: toml_edit::DocumentMut = text.parse().unwrap();
        ReleaseConfig::from_table(Path::new("pyproject.toml"), Some(doc.as_table()))
    }

    #[test]
    fn defaults_follow_the_naming_convention() {
        let config = ReleaseConfig::default();
        assert_eq!(config.package_dir_of_bundle("media-image"), "media_image");
    }

    #[test]
    fn overrides_win() {
        let config =
            parse("json-package = 'templates_json'\n[bundle-packages]\nmedia-api = 'api'\n").unwrap();
        assert_eq!(config.package_dir_of_bundle("media-api"), "api");
        assert_eq!(config.json_package.as_deref(), Some("templates_json"));
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let err = parse("bundle-package = {}\n").unwrap_err();
        assert!(err.to_string().contains("unknown key `bundle-package`"), "{err}");
    }
}

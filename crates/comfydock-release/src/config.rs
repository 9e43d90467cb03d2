//! `[tool.comfydock.release]` in the root pyproject: the repository's layout where it departs
//! from the conventions. Every key is optional; unknown keys are errors so typos do not go
//! unnoticed. `docs/release-workflow-templates.toml` is a documented example for
//! Comfy-Org/workflow_templates.
//!
//! ```toml
//! [tool.comfydock.release]
//! json-package = "json"              # package that ships the template JSON files
//! index-url = "https://pypi.org/simple/"            # the index validate and publish check
//! publish-url = "https://upload.pypi.org/legacy/"   # the upload endpoint
//! unpinned-packages = ["blueprints"] # released on their own; the meta package does not pin them
//! frozen-packages = ["media_api"]    # never bumped unless `bump --allow-frozen <dir>`
//! json-only = ["templates/index*.json"]  # files that ship in the JSON package only (globs)
//! ship-inputs = false                # `input/` files are served from the repository, not packaged
//! logo-dir = "templates/logo"        # provider logos …
//! logo-package = "json"              # … shipped by this package
//! sync-command = "python3 scripts/sync/sync_bundles.py"  # generates package folders and manifest
//! manifest = "packages/core/src/comfyui_workflow_templates_core/manifest.json"
//!
//! [tool.comfydock.release.bundle-packages]
//! media-api = "media_api_legacy"     # bundle -> folder under packages/
//!
//! [tool.comfydock.release.package-paths]
//! blueprints = ["blueprints/*", "blueprints_bundles.json"]  # more files a package is built from
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use toml_edit::{Item, Table};

use crate::error::ReleaseError;

/// The folder under `packages/` whose package ships template JSON files when nothing is configured.
pub const DEFAULT_JSON_PACKAGE: &str = "json";

const KNOWN_KEYS: &str = "bundle-packages, frozen-packages, index-url, json-only, json-package, logo-dir, \
     logo-package, manifest, package-paths, publish-url, ship-inputs, sync-command, unpinned-packages";

/// The repository's release configuration; everything has a convention-based default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseConfig {
    /// Bundle name → package folder under `packages/`.
    pub bundle_packages: BTreeMap<String, String>,
    /// Folder under `packages/` of the package that ships the template JSON files.
    pub json_package: Option<String>,
    /// Simple API of the index releases go to; the `--index-url` flag wins over it.
    pub index_url: Option<String>,
    /// Upload endpoint; the `--publish-url` flag wins over it.
    pub publish_url: Option<String>,
    /// Package folders the meta package deliberately does not pin (released on their own).
    pub unpinned_packages: Vec<String>,
    /// Package folders that must not change version (their files are too large to re-upload);
    /// `bump` refuses to raise them unless told explicitly.
    pub frozen_packages: Vec<String>,
    /// Glob patterns (relative to the root, `*` within one path segment) of files that ship in
    /// the JSON package only, even when a bundle lists them (the index files).
    pub json_only: Vec<String>,
    /// Whether files of `input/` ship inside the media packages (`false`: the frontend fetches
    /// them from the repository, so they are checked to exist but are no package's assets).
    pub ship_inputs: bool,
    /// Folder of provider logos, relative to the root.
    pub logo_dir: Option<String>,
    /// Package folder that ships the logos.
    pub logo_package: Option<String>,
    /// Shell command (run with `sh -c` in the repository root) that generates package asset
    /// folders and the manifest; run before validation and before building.
    pub sync_command: Option<String>,
    /// Core's manifest (template → bundle and asset files), relative to the root.
    pub manifest: Option<String>,
    /// Package folder → extra path patterns (outside `packages/<dir>`) it is built from.
    pub package_paths: BTreeMap<String, Vec<String>>,
}

impl Default for ReleaseConfig {
    fn default() -> Self {
        Self {
            bundle_packages: BTreeMap::new(),
            json_package: None,
            index_url: None,
            publish_url: None,
            unpinned_packages: Vec::new(),
            frozen_packages: Vec::new(),
            json_only: Vec::new(),
            ship_inputs: true,
            logo_dir: None,
            logo_package: None,
            sync_command: None,
            manifest: None,
            package_paths: BTreeMap::new(),
        }
    }
}

impl ReleaseConfig {
    /// Read the table (absent → defaults).
    pub fn from_table(path: &Path, table: Option<&Table>) -> Result<Self, ReleaseError> {
        let mut config = Self::default();
        let Some(table) = table else {
            return Ok(config);
        };
        let invalid = |message: String| ReleaseError::Config {
            path: path.to_owned(),
            message,
        };
        let string = |key: &str, item: &Item| -> Result<String, ReleaseError> {
            item.as_str()
                .map(str::to_owned)
                .ok_or_else(|| invalid(format!("`{key}` must be a string")))
        };
        let strings = |key: &str, item: &Item| -> Result<Vec<String>, ReleaseError> {
            item.as_array()
                .ok_or_else(|| invalid(format!("`{key}` must be an array of strings")))?
                .iter()
                .map(|v| {
                    v.as_str()
                        .map(str::to_owned)
                        .ok_or_else(|| invalid(format!("`{key}` must be an array of strings")))
                })
                .collect()
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
                "package-paths" => {
                    let map = item
                        .as_table_like()
                        .ok_or_else(|| invalid("`package-paths` must be a table".into()))?;
                    for (dir, patterns) in map.iter() {
                        let key = format!("package-paths.{dir}");
                        config
                            .package_paths
                            .insert(dir.to_owned(), strings(&key, patterns)?);
                    }
                }
                "json-package" => config.json_package = Some(string(key, item)?),
                "index-url" => config.index_url = Some(string(key, item)?),
                "publish-url" => config.publish_url = Some(string(key, item)?),
                "logo-dir" => config.logo_dir = Some(string(key, item)?.trim_end_matches('/').to_owned()),
                "logo-package" => config.logo_package = Some(string(key, item)?),
                "sync-command" => config.sync_command = Some(string(key, item)?),
                "manifest" => config.manifest = Some(string(key, item)?),
                "unpinned-packages" => config.unpinned_packages = strings(key, item)?,
                "frozen-packages" => config.frozen_packages = strings(key, item)?,
                "json-only" => config.json_only = strings(key, item)?,
                "ship-inputs" => {
                    config.ship_inputs = item
                        .as_bool()
                        .ok_or_else(|| invalid("`ship-inputs` must be true or false".into()))?;
                }
                other => {
                    return Err(invalid(format!("unknown key `{other}` (known: {KNOWN_KEYS})")));
                }
            }
        }
        if config.logo_dir.is_some() != config.logo_package.is_some() {
            return Err(invalid(
                "`logo-dir` and `logo-package` go together: where the logos are, and which package ships them"
                    .into(),
            ));
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

    /// Whether the meta package is expected to pin the package in `packages/<dir>`.
    pub fn is_pinned(&self, dir: &str) -> bool {
        !self.unpinned_packages.iter().any(|d| d == dir)
    }

    /// Whether the package in `packages/<dir>` is frozen.
    pub fn is_frozen(&self, dir: &str) -> bool {
        self.frozen_packages.iter().any(|d| d == dir)
    }

    /// Whether the file at `path` (relative to the root) ships in the JSON package only.
    pub fn is_json_only(&self, path: &str) -> bool {
        self.json_only.iter().any(|pattern| glob_match(pattern, path))
    }

    /// Whether a bundle entry names a JSON-only file (`index` → `templates/index.json`) rather
    /// than a template with assets.
    pub fn is_json_only_entry(&self, name: &str) -> bool {
        self.is_json_only(&format!("{}/{name}.json", crate::layout::TEMPLATES_DIR))
    }

    /// The package folder a `package-paths` pattern assigns `path` to.
    pub fn package_of_extra_path(&self, path: &str) -> Option<&str> {
        self.package_paths
            .iter()
            .find(|(_, patterns)| patterns.iter().any(|p| glob_match(p, path)))
            .map(|(dir, _)| dir.as_str())
    }

    /// The logo folder and its package, when configured.
    pub fn logos(&self) -> Option<(&str, &str)> {
        Some((self.logo_dir.as_deref()?, self.logo_package.as_deref()?))
    }
}

/// Match `path` against `pattern`: `*` is any run of characters within one path segment, `**`
/// any run including `/`, `?` one character; a pattern ending in `/` matches everything below.
pub fn glob_match(pattern: &str, path: &str) -> bool {
    fn go(p: &[u8], s: &[u8]) -> bool {
        match p.split_first() {
            None => s.is_empty(),
            Some((b'*', rest)) if rest.first() == Some(&b'*') => {
                let rest = &rest[1..];
                (0..=s.len()).any(|i| go(rest, &s[i..]))
            }
            Some((b'*', rest)) => {
                let segment_end = s.iter().position(|&c| c == b'/').unwrap_or(s.len());
                (0..=segment_end).any(|i| go(rest, &s[i..]))
            }
            Some((b'?', rest)) => s.first().is_some_and(|&c| c != b'/') && go(rest, &s[1..]),
            Some((&c, rest)) => s.first() == Some(&c) && go(rest, &s[1..]),
        }
    }
    if let Some(prefix) = pattern.strip_suffix('/') {
        return path
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with('/'));
    }
    go(pattern.as_bytes(), path.as_bytes())
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
        assert!(config.ship_inputs);
        assert!(config.is_pinned("blueprints"));
    }

    #[test]
    fn overrides_win() {
        let config =
            parse("json-package = 'templates_json'\n[bundle-packages]\nmedia-api = 'api'\n").unwrap();
        assert_eq!(config.package_dir_of_bundle("media-api"), "api");
        assert_eq!(config.json_package.as_deref(), Some("templates_json"));
    }

    #[test]
    fn reads_the_workflow_templates_layout() {
        let config = parse(
            r#"
unpinned-packages = ["blueprints"]
frozen-packages = ["media_api", "media_other"]
json-only = ["templates/index*.json"]
ship-inputs = false
logo-dir = "templates/logo/"
logo-package = "json"
sync-command = "python3 scripts/sync.py"
manifest = "packages/core/src/core/manifest.json"
[package-paths]
blueprints = ["blueprints/", "blueprints_bundles.json"]
"#,
        )
        .unwrap();
        assert!(!config.is_pinned("blueprints") && config.is_pinned("core"));
        assert!(config.is_frozen("media_api") && !config.is_frozen("media_assets_01"));
        assert!(config.is_json_only("templates/index.json"));
        assert!(config.is_json_only("templates/index.pt-BR.json"));
        assert!(config.is_json_only_entry("index_logo"));
        assert!(!config.is_json_only("templates/flux.json"));
        assert!(!config.ship_inputs);
        assert_eq!(config.logos(), Some(("templates/logo", "json")));
        assert_eq!(
            config.package_of_extra_path("blueprints/a/b.json"),
            Some("blueprints")
        );
        assert_eq!(
            config.package_of_extra_path("blueprints_bundles.json"),
            Some("blueprints")
        );
        assert_eq!(config.package_of_extra_path("blueprints.json"), None);
    }

    #[test]
    fn the_documented_workflow_templates_example_is_valid() {
        let text = include_str!("../../../docs/release-workflow-templates.toml");
        let doc: toml_edit::DocumentMut = text.parse().unwrap();
        let table = doc["tool"]["comfydock"]["release"].as_table().unwrap();
        let config = ReleaseConfig::from_table(Path::new("example.toml"), Some(table)).unwrap();
        assert!(config.is_frozen("media_other") && !config.is_pinned("blueprints"));
        assert!(config.is_json_only_entry("index.schema") && config.is_json_only_entry("index.pt-BR"));
        assert!(config.sync_command.is_some() && config.manifest.is_some());
    }

    #[test]
    fn globs_stay_within_a_segment_unless_doubled() {
        assert!(glob_match("templates/*.json", "templates/a.json"));
        assert!(!glob_match("templates/*.json", "templates/logo/a.json"));
        assert!(glob_match("templates/**.json", "templates/logo/a.json"));
        assert!(glob_match("a?c", "abc") && !glob_match("a?c", "a/c"));
    }

    #[test]
    fn unknown_keys_and_half_logo_settings_are_rejected() {
        let err = parse("bundle-package = {}\n").unwrap_err();
        assert!(err.to_string().contains("unknown key `bundle-package`"), "{err}");
        let err = parse("logo-dir = 'templates/logo'\n").unwrap_err();
        assert!(err.to_string().contains("logo-package"), "{err}");
        let err = parse("frozen-packages = 'media_api'\n").unwrap_err();
        assert!(err.to_string().contains("array of strings"), "{err}");
    }
}

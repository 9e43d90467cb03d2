//! `.cec/pyproject.toml`, the environment's source of truth, and transactional file edits.
//!
//! Reads are typed; edits go through `toml_edit` so comments and layout survive. Every multi-file
//! change runs inside a [`FileTransaction`] that puts the original bytes back unless committed.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use toml_edit::{Array, DocumentMut, Item, Value};

use crate::torch_backend::{TORCH_PACKAGES, TorchBackend};
use comfydock_foundation::Hinted;
use comfydock_foundation::atomic_file::write_atomic;
pub use schema::SchemaError;
use schema::{NodeTable, ToolSection, WorkflowEntry};

pub mod node_entry;
pub mod schema;
pub mod three_way;

/// `[tool.comfydock] schema_version` written by this build.
///
/// - 1: ComfyUI's `requirements.txt` in `[project].dependencies` (no place for the user's own
///   packages; read as [`Layout::Legacy`]).
/// - 2: ComfyUI's requirements in the [`COMFYUI_GROUP`] dependency group; `[project].dependencies`
///   holds only the user's own packages ([`Layout::Split`]).
pub const MANIFEST_SCHEMA_VERSION: i64 = 2;

/// The PEP 735 dependency group holding ComfyUI's `requirements.txt` (torch excluded).
pub const COMFYUI_GROUP: &str = "comfyui";

/// Where a manifest keeps ComfyUI's requirements, decided by its `schema_version`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Layout {
    /// Schema 1: ComfyUI's requirements and the user's packages mixed in `[project].dependencies`.
    Legacy,
    /// Schema 2: ComfyUI's in the `comfyui` group, the user's in `[project].dependencies`.
    Split,
}

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("Failed to parse `{path}`")]
    Parse {
        path: PathBuf,
        #[source]
        source: toml_edit::TomlError,
    },
    #[error("`{path}` has no `{field}`")]
    Missing { path: PathBuf, field: &'static str },
    #[error("`{path}` has schema version {found}; this comfydock reads up to {MANIFEST_SCHEMA_VERSION}")]
    NewerSchema { path: PathBuf, found: i64 },
    /// A key of `[tool.comfydock]` that is unknown or holds a value of the wrong shape.
    #[error("`{path}` {error}")]
    Schema { path: PathBuf, error: SchemaError },
    /// `workflow resolve` cannot merge its result into a hand-written entry.
    #[error("`{path}`: cannot record the resolution of `{key}`: {error}")]
    Unmergeable {
        path: PathBuf,
        key: String,
        error: schema::UnkeyedModel,
    },
    #[error("Failed to write `[tool.comfydock]` of `{path}`")]
    Serialize {
        path: PathBuf,
        #[source]
        source: toml_edit::ser::Error,
    },
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl Hinted for ManifestError {
    fn hint(&self) -> Option<String> {
        match self {
            Self::Parse { .. } => {
                Some("fix the TOML by hand, or restore it with `comfydock rollback`".into())
            }
            Self::NewerSchema { .. } => Some(
                "this manifest was written by a newer comfydock; upgrade comfydock to work with this environment (from a checkout: `git pull && cargo install --locked --path crates/comfydock`)".into(),
            ),
            Self::Schema { error, .. } => Some(format!(
                "fix `{}` in the file by hand (see the `[tool.comfydock]` reference in README.md), or restore it with `comfydock rollback`",
                error.key
            )),
            Self::Unmergeable { key, .. } => Some(format!(
                "give every model of `{key}.models` a hash, or remove the entry and resolve again"
            )),
            _ => None,
        }
    }
}

/// The exact ComfyUI an environment runs.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ComfyUiPin {
    pub reference: String,
    pub commit: String,
}

/// Everything needed to write a new environment's manifest.
#[derive(Debug, Clone)]
pub struct NewManifest<'a> {
    pub name: &'a str,
    pub python: &'a str,
    pub comfyui: &'a ComfyUiPin,
    pub requirements: &'a Requirements,
    pub backends: &'a [TorchBackend],
    pub torch_index_url: &'a str,
}

/// ComfyUI's `requirements.txt`, split into ordinary dependencies and the torch family.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Requirements {
    pub dependencies: Vec<String>,
    /// Torch requirements as written (`torch>=2.0`); they go into every backend extra.
    pub torch: Vec<String>,
}

/// The normalised project name of a PEP 508 requirement (`Foo_Bar>=1` → `foo-bar`).
pub fn requirement_name(requirement: &str) -> String {
    comfydock_foundation::package_name::of_requirement(requirement)
}

/// Parse a requirements file (pip's rules, see [`crate::requirements_txt`]): comments, blank
/// lines, includes and pip options are skipped.
pub fn parse_requirements(text: &str) -> Requirements {
    let (dependencies, torch) = crate::requirements_txt::requirements_and_torch(text);
    Requirements { dependencies, torch }
}

fn toml_string(s: &str) -> String {
    Value::from(s).to_string().trim().to_owned()
}

fn toml_array_multiline(items: &[String]) -> String {
    if items.is_empty() {
        return "[]".to_owned();
    }
    let mut out = "[\n".to_owned();
    for item in items {
        let _ = writeln!(out, "    {},", toml_string(item));
    }
    out.push(']');
    out
}

/// Render a new environment's `pyproject.toml`.
pub fn render_new(spec: &NewManifest<'_>) -> String {
    let torch: Vec<String> = TORCH_PACKAGES
        .iter()
        .map(|name| {
            spec.requirements
                .torch
                .iter()
                .find(|r| requirement_name(r) == *name)
                .cloned()
                .unwrap_or_else(|| (*name).to_owned())
        })
        .collect();
    let mut out = String::new();
    let _ = writeln!(out, "[project]");
    let _ = writeln!(out, "name = {}", toml_string(&project_name(spec.name)));
    let _ = writeln!(out, "version = \"0.0.0\"");
    let _ = writeln!(
        out,
        "requires-python = {}",
        toml_string(&format!(">={}", spec.python))
    );
    let _ = writeln!(
        out,
        "# Your own Python packages (`comfydock py add`); ComfyUI's are the `{COMFYUI_GROUP}` group below"
    );
    let _ = writeln!(out, "dependencies = []");
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "# One extra per PyTorch backend; a machine syncs with exactly one of them."
    );
    let _ = writeln!(out, "[project.optional-dependencies]");
    for backend in spec.backends {
        let _ = writeln!(out, "{} = {}", backend.extra(), inline_array(&torch));
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "# `{COMFYUI_GROUP}`: ComfyUI's requirements.txt (torch comes from the backend extras above);"
    );
    let _ = writeln!(
        out,
        "# every other group belongs to one custom node or is your own."
    );
    let _ = writeln!(out, "[dependency-groups]");
    let _ = writeln!(
        out,
        "{COMFYUI_GROUP} = {}",
        toml_array_multiline(&spec.requirements.dependencies)
    );
    let _ = writeln!(out);
    let _ = writeln!(out, "[tool.uv]");
    let conflicts: Vec<String> = spec
        .backends
        .iter()
        .map(|b| format!("{{ extra = {} }}", toml_string(&b.extra())))
        .collect();
    let _ = writeln!(out, "conflicts = [[{}]]", conflicts.join(", "));
    for backend in spec.backends {
        let _ = writeln!(out);
        let _ = writeln!(out, "[[tool.uv.index]]");
        let _ = writeln!(out, "name = {}", toml_string(&backend.index_name()));
        let _ = writeln!(
            out,
            "url = {}",
            toml_string(&backend.index_url(spec.torch_index_url))
        );
        let _ = writeln!(out, "explicit = true");
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "[tool.uv.sources]");
    for name in TORCH_PACKAGES {
        let sources: Vec<String> = spec
            .backends
            .iter()
            .map(|b| {
                format!(
                    "{{ index = {}, extra = {} }}",
                    toml_string(&b.index_name()),
                    toml_string(&b.extra())
                )
            })
            .collect();
        let _ = writeln!(out, "{name} = [{}]", sources.join(", "));
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "[tool.comfydock]");
    let _ = writeln!(out, "schema_version = {MANIFEST_SCHEMA_VERSION}");
    let _ = writeln!(out, "python = {}", toml_string(spec.python));
    let backends: Vec<String> = spec.backends.iter().map(ToString::to_string).collect();
    let _ = writeln!(out, "torch_backends = {}", inline_array(&backends));
    let _ = writeln!(out);
    let _ = writeln!(out, "[tool.comfydock.comfyui]");
    let _ = writeln!(out, "ref = {}", toml_string(&spec.comfyui.reference));
    let _ = writeln!(out, "commit = {}", toml_string(&spec.comfyui.commit));
    out
}

fn inline_array(items: &[String]) -> String {
    format!(
        "[{}]",
        items
            .iter()
            .map(|i| toml_string(i))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// Project names must be valid PEP 508 names.
fn project_name(env_name: &str) -> String {
    let cleaned: String = env_name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("comfydock-env-{}", cleaned.trim_matches('-'))
}

/// A loaded manifest, editable in place.
#[derive(Debug, Clone)]
pub struct Manifest {
    path: PathBuf,
    doc: DocumentMut,
    /// `[tool.comfydock]`, typed; every edit of that section updates both.
    tool: ToolSection,
}

impl Manifest {
    pub fn load(path: &Path) -> Result<Self, ManifestError> {
        let text = fs_err::read_to_string(path)?;
        Self::parse(path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<Self, ManifestError> {
        let doc = text
            .parse::<DocumentMut>()
            .map_err(|source| ManifestError::Parse {
                path: path.to_path_buf(),
                source,
            })?;
        // The version first: a newer manifest may hold keys this build does not know, and the
        // answer to that is an upgrade, not a list of unknown keys.
        let version = doc
            .get("tool")
            .and_then(|t| t.get("comfydock"))
            .and_then(|t| t.get("schema_version"));
        if let Some(found) = version.and_then(Item::as_integer)
            && found > MANIFEST_SCHEMA_VERSION
        {
            return Err(ManifestError::NewerSchema {
                path: path.to_path_buf(),
                found,
            });
        }
        // Schema 1 differs from 2 outside this section only (see [`Layout`]): it reads the same.
        let tool = schema::read(text).map_err(|error| ManifestError::Schema {
            path: path.to_path_buf(),
            error,
        })?;
        Ok(Self {
            path: path.to_path_buf(),
            doc,
            tool,
        })
    }

    /// `[tool.comfydock]`, typed.
    pub fn tool(&self) -> &ToolSection {
        &self.tool
    }

    /// `[tool.comfydock] schema_version`; a manifest without one is schema 1.
    pub fn schema_version(&self) -> i64 {
        self.tool.schema_version.unwrap_or(1)
    }

    /// Where this manifest keeps ComfyUI's requirements.
    pub fn layout(&self) -> Layout {
        if self.schema_version() >= 2 {
            Layout::Split
        } else {
            Layout::Legacy
        }
    }

    /// Write `[tool.comfydock] schema_version`.
    pub fn set_schema_version(&mut self, version: i64) {
        let table = self.doc["tool"]["comfydock"].or_insert(toml_edit::table());
        table["schema_version"] = toml_edit::value(version);
        self.tool.schema_version = Some(version);
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Write the document back atomically.
    pub fn save(&self) -> Result<(), ManifestError> {
        write_atomic(&self.path, self.doc.to_string())?;
        Ok(())
    }

    pub fn render(&self) -> String {
        self.doc.to_string()
    }

    pub fn comfyui(&self) -> Result<ComfyUiPin, ManifestError> {
        let table = self.tool.comfyui.as_ref();
        Ok(ComfyUiPin {
            reference: table
                .and_then(|t| t.reference.clone())
                .ok_or(self.missing("tool.comfydock.comfyui.ref"))?,
            commit: table
                .and_then(|t| t.commit.clone())
                .ok_or(self.missing("tool.comfydock.comfyui.commit"))?,
        })
    }

    pub fn set_comfyui(&mut self, pin: &ComfyUiPin) {
        let table = self.doc["tool"]["comfydock"]["comfyui"].or_insert(toml_edit::table());
        table["ref"] = toml_edit::value(pin.reference.as_str());
        table["commit"] = toml_edit::value(pin.commit.as_str());
        self.tool.comfyui = Some(schema::ComfyUiTable {
            reference: Some(pin.reference.clone()),
            commit: Some(pin.commit.clone()),
        });
    }

    pub fn python(&self) -> Option<String> {
        self.tool.python.clone()
    }

    /// Backends the manifest asks the lock to cover.
    pub fn torch_backends(&self) -> Vec<TorchBackend> {
        self.tool.torch_backends.clone()
    }

    /// `[project] dependencies` as written.
    pub fn dependencies(&self) -> Vec<String> {
        string_array(self.doc.get("project").and_then(|p| p.get("dependencies")))
    }

    /// Replace `[project] dependencies`, one per line, keeping the comment above it.
    pub fn set_dependencies(&mut self, dependencies: &[String]) {
        let array = multiline_array(dependencies);
        let project = self.doc["project"].or_insert(toml_edit::table());
        match project.get_mut("dependencies") {
            Some(item) if item.is_value() => {
                let decor = item.as_value().map(|v| v.decor().clone());
                let mut value = Value::Array(array);
                if let Some(decor) = decor {
                    *value.decor_mut() = decor;
                }
                *item = Item::Value(value);
            }
            _ => project["dependencies"] = Item::Value(Value::Array(array)),
        }
    }

    /// Replace the comment lines above `[project] dependencies` (`comment` ends with a newline).
    pub fn set_dependencies_comment(&mut self, comment: &str) {
        if let Some(mut key) = self
            .doc
            .get_mut("project")
            .and_then(Item::as_table_mut)
            .and_then(|p| p.key_mut("dependencies"))
        {
            key.leaf_decor_mut().set_prefix(comment);
        }
    }

    /// Whether `torch_backends` lists `backend` (what the manifest asks for; what `uv.lock`
    /// really covers is [`crate::lock_coverage`]).
    pub fn covers_backend(&self, backend: &TorchBackend) -> bool {
        self.torch_backends().contains(backend)
    }

    /// Backends that have an extra in `[project.optional-dependencies]` (what uv locks).
    pub fn backend_extras(&self) -> Vec<TorchBackend> {
        self.doc
            .get("project")
            .and_then(|p| p.get("optional-dependencies"))
            .and_then(Item::as_table_like)
            .map(|t| {
                t.iter()
                    .filter_map(|(k, _)| TorchBackend::from_extra(k))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The URL of a backend's `[[tool.uv.index]]` entry, if it has one.
    pub fn backend_index_url(&self, backend: &TorchBackend) -> Option<String> {
        let indexes = self
            .doc
            .get("tool")?
            .get("uv")?
            .get("index")?
            .as_array_of_tables()?;
        indexes
            .iter()
            .find(|t| t.get("name").and_then(Item::as_str) == Some(backend.index_name().as_str()))
            .and_then(|t| t.get("url")?.as_str().map(str::to_owned))
    }

    /// Make every place uv reads backends from say exactly `backends`: one extra each holding the
    /// torch requirements, one explicit `[[tool.uv.index]]` each (an existing one keeps its URL;
    /// a new one gets `torch_index_url/<backend>`), the extras mutually exclusive in
    /// `[tool.uv] conflicts`, torch's `[tool.uv.sources]` per extra, and `torch_backends`.
    /// Other extras, indexes, conflict sets and sources are kept.
    pub fn set_torch_backends(&mut self, backends: &[TorchBackend], torch_index_url: &str) {
        let torch = self.torch_requirements();
        let urls: Vec<String> = backends
            .iter()
            .map(|b| {
                self.backend_index_url(b)
                    .unwrap_or_else(|| b.index_url(torch_index_url))
            })
            .collect();

        let extras = self.doc["project"]["optional-dependencies"].or_insert(toml_edit::table());
        if let Some(extras) = extras.as_table_like_mut() {
            let stale: Vec<String> = extras
                .iter()
                .filter_map(|(k, _)| TorchBackend::from_extra(k))
                .filter(|b| !backends.contains(b))
                .map(|b| b.extra())
                .collect();
            for extra in stale {
                extras.remove(&extra);
            }
            for backend in backends {
                if extras.get(&backend.extra()).is_none() {
                    extras.insert(
                        &backend.extra(),
                        Item::Value(Value::Array(inline_strings(&torch))),
                    );
                }
            }
        }

        let uv = self.doc["tool"]["uv"].or_insert(toml_edit::table());
        let Some(uv) = uv.as_table_like_mut() else {
            return;
        };
        // Conflicts: replace the set made of backend extras; keep the others.
        let mut sets: Vec<Value> = uv
            .get("conflicts")
            .and_then(Item::as_array)
            .map(|a| {
                a.iter()
                    .filter(|set| !is_backend_conflict_set(set))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        if backends.len() >= 2 {
            let mut set = Array::new();
            for backend in backends {
                let mut entry = toml_edit::InlineTable::new();
                entry.insert("extra", Value::from(backend.extra()));
                set.push(entry);
            }
            sets.insert(0, Value::Array(set));
        }
        if sets.is_empty() {
            uv.remove("conflicts");
        } else {
            let mut array = Array::new();
            for set in sets {
                array.push(set);
            }
            uv.insert("conflicts", Item::Value(Value::Array(array)));
        }
        // Indexes: drop those of backends no longer listed, add the missing ones.
        let index_names: Vec<String> = backends.iter().map(TorchBackend::index_name).collect();
        let index = uv
            .entry("index")
            .or_insert(Item::ArrayOfTables(toml_edit::ArrayOfTables::new()));
        if let Some(index) = index.as_array_of_tables_mut() {
            index.retain(|t| {
                let name = t.get("name").and_then(Item::as_str).unwrap_or_default();
                !name.starts_with("pytorch-") || index_names.iter().any(|n| n == name)
            });
            for (backend, url) in backends.iter().zip(&urls) {
                let present = index
                    .iter()
                    .any(|t| t.get("name").and_then(Item::as_str) == Some(backend.index_name().as_str()));
                if !present {
                    let mut table = toml_edit::Table::new();
                    table.insert("name", toml_edit::value(backend.index_name()));
                    table.insert("url", toml_edit::value(url.as_str()));
                    table.insert("explicit", toml_edit::value(true));
                    index.push(table);
                }
            }
        }
        // Sources: torch, torchvision and torchaudio from each extra's index.
        let sources = uv.entry("sources").or_insert(toml_edit::table());
        if let Some(sources) = sources.as_table_like_mut() {
            for name in TORCH_PACKAGES {
                let mut array = Array::new();
                for backend in backends {
                    let mut entry = toml_edit::InlineTable::new();
                    entry.insert("index", Value::from(backend.index_name()));
                    entry.insert("extra", Value::from(backend.extra()));
                    array.push(entry);
                }
                sources.insert(name, Item::Value(Value::Array(array)));
            }
        }

        let names: Vec<String> = backends.iter().map(ToString::to_string).collect();
        let table = self.doc["tool"]["comfydock"].or_insert(toml_edit::table());
        table["torch_backends"] = Item::Value(Value::Array(inline_strings(&names)));
        self.tool.torch_backends = backends.to_vec();
    }

    /// The torch requirements a backend extra holds (`torch>=2.0`, `torchvision`, ...), read from
    /// an existing backend extra; the bare names when there is none.
    fn torch_requirements(&self) -> Vec<String> {
        self.doc
            .get("project")
            .and_then(|p| p.get("optional-dependencies"))
            .and_then(Item::as_table_like)
            .and_then(|t| {
                t.iter()
                    .find(|(k, _)| TorchBackend::from_extra(k).is_some())
                    .map(|(_, v)| string_array(Some(v)))
            })
            .filter(|reqs| !reqs.is_empty())
            .unwrap_or_else(|| TORCH_PACKAGES.iter().map(|p| (*p).to_owned()).collect())
    }

    /// `[dependency-groups]` names and their requirements (one group per custom node).
    pub fn dependency_groups(&self) -> Vec<(String, Vec<String>)> {
        self.doc
            .get("dependency-groups")
            .and_then(Item::as_table_like)
            .map(|t| {
                t.iter()
                    .map(|(k, v)| (k.to_owned(), string_array(Some(v))))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Record a `workflow resolve` result in `[tool.comfydock.workflows."name"]`, merged into
    /// what is there ([`WorkflowEntry::merge_resolution`]: pins, sources and choices the
    /// Map `node_type` to a package by hand (`Some`), or drop its mapping (`None`); every
    /// workflow's resolution follows the mapping. Returns the mapping it replaced.
    pub fn set_node_mapping(
        &mut self,
        node_type: &str,
        mapping: Option<schema::NodeMapping>,
    ) -> Option<schema::NodeMapping> {
        let table = self.doc["tool"]["comfydock"]["node_mappings"].or_insert(toml_edit::table());
        let previous = if let Some(mapping) = mapping {
            let value = match &mapping {
                schema::NodeMapping::Package(p) => toml_edit::value(p.as_str()),
                schema::NodeMapping::NoPackage(_) => toml_edit::value(false),
            };
            if let Some(t) = table.as_table_mut() {
                t.insert(node_type, value);
            }
            self.tool.node_mappings.insert(node_type.to_owned(), mapping)
        } else {
            if let Some(t) = table.as_table_mut() {
                t.remove(node_type);
            }
            self.tool.node_mappings.shift_remove(node_type)
        };
        if self.tool.node_mappings.is_empty()
            && let Some(tool) = self.doc["tool"]["comfydock"].as_table_mut()
        {
            tool.remove("node_mappings");
        }
        previous
    }

    /// resolution did not produce are kept). Comments and layout of the entry's keys survive.
    pub fn record_workflow_resolution(
        &mut self,
        name: &str,
        resolution: WorkflowEntry,
    ) -> Result<(), ManifestError> {
        let mut entry = self.tool.workflows.get(name).cloned().unwrap_or_default();
        entry
            .merge_resolution(resolution)
            .map_err(|error| ManifestError::Unmergeable {
                path: self.path.clone(),
                key: format!("tool.comfydock.workflows.{}", schema::quote_key(name)),
                error,
            })?;
        let fresh = schema::to_table(&entry).map_err(|source| ManifestError::Serialize {
            path: self.path.clone(),
            source,
        })?;
        let workflows = self.doc["tool"]["comfydock"]["workflows"].or_insert(toml_edit::table());
        if let Some(table) = workflows.as_table_mut() {
            table.set_implicit(true);
            match table.get_mut(name).and_then(Item::as_table_mut) {
                Some(existing) => schema::update_table(existing, fresh),
                None => {
                    table.insert(name, Item::Table(fresh));
                }
            }
        }
        self.tool.workflows.insert(name.to_owned(), entry);
        Ok(())
    }

    /// Mark a workflow as tracked (`[tool.comfydock.workflows."name"] tracked = true`), or drop
    /// its entry when `tracked` is false.
    pub fn set_workflow_tracked(&mut self, name: &str, tracked: bool) {
        let workflows = self.doc["tool"]["comfydock"]["workflows"].or_insert(toml_edit::table());
        if let Some(table) = workflows.as_table_mut() {
            table.set_implicit(true);
            if tracked {
                let entry = table.entry(name).or_insert(toml_edit::table());
                entry["tracked"] = toml_edit::value(true);
            } else {
                table.remove(name);
            }
        }
        if tracked {
            self.tool.workflows.entry(name.to_owned()).or_default().tracked = true;
        } else {
            self.tool.workflows.shift_remove(name);
        }
    }

    fn missing(&self, field: &'static str) -> ManifestError {
        ManifestError::Missing {
            path: self.path.clone(),
            field,
        }
    }
}

/// Custom node entries (`[tool.comfydock.nodes.<key>]`) and their dependency groups.
impl Manifest {
    /// `[tool.comfydock.nodes]` by key, in file order.
    pub fn nodes(&self) -> &indexmap::IndexMap<String, NodeTable> {
        &self.tool.nodes
    }

    /// Insert or replace `[tool.comfydock.nodes.<key>]` (an existing entry keeps its place and
    /// the comments on the keys it keeps).
    pub fn set_node(&mut self, key: &str, node: &NodeTable) {
        // A flat table of strings, numbers and booleans always serializes.
        let fresh = schema::to_table(node).expect("a node table serializes to TOML");
        let nodes = self.doc["tool"]["comfydock"]["nodes"].or_insert(toml_edit::table());
        if let Some(nodes) = nodes.as_table_mut() {
            nodes.set_implicit(true);
            match nodes.get_mut(key).and_then(Item::as_table_mut) {
                Some(existing) => schema::update_table(existing, fresh),
                None => {
                    nodes.insert(key, Item::Table(fresh));
                }
            }
        }
        self.tool.nodes.insert(key.to_owned(), node.clone());
    }

    /// Remove `[tool.comfydock.nodes.<key>]`; returns whether it existed.
    pub fn remove_node(&mut self, key: &str) -> bool {
        self.tool.nodes.shift_remove(key);
        self.doc
            .get_mut("tool")
            .and_then(|t| t.get_mut("comfydock"))
            .and_then(|t| t.get_mut("nodes"))
            .and_then(Item::as_table_mut)
            .is_some_and(|nodes| nodes.remove(key).is_some())
    }

    /// Replace one `[dependency-groups]` entry, one requirement per line (an existing entry
    /// keeps its place and the comment above it).
    pub fn set_dependency_group(&mut self, name: &str, requirements: &[String]) {
        let array = multiline_array(requirements);
        let groups = self.doc["dependency-groups"].or_insert(toml_edit::table());
        if let Some(groups) = groups.as_table_like_mut() {
            match groups.get_mut(name) {
                Some(item) if item.is_value() => {
                    let decor = item.as_value().map(|v| v.decor().clone());
                    let mut value = Value::Array(array);
                    if let Some(decor) = decor {
                        *value.decor_mut() = decor;
                    }
                    *item = Item::Value(value);
                }
                _ => {
                    groups.insert(name, Item::Value(Value::Array(array)));
                }
            }
        }
    }

    /// One `[dependency-groups]` entry, if present.
    pub fn dependency_group(&self, name: &str) -> Option<Vec<String>> {
        self.doc
            .get("dependency-groups")
            .and_then(Item::as_table_like)
            .and_then(|t| t.get(name))
            .map(|v| string_array(Some(v)))
    }

    /// `[tool.uv] constraint-dependencies`: bounds on versions the lock may pick, never installs.
    pub fn constraints(&self) -> Vec<String> {
        string_array(
            self.doc
                .get("tool")
                .and_then(|t| t.get("uv"))
                .and_then(|t| t.get("constraint-dependencies")),
        )
    }

    /// Replace `[tool.uv] constraint-dependencies` (removed when empty).
    pub fn set_constraints(&mut self, constraints: &[String]) {
        let uv = self.doc["tool"]["uv"].or_insert(toml_edit::table());
        let Some(uv) = uv.as_table_like_mut() else {
            return;
        };
        if constraints.is_empty() {
            uv.remove("constraint-dependencies");
        } else {
            uv.insert(
                "constraint-dependencies",
                Item::Value(Value::Array(multiline_array(constraints))),
            );
        }
    }

    /// Remove one `[dependency-groups]` entry; returns whether it existed.
    pub fn remove_dependency_group(&mut self, name: &str) -> bool {
        self.doc
            .get_mut("dependency-groups")
            .and_then(Item::as_table_like_mut)
            .is_some_and(|groups| groups.remove(name).is_some())
    }

    /// `[project] name`.
    pub fn project_name(&self) -> Option<String> {
        self.doc
            .get("project")
            .and_then(|p| p.get("name"))
            .and_then(Item::as_str)
            .map(str::to_owned)
    }
}

/// Whether a `[tool.uv] conflicts` set is the torch backends' (every entry an extra naming one).
fn is_backend_conflict_set(set: &Value) -> bool {
    set.as_array().is_some_and(|entries| {
        !entries.is_empty()
            && entries.iter().all(|e| {
                e.as_inline_table().is_some_and(|t| {
                    t.get("group").is_none()
                        && t.get("extra")
                            .and_then(Value::as_str)
                            .is_some_and(|x| TorchBackend::from_extra(x).is_some())
                })
            })
    })
}

/// A one-line TOML array of strings.
fn inline_strings(items: &[String]) -> Array {
    items.iter().map(String::as_str).collect()
}

/// A TOML array with one string per line and a trailing comma (`[]` when empty).
fn multiline_array(items: &[String]) -> Array {
    let mut array = Array::new();
    for item in items {
        let mut value = Value::from(item.as_str());
        value.decor_mut().set_prefix("\n    ");
        array.push_formatted(value);
    }
    array.set_trailing(if items.is_empty() { "" } else { "\n" });
    array.set_trailing_comma(!items.is_empty());
    array
}

fn string_array(item: Option<&Item>) -> Vec<String> {
    item.and_then(Item::as_array)
        .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

/// Restores files to their original bytes unless [`FileTransaction::commit`] is called.
#[derive(Debug, Default)]
pub struct FileTransaction {
    originals: Vec<(PathBuf, Option<Vec<u8>>)>,
    done: bool,
}

impl FileTransaction {
    pub fn new() -> Self {
        Self::default()
    }

    /// Remember `path`'s current bytes (or absence) before changing it.
    pub fn track(&mut self, path: &Path) -> std::io::Result<()> {
        if self.originals.iter().any(|(p, _)| p == path) {
            return Ok(());
        }
        let bytes = match fs_err::read(path) {
            Ok(b) => Some(b),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        self.originals.push((path.to_path_buf(), bytes));
        Ok(())
    }

    /// Keep the changes.
    pub fn commit(mut self) {
        self.done = true;
    }

    /// Put every tracked file back now.
    pub fn rollback(mut self) -> std::io::Result<()> {
        self.done = true;
        self.restore()
    }

    fn restore(&self) -> std::io::Result<()> {
        for (path, bytes) in &self.originals {
            match bytes {
                Some(bytes) => write_atomic(path, bytes)?,
                None => match fs_err::remove_file(path) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                    _ => {}
                },
            }
        }
        Ok(())
    }
}

impl Drop for FileTransaction {
    fn drop(&mut self) {
        if !self.done
            && let Err(err) = self.restore()
        {
            tracing::error!("failed to restore files after an error: {err}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> String {
        let pin = ComfyUiPin {
            reference: "v0.3.40".into(),
            commit: "a".repeat(40),
        };
        let reqs = parse_requirements(
            "# c\ntorch>=2.0\nTinyNum<2 # pinned\n\n-r other.txt\ncomfy_tiny_a\ntorchvision\n",
        );
        render_new(&NewManifest {
            name: "my env",
            python: "3.11",
            comfyui: &pin,
            requirements: &reqs,
            backends: &[TorchBackend::cpu(), "cu128".parse().unwrap()],
            torch_index_url: "http://x/whl/",
        })
    }

    #[test]
    fn requirements_split_torch() {
        let reqs = parse_requirements("torch>=2.0\nTinyNum<2 # pinned\ncomfy_tiny_a\n");
        assert_eq!(reqs.dependencies, ["TinyNum<2", "comfy_tiny_a"]);
        assert_eq!(reqs.torch, ["torch>=2.0"]);
        assert_eq!(requirement_name("Comfy_Tiny.A[x]>=1"), "comfy-tiny-a");
    }

    #[test]
    fn new_manifest_reads_back() {
        let text = sample();
        let manifest = Manifest::parse(Path::new("p"), &text).unwrap();
        assert_eq!(manifest.comfyui().unwrap().reference, "v0.3.40");
        assert_eq!(manifest.python().as_deref(), Some("3.11"));
        assert!(
            manifest.dependencies().is_empty(),
            "the user's packages start empty"
        );
        assert_eq!(
            manifest.dependency_group(COMFYUI_GROUP).unwrap(),
            ["TinyNum<2", "comfy_tiny_a"]
        );
        assert_eq!(manifest.schema_version(), MANIFEST_SCHEMA_VERSION);
        assert_eq!(manifest.layout(), Layout::Split);
        assert_eq!(manifest.torch_backends().len(), 2);
        let parsed: toml::Table = toml::from_str(&text).unwrap();
        let extras = &parsed["project"]["optional-dependencies"];
        assert_eq!(extras["cpu"][0].as_str(), Some("torch>=2.0"));
        assert_eq!(extras["cu128"][1].as_str(), Some("torchvision"));
        assert_eq!(
            parsed["tool"]["uv"]["index"][1]["url"].as_str(),
            Some("http://x/whl/cu128")
        );
        assert!(text.contains("name = \"comfydock-env-my-env\""));
    }

    #[test]
    fn edits_keep_comments() {
        let mut manifest = Manifest::parse(Path::new("p"), &sample()).unwrap();
        manifest.set_dependencies(&["a>=1".into(), "b".into()]);
        manifest.set_comfyui(&ComfyUiPin {
            reference: "v0.3.41".into(),
            commit: "b".repeat(40),
        });
        let text = manifest.render();
        assert!(text.contains("# Your own Python packages"), "{text}");
        assert!(
            text.contains("dependencies = [\n    \"a>=1\",\n    \"b\",\n]"),
            "{text}"
        );
        assert_eq!(manifest.comfyui().unwrap().reference, "v0.3.41");
    }

    #[test]
    fn torch_backends_rewrite_every_uv_section() {
        let mut manifest = Manifest::parse(Path::new("p"), &sample()).unwrap();
        let rocm: TorchBackend = "rocm6.3".parse().unwrap();
        let cu128: TorchBackend = "cu128".parse().unwrap();
        manifest.set_torch_backends(
            &[TorchBackend::cpu(), cu128.clone(), rocm.clone()],
            "http://y/whl",
        );
        let text = manifest.render();
        let parsed: toml::Table = toml::from_str(&text).unwrap();
        assert_eq!(
            parsed["project"]["optional-dependencies"]["rocm6-3"][0].as_str(),
            Some("torch>=2.0"),
            "a new extra carries the torch requirements of the others"
        );
        let uv = &parsed["tool"]["uv"];
        let conflicts: Vec<&str> = uv["conflicts"][0]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["extra"].as_str().unwrap())
            .collect();
        assert_eq!(conflicts, ["cpu", "cu128", "rocm6-3"]);
        let indexes: Vec<(&str, &str)> = uv["index"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| (i["name"].as_str().unwrap(), i["url"].as_str().unwrap()))
            .collect();
        assert_eq!(
            indexes,
            [
                ("pytorch-cpu", "http://x/whl/cpu"),
                ("pytorch-cu128", "http://x/whl/cu128"),
                ("pytorch-rocm6-3", "http://y/whl/rocm6.3"),
            ],
            "existing indexes keep their URL"
        );
        assert_eq!(uv["sources"]["torchaudio"][2]["extra"].as_str(), Some("rocm6-3"));
        assert_eq!(
            uv["sources"]["torch"][2]["index"].as_str(),
            Some("pytorch-rocm6-3")
        );

        let mut reread = Manifest::parse(Path::new("p"), &text).unwrap();
        assert_eq!(
            reread.torch_backends(),
            [TorchBackend::cpu(), cu128.clone(), rocm.clone()]
        );
        assert_eq!(reread.backend_extras().len(), 3);
        reread.set_torch_backends(&[TorchBackend::cpu(), rocm.clone()], "http://y/whl");
        let text = reread.render();
        let parsed: toml::Table = toml::from_str(&text).unwrap();
        assert!(
            parsed["project"]["optional-dependencies"].get("cu128").is_none(),
            "{text}"
        );
        assert_eq!(
            parsed["tool"]["uv"]["index"].as_array().unwrap().len(),
            2,
            "{text}"
        );
        assert_eq!(parsed["tool"]["uv"]["conflicts"][0].as_array().unwrap().len(), 2);
        assert_eq!(
            parsed["tool"]["uv"]["sources"]["torch"].as_array().unwrap().len(),
            2
        );
        let single = {
            let mut m = Manifest::parse(Path::new("p"), &text).unwrap();
            m.set_torch_backends(&[rocm], "http://y/whl");
            m.render()
        };
        assert!(
            !single.contains("conflicts"),
            "one backend needs no conflict set: {single}"
        );
    }

    #[test]
    fn constraints_round_trip_and_vanish_when_empty() {
        let mut manifest = Manifest::parse(Path::new("p"), &sample()).unwrap();
        assert!(manifest.constraints().is_empty());
        manifest.set_constraints(&["tinynum<2".into()]);
        let text = manifest.render();
        assert!(
            text.contains("constraint-dependencies = [\n    \"tinynum<2\",\n]"),
            "{text}"
        );
        let mut reparsed = Manifest::parse(Path::new("p"), &text).unwrap();
        assert_eq!(reparsed.constraints(), ["tinynum<2"]);
        reparsed.set_constraints(&[]);
        assert!(!reparsed.render().contains("constraint-dependencies"));
    }

    #[test]
    fn a_newer_schema_is_refused_and_a_missing_one_is_legacy() {
        let newer = sample().replace(
            &format!("schema_version = {MANIFEST_SCHEMA_VERSION}"),
            &format!("schema_version = {}", MANIFEST_SCHEMA_VERSION + 1),
        );
        let err = Manifest::parse(Path::new("p"), &newer).unwrap_err();
        assert!(
            matches!(err, ManifestError::NewerSchema { found, .. } if found == MANIFEST_SCHEMA_VERSION + 1)
        );
        assert!(err.hint().unwrap().contains("upgrade comfydock"));
        let bare = Manifest::parse(Path::new("p"), "[project]\nname = \"x\"\n").unwrap();
        assert_eq!(bare.layout(), Layout::Legacy);
    }

    #[test]
    fn transaction_restores_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        let b = dir.path().join("b");
        fs_err::write(&a, "original").unwrap();
        {
            let mut tx = FileTransaction::new();
            tx.track(&a).unwrap();
            tx.track(&b).unwrap();
            fs_err::write(&a, "changed").unwrap();
            fs_err::write(&b, "new").unwrap();
        }
        assert_eq!(fs_err::read_to_string(&a).unwrap(), "original");
        assert!(!b.exists());
    }
}

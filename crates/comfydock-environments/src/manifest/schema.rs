//! The typed `[tool.comfydock]` section of an environment manifest: the one definition every
//! reader and writer of comfydock's own keys goes through.
//!
//! ```toml
//! [tool.comfydock]
//! schema_version = 2
//! python = "3.12"
//! torch_backends = ["cpu", "cu128"]
//!
//! [tool.comfydock.comfyui]
//! ref = "v0.3.40"
//! commit = "<40 hex>"
//!
//! [tool.comfydock.nodes.my-node]             # see `nodes::entry`
//! source = "registry"
//! version = "1.0.0"
//!
//! [tool.comfydock.workflows."portraits/flux"]
//! tracked = true
//! nodes = ["my-node"]                          # packages the workflow needs
//! node_choices = { MyNodeType = "my-node" }    # decisions of `workflow resolve`
//! unresolved_models = ["vae.safetensors"]
//! [tool.comfydock.workflows."portraits/flux".models.<blake3>]
//! name = "flux.safetensors"                    # as the workflow writes it
//! relative_path = "checkpoints/flux.safetensors"
//! folder = "checkpoints"
//! criticality = "required"                     # required | flexible | optional
//! size = 42
//! sha256 = "<64 hex>"
//! sources = ["https://…"]
//!
//! [tool.comfydock.models.sd15]                 # hand-written catalog, same shape as a pin
//! sha256 = "<64 hex>"
//! target = "checkpoints/sd15.safetensors"
//!
//! [tool.comfydock.api.txt2img]                 # what `serve` exposes
//! expose = ["3.seed"]
//! names = { "3.seed" = "seed" }
//! ```
//!
//! Reading is strict: an unknown key or a value of the wrong shape is a [`SchemaError`] naming
//! the key path and line, never dropped. A model entry accepts the spellings earlier readers
//! took (`target`/`path`/`local_path` for `relative_path`, `filename` for `name`, `hash =
//! "blake3:…"`, `sources` as one URL or `{ url = … }` tables), so hand-written catalogs keep
//! loading.

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::str::FromStr;

use indexmap::IndexMap;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};

pub use comfydock_workflow::Criticality;

use crate::manifest::node_entry::NodeSource;
use crate::torch_backend::TorchBackend;

/// `[tool.comfydock]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolSection {
    /// Absent means schema 1 (see [`super::MANIFEST_SCHEMA_VERSION`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema_version: Option<i64>,
    /// Python minor version, e.g. `3.12`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub python: Option<String>,
    /// Backends the manifest asks uv to lock.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub torch_backends: Vec<TorchBackend>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comfyui: Option<ComfyUiTable>,
    /// Custom nodes by manifest key, in file order.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub nodes: IndexMap<String, NodeTable>,
    /// Tracked workflows and their resolutions, by normalised name, in file order.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub workflows: IndexMap<String, WorkflowEntry>,
    /// The hand-written models catalog, by any key the user chose.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub models: IndexMap<String, ModelEntry>,
    /// What `serve` exposes of each workflow.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub api: IndexMap<String, ApiEntry>,
    /// Node types mapped by hand (`workflow node map`): the package providing each, or `false`
    /// for a type that needs none. Every workflow's resolution follows these first.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub node_mappings: IndexMap<String, NodeMapping>,
}

/// How a node type was mapped by hand.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum NodeMapping {
    /// The package (registry id, git URL or installed node) that provides it.
    Package(String),
    /// `false`: no package provides it and none is needed (resolution skips it).
    NoPackage(NoPackage),
}

/// The `false` of [`NodeMapping::NoPackage`]; `true` is rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoPackage;

impl Serialize for NoPackage {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bool(false)
    }
}

impl<'de> Deserialize<'de> for NoPackage {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if bool::deserialize(deserializer)? {
            Err(de::Error::custom(
                "a node mapping is a package name, or `false` for none",
            ))
        } else {
            Ok(Self)
        }
    }
}

/// `[tool.comfydock.comfyui]`: the exact ComfyUI (both keys are required by the commands that
/// need them, see [`super::Manifest::comfyui`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComfyUiTable {
    #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
}

/// `[tool.comfydock.nodes.<key>]` as stored; [`crate::nodes::NodeEntry`] is the in-memory view
/// (key and defaults filled in). Hashes and commits stay text here: an entry pulled from a
/// teammate is displayed as written and checked where it is used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeTable {
    pub source: NodeSource,
    /// Folder under `custom_nodes`; absent means the key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// Written only when false.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub enabled: bool,
}

/// `[tool.comfydock.workflows."<name>"]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkflowEntry {
    /// Absent means tracked.
    #[serde(default = "yes")]
    pub tracked: bool,
    /// Node packages (registry ids, folder names or URLs) the workflow needs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<String>,
    /// Node type → package, as chosen by `workflow resolve`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_choices: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "WorkflowModels::is_empty")]
    pub models: WorkflowModels,
    /// Model references (as the workflow writes them) no pin covers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unresolved_models: Vec<String>,
    /// Custom node types no known package provides (and no mapping names).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unresolved_nodes: Vec<String>,
    /// Model references the user marked optional (`workflow model set … --optional`): the
    /// workflow runs without them, so they never count as missing required models.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub optional_models: Vec<String>,
}

impl Default for WorkflowEntry {
    fn default() -> Self {
        Self {
            tracked: true,
            nodes: Vec::new(),
            node_choices: BTreeMap::new(),
            models: WorkflowModels::default(),
            unresolved_models: Vec::new(),
            unresolved_nodes: Vec::new(),
            optional_models: Vec::new(),
        }
    }
}

/// Why a resolution cannot be merged into what the manifest holds.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("model {index} of the `models` list has no hash, so it cannot be kept next to pins by hash")]
pub struct UnkeyedModel {
    pub index: usize,
}

impl WorkflowEntry {
    /// Merge a fresh resolution into this entry without losing what the resolution did not
    /// produce: `tracked`, `nodes` and `unresolved_models` are the resolution's (it computes them
    /// whole), `node_choices` are added to, and model pins are merged by hash (fields the fresh pin
    /// has win, sources are joined, pins it does not mention are kept). A reference a kept pin
    /// covers (same `name`) is no longer listed as unresolved.
    pub fn merge_resolution(&mut self, fresh: WorkflowEntry) -> Result<(), UnkeyedModel> {
        let mut pins = self.models.by_hash()?;
        for (hash, pin) in fresh.models.by_hash()? {
            match pins.get_mut(&hash) {
                Some(existing) => existing.merge_from(pin),
                None => {
                    pins.insert(hash, pin);
                }
            }
        }
        self.tracked = fresh.tracked;
        self.nodes = fresh.nodes;
        self.unresolved_nodes = fresh.unresolved_nodes;
        for name in fresh.optional_models {
            if !self.optional_models.contains(&name) {
                self.optional_models.push(name);
            }
        }
        self.node_choices.extend(fresh.node_choices);
        self.unresolved_models = fresh
            .unresolved_models
            .into_iter()
            .filter(|name| !pins.values().any(|p| p.name.as_deref() == Some(name.as_str())))
            .collect();
        self.models = WorkflowModels::ByHash(pins);
        Ok(())
    }
}

/// A workflow's models: pins by hash (what `workflow resolve` writes), or a hand-written list of
/// hashes and tables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkflowModels {
    ByHash(BTreeMap<ModelHash, ModelEntry>),
    Listed(Vec<ListedModel>),
}

impl Default for WorkflowModels {
    fn default() -> Self {
        Self::ByHash(BTreeMap::new())
    }
}

/// One item of a hand-written `models = [...]` list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListedModel {
    Hash(ModelHash),
    Entry(ModelEntry),
}

/// One model of a workflow, whichever way it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkflowModel {
    /// The hash key or list index, for messages (`workflows.<name>.models.<label>`).
    pub label: String,
    /// The hash the entry is keyed by, if any.
    pub key: Option<ModelHash>,
    pub entry: ModelEntry,
}

impl WorkflowModels {
    pub fn is_empty(&self) -> bool {
        match self {
            Self::ByHash(m) => m.is_empty(),
            Self::Listed(l) => l.is_empty(),
        }
    }

    /// Every model with its label and key.
    pub fn entries(&self) -> Vec<WorkflowModel> {
        match self {
            Self::ByHash(map) => map
                .iter()
                .map(|(hash, entry)| WorkflowModel {
                    label: hash.to_string(),
                    key: Some(hash.clone()),
                    entry: entry.clone(),
                })
                .collect(),
            Self::Listed(items) => items
                .iter()
                .enumerate()
                .map(|(i, item)| match item {
                    ListedModel::Hash(hash) => WorkflowModel {
                        label: hash.to_string(),
                        key: Some(hash.clone()),
                        entry: ModelEntry::default(),
                    },
                    ListedModel::Entry(entry) => WorkflowModel {
                        label: i.to_string(),
                        key: None,
                        entry: entry.clone(),
                    },
                })
                .collect(),
        }
    }

    /// The models keyed by hash (a listed table keyed by its own blake3 or sha256).
    fn by_hash(&self) -> Result<BTreeMap<ModelHash, ModelEntry>, UnkeyedModel> {
        match self {
            Self::ByHash(map) => Ok(map.clone()),
            Self::Listed(items) => items
                .iter()
                .enumerate()
                .map(|(index, item)| match item {
                    ListedModel::Hash(hash) => Ok((hash.clone(), ModelEntry::default())),
                    ListedModel::Entry(entry) => {
                        let hash = entry
                            .blake3(None)
                            .map(ModelHash::Blake3)
                            .or_else(|| entry.sha256(None).map(ModelHash::Sha256))
                            .ok_or(UnkeyedModel { index })?;
                        Ok((hash, entry.clone()))
                    }
                })
                .collect(),
        }
    }
}

/// A model pin (in a workflow) or catalog entry (in `[tool.comfydock.models]`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelEntry {
    /// The file as the workflow names it (`filename` is accepted too).
    #[serde(default, alias = "filename", skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Where it goes under a models root (`checkpoints/x.safetensors`); `target`, `path` and
    /// `local_path` are accepted spellings.
    #[serde(
        default,
        alias = "target",
        alias = "path",
        alias = "local_path",
        skip_serializing_if = "Option::is_none"
    )]
    pub relative_path: Option<String>,
    /// The models folder (`checkpoints`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub folder: Option<String>,
    /// Absent means required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub criticality: Option<Criticality>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<Sha256>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blake3: Option<Blake3>,
    /// `blake3:<hex>` or `sha256:<hex>` (bare hex is blake3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<ModelHash>,
    /// Download URLs, best first: strings, or `{ url = "…" }` tables.
    #[serde(
        default,
        alias = "source",
        deserialize_with = "one_or_many",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub sources: Vec<ModelSource>,
    /// One more download URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

impl ModelEntry {
    /// blake3 from the key it is stored under, else `blake3`, else `hash`.
    pub fn blake3(&self, key: Option<&ModelHash>) -> Option<Blake3> {
        [key, self.hash.as_ref()]
            .into_iter()
            .flatten()
            .find_map(|h| match h {
                ModelHash::Blake3(b) => Some(b.clone()),
                ModelHash::Sha256(_) => None,
            })
            .or_else(|| self.blake3.clone())
    }

    /// sha256 from the key it is stored under, else `sha256`, else `hash`.
    pub fn sha256(&self, key: Option<&ModelHash>) -> Option<Sha256> {
        let from = |h: Option<&ModelHash>| match h {
            Some(ModelHash::Sha256(s)) => Some(s.clone()),
            _ => None,
        };
        from(key)
            .or_else(|| self.sha256.clone())
            .or_else(|| from(self.hash.as_ref()))
    }

    /// The path under a models root as written: `relative_path`, else `folder/name` (just
    /// `name` when it already starts with the folder or there is no folder). Unchecked; callers
    /// confine it.
    pub fn raw_target(&self) -> Option<String> {
        if let Some(path) = &self.relative_path {
            return Some(path.clone());
        }
        let name = self.name.as_ref()?;
        Some(match &self.folder {
            Some(folder) if !name.starts_with(&format!("{folder}/")) => format!("{folder}/{name}"),
            _ => name.clone(),
        })
    }

    /// Every URL: `sources` in order, then `url`.
    pub fn urls(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for url in self
            .sources
            .iter()
            .map(|s| s.url.as_str())
            .chain(self.url.as_deref())
        {
            if !out.iter().any(|u| u == url) {
                out.push(url.to_owned());
            }
        }
        out
    }

    /// Take every field `fresh` has; keep the others; join the sources (fresh first).
    pub fn merge_from(&mut self, fresh: ModelEntry) {
        let mut sources = fresh.sources;
        for s in std::mem::take(&mut self.sources) {
            if !sources.iter().any(|x| x.url == s.url) {
                sources.push(s);
            }
        }
        self.sources = sources;
        macro_rules! take {
            ($($field:ident),*) => { $( if fresh.$field.is_some() { self.$field = fresh.$field; } )* };
        }
        take!(
            name,
            relative_path,
            folder,
            criticality,
            size,
            sha256,
            blake3,
            hash,
            url
        );
    }
}

/// A download URL of a model (`{ type = "url", url = "…" }` tables read as their URL).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelSource {
    pub url: String,
}

impl Serialize for ModelSource {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.url)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SourceTable {
    url: String,
    #[serde(rename = "type", default)]
    _kind: Option<String>,
}

impl<'de> Deserialize<'de> for ModelSource {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SourceVisitor;
        impl<'de> Visitor<'de> for SourceVisitor {
            type Value = ModelSource;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a URL or a `{ url = \"…\" }` table")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ModelSource, E> {
                Ok(ModelSource { url: v.to_owned() })
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<ModelSource, A::Error> {
                let table = SourceTable::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(ModelSource { url: table.url })
            }
        }
        deserializer.deserialize_any(SourceVisitor)
    }
}

/// `sources = "url"`, `sources = { url = … }` or a list of either.
fn one_or_many<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<ModelSource>, D::Error> {
    struct Many;
    impl<'de> Visitor<'de> for Many {
        type Value = Vec<ModelSource>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a URL, a `{ url = \"…\" }` table, or a list of them")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(vec![ModelSource { url: v.to_owned() }])
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            let table = SourceTable::deserialize(de::value::MapAccessDeserializer::new(map))?;
            Ok(vec![ModelSource { url: table.url }])
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(source) = seq.next_element::<ModelSource>()? {
                out.push(source);
            }
            Ok(out)
        }
    }
    deserializer.deserialize_any(Many)
}

impl Serialize for WorkflowModels {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap as _, SerializeSeq as _};
        match self {
            Self::ByHash(map) => {
                let mut out = serializer.serialize_map(Some(map.len()))?;
                for (hash, entry) in map {
                    out.serialize_entry(&hash.to_string(), entry)?;
                }
                out.end()
            }
            Self::Listed(items) => {
                let mut out = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    match item {
                        ListedModel::Hash(hash) => out.serialize_element(&hash.to_string())?,
                        ListedModel::Entry(entry) => out.serialize_element(entry)?,
                    }
                }
                out.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for ListedModel {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ItemVisitor;
        impl<'de> Visitor<'de> for ItemVisitor {
            type Value = ListedModel;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a model hash or a model table")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ListedModel, E> {
                v.parse().map(ListedModel::Hash).map_err(E::custom)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<ListedModel, A::Error> {
                ModelEntry::deserialize(de::value::MapAccessDeserializer::new(map)).map(ListedModel::Entry)
            }
        }
        deserializer.deserialize_any(ItemVisitor)
    }
}

impl<'de> Deserialize<'de> for WorkflowModels {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ModelsVisitor;
        impl<'de> Visitor<'de> for ModelsVisitor {
            type Value = WorkflowModels;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a table of models by hash, or a list of hashes and model tables")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<WorkflowModels, A::Error> {
                let mut out = BTreeMap::new();
                while let Some(hash) = map.next_key::<ModelHash>()? {
                    let entry = map.next_value::<ModelEntry>()?;
                    if out.insert(hash.clone(), entry).is_some() {
                        return Err(de::Error::custom(format!("the model `{hash}` is listed twice")));
                    }
                }
                Ok(WorkflowModels::ByHash(out))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<WorkflowModels, A::Error> {
                let mut out = Vec::new();
                while let Some(item) = seq.next_element::<ListedModel>()? {
                    out.push(item);
                }
                Ok(WorkflowModels::Listed(out))
            }
        }
        deserializer.deserialize_any(ModelsVisitor)
    }
}

/// `[tool.comfydock.api.<workflow>]`: which inputs `serve` exposes and under what names.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiEntry {
    /// `"<node id or title>.<input>"`; absent exposes every candidate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expose: Option<Vec<String>>,
    /// Parameter names by input reference.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub names: BTreeMap<String, String>,
}

fn yes() -> bool {
    true
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's `skip_serializing_if` passes a reference
fn is_true(b: &bool) -> bool {
    *b
}

/// A hash that is not 64 hex digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{value}` is not a {algorithm} hash (64 hex digits{prefixes})")]
pub struct InvalidHash {
    pub value: String,
    pub algorithm: &'static str,
    prefixes: &'static str,
}

macro_rules! hex64 {
    ($name:ident, $algorithm:literal) => {
        #[doc = concat!("A ", $algorithm, " digest: 64 lower-case hex digits.")]
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = InvalidHash;
            /// Case-insensitive; an `<algorithm>:` prefix is accepted.
            fn from_str(s: &str) -> Result<Self, InvalidHash> {
                let lower = s.trim().to_ascii_lowercase();
                let hex = lower
                    .strip_prefix(concat!($algorithm, ":"))
                    .unwrap_or(&lower);
                if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                    Ok(Self(hex.to_owned()))
                } else {
                    Err(InvalidHash {
                        value: s.to_owned(),
                        algorithm: $algorithm,
                        prefixes: "",
                    })
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                text.parse().map_err(de::Error::custom)
            }
        }
    };
}

hex64!(Blake3, "blake3");
hex64!(Sha256, "sha256");

/// A model identity: `blake3:<hex>`, `sha256:<hex>`, or bare hex (blake3, comfydock's key).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ModelHash {
    Blake3(Blake3),
    Sha256(Sha256),
}

impl FromStr for ModelHash {
    type Err = InvalidHash;
    fn from_str(s: &str) -> Result<Self, InvalidHash> {
        let lower = s.trim().to_ascii_lowercase();
        let parsed = if lower.starts_with("sha256:") {
            lower.parse().map(Self::Sha256)
        } else {
            lower.parse().map(Self::Blake3)
        };
        parsed.map_err(|_| InvalidHash {
            value: s.to_owned(),
            algorithm: "model",
            prefixes: ", optionally after `blake3:` or `sha256:`",
        })
    }
}

/// Bare hex for blake3 (how `workflow resolve` keys pins), `sha256:<hex>` otherwise.
impl fmt::Display for ModelHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Blake3(h) => write!(f, "{h}"),
            Self::Sha256(h) => write!(f, "sha256:{h}"),
        }
    }
}

impl Serialize for ModelHash {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ModelHash {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(de::Error::custom)
    }
}

/// A value in `[tool.comfydock]` that does not fit the schema.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}`{key}`: {message}", line.map(|l| format!("line {l}: ")).unwrap_or_default())]
pub struct SchemaError {
    /// The full key path, e.g. `tool.comfydock.nodes."my node".version`.
    pub key: String,
    /// 1-based line of the value, when known.
    pub line: Option<usize>,
    pub message: String,
}

/// Read `[tool.comfydock]` of a manifest's text (absent: the default, empty section).
pub fn read(text: &str) -> Result<ToolSection, SchemaError> {
    #[derive(Deserialize)]
    struct Root {
        #[serde(default)]
        tool: Option<Tool>,
    }
    #[derive(Deserialize)]
    struct Tool {
        #[serde(default)]
        comfydock: Option<ToolSection>,
    }
    // `toml_edit`'s deserializer keeps file order (nodes are listed as written) and spans.
    let deserializer = toml_edit::de::Deserializer::parse(text).map_err(|e| SchemaError {
        key: String::new(),
        line: e.span().map(|s| line_of(text, s.start)),
        message: e.message().to_owned(),
    })?;
    match serde_path_to_error::deserialize::<_, Root>(deserializer) {
        Ok(root) => Ok(root.tool.and_then(|t| t.comfydock).unwrap_or_default()),
        Err(err) => {
            // The path ends at the offending key (an unknown one included).
            let key = key_path(err.path());
            let inner = err.into_inner();
            let message = inner.message().to_owned();
            Err(SchemaError {
                key,
                line: inner.span().map(|s| line_of(text, s.start)),
                message,
            })
        }
    }
}

/// A manifest path written as TOML keys: bare where TOML allows, quoted otherwise.
fn key_path(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for segment in path {
        match segment {
            Segment::Map { key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(&quote_key(key));
            }
            Segment::Seq { index } => {
                let _ = write!(out, "[{index}]");
            }
            Segment::Enum { .. } | Segment::Unknown => {}
        }
    }
    out
}

/// `my-node` stays bare; `../x` becomes `"../x"`.
pub fn quote_key(key: &str) -> String {
    if !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        key.to_owned()
    } else {
        toml_edit::Value::from(key).to_string().trim().to_owned()
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset).map_or(0, |t| t.matches('\n').count()) + 1
}

/// A typed value as a `toml_edit` table (for writing into the document). Maps of records (nodes,
/// workflows, model pins) become `[a.b.c]` tables, one per record; small maps of plain values
/// (`node_choices`, `names`) stay inline.
pub(crate) fn to_table<T: Serialize>(value: &T) -> Result<toml_edit::Table, toml_edit::ser::Error> {
    let mut table = toml_edit::ser::to_document(value)?.as_table().clone();
    expand_records(&mut table);
    Ok(table)
}

/// Turn every inline table in `table` whose values are all tables into a table of tables.
fn expand_records(table: &mut toml_edit::Table) {
    use toml_edit::{Item, Value};
    for (_, item) in table.iter_mut() {
        let records = match &*item {
            Item::Value(Value::InlineTable(inline)) => {
                !inline.is_empty() && inline.iter().all(|(_, v)| v.is_inline_table())
            }
            _ => false,
        };
        if !records {
            continue;
        }
        let Item::Value(Value::InlineTable(inline)) = std::mem::take(item) else {
            continue;
        };
        let mut outer = toml_edit::Table::new();
        outer.set_implicit(true);
        for (key, value) in inline {
            if let Value::InlineTable(record) = value {
                let mut record = record.into_table();
                expand_records(&mut record);
                outer.insert(&key, Item::Table(record));
            }
        }
        *item = Item::Table(outer);
    }
}

/// Make `existing` hold exactly `fresh`'s keys and values, keeping the order, comments and
/// layout of the keys both have.
pub(crate) fn update_table(existing: &mut toml_edit::Table, fresh: toml_edit::Table) {
    use toml_edit::Item;
    let stale: Vec<String> = existing
        .iter()
        .map(|(k, _)| k.to_owned())
        .filter(|k| !fresh.contains_key(k))
        .collect();
    for key in stale {
        existing.remove(&key);
    }
    for (key, item) in fresh {
        match (existing.get_mut(&key), item) {
            (Some(Item::Table(old)), Item::Table(new)) => update_table(old, new),
            (Some(Item::Value(old)), Item::Value(mut new)) => {
                *new.decor_mut() = old.decor().clone();
                *old = new;
            }
            (Some(old), new) => *old = new,
            (None, new) => {
                existing.insert(&key, new);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::manifest::{Manifest, ManifestError};
    use comfydock_foundation::Hinted as _;

    fn hex(c: char) -> String {
        c.to_string().repeat(64)
    }

    /// Every part of the section, in the spellings comfydock writes and the ones it accepts.
    fn full() -> String {
        format!(
            r#"[project]
name = "x"

[tool.comfydock]
schema_version = 2
python = "3.12"
torch_backends = ["cpu", "rocm6.3"]

[tool.comfydock.comfyui]
ref = "v0.3.40"
commit = "{commit}"

[tool.comfydock.nodes.my-node]
source = "registry"
name = "my-node"
version = "1.0.0"
sha256 = "{a}"
size = 12

[tool.comfydock.nodes."Old Dev"]
source = "development"
path = "/src/old"
enabled = false

[tool.comfydock.workflows."portraits/flux"]
tracked = true
nodes = ["my-node"]
node_choices = {{ MyType = "my-node" }}
unresolved_models = ["vae.safetensors"]

[tool.comfydock.workflows."portraits/flux".models.{b}]
name = "flux.safetensors"
relative_path = "checkpoints/flux.safetensors"
folder = "checkpoints"
criticality = "flexible"
size = 42
sha256 = "{A}"
sources = ["https://example.com/flux"]

[tool.comfydock.workflows.listed]
models = ["blake3:{c}", {{ filename = "x.pt", folder = "loras", sha256 = "{a}", sources = [{{ type = "url", url = "https://example.com/x" }}] }}]

[tool.comfydock.models.sd15]
hash = "sha256:{a}"
target = "checkpoints/sd15.safetensors"
sources = "https://example.com/sd15"
criticality = "optional"

[tool.comfydock.api.txt2img]
expose = ["3.seed"]
names = {{ "3.seed" = "seed" }}
"#,
            commit = "f".repeat(40),
            a = hex('a'),
            A = hex('A'),
            b = hex('b'),
            c = hex('c'),
        )
    }

    #[test]
    fn the_whole_section_reads_typed_and_round_trips() {
        let tool = read(&full()).unwrap();
        assert_eq!(tool.schema_version, Some(2));
        assert_eq!(tool.torch_backends.len(), 2);
        assert_eq!(
            tool.comfyui.as_ref().unwrap().reference.as_deref(),
            Some("v0.3.40")
        );
        let keys: Vec<&str> = tool.nodes.keys().map(String::as_str).collect();
        assert_eq!(keys, ["my-node", "Old Dev"], "file order");
        assert_eq!(tool.nodes["Old Dev"].source, NodeSource::Dev);
        assert!(!tool.nodes["Old Dev"].enabled);

        let flux = &tool.workflows["portraits/flux"];
        assert_eq!(flux.node_choices["MyType"], "my-node");
        let models = flux.models.entries();
        assert_eq!(models.len(), 1);
        let pin = &models[0];
        assert_eq!(pin.entry.criticality, Some(Criticality::Flexible));
        assert_eq!(
            pin.entry.sha256.as_ref().unwrap().as_str(),
            hex('a'),
            "hashes are lower-cased"
        );
        assert_eq!(pin.entry.blake3(pin.key.as_ref()).unwrap().as_str(), hex('b'));
        assert_eq!(
            pin.entry.raw_target().as_deref(),
            Some("checkpoints/flux.safetensors")
        );

        let listed = tool.workflows["listed"].models.entries();
        assert!(tool.workflows["listed"].tracked, "absent means tracked");
        assert_eq!(listed[0].key, Some(ModelHash::Blake3(hex('c').parse().unwrap())));
        assert_eq!(listed[1].entry.raw_target().as_deref(), Some("loras/x.pt"));
        assert_eq!(listed[1].entry.urls(), ["https://example.com/x"]);

        let sd15 = &tool.models["sd15"];
        assert_eq!(sd15.sha256(None).unwrap().as_str(), hex('a'));
        assert_eq!(sd15.blake3(None), None);
        assert_eq!(sd15.urls(), ["https://example.com/sd15"]);
        assert_eq!(tool.api["txt2img"].names["3.seed"], "seed");

        // Written back through the types (nested under `[tool.comfydock]`) and read again.
        let section = to_table(&tool).unwrap();
        let mut wrapped = toml_edit::DocumentMut::new();
        wrapped["tool"] = toml_edit::table();
        wrapped["tool"]["comfydock"] = toml_edit::Item::Table(section);
        assert_eq!(read(&wrapped.to_string()).unwrap(), tool, "{wrapped}");
    }

    fn error(text: &str) -> SchemaError {
        read(text).unwrap_err()
    }

    #[test]
    fn every_reader_error_names_the_key_and_line() {
        let node = "[tool.comfydock.nodes.foo]\nsource = \"registry\"\n";
        let cases: Vec<(String, &str)> = vec![
            (format!("{node}version = 1\n"), "tool.comfydock.nodes.foo.version"),
            (
                "[tool.comfydock.nodes.\"my node\"]\nsource = \"registry\"\ncolour = \"red\"\n".into(),
                "tool.comfydock.nodes.\"my node\".colour",
            ),
            (
                "[tool.comfydock.nodes.foo]\nsource = \"ftp\"\n".into(),
                "tool.comfydock.nodes.foo.source",
            ),
            (
                "[tool.comfydock.nodes.foo]\nversion = \"1\"\n".into(),
                "tool.comfydock.nodes.foo",
            ),
            ("[tool.comfydock]\nbogus = 1\n".into(), "tool.comfydock.bogus"),
            (
                "[tool.comfydock]\ntorch_backends = [\"cuda\"]\n".into(),
                "tool.comfydock.torch_backends[0]",
            ),
            (
                "[tool.comfydock]\nschema_version = \"2\"\n".into(),
                "tool.comfydock.schema_version",
            ),
            (
                "[tool.comfydock.comfyui]\nref = \"v1\"\nbranch = \"x\"\n".into(),
                "tool.comfydock.comfyui.branch",
            ),
            (
                "[tool.comfydock.workflows.w]\ntracked = \"yes\"\n".into(),
                "tool.comfydock.workflows.w.tracked",
            ),
            (
                "[tool.comfydock.workflows.w]\nrequires = { nodes = [\"a\"] }\n".into(),
                "tool.comfydock.workflows.w.requires",
            ),
            (
                format!(
                    "[tool.comfydock.workflows.w.models.{}]\ncriticality = \"sometimes\"\n",
                    hex('b')
                ),
                "tool.comfydock.workflows.w.models.bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb.criticality",
            ),
            (
                "[tool.comfydock.workflows.w.models.abc]\nname = \"x\"\n".into(),
                "tool.comfydock.workflows.w.models.abc",
            ),
            (
                "[tool.comfydock.models.m]\nsha256 = \"1234\"\n".into(),
                "tool.comfydock.models.m.sha256",
            ),
            (
                "[tool.comfydock.models.m]\nsources = [42]\n".into(),
                "tool.comfydock.models.m.sources[0]",
            ),
            (
                "[tool.comfydock.api.w]\nexposed = []\n".into(),
                "tool.comfydock.api.w.exposed",
            ),
        ];
        for (text, key) in cases {
            let err = error(&text);
            assert_eq!(err.key, key, "{text}\n{err}");
            assert!(err.to_string().contains(&format!("`{key}`")), "{err}");
            assert!(err.line.is_some_and(|l| l >= 1), "{text}: no line in {err}");
        }
        let err = error(&format!("{node}\n\nversion = 1\n"));
        assert_eq!(err.line, Some(5), "{err}");
        assert!(err.to_string().starts_with("line 5: "), "{err}");
    }

    #[test]
    fn the_manifest_error_names_the_file_and_hints_at_the_key() {
        let err = Manifest::parse(
            Path::new("/envs/a/.cec/pyproject.toml"),
            "[tool.comfydock.nodes.foo]\nsource = \"registry\"\nversion = 1\n",
        )
        .unwrap_err();
        assert!(matches!(err, ManifestError::Schema { .. }));
        let text = err.to_string();
        assert!(text.contains("/envs/a/.cec/pyproject.toml"), "{text}");
        assert!(text.contains("`tool.comfydock.nodes.foo.version`"), "{text}");
        assert!(err.hint().unwrap().contains("tool.comfydock.nodes.foo.version"));
    }

    #[test]
    fn a_newer_schema_is_refused_before_its_unknown_keys_are_read() {
        let err = Manifest::parse(
            Path::new("p"),
            "[tool.comfydock]\nschema_version = 3\nfuture_key = true\n",
        )
        .unwrap_err();
        assert!(
            matches!(err, ManifestError::NewerSchema { found: 3, .. }),
            "{err}"
        );
        let hint = err.hint().unwrap();
        assert!(
            hint.contains("newer comfydock") && hint.contains("cargo install"),
            "{hint}"
        );
    }

    #[test]
    fn a_schema_1_manifest_reads_as_legacy_with_its_entries() {
        let text = "[project]\nname = \"x\"\ndependencies = [\"a\"]\n\n[tool.comfydock]\npython = \"3.11\"\n\n[tool.comfydock.nodes.n]\nsource = \"registry\"\nversion = \"1.0.0\"\n";
        let manifest = Manifest::parse(Path::new("p"), text).unwrap();
        assert_eq!(manifest.schema_version(), 1);
        assert_eq!(manifest.layout(), crate::manifest::Layout::Legacy);
        assert_eq!(manifest.nodes()["n"].version.as_deref(), Some("1.0.0"));
    }

    #[test]
    fn criticality_reads_what_older_writers_wrote() {
        // `format!("{:?}").to_ascii_lowercase()` of every variant, as `workflow resolve` wrote it.
        for (old, expected) in [
            ("required", Criticality::Required),
            ("flexible", Criticality::Flexible),
            ("optional", Criticality::Optional),
        ] {
            assert_eq!(format!("{expected:?}").to_ascii_lowercase(), old);
            let tool = read(&format!("[tool.comfydock.models.m]\ncriticality = \"{old}\"\n")).unwrap();
            assert_eq!(tool.models["m"].criticality, Some(expected));
            let written = toml_edit::ser::to_string(&tool.models["m"]).unwrap();
            assert_eq!(written.trim(), format!("criticality = \"{old}\""));
        }
    }

    #[test]
    fn hashes_are_checked() {
        assert!("abc".parse::<Blake3>().is_err());
        assert!(hex('g').parse::<Sha256>().is_err());
        assert_eq!(
            format!("sha256:{}", hex('A')).parse::<Sha256>().unwrap().as_str(),
            hex('a')
        );
        let sha: ModelHash = format!("sha256:{}", hex('a')).parse().unwrap();
        assert_eq!(sha.to_string(), format!("sha256:{}", hex('a')));
        let b3: ModelHash = format!("blake3:{}", hex('b')).parse().unwrap();
        assert_eq!(b3.to_string(), hex('b'), "blake3 keys are written bare");
        assert!(format!("md5:{}", hex('a')).parse::<ModelHash>().is_err());
    }

    /// `workflow resolve` on a machine whose model index knows less than the manifest: what it
    /// did not produce stays.
    #[test]
    fn recording_a_resolution_keeps_pins_sources_and_choices_it_did_not_produce() {
        let (a, b) = (hex('a'), hex('b'));
        let text = format!(
            r#"[project]
name = "x"

[tool.comfydock.workflows.flow]
tracked = true
nodes = ["old-pack"]
node_choices = {{ OldType = "old-pack", Shared = "old-pack" }}

# pinned by a teammate
[tool.comfydock.workflows.flow.models.{a}]
name = "dream.safetensors"
relative_path = "checkpoints/dream.safetensors"
criticality = "required"
size = 7
sha256 = "{b}"
sources = ["https://mirror.example/dream"] # their mirror

[tool.comfydock.workflows.flow.models.{b}]
name = "detail.safetensors"
relative_path = "loras/detail.safetensors"
sources = ["https://example.com/detail"]
"#
        );
        let mut manifest = Manifest::parse(Path::new("p"), &text).unwrap();
        let mut fresh_pin = ModelEntry {
            name: Some("dream.safetensors".into()),
            relative_path: Some("checkpoints/dream.safetensors".into()),
            folder: Some("checkpoints".into()),
            criticality: Some(Criticality::Required),
            size: Some(7),
            ..ModelEntry::default()
        };
        fresh_pin.sources.push(ModelSource {
            url: "https://origin.example/dream".into(),
        });
        let fresh = WorkflowEntry {
            tracked: true,
            nodes: vec!["new-pack".into()],
            node_choices: BTreeMap::from([("Shared".to_owned(), "new-pack".to_owned())]),
            models: WorkflowModels::ByHash(BTreeMap::from([(
                ModelHash::Blake3(a.parse().unwrap()),
                fresh_pin,
            )])),
            // This index does not know the LoRA; the kept pin covers it.
            unresolved_models: vec!["detail.safetensors".into(), "vae.safetensors".into()],
            unresolved_nodes: Vec::new(),
            optional_models: Vec::new(),
        };
        manifest.record_workflow_resolution("flow", fresh).unwrap();

        let rendered = manifest.render();
        assert!(rendered.contains("# pinned by a teammate"), "{rendered}");
        let reread = Manifest::parse(Path::new("p"), &rendered).unwrap();
        assert_eq!(reread.tool(), manifest.tool(), "the typed view matches the file");
        let entry = &reread.tool().workflows["flow"];
        assert_eq!(entry.nodes, ["new-pack"], "the resolution owns `nodes`");
        assert_eq!(entry.node_choices["Shared"], "new-pack");
        assert_eq!(entry.node_choices["OldType"], "old-pack", "earlier choices stay");
        assert_eq!(entry.unresolved_models, ["vae.safetensors"]);
        let WorkflowModels::ByHash(pins) = &entry.models else {
            panic!("pins by hash: {entry:?}")
        };
        let dream = &pins[&ModelHash::Blake3(a.parse().unwrap())];
        assert_eq!(
            dream.urls(),
            ["https://origin.example/dream", "https://mirror.example/dream"],
            "sources are joined"
        );
        assert_eq!(
            dream.sha256.as_ref().map(Sha256::as_str),
            Some(b.as_str()),
            "sha256 kept"
        );
        assert_eq!(dream.folder.as_deref(), Some("checkpoints"), "new fields added");
        let detail = &pins[&ModelHash::Blake3(b.parse().unwrap())];
        assert_eq!(
            detail.urls(),
            ["https://example.com/detail"],
            "an unmentioned pin stays"
        );
    }

    #[test]
    fn a_listed_model_without_a_hash_is_not_overwritten() {
        let text = "[tool.comfydock.workflows.w]\nmodels = [{ name = \"x.pt\", folder = \"loras\" }]\n";
        let mut manifest = Manifest::parse(Path::new("p"), text).unwrap();
        let err = manifest
            .record_workflow_resolution("w", WorkflowEntry::default())
            .unwrap_err();
        assert!(matches!(err, ManifestError::Unmergeable { .. }), "{err}");
        assert_eq!(manifest.render(), text, "nothing written");
    }
}

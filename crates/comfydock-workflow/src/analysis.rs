//! What a workflow needs: node types (built-in / custom, with package hints), model files (with folder,
//! declared URL/hash and criticality) and other input files.

use std::collections::{BTreeMap, HashMap};
use std::sync::LazyLock;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::builtins::{BuiltinNodes, NodeCategory, is_frontend_only, looks_like_subgraph_type};
use crate::document::{
    ApiInput, ApiWorkflow, NodeMode, NodeView, UiWorkflow, WidgetRef, WorkflowDocument, WorkflowFormat,
};
use crate::error::WorkflowError;
use crate::flatten::{FlatGraph, flatten};
use crate::resolve::{Resolver, Source};

mod streamed;

pub use streamed::analyze_json;

const LOADER_TABLE: &str = include_str!("../data/model_loaders.tsv");

/// File extensions the frontend treats as model files.
pub const MODEL_EXTENSIONS: &[&str] = &[
    ".safetensors",
    ".ckpt",
    ".pt",
    ".pt2",
    ".pth",
    ".bin",
    ".sft",
    ".onnx",
    ".gguf",
];

/// A built-in node input that takes a model filename.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModelLoaderInput {
    pub node_type: String,
    pub input_name: String,
    /// Index into positional `widgets_values` (`None` for dynamic inputs).
    pub widget_index: Option<usize>,
    pub folder: String,
}

static LOADERS: LazyLock<HashMap<String, Vec<ModelLoaderInput>>> = LazyLock::new(|| {
    let mut table: HashMap<String, Vec<ModelLoaderInput>> = HashMap::new();
    for line in LOADER_TABLE.lines().skip(1) {
        let mut cols = line.split('\t');
        let (Some(node_type), Some(input_name), Some(index), Some(folder)) =
            (cols.next(), cols.next(), cols.next(), cols.next())
        else {
            continue;
        };
        table
            .entry(node_type.to_owned())
            .or_default()
            .push(ModelLoaderInput {
                node_type: node_type.to_owned(),
                input_name: input_name.to_owned(),
                widget_index: index.parse().ok(),
                folder: folder.to_owned(),
            });
    }
    table
});

/// The model-loader inputs of a built-in node type (empty when it loads no model).
pub fn model_loader_inputs(node_type: &str) -> &'static [ModelLoaderInput] {
    LOADERS.get(node_type).map_or(&[], Vec::as_slice)
}

/// Where a non-model file input is looked up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FileLocation {
    /// ComfyUI's input directory.
    Input,
    /// ComfyUI's output directory.
    Output,
    /// `<base>/datasets`.
    Datasets,
}

const FILE_INPUTS: &[(&str, &str, usize, FileLocation)] = &[
    ("LoadImage", "image", 0, FileLocation::Input),
    ("LoadImageMask", "image", 0, FileLocation::Input),
    ("LoadImageOutput", "image", 0, FileLocation::Output),
    ("LoadVideo", "file", 0, FileLocation::Input),
    ("LoadAudio", "audio", 0, FileLocation::Input),
    ("Load3D", "model_file", 0, FileLocation::Input),
    ("Load3DAdvanced", "model_file", 0, FileLocation::Input),
    ("LoadLatent", "latent", 0, FileLocation::Input),
    ("LoadTrainingDataset", "folder_name", 0, FileLocation::Datasets),
];

/// How badly a workflow needs a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Criticality {
    /// The workflow cannot run without this exact file.
    Required,
    /// A substitute works (e.g. another LoRA).
    Flexible,
    /// The workflow runs without it (e.g. an upscaler at the end).
    Optional,
}

impl Criticality {
    /// The name used in manifests and messages (`required`, `flexible`, `optional`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Required => "required",
            Self::Flexible => "flexible",
            Self::Optional => "optional",
        }
    }
}

/// Default criticality for a models folder.
pub fn default_criticality(folder: Option<&str>) -> Criticality {
    match folder {
        Some("loras" | "embeddings" | "hypernetworks") => Criticality::Flexible,
        Some("upscale_models" | "vae_approx") => Criticality::Optional,
        _ => Criticality::Required,
    }
}

/// Caller choices for [`analyze`].
#[derive(Debug, Clone, Default)]
pub struct AnalysisOptions {
    /// Built-in node types (default: the shipped fallback list; extend it with a scan of the checkout).
    pub builtins: BuiltinNodes,
    /// Criticality per models folder, overriding [`default_criticality`].
    pub criticality_by_folder: BTreeMap<String, Criticality>,
    /// Criticality per model (name as written in the workflow, or with `/` separators), overriding everything.
    pub criticality_by_model: BTreeMap<String, Criticality>,
}

/// Package hints a custom node carries in its `properties`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct PackageHint {
    /// Comfy Node Registry id (`properties.cnr_id`).
    pub cnr_id: Option<String>,
    /// `github-user/repo` for packs not from the registry (`properties.aux_id`).
    pub aux_id: Option<String>,
    /// Pack version or commit (`properties.ver`).
    pub ver: Option<String>,
}

/// Every use of one node type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeTypeUsage {
    pub node_type: String,
    pub category: NodeCategory,
    /// Flattened ids of the nodes using the type.
    pub node_ids: Vec<String>,
    /// Ids of those nodes that are muted or bypassed (themselves or through an enclosing subgraph).
    pub disabled_node_ids: Vec<String>,
    /// Distinct package hints found on these nodes (custom types only).
    pub packages: Vec<PackageHint>,
}

/// How a model reference was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelSource {
    /// A built-in loader input (model_loaders table).
    LoaderInput,
    /// Declared in the node's `properties.models`.
    Declared,
    /// A custom node's string widget value with a model-file extension.
    FileExtension,
}

/// One model file a workflow refers to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModelReference {
    /// Flattened node id (`12:5` inside subgraph instance 12).
    pub node_id: String,
    pub node_type: String,
    pub node_title: Option<String>,
    /// The widget holding the file name, when known.
    pub widget: Option<WidgetRef>,
    /// The value as written (may use `\` separators).
    pub name: String,
    /// `name` with `/` separators.
    pub relative_path: String,
    /// Models folder key (`checkpoints`, `loras`, ...), when known.
    pub folder: Option<String>,
    pub url: Option<String>,
    pub hash: Option<String>,
    pub hash_type: Option<String>,
    pub criticality: Criticality,
    pub source: ModelSource,
    /// The node is muted or bypassed.
    pub disabled: bool,
}

/// A non-model file input (LoadImage etc.).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileInput {
    pub node_id: String,
    pub node_type: String,
    pub widget: WidgetRef,
    pub value: String,
    pub location: FileLocation,
    pub disabled: bool,
}

/// The result of [`analyze`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Analysis {
    pub format: WorkflowFormat,
    /// Nodes after subgraph expansion (all categories).
    pub node_count: usize,
    pub subgraph_definition_count: usize,
    /// Every node type, sorted by name.
    pub node_types: Vec<NodeTypeUsage>,
    pub models: Vec<ModelReference>,
    pub file_inputs: Vec<FileInput>,
    /// Legacy `extra.node_versions` (pack name → version or commit).
    pub legacy_node_versions: BTreeMap<String, String>,
}

impl Analysis {
    /// Node types that need a custom node package.
    pub fn custom_node_types(&self) -> impl Iterator<Item = &NodeTypeUsage> {
        self.node_types
            .iter()
            .filter(|t| t.category == NodeCategory::Custom)
    }
}

/// Classifies one node type.
pub fn classify_node_type(node_type: &str, builtins: &BuiltinNodes, cnr_id: Option<&str>) -> NodeCategory {
    if is_frontend_only(node_type) {
        NodeCategory::FrontendOnly
    } else if builtins.contains(node_type) || cnr_id == Some("comfy-core") {
        NodeCategory::Builtin
    } else if looks_like_subgraph_type(node_type) {
        NodeCategory::Subgraph
    } else {
        NodeCategory::Custom
    }
}

/// Analyzes a document of either format.
pub fn analyze(document: &WorkflowDocument, options: &AnalysisOptions) -> Result<Analysis, WorkflowError> {
    match document {
        WorkflowDocument::Ui(ui) => analyze_ui(ui, options),
        WorkflowDocument::Api(api) => Ok(analyze_api(api, options)),
    }
}

/// One node as the analysis sees it, independent of format.
struct NodeFacts<'a> {
    id: String,
    node_type: &'a str,
    title: Option<&'a str>,
    category: NodeCategory,
    disabled: bool,
    properties: Option<&'a Map<String, Value>>,
    /// Widget values by best address, in order.
    widgets: Vec<(WidgetRef, &'a Value)>,
    /// Named lookups that override positional ones (values fed into the node through subgraph inputs).
    fed: HashMap<&'a str, &'a Value>,
    /// For UI nodes: named/positional lookup.
    ui: Option<NodeView<'a>>,
}

impl<'a> NodeFacts<'a> {
    fn value(&self, name: &str, index: Option<usize>) -> Option<(WidgetRef, &'a Value)> {
        if let Some(v) = self.fed.get(name) {
            return Some((WidgetRef::Name(name.to_owned()), v));
        }
        if let Some(ui) = self.ui {
            return ui.widget_value(Some(name), index);
        }
        self.widgets
            .iter()
            .find(|(r, _)| matches!(r, WidgetRef::Name(n) if n == name))
            .map(|(r, v)| (r.clone(), *v))
    }
}

#[derive(Default)]
struct Collector {
    usages: BTreeMap<String, NodeTypeUsage>,
    models: Vec<ModelReference>,
    files: Vec<FileInput>,
}

fn analyze_ui(ui: &UiWorkflow, options: &AnalysisOptions) -> Result<Analysis, WorkflowError> {
    let flat: FlatGraph<'_> = flatten(ui)?;
    let resolver = Resolver::new(&flat);
    let mut collector = Collector::default();
    for (index, node) in flat.nodes.iter().enumerate() {
        let Some(mut facts) = ui_node_facts(
            node.node,
            node.id.clone(),
            node.instance_of.is_some(),
            node.effective_mode,
            options,
        ) else {
            continue;
        };
        if facts.category != NodeCategory::FrontendOnly && node.parent.is_some() {
            for (slot, input) in node.node.inputs().iter().enumerate() {
                if let (Some(widget), Some(_)) = (input.widget, input.link)
                    && let Source::Value(value) = resolver.resolve_input(index, slot)
                {
                    facts.fed.insert(widget, value);
                }
            }
        }
        collector.add(&facts, options);
    }
    Ok(collector.finish(
        WorkflowFormat::Ui,
        flat.nodes.len(),
        ui.subgraph_definitions().len(),
        legacy_node_versions(ui),
    ))
}

/// What the analysis reads of one UI node (`None` for a node without a type), before values
/// fed through subgraph inputs are added.
fn ui_node_facts<'a>(
    node: NodeView<'a>,
    id: String,
    is_instance: bool,
    effective_mode: NodeMode,
    options: &AnalysisOptions,
) -> Option<NodeFacts<'a>> {
    let node_type = node.node_type()?;
    let category = if is_instance {
        NodeCategory::Subgraph
    } else {
        classify_node_type(node_type, &options.builtins, node.property_str("cnr_id"))
    };
    Some(NodeFacts {
        id,
        node_type,
        title: node.title(),
        category,
        disabled: effective_mode.is_disabled(),
        properties: node.properties(),
        widgets: node.all_widget_values(),
        fed: HashMap::new(),
        ui: Some(node),
    })
}

/// Legacy `extra.node_versions` as pack name → text.
fn legacy_node_versions(ui: &UiWorkflow) -> BTreeMap<String, String> {
    ui.extra()
        .and_then(|e| e.get("node_versions"))
        .and_then(Value::as_object)
        .map(|m| m.iter().map(|(k, v)| (k.clone(), value_text(v))).collect())
        .unwrap_or_default()
}

fn analyze_api(api: &ApiWorkflow, options: &AnalysisOptions) -> Analysis {
    let mut collector = Collector::default();
    let mut count = 0;
    for node in api.nodes() {
        count += 1;
        let node_type = node.class_type();
        let widgets = node
            .inputs()
            .into_iter()
            .filter_map(|(name, input)| match input {
                ApiInput::Value(v) => Some((WidgetRef::Name(name.to_owned()), v)),
                ApiInput::Link { .. } => None,
            })
            .collect();
        let meta = node.as_map().get("_meta").and_then(Value::as_object);
        let facts = NodeFacts {
            id: node.id().to_owned(),
            node_type,
            title: node.title(),
            category: classify_node_type(
                node_type,
                &options.builtins,
                meta.and_then(|m| m.get("cnr_id")).and_then(Value::as_str),
            ),
            disabled: false,
            properties: meta,
            widgets,
            fed: HashMap::new(),
            ui: None,
        };
        collector.add(&facts, options);
    }
    collector.finish(WorkflowFormat::Api, count, 0, BTreeMap::new())
}

fn value_text(value: &Value) -> String {
    value.as_str().map_or_else(|| value.to_string(), str::to_owned)
}

fn has_model_extension(value: &str) -> bool {
    let lower = value.trim().to_ascii_lowercase();
    MODEL_EXTENSIONS.iter().any(|ext| lower.ends_with(ext))
}

fn string_prop(map: &Map<String, Value>, key: &str) -> Option<String> {
    map.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

impl Collector {
    fn add(&mut self, facts: &NodeFacts<'_>, options: &AnalysisOptions) {
        let usage = self
            .usages
            .entry(facts.node_type.to_owned())
            .or_insert_with(|| NodeTypeUsage {
                node_type: facts.node_type.to_owned(),
                category: facts.category,
                node_ids: Vec::new(),
                disabled_node_ids: Vec::new(),
                packages: Vec::new(),
            });
        usage.node_ids.push(facts.id.clone());
        if facts.disabled {
            usage.disabled_node_ids.push(facts.id.clone());
        }
        if facts.category == NodeCategory::Custom
            && let Some(props) = facts.properties
        {
            let hint = PackageHint {
                cnr_id: string_prop(props, "cnr_id"),
                aux_id: string_prop(props, "aux_id"),
                ver: string_prop(props, "ver"),
            };
            if (hint.cnr_id.is_some() || hint.aux_id.is_some()) && !usage.packages.contains(&hint) {
                usage.packages.push(hint);
            }
        }
        if matches!(
            facts.category,
            NodeCategory::FrontendOnly | NodeCategory::Subgraph
        ) {
            return;
        }
        self.add_models(facts, options);
        for &(node_type, input, index, location) in FILE_INPUTS {
            if node_type == facts.node_type
                && let Some((widget, Value::String(value))) = facts.value(input, Some(index))
                && !value.is_empty()
            {
                self.files.push(FileInput {
                    node_id: facts.id.clone(),
                    node_type: facts.node_type.to_owned(),
                    widget,
                    value: value.clone(),
                    location,
                    disabled: facts.disabled,
                });
            }
        }
    }

    fn add_models(&mut self, facts: &NodeFacts<'_>, options: &AnalysisOptions) {
        let first = self.models.len();
        let new_ref = |widget: Option<WidgetRef>, name: &str, folder: Option<&str>, source: ModelSource| {
            ModelReference {
                node_id: facts.id.clone(),
                node_type: facts.node_type.to_owned(),
                node_title: facts.title.map(str::to_owned),
                widget,
                name: name.to_owned(),
                relative_path: name.replace('\\', "/"),
                folder: folder.map(str::to_owned),
                url: None,
                hash: None,
                hash_type: None,
                criticality: Criticality::Required,
                source,
                disabled: facts.disabled,
            }
        };
        if facts.category == NodeCategory::Builtin {
            for loader in model_loader_inputs(facts.node_type) {
                if let Some((widget, Value::String(name))) =
                    facts.value(&loader.input_name, loader.widget_index)
                    && !name.trim().is_empty()
                {
                    self.models.push(new_ref(
                        Some(widget),
                        name,
                        Some(&loader.folder),
                        ModelSource::LoaderInput,
                    ));
                }
            }
        }
        let declared = facts
            .properties
            .and_then(|p| p.get("models"))
            .and_then(Value::as_array);
        for entry in declared
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .filter_map(Value::as_object)
        {
            let Some(name) = entry
                .get("name")
                .and_then(Value::as_str)
                .filter(|n| !n.is_empty())
            else {
                continue;
            };
            let existing = self.models[first..].iter_mut().find(|m| m.name == name);
            let reference = if let Some(existing) = existing {
                existing
            } else if self.models.len() > first
                && self.models[first..]
                    .iter()
                    .all(|m| m.source == ModelSource::LoaderInput)
            {
                // A loader whose file widget now holds another file: the declaration is stale.
                continue;
            } else {
                let widget = facts
                    .widgets
                    .iter()
                    .find(|(_, v)| v.as_str() == Some(name))
                    .map(|(w, _)| w.clone());
                self.models.push(new_ref(
                    widget,
                    name,
                    entry.get("directory").and_then(Value::as_str),
                    ModelSource::Declared,
                ));
                self.models.last_mut().expect("just pushed")
            };
            if reference.folder.is_none() {
                reference.folder = string_prop(entry, "directory");
            }
            reference.url = string_prop(entry, "url");
            reference.hash = string_prop(entry, "hash");
            reference.hash_type = string_prop(entry, "hash_type");
        }
        if facts.category == NodeCategory::Custom {
            for (widget, value) in &facts.widgets {
                if let Value::String(name) = value
                    && has_model_extension(name)
                    && !self.models[first..].iter().any(|m| &m.name == name)
                {
                    self.models.push(new_ref(
                        Some(widget.clone()),
                        name,
                        None,
                        ModelSource::FileExtension,
                    ));
                }
            }
        }
        for reference in &mut self.models[first..] {
            reference.criticality = options
                .criticality_by_model
                .get(&reference.name)
                .or_else(|| options.criticality_by_model.get(&reference.relative_path))
                .or_else(|| {
                    reference
                        .folder
                        .as_ref()
                        .and_then(|f| options.criticality_by_folder.get(f))
                })
                .copied()
                .unwrap_or_else(|| default_criticality(reference.folder.as_deref()));
        }
    }

    fn finish(
        self,
        format: WorkflowFormat,
        node_count: usize,
        subgraph_definition_count: usize,
        legacy_node_versions: BTreeMap<String, String>,
    ) -> Analysis {
        Analysis {
            format,
            node_count,
            subgraph_definition_count,
            node_types: self.usages.into_values().collect(),
            models: self.models,
            file_inputs: self.files,
            legacy_node_versions,
        }
    }
}

//! The workflow document: a parsed JSON tree (kept whole so unknown fields survive a round trip)
//! plus typed, borrowing views over the parts comfydock understands.

mod subgraph_check;

pub use subgraph_check::MAX_SUBGRAPH_DEPTH;

use std::collections::HashMap;

use serde::{Serialize, Serializer};
use serde_json::{Map, Value};

use crate::error::WorkflowError;

/// Which of ComfyUI's two JSON shapes a document uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkflowFormat {
    /// What the browser saves: `nodes`, `links`, `groups`, `definitions`, ...
    Ui,
    /// The prompt sent to `POST /prompt`: `{"<id>": {"class_type", "inputs"}}`.
    Api,
}

/// A parsed workflow in either format. Serialises back to exactly the JSON it was parsed from.
#[derive(Debug, Clone, PartialEq)]
pub enum WorkflowDocument {
    Ui(UiWorkflow),
    Api(ApiWorkflow),
}

/// A UI-format workflow (schema 0.4 or 1).
#[derive(Debug, Clone, PartialEq)]
pub struct UiWorkflow {
    root: Map<String, Value>,
}

/// An API-format (prompt) workflow.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiWorkflow {
    root: Map<String, Value>,
}

impl WorkflowDocument {
    /// Parses JSON text (a leading UTF-8 byte-order mark is ignored) and detects its format.
    pub fn parse(text: &str) -> Result<Self, WorkflowError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let value: Value = serde_json::from_str(text).map_err(WorkflowError::from_json)?;
        Self::from_value(value)
    }

    /// Parses JSON bytes; same as [`WorkflowDocument::parse`].
    pub fn parse_bytes(bytes: &[u8]) -> Result<Self, WorkflowError> {
        let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
        let value: Value = serde_json::from_slice(bytes).map_err(WorkflowError::from_json)?;
        Self::from_value(value)
    }

    /// Wraps an already parsed JSON value, checking that it is a workflow.
    pub fn from_value(value: Value) -> Result<Self, WorkflowError> {
        let Value::Object(root) = value else {
            return Err(WorkflowError::not_a_workflow(format!(
                "expected a JSON object at the top level, found {}",
                json_kind(&value)
            )));
        };
        match detect_format_of_map(&root) {
            Ok(WorkflowFormat::Ui) => {
                check_ui_shape(&root)?;
                let workflow = UiWorkflow { root };
                subgraph_check::check_no_cycles(&workflow)?;
                Ok(WorkflowDocument::Ui(workflow))
            }
            Ok(WorkflowFormat::Api) => Ok(WorkflowDocument::Api(ApiWorkflow { root })),
            Err(reason) => Err(WorkflowError::not_a_workflow(reason)),
        }
    }

    /// The document's format.
    pub fn format(&self) -> WorkflowFormat {
        match self {
            WorkflowDocument::Ui(_) => WorkflowFormat::Ui,
            WorkflowDocument::Api(_) => WorkflowFormat::Api,
        }
    }

    /// The whole JSON object, unknown fields included.
    pub fn as_map(&self) -> &Map<String, Value> {
        match self {
            WorkflowDocument::Ui(w) => &w.root,
            WorkflowDocument::Api(w) => &w.root,
        }
    }

    /// Consumes the document, returning its JSON value.
    pub fn into_value(self) -> Value {
        match self {
            WorkflowDocument::Ui(w) => Value::Object(w.root),
            WorkflowDocument::Api(w) => Value::Object(w.root),
        }
    }

    /// Compact JSON, as the browser saves it.
    pub fn to_json_string(&self) -> String {
        serde_json::to_string(self.as_map()).unwrap_or_default()
    }

    /// 2-space indented JSON, as the browser's "Export" writes it.
    pub fn to_json_pretty(&self) -> String {
        serde_json::to_string_pretty(self.as_map()).unwrap_or_default()
    }

    /// The UI workflow, if this is one.
    pub fn as_ui(&self) -> Option<&UiWorkflow> {
        match self {
            WorkflowDocument::Ui(w) => Some(w),
            WorkflowDocument::Api(_) => None,
        }
    }

    /// The API workflow, if this is one.
    pub fn as_api(&self) -> Option<&ApiWorkflow> {
        match self {
            WorkflowDocument::Api(w) => Some(w),
            WorkflowDocument::Ui(_) => None,
        }
    }
}

impl Serialize for WorkflowDocument {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.as_map().serialize(serializer)
    }
}

impl Serialize for UiWorkflow {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.root.serialize(serializer)
    }
}

impl Serialize for ApiWorkflow {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.root.serialize(serializer)
    }
}

/// Detects whether a JSON value is a UI workflow, an API prompt, or neither (`None`).
pub fn detect_format(value: &Value) -> Option<WorkflowFormat> {
    value.as_object().and_then(|map| detect_format_of_map(map).ok())
}

fn detect_format_of_map(root: &Map<String, Value>) -> Result<WorkflowFormat, String> {
    if let Some(nodes) = root.get("nodes") {
        if nodes.is_array() {
            return Ok(WorkflowFormat::Ui);
        }
        return Err(format!("`nodes` is {}, expected an array", json_kind(nodes)));
    }
    if root.is_empty() {
        return Err("the object is empty (no `nodes` and no prompt entries)".to_owned());
    }
    for (key, entry) in root {
        let is_api_node = entry
            .as_object()
            .is_some_and(|node| node.get("class_type").is_some_and(Value::is_string));
        if !is_api_node {
            return Err(format!(
                "no `nodes` array (UI format), and entry `{key}` has no `class_type` string (API format)"
            ));
        }
    }
    Ok(WorkflowFormat::Api)
}

fn check_ui_shape(root: &Map<String, Value>) -> Result<(), WorkflowError> {
    check_graph_shape(root, "")?;
    if let Some(definitions) = root.get("definitions")
        && !definitions.is_null()
    {
        let subgraphs = definitions.get("subgraphs");
        if !(definitions.is_object() && subgraphs.is_none_or(|s| s.is_array() || s.is_null())) {
            return Err(WorkflowError::not_a_workflow(
                "`definitions` must be an object whose `subgraphs` is an array",
            ));
        }
    }
    Ok(())
}

fn check_graph_shape(graph: &Map<String, Value>, place: &str) -> Result<(), WorkflowError> {
    if let Some(nodes) = graph.get("nodes").and_then(Value::as_array) {
        for (index, node) in nodes.iter().enumerate() {
            if !node.is_object() {
                return Err(WorkflowError::not_a_workflow(format!(
                    "{place}nodes[{index}] is {}, expected a node object",
                    json_kind(node)
                )));
            }
        }
    } else {
        return Err(WorkflowError::not_a_workflow(format!(
            "{place}`nodes` is not an array"
        )));
    }
    if let Some(links) = graph.get("links")
        && !(links.is_array() || links.is_null())
    {
        return Err(WorkflowError::not_a_workflow(format!(
            "{place}`links` is {}, expected an array",
            json_kind(links)
        )));
    }
    Ok(())
}

pub(crate) fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Canonical text form of a node id: integers as decimal, strings as-is.
pub(crate) fn id_text(value: &Value) -> Option<String> {
    match value {
        Value::Number(n) => n.as_i64().map(|i| i.to_string()).or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() < 9e15)
                .map(|f| format!("{f:.0}"))
        }),
        Value::String(s) => Some(s.clone()),
        _ => None,
    }
}

fn as_int(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64().or_else(|| {
            #[allow(clippy::cast_possible_truncation)]
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() < 9e15)
                .map(|f| f as i64)
        }),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// The type string of a link or slot. Arrays (rare) are joined with commas; numbers become text.
fn type_text(value: Option<&Value>) -> String {
    match value {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(","),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

impl UiWorkflow {
    /// The whole JSON object.
    pub fn as_map(&self) -> &Map<String, Value> {
        &self.root
    }

    /// The top-level graph.
    pub fn graph(&self) -> GraphView<'_> {
        GraphView {
            map: &self.root,
            subgraph: None,
        }
    }

    /// `version` (0.4 or 1).
    pub fn version(&self) -> Option<f64> {
        self.root.get("version").and_then(Value::as_f64)
    }

    /// `extra` (canvas state, legacy `node_versions`, extension keys).
    pub fn extra(&self) -> Option<&Map<String, Value>> {
        self.root.get("extra").and_then(Value::as_object)
    }

    /// `groups` of the top-level graph.
    pub fn groups(&self) -> Vec<GroupView<'_>> {
        self.graph().groups()
    }

    /// Every subgraph definition: `definitions.subgraphs`, including definitions nested inside definitions.
    pub fn subgraph_definitions(&self) -> Vec<SubgraphView<'_>> {
        let mut found = Vec::new();
        let mut pending: Vec<&Map<String, Value>> = vec![&self.root];
        while let Some(owner) = pending.pop() {
            let Some(list) = owner
                .get("definitions")
                .and_then(|d| d.get("subgraphs"))
                .and_then(Value::as_array)
            else {
                continue;
            };
            for def in list.iter().filter_map(Value::as_object) {
                found.push(SubgraphView { map: def });
                pending.push(def);
            }
        }
        found
    }

    /// Subgraph definitions by id (first one wins on duplicates).
    pub fn subgraph_index(&self) -> HashMap<&str, SubgraphView<'_>> {
        let mut index = HashMap::new();
        for def in self.subgraph_definitions() {
            if let Some(id) = def.id() {
                index.entry(id).or_insert(def);
            }
        }
        index
    }
}

impl ApiWorkflow {
    /// The whole JSON object.
    pub fn as_map(&self) -> &Map<String, Value> {
        &self.root
    }

    /// Prompt entries in document order.
    pub fn nodes(&self) -> impl Iterator<Item = ApiNodeView<'_>> {
        self.root
            .iter()
            .filter_map(|(id, value)| value.as_object().map(|map| ApiNodeView { id: id.as_str(), map }))
    }
}

/// One entry of an API prompt.
#[derive(Debug, Clone, Copy)]
pub struct ApiNodeView<'a> {
    id: &'a str,
    map: &'a Map<String, Value>,
}

/// An API input value: a link to another node's output, or a literal value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ApiInput<'a> {
    Link { node_id: &'a str, output_slot: u64 },
    Value(&'a Value),
}

impl<'a> ApiNodeView<'a> {
    /// The prompt key (node id; flattened subgraph ids contain `:`).
    pub fn id(&self) -> &'a str {
        self.id
    }
    /// `class_type`.
    pub fn class_type(&self) -> &'a str {
        self.map
            .get("class_type")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }
    /// `_meta.title`, if present.
    pub fn title(&self) -> Option<&'a str> {
        self.map
            .get("_meta")
            .and_then(|m| m.get("title"))
            .and_then(Value::as_str)
    }
    /// `inputs` in document order.
    pub fn inputs(&self) -> Vec<(&'a str, ApiInput<'a>)> {
        let Some(inputs) = self.map.get("inputs").and_then(Value::as_object) else {
            return Vec::new();
        };
        inputs
            .iter()
            .map(|(name, value)| (name.as_str(), classify_api_input(value)))
            .collect()
    }
    /// The raw entry.
    pub fn as_map(&self) -> &'a Map<String, Value> {
        self.map
    }
}

fn classify_api_input(value: &Value) -> ApiInput<'_> {
    if let Value::Array(items) = value
        && let [Value::String(node_id), Value::Number(slot)] = items.as_slice()
        && let Some(output_slot) = slot.as_u64()
    {
        return ApiInput::Link { node_id, output_slot };
    }
    ApiInput::Value(value)
}

/// A graph: the top level or the body of a subgraph definition.
#[derive(Debug, Clone, Copy)]
pub struct GraphView<'a> {
    map: &'a Map<String, Value>,
    subgraph: Option<SubgraphView<'a>>,
}

/// A link between an output slot and an input slot (0.4 array or schema-1 object form).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Link {
    pub id: i64,
    pub origin_id: String,
    pub origin_slot: i64,
    pub target_id: String,
    pub target_slot: i64,
    #[serde(rename = "type")]
    pub link_type: String,
}

/// Id of the virtual node that stands for a subgraph's inputs inside its definition.
pub const SUBGRAPH_INPUT_NODE_ID: &str = "-10";
/// Id of the virtual node that stands for a subgraph's outputs inside its definition.
pub const SUBGRAPH_OUTPUT_NODE_ID: &str = "-20";

impl<'a> GraphView<'a> {
    /// The graph's JSON object.
    pub fn as_map(&self) -> &'a Map<String, Value> {
        self.map
    }

    /// The subgraph definition this graph belongs to (`None` for the top level).
    pub fn subgraph(&self) -> Option<SubgraphView<'a>> {
        self.subgraph
    }

    /// Nodes in document order.
    pub fn nodes(&self) -> impl Iterator<Item = NodeView<'a>> + use<'a> {
        self.map
            .get("nodes")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .filter_map(|n| n.as_object().map(|map| NodeView { map }))
    }

    /// Links that could be read, in document order (malformed entries are skipped; see [`GraphView::malformed_links`]).
    pub fn links(&self) -> Vec<Link> {
        self.raw_links().iter().filter_map(parse_link).collect()
    }

    /// Indexes (in `links`) of entries that are neither a 6-element array nor a link object.
    pub fn malformed_links(&self) -> Vec<usize> {
        self.raw_links()
            .iter()
            .enumerate()
            .filter(|(_, l)| parse_link(l).is_none())
            .map(|(i, _)| i)
            .collect()
    }

    fn raw_links(&self) -> &'a [Value] {
        self.map
            .get("links")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    /// Groups (`{title, bounding, ...}`).
    pub fn groups(&self) -> Vec<GroupView<'a>> {
        self.map
            .get("groups")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .filter_map(|g| g.as_object().map(|map| GroupView { map }))
            .collect()
    }
}

fn parse_link(value: &Value) -> Option<Link> {
    match value {
        Value::Array(items) if items.len() >= 5 => Some(Link {
            id: as_int(&items[0])?,
            origin_id: id_text(&items[1])?,
            origin_slot: as_int(&items[2])?,
            target_id: id_text(&items[3])?,
            target_slot: as_int(&items[4])?,
            link_type: type_text(items.get(5)),
        }),
        Value::Object(map) => Some(Link {
            id: as_int(map.get("id")?)?,
            origin_id: id_text(map.get("origin_id")?)?,
            origin_slot: as_int(map.get("origin_slot")?)?,
            target_id: id_text(map.get("target_id")?)?,
            target_slot: as_int(map.get("target_slot")?)?,
            link_type: type_text(map.get("type")),
        }),
        _ => None,
    }
}

/// A group box on the canvas.
#[derive(Debug, Clone, Copy)]
pub struct GroupView<'a> {
    map: &'a Map<String, Value>,
}

impl<'a> GroupView<'a> {
    /// The group's title.
    pub fn title(&self) -> Option<&'a str> {
        self.map.get("title").and_then(Value::as_str)
    }
    /// The raw group object.
    pub fn as_map(&self) -> &'a Map<String, Value> {
        self.map
    }
}

/// A subgraph definition (an entry of `definitions.subgraphs`).
#[derive(Debug, Clone, Copy)]
pub struct SubgraphView<'a> {
    map: &'a Map<String, Value>,
}

/// One input or output of a subgraph definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubgraphIo<'a> {
    pub name: &'a str,
    pub io_type: String,
    pub link_ids: Vec<i64>,
}

impl<'a> SubgraphView<'a> {
    /// The definition's UUID (instances use it as their node `type`).
    pub fn id(&self) -> Option<&'a str> {
        self.map.get("id").and_then(Value::as_str)
    }
    /// Display name.
    pub fn name(&self) -> Option<&'a str> {
        self.map.get("name").and_then(Value::as_str)
    }
    /// The definition's body.
    pub fn graph(&self) -> GraphView<'a> {
        GraphView {
            map: self.map,
            subgraph: Some(*self),
        }
    }
    /// Subgraph inputs (fed by the instance's inputs / widget values).
    pub fn inputs(&self) -> Vec<SubgraphIo<'a>> {
        self.io("inputs")
    }
    /// Subgraph outputs.
    pub fn outputs(&self) -> Vec<SubgraphIo<'a>> {
        self.io("outputs")
    }
    fn io(self, key: &str) -> Vec<SubgraphIo<'a>> {
        self.map
            .get(key)
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .map(|io| SubgraphIo {
                name: io.get("name").and_then(Value::as_str).unwrap_or_default(),
                io_type: type_text(io.get("type")),
                link_ids: io
                    .get("linkIds")
                    .and_then(Value::as_array)
                    .map(|ids| ids.iter().filter_map(as_int).collect())
                    .unwrap_or_default(),
            })
            .collect()
    }
    /// The raw definition object.
    pub fn as_map(&self) -> &'a Map<String, Value> {
        self.map
    }
}

/// Execution mode of a UI node (`mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeMode {
    /// 0: runs normally.
    Always,
    /// 1: on event.
    OnEvent,
    /// 2: "never" — muted; the node and links from it are dropped.
    Muted,
    /// 3: on trigger.
    OnTrigger,
    /// 4: bypassed — inputs pass through to outputs of the same type.
    Bypassed,
    /// Any other value.
    Other,
}

impl NodeMode {
    /// Muted or bypassed.
    pub fn is_disabled(self) -> bool {
        matches!(self, NodeMode::Muted | NodeMode::Bypassed)
    }
}

/// A node's input slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputSlot<'a> {
    pub name: &'a str,
    pub slot_type: String,
    pub link: Option<i64>,
    /// Set when the slot is the socket of a widget (`widget.name`).
    pub widget: Option<&'a str>,
}

/// A node's output slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputSlot<'a> {
    pub name: &'a str,
    pub slot_type: String,
    pub links: Vec<i64>,
}

/// `widgets_values` in either of its shapes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum WidgetValues<'a> {
    /// Absent or null.
    None,
    /// Positional (almost every node).
    List(&'a [Value]),
    /// Name → value (custom nodes that override serialisation, e.g. VHS_VideoCombine).
    Map(&'a Map<String, Value>),
}

/// How a widget value is addressed: by name (named/dict values) or by position.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WidgetRef {
    Name(String),
    Index(usize),
}

impl std::fmt::Display for WidgetRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WidgetRef::Name(n) => f.write_str(n),
            WidgetRef::Index(i) => write!(f, "#{i}"),
        }
    }
}

/// A UI node.
#[derive(Debug, Clone, Copy)]
pub struct NodeView<'a> {
    map: &'a Map<String, Value>,
}

impl<'a> NodeView<'a> {
    /// A view of a node object parsed on its own (see [`crate::analysis::analyze_json`]).
    pub(crate) fn of(map: &'a Map<String, Value>) -> Self {
        Self { map }
    }
    /// The node id as text (`None` when missing or not a number/string).
    pub fn id(&self) -> Option<String> {
        self.map.get("id").and_then(id_text)
    }
    /// The node type (class name, subgraph UUID or frontend-only type).
    pub fn node_type(&self) -> Option<&'a str> {
        self.map.get("type").and_then(Value::as_str)
    }
    /// The user-given title (present only when renamed).
    pub fn title(&self) -> Option<&'a str> {
        self.map.get("title").and_then(Value::as_str)
    }
    /// `mode`.
    pub fn mode(&self) -> NodeMode {
        match self.map.get("mode").and_then(as_int) {
            None | Some(0) => NodeMode::Always,
            Some(1) => NodeMode::OnEvent,
            Some(2) => NodeMode::Muted,
            Some(3) => NodeMode::OnTrigger,
            Some(4) => NodeMode::Bypassed,
            Some(_) => NodeMode::Other,
        }
    }
    /// Input slots in order (a link's `target_slot` indexes this list).
    pub fn inputs(&self) -> Vec<InputSlot<'a>> {
        self.array("inputs")
            .iter()
            .map(|slot| InputSlot {
                name: slot.get("name").and_then(Value::as_str).unwrap_or_default(),
                slot_type: type_text(slot.get("type")),
                link: slot.get("link").and_then(as_int),
                widget: slot
                    .get("widget")
                    .and_then(|w| w.get("name"))
                    .and_then(Value::as_str),
            })
            .collect()
    }
    /// Output slots in order.
    pub fn outputs(&self) -> Vec<OutputSlot<'a>> {
        self.array("outputs")
            .iter()
            .map(|slot| OutputSlot {
                name: slot.get("name").and_then(Value::as_str).unwrap_or_default(),
                slot_type: type_text(slot.get("type")),
                links: slot
                    .get("links")
                    .and_then(Value::as_array)
                    .map(|ids| ids.iter().filter_map(as_int).collect())
                    .unwrap_or_default(),
            })
            .collect()
    }
    fn array(self, key: &str) -> &'a [Value] {
        self.map
            .get(key)
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default()
    }
    /// `properties`.
    pub fn properties(&self) -> Option<&'a Map<String, Value>> {
        self.map.get("properties").and_then(Value::as_object)
    }
    /// A string property (e.g. `cnr_id`, `aux_id`, `ver`).
    pub fn property_str(&self, key: &str) -> Option<&'a str> {
        self.properties().and_then(|p| p.get(key)).and_then(Value::as_str)
    }
    /// `widgets_values`.
    pub fn widgets_values(&self) -> WidgetValues<'a> {
        match self.map.get("widgets_values") {
            Some(Value::Array(items)) => WidgetValues::List(items),
            Some(Value::Object(map)) => WidgetValues::Map(map),
            _ => WidgetValues::None,
        }
    }
    /// `widgets_values_named` (frontend ≥ 1.49).
    pub fn widgets_values_named(&self) -> Option<&'a Map<String, Value>> {
        self.map.get("widgets_values_named").and_then(Value::as_object)
    }
    /// Looks a widget value up by name (named values, then dict values) and else by position.
    pub fn widget_value(&self, name: Option<&str>, index: Option<usize>) -> Option<(WidgetRef, &'a Value)> {
        if let Some(name) = name {
            if let Some(v) = self.widgets_values_named().and_then(|m| m.get(name)) {
                return Some((WidgetRef::Name(name.to_owned()), v));
            }
            if let WidgetValues::Map(m) = self.widgets_values()
                && let Some(v) = m.get(name)
            {
                return Some((WidgetRef::Name(name.to_owned()), v));
            }
        }
        if let (Some(index), WidgetValues::List(items)) = (index, self.widgets_values())
            && let Some(v) = items.get(index)
        {
            let reference = name.map_or(WidgetRef::Index(index), |n| WidgetRef::Name(n.to_owned()));
            return Some((reference, v));
        }
        None
    }
    /// Every widget value with the best available address (named values win over positions).
    pub fn all_widget_values(&self) -> Vec<(WidgetRef, &'a Value)> {
        if let Some(named) = self.widgets_values_named() {
            return named
                .iter()
                .map(|(k, v)| (WidgetRef::Name(k.clone()), v))
                .collect();
        }
        match self.widgets_values() {
            WidgetValues::None => Vec::new(),
            WidgetValues::List(items) => items
                .iter()
                .enumerate()
                .map(|(i, v)| (WidgetRef::Index(i), v))
                .collect(),
            WidgetValues::Map(map) => map.iter().map(|(k, v)| (WidgetRef::Name(k.clone()), v)).collect(),
        }
    }
    /// The raw node object.
    pub fn as_map(&self) -> &'a Map<String, Value> {
        self.map
    }
}

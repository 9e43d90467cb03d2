//! [`analyze_json`]: the analysis of a workflow given as JSON bytes, without building the whole
//! JSON tree when it is not needed.
//!
//! A UI workflow without subgraph definitions is analysed one node at a time (nothing links the
//! analysis of one top-level node to another), so its top level is read with each node kept as
//! its text, borrowed from the input, and each node is then parsed, analysed and dropped in turn:
//! memory stays near the size of the file instead of the many times it that the tree costs (a
//! 48 MiB workflow used 681 MiB). Every other document (API prompts, workflows with subgraphs,
//! anything this reading does not accept) goes through [`WorkflowDocument::parse_bytes`] and
//! [`analyze`], so both ways give the same result, or the same error, for the same bytes.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::{Analysis, AnalysisOptions, Collector, analyze, legacy_node_versions, ui_node_facts};
use crate::document::{NodeView, WorkflowDocument, WorkflowFormat};
use crate::error::WorkflowError;
use crate::flatten::{MAX_FLAT_ID_BYTES, MAX_FLAT_NODES};

/// Analyzes a workflow given as JSON bytes (UI or API format; a leading UTF-8 byte-order mark is
/// ignored): the same result as [`WorkflowDocument::parse_bytes`] followed by [`analyze`], with
/// far less memory for large UI workflows without subgraphs.
pub fn analyze_json(bytes: &[u8], options: &AnalysisOptions) -> Result<Analysis, WorkflowError> {
    if let Some(analysis) = node_by_node(bytes, options) {
        return Ok(analysis);
    }
    let document = WorkflowDocument::parse_bytes(bytes)?;
    analyze(&document, options)
}

/// The analysis read node by node, or `None` when the document is not a UI workflow without
/// subgraph definitions, or when anything about it would make the whole-tree reading fail (which
/// then reports it).
fn node_by_node(bytes: &[u8], options: &AnalysisOptions) -> Option<Analysis> {
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    let mut reader = serde_json::Deserializer::from_slice(bytes);
    let top = TopLevel::deserialize(&mut reader).ok()?;
    reader.end().ok()?;
    let nodes = top.nodes?;
    if nodes.len() > MAX_FLAT_NODES {
        return None;
    }
    // Everything but the nodes (and the links' contents, which only subgraphs need), checked
    // as the whole document is.
    let skeleton = WorkflowDocument::from_value(Value::Object(top.rest)).ok()?;
    let ui = skeleton.as_ui()?;
    if !ui.subgraph_definitions().is_empty() {
        return None;
    }
    let mut collector = Collector::default();
    let mut id_bytes = 0usize;
    let mut text = String::new();
    for raw in &nodes {
        let map = parse_node(raw, &mut text)?;
        let node = NodeView::of(&map);
        let id = node.id().unwrap_or_else(|| "?".to_owned());
        id_bytes += id.len();
        if id_bytes > MAX_FLAT_ID_BYTES {
            return None;
        }
        if let Some(facts) = ui_node_facts(node, id, false, node.mode(), options) {
            collector.add(&facts, options);
        }
    }
    Some(collector.finish(WorkflowFormat::Ui, nodes.len(), 0, legacy_node_versions(ui)))
}

/// One node's object, parsed from its text exactly as inside the whole document: wrapped in two
/// arrays, it sits as deep as there (top-level object, `nodes` array), so the parser's nesting
/// limit applies alike. `None` when it does not parse or is not an object.
fn parse_node(raw: &RawValue, text: &mut String) -> Option<Map<String, Value>> {
    text.clear();
    text.push_str("[[");
    text.push_str(raw.get());
    text.push_str("]]");
    let Value::Array(mut outer) = serde_json::from_str(text).ok()? else {
        return None;
    };
    let Value::Array(mut inner) = outer.pop()? else {
        return None;
    };
    match inner.pop()? {
        Value::Object(map) => Some(map),
        _ => None,
    }
}

/// The top-level object with `nodes` kept as text, one slice per node, and `links` checked but
/// not kept; every other entry as a JSON value. `nodes` stands in `rest` as an empty array, and
/// `links` as an empty array (or null), so the document's shape checks see their kinds.
struct TopLevel<'a> {
    rest: Map<String, Value>,
    nodes: Option<Vec<&'a RawValue>>,
}

impl<'de> Deserialize<'de> for TopLevel<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(TopLevelVisitor)
    }
}

struct TopLevelVisitor;

/// The key serde_json's `Value` treats specially when `raw_value` is enabled.
const RAW_VALUE_MARKER: &str = "$serde_json::private::RawValue";

impl<'de> Visitor<'de> for TopLevelVisitor {
    type Value = TopLevel<'de>;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a workflow object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut rest = Map::new();
        let mut nodes = None;
        while let Some(key) = map.next_key::<String>()? {
            // serde_json reads an object whose key is its raw-value marker as that raw value;
            // such a file is left to the whole-tree reading.
            if key == RAW_VALUE_MARKER {
                return Err(de::Error::custom("raw-value marker"));
            }
            // A repeated `nodes` or `links` (the last one counts in the whole document) is left
            // to the whole-tree reading, which also checks the values it replaces.
            if (key == "nodes" || key == "links") && rest.contains_key(&key) {
                return Err(de::Error::custom(format_args!("`{key}` appears twice")));
            }
            let value = match key.as_str() {
                "nodes" => {
                    nodes = Some(map.next_value::<Vec<&'de RawValue>>()?);
                    Value::Array(Vec::new())
                }
                "links" => map.next_value::<CheckedLinks>()?.0,
                _ => map.next_value::<Value>()?,
            };
            rest.insert(key, value);
        }
        Ok(TopLevel { rest, nodes })
    }
}

/// `links` read the way the whole document reads it (each entry parsed, then dropped): an empty
/// array for an array, null for null; anything else is an error here.
struct CheckedLinks(Value);

impl<'de> Deserialize<'de> for CheckedLinks {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(CheckedLinksVisitor)
    }
}

struct CheckedLinksVisitor;

impl<'de> Visitor<'de> for CheckedLinksVisitor {
    type Value = CheckedLinks;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("an array of links, or null")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(CheckedLinks(Value::Null))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<Value>()?.is_some() {}
        Ok(CheckedLinks(Value::Array(Vec::new())))
    }
}

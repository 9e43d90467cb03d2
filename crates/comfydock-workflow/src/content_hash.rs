//! A content hash for change detection that ignores view state: canvas pan/zoom (`extra.ds`), the
//! frontend version and renderer, the save counter (`revision`), node layout and colours
//! (`pos`, `size`, `order`, `flags`, `color`, `bgcolor`, `shape`), group boxes' geometry and colours,
//! subgraph IO node geometry, and seeds whose control_after_generate is `"randomize"`.
//! Object keys are hashed in sorted order, so key order does not matter either.

use serde_json::{Map, Value};

use crate::document::WorkflowDocument;

/// Where in the document a value sits, deciding which keys are view state.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Place {
    TopGraph,
    SubgraphBody,
    TopExtra,
    NodeList,
    Node,
    GroupList,
    Group,
    Definitions,
    SubgraphList,
    IoNode,
    IoList,
    Io,
    Other,
}

/// BLAKE3 hex digest of the workflow's logical content.
pub fn content_hash(document: &WorkflowDocument) -> String {
    let mut hasher = blake3::Hasher::new();
    match document {
        WorkflowDocument::Ui(ui) => hash_object(&mut hasher, ui.as_map(), Place::TopGraph),
        WorkflowDocument::Api(api) => hash_object(&mut hasher, api.as_map(), Place::Other),
    }
    hasher.finalize().to_hex().to_string()
}

fn child_place(place: Place, key: &str) -> Option<Place> {
    use Place::{
        Definitions, Group, GroupList, Io, IoList, IoNode, Node, NodeList, Other, SubgraphBody, SubgraphList,
        TopExtra, TopGraph,
    };
    let skip = match place {
        TopGraph => key == "revision",
        Node => matches!(
            key,
            "pos" | "size" | "order" | "flags" | "color" | "bgcolor" | "shape"
        ),
        Group => matches!(key, "bounding" | "color" | "font_size" | "flags"),
        TopExtra => matches!(key, "ds" | "frontendVersion" | "workflowRendererVersion"),
        IoNode => key == "bounding",
        Io => key == "pos",
        _ => false,
    };
    if skip {
        return None;
    }
    Some(match (place, key) {
        (TopGraph, "extra") => TopExtra,
        (TopGraph | SubgraphBody, "nodes") => NodeList,
        (TopGraph | SubgraphBody, "groups") => GroupList,
        (TopGraph | SubgraphBody, "definitions") => Definitions,
        (SubgraphBody, "inputNode" | "outputNode") => IoNode,
        (SubgraphBody, "inputs" | "outputs") => IoList,
        (Definitions, "subgraphs") => SubgraphList,
        _ => Other,
    })
}

fn item_place(place: Place) -> Place {
    match place {
        Place::NodeList => Place::Node,
        Place::GroupList => Place::Group,
        Place::SubgraphList => Place::SubgraphBody,
        Place::IoList => Place::Io,
        _ => Place::Other,
    }
}

fn hash_object(hasher: &mut blake3::Hasher, map: &Map<String, Value>, place: Place) {
    let mut keys: Vec<(&String, &Value, Place)> = map
        .iter()
        .filter_map(|(k, v)| child_place(place, k).map(|p| (k, v, p)))
        .collect();
    keys.sort_unstable_by(|a, b| a.0.cmp(b.0));
    hasher.update(b"{");
    hasher.update(&(keys.len() as u64).to_le_bytes());
    let masked = if place == Place::Node {
        randomized_seed_positions(map)
    } else {
        SeedMask::default()
    };
    for (key, value, child) in keys {
        hash_str(hasher, key);
        match (key.as_str(), value) {
            ("widgets_values", Value::Array(items)) if !masked.list.is_empty() => {
                hash_list_masked(hasher, items, &masked.list);
            }
            ("widgets_values_named", Value::Object(named)) if !masked.named.is_empty() => {
                let filtered: Map<String, Value> = named
                    .iter()
                    .map(|(k, v)| {
                        (
                            k.clone(),
                            if masked.named.contains(k) {
                                Value::Null
                            } else {
                                v.clone()
                            },
                        )
                    })
                    .collect();
                hash_value(hasher, &Value::Object(filtered), Place::Other);
            }
            _ => hash_value(hasher, value, child),
        }
    }
}

fn hash_list_masked(hasher: &mut blake3::Hasher, items: &[Value], masked: &[usize]) {
    hasher.update(b"[");
    hasher.update(&(items.len() as u64).to_le_bytes());
    for (index, item) in items.iter().enumerate() {
        if masked.contains(&index) {
            hash_value(hasher, &Value::Null, Place::Other);
        } else {
            hash_value(hasher, item, Place::Other);
        }
    }
}

fn hash_str(hasher: &mut blake3::Hasher, text: &str) {
    hasher.update(&(text.len() as u64).to_le_bytes());
    hasher.update(text.as_bytes());
}

fn hash_value(hasher: &mut blake3::Hasher, value: &Value, place: Place) {
    match value {
        Value::Null => {
            hasher.update(b"n");
        }
        Value::Bool(b) => {
            hasher.update(if *b { b"t" } else { b"f" });
        }
        Value::Number(n) => {
            hasher.update(b"#");
            // 1 and 1.0 are the same number to the browser.
            let text = match n.as_f64() {
                Some(f) if n.is_f64() && f.fract() == 0.0 && f.abs() < 9e15 => format!("{f:.0}"),
                _ => n.to_string(),
            };
            hash_str(hasher, &text);
        }
        Value::String(s) => {
            hasher.update(b"s");
            hash_str(hasher, s);
        }
        Value::Array(items) => {
            hasher.update(b"[");
            hasher.update(&(items.len() as u64).to_le_bytes());
            let child = item_place(place);
            for item in items {
                hash_value(hasher, item, child);
            }
        }
        Value::Object(map) => hash_object(hasher, map, place),
    }
}

/// Widget positions / names holding a seed that the editor re-randomizes on every queue.
#[derive(Default)]
pub(crate) struct SeedMask {
    pub list: Vec<usize>,
    pub named: Vec<String>,
}

pub(crate) fn randomized_seed_positions(node: &Map<String, Value>) -> SeedMask {
    let mut mask = SeedMask::default();
    if let Some(Value::Array(items)) = node.get("widgets_values") {
        for (index, item) in items.iter().enumerate().skip(1) {
            if item.as_str() == Some("randomize") && items[index - 1].is_number() {
                mask.list.push(index - 1);
            }
        }
    }
    if let Some(Value::Object(named)) = node.get("widgets_values_named") {
        let mut previous: Option<&String> = None;
        for (key, value) in named {
            if key.starts_with("control_after_generate")
                && value.as_str() == Some("randomize")
                && let Some(owner) = previous
            {
                mask.named.push(owner.clone());
            }
            previous = Some(key);
        }
    }
    mask
}

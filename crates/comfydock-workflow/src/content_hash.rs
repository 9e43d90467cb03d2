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

/// Changes whenever [`content_hash`] gives another result for some document, so hashes kept
/// elsewhere (the cache `status` keeps) are made again.
pub const CONTENT_HASH_VERSION: u32 = 1;

/// BLAKE3 hex digest of the workflow's logical content.
pub fn content_hash(document: &WorkflowDocument) -> String {
    let mut hasher = Canonical::default();
    match document {
        WorkflowDocument::Ui(ui) => hash_object(&mut hasher, ui.as_map(), Place::TopGraph),
        WorkflowDocument::Api(api) => hash_object(&mut hasher, api.as_map(), Place::Other),
    }
    hasher.finalize()
}

/// The canonical byte stream being hashed, gathered in blocks of [`Canonical::BLOCK`] bytes:
/// many tiny hasher updates cost several times more than a few large ones (same digest).
#[derive(Default)]
struct Canonical {
    hasher: blake3::Hasher,
    pending: Vec<u8>,
}

impl Canonical {
    const BLOCK: usize = 64 * 1024;

    fn update(&mut self, bytes: &[u8]) {
        if self.pending.len() >= Self::BLOCK {
            self.hasher.update(&self.pending);
            self.pending.clear();
        }
        self.pending.extend_from_slice(bytes);
    }

    fn finalize(mut self) -> String {
        self.hasher.update(&self.pending);
        self.hasher.finalize().to_hex().to_string()
    }

    /// `text` written by `write`, preceded by its length, as [`hash_str`] writes a string.
    fn update_formatted(&mut self, write: impl FnOnce(&mut Vec<u8>)) {
        self.update(&[0; 8]);
        let length_at = self.pending.len() - 8;
        write(&mut self.pending);
        let length = (self.pending.len() - length_at - 8) as u64;
        self.pending[length_at..length_at + 8].copy_from_slice(&length.to_le_bytes());
    }
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

fn hash_object(hasher: &mut Canonical, map: &Map<String, Value>, place: Place) {
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

fn hash_list_masked(hasher: &mut Canonical, items: &[Value], masked: &[usize]) {
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

fn hash_str(hasher: &mut Canonical, text: &str) {
    hasher.update(&(text.len() as u64).to_le_bytes());
    hasher.update(text.as_bytes());
}

/// Writes a whole `f` (|f| < 9e15) as `format!("{f:.0}")` does, without its slow exact-float path.
fn write_whole(out: &mut Vec<u8>, f: f64) -> std::io::Result<()> {
    use std::io::Write as _;
    if f == 0.0 && f.is_sign_negative() {
        out.extend_from_slice(b"-0");
        return Ok(());
    }
    #[allow(clippy::cast_possible_truncation)] // whole and below 9e15: exact
    let whole = f as i64;
    write!(out, "{whole}")
}

fn hash_value(hasher: &mut Canonical, value: &Value, place: Place) {
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
            hasher.update_formatted(|out| {
                use std::io::Write as _;
                // Writing into a Vec cannot fail.
                let _ = match n.as_f64() {
                    Some(f) if n.is_f64() && f.fract() == 0.0 && f.abs() < 9e15 => write_whole(out, f),
                    _ => write!(out, "{n}"),
                };
            });
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

#[cfg(test)]
mod tests {
    use super::write_whole;

    #[test]
    fn whole_numbers_are_written_as_before() {
        for f in [
            0.0,
            -0.0,
            1.0,
            -1.0,
            512.0,
            123_456_789_012_345.0,
            -8_999_999_999_999_998.0,
            1e15,
        ] {
            let mut out = Vec::new();
            write_whole(&mut out, f).unwrap();
            assert_eq!(String::from_utf8(out).unwrap(), format!("{f:.0}"));
        }
    }
}

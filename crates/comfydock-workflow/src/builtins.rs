//! Which node types ship with ComfyUI itself: a fallback list compiled into the crate, plus a static
//! scanner for Python source (so the CLI can read the environment's actual ComfyUI checkout without
//! running Python).

use std::collections::HashSet;
use std::sync::LazyLock;

use regex::Regex;
use serde::Serialize;

/// Core node class names as of late 2026 (nodes.py, comfy_extras, comfy_api_nodes) plus legacy names.
const FALLBACK_LIST: &str = include_str!("../data/builtin_nodes.txt");

static FALLBACK: LazyLock<HashSet<String>> = LazyLock::new(|| {
    FALLBACK_LIST
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect()
});

/// Node types that exist only in the browser and are never sent to the server.
pub const FRONTEND_ONLY_TYPES: &[&str] = &["Reroute", "PrimitiveNode", "Note", "MarkdownNote"];

/// The set of node types treated as built-in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltinNodes {
    names: HashSet<String>,
}

impl Default for BuiltinNodes {
    fn default() -> Self {
        Self::fallback()
    }
}

impl BuiltinNodes {
    /// The list shipped with comfydock (used when no ComfyUI checkout could be scanned).
    pub fn fallback() -> Self {
        BuiltinNodes {
            names: FALLBACK.clone(),
        }
    }

    /// Exactly the given names (e.g. from scanning a ComfyUI checkout).
    pub fn from_names<I: IntoIterator<Item = S>, S: Into<String>>(names: I) -> Self {
        BuiltinNodes {
            names: names.into_iter().map(Into::into).collect(),
        }
    }

    /// Adds names (e.g. scanned from the environment's checkout) to this set.
    #[must_use]
    pub fn with_extra<I: IntoIterator<Item = S>, S: Into<String>>(mut self, names: I) -> Self {
        self.names.extend(names.into_iter().map(Into::into));
        self
    }

    /// The core nodes of a running ComfyUI's `/object_info`: those whose `python_module` is `nodes`
    /// or starts with `comfy_extras.` / `comfy_api_nodes.` (custom nodes have `custom_nodes.<pack>`).
    pub fn from_object_info(object_info: &serde_json::Value) -> Self {
        let names = object_info
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(_, def)| {
                def.get("python_module")
                    .and_then(serde_json::Value::as_str)
                    .is_some_and(|module| {
                        module == "nodes"
                            || module.starts_with("comfy_extras.")
                            || module.starts_with("comfy_api_nodes.")
                    })
            })
            .map(|(name, _)| name.clone());
        Self::from_names(names)
    }

    /// Whether `node_type` is built in.
    pub fn contains(&self, node_type: &str) -> bool {
        self.names.contains(node_type)
    }

    /// Number of names.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

/// Frontend-only types: virtual nodes, legacy group nodes (`workflow>NAME`, `workflow/NAME`).
/// Subgraph instances (UUID types) are frontend-only too; see [`looks_like_subgraph_type`].
pub fn is_frontend_only(node_type: &str) -> bool {
    FRONTEND_ONLY_TYPES.contains(&node_type)
        || node_type.starts_with("workflow>")
        || node_type.starts_with("workflow/")
}

/// Whether a type has the shape of a subgraph definition id (a UUID).
pub fn looks_like_subgraph_type(node_type: &str) -> bool {
    let bytes = node_type.as_bytes();
    bytes.len() == 36
        && bytes.iter().enumerate().all(|(i, &b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

/// How a node type is classified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeCategory {
    /// Ships with ComfyUI.
    Builtin,
    /// Needs a custom node package.
    Custom,
    /// Exists only in the browser (Reroute, PrimitiveNode, notes, group nodes).
    FrontendOnly,
    /// A subgraph instance (type is a definition UUID).
    Subgraph,
}

static SUBSCRIPT_ASSIGN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"NODE_CLASS_MAPPINGS\s*\[\s*(?:"([^"\\\n]+)"|'([^'\\\n]+)')\s*\]\s*="#).expect("valid regex")
});
static V3_NODE_ID: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r#"\bnode_id\s*=\s*(?:"([^"\\\n]+)"|'([^'\\\n]+)')"#).expect("valid regex"));
static MAPPING_START: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"NODE_CLASS_MAPPINGS\s*(?::[^=\n]*)?(?:=|\|=|\.update\s*\()\s*\{").expect("valid regex")
});

/// Extracts node type names from Python source without running it: the string keys of
/// `NODE_CLASS_MAPPINGS = {...}` (also `.update({...})`, `|= {...}` and `NODE_CLASS_MAPPINGS["X"] = ...`)
/// and V3 schema ids (`node_id="X"`). Names come back in source order without duplicates.
pub fn scan_python_source(source: &str) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    let mut add = |name: &str| {
        if !name.is_empty() && seen.insert(name.to_owned()) {
            found.push(name.to_owned());
        }
    };
    for start in MAPPING_START.find_iter(source) {
        for key in dict_literal_keys(&source[start.end() - 1..]) {
            add(&key);
        }
    }
    for regex in [&*SUBSCRIPT_ASSIGN, &*V3_NODE_ID] {
        for captures in regex.captures_iter(source) {
            if let Some(name) = captures.get(1).or_else(|| captures.get(2)) {
                add(name.as_str());
            }
        }
    }
    found
}

/// Reads the top-level string keys of a Python dict literal starting at `text[0] == '{'`.
fn dict_literal_keys(text: &str) -> Vec<String> {
    let bytes = text.as_bytes();
    let mut keys = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'{' | b'[' | b'(' => depth += 1,
            b'}' | b']' | b')' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    break;
                }
            }
            quote @ (b'"' | b'\'') => {
                let (content, end) = read_python_string(bytes, i, quote);
                i = end;
                if depth == 1 {
                    let mut j = i;
                    while j < bytes.len() && bytes[j].is_ascii_whitespace() {
                        j += 1;
                    }
                    if bytes.get(j) == Some(&b':') {
                        keys.push(content);
                    }
                }
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    keys
}

/// Reads a (possibly triple-quoted) string starting at `start`; returns its content and the index after it.
fn read_python_string(bytes: &[u8], start: usize, quote: u8) -> (String, usize) {
    let triple = bytes.get(start + 1) == Some(&quote) && bytes.get(start + 2) == Some(&quote);
    let open = if triple { 3 } else { 1 };
    let mut i = start + open;
    let content_start = i;
    while i < bytes.len() {
        if bytes[i] == b'\\' {
            i += 2;
            continue;
        }
        if bytes[i] == quote
            && (!triple || (bytes.get(i + 1) == Some(&quote) && bytes.get(i + 2) == Some(&quote)))
        {
            let content = String::from_utf8_lossy(&bytes[content_start..i]).into_owned();
            return (content, i + open);
        }
        if !triple && bytes[i] == b'\n' {
            break;
        }
        i += 1;
    }
    (
        String::from_utf8_lossy(&bytes[content_start..i.min(bytes.len())]).into_owned(),
        i.min(bytes.len()),
    )
}

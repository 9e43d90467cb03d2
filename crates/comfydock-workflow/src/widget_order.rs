//! Which entry of a node's positional `widgets_values` is which widget.
//!
//! The UI format stores most widget values by position only; their names come from the node's
//! definition: its widget inputs in `input_order` (required, then optional), each followed by the
//! UI-only values the editor stores after it (`control_after_generate` after seeds, the upload
//! button after upload combos). The sources, best first: a live `/object_info` definition, the
//! node's own widget sockets (`inputs[].widget`, written by newer editors), and a table of ComfyUI's
//! built-in nodes recorded from a real ComfyUI (`data/builtin_widgets.tsv`; the real-world test
//! tier checks it against the live server). A mapping is only used when it accounts for exactly
//! as many values as the node stores; otherwise callers keep positions.

use std::collections::HashMap;
use std::sync::LazyLock;

use serde_json::{Value, json};

use crate::document::{NodeView, WidgetValues};

/// Name given to the mode value stored after a seed-like widget.
pub const CONTROL_AFTER_GENERATE: &str = "control_after_generate";
/// Name given to the upload button value stored after an upload combo.
pub const UPLOAD: &str = "upload";

/// One widget of a node definition, in `widgets_values` order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WidgetSlot {
    /// The input name (the key in an API prompt).
    pub name: String,
    /// Names of the UI-only values stored right after this one.
    pub extras: Vec<String>,
}

/// Widgets of an `/object_info` node definition in `widgets_values` order.
pub fn slots_from_definition(definition: &Value) -> Vec<WidgetSlot> {
    let mut slots = Vec::new();
    let Some(input) = definition.get("input") else {
        return slots;
    };
    for section in ["required", "optional"] {
        let Some(entries) = input.get(section).and_then(Value::as_object) else {
            continue;
        };
        let order: Vec<&str> = definition
            .get("input_order")
            .and_then(|o| o.get(section))
            .and_then(Value::as_array)
            .map_or_else(
                || entries.keys().map(String::as_str).collect(),
                |names| names.iter().filter_map(Value::as_str).collect(),
            );
        for name in order {
            let Some(spec) = entries.get(name) else { continue };
            if let Some(extras) = widget_extras(name, spec) {
                slots.push(WidgetSlot {
                    name: name.to_owned(),
                    extras,
                });
            }
        }
    }
    slots
}

/// `None` when the input is a socket only; otherwise the UI values that follow the widget.
fn widget_extras(name: &str, spec: &Value) -> Option<Vec<String>> {
    let kind = spec.get(0)?;
    let options = spec.get(1).and_then(Value::as_object);
    let flag = |key: &str| {
        options
            .and_then(|o| o.get(key))
            .is_some_and(|v| v.as_bool().unwrap_or(!v.is_null()))
    };
    if flag("forceInput") {
        return None;
    }
    let type_name = match kind {
        Value::Array(_) => "COMBO",
        Value::String(s) => s.as_str(),
        _ => return None,
    };
    if !matches!(type_name, "INT" | "FLOAT" | "STRING" | "BOOLEAN" | "COMBO") {
        return None;
    }
    let mut extras = Vec::new();
    let has_control = options.is_some_and(|o| {
        o.get("control_after_generate")
            .is_some_and(|v| v != &json!(false))
    });
    if (type_name == "INT" && is_seed_name(name)) || has_control {
        extras.push(CONTROL_AFTER_GENERATE.to_owned());
    }
    if let Some(options) = options {
        for (key, value) in options {
            if key.ends_with("_upload") && value.as_bool() == Some(true) {
                if key == "audio_upload" {
                    extras.push("audioUI".to_owned());
                }
                extras.push(UPLOAD.to_owned());
            }
        }
    }
    Some(extras)
}

fn is_seed_name(name: &str) -> bool {
    name == "seed" || name == "noise_seed"
}

/// Built-in widget table: one line per node type, tab-separated widgets, each `name[,extra…]`.
const BUILTIN_TABLE: &str = include_str!("../data/builtin_widgets.tsv");

static BUILTIN: LazyLock<HashMap<&'static str, Vec<WidgetSlot>>> = LazyLock::new(|| {
    BUILTIN_TABLE
        .lines()
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .filter_map(|line| {
            let mut columns = line.split('\t');
            let node_type = columns.next()?;
            let slots = columns
                .map(|column| {
                    let mut parts = column.split(',');
                    WidgetSlot {
                        name: parts.next().unwrap_or_default().to_owned(),
                        extras: parts.map(str::to_owned).collect(),
                    }
                })
                .collect();
            Some((node_type, slots))
        })
        .collect()
});

/// The recorded widgets of a built-in node type.
pub fn builtin_slots(node_type: &str) -> Option<&'static [WidgetSlot]> {
    BUILTIN.get(node_type).map(Vec::as_slice)
}

/// The built-in widget table for the `/object_info` of a ComfyUI without custom nodes, in the
/// format of `data/builtin_widgets.tsv` (sorted by node type; nodes without widgets left out).
pub fn builtin_table_from_object_info(object_info: &Value) -> String {
    let mut lines = vec![
        "# Widgets of ComfyUI's built-in nodes in widgets_values order: node type, then one column per"
            .to_owned(),
        "# widget, `name[,ui-only value after it…]`. Recorded from a real ComfyUI's /object_info by the"
            .to_owned(),
        "# real-world test tier (COMFYDOCK_RECORD=1 rewrites it).".to_owned(),
    ];
    let Some(definitions) = object_info.as_object() else {
        return lines.join("\n") + "\n";
    };
    let mut types: Vec<&String> = definitions.keys().collect();
    types.sort_unstable();
    for node_type in types {
        let definition = &definitions[node_type];
        let slots = slots_from_definition(definition);
        if slots.is_empty() || node_type.contains(['\t', '\n']) {
            continue;
        }
        let mut line = node_type.to_owned();
        for slot in slots {
            line.push('\t');
            line.push_str(&slot.name);
            for extra in slot.extras {
                line.push(',');
                line.push_str(&extra);
            }
        }
        lines.push(line);
    }
    lines.join("\n") + "\n"
}

/// Widgets named by the node's own widget sockets (`inputs[].widget.name`), with a control value
/// assumed after seed-like names. `None` when the node has no widget sockets.
fn slots_from_sockets(node: NodeView<'_>) -> Option<Vec<WidgetSlot>> {
    let slots: Vec<WidgetSlot> = node
        .inputs()
        .iter()
        .filter_map(|input| input.widget)
        .map(|name| WidgetSlot {
            name: name.to_owned(),
            extras: if is_seed_name(name) {
                vec![CONTROL_AFTER_GENERATE.to_owned()]
            } else {
                Vec::new()
            },
        })
        .collect();
    (!slots.is_empty()).then_some(slots)
}

/// Expands slots to one name per stored value; `None` unless they account for exactly `count`.
fn names_for(slots: &[WidgetSlot], count: usize) -> Option<Vec<String>> {
    let names: Vec<String> = slots
        .iter()
        .flat_map(|slot| std::iter::once(slot.name.clone()).chain(slot.extras.iter().cloned()))
        .collect();
    (names.len() == count).then_some(names)
}

/// The name of each positional `widgets_values` entry of a UI node, or `None` when no source
/// accounts for exactly the values the node stores (or they are not positional).
pub fn positional_names(node: NodeView<'_>, definition: Option<&Value>) -> Option<Vec<String>> {
    let WidgetValues::List(items) = node.widgets_values() else {
        return None;
    };
    let count = items.len();
    if count == 0 {
        return None;
    }
    if let Some(names) = definition.and_then(|d| names_for(&slots_from_definition(d), count)) {
        return Some(names);
    }
    if let Some(names) = slots_from_sockets(node).and_then(|slots| names_for(&slots, count)) {
        return Some(names);
    }
    node.node_type()
        .and_then(builtin_slots)
        .and_then(|slots| names_for(slots, count))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::document::WorkflowDocument;

    fn first_node_names(node: &Value) -> Option<Vec<String>> {
        let text = json!({"nodes": [node], "links": []}).to_string();
        let WorkflowDocument::Ui(ui) = WorkflowDocument::parse(&text).unwrap() else {
            panic!("a UI document")
        };
        let graph = ui.graph();
        let node = graph.nodes().next().unwrap();
        positional_names(node, None)
    }

    #[test]
    fn builtin_nodes_are_named_from_the_recorded_table() {
        let names = first_node_names(&json!({
            "id": 3, "type": "KSampler",
            "widgets_values": [1, "randomize", 20, 8, "euler", "normal", 1]
        }))
        .unwrap();
        assert_eq!(
            names,
            [
                "seed",
                "control_after_generate",
                "steps",
                "cfg",
                "sampler_name",
                "scheduler",
                "denoise"
            ]
        );
        let names = first_node_names(&json!({
            "id": 4, "type": "LoadImage", "widgets_values": ["example.png", "image"]
        }))
        .unwrap();
        assert_eq!(names, ["image", "upload"]);
    }

    #[test]
    fn widget_sockets_name_custom_nodes() {
        let names = first_node_names(&json!({
            "id": 1, "type": "MyCustomSampler",
            "inputs": [
                {"name": "model", "type": "MODEL", "link": null},
                {"name": "noise_seed", "type": "INT", "link": null, "widget": {"name": "noise_seed"}},
                {"name": "strength", "type": "FLOAT", "link": null, "widget": {"name": "strength"}}
            ],
            "widgets_values": [7, "fixed", 0.5]
        }))
        .unwrap();
        assert_eq!(names, ["noise_seed", "control_after_generate", "strength"]);
    }

    #[test]
    fn a_count_that_does_not_match_keeps_positions() {
        assert_eq!(
            first_node_names(&json!({"id": 1, "type": "KSampler", "widgets_values": [1, 20]})),
            None
        );
        assert_eq!(
            first_node_names(&json!({"id": 1, "type": "UnknownCustomNode", "widgets_values": [1]})),
            None
        );
    }

    #[test]
    fn the_table_round_trips_through_its_text_form() {
        let object_info = json!({
            "KSampler": {
                "input": {"required": {
                    "model": ["MODEL"], "seed": ["INT", {}], "steps": ["INT", {}],
                    "sampler_name": [["euler", "ddim"]]
                }},
                "input_order": {"required": ["model", "seed", "steps", "sampler_name"]}
            },
            "LoadAudio": {
                "input": {"required": {"audio": [["a.wav"], {"audio_upload": true}]}}
            },
            "VAEDecode": {"input": {"required": {"samples": ["LATENT"], "vae": ["VAE"]}}}
        });
        let table = builtin_table_from_object_info(&object_info);
        let rows: Vec<&str> = table.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(
            rows,
            [
                "KSampler\tseed,control_after_generate\tsteps\tsampler_name",
                "LoadAudio\taudio,audioUI,upload"
            ]
        );
    }
}

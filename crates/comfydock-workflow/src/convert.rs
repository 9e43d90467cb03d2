//! UI → API (prompt) conversion given an `/object_info` document, following the frontend's
//! `graphToPrompt`: subgraphs flattened to `outer:inner` ids, muted nodes dropped, bypassed nodes
//! passed through by type, Reroutes followed, PrimitiveNode values inlined.

use std::collections::HashSet;

use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::builtins::is_frontend_only;
use crate::document::{NodeView, UiWorkflow, WidgetValues};
use crate::error::WorkflowError;
use crate::flatten::flatten;
use crate::resolve::{Resolver, Source};
use crate::widget_order::slots_from_definition;

/// Something the converter could not do exactly as the frontend would.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConversionWarning {
    pub node_id: String,
    pub node_type: String,
    pub message: String,
}

/// The API prompt plus any warnings.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Conversion {
    /// `{"<id>": {"inputs", "class_type", "_meta"}}`, ready for `POST /prompt`.
    pub prompt: Map<String, Value>,
    pub warnings: Vec<ConversionWarning>,
}

/// Arrays would read as links, so array values are wrapped the way the frontend does.
fn api_value(value: &Value) -> Value {
    if value.is_array() {
        json!({ "__value__": value })
    } else {
        value.clone()
    }
}

fn is_ui_only_key(key: &str) -> bool {
    key.starts_with("control_after_generate") || key == "upload" || key == "videopreview" || key.contains('#')
}

/// Widget inputs of a node (name → value) as the frontend would serialise them.
fn widget_inputs(
    node: NodeView<'_>,
    definition: Option<&Value>,
    warn: &mut dyn FnMut(String),
) -> Map<String, Value> {
    let mut out = Map::new();
    let specs = definition.map(slots_from_definition);
    let wanted = |key: &str| match &specs {
        Some(specs) => specs.iter().any(|s| {
            s.name == key
                || key
                    .strip_prefix(s.name.as_str())
                    .is_some_and(|r| r.starts_with('.'))
        }),
        None => !is_ui_only_key(key),
    };
    if let Some(named) = node.widgets_values_named() {
        for (key, value) in named {
            if wanted(key) {
                out.insert(key.clone(), api_value(value));
            }
        }
        return out;
    }
    match node.widgets_values() {
        WidgetValues::None => {}
        WidgetValues::Map(map) => {
            for (key, value) in map {
                if wanted(key) {
                    out.insert(key.clone(), api_value(value));
                }
            }
        }
        WidgetValues::List(items) => {
            let Some(specs) = specs else {
                if !items.is_empty() {
                    warn("no object_info definition; positional widget values were not mapped".to_owned());
                }
                return out;
            };
            let mut position = 0;
            for spec in &specs {
                let Some(value) = items.get(position) else { break };
                out.insert(spec.name.clone(), api_value(value));
                position += 1 + spec.extras.len();
            }
            if position != items.len() && !items.is_empty() {
                warn(format!(
                    "widgets_values has {} entries but the definition accounts for {position}",
                    items.len()
                ));
            }
        }
    }
    out
}

/// Converts a UI workflow to an API prompt using an object_info document (`GET /object_info`).
pub fn convert_to_api(ui: &UiWorkflow, object_info: &Value) -> Result<Conversion, WorkflowError> {
    let flat = flatten(ui)?;
    let resolver = Resolver::new(&flat);
    let mut warnings = Vec::new();
    let mut prompt = Map::new();
    for (index, flat_node) in flat.nodes.iter().enumerate() {
        let node = flat_node.node;
        let Some(node_type) = node.node_type() else {
            continue;
        };
        if flat_node.instance_of.is_some()
            || flat_node.effective_mode.is_disabled()
            || is_frontend_only(node_type)
        {
            if node_type.starts_with("workflow>") || node_type.starts_with("workflow/") {
                warnings.push(ConversionWarning {
                    node_id: flat_node.id.clone(),
                    node_type: node_type.to_owned(),
                    message: "legacy group nodes are not expanded; convert them to subgraphs in the editor"
                        .to_owned(),
                });
            }
            continue;
        }
        let definition = object_info.get(node_type);
        let mut warn = |message: String| {
            warnings.push(ConversionWarning {
                node_id: flat_node.id.clone(),
                node_type: node_type.to_owned(),
                message,
            });
        };
        if definition.is_none() {
            warn(format!("node type '{node_type}' is not in object_info"));
        }
        let mut inputs = widget_inputs(node, definition, &mut warn);
        for (slot, input) in node.inputs().iter().enumerate() {
            if input.link.is_none() {
                continue;
            }
            let name = input.widget.unwrap_or(input.name);
            match resolver.resolve_input(index, slot) {
                Source::Output { node: origin, slot } => {
                    inputs.insert(name.to_owned(), json!([flat.nodes[origin].id, slot]));
                }
                Source::Value(value) => {
                    inputs.insert(name.to_owned(), api_value(value));
                }
                Source::Nothing => {
                    if input.widget.is_none() {
                        inputs.remove(name);
                    }
                }
                Source::InnerWidget => {}
            }
        }
        let title = node
            .title()
            .or_else(|| {
                definition
                    .and_then(|d| d.get("display_name"))
                    .and_then(Value::as_str)
            })
            .unwrap_or(node_type);
        prompt.insert(
            flat_node.id.clone(),
            json!({"inputs": inputs, "class_type": node_type, "_meta": {"title": title}}),
        );
    }
    // Drop links to nodes that are not in the prompt (muted, virtual, missing).
    let present: HashSet<String> = prompt.keys().cloned().collect();
    for entry in prompt.values_mut() {
        if let Some(inputs) = entry.get_mut("inputs").and_then(Value::as_object_mut) {
            inputs.retain(|_, value| match value {
                Value::Array(items) => items
                    .first()
                    .and_then(Value::as_str)
                    .is_none_or(|id| present.contains(id)),
                _ => true,
            });
        }
    }
    Ok(Conversion { prompt, warnings })
}

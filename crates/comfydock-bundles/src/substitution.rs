//! Import substitution (seed 001): when a model a workflow names is found on this machine by
//! hash under another path or file name, the workflow's widget value is rewritten to it.

use serde::Serialize;
use serde_json::Value;

/// One widget value rewritten.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Substitution {
    pub workflow: String,
    pub node_id: String,
    pub from: String,
    pub to: String,
}

/// The widget value ComfyUI uses for a file under a model folder: the path without the folder
/// (`checkpoints/sub/a.safetensors` → `sub/a.safetensors`).
pub fn widget_value(target: &str) -> &str {
    target.split_once('/').map_or(target, |(_, rest)| rest)
}

/// Rewrite every widget value equal to `from` (either slash style) into `to`, in every node of
/// `workflow` including subgraph definitions. Returns the substitutions made.
pub fn rewrite(workflow_name: &str, workflow: &mut Value, from: &str, to: &str) -> Vec<Substitution> {
    let mut out = Vec::new();
    let from_windows = from.replace('/', "\\");
    visit(workflow, &mut |node| {
        let id = node
            .get("id")
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
            .unwrap_or_default();
        let Some(widgets) = node.get_mut("widgets_values") else {
            return;
        };
        let values: Vec<&mut Value> = match widgets {
            Value::Array(items) => items.iter_mut().collect(),
            Value::Object(map) => map.values_mut().collect(),
            _ => Vec::new(),
        };
        for value in values {
            if let Value::String(s) = value
                && (s == from || *s == from_windows)
            {
                out.push(Substitution {
                    workflow: workflow_name.to_owned(),
                    node_id: id.clone(),
                    from: s.clone(),
                    to: to.to_owned(),
                });
                to.clone_into(s);
            }
        }
    });
    out
}

/// Call `f` on every object that has a `type` and `widgets_values` (a node), anywhere.
fn visit(value: &mut Value, f: &mut dyn FnMut(&mut serde_json::Map<String, Value>)) {
    match value {
        Value::Object(map) => {
            if map.contains_key("widgets_values") && map.contains_key("type") {
                f(map);
            }
            for child in map.values_mut() {
                visit(child, f);
            }
        }
        Value::Array(items) => {
            for child in items {
                visit(child, f);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites_nodes_and_subgraphs() {
        let mut wf = serde_json::json!({
            "nodes": [
                {"id": 4, "type": "CheckpointLoaderSimple", "widgets_values": ["sd15.safetensors"]},
                {"id": 5, "type": "KSampler", "widgets_values": [1, "sd15.safetensors.txt"]}
            ],
            "definitions": {"subgraphs": [{"nodes": [
                {"id": 1, "type": "CheckpointLoaderSimple", "widgets_values": ["sd15.safetensors"]}
            ]}]}
        });
        let subs = rewrite("wf", &mut wf, "sd15.safetensors", "mine/sd15-local.safetensors");
        assert_eq!(subs.len(), 2);
        assert_eq!(subs[0].node_id, "4");
        assert_eq!(wf["nodes"][0]["widgets_values"][0], "mine/sd15-local.safetensors");
        assert_eq!(wf["nodes"][1]["widgets_values"][1], "sd15.safetensors.txt");
        assert_eq!(
            wf["definitions"]["subgraphs"][0]["nodes"][0]["widgets_values"][0],
            "mine/sd15-local.safetensors"
        );
        assert_eq!(widget_value("checkpoints/sub/a.pt"), "sub/a.pt");
    }
}

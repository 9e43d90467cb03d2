//! Content hash (ignores view state) and semantic diff.

use comfydock_workflow::{
    CONTENT_HASH_VERSION, NodeMode, WidgetRef, WorkflowDiff, WorkflowDocument, content_hash, diff,
};
use serde_json::{Value, json};

fn doc(value: &Value) -> WorkflowDocument {
    WorkflowDocument::from_value(value.clone()).unwrap()
}

fn basic() -> Value {
    serde_json::from_str(include_str!("fixtures/ui_basic.json")).unwrap()
}

fn nested() -> Value {
    serde_json::from_str(include_str!("fixtures/ui_subgraph_nested.json")).unwrap()
}

/// Hashes are kept (the cache `status` keeps), so a change of the hash for a document comes with
/// a new [`CONTENT_HASH_VERSION`]: update both together.
#[test]
fn hashes_are_those_of_their_version() {
    assert_eq!(CONTENT_HASH_VERSION, 1);
    assert_eq!(
        content_hash(&doc(&basic())),
        "39adad9ff341bf409a6bad1857c27c6de2ed491e860662976f7e161457d93f3e"
    );
    assert_eq!(
        content_hash(&doc(&nested())),
        "f674a36416a666aee002b0c72d12094b619011e8e4d524a3d089ecd75b4bad53"
    );
}

#[test]
fn hash_is_stable_hex_and_ignores_view_state() {
    let original = basic();
    let hash = content_hash(&doc(&original));
    assert_eq!(hash.len(), 64);
    assert!(hash.bytes().all(|b| b.is_ascii_hexdigit()));

    let mut moved = original.clone();
    moved["extra"]["ds"] = json!({"scale": 2.5, "offset": [-100, 40]});
    moved["extra"]["frontendVersion"] = json!("1.99.0");
    moved["revision"] = json!(17);
    moved["nodes"][0]["pos"] = json!([999, 999]);
    moved["nodes"][0]["size"] = json!([1, 1]);
    moved["nodes"][0]["order"] = json!(42);
    moved["nodes"][0]["flags"] = json!({"collapsed": true});
    moved["nodes"][2]["color"] = json!("#000");
    moved["nodes"][2]["bgcolor"] = json!("#111");
    moved["groups"][0]["bounding"] = json!([0, 0, 10, 10]);
    // KSampler seed with control "randomize" changes on every queue.
    moved["nodes"][4]["widgets_values"][0] = json!(4242);
    assert_eq!(content_hash(&doc(&moved)), hash);

    // Key order does not matter either.
    let reordered: Value = {
        let mut map = serde_json::Map::new();
        for (k, v) in original.as_object().unwrap().iter().rev() {
            map.insert(k.clone(), v.clone());
        }
        Value::Object(map)
    };
    assert_eq!(content_hash(&doc(&reordered)), hash);
}

type Edit = Box<dyn Fn(&mut Value)>;
/// (node id, title, widget, old, new)
type ChangeRow<'a> = (
    &'a str,
    Option<&'a str>,
    &'a WidgetRef,
    Option<&'a Value>,
    Option<&'a Value>,
);

#[test]
fn hash_changes_with_content() {
    let original = basic();
    let hash = content_hash(&doc(&original));
    let edits: Vec<Edit> = vec![
        Box::new(|v| v["nodes"][4]["widgets_values"][2] = json!(25)), // steps
        Box::new(|v| v["nodes"][4]["widgets_values"][1] = json!("fixed")), // seed no longer randomized
        Box::new(|v| v["nodes"][2]["widgets_values"][0] = json!("a castle")),
        Box::new(|v| v["nodes"][4]["mode"] = json!(4)),
        Box::new(|v| v["links"][0][2] = json!(1)),
        Box::new(|v| v["extra"]["my_extension"]["enabled"] = json!(false)),
        Box::new(|v| v["groups"][0]["title"] = json!("Renamed")),
    ];
    for (index, edit) in edits.iter().enumerate() {
        let mut changed = original.clone();
        edit(&mut changed);
        assert_ne!(
            content_hash(&doc(&changed)),
            hash,
            "edit {index} should change the hash"
        );
    }
}

#[test]
fn hash_masks_named_randomized_seeds_and_subgraph_layout() {
    let mut wf = nested();
    wf["nodes"][1]["widgets_values_named"] = json!({"seed": 5, "control_after_generate": "randomize", "upscale_model": "4x_foolhardy_Remacri.pth", "scale": 0.75});
    let hash = content_hash(&doc(&wf));
    let mut other = wf.clone();
    other["nodes"][1]["widgets_values_named"]["seed"] = json!(77);
    other["definitions"]["subgraphs"][0]["nodes"][0]["pos"] = json!([5, 5]);
    other["definitions"]["subgraphs"][0]["inputNode"]["bounding"] = json!([1, 2, 3, 4]);
    other["definitions"]["subgraphs"][0]["inputs"][0]["pos"] = json!([9, 9]);
    assert_eq!(content_hash(&doc(&other)), hash);
    other["definitions"]["subgraphs"][1]["nodes"][1]["widgets_values"][0] = json!("bilinear");
    assert_ne!(content_hash(&doc(&other)), hash);
}

#[test]
fn identical_documents_have_an_empty_diff() {
    let a = doc(&basic());
    let result = diff(&a, &a).unwrap();
    assert!(result.is_empty(), "{result:?}");
}

#[test]
fn diff_names_changed_widgets_added_removed_nodes_modes_and_models() {
    let old = basic();
    let mut new = old.clone();
    new["nodes"][4]["widgets_values"][2] = json!(30); // KSampler steps
    new["nodes"][4]["widgets_values"][0] = json!(1); // randomized seed: not reported
    new["nodes"][2]["widgets_values"][0] = json!("a castle at dawn");
    new["nodes"][0]["widgets_values"][0] = json!("juggernaut_xl.safetensors");
    new["nodes"][5]["mode"] = json!(2);
    let nodes = new["nodes"].as_array_mut().unwrap();
    nodes.retain(|n| n["id"] != json!(10));
    nodes.push(json!({"id": 11, "type": "PreviewImage", "mode": 0, "inputs": [], "outputs": []}));
    let result = diff(&doc(&old), &doc(&new)).unwrap();

    let changes: Vec<ChangeRow<'_>> = result
        .widgets_changed
        .iter()
        .map(|c| {
            (
                c.node_id.as_str(),
                c.title.as_deref(),
                &c.widget,
                c.old.as_ref(),
                c.new.as_ref(),
            )
        })
        .collect();
    assert_eq!(
        changes,
        [
            (
                "4",
                None,
                &WidgetRef::Name("ckpt_name".to_owned()),
                Some(&json!("dreamshaper_8.safetensors")),
                Some(&json!("juggernaut_xl.safetensors"))
            ),
            (
                "6",
                Some("Positive Prompt"),
                &WidgetRef::Name("text".to_owned()),
                Some(&json!("a lighthouse at dusk, oil painting")),
                Some(&json!("a castle at dawn"))
            ),
            (
                "3",
                None,
                &WidgetRef::Name("steps".to_owned()),
                Some(&json!(20)),
                Some(&json!(30))
            ),
        ]
    );
    assert_eq!(result.nodes_removed.len(), 1);
    assert_eq!(
        (
            result.nodes_removed[0].node_id.as_str(),
            result.nodes_removed[0].node_type.as_str()
        ),
        ("10", "MarkdownNote")
    );
    assert_eq!(
        (
            result.nodes_added[0].node_id.as_str(),
            result.nodes_added[0].node_type.as_str()
        ),
        ("11", "PreviewImage")
    );
    assert_eq!(result.modes_changed.len(), 1);
    assert_eq!(
        (result.modes_changed[0].old, result.modes_changed[0].new),
        (NodeMode::Always, NodeMode::Muted)
    );
    assert_eq!(result.models_changed.len(), 1);
    let model = &result.models_changed[0];
    assert_eq!(
        (model.old.as_deref(), model.new.as_deref()),
        (
            Some("dreamshaper_8.safetensors"),
            Some("juggernaut_xl.safetensors")
        )
    );
    assert_eq!(model.folder.as_deref(), Some("checkpoints"));

    let json = serde_json::to_value(&result).unwrap();
    assert_eq!(json["widgets_changed"][2]["widget"], json!({"name": "steps"}));
    assert_eq!(json["modes_changed"][0]["new"], "muted");
}

/// `(node id, widget)` of each changed widget.
fn widget_changes(result: &WorkflowDiff) -> Vec<(&str, String)> {
    result
        .widgets_changed
        .iter()
        .map(|c| (c.node_id.as_str(), c.widget.to_string()))
        .collect()
}

#[test]
fn positional_widgets_are_named_when_the_node_is_known_and_kept_by_position_otherwise() {
    let old = json!({"nodes": [
        {"id": 1, "type": "KSampler", "mode": 0, "widgets_values": [5, "randomize", 20, 8, "euler", "normal", 1]},
        {"id": 2, "type": "SomeCustomNode", "mode": 0, "widgets_values": [1, "a"]},
        {"id": 3, "type": "NewerEditorNode", "mode": 0,
         "inputs": [{"name": "strength", "type": "FLOAT", "link": null, "widget": {"name": "strength"}}],
         "widgets_values": [0.5]}
    ], "links": []});
    let mut new = old.clone();
    new["nodes"][0]["widgets_values"][1] = json!("fixed");
    new["nodes"][1]["widgets_values"][1] = json!("b");
    new["nodes"][2]["widgets_values"][0] = json!(0.75);
    let result = diff(&doc(&old), &doc(&new)).unwrap();
    let changes = widget_changes(&result);
    assert_eq!(
        changes,
        [
            ("1", "control_after_generate".to_owned()),
            ("2", "#1".to_owned()),
            ("3", "strength".to_owned())
        ]
    );
}

#[test]
fn diff_sees_inside_subgraphs_by_flattened_id() {
    let old = nested();
    let mut new = old.clone();
    new["definitions"]["subgraphs"][1]["nodes"][1]["widgets_values_named"]["upscale_method"] =
        json!("bilinear");
    new["nodes"][1]["widgets_values_named"]["upscale_model"] = json!("RealESRGAN_x4.pth");
    let result = diff(&doc(&old), &doc(&new)).unwrap();
    let changes = widget_changes(&result);
    assert_eq!(
        changes,
        [
            ("2", "upscale_model".to_owned()),
            ("2:6:8", "upscale_method".to_owned())
        ]
    );
    // The instance feeds the loader, so the model reference of 2:5 changed.
    assert_eq!(result.models_changed.len(), 1);
    assert_eq!(result.models_changed[0].node_id, "2:5");
    assert_eq!(result.models_changed[0].new.as_deref(), Some("RealESRGAN_x4.pth"));
}

#[test]
fn api_documents_diff_by_input_name() {
    let old: Value = serde_json::from_str(include_str!("fixtures/api_prompt.json")).unwrap();
    let mut new = old.clone();
    new["10"]["inputs"]["cfg"] = json!(5.0);
    let result = diff(&doc(&old), &doc(&new)).unwrap();
    assert_eq!(result.widgets_changed.len(), 1);
    assert_eq!(
        result.widgets_changed[0].widget,
        WidgetRef::Name("cfg".to_owned())
    );
    assert_ne!(content_hash(&doc(&old)), content_hash(&doc(&new)));
}

//! Structural validation of UI and API workflows.

use std::collections::HashSet;

use comfydock_workflow::{IssueCode, Severity, ValidationOptions, WorkflowDocument, validate};
use serde_json::{Value, json};

const FIXTURES: &[&str] = &[
    include_str!("fixtures/ui_basic.json"),
    include_str!("fixtures/ui_subgraph_nested.json"),
    include_str!("fixtures/ui_mixed_features.json"),
    include_str!("fixtures/ui_schema1.json"),
    include_str!("fixtures/api_prompt.json"),
];

fn issues_of(value: Value) -> Vec<comfydock_workflow::ValidationIssue> {
    validate(
        &WorkflowDocument::from_value(value).unwrap(),
        &ValidationOptions::default(),
    )
}

fn basic() -> Value {
    serde_json::from_str(include_str!("fixtures/ui_basic.json")).unwrap()
}

#[test]
fn fixtures_are_clean() {
    for text in FIXTURES {
        let document = WorkflowDocument::parse(text).unwrap();
        assert_eq!(validate(&document, &ValidationOptions::default()), []);
    }
}

#[test]
fn dangling_links_are_reported_with_node_id_title_and_type() {
    let mut wf = basic();
    // Link 4 (Positive Prompt -> KSampler) now comes from a node that does not exist.
    wf["links"][3] = json!([4, 99, 0, 3, 1, "CONDITIONING"]);
    // The negative prompt's clip input names a link id that does not exist.
    wf["nodes"][3]["inputs"][0]["link"] = json!(77);
    let issues = issues_of(wf);
    let codes: Vec<IssueCode> = issues.iter().map(|i| i.code).collect();
    assert_eq!(codes, [IssueCode::DanglingLink, IssueCode::DanglingLink]);
    assert_eq!(
        issues[0].message,
        "node 3 (KSampler): link 4 comes from node 99 which does not exist"
    );
    assert_eq!(
        issues[1].message,
        "node 7 'Negative Prompt' (CLIPTextEncode): input 'clip' refers to link 77 which does not exist"
    );
    assert_eq!(issues[1].node_title.as_deref(), Some("Negative Prompt"));
    assert!(issues.iter().all(|i| i.severity == Severity::Error));
}

#[test]
fn missing_slots_and_type_mismatches_are_reported() {
    let mut wf = basic();
    wf["links"][0] = json!([1, 4, 5, 3, 0, "MODEL"]); // checkpoint has 3 outputs
    wf["links"][8] = json!([9, 8, 0, 9, 4, "IMAGE"]); // SaveImage has 1 input
    wf["links"][7] = json!([8, 4, 1, 8, 1, "CLIP"]); // CLIP output into the VAE input
    let issues = issues_of(wf);
    let summary: Vec<(IssueCode, Option<&str>)> =
        issues.iter().map(|i| (i.code, i.node_id.as_deref())).collect();
    assert_eq!(
        summary,
        [
            (IssueCode::MissingSlot, Some("4")),
            (IssueCode::TypeMismatch, Some("8")),
            (IssueCode::MissingSlot, Some("9"))
        ]
    );
    assert_eq!(
        issues[1].message,
        "node 8 (VAEDecode): input 'vae' expects VAE but link 8 carries CLIP"
    );
}

#[test]
fn wildcards_and_unions_are_compatible() {
    let mut wf = basic();
    wf["nodes"][5]["inputs"][1]["type"] = json!("VAE,LATENT"); // VAEDecode.vae accepts a union
    wf["nodes"][0]["outputs"][2]["type"] = json!("*");
    assert_eq!(issues_of(wf), []);
}

#[test]
fn cycles_and_duplicate_ids_are_reported() {
    let mut wf = basic();
    // VAEDecode output feeds back into KSampler's latent input: 3 -> 8 -> 3.
    wf["links"][1] = json!([2, 8, 0, 3, 3, "LATENT"]);
    wf["nodes"][1]["id"] = json!(9); // EmptyLatentImage now shares id 9 with SaveImage
    let issues = issues_of(wf);
    let codes: HashSet<IssueCode> = issues.iter().map(|i| i.code).collect();
    assert!(codes.contains(&IssueCode::Cycle), "{issues:?}");
    assert!(codes.contains(&IssueCode::DuplicateNodeId), "{issues:?}");
    assert!(
        codes.contains(&IssueCode::TypeMismatch),
        "IMAGE into LATENT: {issues:?}"
    );
    let cycle = issues.iter().find(|i| i.code == IssueCode::Cycle).unwrap();
    assert!(
        cycle.message.contains("nodes 3, 8 depend on each other"),
        "{}",
        cycle.message
    );
}

#[test]
fn unknown_types_only_when_known_types_are_given() {
    let document = WorkflowDocument::parse(include_str!("fixtures/ui_mixed_features.json")).unwrap();
    let known: HashSet<String> = [
        "UNETLoader",
        "KSampler",
        "CLIPTextEncode",
        "DualCLIPLoader",
        "EmptyHunyuanLatentVideo",
        "VAELoader",
        "VAEDecode",
        "VHS_VideoCombine",
        "PathchSageAttentionKJ",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    let issues = validate(
        &document,
        &ValidationOptions {
            known_node_types: Some(&known),
            node_definitions: None,
        },
    );
    assert_eq!(issues.len(), 1, "{issues:?}");
    assert_eq!(issues[0].code, IssueCode::UnknownNodeType);
    assert_eq!(issues[0].node_type.as_deref(), Some("FooModelLoader"));

    let api = WorkflowDocument::parse(include_str!("fixtures/api_prompt.json")).unwrap();
    let issues = validate(
        &api,
        &ValidationOptions {
            known_node_types: Some(&known),
            node_definitions: None,
        },
    );
    let unknown: Vec<&str> = issues.iter().filter_map(|i| i.node_type.as_deref()).collect();
    assert_eq!(
        unknown,
        ["CheckpointLoaderSimple", "EmptyLatentImage", "SaveImage"]
    );
}

#[test]
fn subgraph_scopes_are_checked_and_named() {
    let mut wf: Value = serde_json::from_str(include_str!("fixtures/ui_subgraph_nested.json")).unwrap();
    wf["definitions"]["subgraphs"][1]["links"][2]["origin_slot"] = json!(9); // no subgraph input 9
    wf["nodes"][2]["type"] = json!("00000000-1111-4222-8333-444444444444");
    let issues = issues_of(wf);
    let codes: Vec<IssueCode> = issues.iter().map(|i| i.code).collect();
    assert_eq!(
        codes,
        [IssueCode::MissingSubgraphDefinition, IssueCode::MissingSlot]
    );
    assert_eq!(issues[1].subgraph.as_deref(), Some("Upscale and resize"));
    assert!(
        issues[1]
            .message
            .starts_with("in subgraph 'Upscale and resize': node 8 (ImageScaleBy)"),
        "{}",
        issues[1].message
    );
}

#[test]
fn api_dangling_links_and_cycles() {
    let mut api: Value = serde_json::from_str(include_str!("fixtures/api_prompt.json")).unwrap();
    api["6"]["inputs"]["clip"] = json!(["40", 1]);
    api["4"]["inputs"]["ckpt_name"] = json!(["11", 0]);
    let issues = issues_of(api);
    let summary: Vec<(IssueCode, &str)> = issues
        .iter()
        .map(|i| (i.code, i.node_id.as_deref().unwrap()))
        .collect();
    assert_eq!(
        summary,
        [(IssueCode::DanglingLink, "6"), (IssueCode::Cycle, "10")]
    );
    assert!(
        issues[1].message.contains("nodes 10, 11, 4"),
        "{}",
        issues[1].message
    );
}

#[test]
fn issues_serialise_in_snake_case() {
    let mut wf = basic();
    wf["links"][3] = json!([4, 99, 0, 3, 1, "CONDITIONING"]);
    let json = serde_json::to_value(issues_of(wf)).unwrap();
    assert_eq!(json[0]["code"], "dangling_link");
    assert_eq!(json[0]["severity"], "error");
    assert_eq!(json[0]["node_type"], "KSampler");
}

#[test]
fn object_info_keys_serve_as_known_types() {
    let object_info: Value = serde_json::from_str(include_str!("fixtures/object_info.json")).unwrap();
    let known = comfydock_workflow::node_types_from_object_info(&object_info);
    assert!(known.contains("KSampler") && known.contains("VHS_VideoCombine"));
    let document = WorkflowDocument::parse(include_str!("fixtures/ui_mixed_features.json")).unwrap();
    let issues = validate(
        &document,
        &ValidationOptions {
            known_node_types: Some(&known),
            node_definitions: None,
        },
    );
    let unknown: Vec<(&str, &str)> = issues
        .iter()
        .map(|i| (i.node_id.as_deref().unwrap(), i.node_type.as_deref().unwrap()))
        .collect();
    assert_eq!(unknown, [("13", "FooModelLoader")]);
}

/// Node definitions as `GET /object_info` returns them, for the nodes of the required-input tests.
fn image_object_info() -> Value {
    let int = |default: i64| json!(["INT", {"default": default, "min": 0, "max": 16384}]);
    json!({
        "EmptyImage": {
            "input": {"required": {
                "width": int(512), "height": int(512), "batch_size": int(1), "color": int(0)
            }},
            "input_order": {"required": ["width", "height", "batch_size", "color"]},
            "output": ["IMAGE"], "output_name": ["IMAGE"], "output_node": false,
            "name": "EmptyImage", "display_name": "EmptyImage", "python_module": "nodes"
        },
        "ImageInvert": {
            "input": {"required": {"image": ["IMAGE"]}},
            "input_order": {"required": ["image"]},
            "output": ["IMAGE"], "output_name": ["IMAGE"], "output_node": false,
            "name": "ImageInvert", "display_name": "Invert Image", "python_module": "nodes"
        },
        "VAEDecode": {
            "input": {"required": {"samples": ["LATENT"], "vae": ["VAE"]}},
            "input_order": {"required": ["samples", "vae"]},
            "output": ["IMAGE"], "output_name": ["IMAGE"], "output_node": false,
            "name": "VAEDecode", "display_name": "VAE Decode", "python_module": "nodes"
        },
        "SaveImage": {
            "input": {
                "required": {
                    "images": ["IMAGE", {"tooltip": "The images to save."}],
                    "filename_prefix": ["STRING", {"default": "ComfyUI"}]
                },
                "hidden": {"prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO"}
            },
            "input_order": {"required": ["images", "filename_prefix"], "hidden": ["prompt", "extra_pnginfo"]},
            "output": [], "output_name": [], "output_node": true,
            "name": "SaveImage", "display_name": "Save Image", "python_module": "nodes"
        }
    })
}

/// UI format: EmptyImage (1) → ImageInvert (2) → SaveImage (3), as an older frontend saves it
/// (no sockets for widgets).
fn invert_ui() -> Value {
    json!({
        "last_node_id": 3, "last_link_id": 2, "version": 0.4,
        "nodes": [
            {"id": 1, "type": "EmptyImage", "pos": [0, 0], "size": [300, 130], "mode": 0, "order": 0,
             "outputs": [{"name": "IMAGE", "type": "IMAGE", "links": [1], "slot_index": 0}],
             "widgets_values": [64, 64, 1, 0]},
            {"id": 2, "type": "ImageInvert", "pos": [350, 0], "size": [200, 30], "mode": 0, "order": 1,
             "inputs": [{"name": "image", "type": "IMAGE", "link": 1}],
             "outputs": [{"name": "IMAGE", "type": "IMAGE", "links": [2], "slot_index": 0}]},
            {"id": 3, "type": "SaveImage", "pos": [600, 0], "size": [300, 300], "mode": 0, "order": 2,
             "inputs": [{"name": "images", "type": "IMAGE", "link": 2}],
             "widgets_values": ["inverted"]}
        ],
        "links": [[1, 1, 0, 2, 0, "IMAGE"], [2, 2, 0, 3, 0, "IMAGE"]],
        "groups": [], "config": {}, "extra": {}
    })
}

/// The same graph as an API prompt.
fn invert_api() -> Value {
    json!({
        "1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": 0}},
        "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "inverted"},
              "_meta": {"title": "Save Image"}}
    })
}

fn issues_with_definitions(value: Value) -> Vec<comfydock_workflow::ValidationIssue> {
    let object_info = image_object_info();
    let known = comfydock_workflow::node_types_from_object_info(&object_info);
    validate(
        &WorkflowDocument::from_value(value).unwrap(),
        &ValidationOptions {
            known_node_types: Some(&known),
            node_definitions: Some(&object_info),
        },
    )
}

/// (code, severity, node id, node type, input name) of each issue.
fn required_summary(
    issues: &[comfydock_workflow::ValidationIssue],
) -> Vec<(IssueCode, Severity, &str, &str, &str)> {
    issues
        .iter()
        .map(|i| {
            (
                i.code,
                i.severity,
                i.node_id.as_deref().unwrap_or_default(),
                i.node_type.as_deref().unwrap_or_default(),
                i.input_name.as_deref().unwrap_or_default(),
            )
        })
        .collect()
}

#[test]
fn ui_workflow_with_every_required_input_is_valid() {
    assert_eq!(issues_with_definitions(invert_ui()), []);
}

#[test]
fn ui_workflow_with_widget_sockets_and_values_is_valid() {
    // Newer frontends give every widget a socket; an unlinked widget socket takes its value.
    let mut wf = invert_ui();
    wf["nodes"][2]["inputs"] = json!([
        {"name": "images", "type": "IMAGE", "link": 2},
        {"name": "filename_prefix", "type": "STRING", "widget": {"name": "filename_prefix"}, "link": null}
    ]);
    assert_eq!(issues_with_definitions(wf), []);
}

#[test]
fn ui_save_image_without_images_is_required_input_missing() {
    let mut wf = invert_ui();
    wf["nodes"][2]["inputs"][0]["link"] = Value::Null;
    wf["nodes"][1]["outputs"][0]["links"] = json!([]);
    wf["links"] = json!([[1, 1, 0, 2, 0, "IMAGE"]]);
    let issues = issues_with_definitions(wf);
    assert_eq!(
        required_summary(&issues),
        [(
            IssueCode::RequiredInputMissing,
            Severity::Error,
            "3",
            "SaveImage",
            "images"
        )]
    );
    assert_eq!(
        issues[0].message,
        "node 3 'Save Image' (SaveImage): required input 'images' is missing"
    );
    let json = serde_json::to_value(&issues).unwrap();
    assert_eq!(json[0]["code"], "required_input_missing");
    assert_eq!(json[0]["input_name"], "images");
}

#[test]
fn ui_input_missing_its_slot_and_widget_value_is_reported() {
    // No `images` slot at all, and no value for the `filename_prefix` widget.
    let mut wf = invert_ui();
    wf["nodes"][2]["inputs"] = json!([]);
    wf["nodes"][2]["widgets_values"] = json!([]);
    wf["nodes"][1]["outputs"][0]["links"] = json!([]);
    wf["links"] = json!([[1, 1, 0, 2, 0, "IMAGE"]]);
    let issues = issues_with_definitions(wf);
    assert_eq!(
        required_summary(&issues),
        [
            (
                IssueCode::RequiredInputMissing,
                Severity::Error,
                "3",
                "SaveImage",
                "images"
            ),
            (
                IssueCode::RequiredInputMissing,
                Severity::Error,
                "3",
                "SaveImage",
                "filename_prefix"
            ),
        ]
    );
}

#[test]
fn ui_link_from_a_muted_node_leaves_the_input_missing() {
    // The frontend drops links from muted nodes, so ComfyUI sees SaveImage without images.
    let mut wf = invert_ui();
    wf["nodes"][1]["mode"] = json!(2);
    let issues = issues_with_definitions(wf);
    assert_eq!(
        required_summary(&issues),
        [(
            IssueCode::RequiredInputMissing,
            Severity::Error,
            "3",
            "SaveImage",
            "images"
        )]
    );
}

#[test]
fn ui_link_through_a_bypassed_node_supplies_the_input() {
    let mut wf = invert_ui();
    wf["nodes"][1]["mode"] = json!(4);
    assert_eq!(issues_with_definitions(wf), []);
}

#[test]
fn api_prompt_with_every_required_input_is_valid() {
    assert_eq!(issues_with_definitions(invert_api()), []);
}

#[test]
fn api_save_image_without_images_is_required_input_missing() {
    let mut api = invert_api();
    api["3"]["inputs"].as_object_mut().unwrap().remove("images");
    let issues = issues_with_definitions(api);
    assert_eq!(
        required_summary(&issues),
        [(
            IssueCode::RequiredInputMissing,
            Severity::Error,
            "3",
            "SaveImage",
            "images"
        )]
    );
    assert_eq!(
        issues[0].message,
        "node 3 'Save Image' (SaveImage): required input 'images' is missing"
    );
}

#[test]
fn api_vae_decode_without_vae_feeding_an_output_is_an_error() {
    let api = json!({
        "5": {"class_type": "VAEDecode", "inputs": {"samples": ["6", 0]}},
        "6": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}},
        "7": {"class_type": "SaveImage", "inputs": {"images": ["5", 0], "filename_prefix": "x"}}
    });
    let issues = issues_with_definitions(api);
    assert_eq!(
        required_summary(&issues),
        [(
            IssueCode::RequiredInputMissing,
            Severity::Error,
            "5",
            "VAEDecode",
            "vae"
        )]
    );
}

#[test]
fn node_no_output_needs_is_only_a_warning() {
    // ComfyUI validates only what an output depends on; a stray node does not stop the prompt.
    let mut api = invert_api();
    api["9"] = json!({"class_type": "ImageInvert", "inputs": {}});
    let issues = issues_with_definitions(api);
    assert_eq!(
        required_summary(&issues),
        [(
            IssueCode::RequiredInputMissing,
            Severity::Warning,
            "9",
            "ImageInvert",
            "image"
        )]
    );
    assert!(
        issues[0].message.contains("ComfyUI skips it"),
        "{}",
        issues[0].message
    );
}

#[test]
fn required_inputs_are_not_checked_without_definitions() {
    let mut api = invert_api();
    api["3"]["inputs"].as_object_mut().unwrap().remove("images");
    assert_eq!(issues_of(api), []);
}

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
        },
    );
    let unknown: Vec<(&str, &str)> = issues
        .iter()
        .map(|i| (i.node_id.as_deref().unwrap(), i.node_type.as_deref().unwrap()))
        .collect();
    assert_eq!(unknown, [("13", "FooModelLoader")]);
}

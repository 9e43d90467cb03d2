//! Node classification, package hints, model references, file inputs, built-in scanning.

use std::collections::BTreeMap;

use comfydock_workflow::builtins::scan_python_source;
use comfydock_workflow::{
    AnalysisOptions, BuiltinNodes, Criticality, FileLocation, ModelSource, NodeCategory, WidgetRef,
    WorkflowDocument, analyze, analyze_json,
};

fn parse(text: &str) -> WorkflowDocument {
    WorkflowDocument::parse(text).unwrap()
}

#[test]
fn basic_workflow_is_all_builtin_with_a_declared_checkpoint() {
    let doc = parse(include_str!("fixtures/ui_basic.json"));
    let analysis = analyze(&doc, &AnalysisOptions::default()).unwrap();
    assert_eq!(analysis.node_count, 8);
    assert_eq!(analysis.custom_node_types().count(), 0);
    let note = analysis
        .node_types
        .iter()
        .find(|t| t.node_type == "MarkdownNote")
        .unwrap();
    assert_eq!(note.category, NodeCategory::FrontendOnly);
    let clip = analysis
        .node_types
        .iter()
        .find(|t| t.node_type == "CLIPTextEncode")
        .unwrap();
    assert_eq!(
        (clip.category, clip.node_ids.clone()),
        (NodeCategory::Builtin, vec!["6".to_owned(), "7".to_owned()])
    );
    assert_eq!(analysis.models.len(), 1);
    let model = &analysis.models[0];
    assert_eq!(model.node_id, "4");
    assert_eq!(model.widget, Some(WidgetRef::Name("ckpt_name".to_owned())));
    assert_eq!(model.folder.as_deref(), Some("checkpoints"));
    assert_eq!(
        model.url.as_deref(),
        Some("https://models.example.test/dreamshaper_8.safetensors?download=true")
    );
    assert_eq!(
        (model.hash.as_deref(), model.hash_type.as_deref()),
        (Some("ab12cd34"), Some("SHA256"))
    );
    assert_eq!(model.criticality, Criticality::Required);
    assert_eq!(model.source, ModelSource::LoaderInput);
    assert!(analysis.file_inputs.is_empty());
}

#[test]
fn custom_nodes_carry_package_hints_and_models_by_extension() {
    let doc = parse(include_str!("fixtures/ui_mixed_features.json"));
    let analysis = analyze(&doc, &AnalysisOptions::default()).unwrap();
    let custom: Vec<&str> = analysis
        .custom_node_types()
        .map(|t| t.node_type.as_str())
        .collect();
    assert_eq!(
        custom,
        ["FooModelLoader", "PathchSageAttentionKJ", "VHS_VideoCombine"]
    );
    let kj = analysis
        .node_types
        .iter()
        .find(|t| t.node_type == "PathchSageAttentionKJ")
        .unwrap();
    assert_eq!(kj.packages[0].cnr_id.as_deref(), Some("comfyui-kjnodes"));
    assert_eq!(kj.packages[0].ver.as_deref(), Some("1.1.0"));
    assert_eq!(kj.disabled_node_ids, ["2"]);
    let foo = analysis
        .node_types
        .iter()
        .find(|t| t.node_type == "FooModelLoader")
        .unwrap();
    assert_eq!(foo.packages[0].aux_id.as_deref(), Some("someone/ComfyUI-Foo"));
    for frontend in ["Reroute", "PrimitiveNode", "Note"] {
        let usage = analysis
            .node_types
            .iter()
            .find(|t| t.node_type == frontend)
            .unwrap();
        assert_eq!(usage.category, NodeCategory::FrontendOnly, "{frontend}");
    }
    let muted = analysis
        .node_types
        .iter()
        .find(|t| t.node_type == "CLIPTextEncode")
        .unwrap();
    assert_eq!(muted.disabled_node_ids, ["8"]);

    let summary: Vec<(&str, &str, Option<&str>, Criticality)> = analysis
        .models
        .iter()
        .map(|m| {
            (
                m.node_id.as_str(),
                m.relative_path.as_str(),
                m.folder.as_deref(),
                m.criticality,
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (
                "1",
                "hyvideo/hunyuan_video_720_fp8.safetensors",
                Some("diffusion_models"),
                Criticality::Required
            ),
            (
                "7",
                "clip_l.safetensors",
                Some("text_encoders"),
                Criticality::Required
            ),
            (
                "7",
                "llava_llama3_fp8_scaled.safetensors",
                Some("text_encoders"),
                Criticality::Required
            ),
            (
                "11",
                "hunyuan_video_vae_bf16.safetensors",
                Some("vae"),
                Criticality::Required
            ),
            ("13", "foo/foo_model_v2.gguf", None, Criticality::Required),
        ]
    );
    let foo_model = analysis.models.last().unwrap();
    assert_eq!(foo_model.source, ModelSource::FileExtension);
    assert_eq!(foo_model.widget, Some(WidgetRef::Index(0)));
    assert_eq!(foo_model.name, "foo\\foo_model_v2.gguf");
    assert_eq!(
        analysis.legacy_node_versions["ComfyUI-KJNodes"],
        "a8aeef670b3f288303f956bf94385cb87978ea93"
    );
}

#[test]
fn nested_subgraphs_are_flattened_and_fed_values_are_used() {
    let doc = parse(include_str!("fixtures/ui_subgraph_nested.json"));
    let analysis = analyze(&doc, &AnalysisOptions::default()).unwrap();
    assert_eq!(analysis.subgraph_definition_count, 2);
    let ids: Vec<&str> = analysis
        .node_types
        .iter()
        .flat_map(|t| t.node_ids.iter().map(String::as_str))
        .collect();
    for id in ["1", "2", "3", "2:5", "2:6", "2:6:7", "2:6:8"] {
        assert!(ids.contains(&id), "{id} missing from {ids:?}");
    }
    let subgraphs: Vec<_> = analysis
        .node_types
        .iter()
        .filter(|t| t.category == NodeCategory::Subgraph)
        .collect();
    assert_eq!(subgraphs.len(), 2);
    assert_eq!(analysis.models.len(), 1);
    let model = &analysis.models[0];
    assert_eq!(model.node_id, "2:5");
    assert_eq!(model.name, "4x_foolhardy_Remacri.pth");
    assert_eq!(model.folder.as_deref(), Some("upscale_models"));
    assert_eq!(model.criticality, Criticality::Optional);
    assert!(
        model
            .url
            .as_deref()
            .unwrap()
            .ends_with("4x_foolhardy_Remacri.pth")
    );
    assert_eq!(analysis.file_inputs.len(), 1);
    assert_eq!(analysis.file_inputs[0].value, "portrait.png");
    assert_eq!(analysis.file_inputs[0].location, FileLocation::Input);
    assert_eq!(
        analysis.file_inputs[0].widget,
        WidgetRef::Name("image".to_owned())
    );
}

#[test]
fn criticality_can_be_overridden_by_folder_and_by_model() {
    let doc = parse(include_str!("fixtures/ui_mixed_features.json"));
    let options = AnalysisOptions {
        criticality_by_folder: BTreeMap::from([("text_encoders".to_owned(), Criticality::Flexible)]),
        criticality_by_model: BTreeMap::from([("foo/foo_model_v2.gguf".to_owned(), Criticality::Optional)]),
        ..AnalysisOptions::default()
    };
    let analysis = analyze(&doc, &options).unwrap();
    let by_name = |n: &str| {
        analysis
            .models
            .iter()
            .find(|m| m.relative_path == n)
            .unwrap()
            .criticality
    };
    assert_eq!(by_name("clip_l.safetensors"), Criticality::Flexible);
    assert_eq!(by_name("foo/foo_model_v2.gguf"), Criticality::Optional);
    assert_eq!(
        by_name("hunyuan_video_vae_bf16.safetensors"),
        Criticality::Required
    );
}

#[test]
fn extra_builtins_turn_custom_types_into_builtin() {
    let doc = parse(include_str!("fixtures/ui_mixed_features.json"));
    let options = AnalysisOptions {
        builtins: BuiltinNodes::fallback().with_extra(["FooModelLoader"]),
        ..AnalysisOptions::default()
    };
    let analysis = analyze(&doc, &options).unwrap();
    assert!(
        analysis
            .custom_node_types()
            .all(|t| t.node_type != "FooModelLoader")
    );
    // A built-in that is not a known loader gets no generic extension rule.
    assert!(analysis.models.iter().all(|m| m.node_id != "13"));
}

#[test]
fn api_format_is_analyzed_by_input_names() {
    let doc = parse(include_str!("fixtures/api_prompt.json"));
    let analysis = analyze(&doc, &AnalysisOptions::default()).unwrap();
    assert_eq!(analysis.node_count, 7);
    assert_eq!(analysis.models.len(), 1);
    assert_eq!(analysis.models[0].name, "sd_xl_base_1.0.safetensors");
    assert_eq!(
        analysis.models[0].widget,
        Some(WidgetRef::Name("ckpt_name".to_owned()))
    );
    assert_eq!(analysis.models[0].node_title.as_deref(), Some("Load Checkpoint"));
}

#[test]
fn analysis_serialises_with_snake_case_fields() {
    let doc = parse(include_str!("fixtures/ui_mixed_features.json"));
    let json = serde_json::to_value(analyze(&doc, &AnalysisOptions::default()).unwrap()).unwrap();
    assert_eq!(json["format"], "ui");
    assert_eq!(json["models"][0]["criticality"], "required");
    assert_eq!(json["models"][0]["widget"]["name"], "unet_name");
    let foo = json["node_types"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["node_type"] == "FooModelLoader")
        .unwrap();
    assert_eq!(foo["category"], "custom");
    assert_eq!(foo["packages"][0]["aux_id"], "someone/ComfyUI-Foo");
}

#[test]
fn scans_node_names_from_python_source() {
    let source = r#"
import nodes
class Foo: pass
NODE_CLASS_MAPPINGS = {
    # a comment with "Fake": Thing
    "KSampler": KSampler,
    'CheckpointLoaderSimple' : CheckpointLoaderSimple,
    "Nested": make({"inner": 1}),
    """TripleQuoted""": Other,
}
NODE_DISPLAY_NAME_MAPPINGS = {"KSampler": "KSampler display"}
NODE_CLASS_MAPPINGS.update({"LateAdded": LateAdded})
NODE_CLASS_MAPPINGS["Subscripted"] = Subscripted

class LoadMoGeModel(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(node_id="LoadMoGeModel", category="loaders")
"#;
    let names = scan_python_source(source);
    assert_eq!(
        names,
        [
            "KSampler",
            "CheckpointLoaderSimple",
            "Nested",
            "TripleQuoted",
            "LateAdded",
            "Subscripted",
            "LoadMoGeModel"
        ]
    );
    assert!(scan_python_source("x = {'a': 1}").is_empty());
}

#[test]
fn exponential_subgraph_nesting_is_refused_instead_of_exhausting_memory() {
    use serde_json::json;
    // Each level holds ten instances of the next: 10^7 nodes if expanded.
    let levels = 7;
    let mut subgraphs = Vec::new();
    for level in 0..levels {
        let inner = if level + 1 == levels {
            "KSampler".to_owned()
        } else {
            format!("level-{}", level + 1)
        };
        let nodes: Vec<_> = (1..=10)
            .map(|id| json!({"id": id, "type": inner, "mode": 0}))
            .collect();
        subgraphs.push(json!({"id": format!("level-{level}"), "name": format!("level {level}"), "nodes": nodes, "links": []}));
    }
    let err = analysis_error_of_chain(&subgraphs);
    assert!(
        matches!(
            err,
            comfydock_workflow::WorkflowError::TooManyNodes { limit: 500_000 }
        ),
        "{err:?}"
    );
}

#[test]
fn builtins_from_object_info_use_the_python_module() {
    let object_info: serde_json::Value =
        serde_json::from_str(include_str!("fixtures/object_info.json")).unwrap();
    let builtins = BuiltinNodes::from_object_info(&object_info);
    assert!(builtins.contains("KSampler") && builtins.contains("LoadImage"));
    assert!(
        !builtins.contains("VHS_VideoCombine"),
        "custom_nodes.* modules are not core"
    );
    assert!(!builtins.contains("PathchSageAttentionKJ"));
    assert_eq!(builtins.len(), 16);
    assert!(BuiltinNodes::fallback().len() > 1000);
}

/// A chain of `levels` subgraph definitions, each holding one instance of the next, the top level
/// holding one instance of the first: `levels` levels of nesting.
fn nested_chain(levels: usize) -> String {
    use std::fmt::Write as _;
    let mut text =
        String::from(r#"{"nodes":[{"id":1,"type":"sg-0","mode":0}],"links":[],"definitions":{"subgraphs":["#);
    for level in 0..levels {
        if level > 0 {
            text.push(',');
        }
        let inner = if level + 1 == levels {
            "KSampler".to_owned()
        } else {
            format!("sg-{}", level + 1)
        };
        write!(
            text,
            r#"{{"id":"sg-{level}","name":"level {level}","nodes":[{{"id":1,"type":"{inner}","mode":0}}],"links":[]}}"#
        )
        .unwrap();
    }
    text.push_str("]}}");
    text
}

#[test]
fn deep_subgraph_nesting_is_refused_when_parsed() {
    use comfydock_workflow::{MAX_SUBGRAPH_DEPTH, WorkflowError};
    // The attack: 50,000 nested definitions (references, not JSON depth, so serde_json's recursion
    // limit does not apply) used to cost 20 s and 9.4 GB in expansion.
    let err = WorkflowDocument::parse(&nested_chain(50_000)).unwrap_err();
    assert!(
        matches!(&err, WorkflowError::SubgraphTooDeep { limit: 64, subgraph } if subgraph.contains("sg-")),
        "{err:?}"
    );
    assert!(err.to_string().contains("more than 64 levels deep"), "{err}");
    // The limit itself is accepted and analyzed: the innermost node sits 64 instances deep.
    assert_eq!(MAX_SUBGRAPH_DEPTH, 64);
    let document = WorkflowDocument::parse(&nested_chain(MAX_SUBGRAPH_DEPTH)).unwrap();
    let analysis = analyze(&document, &AnalysisOptions::default()).unwrap();
    let deepest = std::iter::repeat_n("1", MAX_SUBGRAPH_DEPTH + 1)
        .collect::<Vec<_>>()
        .join(":");
    let ksampler = analysis
        .node_types
        .iter()
        .find(|t| t.node_type == "KSampler")
        .expect("the innermost node is analyzed");
    assert_eq!(ksampler.node_ids, [deepest]);
    assert!(matches!(
        WorkflowDocument::parse(&nested_chain(MAX_SUBGRAPH_DEPTH + 1)),
        Err(WorkflowError::SubgraphTooDeep { .. })
    ));
}

#[test]
fn long_node_ids_repeated_by_nesting_are_refused_instead_of_exhausting_memory() {
    use serde_json::json;
    // Eight levels of four instances each, every node id 10,000 characters long: 65,536 nodes
    // whose flattened ids would total about 3 GB.
    let levels = 8;
    let long_id = |n: usize| format!("{n}{}", "x".repeat(10_000));
    let subgraphs: Vec<_> = (0..levels)
        .map(|level| {
            let inner = if level + 1 == levels {
                "KSampler".to_owned()
            } else {
                format!("level-{}", level + 1)
            };
            let nodes: Vec<_> = (0..4)
                .map(|n| json!({"id": long_id(n), "type": inner, "mode": 0}))
                .collect();
            json!({"id": format!("level-{level}"), "nodes": nodes, "links": []})
        })
        .collect();
    let err = analysis_error_of_chain(&subgraphs);
    assert!(
        matches!(
            err,
            comfydock_workflow::WorkflowError::ExpansionTooLarge { limit_bytes } if limit_bytes == 64 << 20
        ),
        "{err:?}"
    );
}

/// The error analyzing a workflow whose one node is an instance of subgraph `level-0` of `subgraphs`.
fn analysis_error_of_chain(subgraphs: &[serde_json::Value]) -> comfydock_workflow::WorkflowError {
    let value = serde_json::json!({"nodes": [{"id": 1, "type": "level-0"}], "links": [], "definitions": {"subgraphs": subgraphs}});
    let document = WorkflowDocument::from_value(value).unwrap();
    analyze(&document, &AnalysisOptions::default()).unwrap_err()
}

/// What `analyze_json` gives next to what parsing the whole tree and `analyze` give, for the same
/// bytes: the same analysis, or the same error.
fn assert_json_analysis_matches_the_whole_tree(bytes: &[u8]) {
    let mut options = AnalysisOptions::default();
    options
        .criticality_by_folder
        .insert("checkpoints".to_owned(), Criticality::Flexible);
    let whole = WorkflowDocument::parse_bytes(bytes)
        .and_then(|doc| analyze(&doc, &options))
        .map_err(|e| e.to_string());
    let streamed = analyze_json(bytes, &options).map_err(|e| e.to_string());
    assert_eq!(
        streamed,
        whole,
        "for {}",
        String::from_utf8_lossy(&bytes[..bytes.len().min(300)])
    );
}

/// A node whose widget value is nested `depth` arrays deep.
fn deeply_nested_node(depth: usize) -> String {
    format!(
        r#"{{"nodes": [{{"id": 1, "type": "KSampler", "widgets_values": {}1{}}}]}}"#,
        "[".repeat(depth),
        "]".repeat(depth)
    )
}

/// `analyze_json` reads UI workflows without subgraphs node by node and everything else as a
/// whole; either way its result is the whole-tree result: fixtures, byte-order marks, repeated
/// keys (the last counts), numbers out of range wherever they sit, nesting right at the parser's
/// limit, non-object nodes, odd `links` and `definitions`, invalid UTF-8, trailing text.
#[test]
fn analyze_json_gives_the_whole_tree_result_for_fixtures_and_edge_cases() {
    let fixtures = [
        include_str!("fixtures/ui_basic.json"),
        include_str!("fixtures/ui_subgraph_nested.json"),
        include_str!("fixtures/ui_mixed_features.json"),
        include_str!("fixtures/ui_schema1.json"),
        include_str!("fixtures/api_prompt.json"),
    ];
    for fixture in fixtures {
        assert_json_analysis_matches_the_whole_tree(fixture.as_bytes());
        assert_json_analysis_matches_the_whole_tree(format!("\u{feff}{fixture}").as_bytes());
        assert_json_analysis_matches_the_whole_tree(format!("{fixture} x").as_bytes());
        assert_json_analysis_matches_the_whole_tree(&fixture.as_bytes()[..fixture.len() / 2]);
    }
    let cases = [
        r#"{"nodes": [{"id": 1, "type": "KSampler", "mode": 4, "widgets_values": [1, "randomize"]}], "links": null}"#,
        r#"{"nodes": [{"id": 2, "type": "CheckpointLoaderSimple", "widgets_values": ["a\\b.safetensors"]},
            {"id": "x", "type": "My\u00e9Node", "properties": {"cnr_id": "pack", "ver": "1.0"},
             "widgets_values": ["m.gguf", {"a": 1}]}, {"id": 3.0, "type": "LoadImage", "widgets_values": ["i.png"]},
            {"type": "Note"}, {"id": 5}, {"id": [1], "type": "LoraLoader", "mode": "2",
             "widgets_values_named": {"lora_name": "l.safetensors"}}], "links": [[1, 2, 0, 3, 0, "MODEL"]]}"#,
        r#"{"nodes": [{"id": 1, "type": "Custom", "properties": {"models": [{"name": "d.safetensors",
            "directory": "loras", "url": "https://example.invalid/d"}]}}]}"#,
        r#"{"nodes": [1], "links": []}"#,
        r#"{"nodes": {}, "links": []}"#,
        r#"{"nodes": [], "links": {}}"#,
        r#"{"nodes": [], "links": 3}"#,
        r#"{"nodes": [], "links": [1e400]}"#,
        r#"{"nodes": [{"id": 1e400, "type": "A"}]}"#,
        r#"{"nodes": [{"type": "A"}], "groups": [{"bounding": [1e400]}]}"#,
        r#"{"nodes": [{"type": "A"}], "nodes": [{"type": "B"}]}"#,
        r#"{"nodes": [{"type": "A", "id": 1e400}], "nodes": [{"type": "B"}]}"#,
        r#"{"nodes": [{"type": "A"}], "links": [1e400], "links": []}"#,
        r#"{"nodes": [{"type": "A"}], "extra": {"node_versions": {"pack": "1.0", "other": 3}}}"#,
        r#"{"nodes": [{"type": "A"}], "extra": 5, "extra": {"node_versions": {"p": "1"}}}"#,
        r#"{"$serde_json::private::RawValue": "{\"nodes\": []}"}"#,
        r#"{"nodes": [{"type": "A"}], "$serde_json::private::RawValue": "1"}"#,
        r#"{"nodes": [], "definitions": {"subgraphs": []}}"#,
        r#"{"nodes": [], "definitions": null}"#,
        r#"{"nodes": [], "definitions": 3}"#,
        r#"{"nodes": [], "definitions": {"subgraphs": 3}}"#,
        r#"{"nodes": [{"id": 1, "type": "s1"}], "definitions": {"subgraphs": [{"id": "s1", "nodes": [{"id": 1, "type": "Custom", "widgets_values": ["x.safetensors"]}]}]}}"#,
        r#"{"nodes": [{"id": 1, "type": "s1"}], "definitions": {"subgraphs": [{"id": "s1", "nodes": [{"id": 1, "type": "s1"}]}]}}"#,
        r#"{"nodes": [{},]}"#,
        r#"{"nodes": []}"#,
        "{}",
        "[]",
        r#"{"1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "c.safetensors"}}}"#,
        r#""nodes""#,
    ];
    for case in cases {
        assert_json_analysis_matches_the_whole_tree(case.as_bytes());
    }
    for depth in 118..=130 {
        assert_json_analysis_matches_the_whole_tree(deeply_nested_node(depth).as_bytes());
    }
    let mut invalid_utf8 = br#"{"nodes": [{"id": 1, "type": "A", "title": "#.to_vec();
    invalid_utf8.extend_from_slice(b"\"\xff\xfe\"}]}");
    assert_json_analysis_matches_the_whole_tree(&invalid_utf8);
}

//! Parsing, format detection, round trips, PNG extraction and bad input.

use std::io::Write;

use comfydock_workflow::{
    NodeMode, WidgetValues, WorkflowDocument, WorkflowError, WorkflowFormat, detect_format, png,
};
use serde_json::{Value, json};

const FIXTURES: &[(&str, &str)] = &[
    ("ui_basic.json", include_str!("fixtures/ui_basic.json")),
    (
        "ui_subgraph_nested.json",
        include_str!("fixtures/ui_subgraph_nested.json"),
    ),
    (
        "ui_mixed_features.json",
        include_str!("fixtures/ui_mixed_features.json"),
    ),
    ("ui_schema1.json", include_str!("fixtures/ui_schema1.json")),
    ("api_prompt.json", include_str!("fixtures/api_prompt.json")),
];

fn fixture(name: &str) -> WorkflowDocument {
    let text = FIXTURES
        .iter()
        .find(|(n, _)| *n == name)
        .expect("fixture exists")
        .1;
    WorkflowDocument::parse(text).expect("fixture parses")
}

#[test]
fn every_fixture_round_trips_byte_for_byte_and_value_for_value() {
    for (name, text) in FIXTURES {
        let document = WorkflowDocument::parse(text).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            document.to_json_pretty(),
            text.trim_end(),
            "{name}: pretty output differs from input"
        );
        let original: Value = serde_json::from_str(text).unwrap();
        let reparsed: Value = serde_json::from_str(&document.to_json_string()).unwrap();
        assert_eq!(
            original, reparsed,
            "{name}: compact output lost or changed a field"
        );
        let via_serde: Value = serde_json::to_value(&document).unwrap();
        assert_eq!(original, via_serde, "{name}: Serialize impl lost a field");
    }
}

#[test]
fn detects_ui_and_api_formats() {
    assert_eq!(fixture("ui_basic.json").format(), WorkflowFormat::Ui);
    assert_eq!(fixture("ui_schema1.json").format(), WorkflowFormat::Ui);
    assert_eq!(fixture("api_prompt.json").format(), WorkflowFormat::Api);
    assert_eq!(
        detect_format(&json!({"nodes": [], "links": []})),
        Some(WorkflowFormat::Ui)
    );
    assert_eq!(
        detect_format(&json!({"1": {"class_type": "X", "inputs": {}}})),
        Some(WorkflowFormat::Api)
    );
    assert_eq!(detect_format(&json!({"1": {"inputs": {}}})), None);
    assert_eq!(detect_format(&json!([1, 2])), None);
}

#[test]
fn invalid_json_reports_line_and_column() {
    let err = WorkflowDocument::parse("{\n  \"nodes\": [\n    {\"id\": 1,}\n  ]\n}").unwrap_err();
    match &err {
        WorkflowError::InvalidJson { line, column, .. } => {
            assert_eq!((*line, *column), (3, 14));
        }
        other => panic!("expected InvalidJson, got {other:?}"),
    }
    assert!(err.to_string().contains("line 3, column 14"), "{err}");
    assert!(matches!(
        WorkflowDocument::parse(""),
        Err(WorkflowError::InvalidJson { line: 1, .. })
    ));
}

#[test]
fn json_that_is_not_a_workflow_says_so() {
    for text in [
        "[1, 2, 3]",
        "{}",
        "{\"name\": \"x\"}",
        "{\"nodes\": 5}",
        "\"text\"",
        "{\"nodes\": [1]}",
    ] {
        let err = WorkflowDocument::parse(text).unwrap_err();
        assert!(
            matches!(err, WorkflowError::NotAWorkflow { .. }),
            "{text}: {err:?}"
        );
        assert!(
            err.to_string().contains("not a ComfyUI workflow"),
            "{text}: {err}"
        );
    }
}

fn subgraph(id: &str, inner_types: &[&str]) -> Value {
    let nodes: Vec<Value> = inner_types
        .iter()
        .enumerate()
        .map(|(i, t)| json!({"id": i + 1, "type": t, "mode": 0, "inputs": [], "outputs": []}))
        .collect();
    json!({"id": id, "name": format!("sg {id}"), "version": 1, "nodes": nodes, "links": [],
           "inputs": [], "outputs": []})
}

#[test]
fn subgraph_that_contains_itself_is_an_error() {
    let direct = json!({"nodes": [{"id": 1, "type": "s1"}], "links": [],
        "definitions": {"subgraphs": [subgraph("s1", &["KSampler", "s1"])]}});
    let err = WorkflowDocument::from_value(direct).unwrap_err();
    assert!(
        matches!(&err, WorkflowError::SubgraphCycle { chain } if chain.len() == 2),
        "{err:?}"
    );
    assert!(err.to_string().contains("contains itself"));

    let indirect = json!({"nodes": [{"id": 1, "type": "s1"}], "links": [],
        "definitions": {"subgraphs": [subgraph("s1", &["s2"]), subgraph("s2", &["s3"]), subgraph("s3", &["s1"])]}});
    let err = WorkflowDocument::from_value(indirect).unwrap_err();
    assert!(
        matches!(&err, WorkflowError::SubgraphCycle { chain } if chain.len() == 4),
        "{err:?}"
    );
}

#[test]
fn very_deep_subgraph_chains_do_not_overflow_the_stack() {
    let depth = 20_000;
    let mut defs: Vec<Value> = (0..depth)
        .map(|i| subgraph(&format!("s{i}"), &[&format!("s{}", i + 1)]))
        .collect();
    defs.push(subgraph(&format!("s{depth}"), &["KSampler"]));
    let acyclic =
        json!({"nodes": [{"id": 1, "type": "s0"}], "links": [], "definitions": {"subgraphs": defs.clone()}});
    // Checked without recursion: refused as too deep (a clean error, not a stack overflow).
    assert!(matches!(
        WorkflowDocument::from_value(acyclic),
        Err(WorkflowError::SubgraphTooDeep { limit: 64, .. })
    ));
    defs.pop();
    defs.push(subgraph(&format!("s{depth}"), &["s0"]));
    let cyclic = json!({"nodes": [{"id": 1, "type": "s0"}], "links": [], "definitions": {"subgraphs": defs}});
    assert!(matches!(
        WorkflowDocument::from_value(cyclic),
        Err(WorkflowError::SubgraphCycle { .. })
    ));
}

#[test]
fn views_read_both_link_shapes_modes_and_widget_shapes() {
    let schema1 = fixture("ui_schema1.json");
    let links = schema1.as_ui().unwrap().graph().links();
    assert_eq!(links.len(), 2);
    assert_eq!(
        (links[1].origin_id.as_str(), links[1].target_id.as_str()),
        ("2", "3")
    );

    let mixed = fixture("ui_mixed_features.json");
    let graph = mixed.as_ui().unwrap().graph();
    let by_id = |id: &str| graph.nodes().find(|n| n.id().as_deref() == Some(id)).unwrap();
    assert_eq!(by_id("2").mode(), NodeMode::Bypassed);
    assert_eq!(by_id("8").mode(), NodeMode::Muted);
    assert!(matches!(by_id("10").widgets_values(), WidgetValues::Map(m) if m["crf"] == json!(19)));
    assert_eq!(graph.links()[0].link_type, "MODEL");

    let nested = fixture("ui_subgraph_nested.json");
    let ui = nested.as_ui().unwrap();
    let defs = ui.subgraph_definitions();
    assert_eq!(defs.len(), 2);
    let inner = defs[0].graph().links();
    assert_eq!(inner[0].origin_id, "-10");
    assert_eq!(defs[0].inputs()[2].name, "scale");
    let loader = defs[0].graph().nodes().next().unwrap();
    assert_eq!(
        loader.widgets_values_named().unwrap()["model_name"],
        json!("4x_foolhardy_Remacri.pth")
    );
}

fn png_chunk(out: &mut Vec<u8>, kind: [u8; 4], data: &[u8]) {
    out.extend_from_slice(&u32::try_from(data.len()).unwrap().to_be_bytes());
    out.extend_from_slice(&kind);
    out.extend_from_slice(data);
    out.extend_from_slice(&[0, 0, 0, 0]); // CRC is not checked by the reader
}

fn tiny_png(text_chunks: &[(&[u8; 4], Vec<u8>)]) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    png_chunk(&mut out, *b"IHDR", &[0, 0, 0, 1, 0, 0, 0, 1, 8, 2, 0, 0, 0]);
    for (kind, data) in text_chunks {
        png_chunk(&mut out, **kind, data);
    }
    png_chunk(&mut out, *b"IDAT", &[0x78, 0x9c, 0x63, 0, 0, 0, 1, 0, 1]);
    png_chunk(&mut out, *b"IEND", &[]);
    out
}

fn keyword_data(keyword: &str, rest: &[u8]) -> Vec<u8> {
    let mut data = keyword.as_bytes().to_vec();
    data.push(0);
    data.extend_from_slice(rest);
    data
}

#[test]
fn extracts_workflow_and_prompt_from_png_text_chunks() {
    let ui_text = include_str!("fixtures/ui_basic.json");
    let api_text = include_str!("fixtures/api_prompt.json");
    let bytes = tiny_png(&[
        (b"tEXt", keyword_data("prompt", api_text.as_bytes())),
        (b"tEXt", keyword_data("workflow", ui_text.as_bytes())),
        (b"tEXt", keyword_data("Software", b"comfy")),
    ]);
    let found = png::extract_workflows(&bytes).unwrap();
    assert_eq!(found.workflow.as_ref().unwrap().format(), WorkflowFormat::Ui);
    assert_eq!(found.prompt.as_ref().unwrap().format(), WorkflowFormat::Api);
    assert_eq!(found.workflow.unwrap().to_json_pretty(), ui_text.trim_end());

    // zTXt (compressed) and iTXt (international) variants.
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(ui_text.as_bytes()).unwrap();
    let mut ztxt = vec![0u8];
    ztxt.extend(encoder.finish().unwrap());
    let mut itxt = vec![0u8, 0, 0, 0];
    itxt.extend_from_slice(api_text.as_bytes());
    let bytes = tiny_png(&[
        (b"zTXt", keyword_data("workflow", &ztxt)),
        (b"iTXt", keyword_data("prompt", &itxt)),
    ]);
    let found = png::extract_workflows(&bytes).unwrap();
    assert!(found.workflow.is_some() && found.prompt.is_some());

    let none = png::extract_workflows(&tiny_png(&[])).unwrap();
    assert!(none.workflow.is_none() && none.prompt.is_none());
}

#[test]
fn bad_png_input_is_an_error_not_a_panic() {
    assert!(matches!(
        png::extract_workflows(b"GIF89a"),
        Err(png::PngError::NotPng)
    ));
    let mut bytes = tiny_png(&[(b"tEXt", keyword_data("workflow", b"{\"nodes\": [}"))]);
    assert!(matches!(
        png::extract_workflows(&bytes),
        Err(png::PngError::BadWorkflow { .. })
    ));
    bytes.truncate(40);
    assert!(matches!(
        png::extract_workflows(&bytes),
        Err(png::PngError::Truncated { .. })
    ));
}

/// Builds a UI workflow of roughly `target_bytes` of compact JSON.
fn big_workflow(target_bytes: usize) -> String {
    let mut nodes = Vec::new();
    let mut links = Vec::new();
    let mut size = 0;
    let mut id: u64 = 1;
    while size < target_bytes {
        let node = json!({"id": id, "type": "CLIPTextEncode", "pos": [id, id], "size": [400, 200], "flags": {},
            "order": id, "mode": 0,
            "inputs": [{"name": "clip", "type": "CLIP", "link": if id > 1 { Value::from(id - 1) } else { Value::Null }}],
            "outputs": [{"name": "CONDITIONING", "type": "CONDITIONING", "links": [id]}],
            "properties": {"Node name for S&R": "CLIPTextEncode", "cnr_id": "comfy-core", "ver": "0.3.65"},
            "widgets_values": ["a long prompt text that repeats to make the file bigger ".repeat(4)]});
        size += node.to_string().len();
        nodes.push(node);
        if id > 1 {
            links.push(json!([id - 1, id - 1, 0, id, 0, "CLIP"]));
        }
        id += 1;
    }
    json!({"last_node_id": id, "last_link_id": id, "nodes": nodes, "links": links, "version": 0.4})
        .to_string()
}

#[test]
fn a_50_mb_workflow_parses_and_round_trips() {
    let text = big_workflow(50 * 1024 * 1024);
    assert!(text.len() >= 50 * 1024 * 1024);
    let document = WorkflowDocument::parse(&text).unwrap();
    let ui = document.as_ui().unwrap();
    assert!(ui.graph().nodes().count() > 50_000);
    assert_eq!(document.to_json_string().len(), text.len());
}

//! Property tests: whatever JSON (or bytes) comes in, parsing and every analysis function return a
//! result or an error — never a panic — accepted documents round-trip exactly, and `analyze_json`
//! gives what the whole-tree reading gives.

use std::collections::HashSet;

use comfydock_workflow::{
    AnalysisOptions, ValidationOptions, WorkflowDocument, analyze, analyze_json, content_hash,
    convert_to_api, diff, png, validate,
};
use proptest::prelude::*;
use serde_json::{Map, Value};

const FIXTURES: &[&str] = &[
    include_str!("fixtures/ui_basic.json"),
    include_str!("fixtures/ui_subgraph_nested.json"),
    include_str!("fixtures/ui_mixed_features.json"),
    include_str!("fixtures/ui_schema1.json"),
    include_str!("fixtures/api_prompt.json"),
];

/// Keys that steer generated JSON towards the shapes the parser looks at.
const KEYS: &[&str] = &[
    "nodes",
    "links",
    "id",
    "type",
    "mode",
    "inputs",
    "outputs",
    "link",
    "links",
    "widget",
    "name",
    "widgets_values",
    "widgets_values_named",
    "properties",
    "models",
    "definitions",
    "subgraphs",
    "origin_id",
    "origin_slot",
    "target_id",
    "target_slot",
    "class_type",
    "_meta",
    "title",
    "extra",
    "node_versions",
    "cnr_id",
    "aux_id",
    "linkIds",
    "version",
    "ds",
    "pos",
    "control_after_generate",
];

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => proptest::sample::select(KEYS).prop_map(str::to_owned),
        1 => "[a-z0-9_:-]{0,6}",
    ]
}

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        (-30i64..30).prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-1e6f64..1e6).prop_map(Value::from),
        proptest::sample::select(
            &[
                "-10",
                "-20",
                "1",
                "2:5",
                "*",
                "IMAGE,MASK",
                "randomize",
                "Reroute",
                "PrimitiveNode",
                "KSampler",
                "s1",
                "x.safetensors",
                "a\\b.gguf",
                "fixed",
                ""
            ][..]
        )
        .prop_map(Value::from),
        "\\PC{0,8}".prop_map(Value::from),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(6, 96, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..8)
                .prop_map(|entries| Value::Object(entries.into_iter().collect::<Map<String, Value>>())),
        ]
    })
}

/// A node object with plausible core fields plus arbitrary extra entries.
fn node_object() -> impl Strategy<Value = Value> {
    let slot = || {
        (scalar(), scalar(), -1i64..8, scalar()).prop_map(|(name, kind, link, widget)| {
            serde_json::json!({"name": name, "type": kind, "link": link, "links": [link], "widget": {"name": widget}})
        })
    };
    (
        scalar(),
        scalar(),
        0i64..6,
        prop::collection::vec(slot(), 0..4),
        prop::collection::vec(slot(), 0..3),
        json_value(),
        prop::collection::vec((key(), json_value()), 0..3),
    )
        .prop_map(|(id, kind, mode, inputs, outputs, widgets, extra)| {
            let mut node = serde_json::json!({"id": id, "type": kind, "mode": mode, "inputs": inputs,
                "outputs": outputs, "widgets_values": widgets});
            let map = node.as_object_mut().expect("object literal");
            map.extend(extra);
            node
        })
}

/// A link in either shape with small ids so that links hit nodes.
fn link_value() -> impl Strategy<Value = Value> {
    (
        0i64..6,
        -20i64..6,
        -1i64..4,
        -20i64..6,
        -1i64..4,
        scalar(),
        any::<bool>(),
    )
        .prop_map(
            |(id, origin, origin_slot, target, target_slot, kind, as_object)| {
                if as_object {
                    serde_json::json!({"id": id, "origin_id": origin, "origin_slot": origin_slot,
                    "target_id": target, "target_slot": target_slot, "type": kind})
                } else {
                    serde_json::json!([id, origin, origin_slot, target, target_slot, kind])
                }
            },
        )
}

fn object_info() -> Value {
    serde_json::from_str(include_str!("fixtures/object_info.json")).unwrap()
}

/// Runs every public operation; the test fails only if one panics.
fn exercise(document: &WorkflowDocument, object_info: &Value) {
    let _ = analyze(document, &AnalysisOptions::default());
    let known: HashSet<String> = ["KSampler".to_owned()].into();
    let _ = validate(
        document,
        &ValidationOptions {
            known_node_types: Some(&known),
            node_definitions: None,
        },
    );
    let _ = validate(document, &ValidationOptions::default());
    let _ = validate(
        document,
        &ValidationOptions {
            known_node_types: None,
            node_definitions: Some(object_info),
        },
    );
    let _ = content_hash(document);
    let _ = diff(document, document);
    if let Some(ui) = document.as_ui() {
        let _ = convert_to_api(ui, object_info);
    }
    let text = document.to_json_string();
    let again = WorkflowDocument::parse(&text).expect("serialised document parses again");
    assert_eq!(again.as_map(), document.as_map());
}

/// `analyze_json` (node by node when it can) gives what the whole-tree reading gives.
fn json_analysis_matches_the_whole_tree(bytes: &[u8]) {
    let options = AnalysisOptions::default();
    let whole = WorkflowDocument::parse_bytes(bytes)
        .and_then(|doc| analyze(&doc, &options))
        .map_err(|e| e.to_string());
    assert_eq!(analyze_json(bytes, &options).map_err(|e| e.to_string()), whole);
}

/// Replaces, removes or duplicates a value at a pseudo-random path.
fn mutate(root: &mut Value, steps: &[usize], op: usize, replacement: Value) {
    let mut current = root;
    for &step in steps {
        let next_exists = match current {
            Value::Array(items) => !items.is_empty(),
            Value::Object(map) => !map.is_empty(),
            _ => false,
        };
        if !next_exists || step % 5 == 0 {
            break;
        }
        current = match current {
            Value::Array(items) => {
                let len = items.len();
                &mut items[step % len]
            }
            Value::Object(map) => {
                let len = map.len();
                map.values_mut().nth(step % len).expect("index in range")
            }
            _ => unreachable!("checked above"),
        };
    }
    match (op % 4, current) {
        (0, Value::Object(map)) if !map.is_empty() => {
            let key = map.keys().nth(op % map.len()).cloned().expect("index in range");
            map.remove(&key);
        }
        (1, Value::Array(items)) if !items.is_empty() => {
            let copy = items[op % items.len()].clone();
            items.push(copy);
        }
        (2, Value::Array(items)) => items.truncate(op % 3),
        (_, slot) => *slot = replacement,
    }
}

proptest! {
    // PROPTEST_CASES raises the case count for longer runs.
    #![proptest_config(ProptestConfig { cases: ProptestConfig::default().cases.max(1500), ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_json_never_panics(value in json_value()) {
        let object_info = object_info();
        let text = value.to_string();
        json_analysis_matches_the_whole_tree(text.as_bytes());
        if let Ok(document) = WorkflowDocument::parse(&text) {
            exercise(&document, &object_info);
        }
    }

    #[test]
    fn arbitrary_json_in_workflow_shape_never_panics(
        nodes in prop::collection::vec(node_object(), 0..8),
        links in prop::collection::vec(link_value(), 0..8),
        inner_nodes in prop::collection::vec(node_object(), 0..5),
        inner_links in prop::collection::vec(link_value(), 0..5),
        subgraph_id in proptest::sample::select(&["s1", "KSampler", "1"][..]),
        with_definitions in any::<bool>(),
        extra in json_value(),
    ) {
        let object_info = object_info();
        let definition = serde_json::json!({"id": subgraph_id, "name": "generated", "nodes": inner_nodes,
            "links": inner_links, "inputs": [{"name": "x", "type": "*", "linkIds": [1]}],
            "outputs": [{"name": "y", "type": "*", "linkIds": [2]}]});
        let value = if with_definitions {
            serde_json::json!({"nodes": nodes, "links": links, "definitions": {"subgraphs": [definition]}})
        } else {
            serde_json::json!({"extra": {"node_versions": extra}, "nodes": nodes, "links": links})
        };
        json_analysis_matches_the_whole_tree(value.to_string().as_bytes());
        let document = match WorkflowDocument::from_value(value) {
            Ok(document) => document,
            Err(comfydock_workflow::WorkflowError::SubgraphCycle { .. }) => return Ok(()),
            Err(other) => panic!("generated node objects must parse, got {other}"),
        };
        exercise(&document, &object_info);
    }

    #[test]
    fn mutated_fixtures_never_panic(
        fixture in 0..FIXTURES.len(),
        mutations in prop::collection::vec(
            (prop::collection::vec(any::<usize>(), 0..8), any::<usize>(), json_value()), 1..6),
    ) {
        let object_info = object_info();
        let mut value: Value = serde_json::from_str(FIXTURES[fixture]).unwrap();
        for (steps, op, replacement) in mutations {
            mutate(&mut value, &steps, op, replacement);
        }
        json_analysis_matches_the_whole_tree(value.to_string().as_bytes());
        if let Ok(document) = WorkflowDocument::from_value(value) {
            exercise(&document, &object_info);
        }
    }

    #[test]
    fn truncated_or_corrupted_text_never_panics(fixture in 0..FIXTURES.len(), cut in any::<usize>(), byte in any::<u8>()) {
        let text = FIXTURES[fixture];
        let mut bytes = text.as_bytes().to_vec();
        let at = cut % bytes.len();
        bytes[at] = byte;
        json_analysis_matches_the_whole_tree(&bytes);
        json_analysis_matches_the_whole_tree(&bytes[..at]);
    }

    #[test]
    fn arbitrary_png_bytes_never_panic(tail in prop::collection::vec(any::<u8>(), 0..512)) {
        let mut bytes = b"\x89PNG\r\n\x1a\n".to_vec();
        bytes.extend_from_slice(&tail);
        let _ = png::extract_workflows(&bytes);
        let _ = png::extract_workflows(&tail);
    }
}

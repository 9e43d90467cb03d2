//! Parses and analyzes 600 generated workflows of realistic size (≈120 nodes, two subgraph
//! definitions with a nested instance, links, models metadata, custom nodes). Target: < 1 s total.

use std::hint::black_box;

use comfydock_workflow::{AnalysisOptions, WorkflowDocument, analyze};
use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::{Value, json};

const WORKFLOWS: usize = 600;

fn node(id: u64, node_type: &str, inputs: Value, outputs: Value, widgets: Value, properties: Value) -> Value {
    let mut node = json!({"id": id, "type": node_type, "pos": [id * 40, id * 25], "size": [315, 262], "flags": {},
           "order": id, "mode": if id.is_multiple_of(17) { 4 } else { 0 }});
    let map = node.as_object_mut().expect("object literal");
    map.insert("inputs".to_owned(), inputs);
    map.insert("outputs".to_owned(), outputs);
    map.insert("properties".to_owned(), properties);
    map.insert("widgets_values".to_owned(), widgets);
    node
}

fn core(node_type: &str) -> Value {
    json!({"Node name for S&R": node_type, "cnr_id": "comfy-core", "ver": "0.3.65"})
}

/// A chain of sampler stages: checkpoint → lora → encode → sample → decode → custom post-processing.
fn body(first_id: u64, stages: u64, seed: u64, link_objects: bool) -> (Vec<Value>, Vec<Value>) {
    let mut nodes = Vec::new();
    let mut links = Vec::new();
    let mut link_id = first_id * 10;
    let mut add_link = |links: &mut Vec<Value>, from: u64, slot: u64, to: u64, to_slot: u64, kind: &str| {
        link_id += 1;
        links.push(if link_objects {
            json!({"id": link_id, "origin_id": from, "origin_slot": slot, "target_id": to, "target_slot": to_slot, "type": kind})
        } else {
            json!([link_id, from, slot, to, to_slot, kind])
        });
        link_id
    };
    for stage in 0..stages {
        let base = first_id + stage * 8;
        let ckpt = format!("model_{}_{stage}.safetensors", seed % 7);
        nodes.push(node(base, "CheckpointLoaderSimple", json!([]),
            json!([{"name": "MODEL", "type": "MODEL", "links": []}, {"name": "CLIP", "type": "CLIP", "links": []}, {"name": "VAE", "type": "VAE", "links": []}]),
            json!([ckpt]),
            json!({"Node name for S&R": "CheckpointLoaderSimple", "cnr_id": "comfy-core", "ver": "0.3.65",
                   "models": [{"name": ckpt, "url": format!("https://models.example.test/{ckpt}"), "directory": "checkpoints"}]})));
        let l1 = add_link(&mut links, base, 0, base + 1, 0, "MODEL");
        let l2 = add_link(&mut links, base, 1, base + 1, 1, "CLIP");
        nodes.push(node(base + 1, "LoraLoader",
            json!([{"name": "model", "type": "MODEL", "link": l1}, {"name": "clip", "type": "CLIP", "link": l2}]),
            json!([{"name": "MODEL", "type": "MODEL", "links": []}, {"name": "CLIP", "type": "CLIP", "links": []}]),
            json!([format!("style_{}.safetensors", stage % 3), 0.8, 0.8]), core("LoraLoader")));
        let l3 = add_link(&mut links, base + 1, 1, base + 2, 0, "CLIP");
        nodes.push(node(
            base + 2,
            "CLIPTextEncode",
            json!([{"name": "clip", "type": "CLIP", "link": l3}]),
            json!([{"name": "CONDITIONING", "type": "CONDITIONING", "links": []}]),
            json!([
                "a detailed prompt describing a scene with many words in it, repeated for size ".repeat(3)
            ]),
            core("CLIPTextEncode"),
        ));
        nodes.push(node(
            base + 3,
            "EmptyLatentImage",
            json!([]),
            json!([{"name": "LATENT", "type": "LATENT", "links": []}]),
            json!([1024, 1024, 1]),
            core("EmptyLatentImage"),
        ));
        let l4 = add_link(&mut links, base + 1, 0, base + 4, 0, "MODEL");
        let l5 = add_link(&mut links, base + 2, 0, base + 4, 1, "CONDITIONING");
        let l6 = add_link(&mut links, base + 3, 0, base + 4, 3, "LATENT");
        nodes.push(node(base + 4, "KSampler",
            json!([{"name": "model", "type": "MODEL", "link": l4}, {"name": "positive", "type": "CONDITIONING", "link": l5},
                   {"name": "negative", "type": "CONDITIONING", "link": null}, {"name": "latent_image", "type": "LATENT", "link": l6}]),
            json!([{"name": "LATENT", "type": "LATENT", "links": []}]),
            json!([seed * 1000 + stage, "randomize", 25, 7, "dpmpp_2m", "karras", 1]), core("KSampler")));
        let l7 = add_link(&mut links, base + 4, 0, base + 5, 0, "LATENT");
        let l8 = add_link(&mut links, base, 2, base + 5, 1, "VAE");
        nodes.push(node(base + 5, "VAEDecode",
            json!([{"name": "samples", "type": "LATENT", "link": l7}, {"name": "vae", "type": "VAE", "link": l8}]),
            json!([{"name": "IMAGE", "type": "IMAGE", "links": []}]), json!([]), core("VAEDecode")));
        let l9 = add_link(&mut links, base + 5, 0, base + 6, 0, "IMAGE");
        nodes.push(node(
            base + 6,
            "ImageResizeKJ",
            json!([{"name": "image", "type": "IMAGE", "link": l9}]),
            json!([{"name": "IMAGE", "type": "IMAGE", "links": []}]),
            json!([832, 480, "lanczos", false, 2, 0, 0, "center"]),
            json!({"Node name for S&R": "ImageResizeKJ", "cnr_id": "comfyui-kjnodes", "ver": "1.1.0"}),
        ));
        let l10 = add_link(&mut links, base + 6, 0, base + 7, 0, "IMAGE");
        nodes.push(node(base + 7, "VHS_VideoCombine", json!([{"name": "images", "type": "IMAGE", "link": l10}]),
            json!([{"name": "Filenames", "type": "VHS_FILENAMES", "links": null}]),
            json!({"frame_rate": 24, "loop_count": 0, "filename_prefix": "out", "format": "video/h264-mp4",
                   "pix_fmt": "yuv420p", "crf": 19, "save_metadata": true, "pingpong": false, "save_output": true,
                   "videopreview": {"hidden": false, "paused": false, "params": {"filename": "out_00001.mp4"}}}),
            json!({"Node name for S&R": "VHS_VideoCombine", "aux_id": "Kosinkadink/ComfyUI-VideoHelperSuite", "ver": "c47b10ca"})));
    }
    (nodes, links)
}

fn workflow(seed: u64) -> String {
    let inner_id = format!("00000000-0000-4000-8000-{:012x}", seed * 2);
    let outer_id = format!("00000000-0000-4000-8000-{:012x}", seed * 2 + 1);
    let (mut inner_nodes, inner_links) = body(1, 2, seed, true);
    inner_nodes.push(
        json!({"id": 90, "type": "UpscaleModelLoader", "mode": 0, "inputs": [], "outputs": [],
        "widgets_values": ["4x_upscaler.pth"], "properties": core("UpscaleModelLoader")}),
    );
    let (mut outer_nodes, outer_links) = body(1, 1, seed + 1, true);
    outer_nodes
        .push(json!({"id": 95, "type": inner_id, "mode": 0, "inputs": [], "outputs": [], "properties": {}}));
    let definition = |id: &str, name: &str, nodes: Vec<Value>, links: Vec<Value>| {
        json!({"id": id, "version": 1, "name": name, "state": {"lastNodeId": 100, "lastLinkId": 100},
               "inputNode": {"id": -10, "bounding": [0, 0, 100, 100]}, "outputNode": {"id": -20, "bounding": [0, 0, 100, 100]},
               "inputs": [], "outputs": [], "widgets": [], "nodes": nodes, "groups": [], "links": links, "extra": {}})
    };
    let (mut nodes, links) = body(1, 12, seed, false);
    nodes.push(json!({"id": 500, "type": outer_id, "mode": 0, "inputs": [], "outputs": [], "properties": {}, "widgets_values": []}));
    nodes.push(json!({"id": 501, "type": inner_id, "mode": 0, "inputs": [], "outputs": [], "properties": {}, "widgets_values": []}));
    nodes.push(
        json!({"id": 502, "type": "MarkdownNote", "mode": 0, "inputs": [], "outputs": [], "properties": {},
                      "widgets_values": ["## Notes\nDownload the models listed in the workflow first."]}),
    );
    json!({"id": format!("wf-{seed}"), "revision": 0, "last_node_id": 502, "last_link_id": 999,
           "nodes": nodes, "links": links, "groups": [{"id": 1, "title": "Stage", "bounding": [0, 0, 800, 600]}],
           "definitions": {"subgraphs": [definition(&inner_id, "Inner", inner_nodes, inner_links),
                                         definition(&outer_id, "Outer", outer_nodes, outer_links)]},
           "config": {}, "extra": {"ds": {"scale": 1.0, "offset": [0, 0]}, "frontendVersion": "1.52.7"}, "version": 0.4})
    .to_string()
}

fn bench_analyze(c: &mut Criterion) {
    let texts: Vec<String> = (0..WORKFLOWS as u64).map(workflow).collect();
    let options = AnalysisOptions::default();
    // Sanity: the generated workflows have the intended size and shape.
    let sample = WorkflowDocument::parse(&texts[0]).expect("generated workflow parses");
    let analysis = analyze(&sample, &options).expect("generated workflow analyzes");
    assert!(analysis.node_count > 120, "node_count {}", analysis.node_count);
    assert_eq!(analysis.subgraph_definition_count, 2);
    let mut group = c.benchmark_group("workflows");
    group.sample_size(10);
    group.bench_function("parse_and_analyze_600", |b| {
        b.iter(|| {
            for text in &texts {
                let document = WorkflowDocument::parse(black_box(text)).expect("parses");
                black_box(analyze(&document, &options).expect("analyzes"));
            }
        });
    });
    group.finish();
}

criterion_group!(benches, bench_analyze);
criterion_main!(benches);

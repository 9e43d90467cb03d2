//! UI → API conversion against an object_info document.

use comfydock_workflow::{Conversion, WorkflowDocument, convert_to_api};
use serde_json::{Value, json};

fn object_info() -> Value {
    serde_json::from_str(include_str!("fixtures/object_info.json")).unwrap()
}

fn convert(value: Value) -> Conversion {
    let document = WorkflowDocument::from_value(value).unwrap();
    convert_to_api(document.as_ui().unwrap(), &object_info()).unwrap()
}

fn fixture(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

#[test]
fn positional_widgets_skip_control_values_and_titles_come_from_the_node() {
    let result = convert(fixture(include_str!("fixtures/ui_basic.json")));
    assert_eq!(result.warnings, []);
    let expected = json!({
        "4": {"inputs": {"ckpt_name": "dreamshaper_8.safetensors"}, "class_type": "CheckpointLoaderSimple", "_meta": {"title": "Load Checkpoint"}},
        "5": {"inputs": {"width": 512, "height": 768, "batch_size": 1}, "class_type": "EmptyLatentImage", "_meta": {"title": "Empty Latent Image"}},
        "6": {"inputs": {"text": "a lighthouse at dusk, oil painting", "clip": ["4", 1]}, "class_type": "CLIPTextEncode", "_meta": {"title": "Positive Prompt"}},
        "7": {"inputs": {"text": "blurry, low quality", "clip": ["4", 1]}, "class_type": "CLIPTextEncode", "_meta": {"title": "Negative Prompt"}},
        "3": {"inputs": {"seed": 156_680_208_700_286_u64, "steps": 20, "cfg": 7.5, "sampler_name": "euler", "scheduler": "normal", "denoise": 1,
                         "model": ["4", 0], "positive": ["6", 0], "negative": ["7", 0], "latent_image": ["5", 0]},
              "class_type": "KSampler", "_meta": {"title": "KSampler"}},
        "8": {"inputs": {"samples": ["3", 0], "vae": ["4", 2]}, "class_type": "VAEDecode", "_meta": {"title": "VAE Decode"}},
        "9": {"inputs": {"filename_prefix": "lighthouse", "images": ["8", 0]}, "class_type": "SaveImage", "_meta": {"title": "Save Image"}}
    });
    assert_eq!(Value::Object(result.prompt.clone()), expected);
    // The result is itself a valid API document.
    let api = WorkflowDocument::from_value(Value::Object(result.prompt)).unwrap();
    assert_eq!(api.format(), comfydock_workflow::WorkflowFormat::Api);
}

#[test]
fn bypass_mute_reroute_primitive_and_dict_widgets() {
    let result = convert(fixture(include_str!("fixtures/ui_mixed_features.json")));
    let prompt = Value::Object(result.prompt.clone());
    let ids: Vec<&String> = result.prompt.keys().collect();
    assert_eq!(ids, ["1", "4", "7", "6", "9", "11", "12", "10", "13"]);
    // Reroute and the bypassed patch node are passed through; the primitive's value is inlined;
    // the muted negative prompt is dropped together with the link to it.
    assert_eq!(
        prompt["4"]["inputs"],
        json!({"seed": 987_654_321, "steps": 30, "cfg": 6, "sampler_name": "euler", "scheduler": "simple", "denoise": 1,
               "model": ["1", 0], "positive": ["6", 0], "latent_image": ["9", 0]})
    );
    let keys: Vec<&str> = prompt["4"]["inputs"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys[0], "seed", "a linked widget keeps its widget position");
    assert_eq!(
        prompt["7"]["inputs"],
        json!({"clip_name1": "clip_l.safetensors", "clip_name2": "llava_llama3_fp8_scaled.safetensors", "type": "hunyuan_video", "device": "default"})
    );
    assert_eq!(
        prompt["10"]["inputs"],
        json!({"frame_rate": 24, "loop_count": 0, "filename_prefix": "fox", "format": "video/h264-mp4", "pingpong": false,
               "save_output": true, "images": ["12", 0]})
    );
    assert_eq!(
        prompt["1"]["inputs"]["unet_name"],
        json!("hyvideo\\hunyuan_video_720_fp8.safetensors")
    );
    let warned: Vec<(&str, &str)> = result
        .warnings
        .iter()
        .map(|w| (w.node_id.as_str(), w.message.as_str()))
        .collect();
    assert_eq!(
        warned,
        [
            ("13", "node type 'FooModelLoader' is not in object_info"),
            (
                "13",
                "no object_info definition; positional widget values were not mapped"
            ),
        ]
    );
}

#[test]
fn nested_subgraphs_flatten_with_outer_inner_ids() {
    let result = convert(fixture(include_str!("fixtures/ui_subgraph_nested.json")));
    assert_eq!(result.warnings, []);
    let expected = json!({
        "1": {"inputs": {"image": "portrait.png"}, "class_type": "LoadImage", "_meta": {"title": "Load Image"}},
        "2:5": {"inputs": {"model_name": "4x_foolhardy_Remacri.pth"}, "class_type": "UpscaleModelLoader", "_meta": {"title": "Load Upscale Model"}},
        "2:6:7": {"inputs": {"upscale_model": ["2:5", 0], "image": ["1", 0]}, "class_type": "ImageUpscaleWithModel", "_meta": {"title": "Upscale Image (using Model)"}},
        "2:6:8": {"inputs": {"upscale_method": "lanczos", "scale_by": 0.75, "image": ["2:6:7", 0]}, "class_type": "ImageScaleBy", "_meta": {"title": "Upscale Image By"}},
        "3": {"inputs": {"filename_prefix": "upscaled", "images": ["2:6:8", 0]}, "class_type": "SaveImage", "_meta": {"title": "Save Image"}}
    });
    assert_eq!(Value::Object(result.prompt), expected);
}

#[test]
fn bypassed_and_muted_subgraph_instances() {
    let mut bypassed = fixture(include_str!("fixtures/ui_subgraph_nested.json"));
    bypassed["nodes"][1]["mode"] = json!(4);
    let result = convert(bypassed);
    let ids: Vec<&String> = result.prompt.keys().collect();
    assert_eq!(ids, ["1", "3"]);
    assert_eq!(result.prompt["3"]["inputs"]["images"], json!(["1", 0]));

    let mut muted = fixture(include_str!("fixtures/ui_subgraph_nested.json"));
    muted["nodes"][1]["mode"] = json!(2);
    let result = convert(muted);
    assert_eq!(
        result.prompt["3"]["inputs"],
        json!({"filename_prefix": "upscaled"})
    );
}

#[test]
fn array_values_are_wrapped_and_schema1_links_work() {
    let mut wf = fixture(include_str!("fixtures/ui_basic.json"));
    wf["nodes"][2]["widgets_values"] = json!([["a", "b"]]);
    let result = convert(wf);
    assert_eq!(
        result.prompt["6"]["inputs"]["text"],
        json!({"__value__": ["a", "b"]})
    );

    let result = convert(fixture(include_str!("fixtures/ui_schema1.json")));
    assert_eq!(result.prompt["3"]["inputs"]["images"], json!(["2", 0]));
    assert_eq!(result.prompt["2"]["inputs"]["image"], json!(["1", 0]));
    assert_eq!(result.prompt["1"]["inputs"], json!({"image": "cat.png"}));
}

//! The ComfyUI protocol stand-in answers like ComfyUI: validation errors, history, uploads, views.

use std::time::Duration;

use comfydock_test::comfyui_server::ComfyUiServer;
use serde_json::{Value, json};

fn prompt(steps: i64) -> Value {
    json!({
        "1": {"class_type": "LoadImage", "inputs": {"image": "example.png"}},
        "2": {"class_type": "KSampler", "inputs": {"seed": 1, "steps": steps, "cfg": 7.0, "sampler_name": "euler",
              "scheduler": "normal", "denoise": 1.0, "model": ["9", 0], "positive": ["9", 0], "negative": ["9", 0], "latent_image": ["9", 0]}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "out/test"}},
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validates_runs_records_history_and_serves_files() {
    let mut comfy = ComfyUiServer::start();
    let http = reqwest::Client::new();
    let base = comfy.url();

    let rejected = http
        .post(format!("{base}/prompt"))
        .json(&json!({"prompt": prompt(0)}))
        .send()
        .await
        .unwrap();
    assert_eq!(rejected.status(), 400);
    let body: Value = rejected.json().await.unwrap();
    assert_eq!(body["error"]["type"], "prompt_outputs_failed_validation");
    assert_eq!(
        body["node_errors"]["2"]["errors"][0]["type"],
        "value_smaller_than_min"
    );
    assert_eq!(
        body["node_errors"]["2"]["errors"][0]["extra_info"]["input_name"],
        "steps"
    );

    let unknown = json!({"prompt": {"1": {"class_type": "NoSuchNode", "inputs": {}}}});
    let body: Value = http
        .post(format!("{base}/prompt"))
        .json(&unknown)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["error"]["type"], "invalid_prompt");

    let accepted: Value = http
        .post(format!("{base}/api/prompt"))
        .json(&json!({"prompt": prompt(2), "client_id": "c1", "prompt_id": "p-1"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(accepted["prompt_id"], "p-1");
    let mut history = json!({});
    for _ in 0..100 {
        history = http
            .get(format!("{base}/history/p-1"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if history.get("p-1").is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let entry = &history["p-1"];
    assert_eq!(entry["status"]["status_str"], "success");
    let image = &entry["outputs"]["3"]["images"][0];
    assert_eq!(image["subfolder"], "out");
    assert_eq!(image["type"], "output");
    let view = http
        .get(format!(
            "{base}/view?filename={}&subfolder=out&type=output",
            image["filename"].as_str().unwrap()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(view.status(), 200);
    assert!(view.bytes().await.unwrap().starts_with(b"\x89PNG"));
    assert_eq!(
        http.get(format!("{base}/view?filename=missing.png"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    assert_eq!(
        http.get(format!("{base}/view?filename=../x"))
            .send()
            .await
            .unwrap()
            .status(),
        400
    );
    assert_eq!(comfy.executions()[0].outcome, "success");

    // Uploads: same content is deduplicated, different content is renamed.
    let upload = |bytes: &'static [u8]| {
        let form = reqwest::multipart::Form::new()
            .part("image", reqwest::multipart::Part::bytes(bytes).file_name("a.png"))
            .text("type", "input");
        http.post(format!("{base}/upload/image")).multipart(form).send()
    };
    let first: Value = upload(b"one").await.unwrap().json().await.unwrap();
    let same: Value = upload(b"one").await.unwrap().json().await.unwrap();
    let other: Value = upload(b"two").await.unwrap().json().await.unwrap();
    assert_eq!(
        (first["name"].as_str(), same["name"].as_str()),
        (Some("a.png"), Some("a.png"))
    );
    assert_eq!(other["name"], "a (1).png");

    let info: Value = http
        .get(format!("{base}/object_info/KSampler"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["KSampler"]["input"]["required"]["steps"][1]["min"], 1);
    let stats: Value = http
        .get(format!("{base}/system_stats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(stats["system"]["comfyui_version"].is_string());

    comfy.kill();
    assert!(
        http.get(format!("{base}/system_stats")).send().await.is_err(),
        "killed means unreachable"
    );
    comfy.restart();
    let after: Value = http
        .get(format!("{base}/history/p-1"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        after,
        json!({}),
        "history is lost on restart, like ComfyUI's memory"
    );
}

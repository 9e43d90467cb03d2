//! The ComfyUI protocol stand-in answers like ComfyUI: validation errors, history, uploads, views.

use std::sync::Arc;
use std::time::Duration;

use comfydock_test::comfyui_server::{ComfyUiServer, Script, ScriptError};
use comfydock_test::json_request::json_answer;
use futures::StreamExt as _;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens `/ws?clientId=` and reads the greeting.
async fn connect(base: &str, client_id: &str) -> Socket {
    let url = format!("{}/ws?clientId={client_id}", base.replacen("http", "ws", 1));
    let (mut socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let hello = next_json(&mut socket).await;
    assert_eq!(hello["type"], "status", "{hello}");
    socket
}

async fn next_json(socket: &mut Socket) -> Value {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(30), socket.next())
            .await
            .expect("a message in time")
            .expect("socket open")
            .unwrap();
        if let Message::Text(text) = message {
            return serde_json::from_str(text.as_str()).unwrap();
        }
    }
}

/// Reads the messages of `prompt_id` up to and including `executing {node: null}`, as `type` or
/// `type:node` strings (`status` broadcasts left out).
async fn read_run(socket: &mut Socket, prompt_id: &str) -> Vec<String> {
    let mut seen = Vec::new();
    loop {
        let message = next_json(socket).await;
        let kind = message["type"].as_str().unwrap().to_owned();
        if kind == "status" || message["data"]["prompt_id"] != prompt_id {
            continue;
        }
        let node = &message["data"]["node"];
        if kind == "executing" && node.is_null() {
            seen.push("executing:null".to_owned());
            return seen;
        }
        seen.push(match node.as_str() {
            Some(node) => format!("{kind}:{node}"),
            None => kind,
        });
    }
}

async fn history(http: &reqwest::Client, base: &str, prompt_id: &str) -> Value {
    json_answer(http.get(format!("{base}/history/{prompt_id}"))).await
}

async fn queue_prompt(http: &reqwest::Client, base: &str, prompt: &Value, client_id: &str, prompt_id: &str) {
    let response = http
        .post(format!("{base}/prompt"))
        .json(&json!({"prompt": prompt, "client_id": client_id, "prompt_id": prompt_id}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
}

/// LoadImage → ImageInvert → SaveImage.
fn small_prompt() -> Value {
    json!({
        "1": {"class_type": "LoadImage", "inputs": {"image": "example.png"}},
        "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "inv"}},
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_prompt_follows_comfyui_message_order_and_history_is_complete_at_executing_null() {
    let comfy = ComfyUiServer::start_with(Arc::new(|_: &Value| Script {
        steps: 2,
        step_delay: Duration::ZERO,
        ..Script::default()
    }));
    let http = reqwest::Client::new();
    let base = comfy.url();
    let mut socket = connect(&base, "c1").await;
    queue_prompt(&http, &base, &prompt(2), "c1", "p-order").await;
    let seen = read_run(&mut socket, "p-order").await;
    assert_eq!(
        seen,
        [
            "execution_start",
            "execution_cached",
            "progress_state",
            "executing:1",
            "progress_state",
            "executing:2",
            "progress:2",
            "progress:2",
            "progress_state",
            "executing:3",
            "executed:3",
            "progress_state",
            "execution_success",
            "executing:null",
        ]
    );
    // `executing {node: null}` comes after the history entry was written.
    let entry = &history(&http, &base, "p-order").await["p-order"];
    assert_eq!(entry["status"]["status_str"], "success");
    assert!(
        entry["outputs"]["3"]["images"][0]["filename"].is_string(),
        "{entry}"
    );
    let messages: Vec<&str> = entry["status"]["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m[0].as_str().unwrap())
        .collect();
    assert_eq!(messages.last(), Some(&"execution_success"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_prompt_also_ends_with_executing_null_after_its_history() {
    let comfy = ComfyUiServer::start_with(Arc::new(|_: &Value| Script {
        step_delay: Duration::ZERO,
        error: Some(ScriptError {
            node_id: Some("2".into()),
            exception_type: "RuntimeError".into(),
            exception_message: "boom".into(),
        }),
        ..Script::default()
    }));
    let http = reqwest::Client::new();
    let base = comfy.url();
    let mut socket = connect(&base, "c1").await;
    queue_prompt(&http, &base, &small_prompt(), "c1", "p-fail").await;
    let seen = read_run(&mut socket, "p-fail").await;
    assert_eq!(
        seen,
        [
            "execution_start",
            "execution_cached",
            "progress_state",
            "executing:1",
            "progress_state",
            "executing:2",
            "execution_error",
            "executing:null",
        ]
    );
    let entry = &history(&http, &base, "p-fail").await["p-fail"];
    assert_eq!(entry["status"]["status_str"], "error");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_is_not_there_yet_when_execution_success_arrives() {
    // The history entry is held back far longer than this test runs, so what the client sees at
    // `execution_success` does not depend on timing.
    let comfy = ComfyUiServer::start_with(Arc::new(|_: &Value| Script {
        step_delay: Duration::ZERO,
        history_delay: Duration::from_hours(1),
        ..Script::default()
    }));
    let http = reqwest::Client::new();
    let base = comfy.url();
    let mut socket = connect(&base, "c1").await;
    queue_prompt(&http, &base, &small_prompt(), "c1", "p-late").await;
    loop {
        let message = next_json(&mut socket).await;
        assert!(
            !(message["type"] == "executing" && message["data"]["node"].is_null()),
            "executing null before the history entry: {message}"
        );
        if message["type"] == "execution_success" {
            break;
        }
    }
    assert_eq!(history(&http, &base, "p-late").await, json!({}));
    assert_eq!(comfy.running().as_deref(), Some("p-late"));
}

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
    let body: Value = json_answer(http.post(format!("{base}/prompt")).json(&unknown)).await;
    assert_eq!(body["error"]["type"], "invalid_prompt");

    let accepted: Value = json_answer(
        http.post(format!("{base}/api/prompt"))
            .json(&json!({"prompt": prompt(2), "client_id": "c1", "prompt_id": "p-1"})),
    )
    .await;
    assert_eq!(accepted["prompt_id"], "p-1");
    let mut entries = json!({});
    for _ in 0..100 {
        entries = history(&http, &base, "p-1").await;
        if entries.get("p-1").is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let entry = &entries["p-1"];
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

    let info: Value = json_answer(http.get(format!("{base}/object_info/KSampler"))).await;
    assert_eq!(info["KSampler"]["input"]["required"]["steps"][1]["min"], 1);
    let stats: Value = json_answer(http.get(format!("{base}/system_stats"))).await;
    assert!(stats["system"]["comfyui_version"].is_string());

    comfy.kill();
    assert!(
        http.get(format!("{base}/system_stats")).send().await.is_err(),
        "killed means unreachable"
    );
    comfy.restart();
    let after: Value = history(&http, &base, "p-1").await;
    assert_eq!(
        after,
        json!({}),
        "history is lost on restart, like ComfyUI's memory"
    );
}

/// As ComfyUI's `PromptServer` (server.py, v0.3.77): a second socket with a client id takes that
/// id's messages from the first, and when either closes, the id has no socket any more: a prompt
/// of that client then runs unheard.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_id_has_one_socket_and_a_closing_one_unregisters_it() {
    let comfy = ComfyUiServer::start_with(Arc::new(|_: &Value| Script {
        step_delay: Duration::ZERO,
        ..Script::default()
    }));
    let http = reqwest::Client::new();
    let base = comfy.url();
    let mut first = connect(&base, "shared").await;
    let mut second = connect(&base, "shared").await;
    queue_prompt(&http, &base, &small_prompt(), "shared", "p-second").await;
    assert_eq!(
        read_run(&mut second, "p-second").await.last().unwrap(),
        "executing:null"
    );
    let first_heard = tokio::time::timeout(Duration::from_millis(300), first.next()).await;
    assert!(
        first_heard.is_err(),
        "the replaced socket hears nothing: {first_heard:?}"
    );
    // What the second socket was sent until now (status broadcasts) is read.
    while tokio::time::timeout(Duration::from_millis(300), second.next())
        .await
        .is_ok()
    {}

    first.close(None).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    queue_prompt(&http, &base, &small_prompt(), "shared", "p-unheard").await;
    for _ in 0..100 {
        if !history(&http, &base, "p-unheard").await["p-unheard"].is_null() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        !history(&http, &base, "p-unheard").await["p-unheard"].is_null(),
        "it ran"
    );
    let second_heard = tokio::time::timeout(Duration::from_millis(300), second.next()).await;
    assert!(
        second_heard.is_err(),
        "the id lost its socket when the first closed: {second_heard:?}"
    );
}

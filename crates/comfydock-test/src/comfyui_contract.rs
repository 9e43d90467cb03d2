//! What a ComfyUI server answers, reduced to shapes, so the stand-in can be held to the real one.
//!
//! [`record`] drives any ComfyUI (the real one in the real-world tier, or [`crate::comfyui_server`])
//! through one small prompt — EmptyImage → ImageInvert → SaveImage — and keeps the *shape* of each
//! answer (key sets and value types, not values): an `/object_info` entry, the `/prompt` accept
//! body, two `/prompt` error bodies (an unknown class; a missing required input), the
//! `/history/{id}` entry, and the sequence of WebSocket message types of the prompt. The tier
//! records the real server and compares it with the recording committed in the repository; the main
//! suite compares the stand-in with that committed recording.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::http::client;

/// The shapes one ComfyUI server gave.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recording {
    /// Top-level keys of each of the prompt's node classes in `/object_info`, and the type of each
    /// required input.
    pub object_info: BTreeMap<String, NodeShape>,
    /// `POST /prompt` for a valid prompt: status and body shape.
    pub prompt_accepted: Answer,
    /// `POST /prompt` naming a class that does not exist.
    pub prompt_unknown_class: Answer,
    /// `POST /prompt` with SaveImage's required `images` input missing.
    pub prompt_missing_input: Answer,
    /// The error types in the missing-input answer: `error.type`, then each node error's `type`.
    pub missing_input_error_types: Vec<String>,
    /// `/history/{id}` once the prompt has finished: the shape of the entry.
    pub history_entry: Value,
    /// WebSocket message types for the prompt, in order, consecutive repeats collapsed, without
    /// the queue-wide `status` messages.
    pub websocket_sequence: Vec<String>,
}

/// The shape of one `/object_info` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeShape {
    pub keys: Vec<String>,
    /// Required input name → its declared type (`INT`, `IMAGE`, ... or `COMBO`).
    pub required_inputs: BTreeMap<String, String>,
}

/// A status code and the shape of a JSON body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answer {
    pub status: u16,
    pub shape: Value,
}

/// The classes of the recorded prompt.
pub const PROMPT_CLASSES: [&str; 3] = ["EmptyImage", "ImageInvert", "SaveImage"];

/// EmptyImage → ImageInvert → SaveImage in the API format; without SaveImage's `images` when
/// `connected` is false.
pub fn invert_prompt(connected: bool) -> Value {
    let mut save = json!({"class_type": "SaveImage", "inputs": {"filename_prefix": "contract"}});
    if connected {
        save["inputs"]["images"] = json!(["2", 0]);
    }
    json!({
        "1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 48, "batch_size": 1, "color": 0x00_FF_00}},
        "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
        "3": save,
    })
}

/// Records the server at `base` (`http://127.0.0.1:PORT`). Panics, naming the step, when the
/// server does not answer as ComfyUI would at all.
pub fn record(base: &str) -> Recording {
    let info = client::get(&format!("{base}/object_info"), &[])
        .expect("GET /object_info")
        .json();
    let object_info = PROMPT_CLASSES
        .iter()
        .map(|class| {
            let entry = info
                .get(*class)
                .unwrap_or_else(|| panic!("/object_info has no `{class}`"));
            ((*class).to_owned(), node_shape(entry))
        })
        .collect();

    let unknown = json!({"1": {"class_type": "NoSuchNodeClass", "inputs": {}}});
    let prompt_unknown_class = post_prompt(base, &unknown, "contract").0;
    let (prompt_missing_input, missing_body) = post_prompt(base, &invert_prompt(false), "contract");
    let mut missing_input_error_types = vec![missing_body["error"]["type"].as_str().unwrap_or("").to_owned()];
    if let Some(nodes) = missing_body["node_errors"].as_object() {
        for node in nodes.values() {
            for error in node["errors"].as_array().into_iter().flatten() {
                missing_input_error_types.push(error["type"].as_str().unwrap_or("").to_owned());
            }
        }
    }

    let client_id = format!("contract-{}", std::process::id());
    let ws_url = format!("{}/ws?clientId={client_id}", base.replacen("http", "ws", 1));
    let (mut socket, _) = tungstenite::connect(&ws_url).expect("open ComfyUI's WebSocket");
    // A width never asked before, so ComfyUI's cache cannot skip nodes and change the sequence.
    let mut prompt = invert_prompt(true);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    prompt["1"]["inputs"]["width"] = json!(64 + nanos % 4096);
    let (prompt_accepted, accepted) = post_prompt(base, &prompt, &client_id);
    let prompt_id = accepted["prompt_id"].as_str().expect("prompt_id").to_owned();
    let websocket_sequence = websocket_sequence(&mut socket, &prompt_id);
    let history = client::get(&format!("{base}/history/{prompt_id}"), &[])
        .expect("GET /history/{id}")
        .json();
    let history_entry = shape(
        history
            .get(&prompt_id)
            .unwrap_or_else(|| panic!("/history/{prompt_id} is written by the end: {history}")),
    );
    Recording {
        object_info,
        prompt_accepted,
        prompt_unknown_class,
        prompt_missing_input,
        missing_input_error_types,
        history_entry,
        websocket_sequence,
    }
}

/// Every difference between two recordings, each naming its field; empty when they match.
pub fn differences(expected: &Recording, actual: &Recording) -> Vec<String> {
    let (e, a) = (
        serde_json::to_value(expected).expect("a recording serializes"),
        serde_json::to_value(actual).expect("a recording serializes"),
    );
    let mut out = Vec::new();
    for (field, value) in e.as_object().expect("object") {
        if a.get(field) != Some(value) {
            out.push(format!(
                "{field}:\n  expected {}\n  actual   {}",
                value,
                a.get(field).unwrap_or(&Value::Null)
            ));
        }
    }
    out
}

fn node_shape(entry: &Value) -> NodeShape {
    let keys = entry
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    let required_inputs = entry["input"]["required"]
        .as_object()
        .map(|inputs| {
            inputs
                .iter()
                .map(|(name, spec)| {
                    let kind = match &spec[0] {
                        Value::String(s) => s.clone(),
                        Value::Array(_) => "COMBO".to_owned(),
                        other => other.to_string(),
                    };
                    (name.clone(), kind)
                })
                .collect()
        })
        .unwrap_or_default();
    NodeShape {
        keys,
        required_inputs,
    }
}

fn post_prompt(base: &str, prompt: &Value, client_id: &str) -> (Answer, Value) {
    let body = json!({"prompt": prompt, "client_id": client_id}).to_string();
    let response = client::request(
        "POST",
        &format!("{base}/prompt"),
        &[("Content-Type", "application/json")],
        body.as_bytes(),
    )
    .expect("POST /prompt");
    let value = response.json();
    (
        Answer {
            status: response.status,
            shape: shape(&value),
        },
        value,
    )
}

type Socket = tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<std::net::TcpStream>>;

/// Message types until `executing` with `node: null` for the prompt (binary previews skipped).
fn websocket_sequence(socket: &mut Socket, prompt_id: &str) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_mins(2);
    let mut sequence: Vec<String> = Vec::new();
    while Instant::now() < deadline {
        let message = socket.read().expect("read ComfyUI's WebSocket");
        let tungstenite::Message::Text(text) = message else {
            continue;
        };
        let message: Value = serde_json::from_str(&text).expect("a JSON WebSocket message");
        let kind = message["type"].as_str().unwrap_or_default().to_owned();
        let data = &message["data"];
        let ours = data.get("prompt_id").is_none_or(|id| id == prompt_id);
        if kind == "status" || !ours {
            continue;
        }
        let done = kind == "executing" && data["node"].is_null();
        if sequence.last() != Some(&kind) {
            sequence.push(kind);
        }
        if done {
            return sequence;
        }
    }
    panic!("no `executing` with node null for {prompt_id} within 2 minutes: {sequence:?}");
}

/// The shape of a JSON value: objects keep their keys with the shape of each value; arrays become
/// the distinct shapes of their elements; scalars become their type name.
pub fn shape(value: &Value) -> Value {
    match value {
        Value::Null => json!("null"),
        Value::Bool(_) => json!("bool"),
        Value::Number(_) => json!("number"),
        Value::String(_) => json!("string"),
        Value::Array(items) => {
            let mut shapes: Vec<Value> = Vec::new();
            for item in items {
                let s = shape(item);
                if !shapes.contains(&s) {
                    shapes.push(s);
                }
            }
            Value::Array(shapes)
        }
        Value::Object(map) => Value::Object(map.iter().map(|(k, v)| (k.clone(), shape(v))).collect()),
    }
}

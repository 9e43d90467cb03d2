//! A ComfyUI server stand-in speaking the real HTTP + WebSocket protocol, for API tests.
//!
//! Routes (each also under `/api`): `POST /prompt`, `GET /prompt`, `GET /ws?clientId=`,
//! `GET /history`, `GET /history/{id}`, `GET /view`, `POST /upload/image`, `POST /interrupt`,
//! `GET /queue`, `POST /queue` (`delete`, `clear`), `GET /object_info`, `GET /object_info/{class}`, `GET /system_stats`.
//!
//! Prompts are validated against a small realistic `/object_info` ([`object_info`]) the way
//! ComfyUI does (unknown class → `invalid_prompt`; out-of-range numbers, values not in a combo,
//! missing upload files → `prompt_outputs_failed_validation` with `node_errors`), queued by `number`
//! and executed one at a time following a [`Script`]: `execution_start`, `execution_cached`,
//! `executing` per node, `progress` per sampler step, `executed` with outputs for output nodes
//! (images, animated WEBP, video as `gifs`, audio), then `execution_success` (or
//! `execution_error` / `execution_interrupted`). Like ComfyUI, the history entry is written only
//! after that message has been sent, and then `executing {node: null}` tells the client the prompt
//! is over and its history complete. Both gaps can be widened: the history by
//! [`Script::history_delay`], output files on `/view` by [`Script::files_delay`] (the "success
//! before file on disk" race).
//!
//! Prompts keep the `prompt_id` a client chose in `POST /prompt`; [`ComfyUiServer::executions`]
//! lists every prompt that ran (by id), so tests can see a prompt run twice. Two faults of the
//! network can be injected: [`ComfyUiServer::lose_prompt_replies`] queues prompts but drops the
//! connection instead of answering, [`ComfyUiServer::drop_sockets`] cuts every WebSocket while the
//! prompts go on running.
//!
//! [`ComfyUiServer::kill`] drops every connection and running prompt at once, like a crashed
//! process; [`ComfyUiServer::restart`] listens again on the same port with an empty queue and
//! history (files persist, as they would on disk).

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{DefaultBodyLimit, Multipart, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use tokio::sync::{Notify, broadcast};

/// A script failure raised while executing one node.
#[derive(Clone, Debug)]
pub struct ScriptError {
    /// The node that fails (default: the first sampler, else the first node).
    pub node_id: Option<String>,
    pub exception_type: String,
    pub exception_message: String,
}

/// What the stand-in does with one prompt.
#[derive(Clone, Debug)]
pub struct Script {
    /// `progress` messages per sampler node (classes containing `Sampler`).
    pub steps: u32,
    /// Sleep before each progress step (and once per node without steps).
    pub step_delay: Duration,
    /// Fail with `execution_error` at a node.
    pub error: Option<ScriptError>,
    /// Output files appear on `/view` only this long after `execution_success`.
    pub files_delay: Duration,
    /// `/history/{id}` gets the entry only this long after `execution_success` (or the error) was
    /// sent; `executing {node: null}` follows the entry. ComfyUI has this gap too, just shorter.
    pub history_delay: Duration,
    /// Reports every output file under this name (the file is still stored under its real name):
    /// a hostile or broken backend, e.g. `../../escape.png`.
    pub reported_filename: Option<String>,
    /// Output files are padded to at least this many bytes (varying bytes, different per file),
    /// for tests of large outputs.
    pub output_size: usize,
}

impl Default for Script {
    fn default() -> Self {
        Self {
            steps: 3,
            step_delay: Duration::from_millis(10),
            error: None,
            files_delay: Duration::ZERO,
            history_delay: Duration::ZERO,
            reported_filename: None,
            output_size: 0,
        }
    }
}

impl Script {
    /// No steps, no delays: a zero-work backend for benchmarks.
    pub fn instant() -> Self {
        Self {
            steps: 0,
            step_delay: Duration::ZERO,
            ..Self::default()
        }
    }
}

/// Chooses the script of each prompt (it sees the API-format prompt).
pub type ScriptFn = Arc<dyn Fn(&Value) -> Script + Send + Sync>;

/// One prompt that ran to an end (not counting ones cut short by [`ComfyUiServer::kill`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Execution {
    pub prompt_id: String,
    pub client_id: Option<String>,
    /// `success`, `error` or `interrupted`.
    pub outcome: String,
}

type FileKey = (String, String, String);

/// State that survives a kill/restart (what would be on disk) plus test observations.
struct Shared {
    files: Mutex<HashMap<FileKey, Vec<u8>>>,
    executions: Mutex<Vec<Execution>>,
    received: Mutex<Vec<Value>>,
    script: Mutex<ScriptFn>,
    file_counter: AtomicU32,
    object_info: Value,
    /// `POST /prompt` replies still to lose ([`ComfyUiServer::lose_prompt_replies`]).
    replies_to_lose: AtomicU32,
}

/// State of one incarnation of the server (lost on kill, like ComfyUI's memory).
struct Instance {
    shared: Arc<Shared>,
    queue: Mutex<Vec<Pending>>,
    wake: Notify,
    history: Mutex<HashMap<String, Value>>,
    events: broadcast::Sender<(Option<String>, String)>,
    running: Mutex<Option<String>>,
    /// ComfyUI's global interrupt flag: cleared when a prompt starts, checked between steps.
    interrupt: AtomicBool,
    number: AtomicU64,
    /// Bumped by [`ComfyUiServer::drop_sockets`]: every open WebSocket closes without a word.
    hangup: tokio::sync::watch::Sender<u64>,
    /// The socket each client id's messages go to (by connection number), as ComfyUI's
    /// `PromptServer.sockets`: a new socket with a client id replaces the old one, and a socket
    /// that closes unregisters its client id, even when a newer socket had taken it.
    sockets: Mutex<HashMap<String, u64>>,
    connections: AtomicU64,
}

#[derive(Clone)]
struct Pending {
    number: f64,
    prompt_id: String,
    prompt: Value,
    client_id: Option<String>,
    /// When the prompt was queued (ms since the epoch), as `create_time` in the history.
    created_ms: u64,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(0))
}

/// A running stand-in. Dropping it stops it.
pub struct ComfyUiServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    runtime: Option<tokio::runtime::Runtime>,
    instance: Option<Arc<Instance>>,
}

impl ComfyUiServer {
    /// Starts on a free port of 127.0.0.1 with [`Script::default`] for every prompt.
    pub fn start() -> Self {
        Self::start_with(Arc::new(|_: &Value| Script::default()))
    }

    /// Starts with a script chooser.
    pub fn start_with(script: ScriptFn) -> Self {
        let shared = Arc::new(Shared {
            files: Mutex::new(HashMap::new()),
            executions: Mutex::new(Vec::new()),
            received: Mutex::new(Vec::new()),
            script: Mutex::new(script),
            file_counter: AtomicU32::new(0),
            object_info: object_info(),
            replies_to_lose: AtomicU32::new(0),
        });
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the ComfyUI stand-in");
        let addr = listener.local_addr().expect("ComfyUI stand-in address");
        let mut server = Self {
            addr,
            shared,
            runtime: None,
            instance: None,
        };
        server.listen(listener);
        server
    }

    fn listen(&mut self, listener: TcpListener) {
        listener.set_nonblocking(true).expect("non-blocking listener");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("comfyui-standin")
            .enable_all()
            .build()
            .expect("ComfyUI stand-in runtime");
        let (events, _) = broadcast::channel(4096);
        let instance = Arc::new(Instance {
            shared: Arc::clone(&self.shared),
            queue: Mutex::new(Vec::new()),
            wake: Notify::new(),
            history: Mutex::new(HashMap::new()),
            events,
            running: Mutex::new(None),
            interrupt: AtomicBool::new(false),
            number: AtomicU64::new(0),
            hangup: tokio::sync::watch::Sender::new(0),
            sockets: Mutex::new(HashMap::new()),
            connections: AtomicU64::new(0),
        });
        let app = router(Arc::clone(&instance));
        runtime.spawn(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
            let _ = axum::serve(listener, app).await;
        });
        runtime.spawn(execute_queue(Arc::clone(&instance)));
        self.runtime = Some(runtime);
        self.instance = Some(instance);
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Replaces the script chooser for prompts that start from now on.
    pub fn set_script(&self, script: ScriptFn) {
        *lock(&self.shared.script) = script;
    }

    /// Every prompt body received by `POST /prompt` (accepted or not), oldest first.
    pub fn received(&self) -> Vec<Value> {
        lock(&self.shared.received).clone()
    }

    /// Prompts that ran to an end, oldest first.
    pub fn executions(&self) -> Vec<Execution> {
        lock(&self.shared.executions).clone()
    }

    /// How many times each prompt id ran to an end (any outcome).
    pub fn runs_per_prompt(&self) -> HashMap<String, usize> {
        let mut runs = HashMap::new();
        for execution in lock(&self.shared.executions).iter() {
            *runs.entry(execution.prompt_id.clone()).or_default() += 1;
        }
        runs
    }

    /// The next `count` accepted prompts are queued (and run) but their `POST /prompt` connection is
    /// dropped without an answer, like a reply lost on the network.
    pub fn lose_prompt_replies(&self, count: u32) {
        self.shared.replies_to_lose.store(count, Ordering::SeqCst);
    }

    /// Cuts every open WebSocket (no close frame); queued and running prompts go on.
    pub fn drop_sockets(&self) {
        if let Some(instance) = &self.instance {
            instance.hangup.send_modify(|generation| *generation += 1);
        }
    }

    /// Prompt ids waiting in the queue (not running).
    pub fn pending(&self) -> Vec<String> {
        self.instance.as_ref().map_or_else(Vec::new, |i| {
            lock(&i.queue).iter().map(|p| p.prompt_id.clone()).collect()
        })
    }

    /// The prompt id currently executing.
    pub fn running(&self) -> Option<String> {
        self.instance.as_ref().and_then(|i| lock(&i.running).clone())
    }

    /// Bytes of a stored file (`kind` = `output`, `input` or `temp`).
    pub fn file(&self, kind: &str, subfolder: &str, name: &str) -> Option<Vec<u8>> {
        lock(&self.shared.files)
            .get(&(kind.to_owned(), subfolder.to_owned(), name.to_owned()))
            .cloned()
    }

    /// Stops answering at once: the listener, every connection and the running prompt are dropped.
    pub fn kill(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            // On a plain thread (shutting a runtime down inside async code panics), and waited
            // for, so the port is closed when this returns.
            let _ = std::thread::spawn(move || runtime.shutdown_timeout(Duration::from_secs(5))).join();
        }
        self.instance = None;
    }

    /// Whether the server is currently up.
    pub fn is_running(&self) -> bool {
        self.runtime.is_some()
    }

    /// Listens again on the same port after [`ComfyUiServer::kill`] (empty queue and history).
    pub fn restart(&mut self) {
        self.kill();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let listener = loop {
            match TcpListener::bind(self.addr) {
                Ok(listener) => break listener,
                Err(e) if std::time::Instant::now() < deadline => {
                    let _ = e;
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => panic!("rebind the ComfyUI stand-in on {}: {e}", self.addr),
            }
        };
        self.listen(listener);
    }
}

impl Drop for ComfyUiServer {
    fn drop(&mut self) {
        self.kill();
    }
}

fn router(instance: Arc<Instance>) -> Router {
    let routes = Router::new()
        .route("/prompt", post(post_prompt).get(get_prompt))
        .route("/ws", get(websocket))
        .route("/history", get(history_all))
        .route("/history/{id}", get(history_one))
        .route("/view", get(view))
        .route("/upload/image", post(upload_image))
        .route("/interrupt", post(interrupt))
        .route("/queue", get(queue).post(edit_queue))
        .route("/object_info", get(object_info_all))
        .route("/object_info/{class}", get(object_info_one))
        .route("/system_stats", get(system_stats))
        .layer(DefaultBodyLimit::max(100 * 1024 * 1024))
        .with_state(instance);
    Router::new().merge(routes.clone()).nest("/api", routes)
}

type StandIn = State<Arc<Instance>>;

fn json_response(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

async fn get_prompt(State(instance): StandIn) -> Response {
    let remaining = lock(&instance.queue).len() + usize::from(lock(&instance.running).is_some());
    json_response(
        StatusCode::OK,
        &json!({"exec_info": {"queue_remaining": remaining}}),
    )
}

async fn post_prompt(State(instance): StandIn, body: String) -> Response {
    let body: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    lock(&instance.shared.received).push(body.clone());
    let Some(prompt) = body.get("prompt").filter(|p| p.is_object()).cloned() else {
        let error = json!({"type": "no_prompt", "message": "No prompt provided", "details": "No prompt provided", "extra_info": {}});
        return json_response(
            StatusCode::BAD_REQUEST,
            &json!({"error": error, "node_errors": {}}),
        );
    };
    if let Err(response) = validate_prompt(&instance, &prompt) {
        return *response;
    }
    let prompt_id = body
        .get("prompt_id")
        .and_then(Value::as_str)
        .map_or_else(|| format!("{:032x}", rand_u128()), str::to_owned);
    let counter = instance.number.fetch_add(1, Ordering::SeqCst);
    #[allow(clippy::cast_precision_loss)]
    let mut number = body
        .get("number")
        .and_then(Value::as_f64)
        .unwrap_or(counter as f64);
    if body.get("front").and_then(Value::as_bool) == Some(true) {
        number = -number;
    }
    let client_id = body.get("client_id").and_then(Value::as_str).map(str::to_owned);
    lock(&instance.queue).push(Pending {
        number,
        prompt_id: prompt_id.clone(),
        prompt,
        client_id,
        created_ms: now_ms(),
    });
    instance.wake.notify_one();
    broadcast_status(&instance);
    let lose = instance
        .shared
        .replies_to_lose
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    if lose {
        // Unwinding the connection's task drops it without a response (and without a panic
        // message): the prompt is queued, its client never hears so.
        std::panic::resume_unwind(Box::new("POST /prompt reply lost on purpose"));
    }
    json_response(
        StatusCode::OK,
        &json!({"prompt_id": prompt_id, "number": number, "node_errors": {}}),
    )
}

fn rand_u128() -> u128 {
    use std::hash::{BuildHasher, Hasher};
    let state = std::collections::hash_map::RandomState::new();
    let mut a = state.build_hasher();
    a.write_u64(now_ms());
    let mut b = state.build_hasher();
    b.write_u128(u128::from(a.finish()));
    (u128::from(a.finish()) << 64) | u128::from(b.finish())
}

/// The output nodes whose inputs lead (through links) to node `id`, itself included, sorted.
fn dependent_outputs(prompt: &Value, info: &Value, id: &str) -> Vec<String> {
    fn reaches(prompt: &Value, from: &str, target: &str, seen: &mut Vec<String>) -> bool {
        if from == target {
            return true;
        }
        if seen.iter().any(|s| s == from) {
            return false;
        }
        seen.push(from.to_owned());
        prompt[from]["inputs"].as_object().is_some_and(|inputs| {
            inputs
                .values()
                .any(|value| match value.as_array().map(Vec::as_slice) {
                    Some([Value::String(upstream), Value::Number(_)]) => {
                        reaches(prompt, upstream, target, seen)
                    }
                    _ => false,
                })
        })
    }
    let mut outputs: Vec<String> = prompt
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(_, node)| {
            let class = node["class_type"].as_str().unwrap_or("");
            info[class]["output_node"] == json!(true)
        })
        .map(|(output, _)| output.clone())
        .filter(|output| reaches(prompt, output, id, &mut Vec::new()))
        .collect();
    outputs.sort();
    outputs
}

/// ComfyUI-style validation against [`object_info`].
fn validate_prompt(instance: &Instance, prompt: &Value) -> Result<(), Box<Response>> {
    let info = &instance.shared.object_info;
    let nodes = prompt.as_object().expect("checked object");
    for (id, node) in nodes {
        let class = node.get("class_type").and_then(Value::as_str).unwrap_or("");
        if info.get(class).is_none() {
            let message = format!("Cannot execute because node {class} does not exist.");
            let error = json!({"type": "invalid_prompt", "message": message, "details": format!("Node ID '#{id}'"), "extra_info": {}});
            return Err(Box::new(json_response(
                StatusCode::BAD_REQUEST,
                &json!({"error": error, "node_errors": {}}),
            )));
        }
    }
    let has_output = nodes.values().any(|node| {
        let class = node.get("class_type").and_then(Value::as_str).unwrap_or("");
        info[class]["output_node"] == json!(true)
    });
    if !has_output {
        let error = json!({"type": "prompt_no_outputs", "message": "Prompt has no outputs", "details": "", "extra_info": {}});
        return Err(Box::new(json_response(
            StatusCode::BAD_REQUEST,
            &json!({"error": error, "node_errors": {}}),
        )));
    }
    let mut node_errors = serde_json::Map::new();
    for (id, node) in nodes {
        let class = node["class_type"].as_str().unwrap_or("");
        let mut errors = Vec::new();
        for section in ["required", "optional"] {
            let Some(specs) = info[class]["input"][section].as_object() else {
                continue;
            };
            for (name, spec) in specs {
                let value = node["inputs"].get(name);
                if value.is_none() && section == "required" {
                    errors.push(input_error(
                        "required_input_missing",
                        "Required input is missing",
                        name,
                    ));
                    continue;
                }
                let Some(value) = value.filter(|v| !v.is_array()) else {
                    continue;
                };
                if let Some(error) = check_input(&instance.shared, name, spec, value) {
                    errors.push(error);
                }
            }
        }
        if !errors.is_empty() {
            node_errors.insert(
                id.clone(),
                json!({"errors": errors, "dependent_outputs": dependent_outputs(prompt, info, id), "class_type": class}),
            );
        }
    }
    if node_errors.is_empty() {
        return Ok(());
    }
    let error = json!({"type": "prompt_outputs_failed_validation", "message": "Prompt outputs failed validation", "details": "", "extra_info": {}});
    Err(Box::new(json_response(
        StatusCode::BAD_REQUEST,
        &json!({"error": error, "node_errors": node_errors}),
    )))
}

fn input_error(kind: &str, message: &str, input: &str) -> Value {
    json!({"type": kind, "message": message, "details": format!("{input}"), "extra_info": {"input_name": input}})
}

fn check_input(shared: &Shared, name: &str, spec: &Value, value: &Value) -> Option<Value> {
    let kind = &spec[0];
    let options = &spec[1];
    let combo = kind
        .as_array()
        .cloned()
        .or_else(|| (kind == "COMBO").then(|| options["options"].as_array().cloned().unwrap_or_default()));
    if let Some(choices) = combo {
        if options.get("image_upload").is_some() || options.get("audio_upload").is_some() {
            let file = value.as_str().unwrap_or("");
            let present =
                lock(&shared.files).contains_key(&("input".to_owned(), String::new(), file.to_owned()))
                    || choices.contains(value);
            return (!present).then(|| {
                input_error(
                    "custom_validation_failed",
                    &format!("Invalid image file: {file}"),
                    name,
                )
            });
        }
        return (!choices.contains(value)).then(|| {
            input_error(
                "value_not_in_list",
                &format!("Value not in list: {name}: '{value}' not in {choices:?}"),
                name,
            )
        });
    }
    let number = match kind.as_str() {
        Some("INT") => value.as_f64().filter(|_| value.is_i64() || value.is_u64()),
        Some("FLOAT") => value.as_f64(),
        Some("STRING") => {
            return (!value.is_string()).then(|| input_error("invalid_input_type", "not a string", name));
        }
        Some("BOOLEAN") => {
            return (!value.is_boolean()).then(|| input_error("invalid_input_type", "not a boolean", name));
        }
        _ => return None,
    };
    let Some(number) = number else {
        return Some(input_error(
            "invalid_input_type",
            &format!("Failed to convert an input value to a {kind}"),
            name,
        ));
    };
    if let Some(min) = options["min"].as_f64().filter(|min| number < *min) {
        return Some(input_error(
            "value_smaller_than_min",
            &format!("Value {number} smaller than min of {min}"),
            name,
        ));
    }
    if let Some(max) = options["max"].as_f64().filter(|max| number > *max) {
        return Some(input_error(
            "value_bigger_than_max",
            &format!("Value {number} bigger than max of {max}"),
            name,
        ));
    }
    None
}

fn send(instance: &Instance, client: Option<&str>, kind: &str, data: Value) {
    let mut message = serde_json::Map::new();
    message.insert("type".to_owned(), Value::from(kind));
    message.insert("data".to_owned(), data);
    let _ = instance
        .events
        .send((client.map(str::to_owned), Value::Object(message).to_string()));
}

fn broadcast_status(instance: &Instance) {
    let remaining = lock(&instance.queue).len() + usize::from(lock(&instance.running).is_some());
    send(
        instance,
        None,
        "status",
        json!({"status": {"exec_info": {"queue_remaining": remaining}}}),
    );
}

async fn execute_queue(instance: Arc<Instance>) {
    loop {
        let next = {
            let mut queue = lock(&instance.queue);
            let best = queue
                .iter()
                .enumerate()
                .min_by(|a, b| a.1.number.total_cmp(&b.1.number))
                .map(|(index, _)| index);
            best.map(|index| queue.remove(index))
        };
        let Some(pending) = next else {
            instance.wake.notified().await;
            continue;
        };
        *lock(&instance.running) = Some(pending.prompt_id.clone());
        instance.interrupt.store(false, Ordering::SeqCst);
        let outcome = execute_prompt(&instance, &pending).await;
        *lock(&instance.running) = None;
        lock(&instance.shared.executions).push(Execution {
            prompt_id: pending.prompt_id.clone(),
            client_id: pending.client_id.clone(),
            outcome: outcome.to_owned(),
        });
        broadcast_status(&instance);
    }
}

fn interrupted(instance: &Instance) -> bool {
    instance.interrupt.load(Ordering::SeqCst)
}

fn sorted_node_ids(prompt: &Value) -> Vec<String> {
    let mut ids: Vec<String> = prompt
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    ids.sort_by_key(|id| (id.parse::<u64>().unwrap_or(u64::MAX), id.clone()));
    ids
}

async fn execute_prompt(instance: &Arc<Instance>, pending: &Pending) -> &'static str {
    let script = (lock(&instance.shared.script).clone())(&pending.prompt);
    let client = pending.client_id.as_deref();
    let prompt_id = pending.prompt_id.as_str();
    let mut messages = Vec::new();
    broadcast_status(instance);
    send(
        instance,
        client,
        "execution_start",
        json!({"prompt_id": prompt_id, "timestamp": now_ms()}),
    );
    messages.push(json!(["execution_start", {"prompt_id": prompt_id, "timestamp": now_ms()}]));
    let cached = json!({"nodes": [], "prompt_id": prompt_id, "timestamp": now_ms()});
    send(instance, client, "execution_cached", cached.clone());
    messages.push(json!(["execution_cached", cached]));
    let ids = sorted_node_ids(&pending.prompt);
    let failing_node = script.error.as_ref().map(|error| {
        error.node_id.clone().unwrap_or_else(|| {
            ids.iter()
                .find(|id| {
                    pending.prompt[id.as_str()]["class_type"]
                        .as_str()
                        .is_some_and(|c| c.contains("Sampler"))
                })
                .or(ids.first())
                .cloned()
                .unwrap_or_default()
        })
    });
    let mut outputs = serde_json::Map::new();
    let mut files = Vec::new();
    let mut executed = Vec::new();
    for id in &ids {
        let node = &pending.prompt[id.as_str()];
        let class = node["class_type"].as_str().unwrap_or("");
        send(
            instance,
            client,
            "progress_state",
            progress_state(prompt_id, &ids, &executed, Some(id)),
        );
        send(
            instance,
            client,
            "executing",
            json!({"node": id, "display_node": id, "prompt_id": prompt_id}),
        );
        let steps = if class.contains("Sampler") {
            script.steps
        } else {
            0
        };
        if steps == 0 && !script.step_delay.is_zero() {
            tokio::time::sleep(script.step_delay).await;
        }
        for step in 1..=steps {
            if !script.step_delay.is_zero() {
                tokio::time::sleep(script.step_delay).await;
            }
            if interrupted(instance) {
                break;
            }
            send(
                instance,
                client,
                "progress",
                json!({"value": step, "max": steps, "prompt_id": prompt_id, "node": id}),
            );
        }
        if interrupted(instance) {
            let data = json!({"prompt_id": prompt_id, "node_id": id, "node_type": class, "executed": executed, "timestamp": now_ms()});
            send(instance, None, "execution_interrupted", data.clone());
            messages.push(json!(["execution_interrupted", data]));
            finish(instance, pending, &script, &outputs, "error", messages).await;
            return "interrupted";
        }
        if failing_node.as_deref() == Some(id.as_str()) {
            let error = script.error.clone().expect("failing node implies an error");
            let data = json!({
                "prompt_id": prompt_id, "node_id": id, "node_type": class, "executed": executed,
                "exception_message": error.exception_message, "exception_type": error.exception_type,
                "traceback": ["Traceback (most recent call last):\n", "  File \"execution.py\", line 1\n"],
                "current_inputs": {}, "current_outputs": {}, "timestamp": now_ms(),
            });
            send(instance, client, "execution_error", data.clone());
            messages.push(json!(["execution_error", data]));
            finish(instance, pending, &script, &outputs, "error", messages).await;
            return "error";
        }
        if let Some((mut ui, mut node_files)) = node_outputs(&instance.shared, class, node) {
            for (_, bytes) in &mut node_files {
                pad(bytes, script.output_size);
            }
            if let Some(name) = &script.reported_filename {
                for entries in ui.as_object_mut().into_iter().flat_map(|o| o.values_mut()) {
                    for entry in entries.as_array_mut().into_iter().flatten() {
                        if entry.get("filename").is_some() {
                            entry["filename"] = json!(name);
                        }
                    }
                }
            }
            outputs.insert(id.clone(), ui.clone());
            files.extend(node_files);
            send(
                instance,
                client,
                "executed",
                json!({"node": id, "display_node": id, "output": ui, "prompt_id": prompt_id}),
            );
        }
        executed.push(id.clone());
    }
    if script.files_delay.is_zero() {
        lock(&instance.shared.files).extend(files);
    } else {
        let shared = Arc::clone(&instance.shared);
        let delay = script.files_delay;
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            lock(&shared.files).extend(files);
        });
    }
    send(
        instance,
        client,
        "progress_state",
        progress_state(prompt_id, &ids, &executed, None),
    );
    let data = json!({"prompt_id": prompt_id, "timestamp": now_ms()});
    send(instance, client, "execution_success", data.clone());
    messages.push(json!(["execution_success", data]));
    finish(instance, pending, &script, &outputs, "success", messages).await;
    "success"
}

/// ComfyUI's `progress_state` message: every node of the prompt with its state (`finished`,
/// `running` or `pending`), sent before each node runs and once more when all have finished.
fn progress_state(prompt_id: &str, ids: &[String], executed: &[String], running: Option<&String>) -> Value {
    let nodes: serde_json::Map<String, Value> = ids
        .iter()
        .map(|id| {
            let state = if executed.contains(id) {
                "finished"
            } else if running == Some(id) {
                "running"
            } else {
                "pending"
            };
            let done = u8::from(state == "finished");
            let entry = json!({
                "value": done, "max": 1, "state": state, "node_id": id, "prompt_id": prompt_id,
                "display_node_id": id, "parent_node_id": null, "real_node_id": id,
            });
            (id.clone(), entry)
        })
        .collect();
    json!({"prompt_id": prompt_id, "nodes": nodes})
}

/// What ComfyUI does once the final message (`execution_success`, `execution_error` or
/// `execution_interrupted`) is sent: write the history entry, then send `executing {node: null}`.
async fn finish(
    instance: &Instance,
    pending: &Pending,
    script: &Script,
    outputs: &serde_json::Map<String, Value>,
    status: &str,
    messages: Vec<Value>,
) {
    if !script.history_delay.is_zero() {
        tokio::time::sleep(script.history_delay).await;
    }
    record_history(instance, pending, outputs, status, messages);
    send(
        instance,
        pending.client_id.as_deref(),
        "executing",
        json!({"node": null, "prompt_id": pending.prompt_id}),
    );
}

fn record_history(
    instance: &Instance,
    pending: &Pending,
    outputs: &serde_json::Map<String, Value>,
    status: &str,
    messages: Vec<Value>,
) {
    // Output nodes: the ones whose class writes files, as ComfyUI lists them in the prompt tuple.
    let output_ids: Vec<String> = sorted_node_ids(&pending.prompt)
        .into_iter()
        .filter(|id| {
            pending.prompt[id.as_str()]["class_type"]
                .as_str()
                .is_some_and(|class| OUTPUT_CLASSES.contains(&class))
        })
        .collect();
    let meta: serde_json::Map<String, Value> = outputs
        .keys()
        .map(|id| {
            let entry = json!({"node_id": id, "display_node": id, "parent_node": null, "real_node_id": id});
            (id.clone(), entry)
        })
        .collect();
    let item = json!({
        "prompt": [
            pending.number, pending.prompt_id, pending.prompt,
            {"client_id": pending.client_id, "create_time": pending.created_ms}, output_ids,
        ],
        "outputs": outputs,
        "status": {"status_str": status, "completed": status == "success"},
        "meta": meta,
    });
    let mut item = item;
    item["status"]["messages"] = Value::Array(messages);
    lock(&instance.history).insert(pending.prompt_id.clone(), item);
}

/// Classes whose nodes write output files ([`node_outputs`]).
const OUTPUT_CLASSES: [&str; 5] = [
    "SaveImage",
    "PreviewImage",
    "SaveAnimatedWEBP",
    "VHS_VideoCombine",
    "SaveAudio",
];

/// The UI output and files of an output node, by class.
/// Files an output node writes.
type NodeFiles = Vec<(FileKey, Vec<u8>)>;

fn node_outputs(shared: &Shared, class: &str, node: &Value) -> Option<(Value, NodeFiles)> {
    let prefix = node["inputs"]["filename_prefix"]
        .as_str()
        .unwrap_or("ComfyUI")
        .to_owned();
    let n = shared.file_counter.fetch_add(1, Ordering::SeqCst) + 1;
    let (key, kind, ext, extra) = match class {
        "SaveImage" => ("images", "output", "png", None),
        "PreviewImage" => ("images", "temp", "png", None),
        "SaveAnimatedWEBP" => ("images", "output", "webp", Some(("animated", json!([true])))),
        "VHS_VideoCombine" => ("gifs", "output", "mp4", None),
        "SaveAudio" => ("audio", "output", "flac", None),
        _ => return None,
    };
    let prefix = if kind == "temp" {
        format!("ComfyUI_temp_{n:05}")
    } else {
        prefix
    };
    let (subfolder, base) = match prefix.rsplit_once('/') {
        Some((dir, base)) => (dir.to_owned(), base.to_owned()),
        None => (String::new(), prefix),
    };
    let filename = format!("{base}_{n:05}_.{ext}");
    let bytes = fake_file(ext, &filename, node);
    let mut entry = json!({"filename": filename, "subfolder": subfolder, "type": kind});
    if key == "gifs" {
        entry["format"] = json!("video/h264-mp4");
        entry["frame_rate"] = node["inputs"]["frame_rate"].clone();
    }
    let mut ui = json!({ key: [entry] });
    if let Some((extra_key, extra_value)) = extra {
        ui[extra_key] = extra_value;
    }
    Some((ui, vec![((kind.to_owned(), subfolder, filename), bytes)]))
}

/// A txt2img workflow (API format) whose outputs cover every kind the stand-in writes: an image
/// (`SaveImage`), an animated WEBP, a video (`gifs`) and audio; with image and audio uploads and a
/// parameter of every type (INT, FLOAT, STRING, BOOLEAN, COMBO).
pub fn every_output_workflow() -> Value {
    json!({
        "3": {"class_type": "KSampler", "_meta": {"title": "KSampler"}, "inputs": {
            "seed": 42, "steps": 20, "cfg": 7.5, "sampler_name": "euler", "scheduler": "normal", "denoise": 1.0,
            "model": ["4", 0], "positive": ["6", 0], "negative": ["7", 0], "latent_image": ["5", 0]}},
        "4": {"class_type": "CheckpointLoaderSimple", "_meta": {"title": "Load Checkpoint"}, "inputs": {"ckpt_name": "sd15.safetensors"}},
        "5": {"class_type": "EmptyLatentImage", "_meta": {"title": "Latent"}, "inputs": {"width": 512, "height": 512, "batch_size": 1}},
        "6": {"class_type": "CLIPTextEncode", "_meta": {"title": "Positive"}, "inputs": {"text": "a cat", "clip": ["4", 1]}},
        "7": {"class_type": "CLIPTextEncode", "_meta": {"title": "Negative"}, "inputs": {"text": "blurry", "clip": ["4", 1]}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
        "9": {"class_type": "SaveImage", "_meta": {"title": "Save"}, "inputs": {"images": ["8", 0], "filename_prefix": "ComfyUI"}},
        "10": {"class_type": "VHS_VideoCombine", "_meta": {"title": "Video"}, "inputs": {"images": ["8", 0], "frame_rate": 8,
            "loop_count": 0, "filename_prefix": "clip", "format": "video/h264-mp4", "pingpong": false, "save_output": true}},
        "11": {"class_type": "SaveAudio", "_meta": {"title": "Audio"}, "inputs": {"audio": ["12", 0], "filename_prefix": "audio/ComfyUI"}},
        "12": {"class_type": "LoadAudio", "_meta": {"title": "Voice"}, "inputs": {"audio": "example.flac"}},
        "13": {"class_type": "LoadImage", "_meta": {"title": "Init"}, "inputs": {"image": "example.png"}},
        "14": {"class_type": "SaveAnimatedWEBP", "_meta": {"title": "Anim"}, "inputs": {"images": ["13", 0], "filename_prefix": "anim",
            "fps": 6.0, "lossless": true, "quality": 80, "method": "default"}},
    })
}

/// Small files with the right magic bytes and the node inputs embedded (so tests can tell jobs apart).
/// PNGs are real images (browsers show them); the other kinds only start like their format.
fn fake_file(ext: &str, name: &str, node: &Value) -> Vec<u8> {
    let text = format!("{name}\n{}", node["inputs"]);
    if ext == "png" {
        return png_image(&text);
    }
    let magic: &[u8] = match ext {
        "webp" => b"RIFF\0\0\0\0WEBP",
        "mp4" => b"\0\0\0\x18ftypmp42",
        "flac" => b"fLaC",
        _ => b"",
    };
    let mut bytes = magic.to_vec();
    bytes.extend_from_slice(text.as_bytes());
    bytes
}

/// Pads `bytes` to `size` with bytes that vary along the file and with its first bytes (which
/// name the file), so two padded outputs never share their tail.
fn pad(bytes: &mut Vec<u8>, size: usize) {
    let mut state = bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)
    });
    while bytes.len() < size {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        bytes.extend_from_slice(&state.to_le_bytes()[..8.min(size - bytes.len())]);
    }
}

/// A 64×64 RGB PNG whose colours follow `text` (so two jobs' images differ), with `text` in a
/// `tEXt` chunk. Uncompressed (stored deflate blocks): no compression library needed.
pub fn png_image(text: &str) -> Vec<u8> {
    const SIDE: u32 = 64;
    let seed = text.bytes().fold(0x811c_9dc5_u32, |hash, byte| {
        (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193)
    });
    let [red, green, blue, _] = seed.to_le_bytes();
    let mut raw = Vec::new();
    for y in 0..SIDE {
        raw.push(0); // filter: none
        for x in 0..SIDE {
            raw.extend([
                red ^ (x * 4).to_le_bytes()[0],
                green ^ (y * 4).to_le_bytes()[0],
                blue,
            ]);
        }
    }
    let mut zlib = vec![0x78, 0x01];
    let blocks: Vec<&[u8]> = raw.chunks(65_535).collect();
    for (index, block) in blocks.iter().enumerate() {
        let len = u16::try_from(block.len()).expect("blocks are at most 65535 bytes");
        zlib.push(u8::from(index + 1 == blocks.len()));
        zlib.extend(len.to_le_bytes());
        zlib.extend((!len).to_le_bytes());
        zlib.extend_from_slice(block);
    }
    let (mut a, mut b) = (1_u32, 0_u32);
    for byte in &raw {
        a = (a + u32::from(*byte)) % 65_521;
        b = (b + a) % 65_521;
    }
    zlib.extend(((b << 16) | a).to_be_bytes());

    let mut header = Vec::new();
    header.extend(SIDE.to_be_bytes());
    header.extend(SIDE.to_be_bytes());
    header.extend([8, 2, 0, 0, 0]); // 8-bit RGB, deflate, no filter method, no interlace
    let mut comment = b"Comment\0".to_vec();
    comment.extend_from_slice(text.as_bytes());
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    for (kind, data) in [
        (b"IHDR", header),
        (b"tEXt", comment),
        (b"IDAT", zlib),
        (b"IEND", Vec::new()),
    ] {
        png.extend(u32::try_from(data.len()).expect("small chunks").to_be_bytes());
        let mut crc_input = kind.to_vec();
        crc_input.extend_from_slice(&data);
        png.extend_from_slice(kind);
        png.extend_from_slice(&data);
        png.extend(crc32(&crc_input).to_be_bytes());
    }
    png
}

/// CRC-32 (IEEE), as PNG chunks carry it.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0_u32;
    for byte in bytes {
        crc ^= u32::from(*byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

async fn history_all(State(instance): StandIn) -> Response {
    let history: serde_json::Map<String, Value> = lock(&instance.history)
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    json_response(StatusCode::OK, &Value::Object(history))
}

async fn history_one(State(instance): StandIn, Path(id): Path<String>) -> Response {
    let item = lock(&instance.history).get(&id).cloned();
    json_response(
        StatusCode::OK,
        &item.map_or_else(|| json!({}), |item| json!({ id: item })),
    )
}

async fn view(State(instance): StandIn, Query(query): Query<HashMap<String, String>>) -> Response {
    let filename = query.get("filename").cloned().unwrap_or_default();
    let kind = query.get("type").cloned().unwrap_or_else(|| "output".to_owned());
    let subfolder = query.get("subfolder").cloned().unwrap_or_default();
    if filename.is_empty() || filename.contains("..") || filename.starts_with('/') {
        return StatusCode::BAD_REQUEST.into_response();
    }
    if subfolder.contains("..") {
        return StatusCode::FORBIDDEN.into_response();
    }
    let Some(bytes) = lock(&instance.shared.files)
        .get(&(kind, subfolder, filename.clone()))
        .cloned()
    else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let disposition = format!("filename=\"{filename}\"");
    (
        StatusCode::OK,
        [(header::CONTENT_DISPOSITION, disposition)],
        bytes,
    )
        .into_response()
}

async fn upload_image(State(instance): StandIn, mut multipart: Multipart) -> Response {
    let mut file: Option<(String, Vec<u8>)> = None;
    let mut kind = "input".to_owned();
    let mut subfolder = String::new();
    let mut overwrite = false;
    while let Ok(Some(field)) = multipart.next_field().await {
        let name = field.name().unwrap_or("").to_owned();
        let filename = field.file_name().map(str::to_owned);
        let Ok(bytes) = field.bytes().await else {
            return StatusCode::BAD_REQUEST.into_response();
        };
        match name.as_str() {
            "image" => {
                file = Some((
                    filename.unwrap_or_else(|| "upload.png".to_owned()),
                    bytes.to_vec(),
                ));
            }
            "type" => kind = String::from_utf8_lossy(&bytes).into_owned(),
            "subfolder" => subfolder = String::from_utf8_lossy(&bytes).into_owned(),
            "overwrite" => overwrite = matches!(&bytes[..], b"true" | b"1"),
            _ => {}
        }
    }
    let Some((mut name, bytes)) = file else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let mut files = lock(&instance.shared.files);
    if !overwrite {
        let (stem, ext) = name
            .rsplit_once('.')
            .map_or((name.clone(), String::new()), |(s, e)| {
                (s.to_owned(), format!(".{e}"))
            });
        let mut i = 1;
        while let Some(existing) = files.get(&(kind.clone(), subfolder.clone(), name.clone())) {
            if *existing == bytes {
                break;
            }
            name = format!("{stem} ({i}){ext}");
            i += 1;
        }
    }
    files.insert((kind.clone(), subfolder.clone(), name.clone()), bytes);
    json_response(
        StatusCode::OK,
        &json!({"name": name, "subfolder": subfolder, "type": kind}),
    )
}

async fn interrupt(State(instance): StandIn, body: String) -> Response {
    let prompt_id = serde_json::from_str::<Value>(&body)
        .ok()
        .and_then(|v| v.get("prompt_id").and_then(Value::as_str).map(str::to_owned));
    // Like ComfyUI: a targeted interrupt sets the global flag only while that very prompt runs
    // (otherwise it is ignored); without a prompt id, whatever runs is interrupted.
    let running = lock(&instance.running).clone();
    if prompt_id.is_none() || prompt_id == running {
        instance.interrupt.store(true, Ordering::SeqCst);
    }
    StatusCode::OK.into_response()
}

async fn queue(State(instance): StandIn) -> Response {
    let pending: Vec<Value> = lock(&instance.queue)
        .iter()
        .map(|p| json!([p.number, p.prompt_id, p.prompt, {"client_id": p.client_id}, []]))
        .collect();
    let running: Vec<Value> = lock(&instance.running)
        .iter()
        .map(|id| json!([0, id, {}, {}, []]))
        .collect();
    json_response(
        StatusCode::OK,
        &json!({"queue_running": running, "queue_pending": pending}),
    )
}

/// `POST /queue`: `{"delete": [prompt ids]}` removes pending prompts (running ones stay),
/// `{"clear": true}` every pending prompt.
async fn edit_queue(State(instance): StandIn, body: String) -> Response {
    let body: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    {
        let mut queue = lock(&instance.queue);
        if body["clear"] == json!(true) {
            queue.clear();
        }
        if let Some(ids) = body["delete"].as_array() {
            queue.retain(|pending| !ids.iter().any(|id| id.as_str() == Some(&pending.prompt_id)));
        }
    }
    broadcast_status(&instance);
    StatusCode::OK.into_response()
}

async fn object_info_all(State(instance): StandIn) -> Response {
    json_response(StatusCode::OK, &instance.shared.object_info)
}

async fn object_info_one(State(instance): StandIn, Path(class): Path<String>) -> Response {
    let body = instance
        .shared
        .object_info
        .get(&class)
        .map_or_else(|| json!({}), |def| json!({ class: def }));
    json_response(StatusCode::OK, &body)
}

async fn system_stats() -> Response {
    json_response(
        StatusCode::OK,
        &json!({
            "system": {"os": "posix", "ram_total": 34_359_738_368_u64, "ram_free": 17_179_869_184_u64,
                       "comfyui_version": "0.3.41", "python_version": "3.11.9", "pytorch_version": "2.7.1+cpu",
                       "embedded_python": false, "argv": ["main.py"]},
            "devices": [{"name": "cpu", "type": "cpu", "index": null, "vram_total": 0, "vram_free": 0,
                         "torch_vram_total": 0, "torch_vram_free": 0}]
        }),
    )
}

async fn websocket(
    State(instance): StandIn,
    Query(query): Query<HashMap<String, String>>,
    upgrade: WebSocketUpgrade,
) -> Response {
    let sid = query
        .get("clientId")
        .cloned()
        .unwrap_or_else(|| format!("{:032x}", rand_u128()));
    upgrade.on_upgrade(move |socket| serve_socket(instance, sid, socket))
}

/// Unregisters a socket's client id when the socket ends, whichever socket holds it now
/// (ComfyUI's `finally: self.sockets.pop(sid, None)`).
struct Registration {
    instance: Arc<Instance>,
    sid: String,
}

impl Drop for Registration {
    fn drop(&mut self) {
        lock(&self.instance.sockets).remove(&self.sid);
    }
}

async fn serve_socket(instance: Arc<Instance>, sid: String, mut socket: WebSocket) {
    let number = instance.connections.fetch_add(1, Ordering::SeqCst);
    lock(&instance.sockets).insert(sid.clone(), number);
    let _registration = Registration {
        instance: Arc::clone(&instance),
        sid: sid.clone(),
    };
    let registered = || lock(&instance.sockets).get(&sid) == Some(&number);
    let mut events = instance.events.subscribe();
    let mut hangup = instance.hangup.subscribe();
    let remaining = lock(&instance.queue).len() + usize::from(lock(&instance.running).is_some());
    let hello = json!({"type": "status", "data": {"status": {"exec_info": {"queue_remaining": remaining}}, "sid": sid}});
    if socket
        .send(Message::Text(hello.to_string().into()))
        .await
        .is_err()
    {
        return;
    }
    loop {
        tokio::select! {
            event = events.recv() => match event {
                Ok((target, text)) => {
                    if target.as_deref().is_none_or(|t| t == sid)
                        && registered()
                        && socket.send(Message::Text(text.into())).await.is_err()
                    {
                        return;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return,
            },
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Close(_)) | Err(_)) | None => return,
                Some(Ok(_)) => {}
            },
            _ = hangup.changed() => return,
        }
    }
}

/// The stand-in's `/object_info`: real shapes of a few core nodes (both COMBO encodings, every
/// widget type, upload combos) plus one custom video node.
pub fn object_info() -> Value {
    fn node(
        display: &str,
        category: &str,
        required: &Value,
        output: &Value,
        output_node: bool,
        module: &str,
    ) -> Value {
        let order: Vec<String> = required
            .as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default();
        let names = output;
        json!({
            "input": {"required": required.clone()},
            "input_order": {"required": order},
            "output": names,
            "output_is_list": names.as_array().map(|a| vec![false; a.len()]).unwrap_or_default(),
            "output_name": names,
            "name": display,
            "display_name": display,
            "description": "",
            "python_module": module,
            "category": category,
            "output_node": output_node,
        })
    }
    let mut info = json!({
        "CheckpointLoaderSimple": node(
            "Load Checkpoint", "loaders", &json!({
            "ckpt_name": [["sd15.safetensors", "sdxl_base.safetensors"], {"tooltip": "The name of the checkpoint (model) to load."}],
        }), &json!(["MODEL", "CLIP", "VAE"]), false, "nodes"),
        "CLIPTextEncode": node(
            "CLIP Text Encode (Prompt)", "conditioning", &json!({
            "text": ["STRING", {"multiline": true, "dynamicPrompts": true, "tooltip": "The text to be encoded."}],
            "clip": ["CLIP", {"tooltip": "The CLIP model used for encoding the text."}],
        }), &json!(["CONDITIONING"]), false, "nodes"),
        "EmptyLatentImage": node(
            "Empty Latent Image", "latent", &json!({
            "width": ["INT", {"default": 512, "min": 16, "max": 16384, "step": 8}],
            "height": ["INT", {"default": 512, "min": 16, "max": 16384, "step": 8}],
            "batch_size": ["INT", {"default": 1, "min": 1, "max": 4096}],
        }), &json!(["LATENT"]), false, "nodes"),
        "KSampler": node(
            "KSampler", "sampling", &json!({
            "model": ["MODEL"],
            "seed": ["INT", {"default": 0, "min": 0, "max": 18_446_744_073_709_551_615_u64, "control_after_generate": true}],
            "steps": ["INT", {"default": 20, "min": 1, "max": 10000}],
            "cfg": ["FLOAT", {"default": 8.0, "min": 0.0, "max": 100.0, "step": 0.1, "round": 0.01}],
            "sampler_name": [["euler", "euler_ancestral", "dpmpp_2m", "dpmpp_sde"], {}],
            "scheduler": [["normal", "karras", "exponential", "simple"], {}],
            "positive": ["CONDITIONING"],
            "negative": ["CONDITIONING"],
            "latent_image": ["LATENT"],
            "denoise": ["FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0, "step": 0.01}],
        }), &json!(["LATENT"]), false, "nodes"),
        "VAEDecode": node(
            "VAE Decode", "latent", &json!({"samples": ["LATENT"], "vae": ["VAE"]}), &json!(["IMAGE"]), false, "nodes"),
        "LoadImage": node(
            "Load Image", "image", &json!({
            "image": [["example.png"], {"image_upload": true}],
        }), &json!(["IMAGE", "MASK"]), false, "nodes"),
        "EmptyImage": node(
            "EmptyImage", "image", &json!({
            "width": ["INT", {"default": 512, "min": 1, "max": 16384, "step": 1}],
            "height": ["INT", {"default": 512, "min": 1, "max": 16384, "step": 1}],
            "batch_size": ["INT", {"default": 1, "min": 1, "max": 4096}],
            "color": ["INT", {"default": 0, "min": 0, "max": 0x00FF_FFFF, "step": 1, "display": "color"}],
        }), &json!(["IMAGE"]), false, "nodes"),
        "ImageInvert": node(
            "Invert Image", "image", &json!({"image": ["IMAGE"]}), &json!(["IMAGE"]), false, "nodes"),
        "SaveImage": node(
            "Save Image", "image", &json!({
            "images": ["IMAGE", {"tooltip": "The images to save."}],
            "filename_prefix": ["STRING", {"default": "ComfyUI"}],
        }), &json!([]), true, "nodes"),
        "PreviewImage": node(
            "Preview Image", "image", &json!({"images": ["IMAGE"]}), &json!([]), true, "nodes"),
        "SaveAnimatedWEBP": node(
            "SaveAnimatedWEBP", "image/animation", &json!({
            "images": ["IMAGE"],
            "filename_prefix": ["STRING", {"default": "ComfyUI"}],
            "fps": ["FLOAT", {"default": 6.0, "min": 0.01, "max": 1000.0, "step": 0.01}],
            "lossless": ["BOOLEAN", {"default": true}],
            "quality": ["INT", {"default": 80, "min": 0, "max": 100}],
            "method": [["default", "fastest", "slowest"], {}],
        }), &json!([]), true, "comfy_extras.nodes_images"),
        "LoadAudio": node(
            "Load Audio", "audio", &json!({
            "audio": ["COMBO", {"options": ["example.flac"], "audio_upload": true}],
        }), &json!(["AUDIO"]), false, "comfy_extras.nodes_audio"),
        "SaveAudio": node(
            "Save Audio (FLAC)", "audio", &json!({
            "audio": ["AUDIO"],
            "filename_prefix": ["STRING", {"default": "audio/ComfyUI"}],
        }), &json!([]), true, "comfy_extras.nodes_audio"),
        "VHS_VideoCombine": node(
            "Video Combine 🎥🅥🅗🅢", "Video Helper Suite 🎥🅥🅗🅢", &json!({
            "images": ["IMAGE"],
            "frame_rate": ["FLOAT", {"default": 8, "min": 1, "step": 1}],
            "loop_count": ["INT", {"default": 0, "min": 0, "max": 100, "step": 1}],
            "filename_prefix": ["STRING", {"default": "AnimateDiff"}],
            "format": ["COMBO", {"options": ["image/gif", "image/webp", "video/h264-mp4"]}],
            "pingpong": ["BOOLEAN", {"default": false}],
            "save_output": ["BOOLEAN", {"default": true}],
        }), &json!([]), true, "custom_nodes.ComfyUI-VideoHelperSuite"),
    });
    info["SaveImage"]["input"]["hidden"] = json!({"prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO"});
    info
}

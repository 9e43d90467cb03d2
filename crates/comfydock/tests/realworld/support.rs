//! The tier's sandbox (a workspace wired to real ComfyUI, PyPI and the real torch index), a running
//! ComfyUI, a running `serve`, and the workflow fixtures.

use std::cell::Cell;
use std::collections::BTreeSet;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use comfydock_test::context::TestContext;
use comfydock_test::real_torch_index::RealTorchIndex;
use comfydock_test::realworld;
use serde_json::{Value, json};

/// ComfyUI must answer within this long after `run --background` returns (the bound).
const READY_WITHIN: Duration = Duration::from_mins(3);

/// A workspace whose ComfyUI is the real release bundle, whose packages come from PyPI through a
/// uv cache kept between runs, and whose torch index is the local real-wheel index.
pub struct Tier {
    pub ctx: TestContext,
    label: String,
}

impl Tier {
    pub fn new(torch: &RealTorchIndex, label: &str) -> Self {
        let mut ctx = TestContext::new(env!("CARGO_BIN_EXE_comfydock"));
        let repo = realworld::bare_repo_from_bundle("comfyui.bundle", &ctx.path().join("comfyui.git"));
        ctx.env("COMFYDOCK_COMFYUI_REPO", format!("file://{}", repo.display()))
            .env("COMFYDOCK_TORCH_INDEX_URL", torch.url())
            .env("UV_CACHE_DIR", realworld::uv_cache_dir())
            .env("UV_PYTHON_PREFERENCE", "only-system")
            .env("UV_HTTP_TIMEOUT", "120")
            // uv's default index: the real one.
            .env_remove("UV_INDEX_URL");
        let tier = Self {
            ctx,
            label: label.to_owned(),
        };
        tier.ok(&["init"]);
        tier
    }

    /// Runs `comfydock ARGS` and returns its output, logging the time it took.
    pub fn run(&self, args: &[&str]) -> Output {
        let started = Instant::now();
        let out = self.ctx.command().args(args).output().expect("run comfydock");
        eprintln!(
            "[{}] comfydock {} -> {} in {:.1}s",
            self.label,
            args.join(" "),
            out.status,
            started.elapsed().as_secs_f64()
        );
        out
    }

    /// Runs `comfydock ARGS`, asserting success.
    pub fn ok(&self, args: &[&str]) -> Output {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "[{}] comfydock {} failed\nstdout:\n{}\nstderr:\n{}",
            self.label,
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    pub fn env_dir(&self, name: &str) -> PathBuf {
        self.ctx.workspace.join("environments").join(name)
    }

    /// Runs Python code in an environment's venv; returns trimmed stdout, panicking on failure.
    pub fn python(&self, env: &str, code: &str) -> String {
        let out = self
            .ctx
            .std_command(self.env_dir(env).join(".venv/bin/python"))
            .args(["-c", code])
            .output()
            .expect("run the venv's python");
        assert!(
            out.status.success(),
            "python -c {code:?} in `{env}` failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// A real node pack as a git URL: the bundle cloned to a bare repository named like upstream.
    pub fn node_repo(&self, name: &str) -> String {
        let dest = self.ctx.path().join("node-repos").join(format!("{name}.git"));
        if !dest.exists() {
            realworld::bare_repo_from_bundle(&format!("{name}.bundle"), &dest);
        }
        format!("file://{}", dest.display())
    }
}

/// A loopback port nothing listens on.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind 127.0.0.1:0")
        .local_addr()
        .expect("local address")
        .port()
}

/// Whether the port can be bound again (nothing listens on it).
pub fn port_is_free(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_ok()
}

fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_mins(2))
        .build()
        .expect("HTTP client")
}

/// ComfyUI started with `comfydock run --background ... -- --cpu`; stopped when dropped.
pub struct ComfyUi<'a> {
    tier: &'a Tier,
    env: String,
    pub port: u16,
    stopped: Cell<bool>,
}

impl<'a> ComfyUi<'a> {
    pub fn start(tier: &'a Tier, env: &str) -> Self {
        Self::start_on(tier, env, free_port())
    }

    pub fn start_on(tier: &'a Tier, env: &str, port: u16) -> Self {
        let port_arg = port.to_string();
        tier.ok(&[
            "-e",
            env,
            "run",
            "--background",
            "--port",
            &port_arg,
            "--",
            "--cpu",
        ]);
        let comfyui = Self {
            tier,
            env: env.to_owned(),
            port,
            stopped: Cell::new(false),
        };
        let deadline = Instant::now() + READY_WITHIN;
        let client = http();
        loop {
            let ready = client
                .get(format!("{}/system_stats", comfyui.base_url()))
                .send()
                .is_ok_and(|r| r.status().is_success());
            if ready {
                return comfyui;
            }
            if Instant::now() > deadline {
                let logs = tier.run(&["-e", env, "logs"]);
                panic!(
                    "ComfyUI of `{env}` did not answer /system_stats within {READY_WITHIN:?}; log:\n{}",
                    String::from_utf8_lossy(&logs.stdout)
                );
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn get_json(&self, path: &str) -> Value {
        let response = http()
            .get(format!("{}{path}", self.base_url()))
            .send()
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        assert!(
            response.status().is_success(),
            "GET {path}: {}",
            response.status()
        );
        response
            .json()
            .unwrap_or_else(|e| panic!("GET {path} is JSON: {e}"))
    }

    /// `POST /prompt`; returns the status and the body.
    pub fn post_prompt(&self, prompt: &Value) -> (u16, Value) {
        let response = http()
            .post(format!("{}/prompt", self.base_url()))
            .json(&json!({"prompt": prompt, "client_id": "comfydock-tier"}))
            .send()
            .expect("POST /prompt");
        let status = response.status().as_u16();
        (status, response.json().expect("a JSON /prompt answer"))
    }

    /// `comfydock stop`: returns once the process is gone and the port is free.
    pub fn stop(self) {
        self.stopped.set(true);
        self.tier.ok(&["-e", &self.env, "stop"]);
    }
}

impl Drop for ComfyUi<'_> {
    fn drop(&mut self) {
        if !self.stopped.get() {
            let _ = self.tier.run(&["-e", &self.env, "stop"]);
        }
    }
}

/// `comfydock serve` for one workflow against one ComfyUI; killed when dropped.
pub struct Serve {
    child: Child,
    base: String,
    workflow: String,
}

impl Serve {
    pub fn start(tier: &Tier, workflow: &str, comfyui: &str) -> Self {
        let port = free_port();
        let mut child = tier
            .ctx
            .std_command(env!("CARGO_BIN_EXE_comfydock"))
            .args(["serve", "--workflow", workflow, "--comfyui", comfyui])
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .arg("--db")
            .arg(format!("sqlite:{}", tier.ctx.path().join("queue.db").display()))
            .arg("--outputs")
            .arg(tier.ctx.path().join("serve-outputs"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start comfydock serve");
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_mins(1);
        let client = http();
        while client.get(format!("{base}/healthz")).send().is_err() {
            if let Some(status) = child.try_wait().expect("poll serve") {
                let mut stderr = String::new();
                std::io::Read::read_to_string(child.stderr.as_mut().expect("piped"), &mut stderr).ok();
                panic!("serve exited with {status}:\n{stderr}");
            }
            assert!(Instant::now() < deadline, "serve did not come up on port {port}");
            std::thread::sleep(Duration::from_millis(100));
        }
        Self {
            child,
            base,
            workflow: workflow.to_owned(),
        }
    }

    /// Submits a job, follows its WebSocket event stream to the end, and returns the finished job
    /// with the events in the order they arrived.
    pub fn run_job(&self, params: &Value) -> (Value, Vec<Value>) {
        let client = http();
        let openapi: Value = client
            .get(format!("{}/openapi.json", self.base))
            .send()
            .and_then(reqwest::blocking::Response::json)
            .expect("GET /openapi.json");
        let schema_text = openapi.to_string();
        for name in params.as_object().expect("params object").keys() {
            assert!(
                schema_text.contains(&format!("\"{name}\"")),
                "serve exposes the parameter `{name}`; its API is:\n{openapi:#}"
            );
        }
        let response = client
            .post(format!("{}/v1/workflows/{}/jobs", self.base, self.workflow))
            .json(&json!({"params": params}))
            .send()
            .expect("submit a job");
        let status = response.status();
        let body: Value = response.json().expect("JSON submit answer");
        assert_eq!(status, 201, "submit: {body}");
        let id = body["id"].as_str().expect("job id").to_owned();

        let ws_url = format!("{}/v1/jobs/{id}/events", self.base.replacen("http", "ws", 1));
        let (mut socket, _) = tungstenite::connect(&ws_url).expect("open the job's event stream");
        let mut events = Vec::new();
        let deadline = Instant::now() + Duration::from_mins(5);
        while Instant::now() < deadline {
            match socket.read() {
                Ok(tungstenite::Message::Text(text)) => {
                    let event: Value = serde_json::from_str(&text).expect("JSON event");
                    let terminal = matches!(
                        event["kind"].as_str(),
                        Some("succeeded" | "failed" | "dead" | "cancelled")
                    );
                    events.push(event);
                    if terminal {
                        break;
                    }
                }
                Ok(tungstenite::Message::Close(_)) | Err(_) => break,
                Ok(_) => {}
            }
        }
        let job: Value = client
            .get(format!("{}/v1/jobs/{id}", self.base))
            .send()
            .and_then(reqwest::blocking::Response::json)
            .expect("GET the job");
        (job, events)
    }

    /// The bytes of a finished job's first output.
    pub fn output(&self, job: &Value) -> Vec<u8> {
        let url = job["outputs"][0]["url"]
            .as_str()
            .unwrap_or_else(|| panic!("the job has an output: {job}"));
        let response = http()
            .get(format!("{}{url}", self.base))
            .send()
            .expect("GET the output");
        assert!(response.status().is_success(), "GET {url}: {}", response.status());
        response.bytes().expect("output bytes").to_vec()
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Event kinds arrive in lifecycle order: queued, started, submitted, then progress, node and
/// output events, and `succeeded` last; sequence numbers only grow.
pub fn assert_event_order(events: &[Value]) {
    let kinds: Vec<&str> = events.iter().filter_map(|e| e["kind"].as_str()).collect();
    let position = |kind: &str| {
        kinds
            .iter()
            .position(|k| *k == kind)
            .unwrap_or_else(|| panic!("no `{kind}` event in {kinds:?}"))
    };
    assert_eq!(kinds.first(), Some(&"queued"), "{kinds:?}");
    assert_eq!(kinds.last(), Some(&"succeeded"), "{kinds:?}");
    assert!(position("started") < position("submitted"), "{kinds:?}");
    assert!(position("submitted") < position("output"), "{kinds:?}");
    assert!(position("output") < position("succeeded"), "{kinds:?}");
    let seqs: Vec<i64> = events.iter().filter_map(|e| e["seq"].as_i64()).collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "event numbers grow: {seqs:?}"
    );
}

/// Width, height and the first pixel's RGB of a PNG.
pub fn png_size_and_first_pixel(bytes: &[u8]) -> (u32, u32, [u8; 3]) {
    let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    let mut reader = decoder.read_info().expect("a PNG");
    let mut buf = vec![0; reader.output_buffer_size().expect("PNG buffer size")];
    let info = reader.next_frame(&mut buf).expect("a PNG frame");
    assert_eq!(info.bit_depth, png::BitDepth::Eight, "8-bit PNG");
    let pixel = match info.color_type {
        png::ColorType::Rgb | png::ColorType::Rgba => [buf[0], buf[1], buf[2]],
        other => panic!("unexpected PNG colour type {other:?}"),
    };
    (info.width, info.height, pixel)
}

/// `[project].dependencies` of a manifest.
pub fn user_dependencies(manifest: &str) -> Vec<String> {
    let doc: toml_edit::DocumentMut = manifest.parse().expect("pyproject.toml parses");
    doc["project"]["dependencies"]
        .as_array()
        .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

/// `[dependency-groups]` of a manifest: group name → its requirement strings.
pub fn dependency_groups(manifest: &str) -> Vec<(String, Vec<String>)> {
    let doc: toml_edit::DocumentMut = manifest.parse().expect("pyproject.toml parses");
    doc.get("dependency-groups")
        .and_then(toml_edit::Item::as_table)
        .map(|groups| {
            groups
                .iter()
                .map(|(name, item)| {
                    let requirements = item
                        .as_array()
                        .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
                        .unwrap_or_default();
                    (name.to_owned(), requirements)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// `name version source` of every `uv.lock` package with one of these names, one per line, sorted.
pub fn locked_packages(env_dir: &Path, names: &[&str]) -> String {
    let lock = fs_err::read_to_string(env_dir.join(".cec/uv.lock")).expect("read uv.lock");
    let doc: toml_edit::DocumentMut = lock.parse().expect("uv.lock parses");
    let mut lines = BTreeSet::new();
    for package in doc["package"].as_array_of_tables().expect("[[package]]") {
        let name = package["name"].as_str().unwrap_or_default();
        if names.contains(&name) {
            lines.insert(format!(
                "{name} {} {}",
                package["version"].as_str().unwrap_or_default(),
                package
                    .get("source")
                    .map(ToString::to_string)
                    .unwrap_or_default()
                    .trim()
            ));
        }
    }
    lines.into_iter().collect::<Vec<_>>().join("\n")
}

/// The node class names of an `/object_info` document.
pub fn class_names(object_info: &Value) -> BTreeSet<String> {
    object_info
        .as_object()
        .expect("object_info is an object")
        .keys()
        .cloned()
        .collect()
}

/// EmptyImage ("Canvas") → ImageInvert → SaveImage in the UI format ComfyUI saves, with
/// SaveImage's `images` input connected or left unconnected.
pub fn invert_workflow(connected: bool) -> Value {
    let mut links = vec![json!([1, 1, 0, 2, 0, "IMAGE"])];
    if connected {
        links.push(json!([2, 2, 0, 3, 0, "IMAGE"]));
    }
    json!({
        "id": "5c1f3b7e-1d2a-4b8e-9c3d-0a1b2c3d4e5f",
        "revision": 0,
        "last_node_id": 3,
        "last_link_id": 2,
        "nodes": [
            {
                "id": 1, "type": "EmptyImage", "title": "Canvas",
                "pos": [0, 0], "size": [315, 130], "flags": {}, "order": 0, "mode": 0,
                "inputs": [],
                "outputs": [{"name": "IMAGE", "type": "IMAGE", "slot_index": 0, "links": [1]}],
                "properties": {"Node name for S&R": "EmptyImage", "cnr_id": "comfy-core", "ver": "0.3.77"},
                "widgets_values": [512, 512, 1, 0]
            },
            {
                "id": 2, "type": "ImageInvert",
                "pos": [350, 0], "size": [210, 26], "flags": {}, "order": 1, "mode": 0,
                "inputs": [{"name": "image", "type": "IMAGE", "link": 1}],
                "outputs": [{"name": "IMAGE", "type": "IMAGE", "slot_index": 0, "links": if connected { json!([2]) } else { json!([]) }}],
                "properties": {"Node name for S&R": "ImageInvert", "cnr_id": "comfy-core", "ver": "0.3.77"},
                "widgets_values": []
            },
            {
                "id": 3, "type": "SaveImage",
                "pos": [600, 0], "size": [315, 270], "flags": {}, "order": 2, "mode": 0,
                "inputs": [{"name": "images", "type": "IMAGE", "link": if connected { json!(2) } else { Value::Null }}],
                "outputs": [],
                "properties": {"Node name for S&R": "SaveImage", "cnr_id": "comfy-core", "ver": "0.3.77"},
                "widgets_values": ["invert"]
            }
        ],
        "links": links,
        "groups": [],
        "config": {},
        "extra": {"ds": {"scale": 1, "offset": [0, 0]}},
        "version": 0.4
    })
}

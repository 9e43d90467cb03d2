//! The HTTP API end to end against the ComfyUI protocol stand-in; [`console`]: the web console in a
//! real browser.

#[path = "api/console.rs"]
mod console;

use std::sync::Arc;
use std::time::{Duration, Instant};

use comfydock_serve::job::RetryPolicy;
use comfydock_serve::output_store::{OutputStore, OutputStoreError, S3Outputs};
use comfydock_serve::store::JobStore;
use comfydock_serve::store::sqlite::SqliteStore;
use comfydock_serve::{RunningServer, ServeError, ServeOptions, WorkflowSource};
use comfydock_test::comfyui_server::{ComfyUiServer, Script, ScriptError};
use comfydock_test::json_request::json_answer;
use comfydock_test::s3_server::S3Server;
use futures::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

/// A txt2img graph whose outputs cover every kind: image, animated WEBP, video (`gifs`), audio.
fn workflow() -> Value {
    comfydock_test::comfyui_server::every_output_workflow()
}

/// A ComfyUI stand-in where prompts whose positive text is `text` run `steps` steps of
/// `step_delay` each; every other prompt finishes at once.
fn slow_for(text: &'static str, steps: u32, step_delay: Duration) -> ComfyUiServer {
    ComfyUiServer::start_with(Arc::new(move |prompt: &Value| {
        if prompt["6"]["inputs"]["text"] == text {
            Script {
                steps,
                step_delay,
                ..Script::default()
            }
        } else {
            Script::instant()
        }
    }))
}

struct Harness {
    dir: tempfile::TempDir,
    store: Arc<dyn JobStore>,
    server: RunningServer,
    base: String,
    http: reqwest::Client,
    /// The API key serve requires (empty: serve runs without keys).
    key: String,
}

/// Options serving [`workflow`] as `txt2img` on these backends, with short test timings.
fn test_options(backends: &[&ComfyUiServer], outputs: impl Into<OutputStore>) -> ServeOptions {
    let mut options = ServeOptions::new(
        "127.0.0.1:0".parse().unwrap(),
        backends.iter().map(|b| b.url()).collect(),
        vec![WorkflowSource {
            name: "txt2img".into(),
            workflow: workflow(),
            expose: None,
        }],
        outputs,
    );
    options.worker.lease = Duration::from_secs(2);
    options.worker.poll = Duration::from_millis(50);
    options.worker.retry = RetryPolicy {
        base: Duration::from_millis(100),
        max: Duration::from_secs(1),
        jitter: 0.2,
    };
    options.worker.view_retry_delay = Duration::from_millis(100);
    options.startup_timeout = Duration::from_secs(10);
    options
}

async fn start(backends: &[&ComfyUiServer], tweak: impl FnOnce(&mut ServeOptions)) -> Harness {
    start_with_key(backends, false, tweak).await
}

/// Starts serve; with `key`, an API key is created first, so serve requires it.
async fn start_with_key(
    backends: &[&ComfyUiServer],
    key: bool,
    tweak: impl FnOnce(&mut ServeOptions),
) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn JobStore> = Arc::new(SqliteStore::open(&dir.path().join("queue.db")).unwrap());
    let key = if key {
        comfydock_serve::keys::create(&*store, "tests").await.unwrap().key
    } else {
        String::new()
    };
    let mut options = test_options(backends, dir.path().join("outputs"));
    tweak(&mut options);
    let server = comfydock_serve::start(options, Arc::clone(&store)).await.unwrap();
    let base = format!("http://{}", server.addr());
    Harness {
        dir,
        store,
        server,
        base,
        http: reqwest::Client::new(),
        key,
    }
}

impl Harness {
    /// The request with the harness's API key, if serve has one.
    fn authed(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        if self.key.is_empty() {
            request
        } else {
            request.bearer_auth(&self.key)
        }
    }

    /// `GET` of an API path (with the key, if any), as JSON.
    async fn get_json(&self, path: &str) -> Value {
        json_answer(self.authed(self.http.get(format!("{}{path}", self.base)))).await
    }

    async fn submit(&self, body: Value) -> (u16, Value) {
        let response = self
            .authed(self.http.post(format!("{}/v1/workflows/txt2img/jobs", self.base)))
            .json(&body)
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.json().await.unwrap())
    }

    async fn job(&self, id: &str) -> Value {
        self.get_json(&format!("/v1/jobs/{id}")).await
    }

    async fn wait_for(&self, id: &str, status: &str) -> Value {
        for _ in 0..300 {
            let job = self.job(id).await;
            if job["status"] == status {
                return job;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("job {id} never reached {status}: {}", self.job(id).await);
    }

    /// Reads events from the WebSocket until it closes (or `limit` events).
    async fn events(&self, id: &str, after: i64, limit: usize) -> Vec<Value> {
        let url = format!(
            "{}/v1/jobs/{id}/events?after={after}",
            self.base.replace("http", "ws")
        );
        let (mut socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        let mut events = Vec::new();
        while events.len() < limit {
            let next = tokio::time::timeout(Duration::from_secs(15), socket.next())
                .await
                .expect("event in time");
            match next {
                Some(Ok(Message::Text(text))) => events.push(serde_json::from_str(text.as_str()).unwrap()),
                Some(Ok(Message::Close(_))) | None => break,
                Some(Ok(_)) => {}
                Some(Err(e)) => panic!("websocket error: {e}"),
            }
        }
        let _ = socket.close(None).await;
        events
    }
}

fn kinds(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submit_stream_progress_download_every_output_kind_and_replay() {
    // Files land 300 ms after execution_success: the worker must retry /view.
    let comfy = ComfyUiServer::start_with(Arc::new(|_: &Value| Script {
        steps: 4,
        step_delay: Duration::from_millis(20),
        files_delay: Duration::from_millis(300),
        ..Script::default()
    }));
    let h = start(&[&comfy], |_| {}).await;
    let png = b"\x89PNG\r\n\x1a\nuser image";
    let (status, job) = h
        .submit(json!({"params": {"k_sampler_steps": 4, "positive_text": "a red fox", "k_sampler_sampler_name": "dpmpp_2m",
            "init_image": {"filename": "fox.png", "data": comfydock_serve::params::encode_base64(png)}}, "priority": 2}))
        .await;
    assert_eq!(status, 201, "{job}");
    let id = job["id"].as_str().unwrap().to_owned();

    let events = h.events(&id, 0, 100).await;
    let seqs: Vec<i64> = events.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    assert_eq!(
        seqs,
        (1..=i64::try_from(seqs.len()).unwrap()).collect::<Vec<_>>(),
        "gapless sequence"
    );
    let kinds = kinds(&events);
    assert_eq!(kinds.first().map(String::as_str), Some("queued"));
    assert_eq!(kinds.last().map(String::as_str), Some("succeeded"));
    for kind in ["started", "progress", "node", "output"] {
        assert!(kinds.iter().any(|k| k == kind), "missing {kind} in {kinds:?}");
    }
    let progress: Vec<_> = events
        .iter()
        .filter(|e| e["kind"] == "progress")
        .map(|e| e["data"]["value"].as_i64().unwrap())
        .collect();
    assert_eq!(progress, [1, 2, 3, 4]);

    // The prompt ComfyUI received carries the parameters and the uploaded file name.
    let prompt = &comfy.received()[0]["prompt"];
    assert_eq!(prompt["3"]["inputs"]["steps"], 4);
    assert_eq!(prompt["3"]["inputs"]["sampler_name"], "dpmpp_2m");
    assert_eq!(prompt["6"]["inputs"]["text"], "a red fox");
    assert_eq!(prompt["7"]["inputs"]["text"], "blurry", "defaults stay");
    assert_eq!(prompt["13"]["inputs"]["image"], "fox.png");
    assert_eq!(comfy.file("input", "", "fox.png").unwrap(), png);

    let job = h.wait_for(&id, "succeeded").await;
    let outputs = job["outputs"].as_array().unwrap();
    let mut kinds_seen: Vec<&str> = outputs.iter().map(|o| o["kind"].as_str().unwrap()).collect();
    kinds_seen.sort_unstable();
    assert_eq!(kinds_seen, ["audio", "gifs", "images", "images"]);
    for output in outputs {
        let response = h
            .http
            .get(format!("{}{}", h.base, output["url"].as_str().unwrap()))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
        let bytes = response.bytes().await.unwrap();
        assert_eq!(bytes.len() as u64, output["size"].as_u64().unwrap());
        let expected = match output["name"].as_str().unwrap().rsplit('.').next().unwrap() {
            "png" => "image/png",
            "mp4" => "video/mp4",
            "flac" => "audio/flac",
            "webp" => "image/webp",
            other => panic!("unexpected output extension {other}"),
        };
        assert_eq!(content_type, expected);
    }
    assert_eq!(
        h.http
            .get(format!("{}/v1/jobs/{id}/outputs/..%2Fqueue.db", h.base))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );

    // Reconnecting with `after` replays exactly what came later.
    let middle = seqs[seqs.len() / 2];
    let replay = h.events(&id, middle, 100).await;
    assert_eq!(replay, events[usize::try_from(middle).unwrap()..].to_vec());
    h.server.stop().await;
}

/// Output kinds of a finished job, sorted.
fn output_kinds(job: &Value) -> Vec<String> {
    let mut kinds: Vec<String> = job["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["kind"].as_str().unwrap().to_owned())
        .collect();
    kinds.sort_unstable();
    kinds
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_written_after_execution_success_is_read_at_executing_null() {
    // ComfyUI writes the history after `execution_success`; here well after. With a single
    // history attempt, only waiting for `executing {node: null}` finds every output.
    let comfy = ComfyUiServer::start_with(Arc::new(|_: &Value| Script {
        step_delay: Duration::ZERO,
        history_delay: Duration::from_millis(500),
        ..Script::default()
    }));
    let h = start(&[&comfy], |options| options.worker.view_attempts = 1).await;
    let (status, job) = h.submit(json!({"params": {}})).await;
    assert_eq!(status, 201, "{job}");
    let job = h.wait_for(job["id"].as_str().unwrap(), "succeeded").await;
    assert_eq!(output_kinds(&job), ["audio", "gifs", "images", "images"], "{job}");
    assert_eq!(job["attempts"], 1, "{job}");
    h.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_is_retried_when_executing_null_is_overdue() {
    // No grace for `executing {node: null}`: the bounded /history retries find the entry.
    let comfy = ComfyUiServer::start_with(Arc::new(|_: &Value| Script {
        step_delay: Duration::ZERO,
        history_delay: Duration::from_millis(200),
        ..Script::default()
    }));
    let h = start(&[&comfy], |options| {
        options.worker.history_grace = Duration::ZERO;
        options.worker.view_attempts = 100;
    })
    .await;
    let (status, job) = h.submit(json!({"params": {}})).await;
    assert_eq!(status, 201, "{job}");
    let job = h.wait_for(job["id"].as_str().unwrap(), "succeeded").await;
    assert_eq!(output_kinds(&job), ["audio", "gifs", "images", "images"], "{job}");
    h.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_parameters_are_rejected_with_422_naming_each_field() {
    let comfy = ComfyUiServer::start();
    let h = start(&[&comfy], |_| {}).await;
    let (status, body) = h
        .submit(
            json!({"params": {"k_sampler_steps": 0, "latent_width": 1_000_000, "k_sampler_cfg": "x",
                                  "k_sampler_scheduler": "nope", "bogus": 1}}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"], "validation_failed");
    let errors = body["errors"].as_array().unwrap();
    let paths: Vec<&str> = errors.iter().map(|e| e["path"].as_str().unwrap()).collect();
    assert_eq!(errors.len(), 5, "{body}");
    for path in [
        "params.k_sampler_steps",
        "params.latent_width",
        "params.k_sampler_cfg",
        "params.k_sampler_scheduler",
        "params.bogus",
    ] {
        assert!(paths.contains(&path), "{path} missing from {paths:?}");
    }
    let steps = errors
        .iter()
        .find(|e| e["path"] == "params.k_sampler_steps")
        .unwrap();
    assert_eq!(
        (steps["constraint"].as_str(), &steps["min"], &steps["max"]),
        (Some("minimum"), &json!(1), &json!(10000))
    );
    let width = errors
        .iter()
        .find(|e| e["path"] == "params.latent_width")
        .unwrap();
    assert_eq!(width["constraint"], "maximum");
    assert_eq!((&width["min"], &width["max"]), (&json!(16), &json!(16384)));
    assert!(width["message"].as_str().unwrap().contains("max 16384"));
    assert!(comfy.received().is_empty(), "nothing reached ComfyUI");
    assert!(
        h.store
            .list(comfydock_serve::store::JobFilter::default())
            .await
            .unwrap()
            .is_empty(),
        "nothing queued"
    );

    // The OpenAPI document describes the same constraints.
    let doc: Value = h.get_json("/openapi.json").await;
    assert_eq!(doc["openapi"], "3.1.0");
    let params = &doc["components"]["schemas"]["txt2img_params"]["properties"];
    assert_eq!(params["k_sampler_steps"]["minimum"], 1);
    assert_eq!(params["k_sampler_steps"]["maximum"], 10000);
    assert_eq!(params["k_sampler_steps"]["default"], 20);
    assert_eq!(params["k_sampler_seed"]["maximum"], json!(u64::MAX));
    assert_eq!(params["k_sampler_sampler_name"]["enum"][0], "euler");
    assert_eq!(params["anim_lossless"]["type"], "boolean");
    assert_eq!(
        params["init_image"]["properties"]["data"]["contentEncoding"],
        "base64"
    );
    assert!(doc["paths"]["/v1/workflows/txt2img/jobs"]["post"]["responses"]["422"].is_object());
    let docs = h
        .http
        .get(format!("{}/docs", h.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        docs.contains("/openapi.json") && !docs.contains("https://"),
        "self-contained docs page"
    );
    h.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_killed_mid_job_is_retried_on_another_and_succeeds_once() {
    let slow = Arc::new(|_: &Value| Script {
        steps: 40,
        step_delay: Duration::from_millis(50),
        ..Script::default()
    });
    let mut first = ComfyUiServer::start_with(slow.clone());
    let mut second = ComfyUiServer::start_with(slow);
    let h = start(&[&first, &second], |_| {}).await;
    let (_, job) = h.submit(json!({"params": {"positive_text": "retry me"}})).await;
    let id = job["id"].as_str().unwrap().to_owned();
    // Wait until a backend runs it, then kill that one.
    let victim_is_first = loop {
        if first.running().is_some() {
            break true;
        }
        if second.running().is_some() {
            break false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (victim, survivor) = if victim_is_first {
        (&mut first, &second)
    } else {
        (&mut second, &first)
    };
    victim.kill();
    let done = h.wait_for(&id, "succeeded").await;
    assert_eq!(done["attempts"], 2);
    assert_eq!(
        done["error"]["kind"], "backend_lost",
        "the last error is kept: {done}"
    );
    let successes: Vec<_> = survivor
        .executions()
        .into_iter()
        .filter(|e| e.outcome == "success")
        .collect();
    assert_eq!(successes.len(), 1);
    assert!(
        victim.executions().is_empty(),
        "the killed backend never finished it"
    );
    let events = kinds(&h.events(&id, 0, 100).await);
    assert_eq!(events.iter().filter(|k| *k == "succeeded").count(), 1);
    assert_eq!(events.iter().filter(|k| *k == "retrying").count(), 1);
    let metrics = h
        .http
        .get(format!("{}/metrics", h.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("comfydock_job_retries_total 1\n"), "{metrics}");
    assert!(
        metrics.contains("comfydock_job_duration_seconds_count 1\n"),
        "{metrics}"
    );
    victim.restart();
    h.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn execution_errors_fail_without_retry_and_cancel_interrupts_comfyui() {
    let comfy = ComfyUiServer::start_with(Arc::new(|prompt: &Value| {
        if prompt["6"]["inputs"]["text"] == "explode" {
            Script {
                error: Some(ScriptError {
                    node_id: None,
                    exception_type: "RuntimeError".into(),
                    exception_message: "CUDA out of memory".into(),
                }),
                ..Script::default()
            }
        } else {
            Script {
                steps: 200,
                step_delay: Duration::from_millis(25),
                ..Script::default()
            }
        }
    }));
    let h = start(&[&comfy], |_| {}).await;
    let (_, job) = h.submit(json!({"params": {"positive_text": "explode"}})).await;
    let failed = h.wait_for(job["id"].as_str().unwrap(), "failed").await;
    assert_eq!(failed["attempts"], 1, "execution errors are not retried");
    assert_eq!(failed["error"]["kind"], "execution_error");
    assert!(
        failed["error"]["message"]
            .as_str()
            .unwrap()
            .contains("CUDA out of memory")
    );

    let (_, job) = h.submit(json!({"params": {"positive_text": "long"}})).await;
    let id = job["id"].as_str().unwrap().to_owned();
    h.wait_for(&id, "running").await;
    while comfy.running().is_none() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let cancelled: Value = json_answer(h.http.delete(format!("{}/v1/jobs/{id}", h.base))).await;
    assert_eq!(cancelled["status"], "cancelled");
    for _ in 0..100 {
        if comfy.executions().iter().any(|e| e.outcome == "interrupted") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        comfy.executions().iter().any(|e| e.outcome == "interrupted"),
        "{:?}",
        comfy.executions()
    );
    assert_eq!(kinds(&h.events(&id, 0, 100).await).last().unwrap(), "cancelled");
    h.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_keys_rate_limits_and_idempotency() {
    let comfy = ComfyUiServer::start();
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("queue.db")).unwrap();
    // Without keys, only loopback is allowed.
    let refused = comfydock_serve::start(
        ServeOptions::new(
            "0.0.0.0:0".parse().unwrap(),
            vec![comfy.url()],
            vec![],
            dir.path().join("o"),
        ),
        Arc::new(store.clone()),
    )
    .await
    .err()
    .expect("non-loopback without keys is refused");
    assert!(matches!(refused, ServeError::NeedsApiKey { .. }), "{refused}");

    let created = comfydock_serve::keys::create(&store, "ci").await.unwrap();
    let mut options = ServeOptions::new(
        "127.0.0.1:0".parse().unwrap(),
        vec![comfy.url()],
        vec![WorkflowSource {
            name: "txt2img".into(),
            workflow: workflow(),
            expose: None,
        }],
        dir.path().join("o"),
    );
    options.rate_limit_per_minute = Some(5);
    let server = comfydock_serve::start(options, Arc::new(store.clone()))
        .await
        .unwrap();
    let base = format!("http://{}", server.addr());
    let http = reqwest::Client::new();
    assert_eq!(
        http.get(format!("{base}/v1/jobs")).send().await.unwrap().status(),
        401
    );
    assert_eq!(
        http.get(format!("{base}/v1/jobs"))
            .bearer_auth("cdk_wrong")
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    assert_eq!(
        http.get(format!("{base}/healthz")).send().await.unwrap().status(),
        200,
        "health is open"
    );
    let submit = || {
        http.post(format!("{base}/v1/workflows/txt2img/jobs"))
            .bearer_auth(&created.key)
            .header("Idempotency-Key", "order-17")
            .json(&json!({"params": {"k_sampler_seed": 7}}))
            .send()
    };
    let first = submit().await.unwrap();
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.unwrap();
    let second = submit().await.unwrap();
    assert_eq!(second.status(), 200, "same key returns the same job");
    assert_eq!(second.json::<Value>().await.unwrap()["id"], first["id"]);
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(
            http.get(format!("{base}/v1/jobs"))
                .bearer_auth(&created.key)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16(),
        );
    }
    assert_eq!(statuses, [200, 200, 200, 429], "5 requests per minute per key");
    assert_eq!(store.revoke_key("ci".into()).await.unwrap(), 1);
    assert_eq!(
        http.get(format!("{base}/v1/jobs"))
            .bearer_auth(&created.key)
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    server.stop().await;
}

/// A webhook is a URL from whoever may submit: by default it may not lead into serve's own
/// network (loopback, private, link-local, cloud metadata), named or literal; and an idempotency
/// key reused with another priority is a conflict, not the first job.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn internal_webhooks_and_changed_idempotent_requests_are_refused() {
    let comfy = ComfyUiServer::start();
    let h = start(&[&comfy], |_| {}).await;
    for (url, constraint) in [
        ("http://127.0.0.1:9/hook", "target"),
        ("http://localhost:9/hook", "target"),
        ("http://169.254.169.254/latest/meta-data/", "target"),
        ("http://[::1]:9/hook", "target"),
        ("file:///etc/passwd", "format"),
    ] {
        let (status, body) = h
            .submit(json!({"params": {"k_sampler_seed": 1}, "webhook": url}))
            .await;
        assert_eq!(status, 422, "{url}: {body}");
        assert_eq!(body["errors"][0]["path"], "webhook", "{body}");
        assert_eq!(body["errors"][0]["constraint"], constraint, "{body}");
    }
    let listed: Value = h.get_json("/v1/jobs").await;
    assert_eq!(listed["jobs"].as_array().unwrap().len(), 0, "nothing was queued");

    let submit = |priority: i64| {
        h.http
            .post(format!("{}/v1/workflows/txt2img/jobs", h.base))
            .header("Idempotency-Key", "order-18")
            .json(&json!({"params": {"k_sampler_seed": 7}, "priority": priority}))
            .send()
    };
    assert_eq!(submit(1).await.unwrap().status(), 201);
    assert_eq!(submit(1).await.unwrap().status(), 200);
    let conflict = submit(5).await.unwrap();
    assert_eq!(conflict.status(), 409);
    assert_eq!(
        conflict.json::<Value>().await.unwrap()["error"],
        "idempotency_key_reused"
    );
    h.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_follows_the_backends() {
    let mut comfy = ComfyUiServer::start();
    let h = start(&[&comfy], |_| {}).await;
    assert_eq!(
        h.http
            .get(format!("{}/readyz", h.base))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    comfy.kill();
    let response = h.http.get(format!("{}/readyz", h.base)).send().await.unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(
        response.json::<Value>().await.unwrap()["backends"][0]["up"],
        false
    );
    comfy.restart();
    assert_eq!(
        h.http
            .get(format!("{}/readyz", h.base))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    // A WebSocket client that sends nothing is fine; unknown jobs are 404.
    let url = format!("{}/v1/jobs/00000000-0000-0000-0000-000000000000/events", h.base);
    assert_eq!(h.http.get(url).send().await.unwrap().status(), 404);
    // Without an upgrade the event log comes back as JSON.
    let (_, job) = h.submit(json!({})).await;
    let id = job["id"].as_str().unwrap();
    let log: Value = h.get_json(&format!("/v1/jobs/{id}/events?after=0")).await;
    assert_eq!(log["events"][0]["kind"], "queued");
    assert_eq!(log["events"][0]["seq"], 1);
    let (mut socket, _) =
        tokio_tungstenite::connect_async(format!("{}/ws?clientId=x", comfy.url().replace("http", "ws")))
            .await
            .unwrap();
    let hello = socket.next().await.unwrap().unwrap();
    assert!(hello.to_text().unwrap().contains("\"sid\":\"x\""));
    socket.send(Message::Close(None)).await.unwrap();
    h.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeouts_are_retried_then_dead_lettered_and_webhooks_fire() {
    let comfy = slow_for("hang", 1000, Duration::from_millis(20));
    let hooks = comfydock_test::http::HttpServer::start(|_| {
        comfydock_test::http::Response::json(&json!({"ok": true}))
    });
    let h = start(&[&comfy], |options| {
        options.worker.job_timeout = Duration::from_millis(400);
        // The hook listens on loopback: this operator allows its own network.
        options.worker.webhooks.allow_private = true;
    })
    .await;
    let (_, job) = h
        .submit(json!({"params": {"positive_text": "hang"}, "max_attempts": 2, "webhook": format!("{}/hook", hooks.url())}))
        .await;
    let dead = h.wait_for(job["id"].as_str().unwrap(), "dead").await;
    assert_eq!(dead["attempts"], 2);
    assert_eq!(dead["error"]["kind"], "timeout", "the last error is kept: {dead}");
    assert!(dead["error"]["transient"].as_bool().unwrap());

    let (_, job) = h
        .submit(json!({"params": {"positive_text": "quick"}, "webhook": format!("{}/hook", hooks.url())}))
        .await;
    h.wait_for(job["id"].as_str().unwrap(), "succeeded").await;
    let mut delivered = Vec::new();
    for _ in 0..100 {
        delivered = hooks.log().for_path("/hook");
        if delivered.len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let statuses: Vec<String> = delivered
        .iter()
        .map(|r| {
            serde_json::from_slice::<Value>(&r.body).unwrap()["status"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(statuses, ["dead", "succeeded"], "one webhook per finished job");
    let listed: Value = h.get_json("/v1/jobs?status=dead&workflow=txt2img").await;
    assert_eq!(listed["jobs"].as_array().unwrap().len(), 1);
    let bad: reqwest::Response = h
        .http
        .get(format!("{}/v1/jobs?status=done", h.base))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 422);
    h.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_limit_and_cors() {
    let comfy = ComfyUiServer::start();
    let h = start(&[&comfy], |options| {
        options.limits.body_limit = 2048;
        options.limits.cors_origins = vec!["https://app.example".into()];
    })
    .await;
    let big = "x".repeat(4096);
    let (status, _) = {
        let response = h
            .http
            .post(format!("{}/v1/workflows/txt2img/jobs", h.base))
            .header("content-type", "application/json")
            .body(json!({"params": {"positive_text": big}}).to_string())
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    };
    assert_eq!(status, 413, "bodies over the limit are refused");
    let (status, _) = h.submit(json!({"params": {"positive_text": "small"}})).await;
    assert_eq!(status, 201);

    let preflight = h
        .http
        .request(reqwest::Method::OPTIONS, format!("{}/v1/jobs", h.base))
        .header("origin", "https://app.example")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "authorization,idempotency-key")
        .send()
        .await
        .unwrap();
    assert_eq!(
        preflight.headers()["access-control-allow-origin"],
        "https://app.example"
    );
    let other = h
        .http
        .get(format!("{}/v1/jobs", h.base))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert!(
        other.headers().get("access-control-allow-origin").is_none(),
        "other origins get no CORS grant"
    );
    h.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_releases_running_jobs_back_to_the_queue() {
    let comfy = ComfyUiServer::start_with(Arc::new(|_: &Value| Script {
        steps: 500,
        step_delay: Duration::from_millis(20),
        ..Script::default()
    }));
    let h = start(&[&comfy], |_| {}).await;
    let (_, job) = h.submit(json!({"params": {"positive_text": "long"}})).await;
    let id = job["id"].as_str().unwrap().to_owned();
    h.wait_for(&id, "running").await;
    while comfy.running().is_none() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let stopping = Instant::now();
    h.server.stop().await;
    assert!(
        stopping.elapsed() < Duration::from_secs(5),
        "stop does not wait for the 10 s prompt"
    );
    let released = h.store.get(id.parse().unwrap()).await.unwrap().unwrap();
    assert_eq!(released.status, comfydock_serve::job::JobStatus::Queued);
    assert_eq!(released.attempts, 0, "a shutdown does not use up an attempt");
    for _ in 0..100 {
        if comfy.executions().iter().any(|e| e.outcome == "interrupted") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        comfy.executions().iter().any(|e| e.outcome == "interrupted"),
        "the prompt was interrupted"
    );
}

/// The kinds of a job's event log (read as JSON).
async fn log_kinds(h: &Harness, id: &str) -> Vec<String> {
    let log = h.get_json(&format!("/v1/jobs/{id}/events")).await;
    kinds(log["events"].as_array().unwrap())
}

/// Waits (bounded) until `done` holds.
async fn until(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..300 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("never happened: {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_prompt_reply_is_adopted_not_submitted_again() {
    let comfy = ComfyUiServer::start_with(Arc::new(|_: &Value| Script {
        steps: 5,
        step_delay: Duration::from_millis(20),
        ..Script::default()
    }));
    comfy.lose_prompt_replies(1);
    let h = start(&[&comfy], |_| {}).await;
    let (_, job) = h.submit(json!({"params": {"positive_text": "lost reply"}})).await;
    let id = job["id"].as_str().unwrap().to_owned();
    let done = h.wait_for(&id, "succeeded").await;
    assert_eq!(comfy.received().len(), 1, "the prompt was sent once");
    let runs = comfy.runs_per_prompt();
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert!(runs.values().all(|n| *n == 1), "{runs:?}");
    assert_eq!(
        done["attempts"], 2,
        "the lost reply failed the first attempt: {done}"
    );
    let kinds = log_kinds(&h, &id).await;
    assert_eq!(
        kinds.iter().filter(|k| *k == "submitting").count(),
        1,
        "{kinds:?}"
    );
    assert_eq!(kinds.iter().filter(|k| *k == "adopted").count(), 1, "{kinds:?}");
    assert_eq!(output_kinds(&done), ["audio", "gifs", "images", "images"]);
    h.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_websocket_is_followed_again_on_the_same_prompt() {
    let comfy = ComfyUiServer::start_with(Arc::new(|_: &Value| Script {
        steps: 100,
        step_delay: Duration::from_millis(30),
        ..Script::default()
    }));
    let h = start(&[&comfy], |_| {}).await;
    let (_, job) = h
        .submit(json!({"params": {"positive_text": "dropped socket"}}))
        .await;
    let id = job["id"].as_str().unwrap().to_owned();
    until("the prompt runs", || comfy.running().is_some()).await;
    comfy.drop_sockets();
    let done = h.wait_for(&id, "succeeded").await;
    assert_eq!(done["attempts"], 2, "{done}");
    assert_eq!(comfy.received().len(), 1, "the prompt was sent once");
    let executions = comfy.executions();
    assert_eq!(executions.len(), 1, "{executions:?}");
    assert_eq!(executions[0].outcome, "success");
    let kinds = log_kinds(&h, &id).await;
    assert!(kinds.contains(&"adopted".to_owned()), "{kinds:?}");
    h.server.stop().await;
}

/// Another socket with the job's client id (a takeover racing its first holder, a second tool)
/// leaves serve's socket deaf: the prompt ends unheard, and serve finds it in the history.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prompt_that_ends_unheard_is_found_in_its_history() {
    let comfy = ComfyUiServer::start_with(Arc::new(|_: &Value| Script {
        steps: 20,
        step_delay: Duration::from_millis(20),
        ..Script::default()
    }));
    let h = start(&[&comfy], |options| {
        options.worker.history_poll = Duration::from_millis(300);
    })
    .await;
    let (_, job) = h.submit(json!({"params": {"positive_text": "unheard"}})).await;
    let id = job["id"].as_str().unwrap().to_owned();
    until("the prompt runs", || comfy.running().is_some()).await;
    let client_id = comfy.received()[0]["client_id"].as_str().unwrap().to_owned();
    let url = format!("{}/ws?clientId={client_id}", comfy.url().replace("http", "ws"));
    let (mut other, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    other.close(None).await.unwrap();
    let done = h.wait_for(&id, "succeeded").await;
    assert_eq!(done["attempts"], 1, "{done}");
    assert_eq!(comfy.executions().len(), 1);
    assert_eq!(done["outputs"].as_array().unwrap().len(), 4, "{done}");
    h.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_keeps_its_websocket_between_jobs_and_opens_another_when_comfyui_drops_it() {
    let comfy = ComfyUiServer::start();
    let h = start(&[&comfy], |_| {}).await;
    let mut ids = Vec::new();
    for text in ["first", "second"] {
        let (_, job) = h.submit(json!({"params": {"positive_text": text}})).await;
        let id = job["id"].as_str().unwrap().to_owned();
        h.wait_for(&id, "succeeded").await;
        ids.push(id);
    }
    // The worker is idle now: ComfyUI goes away from under its socket (a restart, a proxy).
    comfy.drop_sockets();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (_, job) = h.submit(json!({"params": {"positive_text": "third"}})).await;
    let id = job["id"].as_str().unwrap().to_owned();
    let done = h.wait_for(&id, "succeeded").await;
    assert_eq!(
        done["attempts"], 1,
        "no attempt is lost to the dropped socket: {done}"
    );
    ids.push(id);
    let client_ids: Vec<String> = comfy
        .received()
        .iter()
        .map(|prompt| prompt["client_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(client_ids.len(), 3, "{client_ids:?}");
    assert_eq!(client_ids[0], client_ids[1], "one socket served both jobs");
    assert_ne!(client_ids[1], client_ids[2], "a new socket after the drop");
    // Each job's log names the client id its prompt went out with.
    for (id, client_id) in ids.iter().zip(&client_ids) {
        let log: Value = h.get_json(&format!("/v1/jobs/{id}/events?after=0")).await;
        let submitting = log["events"]
            .as_array()
            .unwrap()
            .iter()
            .find(|event| event["kind"] == "submitting")
            .unwrap();
        assert_eq!(submitting["data"]["client_id"], client_id.as_str());
    }
    h.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_job_whose_prompt_waits_in_comfyui_removes_it_from_the_queue() {
    let comfy = slow_for("someone else's", 10_000, Duration::from_millis(10));
    // Another client of the same ComfyUI keeps it busy, so serve's prompt waits in its queue.
    let mut other = workflow();
    other["6"]["inputs"]["text"] = json!("someone else's");
    let http = reqwest::Client::new();
    let queued: Value = json_answer(
        http.post(format!("{}/prompt", comfy.url()))
            .json(&json!({"prompt": other, "client_id": "other"})),
    )
    .await;
    let other_id = queued["prompt_id"].as_str().unwrap().to_owned();
    until("the other prompt runs", || comfy.running().is_some()).await;

    let h = start(&[&comfy], |_| {}).await;
    let (_, job) = h.submit(json!({"params": {"positive_text": "mine"}})).await;
    let id = job["id"].as_str().unwrap().to_owned();
    until("serve's prompt waits in ComfyUI's queue", || {
        comfy.pending().len() == 1
    })
    .await;
    let cancelled: Value = json_answer(h.http.delete(format!("{}/v1/jobs/{id}", h.base))).await;
    assert_eq!(cancelled["status"], "cancelled");
    until("the prompt left ComfyUI's queue", || comfy.pending().is_empty()).await;
    assert_eq!(
        comfy.running().as_deref(),
        Some(other_id.as_str()),
        "the other client's prompt is not interrupted"
    );
    // Let the other prompt end: nothing of serve's runs after it.
    http.post(format!("{}/interrupt", comfy.url()))
        .send()
        .await
        .unwrap();
    until("ComfyUI is idle", || {
        comfy.running().is_none() && comfy.executions().len() == 1
    })
    .await;
    assert!(comfy.pending().is_empty());
    let ran: Vec<String> = comfy.executions().into_iter().map(|e| e.prompt_id).collect();
    assert_eq!(ran, [other_id]);
    h.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_naming_an_output_outside_the_folder_fails_the_job_and_writes_nothing() {
    let comfy = ComfyUiServer::start_with(Arc::new(|_: &Value| Script {
        reported_filename: Some("../../escape.png".into()),
        ..Script::instant()
    }));
    let h = start(&[&comfy], |_| {}).await;
    let (_, job) = h.submit(json!({"params": {"positive_text": "hostile"}})).await;
    let id = job["id"].as_str().unwrap().to_owned();
    let failed = h.wait_for(&id, "failed").await;
    assert_eq!(failed["error"]["kind"], "unsafe_output_name", "{failed}");
    let outputs = h.dir.path().join("outputs");
    assert!(!h.dir.path().join("escape.png").exists());
    assert!(!outputs.join("escape.png").exists());
    h.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finished_streams_close_keys_in_any_case_browser_websockets_and_private_backend_urls() {
    let comfy = ComfyUiServer::start_with(Arc::new(|_: &Value| Script::instant()));
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("queue.db")).unwrap();
    let created = comfydock_serve::keys::create(&store, "ci").await.unwrap();
    let mut options = ServeOptions::new(
        "127.0.0.1:0".parse().unwrap(),
        vec![comfy.url()],
        vec![WorkflowSource {
            name: "txt2img".into(),
            workflow: workflow(),
            expose: None,
        }],
        dir.path().join("o"),
    );
    options.startup_timeout = Duration::from_secs(10);
    let server = comfydock_serve::start(options, Arc::new(store.clone()))
        .await
        .unwrap();
    let base = format!("http://{}", server.addr());
    let http = reqwest::Client::new();

    // The scheme of `Authorization` is case-insensitive.
    for scheme in ["Bearer", "bearer", "BEARER"] {
        let response = http
            .get(format!("{base}/v1/jobs"))
            .header("authorization", format!("{scheme} {}", created.key))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{scheme}");
    }
    let submitted: Value = json_answer(
        http.post(format!("{base}/v1/workflows/txt2img/jobs"))
            .header("authorization", format!("bearer {}", created.key))
            .json(&json!({"params": {"positive_text": "x"}})),
    )
    .await;
    let id = submitted["id"].as_str().unwrap().to_owned();
    let mut job = Value::Null;
    for _ in 0..300 {
        job = json_answer(http.get(format!("{base}/v1/jobs/{id}")).bearer_auth(&created.key)).await;
        if job["status"] == "succeeded" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(job["status"], "succeeded", "{job}");

    // A browser's WebSocket: the key as a subprotocol; serve answers with `comfydock`.
    let ws_url = format!("{}/v1/jobs/{id}/events", base.replace("http", "ws"));
    let connect = |url: String, protocols: Option<String>| async move {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
        let mut request = url.into_client_request().unwrap();
        if let Some(protocols) = protocols {
            request
                .headers_mut()
                .insert("sec-websocket-protocol", protocols.parse().unwrap());
        }
        tokio_tungstenite::connect_async(request).await
    };
    let refused = connect(ws_url.clone(), None).await;
    assert!(refused.is_err(), "no key, no WebSocket");
    let (mut socket, response) = connect(
        ws_url.clone(),
        Some(format!("comfydock, comfydock.bearer.{}", created.key)),
    )
    .await
    .unwrap();
    assert_eq!(response.headers()["sec-websocket-protocol"], "comfydock");
    let mut seqs = Vec::new();
    while let Some(Ok(message)) = socket.next().await {
        if let Message::Text(text) = message {
            seqs.push(
                serde_json::from_str::<Value>(text.as_str()).unwrap()["seq"]
                    .as_i64()
                    .unwrap(),
            );
        }
    }
    let last = *seqs.last().expect("the log was replayed");
    // At the last event of a finished job, the stream closes at once instead of waiting.
    let (mut socket, _) = connect(
        format!("{ws_url}?after={last}"),
        Some(format!("comfydock, comfydock.bearer.{}", created.key)),
    )
    .await
    .unwrap();
    let next = tokio::time::timeout(Duration::from_secs(15), socket.next())
        .await
        .expect("the stream closes");
    assert!(matches!(next, None | Some(Ok(Message::Close(_)))), "{next:?}");

    // Backend URLs only for key holders.
    let url = comfy.url();
    for path in ["/metrics", "/readyz"] {
        let anonymous = http
            .get(format!("{base}{path}"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            !anonymous.contains(&url),
            "{path} shows {url} without a key: {anonymous}"
        );
        assert!(anonymous.contains("backend-0"), "{anonymous}");
        let keyed = http
            .get(format!("{base}{path}"))
            .bearer_auth(&created.key)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(keyed.contains(&url), "{path} with a key: {keyed}");
    }
    server.stop().await;
}

/// An S3 output store on `server`'s bucket, configured from the server's variables only.
fn s3_outputs(server: &S3Server, url: &str) -> OutputStore {
    let vars = server.env().into_iter().map(|(k, v)| (k.to_owned(), v));
    OutputStore::S3(S3Outputs::new(url, vars).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outputs_in_an_s3_bucket_are_uploaded_in_parts_and_streamed_back() {
    let s3 = S3Server::start();
    s3.create_bucket("outputs");
    // Over two 5 MiB parts: the large outputs go up as a multipart upload of three parts.
    let size = 12 * 1024 * 1024 + 5;
    let comfy = ComfyUiServer::start_with(Arc::new(move |_: &Value| Script {
        output_size: size,
        ..Script::instant()
    }));
    let outputs = s3_outputs(&s3, "s3://outputs/serve/test");
    let h = start(&[&comfy], move |options| options.worker.outputs = outputs).await;
    let (status, job) = h.submit(json!({"params": {}})).await;
    assert_eq!(status, 201, "{job}");
    let id = job["id"].as_str().unwrap().to_owned();
    let job = h.wait_for(&id, "succeeded").await;
    let outputs = job["outputs"].as_array().unwrap();
    assert_eq!(outputs.len(), 4, "{job}");
    let mut keys = Vec::new();
    for output in outputs {
        let name = output["name"].as_str().unwrap();
        keys.push(format!("serve/test/{id}/{name}"));
        assert_eq!(output["size"], size, "{output}");
        let response = h
            .http
            .get(format!("{}{}", h.base, output["url"].as_str().unwrap()))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(
            response.headers()["content-length"].to_str().unwrap(),
            size.to_string()
        );
        let bytes = response.bytes().await.unwrap();
        // SaveAudio writes into `audio/` (its prefix is `audio/ComfyUI`).
        let subfolder = if output["kind"] == "audio" { "audio" } else { "" };
        assert!(
            bytes[..] == comfy.file("output", subfolder, name).unwrap()[..],
            "{name} came back changed"
        );
        let etag = s3.etag("outputs", &format!("serve/test/{id}/{name}")).unwrap();
        assert!(
            etag.ends_with("-3"),
            "{name}: a three-part upload, got ETag {etag}"
        );
    }
    keys.sort();
    assert_eq!(s3.keys("outputs", "serve/"), keys, "nothing else in the bucket");
    assert_eq!(s3.open_multipart_uploads("outputs"), 0, "no upload left open");
    let missing = h
        .http
        .get(format!("{}/v1/jobs/{id}/outputs/nope.png", h.base))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    h.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_bucket_or_an_unreachable_endpoint_stops_serve_at_startup_with_a_hint() {
    let s3 = S3Server::start();
    let comfy = ComfyUiServer::start();
    let dir = tempfile::tempdir().unwrap();
    let attempt = |outputs: OutputStore| {
        let store: Arc<dyn JobStore> = Arc::new(SqliteStore::open(&dir.path().join("queue.db")).unwrap());
        comfydock_serve::start(test_options(&[&comfy], outputs), store)
    };
    let Err(error) = attempt(s3_outputs(&s3, "s3://absent/p")).await else {
        panic!("serve started without its bucket");
    };
    assert!(
        matches!(error, ServeError::Outputs(OutputStoreError::BucketMissing { .. })),
        "{error}"
    );
    assert!(error.to_string().contains("`absent`"), "{error}");
    let hint = comfydock_foundation::Hinted::hint(&error).unwrap();
    assert!(hint.contains("create bucket `absent`"), "{hint}");

    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let vars = [
        ("AWS_ACCESS_KEY_ID", "id".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "secret".to_owned()),
        ("AWS_ENDPOINT_URL", format!("http://{closed}")),
    ]
    .map(|(k, v)| (k.to_owned(), v));
    let Err(error) = attempt(OutputStore::S3(S3Outputs::new("s3://b/p", vars).unwrap())).await else {
        panic!("serve started with its bucket out of reach");
    };
    assert!(
        matches!(error, ServeError::Outputs(OutputStoreError::Unreachable { .. })),
        "{error}"
    );
    assert!(error.to_string().contains(&closed.to_string()), "{error}");
    assert!(
        comfydock_foundation::Hinted::hint(&error)
            .unwrap()
            .contains("AWS_ENDPOINT_URL")
    );
}

impl Harness {
    async fn submit_form(&self, form: reqwest::multipart::Form) -> (u16, Value) {
        let response = self
            .http
            .post(format!("{}/v1/workflows/txt2img/jobs", self.base))
            .multipart(form)
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.json().await.unwrap())
    }
}

fn file_part(bytes: &[u8], name: &str, declared: &str) -> reqwest::multipart::Part {
    reqwest::multipart::Part::bytes(bytes.to_vec())
        .file_name(name.to_owned())
        .mime_str(declared)
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multipart_requests_upload_files_typed_by_their_bytes_within_size_limits() {
    use reqwest::multipart::Form;
    let comfy = ComfyUiServer::start();
    let h = start(&[&comfy], |options| {
        options.limits.upload_limit = 4096;
        options.limits.body_limit = 64 * 1024;
    })
    .await;
    let png = b"\x89PNG\r\n\x1a\nfox pixels";
    let flac = b"fLaC\0\0\0\x22voice";
    // Declared as text under a .txt name: the bytes say PNG, and that is what counts.
    let form = Form::new()
        .part("init_image", file_part(png, "C:\\photos\\fox.txt", "text/plain"))
        .part("voice_audio", file_part(flac, "voice.flac", "audio/flac"))
        .text("k_sampler_steps", "4")
        .text("k_sampler_cfg", "6.5")
        .text("positive_text", "a red fox")
        .text("anim_lossless", "false")
        .text("priority", "3");
    let (status, job) = h.submit_form(form).await;
    assert_eq!(status, 201, "{job}");
    assert_eq!(job["priority"], 3);
    let id = job["id"].as_str().unwrap().to_owned();
    h.wait_for(&id, "succeeded").await;
    let prompt = &comfy.received()[0]["prompt"];
    assert_eq!(prompt["3"]["inputs"]["steps"], 4);
    assert_eq!(prompt["3"]["inputs"]["cfg"], 6.5);
    assert_eq!(prompt["6"]["inputs"]["text"], "a red fox");
    assert_eq!(prompt["14"]["inputs"]["lossless"], false);
    assert_eq!(prompt["13"]["inputs"]["image"], "fox.txt");
    assert_eq!(comfy.file("input", "", "fox.txt").unwrap(), png);
    assert_eq!(prompt["12"]["inputs"]["audio"], "voice.flac");
    assert_eq!(comfy.file("input", "", "voice.flac").unwrap(), flac);

    // Wrong media kinds (by their bytes, whatever they claim) and wrong types: 422, each field.
    let form = Form::new()
        .part("init_image", file_part(flac, "fox.png", "image/png"))
        .part("voice_audio", file_part(b"<html>", "voice.flac", "audio/flac"))
        .part("k_sampler_steps", file_part(png, "steps.png", "image/png"))
        .text("k_sampler_cfg", "high")
        .text("k_sampler_sampler_name", "nope")
        .text("priority", "urgent");
    let (status, body) = h.submit_form(form).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"], "validation_failed");
    let errors = body["errors"].as_array().unwrap();
    let find = |path: &str| {
        errors
            .iter()
            .find(|e| e["path"] == path)
            .unwrap_or_else(|| panic!("no error for {path} in {body}"))
    };
    assert_eq!(
        find("params.k_sampler_steps")["constraint"],
        "type",
        "a file for a number"
    );
    let image = find("params.init_image");
    assert_eq!(image["constraint"], "content_type");
    assert!(
        image["message"].as_str().unwrap().contains("`audio/flac`"),
        "{image}"
    );
    assert!(image["allowed"].as_array().unwrap().contains(&json!("image/png")));
    assert_eq!(find("params.voice_audio")["constraint"], "content_type");
    assert_eq!(find("params.k_sampler_cfg")["constraint"], "type");
    assert_eq!(find("params.k_sampler_sampler_name")["constraint"], "enum");
    assert_eq!(find("priority")["constraint"], "type");
    assert_eq!(errors.len(), 6, "{body}");

    // The same sniffing for base64 files in a JSON body.
    let (status, body) = h
        .submit(json!({"params": {"init_image": {"filename": "fox.png",
            "data": comfydock_serve::params::encode_base64(flac)}}}))
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["errors"][0]["path"], "params.init_image");
    assert_eq!(body["errors"][0]["constraint"], "content_type");

    // A file over the per-file limit, as a part or as base64: 413 naming the field and the limit.
    let mut big = png.to_vec();
    big.resize(5000, 0);
    let (status, body) = h
        .submit_form(Form::new().part("init_image", file_part(&big, "big.png", "image/png")))
        .await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(body["error"], "payload_too_large");
    assert_eq!(body["path"], "params.init_image");
    assert_eq!(body["limit"], 4096);
    let (status, body) = h
        .submit(json!({"params": {"init_image": {"filename": "big.png",
            "data": comfydock_serve::params::encode_base64(&big)}}}))
        .await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(body["path"], "params.init_image");
    // A body over the request limit: 413 with a JSON body too.
    let many = (0..20).fold(Form::new(), |form, i| {
        form.part(
            format!("extra_{i}"),
            file_part(&big[..4000], "x.png", "image/png"),
        )
    });
    let (status, body) = h.submit_form(many).await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(body["error"], "payload_too_large");
    assert_eq!(body["limit"], 64 * 1024);
    assert!(body.get("path").is_none(), "{body}");
    assert_eq!(comfy.received().len(), 1, "only the valid job reached ComfyUI");

    // The OpenAPI document describes both bodies, with examples for every parameter.
    let doc: Value = h.get_json("/openapi.json").await;
    let post = &doc["paths"]["/v1/workflows/txt2img/jobs"]["post"];
    let content = &post["requestBody"]["content"];
    let example = &content["application/json"]["example"]["params"];
    let params = doc["components"]["schemas"]["txt2img_params"]["properties"]
        .as_object()
        .unwrap();
    for (name, schema) in params {
        assert!(!example[name].is_null(), "no example value for {name}");
        assert!(schema["examples"].is_array(), "no examples for {name}");
    }
    assert_eq!(example["k_sampler_steps"], 20);
    assert_eq!(example["init_image"]["filename"], "example.png");
    let form = &content["multipart/form-data"];
    assert_eq!(form["schema"]["properties"]["init_image"]["format"], "binary");
    assert_eq!(form["schema"]["properties"]["k_sampler_steps"]["maximum"], 10000);
    assert!(form["schema"]["properties"]["priority"].is_object());
    assert!(
        form["encoding"]["voice_audio"]["contentType"]
            .as_str()
            .unwrap()
            .contains("audio/flac")
    );
    assert_eq!(form["example"]["k_sampler_steps"], 20);
    assert!(
        post["description"]
            .as_str()
            .unwrap()
            .contains("-F init_image=@example.png"),
        "{}",
        post["description"]
    );
    assert!(post["responses"]["413"].is_object());
    h.server.stop().await;
}

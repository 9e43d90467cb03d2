//! Queue and API benchmarks against a zero-work ComfyUI stand-in.
//!
//! Run: `cargo bench -p comfydock-serve --bench queue` (add `-- --jobs N` to change the sample,
//! `--postgres` to measure the latency on a PostgreSQL queue too; needs PostgreSQL's server binaries).
//! Prints:
//! - enqueue throughput straight into the SQLite store, and through `POST /v1/workflows/{name}/jobs`
//!   (1 and 8 concurrent clients);
//! - per-job latency p50/p99: direct ComfyUI round trip (prompt → WS success → history → /view)
//!   versus the same job through comfydock (POST → event WebSocket `succeeded`), and the difference
//!   = what the queue, worker and API add;
//! - throughput at 8 zero-work backends: 8 clients calling one backend each directly, versus one
//!   serve instance with the 8 backends (one worker each) draining the same number of jobs.
//! - the same with 8 backends that work 20 ms per prompt: whether serve keeps every backend busy
//!   (with zero-work backends on a small machine, serve and the stand-ins share the same cores, so
//!   that figure measures serve's CPU cost per job rather than its scheduling).

#![allow(clippy::print_stdout)] // a benchmark binary reports on stdout

use std::sync::Arc;
use std::time::{Duration, Instant};

use comfydock_serve::comfyui::{ComfyClient, next_message, output_files};
use comfydock_serve::job::{JobStatus, NewJob};
use comfydock_serve::store::JobStore;
use comfydock_serve::store::sqlite::SqliteStore;
use comfydock_serve::{ServeOptions, WorkflowSource};
use comfydock_test::comfyui_server::{ComfyUiServer, Script};
use futures::StreamExt as _;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

fn workflow() -> Value {
    json!({
        "1": {"class_type": "LoadImage", "_meta": {"title": "Source"}, "inputs": {"image": "example.png"}},
        "2": {"class_type": "SaveImage", "_meta": {"title": "Save"}, "inputs": {"images": ["1", 0], "filename_prefix": "bench"}},
    })
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

#[allow(clippy::cast_precision_loss)]
fn rate(count: usize, elapsed: Duration) -> String {
    format!("{:.0} jobs/s", count as f64 / elapsed.as_secs_f64())
}

async fn direct_round_trip(client: &ComfyClient, prompt: &Value) -> Duration {
    let start = Instant::now();
    let client_id = uuid::Uuid::new_v4().to_string();
    let prompt_id = uuid::Uuid::new_v4().to_string();
    let mut socket = client.connect(&client_id).await.unwrap();
    client.submit(prompt, &client_id, &prompt_id).await.unwrap();
    while let Some(Ok(message)) = next_message(&mut socket).await {
        // ComfyUI writes the history after `execution_success`; `executing {node: null}` follows it.
        if message["type"] == "executing"
            && message["data"]["node"].is_null()
            && message["data"]["prompt_id"] == prompt_id.as_str()
        {
            break;
        }
    }
    let entry = client.history(&prompt_id).await.unwrap().unwrap();
    for (_, _, file) in output_files(&entry["outputs"]) {
        // A client downloads the file, as serve does.
        client.view(&file).await.unwrap().unwrap().bytes().await.unwrap();
    }
    start.elapsed()
}

async fn through_comfydock(http: &reqwest::Client, base: &str, index: usize) -> Duration {
    let start = Instant::now();
    let job: Value = http
        .post(format!("{base}/v1/workflows/bench/jobs"))
        .json(&json!({"params": {"save_filename_prefix": format!("b{index}")}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = job["id"].as_str().unwrap();
    let url = format!("{}/v1/jobs/{id}/events", base.replace("http", "ws"));
    let (mut socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    while let Some(Ok(message)) = socket.next().await {
        if let Message::Text(text) = message
            && text.as_str().contains("\"kind\":\"succeeded\"")
        {
            break;
        }
    }
    start.elapsed()
}

/// Per-job latency, one job at a time: the direct round trip and the same job through serve at
/// `base` (queue on `queue`), then what serve adds.
async fn added_latency(
    client: &ComfyClient,
    prompt: &Value,
    http: &reqwest::Client,
    base: &str,
    jobs: usize,
    queue: &str,
) {
    for _ in 0..10 {
        direct_round_trip(client, prompt).await;
        through_comfydock(http, base, 0).await;
    }
    let mut direct = Vec::with_capacity(jobs);
    let mut via_api = Vec::with_capacity(jobs);
    for i in 0..jobs {
        direct.push(direct_round_trip(client, prompt).await);
        via_api.push(through_comfydock(http, base, i).await);
    }
    // Each served job next to the direct run just before it: the distribution of what serve adds.
    let mut added: Vec<Duration> = direct
        .iter()
        .zip(&via_api)
        .map(|(direct, served)| served.saturating_sub(*direct))
        .collect();
    added.sort();
    direct.sort();
    via_api.sort();
    let (direct_p50, direct_p99) = (percentile(&direct, 0.5), percentile(&direct, 0.99));
    let (served_p50, served_p99) = (percentile(&via_api, 0.5), percentile(&via_api, 0.99));
    println!(
        "latency, direct ComfyUI round trip ({jobs} jobs): p50 {} p99 {}",
        ms(direct_p50),
        ms(direct_p99)
    );
    println!(
        "latency, through comfydock serve   ({jobs} jobs, {queue} queue): p50 {} p99 {}",
        ms(served_p50),
        ms(served_p99)
    );
    println!(
        "added latency per job ({queue}): p50 {} p99 {} (percentiles of served minus direct); paired, each served job minus the direct run before it: p50 {} p99 {}",
        ms(served_p50.saturating_sub(direct_p50)),
        ms(served_p99.saturating_sub(direct_p99)),
        ms(percentile(&added, 0.5)),
        ms(percentile(&added, 0.99))
    );
}

/// `clients` concurrent clients each submit `per_client` jobs to serve at `base`, each as soon as
/// the previous one was accepted (201).
async fn submit_concurrently(
    http: &reqwest::Client,
    base: &str,
    clients: usize,
    per_client: usize,
    tag: &str,
) {
    let mut tasks = Vec::new();
    for c in 0..clients {
        let http = http.clone();
        let url = format!("{base}/v1/workflows/bench/jobs");
        let tag = tag.to_owned();
        tasks.push(tokio::spawn(async move {
            for i in 0..per_client {
                let status = http
                    .post(&url)
                    .json(&json!({"params": {"save_filename_prefix": format!("{tag}{c}-{i}")}}))
                    .send()
                    .await
                    .unwrap()
                    .status();
                assert_eq!(status, 201);
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
}

/// A serve instance for the `bench` workflow on these backends, its store at `db`.
async fn bench_server(
    backends: Vec<String>,
    db: &std::path::Path,
    outputs: std::path::PathBuf,
) -> (comfydock_serve::RunningServer, Arc<dyn JobStore>) {
    let store: Arc<dyn JobStore> = Arc::new(SqliteStore::open(db).unwrap());
    bench_server_on(backends, store, outputs).await
}

/// The same on any queue store.
async fn bench_server_on(
    backends: Vec<String>,
    store: Arc<dyn JobStore>,
    outputs: std::path::PathBuf,
) -> (comfydock_serve::RunningServer, Arc<dyn JobStore>) {
    let mut options = ServeOptions::new(
        "127.0.0.1:0".parse().unwrap(),
        backends,
        vec![WorkflowSource {
            name: "bench".into(),
            workflow: workflow(),
            expose: None,
        }],
        outputs,
    );
    options.worker.poll = Duration::from_millis(50);
    let server = comfydock_serve::start(options, Arc::clone(&store)).await.unwrap();
    (server, store)
}

/// Jobs per second: `total` jobs run directly by 8 clients (one per backend, one job at a time),
/// then the same number drained by one serve instance with the 8 backends.
async fn throughput(
    backends: &[ComfyUiServer],
    prompt: &Value,
    total: usize,
    db: &std::path::Path,
    dir: &std::path::Path,
) -> (f64, f64) {
    let per_backend = total / backends.len();
    let start = Instant::now();
    let mut tasks = Vec::new();
    for backend in backends {
        let client = ComfyClient::new(&backend.url());
        let prompt = prompt.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..per_backend {
                direct_round_trip(&client, &prompt).await;
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    #[allow(clippy::cast_precision_loss)]
    let direct = total as f64 / start.elapsed().as_secs_f64();

    let (server, store) = bench_server(
        backends.iter().map(ComfyUiServer::url).collect(),
        db,
        dir.join(format!(
            "outputs-{}",
            db.file_stem().unwrap_or_default().display()
        )),
    )
    .await;
    let base = format!("http://{}", server.addr());
    let start = Instant::now();
    // 8 clients submit as fast as serve accepts; the workers start on the first job at once.
    submit_concurrently(&reqwest::Client::new(), &base, 8, per_backend, "t").await;
    loop {
        let stats = store.stats().await.unwrap();
        let done = stats.count(JobStatus::Succeeded);
        let unfinished = stats.jobs.iter().any(|(_, status, n)| {
            *n > 0
                && !matches!(
                    status,
                    JobStatus::Succeeded | JobStatus::Queued | JobStatus::Running
                )
        });
        assert!(!unfinished, "a job failed: {:?}", stats.jobs);
        if done >= total as u64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    #[allow(clippy::cast_precision_loss)]
    let through_serve = total as f64 / start.elapsed().as_secs_f64();
    server.stop().await;
    (direct, through_serve)
}

fn main() {
    let jobs: usize = std::env::args()
        .skip_while(|a| a != "--jobs")
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(300);
    let comfy = ComfyUiServer::start_with(Arc::new(|_: &Value| Script::instant()));
    let runtime = comfydock_serve::server::runtime().unwrap();
    runtime.block_on(async {
        let dir = tempfile::tempdir().unwrap();

        // 1. Enqueue straight into the store.
        let store = SqliteStore::open(&dir.path().join("raw.db")).unwrap();
        let count = jobs * 10;
        let start = Instant::now();
        for i in 0..count {
            store
                .enqueue(NewJob::new("bench", json!({"i": i})))
                .await
                .unwrap();
        }
        println!(
            "store enqueue (SQLite, sequential): {} ({count} jobs)",
            rate(count, start.elapsed())
        );

        // A serve instance whose worker is idle-free: no backend work at all.
        let (server, _) = bench_server(vec![comfy.url()], &dir.path().join("queue.db"), dir.path().join("outputs")).await;
        let base = format!("http://{}", server.addr());
        let http = reqwest::Client::new();

        // 2. Per-job latency, one job at a time.
        let client = ComfyClient::new(&comfy.url());
        let prompt = Value::Object(
            comfydock_serve::params::WorkflowApi::derive(
                "bench",
                &workflow(),
                &client.object_info().await.unwrap(),
                None,
            )
            .unwrap()
            .prompt,
        );
        added_latency(&client, &prompt, &http, &base, jobs, "SQLite").await;
        server.stop().await;

        // 2b. The same on a PostgreSQL queue (`--postgres`; needs PostgreSQL's server binaries).
        if std::env::args().any(|a| a == "--postgres") {
            let postgres = comfydock_test::postgres::PostgresServer::start();
            let url = postgres.create_database("bench");
            let store: Arc<dyn JobStore> = Arc::new(
                comfydock_serve::store::postgres::PostgresStore::connect(&url)
                    .await
                    .unwrap(),
            );
            let (server, _) = bench_server_on(vec![comfy.url()], store, dir.path().join("outputs-pg")).await;
            let base = format!("http://{}", server.addr());
            added_latency(&client, &prompt, &http, &base, jobs, "PostgreSQL").await;
            server.stop().await;
        }

        // 3. Throughput at 8 backends: direct clients versus serve draining its queue.
        let backends: Vec<ComfyUiServer> = (0..8)
            .map(|_| ComfyUiServer::start_with(Arc::new(|_: &Value| Script::instant())))
            .collect();
        let total = (jobs * 2).div_ceil(8) * 8;
        let (direct_rate, served_rate) =
            throughput(&backends, &prompt, total, &dir.path().join("eight.db"), dir.path()).await;
        println!(
            "throughput at 8 zero-work backends ({total} jobs): direct {direct_rate:.0} jobs/s, through serve {served_rate:.0} jobs/s ({:.1} % of direct)",
            served_rate / direct_rate * 100.0
        );
        drop(backends);

        // 4. The same with backends that work 20 ms per prompt (10 ms per node; still far
        // shorter than any real image job): does serve keep every backend busy?
        let backends: Vec<ComfyUiServer> = (0..8)
            .map(|_| {
                ComfyUiServer::start_with(Arc::new(|_: &Value| Script {
                    step_delay: Duration::from_millis(10),
                    ..Script::instant()
                }))
            })
            .collect();
        let total = jobs.div_ceil(8) * 8;
        let (direct_rate, served_rate) =
            throughput(&backends, &prompt, total, &dir.path().join("eight-busy.db"), dir.path()).await;
        println!(
            "throughput at 8 backends working 20 ms per prompt ({total} jobs): direct {direct_rate:.0} jobs/s, through serve {served_rate:.0} jobs/s ({:.1} % of direct)",
            served_rate / direct_rate * 100.0
        );
        drop(backends);

        let (server, _) = bench_server(vec![comfy.url()], &dir.path().join("enqueue.db"), dir.path().join("outputs-enqueue")).await;
        let base = format!("http://{}", server.addr());

        // 5. Enqueue through the API (jobs also run meanwhile).
        for clients in [1usize, 8] {
            let per_client = jobs * 2 / clients;
            let start = Instant::now();
            submit_concurrently(&http, &base, clients, per_client, "c").await;
            println!(
                "API enqueue (POST, {clients} client(s)): {} ({} jobs)",
                rate(per_client * clients, start.elapsed()),
                per_client * clients
            );
        }
        server.stop().await;
    });
}

//! `comfydock serve` as a real process against ComfyUI stand-ins: crash recovery with SQLite,
//! two instances sharing one PostgreSQL queue (and their outputs in an S3 bucket), and `serve keys`.

use std::collections::{BTreeMap, HashSet};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use comfydock_test::comfyui_server::{ComfyUiServer, Script};
use comfydock_test::context::TestContext;
use comfydock_test::postgres::PostgresServer;
use comfydock_test::s3_server::S3Server;
use serde_json::{Value, json};

use crate::common::{context, stderr, stdout};
use crate::snapshot::comfydock_snapshot;

/// LoadImage → SaveImage; the save prefix tells jobs apart.
fn write_workflow(dir: &Path) -> std::path::PathBuf {
    let workflow = json!({
        "1": {"class_type": "LoadImage", "_meta": {"title": "Source"}, "inputs": {"image": "example.png"}},
        "2": {"class_type": "SaveImage", "_meta": {"title": "Save"}, "inputs": {"images": ["1", 0], "filename_prefix": "x"}},
    });
    let path = dir.join("pipeline.json");
    fs_err::write(&path, workflow.to_string()).unwrap();
    path
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `serve` process; SIGKILLed when dropped.
struct Serve {
    child: Child,
    base: String,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_serve(ctx: &TestContext, port: u16, db: &str, backends: &[&ComfyUiServer], outputs: &Path) -> Serve {
    start_serve_with(ctx, port, db, backends, outputs, &["--lease-secs", "2"])
}

/// [`start_serve`] with other settings (`--lease-secs` must be among them).
fn start_serve_with(
    ctx: &TestContext,
    port: u16,
    db: &str,
    backends: &[&ComfyUiServer],
    outputs: &Path,
    settings: &[&str],
) -> Serve {
    start_serve_env(ctx, port, db, backends, outputs.as_os_str(), settings, &[])
}

/// [`start_serve_with`] with `--outputs` as given (a folder or an `s3://` URL) and these
/// variables set (every `AWS_*` variable of the test's own environment removed).
fn start_serve_env(
    ctx: &TestContext,
    port: u16,
    db: &str,
    backends: &[&ComfyUiServer],
    outputs: &std::ffi::OsStr,
    settings: &[&str],
    env: &[(&str, String)],
) -> Serve {
    let workflow = write_workflow(ctx.path());
    let mut cmd = ctx.std_command(env!("CARGO_BIN_EXE_comfydock"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("AWS_") {
            cmd.env_remove(name);
        }
    }
    cmd.envs(env.iter().map(|(k, v)| (k, v)));
    cmd.arg("serve")
        .arg("--workflow")
        .arg(&workflow)
        .args(["--listen", &format!("127.0.0.1:{port}"), "--db", db])
        .arg("--outputs")
        .arg(outputs)
        .args(settings)
        .args(["--retry-base-ms", "100", "--poll-ms", "50"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for backend in backends {
        cmd.args(["--comfyui", &backend.url()]);
    }
    let child = cmd.spawn().expect("start comfydock serve");
    let serve = Serve {
        child,
        base: format!("http://127.0.0.1:{port}"),
    };
    let http = reqwest::blocking::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while http.get(format!("{}/healthz", serve.base)).send().is_err() {
        assert!(Instant::now() < deadline, "serve did not come up on port {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
    serve
}

fn submit(http: &reqwest::blocking::Client, base: &str, prefix: &str) -> String {
    let response = http
        .post(format!("{base}/v1/workflows/pipeline/jobs"))
        .json(&json!({"params": {"save_filename_prefix": prefix}}))
        .send()
        .unwrap();
    assert_eq!(response.status(), 201);
    response.json::<Value>().unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn count_status(http: &reqwest::blocking::Client, base: &str, status: &str) -> usize {
    http.get(format!("{base}/v1/jobs?status={status}&limit=1000"))
        .send()
        .and_then(reqwest::blocking::Response::json::<Value>)
        .map_or(0, |body| body["jobs"].as_array().map_or(0, Vec::len))
}

fn wait_for_succeeded(http: &reqwest::blocking::Client, base: &str, want: usize, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let done = count_status(http, base, "succeeded");
        if done >= want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "only {done} of {want} jobs succeeded in {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The save prefixes of every prompt a backend received.
fn prefixes(backend: &ComfyUiServer) -> Vec<String> {
    backend
        .received()
        .iter()
        .map(|body| {
            body["prompt"]["2"]["inputs"]["filename_prefix"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect()
}

/// The save prefix of each prompt id a backend received.
fn prefix_of_prompt(backends: &[&ComfyUiServer]) -> BTreeMap<String, String> {
    backends
        .iter()
        .flat_map(|backend| backend.received())
        .map(|body| {
            (
                body["prompt_id"].as_str().unwrap().to_owned(),
                body["prompt"]["2"]["inputs"]["filename_prefix"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            )
        })
        .collect()
}

/// A random number (the kill points differ per run; failures name the seed, `COMFYDOCK_KILL_SEED` reruns it).
fn random_seed() -> u64 {
    use std::hash::{BuildHasher as _, Hasher as _};
    std::env::var("COMFYDOCK_KILL_SEED")
        .ok()
        .and_then(|seed| seed.parse().ok())
        .unwrap_or_else(|| {
            let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
            hasher.write_u64(u64::from(std::process::id()));
            hasher.finish()
        })
}

#[test]
fn serve_killed_with_sigkill_at_random_points_runs_every_job_exactly_once_on_the_backends() {
    let ctx = context();
    let slow = Arc::new(|_: &Value| Script {
        steps: 0,
        step_delay: Duration::from_millis(40),
        ..Script::default()
    });
    let a = ComfyUiServer::start_with(slow.clone());
    let b = ComfyUiServer::start_with(slow);
    let db = format!("sqlite:{}", ctx.path().join("queue.db").display());
    let outputs = ctx.path().join("outputs");
    let port = free_port();
    let http = reqwest::blocking::Client::new();
    // Kills use up attempts of the jobs they interrupt (their leases run out): allow enough.
    let settings = ["--lease-secs", "2", "--max-attempts", "10"];

    let seed = random_seed();
    // Three kills, each after a random number of further successes (1..=20).
    let kill_after: Vec<usize> = (0..3_u64)
        .map(|i| 1 + usize::try_from(seed.rotate_left(u32::try_from(i).unwrap() * 21) % 20).unwrap())
        .collect();

    let mut serve = start_serve_with(&ctx, port, &db, &[&a, &b], &outputs, &settings);
    let ids: Vec<String> = (0..100)
        .map(|i| submit(&http, &serve.base, &format!("job-{i}")))
        .collect();
    let mut target = 0;
    let mut interrupted_runs = 0;
    for after in &kill_after {
        target += after;
        wait_for_succeeded(&http, &serve.base, target, Duration::from_mins(2));
        let running = count_status(&http, &serve.base, "running");
        interrupted_runs += running;
        drop(serve); // SIGKILL with jobs queued and running on the backends
        serve = start_serve_with(&ctx, port, &db, &[&a, &b], &outputs, &settings);
    }
    assert!(
        target < 100,
        "the kills happen mid-queue (after {target} successes)"
    );
    wait_for_succeeded(&http, &serve.base, 100, Duration::from_mins(3));

    let mut adopted = 0;
    for id in &ids {
        let job: Value = http
            .get(format!("{}/v1/jobs/{id}", serve.base))
            .send()
            .unwrap()
            .json()
            .unwrap();
        assert_eq!(job["status"], "succeeded", "{job}");
        let log: Value = http
            .get(format!("{}/v1/jobs/{id}/events", serve.base))
            .send()
            .unwrap()
            .json()
            .unwrap();
        let kinds: Vec<&str> = log["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["kind"].as_str().unwrap())
            .collect();
        assert_eq!(
            kinds.iter().filter(|k| **k == "succeeded").count(),
            1,
            "job {id}: {kinds:?}"
        );
        adopted += kinds.iter().filter(|k| **k == "adopted").count();
        let output = &job["outputs"][0];
        let file = http
            .get(format!("{}{}", serve.base, output["url"].as_str().unwrap()))
            .send()
            .unwrap();
        assert_eq!(file.status(), 200);
        assert!(file.bytes().unwrap().starts_with(b"\x89PNG"));
    }
    if interrupted_runs > 0 {
        assert!(
            adopted >= 1,
            "jobs running at a kill were taken over on their backend, not submitted again"
        );
    }

    // Exactly once on the backends: every job's prompt was sent once and ran once.
    let prefixes = prefix_of_prompt(&[&a, &b]);
    let mut sent: BTreeMap<&str, usize> = BTreeMap::new();
    for prefix in prefixes.values() {
        *sent.entry(prefix.as_str()).or_default() += 1;
    }
    assert_eq!(sent.len(), 100, "every job reached a backend");
    let resent: Vec<_> = sent.iter().filter(|(_, n)| **n > 1).collect();
    assert!(resent.is_empty(), "prompts sent twice: {resent:?}");
    let mut runs: BTreeMap<String, usize> = BTreeMap::new();
    for (prompt_id, count) in a.runs_per_prompt().into_iter().chain(b.runs_per_prompt()) {
        *runs.entry(prefixes[&prompt_id].clone()).or_default() += count;
    }
    assert_eq!(runs.len(), 100, "every job ran");
    let twice: Vec<_> = runs.iter().filter(|(_, n)| **n != 1).collect();
    assert!(
        twice.is_empty(),
        "jobs run more than once: {twice:?} (seed {seed})"
    );
    let outcomes: HashSet<String> = a
        .executions()
        .into_iter()
        .chain(b.executions())
        .map(|e| e.outcome)
        .collect();
    assert_eq!(outcomes, HashSet::from(["success".to_owned()]));
}

#[test]
fn sigterm_drains_interrupts_the_running_prompt_releases_the_job_and_exits_0() {
    let ctx = context();
    // Long enough that the prompt is still running when the signal comes.
    let backend = ComfyUiServer::start_with(Arc::new(|_: &Value| Script {
        steps: 0,
        step_delay: Duration::from_secs(3),
        ..Script::default()
    }));
    let db = format!("sqlite:{}", ctx.path().join("queue.db").display());
    let outputs = ctx.path().join("outputs");
    let port = free_port();
    let http = reqwest::blocking::Client::new();
    // A lease far longer than the test: the job only runs again because it was released.
    let settings = ["--lease-secs", "600"];
    let mut serve = start_serve_with(&ctx, port, &db, &[&backend], &outputs, &settings);
    let id = submit(&http, &serve.base, "drained");
    let deadline = Instant::now() + Duration::from_mins(1);
    while backend.running().is_none() {
        assert!(Instant::now() < deadline, "the prompt never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    let first_prompt = backend.running().unwrap();
    let signalled = std::process::Command::new("kill")
        .args(["-TERM", &serve.child.id().to_string()])
        .status()
        .unwrap();
    assert!(signalled.success());
    let status = serve.child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "SIGTERM is a clean stop");
    // The prompt is interrupted on the backend (after the node it is in).
    let deadline = Instant::now() + Duration::from_mins(1);
    while backend.executions().is_empty() {
        assert!(Instant::now() < deadline, "the prompt never ended");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        backend.executions()[0],
        comfydock_test::comfyui_server::Execution {
            prompt_id: first_prompt.clone(),
            client_id: backend.received()[0]["client_id"].as_str().map(str::to_owned),
            outcome: "interrupted".into(),
        }
    );
    drop(serve);

    // The job went back to the queue at once: a new instance runs it despite the long lease.
    backend.set_script(Arc::new(|_: &Value| Script::instant()));
    let serve = start_serve_with(&ctx, port, &db, &[&backend], &outputs, &settings);
    wait_for_succeeded(&http, &serve.base, 1, Duration::from_mins(1));
    let log: Value = http
        .get(format!("{}/v1/jobs/{id}/events", serve.base))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let kinds: Vec<&str> = log["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"released"), "{kinds:?}");
    assert!(!kinds.contains(&"retrying"), "no lease ran out: {kinds:?}");
    let job: Value = http
        .get(format!("{}/v1/jobs/{id}", serve.base))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(job["attempts"], 1, "the drained attempt is not counted: {job}");
    let successes: Vec<_> = backend
        .executions()
        .into_iter()
        .filter(|e| e.outcome == "success")
        .collect();
    assert_eq!(successes.len(), 1, "{:?}", backend.executions());
    assert_ne!(
        successes[0].prompt_id, first_prompt,
        "the interrupted prompt was replaced"
    );
}

#[test]
fn two_serve_instances_share_one_postgres_queue_without_losing_or_repeating_jobs() {
    let ctx = context();
    let postgres = PostgresServer::start();
    let db = postgres.create_database("serve");
    let a = ComfyUiServer::start_with(Arc::new(|_: &Value| Script::instant()));
    let b = ComfyUiServer::start_with(Arc::new(|_: &Value| Script::instant()));
    let outputs = ctx.path().join("outputs");
    let first = start_serve(&ctx, free_port(), &db, &[&a], &outputs.join("a"));
    let second = start_serve(&ctx, free_port(), &db, &[&b], &outputs.join("b"));
    let http = reqwest::blocking::Client::new();
    for i in 0..1000 {
        let base = if i % 2 == 0 { &first.base } else { &second.base };
        submit(&http, base, &format!("job-{i}"));
    }
    wait_for_succeeded(&http, &first.base, 1000, Duration::from_mins(5));
    let all: Vec<String> = prefixes(&a).into_iter().chain(prefixes(&b)).collect();
    let mut per_job: BTreeMap<&str, usize> = BTreeMap::new();
    for prefix in &all {
        *per_job.entry(prefix.as_str()).or_default() += 1;
    }
    assert_eq!(per_job.len(), 1000, "no job lost");
    let repeated: Vec<_> = per_job.iter().filter(|(_, n)| **n > 1).collect();
    assert!(repeated.is_empty(), "jobs run twice: {repeated:?}");
    assert!(
        !prefixes(&a).is_empty() && !prefixes(&b).is_empty(),
        "both instances took jobs"
    );
    assert_eq!(
        count_status(&http, &second.base, "succeeded"),
        1000,
        "both instances see one queue"
    );
}

#[test]
fn two_instances_on_one_postgres_queue_serve_each_others_outputs_from_an_s3_bucket() {
    let ctx = context();
    let postgres = PostgresServer::start();
    let db = postgres.create_database("serve");
    let s3 = S3Server::start();
    s3.create_bucket("shared");
    // Jobs long enough that both instances' single workers take some; outputs over one 5 MiB
    // part, so each goes up as a multipart upload.
    let size = 6 * 1024 * 1024 + 3;
    let script = Arc::new(move |_: &Value| Script {
        steps: 3,
        step_delay: Duration::from_millis(100),
        output_size: size,
        ..Script::default()
    });
    let a = ComfyUiServer::start_with(script.clone());
    let b = ComfyUiServer::start_with(script);
    let env = s3.env();
    let outputs = std::ffi::OsStr::new("s3://shared/serve");
    let settings = ["--lease-secs", "5"];
    let first = start_serve_env(&ctx, free_port(), &db, &[&a], outputs, &settings, &env);
    let second = start_serve_env(&ctx, free_port(), &db, &[&b], outputs, &settings, &env);
    let http = reqwest::blocking::Client::new();
    let ids: Vec<String> = (0..6)
        .map(|i| {
            let base = if i % 2 == 0 { &first.base } else { &second.base };
            submit(&http, base, &format!("job-{i}"))
        })
        .collect();
    wait_for_succeeded(&http, &first.base, ids.len(), Duration::from_mins(2));
    let ran_on_a: HashSet<String> = prefixes(&a).into_iter().collect();
    let mut fetched = [0, 0];
    for id in &ids {
        let job: Value = http
            .get(format!("{}/v1/jobs/{id}", first.base))
            .send()
            .unwrap()
            .json()
            .unwrap();
        let prefix = job["params"]["save_filename_prefix"].as_str().unwrap();
        // Through the instance that did not run the job.
        let (ran, other, backend) = if ran_on_a.contains(prefix) {
            (0, &second, &a)
        } else {
            (1, &first, &b)
        };
        let output = &job["outputs"][0];
        let name = output["name"].as_str().unwrap();
        let response = http
            .get(format!("{}{}", other.base, output["url"].as_str().unwrap()))
            .send()
            .unwrap();
        assert_eq!(
            response.status(),
            200,
            "job {id}: {name} through the other instance"
        );
        let bytes = response.bytes().unwrap();
        assert_eq!(bytes.len(), size);
        assert!(
            bytes[..] == backend.file("output", "", name).unwrap()[..],
            "job {id}: {name} came back changed"
        );
        fetched[ran] += 1;
    }
    assert!(
        fetched[0] > 0 && fetched[1] > 0,
        "each instance ran jobs the other served ({fetched:?})"
    );
    assert_eq!(
        s3.keys("shared", "serve/").len(),
        ids.len(),
        "one object per output"
    );
    assert_eq!(s3.open_multipart_uploads("shared"), 0);
}

#[test]
fn serve_refuses_to_start_without_credentials_for_its_bucket() {
    let ctx = context();
    let backend = ComfyUiServer::start();
    let workflow = write_workflow(ctx.path());
    let mut cmd = ctx.std_command(env!("CARGO_BIN_EXE_comfydock"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("AWS_") {
            cmd.env_remove(name);
        }
    }
    let output = cmd
        .arg("serve")
        .arg("--workflow")
        .arg(&workflow)
        .args(["--comfyui", &backend.url(), "--listen", "127.0.0.1:0"])
        .args(["--outputs", "s3://shared/serve"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("no credentials for `s3://shared/serve`: AWS_ACCESS_KEY_ID is not set"),
        "{stderr}"
    );
    assert!(
        stderr.contains("hint: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"),
        "{stderr}"
    );
}

/// API keys and their shown prefixes are random.
const KEY_FILTERS: [(&str, &str); 2] = [
    (r"\bcdk_[0-9A-Za-z]{64}\b", "cdk_[KEY]"),
    (r"\bcdk_[0-9A-Za-z]{8}\b", "cdk_[PREFIX]"),
];

#[test]
fn serve_keys_create_list_revoke() {
    let ctx = context();
    let db = format!("sqlite:{}", ctx.path().join("keys.db").display());
    let created = comfydock_snapshot!(
        ctx,
        ctx.command().args(["serve", "keys", "create", "ci", "--db", &db]),
        filters = KEY_FILTERS
    );
    assert!(created.status.success());
    let key = stdout(&created).trim().to_owned();
    assert!(key.starts_with("cdk_") && key.len() == 68, "{key}");
    comfydock_snapshot!(
        ctx,
        ctx.command().args(["serve", "keys", "list", "--db", &db]),
        filters = KEY_FILTERS
    );
    let listed = comfydock_snapshot!(
        ctx,
        ctx.command()
            .args(["--json", "serve", "keys", "list", "--db", &db]),
        filters = KEY_FILTERS
    );
    let keys: Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(keys[0]["name"], "ci");
    assert!(!stdout(&listed).contains(&key), "the secret is never listed");
    let out = comfydock_snapshot!(
        ctx,
        ctx.command().args(["serve", "keys", "revoke", "ci", "--db", &db])
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let out = comfydock_snapshot!(
        ctx,
        ctx.command().args(["serve", "keys", "revoke", "ci", "--db", &db])
    );
    assert!(!out.status.success());
    // Without keys, a non-loopback address is refused.
    let comfy = ComfyUiServer::start();
    let workflow = write_workflow(ctx.path());
    let refused = comfydock_snapshot!(
        ctx,
        ctx.command()
            .arg("serve")
            .arg("--workflow")
            .arg(&workflow)
            .args(["--comfyui", &comfy.url(), "--listen", "0.0.0.0:0", "--db", &db])
            .arg("--outputs")
            .arg(ctx.path().join("outputs"))
    );
    assert!(!refused.status.success());
    // A database URL that is neither sqlite nor postgres is a usage error.
    let out = comfydock_snapshot!(
        ctx,
        ctx.command()
            .args(["serve", "keys", "list", "--db", "mysql://db"])
    );
    assert!(!out.status.success());
}

#[test]
fn spawn_starts_the_environments_comfyui_and_the_manifest_names_the_parameters() {
    let sb = crate::env_support::EnvSandbox::new();
    sb.create("a", "v0.3.41");
    let env = sb.env_dir("a");
    let workflows = env.join("ComfyUI/user/default/workflows");
    fs_err::create_dir_all(&workflows).unwrap();
    let workflow = json!({
        "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 640, "height": 512, "batch_size": 1}},
        "9": {"class_type": "SaveImage", "inputs": {"images": ["5", 0], "filename_prefix": "portrait"}},
    });
    fs_err::write(workflows.join("portrait.json"), workflow.to_string()).unwrap();
    let manifest = env.join(".cec/pyproject.toml");
    let mut text = fs_err::read_to_string(&manifest).unwrap();
    text.push_str(
        "\n[tool.comfydock.api.portrait]\nexpose = [\"5.width\", \"SaveImage.filename_prefix\"]\n\
         [tool.comfydock.api.portrait.names]\n\"5.width\" = \"width\"\n",
    );
    fs_err::write(&manifest, text).unwrap();

    let (comfy_port, port) = (free_port(), free_port());
    let mut child = sb
        .ctx
        .std_command(env!("CARGO_BIN_EXE_comfydock"))
        .args(["-e", "a", "serve", "--workflow", "portrait", "--spawn", "1"])
        .args([
            "--spawn-port",
            &comfy_port.to_string(),
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .arg("--db")
        .arg(format!("sqlite:{}", sb.ctx.path().join("q.db").display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let http = reqwest::blocking::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_mins(2);
    while http.get(format!("{base}/healthz")).send().is_err() {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
            panic!("serve exited with {status}: {err}");
        }
        assert!(Instant::now() < deadline, "serve --spawn did not come up");
        std::thread::sleep(Duration::from_millis(100));
    }
    let doc: Value = http
        .get(format!("{base}/openapi.json"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let params = doc["components"]["schemas"]["portrait_params"]["properties"]
        .as_object()
        .unwrap();
    let names: Vec<&str> = params.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        ["width", "save_image_filename_prefix"],
        "exposure and names from the manifest"
    );
    assert_eq!(params["width"]["default"], 640);
    assert_eq!(params["width"]["minimum"], 16);
    assert_eq!(http.get(format!("{base}/readyz")).send().unwrap().status(), 200);
    // The environment serve runs in, for the console: its ComfyUI pin and checkout, its history.
    let summary: Value = http
        .get(format!("{base}/v1/environment"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(summary["name"], "a");
    assert_eq!(summary["comfyui"]["ref"], "v0.3.41");
    let pinned = summary["comfyui"]["commit"].as_str().unwrap();
    assert_eq!(pinned.len(), 40, "{summary}");
    assert_eq!(summary["comfyui"]["checkout"], pinned, "checked out at the pin");
    assert!(summary["nodes"].is_array() && summary["models"].is_array());
    assert!(
        !summary["history"].as_array().unwrap().is_empty(),
        "the .cec history: {summary}"
    );
    assert_eq!(
        summary["uncommitted"],
        json!(["pyproject.toml"]),
        "the [tool.comfydock.api] table written above"
    );
    let console = http.get(format!("{base}/console/")).send().unwrap();
    assert_eq!(console.status(), 200, "the console is on by default");
    let stats: Value = http
        .get(format!("http://127.0.0.1:{comfy_port}/system_stats"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(
        stats["system"]["comfyui_version"], "0.3.41",
        "the environment's ComfyUI runs"
    );

    // Ctrl-C stops serve and the ComfyUI it started.
    let pid = child.id().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "serve did not stop on SIGINT");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", comfy_port)).is_err(),
        "the spawned ComfyUI is stopped with serve"
    );
}

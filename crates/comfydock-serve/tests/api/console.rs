//! The web console in a real browser (Debian's `chromium`, driven through `chromedriver` over
//! WebDriver with fantoccini) against the ComfyUI protocol stand-in, and the API endpoints the
//! console uses beyond the job API (retry, environment). Each browser test writes screenshots of
//! the views it visits to `<target>/tmp/console-screenshots/` (the path is printed).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use comfydock_test::comfyui_server::{ComfyUiServer, Script, png_image};
use fantoccini::{Client, ClientBuilder, Locator};
use futures::StreamExt as _;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use super::{Harness, log_kinds, start_with_key};

/// Submits a job that serve must accept.
async fn queued(h: &Harness, body: Value) -> Value {
    let (status, job) = h.submit(body).await;
    assert_eq!(status, 201, "{job}");
    job
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A program on PATH (or in /usr/bin).
fn find_program(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/lib/chromium")])
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// A `chromedriver` process on a free port, killed when dropped.
struct Chromedriver {
    child: Child,
    url: String,
}

impl Chromedriver {
    fn start() -> Self {
        let program = find_program("chromedriver").expect(
            "chromedriver is needed for the console's browser tests: install Debian's `chromium` and \
             `chromium-driver` (`apt-get install chromium chromium-driver`; .ci/run does)",
        );
        let port = free_port();
        let child = Command::new(program)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not listen on {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
        }
    }
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A headless chromium session, with the screenshots of this test going to `shots`.
struct Browser {
    client: Client,
    shots: PathBuf,
    _profile: tempfile::TempDir,
    _driver: Chromedriver,
}

impl Browser {
    async fn open(test: &str) -> Self {
        let driver = Chromedriver::start();
        let profile = tempfile::tempdir().unwrap();
        let mut options = json!({"args": [
            "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--window-size=1280,1000", "--no-first-run", "--disable-extensions",
            format!("--user-data-dir={}", profile.path().display()),
        ]});
        if let Some(chromium) = find_program("chromium") {
            options["binary"] = json!(chromium);
        }
        let capabilities = json!({"browserName": "chrome", "goog:chromeOptions": options});
        let Value::Object(capabilities) = capabilities else {
            unreachable!()
        };
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&driver.url)
            .await
            .expect("a chromium session through chromedriver");
        let shots = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join("console-screenshots")
            .join(test);
        fs_err::create_dir_all(&shots).unwrap();
        Self {
            client,
            shots,
            _profile: profile,
            _driver: driver,
        }
    }

    async fn goto(&self, url: &str) {
        self.client.goto(url).await.unwrap();
    }

    /// Writes a screenshot of the page as `<name>.png` and says where.
    #[allow(clippy::print_stderr)]
    async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.unwrap();
        assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
        let path = self.shots.join(format!("{name}.png"));
        fs_err::write(&path, png).unwrap();
        eprintln!("screenshot: {}", path.display());
    }

    /// Runs `script` (a function body; `arguments[i]` are `args`) and returns its value.
    async fn js(&self, script: &str, args: Vec<Value>) -> Value {
        self.client.execute(script, args).await.unwrap()
    }

    /// Waits until `script` returns something truthy, and returns it.
    async fn until(&self, what: &str, script: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let value = self
                .client
                .execute(script, Vec::new())
                .await
                .unwrap_or(Value::Null);
            let truthy = match &value {
                Value::Null | Value::Bool(false) => false,
                Value::String(s) => !s.is_empty(),
                Value::Number(n) => n.as_f64() != Some(0.0),
                _ => true,
            };
            if truthy {
                return value;
            }
            if Instant::now() > deadline {
                self.screenshot(&format!("timeout-{}", what.replace(' ', "-")))
                    .await;
                let text = self
                    .js("return document.querySelector('main').innerText", Vec::new())
                    .await;
                panic!(
                    "timed out waiting for {what}; the page shows:\n{}",
                    text.as_str().unwrap_or("")
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn text(&self, css: &str) -> String {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    async fn click(&self, css: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
    }

    /// Replaces the value of an input by typing, as a person would.
    async fn type_into(&self, css: &str, text: &str) {
        let field = self.client.find(Locator::Css(css)).await.unwrap();
        field.clear().await.unwrap();
        field.send_keys(text).await.unwrap();
    }

    /// Signs in on the console's sign-in form.
    async fn sign_in(&self, key: &str) {
        self.until("the sign-in form", "return document.querySelector('#api-key')")
            .await;
        self.type_into("#api-key", key).await;
        self.click("form button[type=submit]").await;
        self.until(
            "the view after signing in",
            "const t = document.querySelector('main h1')?.textContent; return t && t !== 'Sign in' && !document.querySelector('#sign-out').hidden",
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_and_api_refuse_without_a_key_and_open_with_one() {
    let comfy = ComfyUiServer::start();
    let h = start_with_key(&[&comfy], true, |_| {}).await;

    // The pages hold no data and load without a key (like /docs); the API refuses.
    let page = h.http.get(format!("{}/console/", h.base)).send().await.unwrap();
    assert_eq!(page.status(), 200);
    for path in ["/v1/jobs", "/v1/environment", "/v1/workflows/txt2img/jobs"] {
        let status = h
            .http
            .get(format!("{}{path}", h.base))
            .send()
            .await
            .unwrap()
            .status();
        assert!(status == 401 || status == 405, "{path} without a key: {status}");
    }

    let browser = Browser::open("keys").await;
    browser.goto(&format!("{}/console/", h.base)).await;
    browser
        .until("the sign-in form", "return document.querySelector('#api-key')")
        .await;
    assert_eq!(browser.text("main h1").await, "Sign in");
    assert_eq!(
        browser
            .js(
                "return document.querySelectorAll('main .cards li').length",
                Vec::new()
            )
            .await,
        0,
        "no workflows shown before signing in"
    );
    // The page's own requests without a key are refused like anyone's.
    let status = browser
        .js("return fetch('/v1/jobs').then(r => r.status)", Vec::new())
        .await;
    assert_eq!(status, 401);
    let socket = browser
        .js(
            "return new Promise(resolve => { const ws = new WebSocket(`ws://${location.host}/v1/jobs/00000000-0000-7000-8000-000000000000/events`, ['comfydock']); \
             ws.onopen = () => resolve('open'); ws.onerror = () => resolve('refused'); })",
            Vec::new(),
        )
        .await;
    assert_eq!(socket, "refused", "event WebSockets need a key too");
    // Jumping to a view directly still asks for the key.
    browser.goto(&format!("{}/console/#/queue", h.base)).await;
    browser
        .until(
            "the sign-in form on #/queue",
            "return document.querySelector('#api-key')",
        )
        .await;
    browser.screenshot("sign-in").await;

    browser.type_into("#api-key", "cdk_not_a_key_of_this_serve").await;
    browser.click("form button[type=submit]").await;
    let error = browser
        .until(
            "the refused key's error",
            "const e = document.querySelector('#api-key-error'); return e && !e.hidden && e.textContent",
        )
        .await;
    assert!(error.as_str().unwrap().contains("refused"), "{error}");
    assert_eq!(
        browser
            .js(
                "return document.querySelector('#api-key').getAttribute('aria-invalid')",
                Vec::new()
            )
            .await,
        "true"
    );
    browser.screenshot("sign-in-refused").await;

    browser.sign_in(&h.key).await;
    assert_eq!(
        browser.text("main h1").await,
        "Queue",
        "the view asked for, after signing in"
    );
    browser.goto(&format!("{}/console/#/", h.base)).await;
    browser
        .until("the workflows", "return document.querySelector('main .cards h2')")
        .await;
    let cards = browser
        .js(
            "return [...document.querySelectorAll('main .cards h2')].map(e => e.textContent)",
            Vec::new(),
        )
        .await;
    assert_eq!(cards, json!(["txt2img"]));
    browser.screenshot("workflows").await;

    // Signing out forgets the key.
    browser.click("#sign-out").await;
    browser
        .until(
            "the sign-in form after signing out",
            "return document.querySelector('#api-key')",
        )
        .await;
    assert_eq!(
        browser
            .js(
                "return sessionStorage.getItem('comfydock.console.key')",
                Vec::new()
            )
            .await,
        Value::Null
    );
    browser.client.close().await.unwrap();
    h.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_form_shows_field_errors_then_follows_a_job_live_to_its_output_image() {
    let comfy = ComfyUiServer::start_with(Arc::new(|_: &Value| Script {
        steps: 12,
        step_delay: Duration::from_millis(150),
        ..Script::default()
    }));
    let h = start_with_key(&[&comfy], true, |_| {}).await;
    let browser = Browser::open("run").await;
    browser.goto(&format!("{}/console/", h.base)).await;
    browser.sign_in(&h.key).await;
    browser.click("main .cards a.button").await;
    browser
        .until("the form", "return document.querySelector('#run-form')")
        .await;
    assert_eq!(browser.text("main h1").await, "Run txt2img");

    // The form follows the parameters' types.
    let kinds = browser
        .js(
            "const f = n => document.getElementById('param-' + n); \
             return {steps: [f('k_sampler_steps').type, f('k_sampler_steps').min, f('k_sampler_steps').max, f('k_sampler_steps').value], \
                     cfg: [f('k_sampler_cfg').type, f('k_sampler_cfg').step], \
                     sampler: [f('k_sampler_sampler_name').tagName, f('k_sampler_sampler_name').selectedOptions[0].text], \
                     text: f('positive_text').value, lossless: [f('anim_lossless').type, f('anim_lossless').checked], \
                     image: [f('init_image').type, f('init_image').accept], audio: f('voice_audio').accept, \
                     labels: [...document.querySelectorAll('#run-form input, #run-form select, #run-form textarea')] \
                        .filter(e => e.id && !document.querySelector(`label[for=\"${e.id}\"]`)).map(e => e.id)}",
            Vec::new(),
        )
        .await;
    assert_eq!(kinds["steps"], json!(["number", "1", "10000", "20"]), "{kinds}");
    assert_eq!(kinds["cfg"][0], "number");
    assert_eq!(kinds["sampler"], json!(["SELECT", "euler"]));
    assert_eq!(kinds["text"], "a cat");
    assert_eq!(kinds["lossless"], json!(["checkbox", true]));
    assert_eq!(kinds["image"], json!(["file", "image/*"]));
    assert_eq!(kinds["audio"], "audio/*");
    assert_eq!(kinds["labels"], json!([]), "every control has a label");

    // Out-of-range values: serve's 422 is shown at each field and in a summary.
    browser.type_into("#param-k_sampler_steps", "0").await;
    browser.type_into("#param-latent_width", "1000000").await;
    browser.type_into("#job-priority", "1.5").await;
    browser.click("#run-form button[type=submit]").await;
    let steps_error = browser
        .until(
            "the steps field error",
            "const e = document.getElementById('param-k_sampler_steps-error'); return e && !e.hidden && e.textContent",
        )
        .await;
    assert!(steps_error.as_str().unwrap().contains('1'), "{steps_error}");
    let width_error = browser.text("#param-latent_width-error").await;
    assert!(width_error.contains("16384"), "{width_error}");
    let priority_error = browser.text("#job-priority-error").await;
    assert!(!priority_error.is_empty(), "priority is refused too");
    let state = browser
        .js(
            "return {invalid: [...document.querySelectorAll('[aria-invalid=true]')].map(e => e.id).sort(), \
                     summary: !document.getElementById('error-summary').hidden, \
                     focused: document.activeElement.id, \
                     links: document.querySelectorAll('#error-summary a').length, \
                     url: location.hash}",
            Vec::new(),
        )
        .await;
    assert_eq!(
        state["invalid"],
        json!(["job-priority", "param-k_sampler_steps", "param-latent_width"])
    );
    assert_eq!(state["summary"], true);
    assert_eq!(state["focused"], "error-summary", "the summary gets the focus");
    assert_eq!(state["links"], 3);
    assert_eq!(state["url"], "#/workflows/txt2img", "nothing was queued");
    browser.screenshot("form-errors").await;
    assert!(
        h.store
            .list(comfydock_serve::store::JobFilter::default())
            .await
            .unwrap()
            .is_empty()
    );

    // Valid values, an uploaded image (previewed), a priority and an idempotency key.
    browser.type_into("#param-k_sampler_steps", "12").await;
    browser.type_into("#param-latent_width", "640").await;
    browser.type_into("#param-positive_text", "a red fox").await;
    browser.type_into("#job-priority", "3").await;
    browser.type_into("#job-idempotency-key", "console-test-1").await;
    let upload = std::env::temp_dir().join(format!("console-fox-{}.png", std::process::id()));
    fs_err::write(&upload, png_image("the fox the person uploads")).unwrap();
    browser
        .client
        .find(Locator::Css("#param-init_image"))
        .await
        .unwrap()
        .send_keys(&upload.display().to_string())
        .await
        .unwrap();
    browser
        .until(
            "the upload preview",
            "const i = document.querySelector('#param-init_image-preview img'); return i && i.complete && i.naturalWidth",
        )
        .await;
    // Submitted from the keyboard: Enter in a one-line field.
    browser
        .client
        .find(Locator::Css("#job-idempotency-key"))
        .await
        .unwrap()
        .send_keys("\u{E007}")
        .await
        .unwrap();
    let hash = browser
        .until(
            "the job view",
            "return location.hash.startsWith('#/jobs/') && document.getElementById('job-progress') && location.hash",
        )
        .await;
    let id = hash.as_str().unwrap().trim_start_matches("#/jobs/").to_owned();
    let job = h.job(&id).await;
    assert_eq!(job["priority"], 3);
    assert_eq!(job["idempotency_key"], "console-test-1");
    assert_eq!(job["params"]["k_sampler_steps"], 12);
    assert_eq!(
        job["params"]["init_image"]["filename"],
        "console-fox-".to_owned() + &std::process::id().to_string() + ".png"
    );

    // Live: sampler progress arrives over the WebSocket while the job runs.
    browser
        .until(
            "live sampler progress",
            "const p = document.getElementById('job-progress'); return p.value > 0 && p.value < p.max && p.max == 12",
        )
        .await;
    browser.screenshot("job-running").await;

    // A reload in the middle picks up where it was: stored events, then `?after=` the last one.
    browser.client.refresh().await.unwrap();
    browser
        .until(
            "the job view after a reload",
            "return document.getElementById('event-log')?.children.length > 0",
        )
        .await;
    let image = browser
        .until(
            "the output image",
            "return Math.max(0, ...[...document.querySelectorAll('#outputs figure[data-kind=image] img')] \
                .map(i => (i.complete ? i.naturalWidth : 0)))",
        )
        .await;
    assert_eq!(image, 64, "the stand-in's 64×64 PNG, decoded by the browser");
    browser
        .until(
            "the succeeded badge",
            "return document.querySelector('#job-status .badge')?.textContent === 'succeeded'",
        )
        .await;
    let page = browser
        .js(
            "return {seqs: [...document.querySelectorAll('#event-log .seq')].map(e => Number(e.textContent.slice(1))), \
                     kinds: [...document.querySelectorAll('#event-log li')].map(e => e.dataset.kind), \
                     media: [...document.querySelectorAll('#outputs figure')].map(f => f.dataset.kind).sort(), \
                     audio: document.querySelector('#outputs audio')?.src.startsWith('blob:'), \
                     video: document.querySelector('#outputs video')?.src.startsWith('blob:'), \
                     progress: [document.getElementById('job-progress').value, document.getElementById('job-progress').max], \
                     stages: [...document.querySelectorAll('.stages li')].map(e => e.className)}",
            Vec::new(),
        )
        .await;
    let seqs: Vec<i64> = serde_json::from_value(page["seqs"].clone()).unwrap();
    assert_eq!(
        seqs,
        (1..=i64::try_from(seqs.len()).unwrap()).collect::<Vec<_>>(),
        "every event once, in order, across the reload: {page}"
    );
    assert_eq!(
        page["kinds"].as_array().unwrap().len(),
        log_kinds(&h, &id).await.len(),
        "the log shows every stored event"
    );
    let kinds: Vec<String> = serde_json::from_value(page["kinds"].clone()).unwrap();
    let position = |kind: &str| kinds.iter().position(|k| k == kind).unwrap();
    assert!(position("queued") < position("started"));
    assert!(position("started") < position("progress"));
    assert!(position("progress") < position("output"));
    assert_eq!(kinds.last().unwrap(), "succeeded");
    assert_eq!(page["media"], json!(["audio", "image", "image", "video"]));
    assert_eq!(page["audio"], true, "audio playable from the fetched output");
    assert_eq!(page["video"], true, "video playable from the fetched output");
    assert_eq!(page["progress"], json!([12, 12]));
    assert!(
        page["stages"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c.as_str().unwrap().contains("done")),
        "{page}"
    );
    browser.screenshot("job-succeeded").await;

    // The same idempotency key with other values is refused at that field (serve's 409).
    browser
        .goto(&format!("{}/console/#/workflows/txt2img", h.base))
        .await;
    browser
        .until("the form again", "return document.querySelector('#run-form')")
        .await;
    browser.type_into("#job-idempotency-key", "console-test-1").await;
    browser.click("#run-form button[type=submit]").await;
    let reused = browser
        .until(
            "the idempotency key's error",
            "const e = document.getElementById('job-idempotency-key-error'); return e && !e.hidden && e.textContent",
        )
        .await;
    assert!(reused.as_str().unwrap().contains(&id), "{reused}");
    assert_eq!(
        h.store
            .list(comfydock_serve::store::JobFilter::default())
            .await
            .unwrap()
            .len(),
        1,
        "nothing else was queued"
    );
    let _ = fs_err::remove_file(&upload);
    browser.client.close().await.unwrap();
    h.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_queue_cancels_a_queued_job_and_retries_a_dead_one() {
    let mut comfy = ComfyUiServer::start();
    let h = start_with_key(&[&comfy], true, |options| {
        options.environment = Some(json!({
            "name": "main",
            "comfyui": {"ref": "v0.3.41", "commit": "4a5c1e0d9b6f7a8e3c2d1b0a9f8e7d6c5b4a3928", "checkout": "4a5c1e0d9b6f7a8e3c2d1b0a9f8e7d6c5b4a3928"},
            "python": "3.12", "torch_backends": ["cpu", "cu128"], "torch_backend": "cpu",
            "nodes": [{"key": "comfyui-videohelpersuite", "name": "comfyui-videohelpersuite", "source": "registry", "version": "1.6.1", "enabled": true}],
            "models": [{"name": "sd15.safetensors", "folder": "checkpoints", "hash": "blake3:9f8e7d6c5b4a39281706f5e4d3c2b1a0", "size": 2_132_625_432_u64,
                        "criticality": "required", "workflows": ["txt2img"], "in_catalog": false}],
            "workflows": [{"name": "txt2img", "tracked": true, "nodes": ["comfyui-videohelpersuite"], "models": 1, "unresolved_models": [], "unresolved_nodes": []}],
            "history": [{"commit": "b1946ac92492d2347c6235b4d2611184a1b2c3d4", "short": "b1946ac", "author": "Ada", "date": "2026-01-05T10:00:00+00:00", "message": "Add the video node"},
                        {"commit": "0a1b2c3d4e5f60718293a4b5c6d7e8f901234567", "short": "0a1b2c3", "author": "Ada", "date": "2026-01-04T09:00:00+00:00", "message": "Create environment"}],
            "uncommitted": [],
        }));
    })
    .await;

    // ComfyUI goes away: the next job is dead-lettered at once (one attempt), and the worker then
    // waits for its backend, so later jobs stay queued.
    comfy.kill();
    let dead = queued(
        &h,
        json!({"params": {"positive_text": "first"}, "max_attempts": 1}),
    )
    .await;
    let dead_id = dead["id"].as_str().unwrap().to_owned();
    let dead = h.wait_for(&dead_id, "dead").await;
    let dead_kind = dead["error"]["kind"].as_str().unwrap().to_owned();
    let waiting = queued(&h, json!({"params": {"positive_text": "waits"}})).await;
    let waiting_id = waiting["id"].as_str().unwrap().to_owned();

    let browser = Browser::open("queue").await;
    browser.goto(&format!("{}/console/", h.base)).await;
    browser.sign_in(&h.key).await;

    // The dead job's view shows why.
    browser
        .goto(&format!("{}/console/#/jobs/{dead_id}", h.base))
        .await;
    let error = browser
        .until(
            "the dead job's error",
            "const b = document.querySelector('.error-box'); return b && !b.hidden && b.textContent",
        )
        .await;
    assert!(error.as_str().unwrap().contains(&dead_kind), "{error}");
    assert!(browser.text(".error-box h2").await.contains("Dead-lettered"));
    let stages = browser
        .js(
            "return [...document.querySelectorAll('.stages li')].map(e => e.className.replace('stage ', ''))",
            Vec::new(),
        )
        .await;
    assert_eq!(
        stages,
        json!(["done", "done", "skipped", "skipped", "failed"]),
        "no node ran and nothing was saved"
    );
    browser
        .until("the retry button", "return document.getElementById('retry-job')")
        .await;
    browser.screenshot("job-dead").await;

    // The queue: counts by state and workflow, the rows with their errors and actions.
    browser.goto(&format!("{}/console/#/queue", h.base)).await;
    let row = |id: &str| format!("#jobs tr[data-job=\"{id}\"]");
    browser
        .until(
            "both jobs in the queue",
            &format!(
                "return document.querySelector('{}') && document.querySelector('{}')",
                row(&dead_id),
                row(&waiting_id)
            ),
        )
        .await;
    let dead_row = browser.text(&row(&dead_id)).await;
    assert!(
        dead_row.contains("dead") && dead_row.contains(&dead_kind),
        "{dead_row}"
    );
    // Job ids are UUIDv7 (time first): a row names its job by the random end, so jobs made in
    // the same minute are told apart.
    let tag = |id: &str| id[id.len() - 8..].to_owned();
    assert_ne!(tag(&dead_id), tag(&waiting_id));
    assert!(dead_row.contains(&tag(&dead_id)), "{dead_row}");
    assert!(
        browser.text(&row(&waiting_id)).await.contains(&tag(&waiting_id)),
        "the waiting job's row names it"
    );
    let counts = browser
        .until(
            "the counts",
            "const r = [...document.querySelectorAll('.matrix tbody tr')].find(r => r.querySelector('th').textContent === 'txt2img'); \
             return r && [...r.querySelectorAll('td')].map(td => td.textContent).join(',')",
        )
        .await;
    assert_eq!(
        counts, "1,0,0,0,0,1",
        "queued, running, succeeded, failed, cancelled, dead"
    );
    browser.screenshot("queue").await;

    // Filters narrow the list (and live in the URL).
    browser
        .client
        .find(Locator::Css("#filter-status"))
        .await
        .unwrap()
        .select_by_value("dead")
        .await
        .unwrap();
    browser
        .until(
            "the dead filter",
            &format!(
                "return location.hash === '#/queue?status=dead' && document.querySelectorAll('#jobs tbody tr').length === 1 \
                 && document.querySelector('{}')",
                row(&dead_id)
            ),
        )
        .await;
    browser.screenshot("queue-dead").await;
    browser.goto(&format!("{}/console/#/queue", h.base)).await;

    // Cancel the queued job.
    let cancel = format!("{} button[data-action=cancel]", row(&waiting_id));
    browser
        .until(
            "the cancel button",
            &format!("return document.querySelector('{cancel}')"),
        )
        .await;
    browser.click(&cancel).await;
    browser
        .until(
            "the cancelled row",
            &format!(
                "return document.querySelector('{}')?.dataset.status === 'cancelled'",
                row(&waiting_id)
            ),
        )
        .await;
    assert_eq!(h.job(&waiting_id).await["status"], "cancelled");

    // ComfyUI is back: retry the dead job, which now runs to its end.
    comfy.restart();
    let retry = format!("{} button[data-action=retry]", row(&dead_id));
    browser.click(&retry).await;
    browser
        .until(
            "the retried job succeeding",
            &format!(
                "return document.querySelector('{}')?.dataset.status === 'succeeded'",
                row(&dead_id)
            ),
        )
        .await;
    let kinds = log_kinds(&h, &dead_id).await;
    let retried = kinds
        .iter()
        .position(|k| k == "retried")
        .expect("a retried event");
    assert_eq!(kinds[retried - 1], "dead");
    assert_eq!(kinds.last().unwrap(), "succeeded");
    browser.screenshot("queue-after-cancel-and-retry").await;

    // The retried job's view shows its image.
    browser
        .goto(&format!("{}/console/#/jobs/{dead_id}", h.base))
        .await;
    browser
        .until(
            "the retried job's image",
            "return [...document.querySelectorAll('#outputs figure[data-kind=image] img')].some(i => i.complete && i.naturalWidth > 0)",
        )
        .await;

    // The environment serve runs in.
    browser.goto(&format!("{}/console/#/environment", h.base)).await;
    browser
        .until(
            "the environment",
            "return document.querySelector('main h1')?.textContent === 'Environment main'",
        )
        .await;
    let env = browser
        .js("return document.querySelector('main').innerText", Vec::new())
        .await;
    let env = env.as_str().unwrap();
    for expected in [
        "v0.3.41",
        "4a5c1e0d9b6f",
        "comfyui-videohelpersuite",
        "1.6.1",
        "sd15.safetensors",
        "2.0 GiB",
        "Add the video node",
        "b1946ac",
        "Build history",
    ] {
        assert!(
            env.contains(expected),
            "`{expected}` missing from the environment view:\n{env}"
        );
    }
    browser.screenshot("environment").await;
    browser.client.close().await.unwrap();
    h.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_puts_dead_jobs_back_and_the_event_stream_follows_the_retry() {
    let mut comfy = ComfyUiServer::start();
    let h = start_with_key(&[&comfy], true, |_| {}).await;
    comfy.kill();
    let job = queued(
        &h,
        json!({"params": {"positive_text": "retry me"}, "max_attempts": 1}),
    )
    .await;
    let id = job["id"].as_str().unwrap().to_owned();
    h.wait_for(&id, "dead").await;
    let waiting = queued(&h, json!({"params": {}})).await;

    let retry = |id: &str, key: bool| {
        let request = h.http.post(format!("{}/v1/jobs/{id}/retry", h.base));
        if key { request.bearer_auth(&h.key) } else { request }
    };
    assert_eq!(retry(&id, false).send().await.unwrap().status(), 401);
    let refused = retry(waiting["id"].as_str().unwrap(), true).send().await.unwrap();
    assert_eq!(refused.status(), 409, "a queued job is not retried");
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"], "not_retryable");
    assert_eq!(
        retry("0190a4c2-0000-7000-8000-000000000000", true)
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    assert_eq!(retry("nope", true).send().await.unwrap().status(), 404);

    comfy.restart();
    let response = retry(&id, true).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let queued: Value = response.json().await.unwrap();
    assert_eq!(queued["status"], "queued");
    assert_eq!(queued["attempts"], 0, "a fresh budget of attempts");
    assert!(
        queued["error"]["kind"].is_string(),
        "the last error stays visible"
    );

    // A stream from the start does not end at the first `dead`: it follows the retry to its end.
    let url = format!("{}/v1/jobs/{id}/events?after=0", h.base.replace("http", "ws"));
    let mut request =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(url).unwrap();
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {}", h.key).parse().unwrap());
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let mut kinds = Vec::new();
    loop {
        let next = tokio::time::timeout(Duration::from_secs(20), socket.next())
            .await
            .expect("events in time");
        match next {
            Some(Ok(Message::Text(text))) => {
                let event: Value = serde_json::from_str(text.as_str()).unwrap();
                kinds.push(event["kind"].as_str().unwrap().to_owned());
            }
            Some(Ok(Message::Close(_))) | None => break,
            Some(Ok(_)) => {}
            Some(Err(e)) => panic!("websocket error: {e}"),
        }
    }
    let dead_at = kinds.iter().position(|k| k == "dead").unwrap();
    assert_eq!(kinds[dead_at + 1], "retried", "{kinds:?}");
    assert_eq!(kinds.last().unwrap(), "succeeded", "{kinds:?}");
    let done = h.job(&id).await;
    assert_eq!(
        (done["status"].as_str(), done["attempts"].as_u64()),
        (Some("succeeded"), Some(1))
    );
    let after_retry: Vec<&String> = kinds.iter().skip_while(|k| *k != "retried").collect();
    assert!(
        after_retry.iter().any(|k| *k == "submitting") && !after_retry.iter().any(|k| *k == "adopted"),
        "the retried job ran anew, not adopted from before the retry: {kinds:?}"
    );
    h.wait_for(waiting["id"].as_str().unwrap(), "succeeded").await;
    assert_eq!(comfy.executions().len(), 2, "one run each");

    // Retrying a succeeded job is refused.
    assert_eq!(retry(&id, true).send().await.unwrap().status(), 409);
    let doc: Value = h.get_json("/openapi.json").await;
    assert!(doc["paths"]["/v1/jobs/{id}/retry"]["post"].is_object());
    assert!(doc["paths"]["/v1/environment"]["get"].is_object());
    let params = &doc["components"]["schemas"]["txt2img_params"]["properties"];
    assert_eq!(params["init_image"]["x-media"], "image");
    assert_eq!(params["voice_audio"]["x-media"], "audio");
    assert!(params["k_sampler_cfg"]["x-step"].as_f64().unwrap() > 0.0);
    h.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_pages_are_embedded_cached_and_can_be_turned_off() {
    let comfy = ComfyUiServer::start();
    let h = start_with_key(&[&comfy], false, |_| {}).await;
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for path in ["/", "/console"] {
        let response = no_redirects
            .get(format!("{}{path}", h.base))
            .send()
            .await
            .unwrap();
        assert!(response.status().is_redirection(), "{path}");
        assert_eq!(response.headers()["location"], "/console/");
    }
    let page = h.http.get(format!("{}/console/", h.base)).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["content-type"], "text/html; charset=utf-8");
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert_eq!(page.headers()["x-content-type-options"], "nosniff");
    let etag = page.headers()["etag"].to_str().unwrap().to_owned();
    let html = page.text().await.unwrap();
    assert!(html.contains(r#"<script type="module" src="app.js">"#));
    for name in comfydock_serve::console::asset_names() {
        let response = h
            .http
            .get(format!("{}/console/{name}", h.base))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{name}");
        if Path::new(name).extension().is_some_and(|e| e == "js") {
            assert_eq!(
                response.headers()["content-type"],
                "text/javascript; charset=utf-8"
            );
        }
    }
    let again = h
        .http
        .get(format!("{}/console/", h.base))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304, "unchanged pages are not sent again");
    assert_eq!(
        h.http
            .get(format!("{}/console/../queue.db", h.base))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    assert_eq!(
        h.http
            .get(format!("{}/console/nothing.js", h.base))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    // Outside an environment, serve says so.
    let env = h
        .http
        .get(format!("{}/v1/environment", h.base))
        .send()
        .await
        .unwrap();
    assert_eq!(env.status(), 404);
    assert_eq!(env.json::<Value>().await.unwrap()["error"], "no_environment");
    h.server.stop().await;

    let off = start_with_key(&[&comfy], false, |options| options.console = false).await;
    for path in ["/", "/console", "/console/", "/console/app.js"] {
        let status = no_redirects
            .get(format!("{}{path}", off.base))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 404, "{path} with the console off");
    }
    assert_eq!(
        off.http
            .get(format!("{}/v1/jobs", off.base))
            .send()
            .await
            .unwrap()
            .status(),
        200,
        "the API still answers"
    );
    off.server.stop().await;
}

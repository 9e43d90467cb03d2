//! Workers: one per ComfyUI backend. Each claims a job, runs it on its backend (uploads, prompt,
//! WebSocket progress, history, every output file via `/view`), heartbeats the lease meanwhile,
//! and records the outcome. A backend that stops answering is marked down (its worker waits for it
//! to come back) and the job goes back to the queue for another backend.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::comfyui::{ComfyClient, ComfyError, next_message, output_files};
use crate::hub::EventHub;
use crate::job::{Claimed, FailOutcome, JobFailure, RetryPolicy};
use crate::metrics::Metrics;
use crate::params::{ParamKind, WorkflowApi, decode_base64};
use crate::store::JobStore;

/// One ComfyUI server and whether it answers.
pub struct Backend {
    pub client: ComfyClient,
    up: AtomicBool,
}

impl Backend {
    pub fn new(url: &str) -> Self {
        Self {
            client: ComfyClient::new(url),
            up: AtomicBool::new(false),
        }
    }

    pub fn url(&self) -> &str {
        self.client.base()
    }

    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    /// Probes `/system_stats` and records the answer.
    pub async fn probe(&self) -> bool {
        let up = self.client.system_stats().await.is_ok();
        self.up.store(up, Ordering::Relaxed);
        up
    }

    fn mark_down(&self) {
        self.up.store(false, Ordering::Relaxed);
    }
}

/// Timing and retry settings shared by every worker.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// How long a claim is valid without a heartbeat.
    pub lease: Duration,
    /// Backoff for transient failures.
    pub retry: RetryPolicy,
    /// Idle poll interval (workers also wake on enqueue).
    pub poll: Duration,
    /// Longest a prompt may run before it counts as timed out (transient).
    pub job_timeout: Duration,
    /// Where outputs are stored: `<outputs_dir>/<job id>/<file>`.
    pub outputs_dir: PathBuf,
    /// `/view` attempts per file while ComfyUI has not written it yet; also the `/history/{id}`
    /// attempts when a run's history is not there when expected.
    pub view_attempts: u32,
    pub view_retry_delay: Duration,
    /// How long to wait after `execution_success` for `executing {node: null}` (which follows the
    /// history entry) before reading the history anyway.
    pub history_grace: Duration,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            lease: Duration::from_secs(30),
            retry: RetryPolicy::default(),
            poll: Duration::from_millis(500),
            job_timeout: Duration::from_hours(2),
            outputs_dir: PathBuf::from("outputs"),
            view_attempts: 20,
            view_retry_delay: Duration::from_millis(250),
            history_grace: Duration::from_secs(30),
        }
    }
}

/// Everything a worker needs.
pub struct Worker {
    pub owner: String,
    pub backend: Arc<Backend>,
    pub store: Arc<dyn JobStore>,
    pub hub: EventHub,
    pub metrics: Arc<Metrics>,
    pub workflows: Arc<HashMap<String, WorkflowApi>>,
    pub config: WorkerConfig,
}

/// How one run ended, before it is recorded.
enum RunEnd {
    Succeeded(Value),
    Failed(JobFailure),
    /// Cancelled by a client or the lease was lost: the store already knows.
    Stopped,
    /// This instance is shutting down: the job goes back to the queue, attempt not counted.
    Released,
}

impl Worker {
    /// Claims and runs jobs until `shutdown` fires.
    pub async fn run(self, shutdown: CancellationToken) {
        let workflows: Vec<String> = self.workflows.keys().cloned().collect();
        while !shutdown.is_cancelled() {
            if !self.backend.is_up() && !self.backend.probe().await {
                tokio::select! {
                    () = tokio::time::sleep(self.config.poll.max(Duration::from_millis(250))) => {}
                    () = shutdown.cancelled() => break,
                }
                continue;
            }
            let waiting = self.hub.queued_signal();
            tokio::pin!(waiting);
            waiting.as_mut().enable();
            match self
                .store
                .claim(self.owner.clone(), workflows.clone(), self.config.lease)
                .await
            {
                Ok(Some(claimed)) => {
                    self.hub.changed(claimed.job.id);
                    self.run_job(claimed, &shutdown).await;
                }
                Ok(None) => {
                    tokio::select! {
                        () = &mut waiting => {}
                        () = tokio::time::sleep(self.config.poll) => {}
                        () = shutdown.cancelled() => break,
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, worker = %self.owner, "claiming a job failed");
                    tokio::time::sleep(self.config.poll).await;
                }
            }
        }
    }

    async fn run_job(&self, claimed: Claimed, shutdown: &CancellationToken) {
        let started = Instant::now();
        let job_id = claimed.job.id;
        let token = self.hub.start(job_id);
        let heartbeat = {
            let store = Arc::clone(&self.store);
            let lease = claimed.lease.clone();
            let token = token.clone();
            let every = self.config.lease / 3;
            let lease_for = self.config.lease;
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(every).await;
                    match store.heartbeat(lease.clone(), lease_for).await {
                        Ok(true) => {}
                        Ok(false) => {
                            token.cancel();
                            break;
                        }
                        Err(error) => tracing::warn!(%error, "heartbeat failed"),
                    }
                }
            })
        };
        let end = self.execute(&claimed, &token, shutdown).await;
        heartbeat.abort();
        self.hub.finish(job_id);
        let terminal = match end {
            RunEnd::Succeeded(outputs) => match self.store.complete(claimed.lease.clone(), outputs).await {
                Ok(true) => {
                    self.metrics.observe_duration(started.elapsed());
                    true
                }
                Ok(false) => false,
                Err(error) => {
                    tracing::error!(%error, %job_id, "recording success failed");
                    false
                }
            },
            RunEnd::Failed(failure) => {
                if failure.transient {
                    self.backend.mark_down();
                }
                match self
                    .store
                    .fail(claimed.lease.clone(), failure, self.config.retry)
                    .await
                {
                    Ok(FailOutcome::Failed | FailOutcome::Dead) => true,
                    Ok(FailOutcome::Retrying { .. }) => {
                        self.hub.job_queued();
                        false
                    }
                    Ok(FailOutcome::LeaseLost) => false,
                    Err(error) => {
                        tracing::error!(%error, %job_id, "recording failure failed");
                        false
                    }
                }
            }
            RunEnd::Stopped => false,
            RunEnd::Released => {
                if let Err(error) = self.store.release(claimed.lease.clone()).await {
                    tracing::warn!(%error, %job_id, "releasing the job failed; it reruns when its lease expires");
                }
                false
            }
        };
        self.hub.changed(job_id);
        if terminal && let Some(url) = claimed.job.webhook.clone() {
            let store = Arc::clone(&self.store);
            tokio::spawn(async move { send_webhook(&*store, job_id, &url).await });
        }
    }

    async fn event(&self, job_id: Uuid, kind: &str, data: Value) {
        if let Err(error) = self.store.append_event(job_id, kind.to_owned(), data).await {
            tracing::warn!(%error, %job_id, "recording an event failed");
        }
        self.hub.changed(job_id);
    }

    async fn execute(
        &self,
        claimed: &Claimed,
        token: &CancellationToken,
        shutdown: &CancellationToken,
    ) -> RunEnd {
        let job = &claimed.job;
        let Some(api) = self.workflows.get(&job.workflow) else {
            return RunEnd::Failed(JobFailure::permanent(
                "unknown_workflow",
                format!("this instance does not serve workflow `{}`", job.workflow),
            ));
        };
        let client = &self.backend.client;
        let transient = |error: &ComfyError| {
            let failure = if error.is_transient() {
                JobFailure::transient("backend_unreachable", error.to_string())
            } else {
                JobFailure::permanent("backend_protocol", error.to_string())
            };
            RunEnd::Failed(failure.with_detail(json!({"backend": client.base()})))
        };
        let client_id = Uuid::new_v4().to_string();
        let prompt_id = Uuid::new_v4().to_string();
        let mut socket = match client.connect(&client_id).await {
            Ok(socket) => socket,
            Err(error) => return transient(&error),
        };
        let mut values: Map<String, Value> = job.params.as_object().cloned().unwrap_or_default();
        for param in &api.params {
            let ParamKind::Upload { .. } = param.kind else {
                continue;
            };
            let Some(upload) = values.get(&param.name) else {
                continue;
            };
            let filename = upload["filename"].as_str().unwrap_or("upload").to_owned();
            let bytes = upload["data"]
                .as_str()
                .and_then(decode_base64)
                .unwrap_or_default();
            match client.upload(&filename, bytes).await {
                Ok(name) => {
                    values.insert(param.name.clone(), Value::String(name));
                }
                Err(error) => return transient(&error),
            }
        }
        let prompt = Value::Object(api.inject(&values));
        match client.submit(&prompt, &client_id, &prompt_id).await {
            Ok(_) => {}
            Err(ComfyError::Rejected { message, body, .. }) => {
                return RunEnd::Failed(
                    JobFailure::permanent(
                        "prompt_rejected",
                        format!("ComfyUI rejected the prompt: {message}"),
                    )
                    .with_detail(body),
                );
            }
            Err(error) => return transient(&error),
        }
        self.event(
            job.id,
            "submitted",
            json!({"backend": client.base(), "prompt_id": prompt_id}),
        )
        .await;
        let mut deadline = tokio::time::Instant::now() + self.config.job_timeout;
        // ComfyUI sends `execution_success`, then writes `/history/{id}`, then sends
        // `executing {node: null}`: only the last says the history is complete.
        let mut succeeded = false;
        loop {
            let message = tokio::select! {
                () = token.cancelled() => {
                    let _ = client.interrupt(&prompt_id).await;
                    return RunEnd::Stopped;
                }
                () = shutdown.cancelled() => {
                    let _ = client.interrupt(&prompt_id).await;
                    return RunEnd::Released;
                }
                message = tokio::time::timeout_at(deadline, next_message(&mut socket)) => message,
            };
            let message = match message {
                // Succeeded, but `executing {node: null}` is overdue or the socket went away: the
                // history is read with retries instead.
                Err(_) | Ok(None | Some(Err(_))) if succeeded => break,
                Err(_) => {
                    let _ = client.interrupt(&prompt_id).await;
                    return RunEnd::Failed(JobFailure::transient(
                        "timeout",
                        format!(
                            "the prompt did not finish within {} s",
                            self.config.job_timeout.as_secs()
                        ),
                    ));
                }
                Ok(None) => {
                    return RunEnd::Failed(
                        JobFailure::transient(
                            "backend_lost",
                            format!("the WebSocket of {} closed mid-job", client.base()),
                        )
                        .with_detail(json!({"backend": client.base()})),
                    );
                }
                Ok(Some(Err(error))) => {
                    return RunEnd::Failed(
                        JobFailure::transient(
                            "backend_lost",
                            format!("the WebSocket of {} failed: {error}", client.base()),
                        )
                        .with_detail(json!({"backend": client.base()})),
                    );
                }
                Ok(Some(Ok(message))) => message,
            };
            let data = &message["data"];
            if data["prompt_id"].as_str() != Some(prompt_id.as_str()) {
                continue;
            }
            match message["type"].as_str().unwrap_or("") {
                "progress" => {
                    self.event(
                        job.id,
                        "progress",
                        json!({"value": data["value"], "max": data["max"], "node": data["node"]}),
                    )
                    .await;
                }
                // The history is complete now; it also says how a run ended whose outcome
                // message this socket did not get.
                "executing" if data["node"].is_null() => break,
                "executing" => {
                    let node = data["node"].as_str().unwrap_or("");
                    let class = api
                        .prompt
                        .get(node)
                        .and_then(|n| n["class_type"].as_str())
                        .unwrap_or("");
                    self.event(job.id, "node", json!({"node": node, "class_type": class}))
                        .await;
                }
                "execution_success" => {
                    succeeded = true;
                    deadline = deadline.min(tokio::time::Instant::now() + self.config.history_grace);
                }
                "execution_error" => {
                    let text = data["exception_message"]
                        .as_str()
                        .unwrap_or("execution failed")
                        .trim()
                        .to_owned();
                    return RunEnd::Failed(
                        JobFailure::permanent(
                            "execution_error",
                            format!("node {} ({}) failed: {text}", data["node_id"], data["node_type"]),
                        )
                        .with_detail(data.clone()),
                    );
                }
                "execution_interrupted" => {
                    if token.is_cancelled() {
                        return RunEnd::Stopped;
                    }
                    return RunEnd::Failed(
                        JobFailure::permanent(
                            "interrupted",
                            "the prompt was interrupted on the ComfyUI server",
                        )
                        .with_detail(data.clone()),
                    );
                }
                _ => {}
            }
        }
        drop(socket);
        self.collect_outputs(job.id, &prompt_id).await
    }

    /// Reads the history entry (normally complete, since `executing {node: null}` came; retried
    /// a bounded number of times otherwise) and downloads every output file (retrying while
    /// ComfyUI has not written it yet).
    async fn collect_outputs(&self, job_id: Uuid, prompt_id: &str) -> RunEnd {
        let client = &self.backend.client;
        let mut entry = None;
        for _ in 0..self.config.view_attempts {
            match client.history(prompt_id).await {
                Ok(Some(found)) => {
                    entry = Some(found);
                    break;
                }
                Ok(None) => tokio::time::sleep(self.config.view_retry_delay).await,
                Err(error) => {
                    return RunEnd::Failed(JobFailure::transient("backend_unreachable", error.to_string()));
                }
            }
        }
        let Some(entry) = entry else {
            return RunEnd::Failed(JobFailure::transient(
                "history_missing",
                format!("no history for prompt {prompt_id}"),
            ));
        };
        if entry["status"]["status_str"] == "error" {
            return RunEnd::Failed(
                JobFailure::permanent("execution_error", "ComfyUI recorded the prompt as failed")
                    .with_detail(entry["status"].clone()),
            );
        }
        let dir = self.config.outputs_dir.join(job_id.to_string());
        let mut files = Vec::new();
        let mut taken = std::collections::HashSet::new();
        for (node, key, file) in output_files(&entry["outputs"]) {
            let mut bytes = None;
            for _ in 0..self.config.view_attempts {
                match client.view(&file).await {
                    Ok(Some(found)) => {
                        bytes = Some(found);
                        break;
                    }
                    Ok(None) => tokio::time::sleep(self.config.view_retry_delay).await,
                    Err(error) => {
                        return RunEnd::Failed(JobFailure::transient(
                            "backend_unreachable",
                            error.to_string(),
                        ));
                    }
                }
            }
            let Some(bytes) = bytes else {
                return RunEnd::Failed(JobFailure::transient(
                    "output_missing",
                    format!("`{}` never appeared on {}", file.filename, client.base()),
                ));
            };
            let mut name = file.filename.clone();
            if !taken.insert(name.clone()) {
                name = format!("{node}_{}", file.filename);
                taken.insert(name.clone());
            }
            if let Err(error) = write_output(&dir, &name, &bytes) {
                return RunEnd::Failed(JobFailure::transient("output_write", error.to_string()));
            }
            let record = json!({
                "name": name, "node": node, "kind": key, "size": bytes.len(),
                "content_type": content_type(&name), "url": format!("/v1/jobs/{job_id}/outputs/{name}"),
            });
            self.event(job_id, "output", record.clone()).await;
            files.push(record);
        }
        RunEnd::Succeeded(json!({"files": files, "nodes": entry["outputs"]}))
    }
}

/// Writes through a temp file + rename, so a crash never leaves half a file under the final name.
fn write_output(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    fs_err::create_dir_all(dir)?;
    let temp = dir.join(format!(".{name}.{}.part", Uuid::new_v4()));
    fs_err::write(&temp, bytes)?;
    fs_err::rename(&temp, dir.join(name))
}

/// The MIME type of an output by extension.
pub fn content_type(name: &str) -> &'static str {
    let ext = name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "webp" => "image/webp",
        "gif" => "image/gif",
        "mp4" => "video/mp4",
        "webm" => "video/webm",
        "flac" => "audio/flac",
        "mp3" => "audio/mpeg",
        "wav" => "audio/wav",
        "ogg" | "opus" => "audio/ogg",
        "json" => "application/json",
        "txt" => "text/plain; charset=utf-8",
        "glb" => "model/gltf-binary",
        _ => "application/octet-stream",
    }
}

/// Posts the finished job to its webhook (3 tries, 1 s apart).
async fn send_webhook(store: &dyn JobStore, job_id: Uuid, url: &str) {
    let Ok(Some(job)) = store.get(job_id).await else {
        return;
    };
    let body = crate::job_view::job_json(&job);
    let client = reqwest::Client::new();
    for _ in 0..3 {
        let sent = client
            .post(url)
            .timeout(Duration::from_secs(10))
            .json(&body)
            .send()
            .await;
        if sent.is_ok_and(|r| r.status().is_success()) {
            return;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    tracing::warn!(%job_id, url, "webhook failed 3 times");
}

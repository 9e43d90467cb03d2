//! Workers: one per ComfyUI backend. Each claims a job, runs it on its backend (uploads, prompt,
//! WebSocket progress, history, every output file via `/view`), heartbeats the lease meanwhile,
//! and records the outcome. A backend that stops answering is marked down (its worker waits for it
//! to come back) and the job goes back to the queue for another backend.
//!
//! Exactly once per job on the backends: before a prompt is submitted, its backend, prompt id
//! and client id are stored (`submitting` event), and the prompt id is chosen by serve (ComfyUI
//! accepts `prompt_id` in `POST /prompt`). Every later attempt (after a crash of serve, a dropped
//! WebSocket, a lost `/prompt` reply, a lease that ran out) first asks that backend's `/queue` and
//! `/history/{id}` and takes the prompt over (`adopted`) when it is still queued, running or done.
//! Only when the backend no longer knows it (never received, interrupted by a shutdown, or lost
//! with a restart of ComfyUI, whose queue lives in memory) is a new prompt submitted.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::comfyui::{ComfyClient, ComfyError, QueueState, Socket, next_message, output_files};
use crate::hub::EventHub;
use crate::job::{Claimed, FailOutcome, JobFailure, JobStatus, RetryPolicy};
use crate::metrics::Metrics;
use crate::output_store::{OutputStore, SaveError};
use crate::params::{ParamKind, WorkflowApi, decode_base64, is_safe_filename};
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
    /// Where outputs are stored: a folder or a bucket, `<job id>/<file>` under it.
    pub outputs: OutputStore,
    /// `/view` attempts per file while ComfyUI has not written it yet; also the `/history/{id}`
    /// attempts when a run's history is not there when expected.
    pub view_attempts: u32,
    pub view_retry_delay: Duration,
    /// How long to wait after `execution_success` for `executing {node: null}` (which follows the
    /// history entry) before reading the history anyway.
    pub history_grace: Duration,
    /// Which webhook targets finished jobs may be posted to.
    pub webhooks: crate::webhook::WebhookPolicy,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            lease: Duration::from_secs(30),
            retry: RetryPolicy::default(),
            poll: Duration::from_millis(500),
            job_timeout: Duration::from_hours(2),
            outputs: OutputStore::from(std::path::PathBuf::from("outputs")),
            view_attempts: 20,
            view_retry_delay: Duration::from_millis(250),
            history_grace: Duration::from_secs(30),
            webhooks: crate::webhook::WebhookPolicy::default(),
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
            let policy = self.config.webhooks;
            tokio::spawn(async move { crate::webhook::send(&*store, policy, job_id, &url).await });
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
        // An earlier attempt may have submitted a prompt that is still queued, running or done:
        // take that one over instead of running the job a second time.
        match self.adopt(job.id).await {
            Ok(Adoption::InFlight {
                client,
                prompt_id,
                mut socket,
            }) => {
                self.event(
                    job.id,
                    "adopted",
                    json!({"backend": client.base(), "prompt_id": prompt_id, "state": "in_flight"}),
                )
                .await;
                let end = self
                    .follow(job.id, api, &client, &mut socket, &prompt_id, token, shutdown)
                    .await;
                drop(socket);
                match end {
                    PromptEnd::Finished => return self.collect_outputs(&client, job.id, &prompt_id).await,
                    // An earlier attempt interrupted it while shutting down: run the job anew.
                    PromptEnd::InterruptedElsewhere(_) => {}
                    PromptEnd::Run(end) => return end,
                }
            }
            Ok(Adoption::Finished {
                client,
                prompt_id,
                entry,
            }) => {
                if !was_interrupted(&entry) {
                    self.event(
                        job.id,
                        "adopted",
                        json!({"backend": client.base(), "prompt_id": prompt_id, "state": "finished"}),
                    )
                    .await;
                    return self.download_outputs(&client, job.id, &entry).await;
                }
            }
            Ok(Adoption::Nothing) => {}
            Err(failure) => return RunEnd::Failed(failure),
        }
        self.submit_and_follow(job, api, token, shutdown).await
    }

    /// Finds the prompt the last attempt submitted (its `submitting` event) and asks its backend
    /// where it is. The WebSocket (with the same client id, so ComfyUI sends it that prompt's
    /// messages) opens first, then `/queue`, then `/history`: ComfyUI moves a prompt from the
    /// running list into the history in one step, so a prompt finishing meanwhile is not missed.
    async fn adopt(&self, job_id: Uuid) -> Result<Adoption, JobFailure> {
        let prior = last_prompt(&*self.store, job_id)
            .await
            .map_err(|error| JobFailure::transient("queue_unavailable", error.to_string()))?;
        let Some(prior) = prior else {
            return Ok(Adoption::Nothing);
        };
        let client = if prior.backend == self.backend.url() {
            self.backend.client.clone()
        } else {
            ComfyClient::new(&prior.backend)
        };
        // A backend that does not answer lost its queue and history with its process (they live
        // in memory), so the prompt cannot run any more: submit anew.
        let Ok(socket) = client.connect(&prior.client_id).await else {
            return Ok(Adoption::Nothing);
        };
        let unreachable = |error: ComfyError| {
            JobFailure::transient("backend_unreachable", error.to_string())
                .with_detail(json!({"backend": prior.backend}))
        };
        match client.queue_state(&prior.prompt_id).await.map_err(unreachable)? {
            QueueState::Running | QueueState::Pending => {
                return Ok(Adoption::InFlight {
                    client,
                    prompt_id: prior.prompt_id,
                    socket: Box::new(socket),
                });
            }
            QueueState::Absent => {}
        }
        drop(socket);
        Ok(
            match client.history(&prior.prompt_id).await.map_err(unreachable)? {
                Some(entry) => Adoption::Finished {
                    client,
                    prompt_id: prior.prompt_id,
                    entry,
                },
                None => Adoption::Nothing,
            },
        )
    }

    /// Uploads the job's files, records the prompt id it is about to use (`submitting`), submits it
    /// and follows it to its end.
    async fn submit_and_follow(
        &self,
        job: &crate::job::Job,
        api: &WorkflowApi,
        token: &CancellationToken,
        shutdown: &CancellationToken,
    ) -> RunEnd {
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
        // Stored before the prompt leaves: whatever happens next (a crash, a lost reply), the next
        // attempt knows which prompt to look for.
        let submitting = json!({"backend": client.base(), "prompt_id": prompt_id, "client_id": client_id});
        if let Err(error) = self
            .store
            .append_event(job.id, "submitting".to_owned(), submitting)
            .await
        {
            return RunEnd::Failed(JobFailure::transient("queue_unavailable", error.to_string()));
        }
        self.hub.changed(job.id);
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
        let end = self
            .follow(job.id, api, client, &mut socket, &prompt_id, token, shutdown)
            .await;
        drop(socket);
        match end {
            PromptEnd::Finished => self.collect_outputs(client, job.id, &prompt_id).await,
            PromptEnd::InterruptedElsewhere(data) => RunEnd::Failed(
                JobFailure::permanent("interrupted", "the prompt was interrupted on the ComfyUI server")
                    .with_detail(data),
            ),
            PromptEnd::Run(end) => end,
        }
    }

    /// Withdraws a prompt from its backend (out of the queue, interrupted if running).
    async fn withdraw(client: &ComfyClient, prompt_id: &str) {
        if let Err(error) = client.withdraw(prompt_id).await {
            tracing::warn!(%error, prompt_id, "withdrawing the prompt from ComfyUI failed");
        }
    }

    /// Follows a prompt's messages on `socket` until it ends, recording progress. ComfyUI sends
    /// `execution_success`, then writes `/history/{id}`, then sends `executing {node: null}`: only
    /// the last says the history is complete.
    #[allow(clippy::too_many_arguments)]
    async fn follow(
        &self,
        job_id: Uuid,
        api: &WorkflowApi,
        client: &ComfyClient,
        socket: &mut Socket,
        prompt_id: &str,
        token: &CancellationToken,
        shutdown: &CancellationToken,
    ) -> PromptEnd {
        let mut deadline = tokio::time::Instant::now() + self.config.job_timeout;
        let mut succeeded = false;
        let lost = |detail: String| {
            PromptEnd::Run(RunEnd::Failed(
                JobFailure::transient("backend_lost", detail).with_detail(json!({"backend": client.base()})),
            ))
        };
        loop {
            let message = tokio::select! {
                () = token.cancelled() => {
                    // Cancelled by a client: the prompt must not run. A lost lease means another
                    // worker took the job over (and maybe this very prompt): leave it alone.
                    if matches!(self.store.get(job_id).await, Ok(Some(job)) if job.status == JobStatus::Cancelled) {
                        Self::withdraw(client, prompt_id).await;
                    }
                    return PromptEnd::Run(RunEnd::Stopped);
                }
                () = shutdown.cancelled() => {
                    Self::withdraw(client, prompt_id).await;
                    return PromptEnd::Run(RunEnd::Released);
                }
                message = tokio::time::timeout_at(deadline, next_message(socket)) => message,
            };
            let message = match message {
                // Succeeded, but `executing {node: null}` is overdue or the socket went away: the
                // history is read with retries instead.
                Err(_) | Ok(None | Some(Err(_))) if succeeded => return PromptEnd::Finished,
                Err(_) => {
                    Self::withdraw(client, prompt_id).await;
                    return PromptEnd::Run(RunEnd::Failed(JobFailure::transient(
                        "timeout",
                        format!(
                            "the prompt did not finish within {} s",
                            self.config.job_timeout.as_secs()
                        ),
                    )));
                }
                Ok(None) => return lost(format!("the WebSocket of {} closed mid-job", client.base())),
                Ok(Some(Err(error))) => {
                    return lost(format!("the WebSocket of {} failed: {error}", client.base()));
                }
                Ok(Some(Ok(message))) => message,
            };
            let data = &message["data"];
            if data["prompt_id"].as_str() != Some(prompt_id) {
                continue;
            }
            match message["type"].as_str().unwrap_or("") {
                "progress" => {
                    self.event(
                        job_id,
                        "progress",
                        json!({"value": data["value"], "max": data["max"], "node": data["node"]}),
                    )
                    .await;
                }
                // The history is complete now; it also says how a run ended whose outcome
                // message this socket did not get.
                "executing" if data["node"].is_null() => return PromptEnd::Finished,
                "executing" => {
                    let node = data["node"].as_str().unwrap_or("");
                    let class = api
                        .prompt
                        .get(node)
                        .and_then(|n| n["class_type"].as_str())
                        .unwrap_or("");
                    self.event(job_id, "node", json!({"node": node, "class_type": class}))
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
                    return PromptEnd::Run(RunEnd::Failed(
                        JobFailure::permanent(
                            "execution_error",
                            format!("node {} ({}) failed: {text}", data["node_id"], data["node_type"]),
                        )
                        .with_detail(data.clone()),
                    ));
                }
                "execution_interrupted" => {
                    if token.is_cancelled() {
                        return PromptEnd::Run(RunEnd::Stopped);
                    }
                    return PromptEnd::InterruptedElsewhere(data.clone());
                }
                _ => {}
            }
        }
    }

    /// Reads the history entry (normally complete, since `executing {node: null}` came; retried
    /// a bounded number of times otherwise) and downloads every output file.
    async fn collect_outputs(&self, client: &ComfyClient, job_id: Uuid, prompt_id: &str) -> RunEnd {
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
        self.download_outputs(client, job_id, &entry).await
    }

    /// Streams every output file of a history entry into the output store under the job's id
    /// (retrying while ComfyUI has not written a file yet). A file name that is not a plain name (a path, `..`)
    /// fails the job: a backend must not choose where files land.
    async fn download_outputs(&self, client: &ComfyClient, job_id: Uuid, entry: &Value) -> RunEnd {
        if entry["status"]["status_str"] == "error" {
            return RunEnd::Failed(
                JobFailure::permanent("execution_error", "ComfyUI recorded the prompt as failed")
                    .with_detail(entry["status"].clone()),
            );
        }
        let mut files = Vec::new();
        let mut taken = std::collections::HashSet::new();
        for (node, key, file) in output_files(&entry["outputs"]) {
            let mut name = file.filename.clone();
            if !taken.insert(name.clone()) {
                name = format!("{node}_{}", file.filename);
                taken.insert(name.clone());
            }
            if !is_output_name(&name) {
                return RunEnd::Failed(
                    JobFailure::permanent(
                        "unsafe_output_name",
                        format!(
                            "{} reported an output named `{name}`, which is not a plain file name",
                            client.base()
                        ),
                    )
                    .with_detail(json!({"backend": client.base(), "node": node})),
                );
            }
            let mut response = None;
            for _ in 0..self.config.view_attempts {
                match client.view(&file).await {
                    Ok(Some(found)) => {
                        response = Some(found);
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
            let Some(response) = response else {
                return RunEnd::Failed(JobFailure::transient(
                    "output_missing",
                    format!("`{}` never appeared on {}", file.filename, client.base()),
                ));
            };
            let size = match self
                .config
                .outputs
                .save(job_id, &name, content_type(&name), response.bytes_stream())
                .await
            {
                Ok(size) => size,
                Err(SaveError::Source(error)) => {
                    return RunEnd::Failed(JobFailure::transient(
                        "backend_unreachable",
                        format!("downloading `{name}` from {}: {error}", client.base()),
                    ));
                }
                Err(SaveError::Store(error)) => {
                    return RunEnd::Failed(JobFailure::transient(
                        "output_write",
                        comfydock_foundation::hint::error_chain(&error),
                    ));
                }
            };
            let record = json!({
                "name": name, "node": node, "kind": key, "size": size,
                "content_type": content_type(&name), "url": format!("/v1/jobs/{job_id}/outputs/{name}"),
            });
            self.event(job_id, "output", record.clone()).await;
            files.push(record);
        }
        RunEnd::Succeeded(json!({"files": files, "nodes": entry["outputs"]}))
    }
}

/// A prompt an earlier attempt submitted (or was about to), from its `submitting` event.
pub(crate) struct PriorPrompt {
    pub backend: String,
    pub prompt_id: String,
    pub client_id: String,
}

/// The prompt the job's last attempt submitted (or was about to), if any. A job retried by hand
/// (`retried`) runs anew: prompts from before the retry are not taken over.
pub(crate) async fn last_prompt(
    store: &dyn JobStore,
    job_id: Uuid,
) -> Result<Option<PriorPrompt>, crate::store::StoreError> {
    let events = store.events_after(job_id, 0).await?;
    Ok(events
        .iter()
        .rev()
        .take_while(|event| event.kind != "retried")
        .find(|event| event.kind == "submitting")
        .and_then(|event| PriorPrompt::from_event(&event.data)))
}

impl PriorPrompt {
    fn from_event(data: &Value) -> Option<Self> {
        let field = |name: &str| data[name].as_str().map(str::to_owned);
        Some(Self {
            backend: field("backend")?,
            prompt_id: field("prompt_id")?,
            client_id: field("client_id")?,
        })
    }
}

/// What became of the prompt of an earlier attempt.
enum Adoption {
    /// No earlier prompt, or its backend no longer knows it: submit a new one.
    Nothing,
    /// Queued or running: followed on this socket (opened before looking, so no message is missed).
    InFlight {
        client: ComfyClient,
        prompt_id: String,
        socket: Box<Socket>,
    },
    /// Finished: its history entry.
    Finished {
        client: ComfyClient,
        prompt_id: String,
        entry: Value,
    },
}

/// How following a prompt ended.
enum PromptEnd {
    /// `executing {node: null}` (or a success whose end signal is overdue): read the history.
    Finished,
    /// `execution_interrupted` this worker did not ask for (its data).
    InterruptedElsewhere(Value),
    /// The run ends here.
    Run(RunEnd),
}

/// Whether a history entry records an interrupted prompt.
fn was_interrupted(entry: &Value) -> bool {
    entry["status"]["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|message| message[0] == "execution_interrupted")
}

/// Whether a file name a backend reports may be used under the outputs folder as is: one plain
/// component (no separators, no `..`, not hidden, not absolute, no drive prefix).
pub fn is_output_name(name: &str) -> bool {
    is_safe_filename(name)
        && !name.starts_with('.')
        && !name.contains(':')
        && Path::new(name).components().count() == 1
        && matches!(
            Path::new(name).components().next(),
            Some(std::path::Component::Normal(_))
        )
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

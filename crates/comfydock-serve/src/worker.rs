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

use futures::FutureExt as _;
use serde_json::{Map, Value, json};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::comfyui::{ComfyClient, ComfyError, QueueState, Socket, next_message, output_files};
use crate::event_log::EventLog;
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

    /// Records that the backend just answered.
    pub(crate) fn mark_up(&self) {
        self.up.store(true, Ordering::Relaxed);
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
    /// How long a followed prompt may stay silent before its history is looked at (a socket that
    /// no longer hears its prompt must not hold a job until its timeout).
    pub history_poll: Duration,
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
            history_poll: Duration::from_secs(10),
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

/// Outputs of finished prompts downloaded at once per worker, while its backend runs the next job.
const FINISHING_PER_WORKER: usize = 4;

/// A claimed job on its way: its lease kept alive, its cancel token, its event log. Dropping it
/// (recorded, or lost to a panic) stops the heartbeat, so a lease is never kept alive for nothing.
struct Run {
    claimed: Claimed,
    started: Instant,
    token: CancellationToken,
    heartbeat: tokio::task::JoinHandle<()>,
    log: EventLog,
}

impl Drop for Run {
    fn drop(&mut self) {
        self.heartbeat.abort();
    }
}

impl Worker {
    /// Claims and runs jobs until `shutdown` fires. A job holds the worker while its prompt is on
    /// the backend; its outputs are downloaded and its outcome recorded in the background, so the
    /// next job reaches the backend as soon as it is free (a GPU never waits for bookkeeping).
    pub async fn run(self, shutdown: CancellationToken) {
        let worker = Arc::new(self);
        let mut finishing = tokio::task::JoinSet::new();
        let workflows: Vec<String> = worker.workflows.keys().cloned().collect();
        let mut connection: Option<Connection> = None;
        while !shutdown.is_cancelled() {
            while finishing.try_join_next().is_some() {}
            if !worker.backend.is_up() {
                connection = None;
            }
            if !worker.backend.is_up() && !worker.backend.probe().await {
                tokio::select! {
                    () = tokio::time::sleep(worker.config.poll.max(Duration::from_millis(250))) => {}
                    () = shutdown.cancelled() => break,
                }
                continue;
            }
            let waiting = worker.hub.queued_signal();
            tokio::pin!(waiting);
            waiting.as_mut().enable();
            match worker
                .store
                .claim(worker.owner.clone(), workflows.clone(), worker.config.lease)
                .await
            {
                Ok(Some(claimed)) => {
                    worker.hub.changed(claimed.job.id);
                    let run = worker.start_run(claimed);
                    match worker.execute(&run, &mut connection, &shutdown).await {
                        Ran::Collect(outputs) => {
                            while finishing.len() >= FINISHING_PER_WORKER {
                                finishing.join_next().await;
                            }
                            let worker = Arc::clone(&worker);
                            finishing.spawn(async move {
                                let end = worker.collect(outputs, &run.log).await;
                                worker.record(run, end).await;
                            });
                        }
                        Ran::End(end) => worker.record(run, end).await,
                    }
                }
                Ok(None) => {
                    tokio::select! {
                        () = &mut waiting => {}
                        () = tokio::time::sleep(worker.config.poll) => {}
                        () = shutdown.cancelled() => break,
                        () = drain(&mut connection) => {}
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, worker = %worker.owner, "claiming a job failed");
                    tokio::time::sleep(worker.config.poll).await;
                }
            }
        }
        while finishing.join_next().await.is_some() {}
    }

    /// Registers a claimed job (cancel token, heartbeat, event log).
    fn start_run(&self, claimed: Claimed) -> Run {
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
        let log = EventLog::start(Arc::clone(&self.store), self.hub.clone(), job_id);
        Run {
            claimed,
            started: Instant::now(),
            token,
            heartbeat,
            log,
        }
    }

    /// Records how a run ended (after its events), stops its heartbeat and sends its webhook.
    async fn record(&self, run: Run, end: RunEnd) {
        let (claimed, started) = (&run.claimed, run.started);
        let job_id = claimed.job.id;
        // The run's events come before its outcome.
        if let Err(error) = run.log.flush().await {
            tracing::warn!(%error, %job_id, "some events of the run were not recorded");
        }
        run.heartbeat.abort();
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

    /// Runs a job's prompt on the backend (taking over an earlier attempt's prompt where there is
    /// one) until the backend is done with it.
    async fn execute(
        &self,
        run: &Run,
        connection: &mut Option<Connection>,
        shutdown: &CancellationToken,
    ) -> Ran {
        let (job, log, token) = (&run.claimed.job, &run.log, &run.token);
        let Some(api) = self.workflows.get(&job.workflow) else {
            return Ran::End(RunEnd::Failed(JobFailure::permanent(
                "unknown_workflow",
                format!("this instance does not serve workflow `{}`", job.workflow),
            )));
        };
        // An earlier attempt may have submitted a prompt that is still queued, running or done:
        // take that one over instead of running the job a second time. Meanwhile the worker's
        // WebSocket opens if it is not open yet (usually needed: most runs are first attempts).
        let adopt = async {
            if run.claimed.fresh {
                Ok(Adoption::Nothing)
            } else {
                self.adopt(job.id).await
            }
        };
        let (adoption, opened) = tokio::join!(adopt, self.open(connection.take()));
        let mut opened = Some(opened);
        match adoption {
            Ok(Adoption::InFlight {
                client,
                prompt_id,
                mut socket,
            }) => {
                // Unread while the adopted prompt runs, it would fill up with ComfyUI's broadcasts.
                opened = None;
                log.record(
                    "adopted",
                    json!({"backend": client.base(), "prompt_id": prompt_id, "state": "in_flight"}),
                );
                let (end, _) = self
                    .follow(log, api, &client, &mut socket, &prompt_id, token, shutdown)
                    .await;
                drop(socket);
                match end {
                    PromptEnd::Finished => return Ran::Collect(Outputs::History { client, prompt_id }),
                    // An earlier attempt interrupted it while shutting down: run the job anew.
                    PromptEnd::InterruptedElsewhere(_) => {}
                    PromptEnd::Run(end) => return Ran::End(end),
                }
            }
            Ok(Adoption::Finished {
                client,
                prompt_id,
                entry,
            }) => {
                if !was_interrupted(&entry) {
                    log.record(
                        "adopted",
                        json!({"backend": client.base(), "prompt_id": prompt_id, "state": "finished"}),
                    );
                    *connection = opened.and_then(Result::ok);
                    return Ran::Collect(Outputs::Entry { client, entry });
                }
            }
            Ok(Adoption::Nothing) => {}
            Err(failure) => {
                *connection = opened.and_then(Result::ok);
                return Ran::End(RunEnd::Failed(failure));
            }
        }
        let opened = match opened {
            Some(opened) => opened,
            None => self.open(None).await,
        };
        match opened {
            Ok(mut open) => {
                let (ran, after) = self
                    .submit_and_follow(job, api, log, &mut open, token, shutdown)
                    .await;
                if matches!(after, SocketAfter::Reusable) {
                    *connection = Some(open);
                }
                ran
            }
            Err(error) => Ran::End(RunEnd::Failed(
                JobFailure::transient("backend_unreachable", error.to_string())
                    .with_detail(json!({"backend": self.backend.url()})),
            )),
        }
    }

    /// The worker's WebSocket to its backend: `kept` from the last job if it is still open (what
    /// arrived meanwhile is read and dropped; a close means ComfyUI went away), or a new one.
    async fn open(&self, kept: Option<Connection>) -> Result<Connection, ComfyError> {
        if let Some(mut kept) = kept {
            loop {
                match next_message(&mut kept.socket).now_or_never() {
                    None => return Ok(kept),
                    Some(Some(Ok(_))) => {}
                    Some(None | Some(Err(_))) => break,
                }
            }
        }
        let client_id = Uuid::new_v4().to_string();
        let socket = self.backend.client.connect(&client_id).await?;
        Ok(Connection { client_id, socket })
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
        let unreachable = |error: ComfyError| {
            JobFailure::transient("backend_unreachable", error.to_string())
                .with_detail(json!({"backend": prior.backend}))
        };
        // A backend that does not answer lost its queue and history with its process (they live
        // in memory), so the prompt cannot run any more: submit anew.
        let state = match client.queue_state(&prior.prompt_id).await {
            Ok(state) => state,
            Err(ComfyError::Unreachable { .. }) => return Ok(Adoption::Nothing),
            Err(error) => return Err(unreachable(error)),
        };
        if state != QueueState::Absent {
            // Its messages go to the client id it was submitted with: listen there, then look
            // again (ComfyUI moves a prompt from the queue into the history in one step, so one
            // that finished in between is found there). Only an unfinished prompt is listened to:
            // a second socket with a client id takes that id's messages from the first.
            let socket = client.connect(&prior.client_id).await.map_err(unreachable)?;
            if client.queue_state(&prior.prompt_id).await.map_err(unreachable)? != QueueState::Absent {
                return Ok(Adoption::InFlight {
                    client,
                    prompt_id: prior.prompt_id,
                    socket: Box::new(socket),
                });
            }
        }
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
    /// and follows it to its end on the worker's WebSocket; says whether that can serve the next job.
    async fn submit_and_follow(
        &self,
        job: &crate::job::Job,
        api: &WorkflowApi,
        log: &EventLog,
        connection: &mut Connection,
        token: &CancellationToken,
        shutdown: &CancellationToken,
    ) -> (Ran, SocketAfter) {
        let client = &self.backend.client;
        let transient = |error: &ComfyError, after: SocketAfter| {
            let failure = if error.is_transient() {
                JobFailure::transient("backend_unreachable", error.to_string())
            } else {
                JobFailure::permanent("backend_protocol", error.to_string())
            };
            (
                Ran::End(RunEnd::Failed(
                    failure.with_detail(json!({"backend": client.base()})),
                )),
                after,
            )
        };
        let client_id = connection.client_id.clone();
        let prompt_id = Uuid::new_v4().to_string();
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
                Err(error) => return transient(&error, SocketAfter::Reusable),
            }
        }
        let prompt = Value::Object(api.inject(&values));
        // Stored before the prompt leaves: whatever happens next (a crash, a lost reply), the next
        // attempt knows which prompt to look for.
        let submitting = json!({"backend": client.base(), "prompt_id": prompt_id, "client_id": client_id});
        log.record("submitting", submitting);
        if let Err(error) = log.flush().await {
            let failure = JobFailure::transient("queue_unavailable", error);
            return (Ran::End(RunEnd::Failed(failure)), SocketAfter::Reusable);
        }
        match client.submit(&prompt, &client_id, &prompt_id).await {
            Ok(_) => {}
            Err(ComfyError::Rejected { message, body, .. }) => {
                let failure = JobFailure::permanent(
                    "prompt_rejected",
                    format!("ComfyUI rejected the prompt: {message}"),
                )
                .with_detail(body);
                return (Ran::End(RunEnd::Failed(failure)), SocketAfter::Reusable);
            }
            // The prompt may be queued all the same (a lost reply), and whoever takes the job over
            // listens on this socket's client id.
            Err(error) => return transient(&error, SocketAfter::Broken),
        }
        log.record(
            "submitted",
            json!({"backend": client.base(), "prompt_id": prompt_id}),
        );
        let (end, after) = self
            .follow(
                log,
                api,
                client,
                &mut connection.socket,
                &prompt_id,
                token,
                shutdown,
            )
            .await;
        let ran = match end {
            PromptEnd::Finished => Ran::Collect(Outputs::History {
                client: client.clone(),
                prompt_id,
            }),
            PromptEnd::InterruptedElsewhere(data) => Ran::End(RunEnd::Failed(
                JobFailure::permanent("interrupted", "the prompt was interrupted on the ComfyUI server")
                    .with_detail(data),
            )),
            PromptEnd::Run(end) => Ran::End(end),
        };
        (ran, after)
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
        log: &EventLog,
        api: &WorkflowApi,
        client: &ComfyClient,
        socket: &mut Socket,
        prompt_id: &str,
        token: &CancellationToken,
        shutdown: &CancellationToken,
    ) -> (PromptEnd, SocketAfter) {
        let job_id = log.job_id();
        let mut deadline = tokio::time::Instant::now() + self.config.job_timeout;
        let mut next_look = tokio::time::Instant::now() + self.config.history_poll;
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
                        return (PromptEnd::Run(RunEnd::Stopped), SocketAfter::Reusable);
                    }
                    // Whoever takes the job over listens on this socket's client id.
                    return (PromptEnd::Run(RunEnd::Stopped), SocketAfter::Broken);
                }
                () = shutdown.cancelled() => {
                    Self::withdraw(client, prompt_id).await;
                    return (PromptEnd::Run(RunEnd::Released), SocketAfter::Broken);
                }
                message = tokio::time::timeout_at(deadline.min(next_look), next_message(socket)) => message,
            };
            // Quiet for a while: make sure the prompt did not end unheard (another socket with
            // this client id, as after a takeover, takes its messages).
            if message.is_err() && tokio::time::Instant::now() < deadline {
                next_look = tokio::time::Instant::now() + self.config.history_poll;
                if let Ok(Some(_)) = client.history(prompt_id).await {
                    return (PromptEnd::Finished, SocketAfter::Broken);
                }
                continue;
            }
            let message = match message {
                // Succeeded, but `executing {node: null}` is overdue or the socket went away: the
                // history is read with retries instead.
                Err(_) | Ok(None | Some(Err(_))) if succeeded => {
                    return (PromptEnd::Finished, SocketAfter::Broken);
                }
                Err(_) => {
                    Self::withdraw(client, prompt_id).await;
                    let failure = JobFailure::transient(
                        "timeout",
                        format!(
                            "the prompt did not finish within {} s",
                            self.config.job_timeout.as_secs()
                        ),
                    );
                    return (PromptEnd::Run(RunEnd::Failed(failure)), SocketAfter::Broken);
                }
                Ok(None) => {
                    let end = lost(format!("the WebSocket of {} closed mid-job", client.base()));
                    return (end, SocketAfter::Broken);
                }
                Ok(Some(Err(error))) => {
                    let end = lost(format!("the WebSocket of {} failed: {error}", client.base()));
                    return (end, SocketAfter::Broken);
                }
                Ok(Some(Ok(message))) => message,
            };
            let data = &message["data"];
            if data["prompt_id"].as_str() != Some(prompt_id) {
                continue;
            }
            match message["type"].as_str().unwrap_or("") {
                "progress" => {
                    log.record(
                        "progress",
                        json!({"value": data["value"], "max": data["max"], "node": data["node"]}),
                    );
                }
                // The history is complete now; it also says how a run ended whose outcome
                // message this socket did not get.
                "executing" if data["node"].is_null() => return (PromptEnd::Finished, SocketAfter::Reusable),
                "executing" => {
                    let node = data["node"].as_str().unwrap_or("");
                    let class = api
                        .prompt
                        .get(node)
                        .and_then(|n| n["class_type"].as_str())
                        .unwrap_or("");
                    log.record("node", json!({"node": node, "class_type": class}));
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
                    let failure = JobFailure::permanent(
                        "execution_error",
                        format!("node {} ({}) failed: {text}", data["node_id"], data["node_type"]),
                    )
                    .with_detail(data.clone());
                    return (PromptEnd::Run(RunEnd::Failed(failure)), SocketAfter::Reusable);
                }
                "execution_interrupted" => {
                    if token.is_cancelled() {
                        return (PromptEnd::Run(RunEnd::Stopped), SocketAfter::Reusable);
                    }
                    return (
                        PromptEnd::InterruptedElsewhere(data.clone()),
                        SocketAfter::Reusable,
                    );
                }
                _ => {}
            }
        }
    }

    /// Downloads the outputs of a prompt the backend is done with.
    async fn collect(&self, outputs: Outputs, log: &EventLog) -> RunEnd {
        match outputs {
            Outputs::History { client, prompt_id } => self.collect_outputs(&client, log, &prompt_id).await,
            Outputs::Entry { client, entry } => self.download_outputs(&client, log, &entry).await,
        }
    }

    /// Reads the history entry (normally complete, since `executing {node: null}` came; retried
    /// a bounded number of times otherwise) and downloads every output file.
    async fn collect_outputs(&self, client: &ComfyClient, log: &EventLog, prompt_id: &str) -> RunEnd {
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
        self.download_outputs(client, log, &entry).await
    }

    /// Streams every output file of a history entry into the output store under the job's id
    /// (retrying while ComfyUI has not written a file yet). A file name that is not a plain name (a path, `..`)
    /// fails the job: a backend must not choose where files land.
    async fn download_outputs(&self, client: &ComfyClient, log: &EventLog, entry: &Value) -> RunEnd {
        let job_id = log.job_id();
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
            log.record("output", record.clone());
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

/// Where a run stands once the backend is done with its prompt.
enum Ran {
    /// Over: record this.
    End(RunEnd),
    /// The prompt finished: its outputs are still to be downloaded.
    Collect(Outputs),
}

/// The outputs of a finished prompt, to download from its backend.
enum Outputs {
    /// Read from `/history/{prompt_id}` first.
    History { client: ComfyClient, prompt_id: String },
    /// The history entry, already read.
    Entry { client: ComfyClient, entry: Value },
}

/// A worker's WebSocket to its backend, kept from job to job: ComfyUI sends a prompt's messages
/// to the client id it was submitted with. Read while the worker is idle too, so ComfyUI's
/// broadcasts never pile up in it.
struct Connection {
    client_id: String,
    socket: Socket,
}

/// Whether a WebSocket can follow the next prompt after following one.
enum SocketAfter {
    Reusable,
    /// Closed, failed, or left mid-message (a timeout, a shutdown).
    Broken,
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

/// Reads (and drops) what ComfyUI sends an idle worker's WebSocket, forgetting the socket when it
/// closes. Never returns.
async fn drain(connection: &mut Option<Connection>) {
    loop {
        match connection {
            Some(open) => {
                if !matches!(next_message(&mut open.socket).await, Some(Ok(_))) {
                    *connection = None;
                }
            }
            None => std::future::pending::<()>().await,
        }
    }
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

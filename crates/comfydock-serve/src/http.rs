//! The HTTP API (axum): job submission per workflow, job queries, cancellation, output
//! downloads, the event WebSocket, health, readiness, metrics, OpenAPI and docs.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::hub::EventHub;
use crate::job::{JobStatus, NewJob};
use crate::job_view::{event_json, job_json};
use crate::metrics::Metrics;
use crate::output_store::OutputStore;
use crate::params::{WorkflowApi, is_safe_filename};
use crate::store::{JobFilter, JobStore, StoreError};
use crate::uploads::UploadLimits;
use crate::worker::{Backend, content_type};

/// Shared by every handler.
pub struct AppState {
    pub store: Arc<dyn JobStore>,
    pub hub: EventHub,
    pub metrics: Arc<Metrics>,
    pub workflows: Arc<HashMap<String, WorkflowApi>>,
    pub backends: Vec<Arc<Backend>>,
    /// Where workers put outputs (a bucket shared by instances serves every job's outputs).
    pub outputs: OutputStore,
    /// Size limits of job requests and their files.
    pub uploads: UploadLimits,
    /// Whether `/v1` requires a bearer key.
    pub auth: bool,
    pub rate_limit: Option<RateLimiter>,
    pub openapi: Value,
    /// Default attempts for transient failures.
    pub max_attempts: u32,
    /// Which webhook targets a request may name.
    pub webhooks: crate::webhook::WebhookPolicy,
    /// What `GET /v1/environment` shows (the environment serve runs in), when serve has one.
    pub environment: Option<Value>,
}

/// Settings of the HTTP layer.
#[derive(Debug, Clone)]
pub struct HttpLimits {
    /// Largest request body in bytes (413 past it).
    pub body_limit: usize,
    /// Largest uploaded file in bytes, multipart or base64 (413 past it).
    pub upload_limit: usize,
    /// Browser origins allowed by CORS (`*` = any); empty = no CORS headers.
    pub cors_origins: Vec<String>,
}

type AppStateRef = State<Arc<AppState>>;

fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    (
        status,
        axum::Json(json!({"error": code, "message": message.into()})),
    )
        .into_response()
}

fn store_error(err: &StoreError) -> Response {
    tracing::error!(error = %err, "queue database error");
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        "queue_unavailable",
        err.to_string(),
    )
}

/// Builds the router.
pub fn router(state: Arc<AppState>, limits: &HttpLimits) -> Router {
    let v1 = Router::new()
        .route("/v1/workflows/{name}/jobs", axum::routing::post(submit))
        .route("/v1/jobs", get(list_jobs))
        .route("/v1/jobs/{id}", get(get_job).delete(cancel_job))
        .route("/v1/jobs/{id}/retry", axum::routing::post(retry_job))
        .route("/v1/environment", get(environment))
        .route("/v1/jobs/{id}/outputs/{file}", get(get_output))
        .route("/v1/jobs/{id}/events", get(job_events))
        .route_layer(middleware::from_fn_with_state(Arc::clone(&state), authenticate));
    let mut app = Router::new()
        .merge(v1)
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
        .route("/docs", get(|| async { Html(crate::openapi::DOCS_HTML) }))
        .layer(DefaultBodyLimit::max(limits.body_limit))
        .with_state(state);
    if !limits.cors_origins.is_empty() {
        let cors = tower_http::cors::CorsLayer::new()
            .allow_methods([Method::GET, Method::POST, Method::DELETE])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                HeaderName::from_static("idempotency-key"),
            ]);
        let cors = if limits.cors_origins.iter().any(|o| o == "*") {
            cors.allow_origin(tower_http::cors::Any)
        } else {
            let origins: Vec<HeaderValue> = limits
                .cors_origins
                .iter()
                .filter_map(|o| o.parse().ok())
                .collect();
            cors.allow_origin(origins)
        };
        app = app.layer(cors);
    }
    app
}

/// The WebSocket subprotocol serve selects for event streams; a browser (which cannot set an
/// `Authorization` header on a WebSocket) offers it together with `comfydock.bearer.<key>`:
/// `new WebSocket(url, ["comfydock", "comfydock.bearer." + key])`.
pub const WS_PROTOCOL: &str = "comfydock";

/// The prefix of the subprotocol value that carries an API key.
pub const WS_BEARER_PREFIX: &str = "comfydock.bearer.";

/// The API key of a request: `Authorization: Bearer <key>` (the scheme in any case), else a
/// `comfydock.bearer.<key>` value of `Sec-WebSocket-Protocol`.
pub fn request_key(headers: &HeaderMap) -> Option<String> {
    let from_header = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, key)| key.trim().to_owned())
        .filter(|key| !key.is_empty());
    from_header.or_else(|| {
        headers
            .get_all(header::SEC_WEBSOCKET_PROTOCOL)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .find_map(|p| p.trim().strip_prefix(WS_BEARER_PREFIX).map(str::to_owned))
            .filter(|key| !key.is_empty())
    })
}

/// Whether a request may see details meant for key holders (backend URLs): always when serve
/// runs without keys (loopback only), else with a valid key.
async fn is_trusted(state: &AppState, headers: &HeaderMap) -> bool {
    if !state.auth {
        return true;
    }
    let Some(key) = request_key(headers) else {
        return false;
    };
    matches!(
        state.store.find_key(crate::keys::hash_key(&key)).await,
        Ok(Some(_))
    )
}

/// Bearer keys (when configured) and per-key rate limits for `/v1`.
async fn authenticate(State(state): AppStateRef, request: Request, next: Next) -> Response {
    let mut subject = "anonymous".to_owned();
    if state.auth {
        let Some(key) = request_key(request.headers()) else {
            return error(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "send `Authorization: Bearer <key>` (WebSockets from a browser: the subprotocols \
                 `comfydock` and `comfydock.bearer.<key>`)",
            );
        };
        let key = key.as_str();
        match state.store.find_key(crate::keys::hash_key(key)).await {
            Ok(Some(record)) => subject = record.id,
            Ok(None) => {
                return error(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized",
                    "unknown or revoked API key",
                );
            }
            Err(err) => return store_error(&err),
        }
    }
    if let Some(limiter) = &state.rate_limit
        && let Err(wait) = limiter.take(&subject)
    {
        let mut response = error(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "too many requests for this key",
        );
        if let Ok(value) = HeaderValue::from_str(&wait.as_secs().max(1).to_string()) {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        return response;
    }
    next.run(request).await
}

/// A token bucket per key: `per_minute` requests, refilled continuously.
pub struct RateLimiter {
    per_minute: u32,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl RateLimiter {
    pub fn new(per_minute: u32) -> Self {
        Self {
            per_minute: per_minute.max(1),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token, or says how long until one is available.
    pub fn take(&self, key: &str) -> Result<(), Duration> {
        let capacity = f64::from(self.per_minute);
        let rate = capacity / 60.0;
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        let (tokens, last) = buckets.entry(key.to_owned()).or_insert((capacity, now));
        *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * rate).min(capacity);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - *tokens) / rate))
        }
    }
}

/// Why a request body was not read.
enum BodyError {
    TooLarge,
    Broken(String),
}

/// At most this much of a refused body is read and dropped before the 413 is sent.
const DRAIN_MAX: usize = 64 * 1024 * 1024;
/// Nor for longer than this.
const DRAIN_TIME: Duration = Duration::from_secs(5);

/// A request body of at most `limit` bytes. Past the limit, the rest is read and dropped (up to
/// [`DRAIN_MAX`] bytes, for at most [`DRAIN_TIME`]) before the 413 goes out: closing a connection
/// the client is still writing to makes it see a reset instead of the answer.
async fn read_body(body: axum::body::Body, limit: usize) -> Result<Bytes, BodyError> {
    use futures::StreamExt as _;
    let mut stream = body.into_data_stream();
    let mut held = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk =
            chunk.map_err(|e| BodyError::Broken(format!("the request body could not be read: {e}")))?;
        if held.len() + chunk.len() > limit {
            let mut drained = held.len() + chunk.len();
            drop(held);
            let drain = async {
                while drained < DRAIN_MAX
                    && let Some(Ok(chunk)) = stream.next().await
                {
                    drained += chunk.len();
                }
            };
            let _ = tokio::time::timeout(DRAIN_TIME, drain).await;
            return Err(BodyError::TooLarge);
        }
        held.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(held))
}

async fn submit(
    State(state): AppStateRef,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    let Some(api) = state.workflows.get(&name) else {
        return error(
            StatusCode::NOT_FOUND,
            "unknown_workflow",
            format!("no workflow `{name}` is served here"),
        );
    };
    // JSON, or multipart/form-data (files sniffed and held to the per-file limit).
    let body = match read_body(body, state.uploads.per_request).await {
        Ok(body) => body,
        Err(BodyError::TooLarge) => {
            return crate::uploads::too_large(None, state.uploads.per_request, "the request body");
        }
        Err(BodyError::Broken(detail)) => {
            return error(StatusCode::BAD_REQUEST, "body_unreadable", detail);
        }
    };
    let body: Value = match crate::uploads::request_body(api, &headers, body, state.uploads).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    let request = match api.validate(&body) {
        Ok(request) => request,
        Err(errors) => {
            return (
                StatusCode::UNPROCESSABLE_ENTITY,
                axum::Json(json!({"error": "validation_failed", "errors": errors})),
            )
                .into_response();
        }
    };
    if let Some(url) = &request.webhook
        && let Err(reason) = state.webhooks.check(url).await
    {
        let errors =
            json!([{"path": "webhook", "constraint": "target", "message": format!("the webhook {reason}")}]);
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            axum::Json(json!({"error": "validation_failed", "errors": errors})),
        )
            .into_response();
    }
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if key.as_ref().is_some_and(|k| k.is_empty() || k.len() > 200) {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            "Idempotency-Key must be 1 to 200 characters",
        );
    }
    let params = Value::Object(request.params);
    let new = NewJob {
        workflow: name.clone(),
        params: params.clone(),
        priority: request.priority,
        max_attempts: request.max_attempts.unwrap_or(state.max_attempts),
        idempotency_key: key,
        webhook: request.webhook,
    };
    let asked = new.clone();
    match state.store.enqueue(new).await {
        Ok(enqueued) if enqueued.created => {
            state.hub.job_queued();
            state.hub.changed(enqueued.job.id);
            (StatusCode::CREATED, axum::Json(job_json(&enqueued.job))).into_response()
        }
        Ok(enqueued) => {
            // The same key names the same request: workflow, parameters, priority, webhook and
            // attempts all alike.
            let job = &enqueued.job;
            if job.workflow != name
                || job.params != params
                || job.priority != asked.priority
                || job.webhook != asked.webhook
                || job.max_attempts != asked.max_attempts
            {
                return error(
                    StatusCode::CONFLICT,
                    "idempotency_key_reused",
                    format!(
                        "Idempotency-Key was used for a different request (job {})",
                        enqueued.job.id
                    ),
                );
            }
            (StatusCode::OK, axum::Json(job_json(&enqueued.job))).into_response()
        }
        Err(err) => store_error(&err),
    }
}

fn not_found(id: &str) -> Response {
    error(StatusCode::NOT_FOUND, "not_found", format!("no job `{id}`"))
}

async fn get_job(State(state): AppStateRef, Path(id): Path<String>) -> Response {
    let Ok(id) = Uuid::parse_str(&id) else {
        return not_found(&id);
    };
    match state.store.get(id).await {
        Ok(Some(job)) => axum::Json(job_json(&job)).into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, "not_found", format!("no job `{id}`")),
        Err(err) => store_error(&err),
    }
}

#[derive(Deserialize)]
struct ListQuery {
    status: Option<String>,
    workflow: Option<String>,
    limit: Option<u32>,
}

async fn list_jobs(State(state): AppStateRef, Query(query): Query<ListQuery>) -> Response {
    let status = match query.status.as_deref().map(str::parse::<JobStatus>).transpose() {
        Ok(status) => status,
        Err(err) => {
            let errors = json!([{"path": "status", "constraint": "enum", "message": err.to_string(), "allowed": JobStatus::ALL}]);
            return (
                StatusCode::UNPROCESSABLE_ENTITY,
                axum::Json(json!({"error": "validation_failed", "errors": errors})),
            )
                .into_response();
        }
    };
    let filter = JobFilter {
        status,
        workflow: query.workflow,
        limit: query.limit.unwrap_or(100).min(1000),
    };
    match state.store.list(filter).await {
        Ok(jobs) => {
            axum::Json(json!({"jobs": jobs.iter().map(job_json).collect::<Vec<_>>()})).into_response()
        }
        Err(err) => store_error(&err),
    }
}

async fn cancel_job(State(state): AppStateRef, Path(id): Path<String>) -> Response {
    let Ok(id) = Uuid::parse_str(&id) else {
        return not_found(&id);
    };
    match state.store.cancel(id).await {
        Ok(Some(before)) => {
            let running_here = before.status == JobStatus::Running && state.hub.cancel(id);
            // Running here: the worker withdraws its prompt now. Otherwise an earlier attempt's
            // prompt may wait in (or run on) a ComfyUI queue: withdraw it from here (a worker
            // elsewhere also does when its heartbeat notices; twice does no harm).
            if !running_here && !before.status.is_terminal() {
                let store = Arc::clone(&state.store);
                tokio::spawn(async move {
                    match crate::worker::last_prompt(&*store, id).await {
                        Ok(Some(prompt)) => {
                            let client = crate::comfyui::ComfyClient::new(&prompt.backend);
                            if let Err(error) = client.withdraw(&prompt.prompt_id).await {
                                tracing::warn!(%error, %id, "withdrawing a cancelled job's prompt failed");
                            }
                        }
                        Ok(None) => {}
                        Err(error) => tracing::warn!(%error, %id, "reading a cancelled job's events failed"),
                    }
                });
            }
            state.hub.changed(id);
            match state.store.get(id).await {
                Ok(Some(job)) => axum::Json(job_json(&job)).into_response(),
                Ok(None) => error(StatusCode::NOT_FOUND, "not_found", format!("no job `{id}`")),
                Err(err) => store_error(&err),
            }
        }
        Ok(None) => error(StatusCode::NOT_FOUND, "not_found", format!("no job `{id}`")),
        Err(err) => store_error(&err),
    }
}

/// Puts a dead-lettered or failed job back in the queue with a fresh budget of attempts.
async fn retry_job(State(state): AppStateRef, Path(id): Path<String>) -> Response {
    let Ok(id) = Uuid::parse_str(&id) else {
        return not_found(&id);
    };
    match state.store.retry(id).await {
        Ok(Some(before)) if before.status.is_retryable() => {
            state.hub.job_queued();
            state.hub.changed(id);
            match state.store.get(id).await {
                Ok(Some(job)) => axum::Json(job_json(&job)).into_response(),
                Ok(None) => not_found(&id.to_string()),
                Err(err) => store_error(&err),
            }
        }
        Ok(Some(before)) => error(
            StatusCode::CONFLICT,
            "not_retryable",
            format!(
                "job {id} is {}; only dead or failed jobs can be retried",
                before.status
            ),
        ),
        Ok(None) => not_found(&id.to_string()),
        Err(err) => store_error(&err),
    }
}

/// The environment serve runs in (ComfyUI, nodes, models, history), when it runs in one.
async fn environment(State(state): AppStateRef) -> Response {
    match &state.environment {
        Some(summary) => axum::Json(summary.clone()).into_response(),
        None => error(
            StatusCode::NOT_FOUND,
            "no_environment",
            "serve runs outside a comfydock environment (workflow files and `--comfyui` only)",
        ),
    }
}

async fn get_output(State(state): AppStateRef, Path((id, file)): Path<(String, String)>) -> Response {
    let Ok(id) = Uuid::parse_str(&id) else {
        return not_found(&id);
    };
    if !is_safe_filename(&file) || file.starts_with('.') {
        return error(StatusCode::NOT_FOUND, "not_found", format!("no output `{file}`"));
    }
    match state.outputs.open(id, &file).await {
        Ok(Some(opened)) => {
            let disposition = format!("inline; filename=\"{}\"", file.replace('"', ""));
            let mut response = (
                StatusCode::OK,
                [
                    (header::CONTENT_TYPE, content_type(&file).to_owned()),
                    (header::CONTENT_DISPOSITION, disposition),
                ],
                axum::body::Body::from_stream(opened.chunks),
            )
                .into_response();
            if let Some(size) = opened.size {
                response
                    .headers_mut()
                    .insert(header::CONTENT_LENGTH, HeaderValue::from(size));
            }
            response
        }
        Ok(None) => error(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("job {id} has no output `{file}`"),
        ),
        Err(err) => {
            tracing::error!(error = %comfydock_foundation::hint::error_chain(&err), "reading an output failed");
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "outputs_unavailable",
                format!("job {id}'s output `{file}` cannot be read now; try again"),
            )
        }
    }
}

#[derive(Deserialize)]
struct EventsQuery {
    after: Option<i64>,
}

async fn job_events(
    State(state): AppStateRef,
    Path(id): Path<String>,
    Query(query): Query<EventsQuery>,
    upgrade: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Response {
    let Ok(id) = Uuid::parse_str(&id) else {
        return not_found(&id);
    };
    let finished = match state.store.get(id).await {
        Ok(Some(job)) => job.status.is_terminal(),
        Ok(None) => return error(StatusCode::NOT_FOUND, "not_found", format!("no job `{id}`")),
        Err(err) => return store_error(&err),
    };
    let after = query.after.unwrap_or(0).max(0);
    // A plain GET (no upgrade) gets the log so far as JSON, for clients that poll.
    let Ok(upgrade) = upgrade else {
        return match state.store.events_after(id, after).await {
            Ok(events) => axum::Json(json!({"events": events.iter().map(event_json).collect::<Vec<_>>()}))
                .into_response(),
            Err(err) => store_error(&err),
        };
    };
    upgrade
        .protocols([WS_PROTOCOL])
        .on_upgrade(move |socket| stream_events(state, id, after, finished, socket))
}

const TERMINAL_EVENTS: [&str; 4] = ["succeeded", "failed", "dead", "cancelled"];

/// Sends the stored events after `after`, then new ones as they come (woken by the hub, and
/// polling for events written by other instances), closing after the terminal event, or at once
/// when the job had finished and `after` is already past its terminal event.
async fn stream_events(state: Arc<AppState>, id: Uuid, mut last: i64, finished: bool, mut socket: WebSocket) {
    let mut wakeups = state.hub.subscribe();
    let mut first = true;
    loop {
        let events = match state.store.events_after(id, last).await {
            Ok(events) => events,
            Err(err) => {
                tracing::warn!(error = %err, "reading job events failed");
                Vec::new()
            }
        };
        if first && finished && events.is_empty() {
            let _ = socket.send(Message::Close(None)).await;
            return;
        }
        first = false;
        let count = events.len();
        for (index, event) in events.into_iter().enumerate() {
            last = event.seq;
            if socket
                .send(Message::Text(event_json(&event).to_string().into()))
                .await
                .is_err()
            {
                return;
            }
            // A terminal event ends the stream unless the job went on (a client retried it).
            if TERMINAL_EVENTS.contains(&event.kind.as_str())
                && index + 1 == count
                && !matches!(state.store.get(id).await, Ok(Some(job)) if !job.status.is_terminal())
            {
                let _ = socket.send(Message::Close(None)).await;
                return;
            }
        }
        tokio::select! {
            open = wakeup_for(&mut wakeups, id) => {
                if !open {
                    return;
                }
            }
            () = tokio::time::sleep(Duration::from_millis(500)) => {}
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Close(_)) | Err(_)) | None => return,
                Some(Ok(_)) => {}
            },
        }
    }
}

/// Waits until the hub says job `id` changed (or that signals were missed, which may include
/// it). False when the hub is gone.
async fn wakeup_for(wakeups: &mut tokio::sync::broadcast::Receiver<Uuid>, id: Uuid) -> bool {
    use tokio::sync::broadcast::error::RecvError;
    loop {
        match wakeups.recv().await {
            Ok(changed) if changed != id => {}
            Ok(_) | Err(RecvError::Lagged(_)) => return true,
            Err(RecvError::Closed) => return false,
        }
    }
}

/// A backend's name for someone who may not see its URL: `backend-<index>`.
fn backend_label(trusted: bool, index: usize, backend: &Backend) -> String {
    if trusted {
        backend.url().to_owned()
    } else {
        format!("backend-{index}")
    }
}

/// Readiness: whether any backend answers. Backend URLs only for key holders (or without keys).
async fn readyz(State(state): AppStateRef, headers: HeaderMap) -> Response {
    let trusted = is_trusted(&state, &headers).await;
    let probes = state
        .backends
        .iter()
        .enumerate()
        .map(
            |(index, backend)| async move { (backend_label(trusted, index, backend), backend.probe().await) },
        );
    let results = futures::future::join_all(probes).await;
    let any_up = results.iter().any(|(_, up)| *up);
    let key = if trusted { "url" } else { "name" };
    let body = json!({
        "ready": any_up,
        "backends": results.iter().map(|(label, up)| json!({key: label, "up": up})).collect::<Vec<_>>(),
    });
    let status = if any_up {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(body)).into_response()
}

/// Prometheus metrics; backends are labelled by URL for key holders, `backend-<index>` otherwise.
async fn metrics(State(state): AppStateRef, headers: HeaderMap) -> Response {
    let trusted = is_trusted(&state, &headers).await;
    match state.store.stats().await {
        Ok(queue) => {
            let backends: Vec<(String, bool)> = state
                .backends
                .iter()
                .enumerate()
                .map(|(index, b)| (backend_label(trusted, index, b), b.is_up()))
                .collect();
            (
                [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                state.metrics.render(&queue, &backends),
            )
                .into_response()
        }
        Err(err) => store_error(&err),
    }
}

async fn openapi(State(state): AppStateRef) -> Response {
    axum::Json(state.openapi.clone()).into_response()
}

/// Whether serving on `addr` without API keys is allowed (loopback only).
pub fn is_loopback(addr: &SocketAddr) -> bool {
    addr.ip().is_loopback()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limiter_refuses_past_its_budget_per_key() {
        let limiter = RateLimiter::new(3);
        assert!(limiter.take("a").is_ok());
        assert!(limiter.take("a").is_ok());
        assert!(limiter.take("a").is_ok());
        let wait = limiter.take("a").unwrap_err();
        assert!(
            wait > Duration::from_secs(10) && wait <= Duration::from_secs(20),
            "{wait:?}"
        );
        assert!(limiter.take("b").is_ok(), "other keys have their own bucket");
    }
}

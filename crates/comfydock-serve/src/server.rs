//! Starting a serve instance: derive the workflow APIs from a backend's `/object_info`, bind,
//! run one worker per backend and a lease reaper, serve HTTP until shut down.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::http::{AppState, HttpLimits, RateLimiter, is_loopback, router};
use crate::hub::EventHub;
use crate::metrics::Metrics;
use crate::output_store::{OutputStore, OutputStoreError};
use crate::params::{ApiDefinitionError, ExposeConfig, WorkflowApi};
use crate::store::{JobStore, StoreError};
use crate::worker::{Backend, Worker, WorkerConfig};

/// A workflow to serve.
#[derive(Debug, Clone)]
pub struct WorkflowSource {
    /// The route name (`/v1/workflows/{name}/jobs`).
    pub name: String,
    /// The workflow JSON (UI or API format).
    pub workflow: Value,
    /// `[tool.comfydock.api.<name>]`, when the manifest has one.
    pub expose: Option<ExposeConfig>,
}

/// Everything `serve` needs besides the store.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub listen: SocketAddr,
    /// ComfyUI base URLs; one worker each.
    pub backends: Vec<String>,
    pub workflows: Vec<WorkflowSource>,
    /// Names this instance in lease owners (`<instance>/<backend index>`).
    pub instance: String,
    pub worker: WorkerConfig,
    /// Default attempts for transient failures.
    pub max_attempts: u32,
    pub limits: HttpLimits,
    /// Requests per minute per key (or for everyone without keys).
    pub rate_limit_per_minute: Option<u32>,
    /// How long to wait for a backend to answer `/object_info` at startup.
    pub startup_timeout: Duration,
    /// Serve the web console under `/console` (`--no-console` turns it off).
    pub console: bool,
    /// The environment serve runs in, as `GET /v1/environment` shows it (the CLI passes it in).
    pub environment: Option<Value>,
}

impl ServeOptions {
    /// Defaults around the required parts; `outputs` is a folder (a `PathBuf`) or an
    /// [`OutputStore`].
    pub fn new(
        listen: SocketAddr,
        backends: Vec<String>,
        workflows: Vec<WorkflowSource>,
        outputs: impl Into<OutputStore>,
    ) -> Self {
        Self {
            listen,
            backends,
            workflows,
            instance: format!("serve-{}", uuid::Uuid::new_v4().simple()),
            worker: WorkerConfig {
                outputs: outputs.into(),
                ..WorkerConfig::default()
            },
            max_attempts: 3,
            limits: HttpLimits {
                body_limit: 64 * 1024 * 1024,
                upload_limit: 32 * 1024 * 1024,
                cors_origins: Vec::new(),
            },
            rate_limit_per_minute: None,
            startup_timeout: Duration::from_mins(2),
            console: true,
            environment: None,
        }
    }
}

/// Errors starting `serve`.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Definition(#[from] ApiDefinitionError),
    #[error(transparent)]
    Outputs(#[from] OutputStoreError),
    #[error("no ComfyUI backend answered /object_info within {seconds} s (tried {urls})")]
    NoBackend { urls: String, seconds: u64 },
    #[error("no backend given: pass `--comfyui URL` or `--spawn N`")]
    NoBackends,
    #[error("refusing to listen on {addr} without API keys: only loopback addresses are allowed then")]
    NeedsApiKey { addr: SocketAddr },
    #[error("cannot listen on {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

impl comfydock_foundation::Hinted for ServeError {
    fn hint(&self) -> Option<String> {
        match self {
            ServeError::NeedsApiKey { .. } => Some(
                "create a key with `comfydock serve keys create NAME`, or listen on 127.0.0.1".to_owned(),
            ),
            ServeError::NoBackend { .. } => Some(
                "start ComfyUI with `comfydock run --background`, or let serve start it with `--spawn 1`"
                    .to_owned(),
            ),
            ServeError::Bind { addr, .. } => Some(format!(
                "pick another address with `--listen` (is something on {addr}?)"
            )),
            ServeError::Store(error) => comfydock_foundation::Hinted::hint(error),
            ServeError::Definition(error) => comfydock_foundation::Hinted::hint(error),
            ServeError::Outputs(error) => comfydock_foundation::Hinted::hint(error),
            ServeError::NoBackends => {
                Some("pass `--comfyui http://127.0.0.1:8188` or `--spawn 1`".to_owned())
            }
        }
    }
}

/// A running instance.
pub struct RunningServer {
    addr: SocketAddr,
    shutdown: CancellationToken,
    tasks: JoinSet<()>,
}

impl RunningServer {
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A token that stops the server when cancelled.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Runs until the shutdown token fires. Running prompts are interrupted and their jobs go
    /// back to the queue (the attempt is not counted), so another instance or a restart runs them.
    pub async fn wait(mut self) {
        while self.tasks.join_next().await.is_some() {}
    }

    /// Runs until SIGINT (Ctrl-C) or SIGTERM (`docker stop`, Kubernetes, systemd) arrives, or the
    /// shutdown token fires. Either signal drains: no new claims, running prompts are withdrawn
    /// from their backends and their jobs released to the queue at once (no lease to wait out).
    pub async fn run_until_signal(self) {
        let stop = self.shutdown.clone();
        tokio::spawn(async move {
            stop_signal().await;
            stop.cancel();
        });
        self.wait().await;
    }

    /// Stops and waits.
    pub async fn stop(self) {
        self.shutdown.cancel();
        self.wait().await;
    }
}

/// Resolves at the first SIGINT or SIGTERM (SIGINT only where there is no SIGTERM).
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut terminate) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = terminate.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// The multi-threaded runtime a synchronous caller (the CLI) runs `serve` on.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("comfydock-serve")
        .build()
}

/// Fetches `/object_info` from the first backend that answers (which counts as up from then on:
/// its worker takes jobs at once; the others are probed by their workers).
async fn fetch_object_info(backends: &[Arc<Backend>], timeout: Duration) -> Result<Value, ServeError> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        for backend in backends {
            if let Ok(info) = backend.client.object_info().await {
                backend.mark_up();
                return Ok(info);
            }
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(ServeError::NoBackend {
                urls: backends
                    .iter()
                    .map(|b| b.url().to_owned())
                    .collect::<Vec<_>>()
                    .join(", "),
                seconds: timeout.as_secs(),
            });
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Starts serving.
pub async fn start(options: ServeOptions, store: Arc<dyn JobStore>) -> Result<RunningServer, ServeError> {
    if options.backends.is_empty() {
        return Err(ServeError::NoBackends);
    }
    // A bucket that is missing, refuses the credentials or cannot be reached stops serve here,
    // not every job later.
    options.worker.outputs.check().await?;
    let auth = crate::keys::any_active(&*store).await?;
    if !auth && !is_loopback(&options.listen) {
        return Err(ServeError::NeedsApiKey { addr: options.listen });
    }
    let backends: Vec<Arc<Backend>> = options
        .backends
        .iter()
        .map(|url| Arc::new(Backend::new(url)))
        .collect();
    let object_info = fetch_object_info(&backends, options.startup_timeout).await?;
    let mut workflows = HashMap::new();
    for source in &options.workflows {
        let api = WorkflowApi::derive(
            &source.name,
            &source.workflow,
            &object_info,
            source.expose.as_ref(),
        )?;
        workflows.insert(source.name.clone(), api);
    }
    let mut sorted: Vec<&WorkflowApi> = workflows.values().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    let openapi = crate::openapi::document(&sorted, env!("CARGO_PKG_VERSION"));
    let workflows = Arc::new(workflows);
    let hub = EventHub::new();
    let metrics = Arc::new(Metrics::default());
    let state = Arc::new(AppState {
        store: Arc::clone(&store),
        hub: hub.clone(),
        metrics: Arc::clone(&metrics),
        workflows: Arc::clone(&workflows),
        backends: backends.clone(),
        outputs: options.worker.outputs.clone(),
        uploads: crate::uploads::UploadLimits {
            per_file: options.limits.upload_limit,
            per_request: options.limits.body_limit,
        },
        auth,
        rate_limit: options.rate_limit_per_minute.map(RateLimiter::new),
        openapi,
        max_attempts: options.max_attempts,
        webhooks: options.worker.webhooks,
        environment: options.environment.clone(),
    });
    let listener = tokio::net::TcpListener::bind(options.listen)
        .await
        .map_err(|source| ServeError::Bind {
            addr: options.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| ServeError::Bind {
        addr: options.listen,
        source,
    })?;
    let shutdown = CancellationToken::new();
    let mut tasks = JoinSet::new();

    // Restart recovery: leases of a crashed instance run out and their jobs go back to the queue.
    {
        let store = Arc::clone(&store);
        let hub = hub.clone();
        let shutdown = shutdown.clone();
        let every = (options.worker.lease / 2).max(Duration::from_millis(100));
        tasks.spawn(async move {
            loop {
                match store.requeue_expired().await {
                    Ok(0) => {}
                    Ok(n) => {
                        tracing::info!(jobs = n, "requeued jobs whose lease expired");
                        hub.job_queued();
                    }
                    Err(error) => tracing::warn!(%error, "requeueing expired leases failed"),
                }
                tokio::select! {
                    () = tokio::time::sleep(every) => {}
                    () = shutdown.cancelled() => break,
                }
            }
        });
    }
    for (index, backend) in backends.iter().enumerate() {
        let worker = Worker {
            owner: format!("{}/{index}", options.instance),
            backend: Arc::clone(backend),
            store: Arc::clone(&store),
            hub: hub.clone(),
            metrics: Arc::clone(&metrics),
            workflows: Arc::clone(&workflows),
            config: options.worker.clone(),
        };
        tasks.spawn(worker.run(shutdown.clone()));
    }
    let mut app = router(state, &options.limits);
    if options.console {
        app = app.merge(crate::console::router());
    }
    let stop = shutdown.clone();
    tasks.spawn(async move {
        let serve = axum::serve(listener, app).with_graceful_shutdown(async move { stop.cancelled().await });
        if let Err(error) = serve.await {
            tracing::error!(%error, "HTTP server failed");
        }
    });
    Ok(RunningServer {
        addr,
        shutdown,
        tasks,
    })
}

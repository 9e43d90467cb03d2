//! Every environment variable comfydock reads, in one place.
//!
//! Settings keys and their variables are listed with the keys in [`comfydock_environments::settings`]; these are
//! the variables that are not settings.

/// The workspace to use when `--workspace` is not given (default `~/comfydock`).
pub const COMFYDOCK_HOME: &str = "COMFYDOCK_HOME";
/// The environment to act on when `-e/--env` is not given (else the active one).
pub const COMFYDOCK_ENV: &str = "COMFYDOCK_ENV";
/// Seconds to wait for the workspace lock before failing (default 60).
pub const COMFYDOCK_LOCK_TIMEOUT: &str = "COMFYDOCK_LOCK_TIMEOUT";
/// Python interpreter used to install uv when it is missing (default `python3`).
pub const COMFYDOCK_PYTHON: &str = "COMFYDOCK_PYTHON";
/// Disables coloured output (<https://no-color.org>).
pub const NO_COLOR: &str = "NO_COLOR";
/// The container client `deploy --build` uses (`docker` or `podman`) [default: docker when it
/// reaches an engine, else podman].
pub const COMFYDOCK_CONTAINER_ENGINE: &str = "COMFYDOCK_CONTAINER_ENGINE";
/// Overrides the `-v/-q` log filter (tracing `EnvFilter` syntax).
pub const RUST_LOG: &str = "RUST_LOG";
/// uv's cache directory; passed through untouched, else the workspace-shared cache is used.
pub const UV_CACHE_DIR: &str = "UV_CACHE_DIR";
/// uv's switch for its progress drawing: comfydock sets it on quiet calls; when the user sets it,
/// uv never draws progress.
pub const UV_NO_PROGRESS: &str = "UV_NO_PROGRESS";

//! Running ComfyUI: foreground (signals and exit code pass through) or in the background with a
//! recorded pid, start time and log file.

mod startup_failure;
mod tracked_process;

use std::io::{Read as _, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rustix::process::Signal;
use serde::{Deserialize, Serialize};

pub use startup_failure::{MissingModule, missing_module, package_for_import};
use tracked_process::TrackedProcess;

use crate::environment::Environment;
use comfydock_foundation::Hinted;
use comfydock_foundation::atomic_file::write_atomic;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("Port {port} on {host} is already in use")]
    PortBusy { host: String, port: u16 },
    #[error("`{name}` is already running (pid {pid}, port {port})")]
    AlreadyRunning { name: String, pid: u32, port: u16 },
    #[error("`{name}` is not running")]
    NotRunning { name: String },
    #[error("ComfyUI exited during startup with {status}; see `{log}`")]
    ExitedEarly { status: String, log: PathBuf },
    #[error(
        "ComfyUI of `{name}` exited during startup: Python module `{}` is not installed",
        missing.module
    )]
    MissingModule { name: String, missing: MissingModule },
    #[error("ComfyUI of `{name}` (pid {pid}) is still running after SIGKILL")]
    StillRunning { name: String, pid: u32 },
    #[error("Failed to start ComfyUI with `{python}`")]
    Spawn {
        python: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl Hinted for RunError {
    fn hint(&self) -> Option<String> {
        match self {
            Self::PortBusy { port, .. } => Some(format!(
                "pick another port with `--port {}`, or stop whatever listens on {port}",
                port + 1
            )),
            Self::AlreadyRunning { name, .. } => Some(format!("stop it with `comfydock -e {name} stop`")),
            Self::NotRunning { name } => {
                Some(format!("start it with `comfydock -e {name} run --background`"))
            }
            Self::ExitedEarly { log, .. } => Some(format!("read the log: `tail {}`", log.display())),
            Self::MissingModule { name, missing } => Some(add_package_hint(name, missing)),
            Self::StillRunning { pid, .. } => Some(format!(
                "it may be stuck in the kernel (state D); look at it with `ps -o pid,stat,cmd -p {pid}`"
            )),
            _ => None,
        }
    }
}

/// The hint for a missing module: the command that adds its package to the environment.
pub fn add_package_hint(name: &str, missing: &MissingModule) -> String {
    format!(
        "add it with `comfydock -e {name} py add {}`, then start ComfyUI again",
        missing.package
    )
}

/// What `run --background` records (`.run.json` in the environment).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunRecord {
    pub pid: u32,
    pub port: u16,
    pub host: String,
    pub log: PathBuf,
    pub started_at: String,
    /// When the process started, as the system reports it (Linux: `/proc/PID/stat` field 22):
    /// tells it from a later process that reuses the pid. A record without it is not trusted.
    #[serde(default)]
    pub process_start: Option<String>,
}

fn record_path(env: &Environment) -> PathBuf {
    env.root.join(".run.json")
}

/// The background ComfyUI of `env`, if it is alive.
pub fn running(env: &Environment) -> Option<RunRecord> {
    tracked(env).map(|(record, _)| record)
}

/// The recorded process, verified alive and the same process (pid and start time). A record
/// that fails the check is stale — the process is gone or its pid belongs to another process
/// now — and is removed.
fn tracked(env: &Environment) -> Option<(RunRecord, TrackedProcess)> {
    let path = record_path(env);
    let text = fs_err::read_to_string(&path).ok()?;
    let found = serde_json::from_str::<RunRecord>(&text).ok().and_then(|record| {
        let process = TrackedProcess::find(record.pid, record.process_start.as_deref()?)?;
        Some((record, process))
    });
    if found.is_none() {
        let _ = fs_err::remove_file(&path);
    }
    found
}

/// The folders `run` points ComfyUI at (`--user-directory`, `--input-directory`,
/// `--output-directory`). ComfyUI refuses to start when the user directory does not exist.
pub fn data_directories(env: &Environment) -> [PathBuf; 3] {
    let comfyui = env.comfyui();
    [
        comfyui.join("user"),
        comfyui.join("input"),
        comfyui.join("output"),
    ]
}

/// Create the folders of [`data_directories`] (kept if they exist).
pub fn create_data_directories(env: &Environment) -> std::io::Result<()> {
    data_directories(env).iter().try_for_each(fs_err::create_dir_all)
}

/// How to start ComfyUI.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub host: String,
    pub port: u16,
    pub extra_args: Vec<String>,
    pub log: PathBuf,
}

/// The command that starts ComfyUI for `env`; the folders of [`data_directories`] must exist
/// (see [`create_data_directories`]).
pub fn command(env: &Environment, options: &RunOptions) -> Command {
    let [user, input, output] = data_directories(env);
    let mut cmd = Command::new(env.python());
    cmd.current_dir(env.comfyui())
        .arg("main.py")
        .args(["--listen", &options.host, "--port", &options.port.to_string()])
        .arg("--extra-model-paths-config")
        .arg(env.extra_model_paths())
        .arg("--user-directory")
        .arg(user)
        .arg("--input-directory")
        .arg(input)
        .arg("--output-directory")
        .arg(output)
        .args(&options.extra_args)
        .env("VIRTUAL_ENV", env.venv())
        .env("PYTHONUNBUFFERED", "1");
    cmd
}

/// Whether the port can be bound (nothing listens on it).
fn port_is_free(host: &str, port: u16) -> bool {
    check_port(host, port).is_ok()
}

/// Refuse a port something already listens on.
pub fn check_port(host: &str, port: u16) -> Result<(), RunError> {
    let bind_host = if host == "0.0.0.0" || host.is_empty() {
        "0.0.0.0"
    } else {
        host
    };
    TcpListener::bind((bind_host, port))
        .map(drop)
        .map_err(|_| RunError::PortBusy {
            host: host.to_owned(),
            port,
        })
}

/// How much of ComfyUI's stderr a foreground run keeps to tell why it failed.
const STDERR_TAIL_BYTES: usize = 64 * 1024;

/// Run in the foreground and return ComfyUI's exit code. Its stderr is copied to `stderr` as it
/// arrives; when it fails because a module is missing, that is the error. While it runs, Ctrl-C
/// reaches ComfyUI from the terminal and does not end this process first; SIGTERM and SIGHUP
/// sent to this process are passed on to ComfyUI.
pub fn run_foreground(
    env: &Environment,
    options: &RunOptions,
    stderr: &mut dyn Write,
) -> Result<i32, RunError> {
    if let Some(record) = running(env) {
        return Err(RunError::AlreadyRunning {
            name: env.name.clone(),
            pid: record.pid,
            port: record.port,
        });
    }
    check_port(&options.host, options.port)?;
    create_data_directories(env)?;
    let signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ])?;
    let mut child = command(env, options)
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| RunError::Spawn {
            python: env.python(),
            source,
        })?;
    let forwarder = forward_signals(signals, child.id());
    let tail = copy_stderr(child.stderr.take(), stderr);
    // The child is reaped only after the forwarder stopped: its pid cannot be reused before.
    forwarder.stop();
    let status = child.wait()?;
    let code = exit_code(status);
    if code != 0
        && let Some(missing) = missing_module(&String::from_utf8_lossy(&tail))
    {
        return Err(RunError::MissingModule {
            name: env.name.clone(),
            missing,
        });
    }
    Ok(code)
}

/// Copy the child's stderr to `sink` until it closes; returns the last bytes of it.
fn copy_stderr(pipe: Option<std::process::ChildStderr>, sink: &mut dyn Write) -> Vec<u8> {
    let mut tail = Vec::new();
    let Some(mut pipe) = pipe else {
        return tail;
    };
    let mut buffer = [0u8; 8192];
    loop {
        let n = match pipe.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        // Our own stderr going away must not stop the copy: ComfyUI would block on a full pipe.
        let _ = sink.write_all(&buffer[..n]).and_then(|()| sink.flush());
        tail.extend_from_slice(&buffer[..n]);
        if tail.len() > 2 * STDERR_TAIL_BYTES {
            tail.drain(..tail.len() - STDERR_TAIL_BYTES);
        }
    }
    tail
}

/// Passes SIGTERM and SIGHUP on to the foreground ComfyUI; swallows SIGINT, which the terminal
/// already delivers to ComfyUI (its process group is ours).
struct SignalForwarder {
    handle: signal_hook::iterator::Handle,
    thread: std::thread::JoinHandle<()>,
}

fn forward_signals(mut signals: signal_hook::iterator::Signals, child: u32) -> SignalForwarder {
    let handle = signals.handle();
    let thread = std::thread::spawn(move || {
        let Some(pid) = i32::try_from(child).ok().and_then(rustix::process::Pid::from_raw) else {
            return;
        };
        for signal in signals.forever() {
            let forwarded = match signal {
                signal_hook::consts::SIGTERM => Signal::TERM,
                signal_hook::consts::SIGHUP => Signal::HUP,
                _ => continue,
            };
            let _ = rustix::process::kill_process(pid, forwarded);
        }
    });
    SignalForwarder { handle, thread }
}

impl SignalForwarder {
    fn stop(self) {
        self.handle.close();
        let _ = self.thread.join();
    }
}

#[cfg(unix)]
fn exit_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt as _;
    status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

#[cfg(not(unix))]
fn exit_code(status: std::process::ExitStatus) -> i32 {
    status.code().unwrap_or(1)
}

/// Start in the background, wait until the port answers, and record pid and log.
pub fn run_background(
    env: &Environment,
    options: &RunOptions,
    timeout: Duration,
) -> Result<RunRecord, RunError> {
    if let Some(record) = running(env) {
        return Err(RunError::AlreadyRunning {
            name: env.name.clone(),
            pid: record.pid,
            port: record.port,
        });
    }
    check_port(&options.host, options.port)?;
    create_data_directories(env)?;
    if let Some(dir) = options.log.parent() {
        fs_err::create_dir_all(dir)?;
    }
    let log = fs_err::File::create(&options.log)?;
    let log_err = log.try_clone()?;
    let mut cmd = command(env, options);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::from(log.into_parts().0))
        .stderr(Stdio::from(log_err.into_parts().0));
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt as _;
        // Its own process group: Ctrl-C in our terminal must not reach it.
        cmd.process_group(0);
    }
    let mut child = cmd.spawn().map_err(|source| RunError::Spawn {
        python: env.python(),
        source,
    })?;
    let record = RunRecord {
        pid: child.id(),
        port: options.port,
        host: options.host.clone(),
        log: options.log.clone(),
        started_at: jiff::Timestamp::now().to_string(),
        // Our child is not reaped yet, so its pid cannot belong to anyone else.
        process_start: tracked_process::start_time(child.id()),
    };
    write_atomic(
        &record_path(env),
        serde_json::to_string_pretty(&record).expect("record serialises"),
    )?;
    let connect_host = if options.host == "0.0.0.0" {
        "127.0.0.1"
    } else {
        options.host.as_str()
    };
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait()? {
            let _ = fs_err::remove_file(record_path(env));
            if let Some(missing) = log_missing_module(&options.log) {
                return Err(RunError::MissingModule {
                    name: env.name.clone(),
                    missing,
                });
            }
            return Err(RunError::ExitedEarly {
                status: status.to_string(),
                log: options.log.clone(),
            });
        }
        if std::net::TcpStream::connect((connect_host, options.port)).is_ok() || Instant::now() >= deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(record)
}

/// How long `stop` waits for a process to vanish after SIGKILL.
const KILL_WAIT: Duration = Duration::from_secs(5);

/// What `stop` did.
#[derive(Debug, Clone, Serialize)]
pub struct Stopped {
    #[serde(flatten)]
    pub record: RunRecord,
    /// It outlived the grace period after SIGTERM and was killed with SIGKILL.
    pub killed: bool,
    /// Its port could be bound again when `stop` returned (false: something else holds it).
    pub port_free: bool,
}

/// Stop the background ComfyUI: SIGTERM, then SIGKILL after `grace`, and return once every
/// thread of it is gone and its port is free again (waiting at most `grace` more for the port).
/// Only the recorded process is signalled, never another that reused its pid.
pub fn stop(env: &Environment, grace: Duration) -> Result<Stopped, RunError> {
    let (record, process) = tracked(env).ok_or_else(|| RunError::NotRunning {
        name: env.name.clone(),
    })?;
    let _ = process.signal(Signal::TERM);
    let mut killed = false;
    if !wait_until(grace, || !process.is_alive()) {
        killed = true;
        let _ = process.signal(Signal::KILL);
        if !wait_until(KILL_WAIT, || !process.is_alive()) {
            return Err(RunError::StillRunning {
                name: env.name.clone(),
                pid: process.pid(),
            });
        }
    }
    let _ = fs_err::remove_file(record_path(env));
    let port_free = wait_until(grace, || port_is_free(&record.host, record.port));
    Ok(Stopped {
        record,
        killed,
        port_free,
    })
}

/// Poll `done` until it holds or `limit` passes; whether it held.
fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// How much of the end of a log is read to tell why ComfyUI died.
const LOG_TAIL_BYTES: u64 = 64 * 1024;

/// The missing module that ended the run logged in `log`, if its output ends with Python's
/// `ModuleNotFoundError`.
fn log_missing_module(log: &Path) -> Option<MissingModule> {
    use std::io::Seek as _;
    let mut file = fs_err::File::open(log).ok()?;
    let len = file.metadata().ok()?.len();
    file.seek(std::io::SeekFrom::Start(len.saturating_sub(LOG_TAIL_BYTES)))
        .ok()?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).ok()?;
    missing_module(&String::from_utf8_lossy(&bytes))
}

/// Why the background ComfyUI of `env` that wrote `log` died at start-up, if a module it
/// imports is missing. `None` while it runs.
pub fn startup_failure(env: &Environment, log: &Path) -> Option<MissingModule> {
    if running(env).is_some() {
        return None;
    }
    log_missing_module(log)
}

/// The last `lines` lines of the environment's log.
pub fn tail(log: &Path, lines: usize) -> std::io::Result<Vec<String>> {
    let text = match fs_err::read_to_string(log) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e),
    };
    let all: Vec<&str> = text.lines().collect();
    Ok(all[all.len().saturating_sub(lines)..]
        .iter()
        .map(|s| (*s).to_owned())
        .collect())
}

//! Running ComfyUI: foreground (signals and exit code pass through) or in the background with a
//! recorded pid and log file.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::Hinted;
use crate::atomic_file::write_atomic;
use crate::environment::Environment;

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
            _ => None,
        }
    }
}

/// What `run --background` records.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunRecord {
    pub pid: u32,
    pub port: u16,
    pub host: String,
    pub log: PathBuf,
    pub started_at: String,
}

fn record_path(env: &Environment) -> PathBuf {
    env.root.join(".run.json")
}

/// The background ComfyUI of `env`, if it is alive.
pub fn running(env: &Environment) -> Option<RunRecord> {
    let record: RunRecord = serde_json::from_str(&fs_err::read_to_string(record_path(env)).ok()?).ok()?;
    is_alive(record.pid).then_some(record)
}

fn is_alive(pid: u32) -> bool {
    let Some(pid) = i32::try_from(pid).ok().and_then(rustix::process::Pid::from_raw) else {
        return false;
    };
    if rustix::process::test_kill_process(pid).is_err() {
        return false;
    }
    // A zombie child still "exists"; check /proc for its state where available.
    match fs_err::read_to_string(format!("/proc/{}/stat", pid.as_raw_nonzero())) {
        Ok(stat) => {
            stat.rsplit(')')
                .next()
                .and_then(|rest| rest.split_whitespace().next())
                != Some("Z")
        }
        Err(_) => true,
    }
}

/// How to start ComfyUI.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub host: String,
    pub port: u16,
    pub extra_args: Vec<String>,
    pub log: PathBuf,
}

/// The command that starts ComfyUI for `env`.
pub fn command(env: &Environment, options: &RunOptions) -> Command {
    let mut cmd = Command::new(env.python());
    cmd.current_dir(env.comfyui())
        .arg("main.py")
        .args(["--listen", &options.host, "--port", &options.port.to_string()])
        .arg("--extra-model-paths-config")
        .arg(env.extra_model_paths())
        .arg("--user-directory")
        .arg(env.comfyui().join("user"))
        .arg("--input-directory")
        .arg(env.comfyui().join("input"))
        .arg("--output-directory")
        .arg(env.comfyui().join("output"))
        .args(&options.extra_args)
        .env("VIRTUAL_ENV", env.venv())
        .env("PYTHONUNBUFFERED", "1");
    cmd
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

/// Run in the foreground and return ComfyUI's exit code.
pub fn run_foreground(env: &Environment, options: &RunOptions) -> Result<i32, RunError> {
    if let Some(record) = running(env) {
        return Err(RunError::AlreadyRunning {
            name: env.name.clone(),
            pid: record.pid,
            port: record.port,
        });
    }
    check_port(&options.host, options.port)?;
    let mut child = command(env, options).spawn().map_err(|source| RunError::Spawn {
        python: env.python(),
        source,
    })?;
    let status = child.wait()?;
    Ok(exit_code(status))
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

/// Stop the background ComfyUI: SIGTERM, then SIGKILL after `grace`.
pub fn stop(env: &Environment, grace: Duration) -> Result<RunRecord, RunError> {
    let record = running(env).ok_or_else(|| RunError::NotRunning {
        name: env.name.clone(),
    })?;
    if let Some(pid) = i32::try_from(record.pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        let deadline = Instant::now() + grace;
        while is_alive(record.pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        if is_alive(record.pid) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
        }
    }
    let _ = fs_err::remove_file(record_path(env));
    Ok(record)
}

/// The last `lines` lines of the environment's log.
pub fn tail(log: &std::path::Path, lines: usize) -> std::io::Result<Vec<String>> {
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

//! A server from PyPI run for a test (moto, pypiserver, …): `python3 -m MODULE …` on a free port
//! of 127.0.0.1 in its own temp dir, its output in `server.log` there, killed when dropped.
//! Panics name what is missing: tests need the real server and must not skip.

use std::ffi::OsString;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The arguments after `python3`, given the port and the server's temp dir.
pub type ServerArgs<'a> = Box<dyn FnOnce(u16, &Path) -> Vec<OsString> + 'a>;

/// What to run, and how long it may take to answer.
pub struct PythonServerSpec<'a> {
    /// Shown in panics (`moto`, `pypiserver`).
    pub name: &'a str,
    /// Python code that imports what the server needs (checked before starting).
    pub imports: &'a str,
    /// The pip requirements that install it (shown in the panic when `imports` fails).
    pub install: &'a str,
    /// The arguments after `python3`.
    pub args: ServerArgs<'a>,
    /// Longest wait for `ready`.
    pub timeout: Duration,
}

/// A running server.
pub struct PythonServer {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl PythonServer {
    /// Starts the server and polls `ready(port)` every 100 ms until it holds; panics with the
    /// server's log when it exits or the timeout passes.
    pub fn start(spec: PythonServerSpec<'_>, mut ready: impl FnMut(u16) -> bool) -> Self {
        let python = std::env::var("COMFYDOCK_PYTHON").unwrap_or_else(|_| "python3".to_owned());
        let name = spec.name;
        let probe = Command::new(&python)
            .args(["-c", spec.imports])
            .output()
            .unwrap_or_else(|e| panic!("cannot run {python}: {e}"));
        assert!(
            probe.status.success(),
            "{name} is not installed for {python}: run `{python} -m pip install {}` (.ci/run does): {}",
            spec.install,
            String::from_utf8_lossy(&probe.stderr)
        );
        let dir = tempfile::Builder::new()
            .prefix(&format!("comfydock-{name}-"))
            .tempdir()
            .unwrap_or_else(|e| panic!("create a temp dir for {name}: {e}"));
        let port = free_port();
        let log = fs_err::File::create(dir.path().join("server.log"))
            .unwrap_or_else(|e| panic!("create {name}'s log: {e}"));
        let child = Command::new(&python)
            .args((spec.args)(port, dir.path()))
            .current_dir(dir.path())
            .env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::from(
                log.try_clone()
                    .unwrap_or_else(|e| panic!("clone {name}'s log handle: {e}"))
                    .into_parts()
                    .0,
            ))
            .stderr(Stdio::from(log.into_parts().0))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} with {python}: {e}"));
        let mut server = Self { child, port, dir };
        let deadline = Instant::now() + spec.timeout;
        loop {
            if ready(port) {
                return server;
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("{name} exited with {status}: {}", server.log());
            }
            assert!(
                Instant::now() < deadline,
                "{name} did not answer within {} s: {}",
                spec.timeout.as_secs(),
                server.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The port it listens on, on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its temp dir (its working directory).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// What the server logged.
    pub fn log(&self) -> String {
        fs_err::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }
}

impl Drop for PythonServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("find a free port")
}

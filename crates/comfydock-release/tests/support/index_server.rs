//! A real local package index: pypiserver (from PyPI, installed with
//! `python3 -m pip install pypiserver passlib`) serving a temporary folder, uploads allowed
//! without authentication, no fallback to PyPI.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct IndexServer {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl IndexServer {
    /// Start pypiserver on a free port and wait until it answers.
    pub fn start() -> Self {
        let python = std::env::var("COMFYDOCK_PYTHON").unwrap_or_else(|_| "python3".to_owned());
        let probe = Command::new(&python)
            .args(["-c", "import pypiserver"])
            .output()
            .unwrap_or_else(|e| panic!("cannot run {python}: {e}"));
        assert!(
            probe.status.success(),
            "pypiserver is not installed for {python}: run `{python} -m pip install pypiserver passlib`"
        );
        let dir = tempfile::tempdir().expect("create index dir");
        let port = free_port();
        let log = fs_err::File::create(dir.path().join("server.log")).expect("create log");
        let packages = dir.path().join("packages");
        fs_err::create_dir_all(&packages).unwrap();
        let child = Command::new(&python)
            .args(["-m", "pypiserver", "run", "-i", "127.0.0.1", "-p"])
            .arg(port.to_string())
            .args([
                "-a",
                ".",
                "-P",
                ".",
                "--disable-fallback",
                "--backend",
                "simple-dir",
            ])
            .arg(&packages)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log.into_parts().0))
            .spawn()
            .expect("start pypiserver");
        let mut server = Self { child, port, dir };
        server.wait_until_ready();
        server
    }

    fn wait_until_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let client = reqwest::blocking::Client::new();
        loop {
            if let Ok(response) = client.get(self.simple_url()).send()
                && response.status().is_success()
            {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("pypiserver exited with {status}: {}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "pypiserver did not answer within 30 s: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn log(&self) -> String {
        fs_err::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// The simple API URL.
    pub fn simple_url(&self) -> String {
        format!("http://127.0.0.1:{}/simple/", self.port)
    }

    fn packages_dir(&self) -> PathBuf {
        self.dir.path().join("packages")
    }

    /// The distribution files the index stores, sorted.
    pub fn files(&self) -> Vec<String> {
        let mut files: Vec<String> = fs_err::read_dir(self.packages_dir())
            .unwrap()
            .map(|e| e.unwrap())
            .filter(|e| e.path().is_file())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        files.sort();
        files
    }

    /// Make uploads of `filename` fail: a folder of that name stands where the file would go
    /// (pypiserver answers HTTP 500), while listings are unaffected.
    pub fn reject_uploads_of(&self, filename: &str) {
        fs_err::create_dir(self.packages_dir().join(filename)).unwrap();
    }

    /// Accept uploads of `filename` again.
    pub fn accept_uploads_of(&self, filename: &str) {
        fs_err::remove_dir(self.packages_dir().join(filename)).unwrap();
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for IndexServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("find a free port")
}

//! A real local package index: pypiserver (from PyPI, installed with
//! `python3 -m pip install pypiserver passlib`) serving a temporary folder, uploads allowed
//! without authentication, no fallback to PyPI.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use comfydock_test::python_server::{PythonServer, PythonServerSpec};

pub struct IndexServer {
    server: PythonServer,
}

impl IndexServer {
    /// Start pypiserver on a free port and wait until it answers.
    pub fn start() -> Self {
        let client = reqwest::blocking::Client::new();
        let server = PythonServer::start(
            PythonServerSpec {
                name: "pypiserver",
                imports: "import pypiserver, passlib",
                install: "pypiserver passlib",
                args: Box::new(|port, dir| {
                    let packages = dir.join("packages");
                    fs_err::create_dir_all(&packages).unwrap();
                    let mut args: Vec<OsString> = [
                        "-m",
                        "pypiserver",
                        "run",
                        "-i",
                        "127.0.0.1",
                        "-p",
                        &port.to_string(),
                    ]
                    .map(OsString::from)
                    .to_vec();
                    args.extend(
                        [
                            "-a",
                            ".",
                            "-P",
                            ".",
                            "--disable-fallback",
                            "--backend",
                            "simple-dir",
                        ]
                        .map(OsString::from),
                    );
                    args.push(packages.into_os_string());
                    args
                }),
                timeout: Duration::from_secs(30),
            },
            |port| {
                client
                    .get(simple_url(port))
                    .send()
                    .is_ok_and(|response| response.status().is_success())
            },
        );
        Self { server }
    }

    pub fn log(&self) -> String {
        self.server.log()
    }

    /// The simple API URL.
    pub fn simple_url(&self) -> String {
        simple_url(self.server.port())
    }

    fn packages_dir(&self) -> PathBuf {
        self.server.dir().join("packages")
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
        self.server.dir()
    }
}

fn simple_url(port: u16) -> String {
    format!("http://127.0.0.1:{port}/simple/")
}

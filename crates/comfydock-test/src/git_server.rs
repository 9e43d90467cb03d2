//! A git smart-HTTP server (the real `git http-backend`, run as CGI) standing in for GitHub, so
//! tests can clone the ComfyUI stand-in or node repos over `http://`, count fetches (e.g. "the second
//! create reuses the cached mirror"), and make a remote unreachable by stopping the server.
//!
//! URLs look like `http://127.0.0.1:PORT/<owner>/<name>.git` (any name you register).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError};

use crate::http::{HttpServer, Request, RequestLog, Response};

/// A running git HTTP server on `127.0.0.1:PORT`; stops when dropped.
pub struct GitHttpServer {
    server: HttpServer,
    /// Name → (git dir, whether pushes are accepted).
    repos: Arc<Mutex<BTreeMap<String, (PathBuf, bool)>>>,
}

impl Default for GitHttpServer {
    fn default() -> Self {
        Self::start()
    }
}

impl GitHttpServer {
    /// Starts a server with no repositories.
    pub fn start() -> Self {
        let repos: Arc<Mutex<BTreeMap<String, (PathBuf, bool)>>> = Arc::default();
        let handler_repos = repos.clone();
        let server = HttpServer::start(move |request| {
            let repos = handler_repos
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone();
            handle(&repos, request)
        });
        GitHttpServer { server, repos }
    }

    /// Serves the repository at `repo` (a work tree or a bare repository) under `name`
    /// (e.g. `comfyanonymous/ComfyUI`); returns its clone URL `http://127.0.0.1:PORT/<name>.git`.
    /// Later commits to the repository are visible at once.
    pub fn serve(&self, name: &str, repo: &Path) -> String {
        self.serve_with(name, repo, false)
    }

    /// Serves `repo` like [`GitHttpServer::serve`] and accepts pushes to it (as an authenticated
    /// user: `git http-backend` enables receive-pack when `REMOTE_USER` is set).
    pub fn serve_writable(&self, name: &str, repo: &Path) -> String {
        self.serve_with(name, repo, true)
    }

    fn serve_with(&self, name: &str, repo: &Path, writable: bool) -> String {
        let name = name.trim_matches('/').trim_end_matches(".git").to_owned();
        let git_dir = if repo.join(".git").is_dir() {
            repo.join(".git")
        } else {
            repo.to_owned()
        };
        self.repos
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(name.clone(), (git_dir, writable));
        self.url_of(&name)
    }

    /// The clone URL of a served name.
    pub fn url_of(&self, name: &str) -> String {
        format!(
            "{}/{}.git",
            self.server.url(),
            name.trim_matches('/').trim_end_matches(".git")
        )
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// How many pack negotiations (a clone, or a fetch/pull that had something to get:
    /// `POST .../git-upload-pack` other than protocol v2's `ls-refs`) hit repository `name`.
    pub fn fetches(&self, name: &str) -> usize {
        let path = format!(
            "/{}.git/git-upload-pack",
            name.trim_matches('/').trim_end_matches(".git")
        );
        self.log()
            .all()
            .iter()
            .filter(|r| r.method == "POST" && r.path() == path)
            .filter(|r| !r.body.windows(15).any(|w| w == b"command=ls-refs"))
            .count()
    }

    /// How many ref advertisements (`GET .../info/refs`, every remote operation starts with one)
    /// hit repository `name`.
    pub fn ref_listings(&self, name: &str) -> usize {
        let path = format!(
            "/{}.git/info/refs",
            name.trim_matches('/').trim_end_matches(".git")
        );
        self.log().for_path(&path).len()
    }

    /// Requests received so far.
    pub fn log(&self) -> &RequestLog {
        self.server.log()
    }

    /// Stops the server: every served remote becomes unreachable.
    pub fn stop(&mut self) {
        self.server.stop();
    }
}

fn handle(repos: &BTreeMap<String, (PathBuf, bool)>, request: &Request) -> Response {
    let path = request.path();
    let Some(((git_dir, writable), rest)) = repos.iter().find_map(|(name, served)| {
        path.strip_prefix(&format!("/{name}.git"))
            .filter(|r| r.starts_with('/'))
            .map(|r| (served, r))
    }) else {
        return Response::not_found();
    };
    let query = request.target.split_once('?').map_or("", |(_, q)| q);
    let mut cmd = Command::new("git");
    cmd.arg("http-backend")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_SYSTEM", "/dev/null")
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("GIT_PROJECT_ROOT", git_dir)
        .env("PATH_INFO", rest)
        .env("QUERY_STRING", query)
        .env("REQUEST_METHOD", &request.method)
        .env("REMOTE_ADDR", "127.0.0.1")
        .env("CONTENT_LENGTH", request.body.len().to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if *writable {
        cmd.env("REMOTE_USER", "comfydock-test");
    }
    if let Some(content_type) = request.header("content-type") {
        cmd.env("CONTENT_TYPE", content_type);
    }
    if let Some(encoding) = request.header("content-encoding") {
        cmd.env("HTTP_CONTENT_ENCODING", encoding);
    }
    if let Some(protocol) = request.header("git-protocol") {
        cmd.env("GIT_PROTOCOL", protocol);
    }
    let Ok(mut child) = cmd.spawn() else {
        return Response::status(500).body("cannot run git http-backend");
    };
    let body = request.body.clone();
    let mut stdin = child.stdin.take().expect("piped stdin");
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&body);
    });
    let Ok(output) = child.wait_with_output() else {
        return Response::status(500).body("git http-backend failed");
    };
    let _ = writer.join();
    parse_cgi(&output.stdout).unwrap_or_else(|| {
        Response::status(500).body(format!(
            "bad CGI output; stderr: {}",
            String::from_utf8_lossy(&output.stderr)
        ))
    })
}

/// Splits CGI output into a status, headers and body.
fn parse_cgi(stdout: &[u8]) -> Option<Response> {
    let split = stdout
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| (i, 4))
        .or_else(|| stdout.windows(2).position(|w| w == b"\n\n").map(|i| (i, 2)))?;
    let head = String::from_utf8_lossy(&stdout[..split.0]);
    let mut response = Response::ok(stdout[split.0 + split.1..].to_vec());
    for line in head.lines() {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("status") {
            response.status = value.split_whitespace().next()?.parse().ok()?;
        } else {
            response = response.header(name.trim(), value);
        }
    }
    Some(response)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::git::git;
    use crate::node_repo::{NodeContent, NodeRepo};

    #[test]
    fn clones_fetches_and_counts_over_smart_http() {
        let repo = NodeRepo::create("ComfyUI-Http");
        let v1 = repo.release(&NodeContent::new().node_class("A"), "v1.0.0");
        let mut server = GitHttpServer::start();
        let url = server.serve("someone/ComfyUI-Http", repo.path());
        assert!(url.ends_with("/someone/ComfyUI-Http.git"));

        let dest = tempfile::tempdir().unwrap();
        let clone = dest.path().join("clone");
        git(dest.path(), &["clone", "-q", &url, clone.to_str().unwrap()]);
        assert_eq!(git(&clone, &["rev-parse", "v1.0.0^{commit}"]), v1);
        assert_eq!(server.fetches("someone/ComfyUI-Http"), 1);

        let v2 = repo.release(&NodeContent::new().node_class("A").node_class("B"), "v2.0.0");
        git(&clone, &["fetch", "-q", "--tags", "origin"]);
        assert_eq!(git(&clone, &["rev-parse", "v2.0.0^{commit}"]), v2);
        assert_eq!(server.fetches("someone/ComfyUI-Http"), 2);
        git(&clone, &["fetch", "-q", "--tags", "origin"]);
        assert_eq!(
            server.fetches("someone/ComfyUI-Http"),
            2,
            "an up-to-date fetch downloads no pack"
        );
        assert!(server.ref_listings("someone/ComfyUI-Http") >= 3);

        let mirror = dest.path().join("mirror.git");
        git(
            dest.path(),
            &["clone", "-q", "--mirror", &url, mirror.to_str().unwrap()],
        );
        assert_eq!(git(&mirror, &["rev-parse", "v2.0.0^{commit}"]), v2);

        let shallow = dest.path().join("shallow");
        git(
            dest.path(),
            &[
                "clone",
                "-q",
                "--depth",
                "1",
                "--branch",
                "v1.0.0",
                &url,
                shallow.to_str().unwrap(),
            ],
        );
        assert_eq!(git(&shallow, &["rev-parse", "HEAD"]), v1);

        server.stop();
        let out = crate::git::git_command(&clone)
            .args(["fetch", "-q", "origin"])
            .output()
            .unwrap();
        assert!(!out.status.success(), "fetch from a stopped server must fail");
    }
}

//! A download server standing in for model hosts (Hugging Face, Civitai, CDNs): serves registered
//! byte blobs with `Range` support and `Content-Disposition`, redirects (also to another host name),
//! and scripted faults per path. Tests then ask which requests carried `Authorization` and on which
//! host, and whether a `Range` request was seen.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use crate::http::{HttpServer, Request, RequestLog, Response};

/// A fault scripted for one path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Send the full headers, then only `after_bytes` of the body, then drop the connection.
    DropAfter {
        /// Body bytes sent before the connection is dropped.
        after_bytes: usize,
    },
    /// Answer with this status (e.g. 500, 503) and no body.
    Status(u16),
    /// Serve these bytes instead of the registered ones (same status and headers).
    WrongBytes(Vec<u8>),
    /// Send the body `chunk` bytes at a time with `pause` after each chunk.
    Throttle {
        /// Bytes per write.
        chunk: usize,
        /// Pause after each write.
        pause: Duration,
    },
}

#[derive(Clone, Debug)]
struct ScriptedFault {
    fault: Fault,
    /// How many more requests get the fault; `None` = every request.
    remaining: Option<usize>,
}

#[derive(Clone, Debug, Default)]
struct Blob {
    bytes: Vec<u8>,
    content_disposition: Option<String>,
    content_type: Option<String>,
    /// When set, requests without exactly this `Authorization` value get 401.
    required_authorization: Option<String>,
}

#[derive(Default)]
struct State {
    blobs: HashMap<String, Blob>,
    redirects: HashMap<String, (u16, String)>,
    extra_headers: HashMap<String, Vec<(String, String)>>,
    faults: HashMap<String, Vec<ScriptedFault>>,
}

/// A running file server on `127.0.0.1:PORT`; stops when dropped.
pub struct FileServer {
    server: HttpServer,
    state: Arc<Mutex<State>>,
}

impl Default for FileServer {
    fn default() -> Self {
        Self::start()
    }
}

impl FileServer {
    /// Starts an empty file server.
    pub fn start() -> Self {
        let state = Arc::new(Mutex::new(State::default()));
        let handler_state = state.clone();
        let server = HttpServer::start(move |request| handle(&handler_state, request));
        FileServer { server, state }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// `http://localhost:PORT`: the same server under another host name.
    pub fn localhost_url(&self) -> String {
        self.server.localhost_url()
    }

    /// `http://127.0.0.1:PORT/path` (`path` starts with `/`).
    pub fn url_for(&self, path: &str) -> String {
        format!("{}{}", self.url(), path)
    }

    /// `http://localhost:PORT/path`.
    pub fn localhost_url_for(&self, path: &str) -> String {
        format!("{}{}", self.localhost_url(), path)
    }

    /// Serves `bytes` at `path` (e.g. `/models/x.safetensors`); replaces an earlier blob.
    pub fn add(&self, path: &str, bytes: impl Into<Vec<u8>>) -> &Self {
        self.state().blobs.insert(
            path.to_owned(),
            Blob {
                bytes: bytes.into(),
                ..Blob::default()
            },
        );
        self
    }

    /// Adds `Content-Disposition: attachment; filename="<filename>"` to the blob at `path`.
    pub fn content_disposition(&self, path: &str, filename: &str) -> &Self {
        self.blob(path).content_disposition = Some(format!("attachment; filename=\"{filename}\""));
        self
    }

    /// Sets a raw `Content-Disposition` header value for the blob at `path`.
    pub fn content_disposition_raw(&self, path: &str, value: &str) -> &Self {
        self.blob(path).content_disposition = Some(value.to_owned());
        self
    }

    /// Sets the `Content-Type` of the blob at `path` (default `application/octet-stream`).
    pub fn content_type(&self, path: &str, value: &str) -> &Self {
        self.blob(path).content_type = Some(value.to_owned());
        self
    }

    /// Requires `Authorization: <value>` (e.g. `Bearer hf_x`) for `path`; others get 401.
    pub fn require_authorization(&self, path: &str, value: &str) -> &Self {
        self.blob(path).required_authorization = Some(value.to_owned());
        self
    }

    /// Adds a response header for `path` (blob or redirect), e.g. Hugging Face's `X-Linked-Size`
    /// or `X-Repo-Commit`.
    pub fn header(&self, path: &str, name: &str, value: &str) -> &Self {
        self.state()
            .extra_headers
            .entry(path.to_owned())
            .or_default()
            .push((name.to_owned(), value.to_owned()));
        self
    }

    /// Answers `path` with a redirect (`status` 301/302/303/307/308) to `location`, which may be an
    /// absolute URL on another server or host name (see [`FileServer::localhost_url_for`]).
    pub fn redirect(&self, path: &str, status: u16, location: &str) -> &Self {
        self.state()
            .redirects
            .insert(path.to_owned(), (status, location.to_owned()));
        self
    }

    /// Applies `fault` to the first `times` requests for `path` (then serves normally).
    pub fn fault(&self, path: &str, fault: Fault, times: usize) -> &Self {
        self.state()
            .faults
            .entry(path.to_owned())
            .or_default()
            .push(ScriptedFault {
                fault,
                remaining: Some(times),
            });
        self
    }

    /// Applies `fault` to every request for `path`.
    pub fn fault_always(&self, path: &str, fault: Fault) -> &Self {
        self.state()
            .faults
            .entry(path.to_owned())
            .or_default()
            .push(ScriptedFault {
                fault,
                remaining: None,
            });
        self
    }

    /// Drops the connection after `after_bytes` body bytes for the first `times` requests.
    pub fn drop_after(&self, path: &str, after_bytes: usize, times: usize) -> &Self {
        self.fault(path, Fault::DropAfter { after_bytes }, times)
    }

    /// Serves `path` slowly: `chunk` bytes then a `pause`, for every request (to interrupt a
    /// download midway or watch progress).
    pub fn throttle(&self, path: &str, chunk: usize, pause: Duration) -> &Self {
        self.fault_always(path, Fault::Throttle { chunk, pause })
    }

    /// Answers `status` (5xx) for the first `times` requests.
    pub fn fail_with(&self, path: &str, status: u16, times: usize) -> &Self {
        self.fault(path, Fault::Status(status), times)
    }

    /// Always serves `bytes` instead of the registered blob (a corrupted mirror).
    pub fn wrong_bytes(&self, path: &str, bytes: impl Into<Vec<u8>>) -> &Self {
        self.fault_always(path, Fault::WrongBytes(bytes.into()))
    }

    /// Removes every scripted fault for `path`.
    pub fn clear_faults(&self, path: &str) -> &Self {
        self.state().faults.remove(path);
        self
    }

    /// All requests received so far.
    pub fn requests(&self) -> Vec<Request> {
        self.server.log().all()
    }

    /// Requests for one path.
    pub fn requests_for(&self, path: &str) -> Vec<Request> {
        self.server.log().for_path(path)
    }

    /// How many requests `path` received.
    pub fn hits(&self, path: &str) -> usize {
        self.requests_for(path).len()
    }

    /// `(host header, path)` of every request that carried an `Authorization` header.
    pub fn authorized_requests(&self) -> Vec<(String, String)> {
        self.requests()
            .iter()
            .filter(|r| r.has_header("authorization"))
            .map(|r| (r.host().to_owned(), r.path()))
            .collect()
    }

    /// Whether any request that arrived under host name `host_name` (e.g. `localhost`) carried an
    /// `Authorization` header.
    pub fn authorization_seen_on_host(&self, host_name: &str) -> bool {
        self.requests()
            .iter()
            .any(|r| r.host_name() == host_name && r.has_header("authorization"))
    }

    /// The `Range` header values sent for `path`, in order.
    pub fn ranges_for(&self, path: &str) -> Vec<String> {
        self.requests_for(path)
            .iter()
            .filter_map(|r| r.header("range").map(str::to_owned))
            .collect()
    }

    /// How many TCP connections have been accepted so far.
    pub fn connections_accepted(&self) -> u64 {
        self.server.connections_accepted()
    }

    /// The request log (shared handle).
    pub fn log(&self) -> &RequestLog {
        self.server.log()
    }

    /// Stops the server: the port refuses connections from now on.
    pub fn stop(&mut self) {
        self.server.stop();
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn blob(&self, path: &str) -> BlobGuard<'_> {
        let guard = self.state();
        assert!(
            guard.blobs.contains_key(path),
            "no blob registered at {path}; call add() first"
        );
        BlobGuard {
            guard,
            path: path.to_owned(),
        }
    }
}

/// Mutable access to one registered blob while holding the state lock.
struct BlobGuard<'a> {
    guard: MutexGuard<'a, State>,
    path: String,
}

impl std::ops::Deref for BlobGuard<'_> {
    type Target = Blob;
    fn deref(&self) -> &Blob {
        &self.guard.blobs[&self.path]
    }
}

impl std::ops::DerefMut for BlobGuard<'_> {
    fn deref_mut(&mut self) -> &mut Blob {
        self.guard
            .blobs
            .get_mut(&self.path)
            .expect("blob checked at creation")
    }
}

fn handle(state: &Mutex<State>, request: &Request) -> Response {
    let path = request.path();
    let mut state = state.lock().unwrap_or_else(PoisonError::into_inner);
    let mut response = respond(&mut state, &path, request);
    for (name, value) in state.extra_headers.get(&path).into_iter().flatten() {
        response = response.header(name.clone(), value.clone());
    }
    response
}

fn respond(state: &mut State, path: &str, request: &Request) -> Response {
    let fault = take_fault(state, path);
    if let Some(Fault::Status(status)) = fault {
        return Response::status(status).body(format!("scripted failure {status}"));
    }
    if let Some((status, location)) = state.redirects.get(path) {
        return Response::redirect(*status, location.clone());
    }
    if !matches!(request.method.as_str(), "GET" | "HEAD") {
        return Response::status(405);
    }
    let Some(blob) = state.blobs.get(path) else {
        return Response::not_found();
    };
    if let Some(required) = &blob.required_authorization
        && request.header("authorization") != Some(required.as_str())
    {
        return Response::status(401).body("unauthorized");
    }
    let bytes = match &fault {
        Some(Fault::WrongBytes(wrong)) => wrong.clone(),
        _ => blob.bytes.clone(),
    };
    let mut response = serve_bytes(request, bytes, blob.content_type.as_deref());
    if let Some(disposition) = &blob.content_disposition {
        response = response.header("Content-Disposition", disposition.clone());
    }
    match fault {
        Some(Fault::DropAfter { after_bytes }) => response = response.truncated_after(after_bytes),
        Some(Fault::Throttle { chunk, pause }) => response = response.throttled(chunk, pause),
        _ => {}
    }
    response
}

fn take_fault(state: &mut State, path: &str) -> Option<Fault> {
    let faults = state.faults.get_mut(path)?;
    let scripted = faults.iter_mut().find(|f| f.remaining != Some(0))?;
    if let Some(remaining) = &mut scripted.remaining {
        *remaining -= 1;
    }
    Some(scripted.fault.clone())
}

/// Serves `bytes` honouring a single `Range: bytes=...` (`N-`, `N-M`, `-N`); used by every stand-in
/// that serves files.
pub fn serve_bytes(request: &Request, bytes: Vec<u8>, content_type: Option<&str>) -> Response {
    let len = bytes.len();
    let content_type = content_type.unwrap_or("application/octet-stream").to_owned();
    let etag = format!("\"{}\"", &crate::archive::sha256_hex(&bytes)[..16]);
    let base = |status| {
        Response::status(status)
            .header("Accept-Ranges", "bytes")
            .header("Content-Type", content_type.clone())
            .header("ETag", etag.clone())
    };
    let Some(range) = request.header("range") else {
        return base(200).body(bytes);
    };
    match parse_range(range, len) {
        Some((start, end)) => base(206)
            .header("Content-Range", format!("bytes {start}-{end}/{len}"))
            .body(bytes[start..=end].to_vec()),
        None => Response::status(416).header("Content-Range", format!("bytes */{len}")),
    }
}

/// Parses `bytes=N-`, `bytes=N-M` or `bytes=-N` into an inclusive range within `len`.
fn parse_range(value: &str, len: usize) -> Option<(usize, usize)> {
    let spec = value.trim().strip_prefix("bytes=")?;
    let (start, end) = spec.split(',').next()?.trim().split_once('-')?;
    if len == 0 {
        return None;
    }
    if start.is_empty() {
        let suffix: usize = end.parse().ok()?;
        if suffix == 0 {
            return None;
        }
        return Some((len.saturating_sub(suffix), len - 1));
    }
    let start: usize = start.parse().ok()?;
    if start >= len {
        return None;
    }
    let end = if end.is_empty() {
        len - 1
    } else {
        end.parse::<usize>().ok()?.min(len - 1)
    };
    (start <= end).then_some((start, end))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::client::get;

    fn payload() -> Vec<u8> {
        (0..100_000u32).map(|i| u8::try_from(i % 251).unwrap()).collect()
    }

    #[test]
    fn serves_full_and_ranged_downloads() {
        let server = FileServer::start();
        server.add("/m/model.safetensors", payload());
        let full = get(&server.url_for("/m/model.safetensors"), &[]).unwrap();
        assert_eq!(full.status, 200);
        assert_eq!(full.body, payload());
        assert_eq!(full.header("accept-ranges"), Some("bytes"));

        let part = get(
            &server.url_for("/m/model.safetensors"),
            &[("Range", "bytes=1000-")],
        )
        .unwrap();
        assert_eq!(part.status, 206);
        assert_eq!(part.header("content-range"), Some("bytes 1000-99999/100000"));
        assert_eq!(part.body, payload()[1000..]);

        let middle = get(
            &server.url_for("/m/model.safetensors"),
            &[("Range", "bytes=10-19")],
        )
        .unwrap();
        assert_eq!(middle.body, payload()[10..20]);
        let tail = get(&server.url_for("/m/model.safetensors"), &[("Range", "bytes=-5")]).unwrap();
        assert_eq!(tail.body, payload()[99_995..]);
        let beyond = get(
            &server.url_for("/m/model.safetensors"),
            &[("Range", "bytes=100000-")],
        )
        .unwrap();
        assert_eq!(beyond.status, 416);

        assert_eq!(
            server.ranges_for("/m/model.safetensors"),
            ["bytes=1000-", "bytes=10-19", "bytes=-5", "bytes=100000-"]
        );
        assert_eq!(get(&server.url_for("/missing"), &[]).unwrap().status, 404);
    }

    #[test]
    fn content_disposition_and_auth() {
        let server = FileServer::start();
        server.add("/api/download/models/7", b"weights".to_vec());
        server.content_disposition("/api/download/models/7", "real_name.safetensors");
        server.require_authorization("/api/download/models/7", "Bearer secret");
        let denied = get(&server.url_for("/api/download/models/7"), &[]).unwrap();
        assert_eq!(denied.status, 401);
        server.header("/api/download/models/7", "X-Linked-Size", "7");
        let ok = get(
            &server.url_for("/api/download/models/7"),
            &[("Authorization", "Bearer secret")],
        )
        .unwrap();
        assert_eq!(ok.status, 200);
        assert_eq!(
            ok.header("content-disposition"),
            Some("attachment; filename=\"real_name.safetensors\"")
        );
        assert_eq!(
            server.authorized_requests(),
            [(
                format!("127.0.0.1:{}", server.server.port()),
                "/api/download/models/7".to_owned()
            )]
        );
    }

    #[test]
    fn redirects_to_another_host_name_and_records_hosts() {
        let origin = FileServer::start();
        let cdn = FileServer::start();
        cdn.add("/blob/abc", b"data".to_vec());
        origin.redirect("/resolve/main/x.bin", 302, &cdn.localhost_url_for("/blob/abc"));
        let first = get(
            &origin.url_for("/resolve/main/x.bin"),
            &[("Authorization", "Bearer t")],
        )
        .unwrap();
        assert_eq!(first.status, 302);
        let location = first.header("location").unwrap().to_owned();
        assert!(location.starts_with("http://localhost:"), "{location}");
        // A well-behaved client follows without the token.
        let second = get(&location, &[]).unwrap();
        assert_eq!(second.body, b"data");
        assert!(origin.authorization_seen_on_host("127.0.0.1"));
        assert!(!cdn.authorization_seen_on_host("localhost"));
        assert_eq!(cdn.requests_for("/blob/abc")[0].host_name(), "localhost");
    }

    #[test]
    fn scripted_faults_apply_to_first_requests_only() {
        let server = FileServer::start();
        server.add("/f", payload());
        server.drop_after("/f", 1234, 1).fail_with("/f", 503, 2);
        let dropped = get(&server.url_for("/f"), &[]).unwrap();
        assert_eq!(dropped.status, 200);
        assert_eq!(dropped.header("content-length"), Some("100000"));
        assert_eq!(dropped.body.len(), 1234);
        assert_eq!(get(&server.url_for("/f"), &[]).unwrap().status, 503);
        assert_eq!(get(&server.url_for("/f"), &[]).unwrap().status, 503);
        assert_eq!(get(&server.url_for("/f"), &[]).unwrap().body, payload());
        assert_eq!(server.hits("/f"), 4);

        server.wrong_bytes("/f", b"corrupt".to_vec());
        assert_eq!(get(&server.url_for("/f"), &[]).unwrap().body, b"corrupt");
        server.clear_faults("/f");
        assert_eq!(get(&server.url_for("/f"), &[]).unwrap().body, payload());

        server.throttle("/f", 40_000, Duration::from_millis(30));
        let started = std::time::Instant::now();
        assert_eq!(get(&server.url_for("/f"), &[]).unwrap().body, payload());
        assert!(
            started.elapsed() >= Duration::from_millis(90),
            "three throttled chunks"
        );
    }

    #[test]
    fn keep_alive_serves_several_requests_on_one_connection() {
        use std::io::{Read, Write};
        let server = FileServer::start();
        server.add("/a", b"AAAA".to_vec());
        let mut stream = std::net::TcpStream::connect(server.url().trim_start_matches("http://")).unwrap();
        stream
            .write_all(
                b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            )
            .unwrap();
        let mut all = String::new();
        stream.read_to_string(&mut all).unwrap();
        assert_eq!(all.matches("HTTP/1.1 200 OK").count(), 2, "{all}");
        assert!(all.ends_with("AAAA"));
    }

    #[test]
    fn stopped_server_refuses_connections() {
        let mut server = FileServer::start();
        server.add("/a", b"A".to_vec());
        let url = server.url_for("/a");
        assert_eq!(get(&url, &[]).unwrap().status, 200);
        server.stop();
        assert!(get(&url, &[]).is_err());
    }
}

//! A tiny threaded HTTP/1.1 server that every stand-in service is built on.
//!
//! One thread accepts connections on `127.0.0.1:0`; each connection gets its own thread and is kept
//! alive until the client closes it, sends `Connection: close`, or the server stops. Every request is
//! recorded in a [`RequestLog`] so tests can assert on what a client sent (headers, host, ranges).
//! Dropping the [`HttpServer`] (or calling [`HttpServer::stop`]) closes the listener and every open
//! connection, so the port stops answering at once.

use std::fmt::Write as _;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

/// Largest request body the server accepts (stand-ins only receive small JSON bodies).
const MAX_BODY: usize = 16 * 1024 * 1024;

/// One request as received, kept for assertions.
#[derive(Clone, Debug)]
pub struct Request {
    /// `GET`, `HEAD`, `POST`, ...
    pub method: String,
    /// The request target as sent, including any query string (`/simple/tinynum/?x=1`).
    pub target: String,
    /// Header names as sent (compare case-insensitively with [`Request::header`]).
    pub headers: Vec<(String, String)>,
    /// The body (empty for most requests).
    pub body: Vec<u8>,
}

impl Request {
    /// The first header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether a header with this name was sent.
    pub fn has_header(&self, name: &str) -> bool {
        self.header(name).is_some()
    }

    /// The `Host` header (e.g. `127.0.0.1:4321` or `localhost:4321`), empty if absent.
    pub fn host(&self) -> &str {
        self.header("host").unwrap_or("")
    }

    /// The host name without the port (`localhost`, `127.0.0.1`).
    pub fn host_name(&self) -> &str {
        let host = self.host();
        host.rsplit_once(':').map_or(host, |(name, _)| name)
    }

    /// The path part of the target, percent-decoded, without the query string.
    pub fn path(&self) -> String {
        let raw = self
            .target
            .split_once('?')
            .map_or(self.target.as_str(), |(p, _)| p);
        percent_decode(raw)
    }

    /// The decoded value of a query parameter, if present (first occurrence).
    pub fn query(&self, name: &str) -> Option<String> {
        self.query_all(name).into_iter().next()
    }

    /// Every decoded value of a (repeatable) query parameter.
    pub fn query_all(&self, name: &str) -> Vec<String> {
        let Some((_, query)) = self.target.split_once('?') else {
            return Vec::new();
        };
        query
            .split('&')
            .filter_map(|pair| {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                (percent_decode(&k.replace('+', " ")) == name).then(|| percent_decode(&v.replace('+', " ")))
            })
            .collect()
    }
}

/// Decodes `%XX` escapes; invalid escapes are kept as written.
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(hi), Some(lo)) = (hex_digit(bytes[i + 1]), hex_digit(bytes[i + 2]))
        {
            out.push(hi * 16 + lo);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_digit(b: u8) -> Option<u8> {
    char::from(b).to_digit(16).and_then(|d| u8::try_from(d).ok())
}

/// A response a handler returns.
#[derive(Clone, Debug)]
pub struct Response {
    /// HTTP status code.
    pub status: u16,
    /// Extra headers (`Content-Length` is added by the server).
    pub headers: Vec<(String, String)>,
    /// The full body; `Content-Length` always announces its full length.
    pub body: Vec<u8>,
    /// Fault injection: write only this many body bytes, then close the connection.
    pub truncate_after: Option<usize>,
    /// Slow link: write the body in chunks of this many bytes with this pause after each.
    pub throttle: Option<(usize, Duration)>,
    /// Stream this file as the body instead of `body` (large files such as real wheels).
    pub body_file: Option<std::path::PathBuf>,
}

impl Response {
    /// A response with a status and an empty body.
    pub fn status(status: u16) -> Self {
        Response {
            status,
            headers: Vec::new(),
            body: Vec::new(),
            truncate_after: None,
            throttle: None,
            body_file: None,
        }
    }

    /// `200 OK` streaming a file from disk (read while sending, never held in memory).
    pub fn file(path: impl Into<std::path::PathBuf>) -> Self {
        let mut response = Response::status(200).header("Content-Type", "application/octet-stream");
        response.body_file = Some(path.into());
        response
    }

    /// `200 OK` with these bytes.
    pub fn ok(body: impl Into<Vec<u8>>) -> Self {
        Response::status(200).body(body)
    }

    /// `200 OK` with a JSON document.
    pub fn json(value: &serde_json::Value) -> Self {
        Response::status(200).with_json(value)
    }

    /// `200 OK` with an HTML page.
    pub fn html(body: impl Into<String>) -> Self {
        Response::ok(body.into()).header("Content-Type", "text/html; charset=utf-8")
    }

    /// `404 Not Found` with a short text body.
    pub fn not_found() -> Self {
        Response::status(404)
            .body("not found")
            .header("Content-Type", "text/plain")
    }

    /// A redirect (`301`, `302`, `307`, `308`) to an absolute or relative location.
    pub fn redirect(status: u16, location: impl Into<String>) -> Self {
        Response::status(status).header("Location", location)
    }

    /// Replaces the body.
    #[must_use]
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// Replaces the body with a JSON document and sets the content type.
    #[must_use]
    pub fn with_json(self, value: &serde_json::Value) -> Self {
        self.body(serde_json::to_vec(value).expect("a JSON value always serializes"))
            .header("Content-Type", "application/json")
    }

    /// Adds a header.
    #[must_use]
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sends only the first `n` body bytes, then drops the connection (the length still says all).
    #[must_use]
    pub fn truncated_after(mut self, n: usize) -> Self {
        self.truncate_after = Some(n);
        self
    }

    /// Sends the body `chunk` bytes at a time with `pause` after each chunk (a slow download, to
    /// interrupt or watch progress).
    #[must_use]
    pub fn throttled(mut self, chunk: usize, pause: Duration) -> Self {
        self.throttle = Some((chunk.max(1), pause));
        self
    }
}

/// The function a server calls for every request.
pub type Handler = Arc<dyn Fn(&Request) -> Response + Send + Sync>;

/// Every request a server has received, in arrival order; cheap to clone and share.
#[derive(Clone, Debug, Default)]
pub struct RequestLog(Arc<Mutex<Vec<Request>>>);

impl RequestLog {
    /// A copy of all requests so far.
    pub fn all(&self) -> Vec<Request> {
        self.lock().clone()
    }

    /// Requests whose decoded path equals `path`.
    pub fn for_path(&self, path: &str) -> Vec<Request> {
        self.lock().iter().filter(|r| r.path() == path).cloned().collect()
    }

    /// How many requests have been received.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no request has been received.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// Forgets all recorded requests.
    pub fn clear(&self) {
        self.lock().clear();
    }

    fn push(&self, request: Request) {
        self.lock().push(request);
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Request>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Open connections, so stopping the server can close them.
#[derive(Default)]
struct Connections {
    /// Connections accepted so far (ids are 1..=next_id).
    next_id: u64,
    open: Vec<(u64, TcpStream)>,
}

/// A running HTTP server on `127.0.0.1`; stops when dropped.
pub struct HttpServer {
    addr: SocketAddr,
    log: RequestLog,
    stopping: Arc<AtomicBool>,
    connections: Arc<Mutex<Connections>>,
    acceptor: Option<JoinHandle<()>>,
}

impl HttpServer {
    /// Binds `127.0.0.1:0` and serves every request with `handler`.
    ///
    /// Panics if the socket cannot be bound (test support: failing loudly is the point).
    pub fn start(handler: impl Fn(&Request) -> Response + Send + Sync + 'static) -> Self {
        Self::start_on(0, handler)
    }

    /// Binds `127.0.0.1:port` (0 for any free port) and serves every request with `handler`. A
    /// fixed port is for servers whose URL must stay the same across runs (uv caches per index URL).
    ///
    /// Panics if the socket cannot be bound, naming the port.
    pub fn start_on(port: u16, handler: impl Fn(&Request) -> Response + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", port))
            .unwrap_or_else(|e| panic!("bind a stand-in server on 127.0.0.1:{port}: {e}"));
        let addr = listener.local_addr().expect("local address of a bound listener");
        let log = RequestLog::default();
        let stopping = Arc::new(AtomicBool::new(false));
        let connections = Arc::new(Mutex::new(Connections::default()));
        let handler: Handler = Arc::new(handler);
        let acceptor = {
            let (log, stopping, connections) = (log.clone(), stopping.clone(), connections.clone());
            std::thread::Builder::new()
                .name(format!("stand-in-http-{}", addr.port()))
                .spawn(move || accept_loop(&listener, &handler, &log, &stopping, &connections))
                .expect("spawn the accept thread")
        };
        HttpServer {
            addr,
            log,
            stopping,
            connections,
            acceptor: Some(acceptor),
        }
    }

    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The same server under the host name `localhost` (`http://localhost:PORT`): a different
    /// host name for cross-host redirect tests, still loopback.
    pub fn localhost_url(&self) -> String {
        format!("http://localhost:{}", self.addr.port())
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The recorded requests.
    pub fn log(&self) -> &RequestLog {
        &self.log
    }

    /// Stops accepting and closes every open connection; afterwards the port refuses connections.
    pub fn stop(&mut self) {
        if self.stopping.swap(true, Ordering::SeqCst) {
            return;
        }
        // Wake the blocking accept() so the thread sees the flag and drops the listener.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        let mut connections = self.connections.lock().unwrap_or_else(PoisonError::into_inner);
        for (_, stream) in connections.open.drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }

    /// How many TCP connections have been accepted (to check that clients reuse connections).
    pub fn connections_accepted(&self) -> u64 {
        self.connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .next_id
    }

    /// Whether [`HttpServer::stop`] has been called.
    pub fn is_stopped(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn accept_loop(
    listener: &TcpListener,
    handler: &Handler,
    log: &RequestLog,
    stopping: &Arc<AtomicBool>,
    connections: &Arc<Mutex<Connections>>,
) {
    for stream in listener.incoming() {
        if stopping.load(Ordering::SeqCst) {
            return;
        }
        let Ok(stream) = stream else { continue };
        let id = {
            let mut c = connections.lock().unwrap_or_else(PoisonError::into_inner);
            c.next_id += 1;
            let id = c.next_id;
            if let Ok(clone) = stream.try_clone() {
                c.open.push((id, clone));
            }
            id
        };
        let (handler, log, connections) = (handler.clone(), log.clone(), connections.clone());
        let spawned = std::thread::Builder::new()
            .name("stand-in-http-conn".into())
            .spawn(move || {
                let _ = serve_connection(stream, &handler, &log);
                connections
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .open
                    .retain(|(i, _)| *i != id);
            });
        // A failed spawn drops the stream: the client sees a closed connection and may retry.
        drop(spawned);
    }
}

fn serve_connection(stream: TcpStream, handler: &Handler, log: &RequestLog) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    loop {
        let Some(request) = read_request(&mut reader, &mut writer)? else {
            return Ok(());
        };
        log.push(request.clone());
        let response = handler(&request);
        let client_closes = request
            .header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"));
        let keep_open = write_response(&mut writer, &request, &response, client_closes)?;
        if !keep_open {
            let _ = writer.shutdown(Shutdown::Both);
            return Ok(());
        }
    }
}

/// Reads one request; `None` when the client closed the connection cleanly.
fn read_request(reader: &mut BufReader<TcpStream>, writer: &mut TcpStream) -> io::Result<Option<Request>> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let mut parts = line.split_whitespace();
    let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("bad request line {line:?}"),
        ));
    };
    let (method, target) = (method.to_owned(), target.to_owned());
    let mut headers = Vec::new();
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 {
            return Ok(None);
        }
        let header = header.trim_end_matches(['\r', '\n']);
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            headers.push((name.trim().to_owned(), value.trim().to_owned()));
        }
    }
    let mut request = Request {
        method,
        target,
        headers,
        body: Vec::new(),
    };
    if request
        .header("expect")
        .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
    {
        writer.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
    }
    if let Some(len) = request
        .header("content-length")
        .and_then(|v| v.parse::<usize>().ok())
    {
        if len > MAX_BODY {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "request body too large",
            ));
        }
        let mut body = vec![0; len];
        reader.read_exact(&mut body)?;
        request.body = body;
    } else if request
        .header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        request.body = read_chunked(reader)?;
    }
    Ok(Some(request))
}

fn read_chunked(reader: &mut BufReader<TcpStream>) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let mut size_line = String::new();
        reader.read_line(&mut size_line)?;
        let size_hex = size_line.trim().split(';').next().unwrap_or("");
        let size = usize::from_str_radix(size_hex, 16)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad chunk size"))?;
        if size == 0 {
            // Trailers end with an empty line.
            loop {
                let mut trailer = String::new();
                if reader.read_line(&mut trailer)? == 0 || trailer.trim().is_empty() {
                    return Ok(body);
                }
            }
        }
        if body.len() + size > MAX_BODY {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "request body too large",
            ));
        }
        let start = body.len();
        body.resize(start + size, 0);
        reader.read_exact(&mut body[start..])?;
        let mut crlf = [0; 2];
        reader.read_exact(&mut crlf)?;
    }
}

/// Writes the response; returns whether the connection may carry another request.
fn write_response(
    writer: &mut TcpStream,
    request: &Request,
    response: &Response,
    client_closes: bool,
) -> io::Result<bool> {
    let close = client_closes || response.truncate_after.is_some();
    let mut head = format!("HTTP/1.1 {} {}\r\n", response.status, reason(response.status));
    for (name, value) in &response.headers {
        let _ = write!(head, "{name}: {value}\r\n");
    }
    let file = match &response.body_file {
        Some(path) => Some(fs_err::File::open(path)?),
        None => None,
    };
    let length = match &file {
        Some(file) => file.metadata()?.len(),
        None => response.body.len() as u64,
    };
    let _ = write!(head, "Content-Length: {length}\r\n");
    if close {
        head.push_str("Connection: close\r\n");
    }
    head.push_str("\r\n");
    if let Some(mut file) = file {
        // A large file streams after the head (the file-backed responses carry no fault injection).
        writer.write_all(head.as_bytes())?;
        if request.method != "HEAD" {
            io::copy(&mut file, writer)?;
        }
        writer.flush()?;
        return Ok(!close);
    }
    let body: &[u8] = if request.method == "HEAD" {
        &[]
    } else {
        let end = response
            .truncate_after
            .map_or(response.body.len(), |n| n.min(response.body.len()));
        &response.body[..end]
    };
    match response.throttle {
        // Head and body in one write: the client receives the response whole, never a head
        // whose body is still on its way. (With two writes and TCP_NODELAY the head leaves
        // alone; a client that drops an unread body then cannot drain it and closes the
        // connection, so whether a keep-alive connection survives would depend on scheduling.)
        None => {
            let mut whole = Vec::with_capacity(head.len() + body.len());
            whole.extend_from_slice(head.as_bytes());
            whole.extend_from_slice(body);
            writer.write_all(&whole)?;
        }
        Some((chunk, pause)) => {
            writer.write_all(head.as_bytes())?;
            for piece in body.chunks(chunk) {
                writer.write_all(piece)?;
                writer.flush()?;
                std::thread::sleep(pause);
            }
        }
    }
    writer.flush()?;
    Ok(!close)
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        416 => "Range Not Satisfiable",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

/// A minimal blocking HTTP/1.1 client for tests of the stand-ins themselves (no TLS, no redirects).
pub mod client {
    use std::fmt::Write as _;
    use std::io::{self, BufRead, BufReader, Read, Write};
    use std::net::TcpStream;
    use std::time::Duration;

    /// A response as read by [`get`].
    #[derive(Debug)]
    pub struct ClientResponse {
        /// Status code.
        pub status: u16,
        /// Headers in order.
        pub headers: Vec<(String, String)>,
        /// Body bytes actually received (may be shorter than announced after a dropped connection).
        pub body: Vec<u8>,
    }

    impl ClientResponse {
        /// The first header with this name (case-insensitive).
        pub fn header(&self, name: &str) -> Option<&str> {
            self.headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        }

        /// The body as UTF-8 text (lossy).
        pub fn text(&self) -> String {
            String::from_utf8_lossy(&self.body).into_owned()
        }

        /// The body parsed as JSON; panics if it is not JSON.
        pub fn json(&self) -> serde_json::Value {
            serde_json::from_slice(&self.body)
                .unwrap_or_else(|e| panic!("response is not JSON ({e}): {}", self.text()))
        }
    }

    /// `GET url` with extra headers, on a fresh connection with `Connection: close`.
    pub fn get(url: &str, headers: &[(&str, &str)]) -> io::Result<ClientResponse> {
        request("GET", url, headers, &[])
    }

    /// Sends one request and reads the response until the announced length or EOF.
    pub fn request(
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> io::Result<ClientResponse> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, format!("not an http URL: {url}")))?;
        let (authority, path) = rest.find('/').map_or((rest, "/"), |i| (&rest[..i], &rest[i..]));
        let mut stream = TcpStream::connect(authority)?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n");
        for (name, value) in headers {
            let _ = write!(head, "{name}: {value}\r\n");
        }
        if !body.is_empty() {
            let _ = write!(head, "Content-Length: {}\r\n", body.len());
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes())?;
        stream.write_all(body)?;
        let mut reader = BufReader::new(stream);
        let mut status_line = String::new();
        reader.read_line(&mut status_line)?;
        let status = status_line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidData, format!("bad status {status_line:?}"))
            })?;
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line)? == 0 {
                break;
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                headers.push((k.trim().to_owned(), v.trim().to_owned()));
            }
        }
        let mut body = Vec::new();
        if method != "HEAD" {
            // Read to EOF; a dropped connection simply yields fewer bytes.
            let _ = reader.read_to_end(&mut body);
        }
        Ok(ClientResponse {
            status,
            headers,
            body,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    use super::*;

    fn echo() -> HttpServer {
        HttpServer::start(|request| {
            Response::ok(request.body.clone())
                .header("X-Path", request.path())
                .header("X-Query", request.query("q").unwrap_or_default())
        })
    }

    #[test]
    fn a_response_arrives_whole_in_one_read() {
        // One write per response: the first read of a keep-alive client already holds the body.
        let server = HttpServer::start(|_| Response::status(503).body("busy, try again"));
        let mut stream = TcpStream::connect(("127.0.0.1", server.port())).unwrap();
        for _ in 0..20 {
            stream.write_all(b"GET /a HTTP/1.1\r\nHost: h\r\n\r\n").unwrap();
            let mut buffer = [0u8; 4096];
            let n = stream.read(&mut buffer).unwrap();
            let text = String::from_utf8_lossy(&buffer[..n]);
            assert!(text.starts_with("HTTP/1.1 503 "), "{text}");
            assert!(text.ends_with("\r\n\r\nbusy, try again"), "{text}");
        }
        assert_eq!(server.connections_accepted(), 1);
    }

    #[test]
    fn answers_expect_continue_and_reads_chunked_bodies() {
        let server = echo();
        let mut stream = TcpStream::connect(("127.0.0.1", server.port())).unwrap();
        stream
            .write_all(b"POST /a%20b?q=x+y%21 HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
            .unwrap();
        let mut interim = [0u8; 25];
        stream.read_exact(&mut interim).unwrap();
        assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
        stream.write_all(b"hello").unwrap();
        stream
            .write_all(
                b"POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
            )
            .unwrap();
        let mut rest = String::new();
        stream.read_to_string(&mut rest).unwrap();
        assert!(
            rest.contains("X-Path: /a b\r\n") && rest.contains("X-Query: x y!\r\n"),
            "{rest}"
        );
        assert!(rest.contains("\r\n\r\nhello"), "{rest}");
        assert!(rest.ends_with("\r\n\r\nabcde"), "{rest}");
        let log = server.log().all();
        assert_eq!(log.len(), 2);
        assert_eq!(log[1].body, b"abcde");
    }

    #[test]
    fn head_requests_get_headers_only() {
        let server = echo();
        let response = client::request("HEAD", &format!("{}/x", server.url()), &[], b"").unwrap();
        assert_eq!(response.status, 200);
        assert!(response.body.is_empty());
        assert_eq!(
            server.localhost_url(),
            format!("http://localhost:{}", server.port())
        );
    }
}

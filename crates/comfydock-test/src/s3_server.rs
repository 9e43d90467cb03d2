//! A real S3-compatible server for tests: moto in server mode (from PyPI: `python3 -m pip install
//! "moto[server]"`; `.ci/run` installs a pinned version), on a free port of 127.0.0.1, stopped when
//! dropped. It speaks the S3 REST API (buckets, PUT, GET, multipart uploads) and takes any
//! credentials. Panics name what is missing: tests need the real server and must not skip.

use std::ffi::OsString;
use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::Duration;

use crate::python_server::{PythonServer, PythonServerSpec};

/// The credentials tests give clients of the server (moto accepts any).
pub const ACCESS_KEY_ID: &str = "comfydock-test";
pub const SECRET_ACCESS_KEY: &str = "comfydock-test-secret";
pub const REGION: &str = "us-east-1";

/// A running moto server.
pub struct S3Server {
    server: PythonServer,
}

impl S3Server {
    /// Starts moto on a free port and waits until it answers.
    pub fn start() -> Self {
        let server = PythonServer::start(
            PythonServerSpec {
                name: "moto",
                imports: "import moto.server, flask, flask_cors",
                install: "\"moto[server]==5.2.1\"",
                args: Box::new(|port, _| {
                    ["-m", "moto.server", "-H", "127.0.0.1", "-p", &port.to_string()]
                        .map(OsString::from)
                        .to_vec()
                }),
                timeout: Duration::from_mins(1),
            },
            |port| request_with_head(port, "GET", "/").is_some_and(|(status, _)| status > 0),
        );
        Self { server }
    }

    /// What the server logged.
    pub fn log(&self) -> String {
        self.server.log()
    }

    /// `http://127.0.0.1:<port>`, for `AWS_ENDPOINT_URL`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.server.port())
    }

    /// The `AWS_*` variables a client of this server needs.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID.to_owned()),
            ("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY.to_owned()),
            ("AWS_REGION", REGION.to_owned()),
            ("AWS_ENDPOINT_URL", self.endpoint()),
        ]
    }

    /// Creates a bucket.
    pub fn create_bucket(&self, name: &str) {
        let (status, body) = self
            .request("PUT", &format!("/{name}"))
            .unwrap_or_else(|| panic!("moto did not answer creating bucket `{name}`: {}", self.log()));
        assert_eq!(status, 200, "creating bucket `{name}` failed: {body}");
    }

    /// The keys in a bucket under `prefix`, sorted (at most 1000).
    pub fn keys(&self, bucket: &str, prefix: &str) -> Vec<String> {
        let (status, body) = self
            .request("GET", &format!("/{bucket}?list-type=2&prefix={prefix}"))
            .unwrap_or_else(|| panic!("moto did not answer listing `{bucket}`: {}", self.log()));
        assert_eq!(status, 200, "listing bucket `{bucket}` failed: {body}");
        let key = regex::Regex::new("<Key>([^<]*)</Key>").expect("key pattern");
        let mut keys: Vec<String> = key
            .captures_iter(&body)
            .map(|c| c[1].replace("&amp;", "&"))
            .collect();
        keys.sort();
        keys
    }

    /// Multipart uploads started but neither completed nor aborted, in a bucket.
    pub fn open_multipart_uploads(&self, bucket: &str) -> usize {
        let (status, body) = self
            .request("GET", &format!("/{bucket}?uploads"))
            .unwrap_or_else(|| {
                panic!(
                    "moto did not answer listing uploads of `{bucket}`: {}",
                    self.log()
                )
            });
        assert_eq!(status, 200, "listing the uploads of `{bucket}` failed: {body}");
        body.matches("<UploadId>").count()
    }

    /// The ETag of an object (a multipart upload's ends in `-<parts>`), `None` when it is missing.
    pub fn etag(&self, bucket: &str, key: &str) -> Option<String> {
        let (status, head) = request_with_head(self.server.port(), "HEAD", &format!("/{bucket}/{key}"))?;
        if status != 200 {
            return None;
        }
        head.lines().find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("etag")
                .then(|| value.trim().trim_matches('"').to_owned())
        })
    }

    /// One unsigned HTTP/1.1 request (moto does not check signatures); the status and body.
    fn request(&self, method: &str, target: &str) -> Option<(u16, String)> {
        let (status, text) = request_with_head(self.server.port(), method, target)?;
        let body = text
            .split_once("\r\n\r\n")
            .map_or_else(String::new, |(_, body)| body.to_owned());
        Some((status, body))
    }
}

/// One unsigned HTTP/1.1 request to the server on `port`: the status and the whole response
/// (head and body).
fn request_with_head(port: u16, method: &str, target: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    write!(
        stream,
        "{method} {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).ok()?;
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text.split(' ').nth(1)?.parse().ok()?;
    Some((status, text))
}

//! Verified, resumable model downloads.
//!
//! A download streams into `<final>.part` beside its final name, hashing as it goes (blake3 and
//! sha256). A rerun continues from the `.part` length with `Range` (and starts over if the server
//! answers `200`). Connection drops and 5xx answers are retried with exponential backoff, each
//! retry resuming from where the file ends. The expected hash (given, or published by Civitai)
//! is checked before the rename to the final name; a mismatch deletes the `.part` and leaves
//! nothing at the final path. Tokens follow [`crate::endpoints`]'s rules.

use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use futures::StreamExt as _;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_DISPOSITION, CONTENT_LENGTH, CONTENT_RANGE};
use tokio::io::AsyncWriteExt as _;
use url::Url;

use crate::civitai::{CivitaiError, CivitaiFile};
use crate::endpoints::{CivitaiTarget, Endpoints, Tokens, redact_url};
use crate::fetch::{FetchError, HttpContext, JsonFetchError};
use crate::folders::{folder_key, is_model_file_name};
use crate::hashing::{FileDigest, StreamingDigest};
use crate::index::{IndexError, ModelIndex, NewLocation, SourceKind};
use crate::roots::ModelRoot;

/// Free space kept on top of the download's size.
const SPACE_MARGIN: u64 = 64 * 1024 * 1024;

/// A hash the downloaded bytes must have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExpectedHash {
    Sha256(String),
    Blake3(String),
}

impl ExpectedHash {
    fn matches(&self, digest: &FileDigest) -> bool {
        match self {
            Self::Sha256(hex) => digest.sha256.as_deref() == Some(hex.to_ascii_lowercase().as_str()),
            Self::Blake3(hex) => digest.blake3 == hex.to_ascii_lowercase(),
        }
    }

    fn describe(&self) -> String {
        match self {
            Self::Sha256(hex) => format!("sha256 {}", hex.to_ascii_lowercase()),
            Self::Blake3(hex) => format!("blake3 {}", hex.to_ascii_lowercase()),
        }
    }

    fn actual(&self, digest: &FileDigest) -> String {
        match self {
            Self::Sha256(_) => format!("sha256 {}", digest.sha256.as_deref().unwrap_or("?")),
            Self::Blake3(_) => format!("blake3 {}", digest.blake3),
        }
    }
}

/// One `model download`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownloadRequest {
    pub url: String,
    /// `FOLDER/NAME`, `FOLDER/` or `FOLDER` below the target root; no `..`, not absolute.
    pub to: Option<String>,
    pub expected: Option<ExpectedHash>,
}

/// How often and how patiently to retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Total tries per download (1 = no retry).
    pub attempts: u32,
    pub initial_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 5,
            initial_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    fn delay(&self, retry: u32) -> Duration {
        self.initial_delay
            .saturating_mul(2_u32.saturating_pow(retry))
            .min(self.max_delay)
    }
}

/// Download progress, per download id (the request's position).
pub trait DownloadReporter: Send + Sync {
    /// A transfer starts: `total` bytes (if known), continuing at `resumed_from`.
    fn started(&self, _id: usize, _name: &str, _total: Option<u64>, _resumed_from: u64) {}
    /// `done` bytes of the file are on disk.
    fn progress(&self, _id: usize, _done: u64) {}
    /// A try failed and the download will be retried after a pause.
    fn retrying(&self, _id: usize, _attempt: u32, _message: &str) {}
    /// The download ended (successfully or not).
    fn finished(&self, _id: usize, _ok: bool) {}
}

impl DownloadReporter for comfydock_foundation::reporter::NoReporter {}

/// Download progress shown on a general [`Reporter`]: one unit of work per transfer, in bytes
/// (the CLI draws bytes, rate and ETA), retries as warnings. For downloads inside larger
/// commands (`import`, `workflow resolve --install`) that report through one reporter.
///
/// [`Reporter`]: comfydock_foundation::reporter::Reporter
pub struct ReportedDownloads<'a> {
    reporter: &'a dyn comfydock_foundation::reporter::Reporter,
    /// Download id to the reporter's work id.
    work: std::sync::Mutex<std::collections::BTreeMap<usize, usize>>,
}

impl<'a> ReportedDownloads<'a> {
    pub fn new(reporter: &'a dyn comfydock_foundation::reporter::Reporter) -> Self {
        Self {
            reporter,
            work: std::sync::Mutex::default(),
        }
    }
}

impl DownloadReporter for ReportedDownloads<'_> {
    fn started(&self, id: usize, name: &str, total: Option<u64>, resumed_from: u64) {
        let work = self.reporter.start(name, total);
        if resumed_from > 0 {
            self.reporter.progress(work, resumed_from);
        }
        if let Some(previous) = self.work.lock().expect("download progress lock").insert(id, work) {
            self.reporter.finish(previous);
        }
    }

    fn progress(&self, id: usize, done: u64) {
        if let Some(&work) = self.work.lock().expect("download progress lock").get(&id) {
            self.reporter.progress(work, done);
        }
    }

    fn retrying(&self, _id: usize, attempt: u32, message: &str) {
        self.reporter.warning(&format!("retry {attempt}: {message}"));
    }

    fn finished(&self, id: usize, _ok: bool) {
        if let Some(work) = self.work.lock().expect("download progress lock").remove(&id) {
            self.reporter.finish(work);
        }
    }
}

/// A finished download, ready to be indexed with [`ModelIndex::record_download`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Downloaded {
    /// The URL to record as the model's source (token-free).
    pub source_url: String,
    pub source_kind: SourceKind,
    /// Location root and path below it, as the index stores them.
    pub root: PathBuf,
    pub relative_path: String,
    pub folder: Option<String>,
    /// The final file.
    pub path: PathBuf,
    pub blake3: String,
    pub sha256: Option<String>,
    pub size: u64,
    /// Bytes that were already in the `.part` file when the last transfer started.
    pub resumed_from: u64,
    /// The final file was already there with the expected content; nothing was fetched.
    pub already_present: bool,
}

/// A download failed. Messages never contain tokens.
#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    #[error("`{0}` is not a valid URL")]
    InvalidUrl(String),
    #[error("`--to {0}` must be a relative FOLDER/NAME without `..`")]
    UnsafeDestination(String),
    #[error("No folder for `{url}`: cannot tell which kind of model it is")]
    MissingFolder { url: String },
    #[error("Cannot find a file name for `{url}`")]
    NoFileName { url: String },
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error("Cannot resolve `{url}` through the Civitai API")]
    Civitai {
        url: String,
        #[source]
        source: CivitaiError,
    },
    #[error("`{url}` answered HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("Download of `{url}` ended after {received} of {expected} bytes")]
    Truncated {
        url: String,
        received: u64,
        expected: u64,
    },
    #[error("`{url}` rejected the resume range; starting over")]
    RangeRejected { url: String },
    #[error("Not enough space in `{path}`: {needed} bytes needed, {available} available")]
    InsufficientSpace {
        path: PathBuf,
        needed: u64,
        available: u64,
    },
    #[error(
        "Downloaded bytes from `{url}` do not match: expected {expected}, got {actual}; nothing was kept"
    )]
    HashMismatch {
        url: String,
        expected: String,
        actual: String,
    },
    #[error("`{path}` already exists")]
    DestinationExists { path: PathBuf },
    #[error("`{path}` is being downloaded by another process")]
    InProgress { path: PathBuf },
    #[error("File error on `{path}`")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Index(#[from] IndexError),
    /// Internal: the file name became known and a `.part` exists; resume it.
    #[doc(hidden)]
    #[error("restart to resume")]
    Restart,
}

impl comfydock_foundation::Hinted for DownloadError {
    fn hint(&self) -> Option<String> {
        match self {
            Self::MissingFolder { .. } => {
                Some("say where it goes with `--to FOLDER/` (e.g. `--to loras/`)".to_owned())
            }
            Self::NoFileName { .. } => Some("name the file with `--to FOLDER/NAME`".to_owned()),
            Self::Status { status: 401 | 403, .. } => Some(
                "set a token: `comfydock config set tokens.huggingface ...` or `tokens.civitai` (or HF_TOKEN / CIVITAI_API_TOKEN)"
                    .to_owned(),
            ),
            Self::Truncated { .. } | Self::Fetch(_) | Self::Status { .. } => {
                Some("run the same `comfydock model download` again: it resumes from the `.part` file".to_owned())
            }
            Self::DestinationExists { path } => Some(format!(
                "remove `{}`, pick another name with `--to`, or pass `--sha256`/`--blake3` to accept it if it matches",
                path.display()
            )),
            Self::InsufficientSpace { .. } => Some("free some space or add a model root on another disk".to_owned()),
            _ => None,
        }
    }
}

impl DownloadError {
    /// Worth another try (after a pause, resuming from the `.part`).
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Fetch(FetchError::Network { .. }) | Self::Truncated { .. } | Self::RangeRejected { .. } => {
                true
            }
            Self::Status { status, .. } => *status >= 500 || *status == 429 || *status == 408,
            Self::Civitai {
                source: CivitaiError::Fetch(err),
                ..
            } => err.is_transient(),
            _ => false,
        }
    }
}

/// Where a request resolved to.
#[derive(Debug, Clone)]
struct ResolvedSource {
    download_url: Url,
    record_url: String,
    kind: SourceKind,
    file_name: Option<String>,
    folder: Option<String>,
    expected: Option<ExpectedHash>,
}

/// `--to` split into folder parts and an optional file name.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Destination {
    folder: Vec<String>,
    name: Option<String>,
}

fn parse_destination(to: &str) -> Result<Destination, DownloadError> {
    let unsafe_destination = || DownloadError::UnsafeDestination(to.to_owned());
    let path = Path::new(to);
    if path.is_absolute() || to.starts_with(['/', '\\']) || to.get(1..2) == Some(":") {
        return Err(unsafe_destination());
    }
    let parts: Vec<&str> = to
        .split(['/', '\\'])
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    if parts.is_empty() || parts.contains(&"..") {
        return Err(unsafe_destination());
    }
    if path
        .components()
        .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return Err(unsafe_destination());
    }
    let is_folder_only = to.ends_with(['/', '\\']) || parts.len() == 1;
    let mut folder: Vec<String> = parts.iter().map(|p| (*p).to_owned()).collect();
    let name = if is_folder_only { None } else { folder.pop() };
    Ok(Destination { folder, name })
}

/// A file name from a server or URL, reduced to a safe single component.
fn safe_file_name(raw: &str) -> Option<String> {
    let name = raw.rsplit(['/', '\\']).next()?.trim();
    (!name.is_empty() && !name.starts_with('.') && name != "..").then(|| name.to_owned())
}

/// `filename*=UTF-8''...` (preferred) or `filename="..."` from a Content-Disposition value.
fn content_disposition_name(value: &str) -> Option<String> {
    let mut plain = None;
    for part in value.split(';').map(str::trim) {
        let Some((key, raw)) = part.split_once('=') else {
            continue;
        };
        match key.trim().to_ascii_lowercase().as_str() {
            "filename*" => {
                let encoded = raw.trim().split_once("''").map_or(raw.trim(), |(_, rest)| rest);
                let decoded = percent_decode(encoded);
                if let Some(name) = safe_file_name(&decoded) {
                    return Some(name);
                }
            }
            "filename" => plain = safe_file_name(raw.trim().trim_matches('"')),
            _ => {}
        }
    }
    plain
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(byte) = text
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn url_file_name(url: &Url) -> Option<String> {
    url.path_segments()?
        .rev()
        .find(|s| !s.is_empty())
        .map(percent_decode)
        .and_then(|s| safe_file_name(&s))
}

fn part_path(final_path: &Path) -> PathBuf {
    let mut name = final_path.file_name().unwrap_or_default().to_os_string();
    name.push(".part");
    final_path.with_file_name(name)
}

fn file_len(path: &Path) -> u64 {
    fs_err::metadata(path).map_or(0, |m| m.len())
}

/// Downloads model files; cheap to clone and share.
#[derive(Debug, Clone)]
pub struct Downloader {
    http: HttpContext,
    retry: RetryPolicy,
    concurrency: usize,
}

impl Downloader {
    /// A downloader for these endpoints and tokens (from settings).
    pub fn new(endpoints: Endpoints, tokens: Tokens) -> Result<Self, DownloadError> {
        Ok(Self {
            http: HttpContext::new(endpoints, tokens)?,
            retry: RetryPolicy::default(),
            concurrency: 4,
        })
    }

    #[must_use]
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// How many downloads run at once in [`Downloader::download_all`].
    #[must_use]
    pub fn with_concurrency(mut self, concurrency: usize) -> Self {
        self.concurrency = concurrency.max(1);
        self
    }

    pub fn endpoints(&self) -> &Endpoints {
        &self.http.endpoints
    }

    /// Run several downloads into `root` with bounded concurrency; results in request order.
    pub async fn download_all(
        &self,
        root: &ModelRoot,
        requests: &[DownloadRequest],
        reporter: &dyn DownloadReporter,
    ) -> Vec<Result<Downloaded, DownloadError>> {
        let slots = tokio::sync::Semaphore::new(self.concurrency);
        let slots = &slots;
        futures::future::join_all(requests.iter().enumerate().map(|(id, request)| async move {
            // The semaphore is never closed, so acquiring only waits.
            let _slot = slots.acquire().await.ok();
            self.download(root, request, id, reporter).await
        }))
        .await
    }

    /// Download one file into `root`, retrying transient failures.
    pub async fn download(
        &self,
        root: &ModelRoot,
        request: &DownloadRequest,
        id: usize,
        reporter: &dyn DownloadReporter,
    ) -> Result<Downloaded, DownloadError> {
        let result = self.download_inner(root, request, id, reporter).await;
        reporter.finished(id, result.is_ok());
        result
    }

    async fn download_inner(
        &self,
        root: &ModelRoot,
        request: &DownloadRequest,
        id: usize,
        reporter: &dyn DownloadReporter,
    ) -> Result<Downloaded, DownloadError> {
        let destination = request.to.as_deref().map(parse_destination).transpose()?;
        let mut source = self
            .with_retries(id, reporter, || self.resolve(&request.url))
            .await?;
        if request.expected.is_some() {
            source.expected.clone_from(&request.expected);
        }
        let folder_parts: Vec<String> = match &destination {
            Some(destination) => destination.folder.clone(),
            None => vec![
                source
                    .folder
                    .clone()
                    .ok_or_else(|| DownloadError::MissingFolder {
                        url: redact_url(&request.url),
                    })?,
            ],
        };
        let (location_root, dir) = target_dir(root, &folder_parts);
        fs_err::create_dir_all(&dir).map_err(|source| DownloadError::Io {
            path: dir.clone(),
            source,
        })?;
        let mut name = destination
            .and_then(|d| d.name)
            .or_else(|| source.file_name.clone());
        let mut retry = 0;
        loop {
            match self.attempt(&source, &dir, &mut name, id, reporter).await {
                Ok((path, digest, resumed_from, already_present)) => {
                    let relative = path.strip_prefix(&location_root).unwrap_or(&path);
                    let relative_path = relative
                        .components()
                        .map(|c| c.as_os_str().to_string_lossy().into_owned())
                        .collect::<Vec<_>>()
                        .join("/");
                    return Ok(Downloaded {
                        source_url: source.record_url.clone(),
                        source_kind: source.kind,
                        root: location_root,
                        folder: Some(folder_key(&folder_parts[0]).to_owned()),
                        relative_path,
                        path,
                        blake3: digest.blake3,
                        sha256: digest.sha256,
                        size: digest.size,
                        resumed_from,
                        already_present,
                    });
                }
                Err(DownloadError::Restart) => {}
                Err(err) if err.is_retryable() && retry + 1 < self.retry.attempts => {
                    reporter.retrying(id, retry + 1, &err.to_string());
                    tokio::time::sleep(self.retry.delay(retry)).await;
                    retry += 1;
                }
                Err(err) => return Err(err),
            }
        }
    }

    async fn with_retries<T, F, Fut>(
        &self,
        id: usize,
        reporter: &dyn DownloadReporter,
        call: F,
    ) -> Result<T, DownloadError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, DownloadError>>,
    {
        let mut retry = 0;
        loop {
            match call().await {
                Err(err) if err.is_retryable() && retry + 1 < self.retry.attempts => {
                    reporter.retrying(id, retry + 1, &err.to_string());
                    tokio::time::sleep(self.retry.delay(retry)).await;
                    retry += 1;
                }
                other => return other,
            }
        }
    }

    /// Normalise a URL and, for Civitai pages, ask the API for the file.
    async fn resolve(&self, raw: &str) -> Result<ResolvedSource, DownloadError> {
        let url = Url::parse(raw).map_err(|_| DownloadError::InvalidUrl(redact_url(raw)))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(DownloadError::InvalidUrl(redact_url(raw)));
        }
        let endpoints = &self.http.endpoints;
        if let Some(target) = endpoints.civitai_target(&url) {
            let civitai_error = |source| DownloadError::Civitai {
                url: redact_url(raw),
                source,
            };
            let file = match target {
                CivitaiTarget::Model(id) => Some(self.http.civitai_model(id).await.map_err(civitai_error)?),
                CivitaiTarget::Version(id) => {
                    Some(self.http.civitai_version(id).await.map_err(civitai_error)?)
                }
                // A direct link works without the API; its metadata (name, hash, type) is a bonus.
                CivitaiTarget::Download(id) => match self.http.civitai_version(id).await {
                    Ok(file) => Some(file),
                    Err(CivitaiError::Fetch(err)) if err.is_transient() => {
                        return Err(civitai_error(CivitaiError::Fetch(err)));
                    }
                    Err(_) => None,
                },
            };
            return Ok(match file {
                Some(file) => civitai_source(file, &url)?,
                None => ResolvedSource {
                    record_url: redact_url(url.as_str()),
                    download_url: url,
                    kind: SourceKind::Civitai,
                    file_name: None,
                    folder: None,
                    expected: None,
                },
            });
        }
        let url = endpoints.normalize_huggingface(&url);
        Ok(ResolvedSource {
            record_url: redact_url(url.as_str()),
            kind: endpoints.classify(url.as_str()),
            file_name: None,
            folder: None,
            expected: None,
            download_url: url,
        })
    }

    /// One try: returns (final path, digest, resumed_from, already_present).
    async fn attempt(
        &self,
        source: &ResolvedSource,
        dir: &Path,
        name: &mut Option<String>,
        id: usize,
        reporter: &dyn DownloadReporter,
    ) -> Result<(PathBuf, FileDigest, u64, bool), DownloadError> {
        let shown_url = redact_url(source.download_url.as_str());
        if let Some(known) = name.as_deref()
            && let Some(done) = existing_final(&dir.join(known), source.expected.as_ref()).await?
        {
            return Ok(done);
        }
        let offset = name.as_deref().map_or(0, |n| file_len(&part_path(&dir.join(n))));
        let (response, final_url, published_sha256) = self
            .http
            .get_with_published_hash(&source.download_url, (offset > 0).then_some(offset))
            .await?;
        // A given or API-published hash wins; else what the Hugging Face endpoint publishes.
        let expected = source
            .expected
            .clone()
            .or_else(|| published_sha256.map(ExpectedHash::Sha256));
        let status = response.status();
        if status == StatusCode::RANGE_NOT_SATISFIABLE && offset > 0 {
            if let Some(known) = name.as_deref() {
                let _ = fs_err::remove_file(part_path(&dir.join(known)));
            }
            return Err(DownloadError::RangeRejected { url: shown_url });
        }
        if !status.is_success() {
            return Err(DownloadError::Status {
                url: shown_url,
                status: status.as_u16(),
            });
        }
        if name.is_none() {
            let discovered = response
                .headers()
                .get(CONTENT_DISPOSITION)
                .and_then(|v| v.to_str().ok())
                .and_then(content_disposition_name)
                .or_else(|| url_file_name(&final_url).filter(|n| is_model_file_name(n)))
                .or_else(|| url_file_name(&source.download_url))
                .ok_or_else(|| DownloadError::NoFileName {
                    url: shown_url.clone(),
                })?;
            *name = Some(discovered);
            let known = name.as_deref().unwrap_or_default();
            let final_path = dir.join(known);
            if final_path.exists() || file_len(&part_path(&final_path)) > 0 {
                // Now that the name is known, check the final file / resume the .part.
                return Err(DownloadError::Restart);
            }
        }
        let final_path = dir.join(name.as_deref().unwrap_or_default());
        let part = part_path(&final_path);

        // 206 continues the .part; 200 (server ignored Range) starts over.
        let resume_from = if status == StatusCode::PARTIAL_CONTENT {
            let start = response
                .headers()
                .get(CONTENT_RANGE)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("bytes "))
                .and_then(|v| v.split('-').next())
                .and_then(|v| v.parse::<u64>().ok());
            if start != Some(offset) {
                let _ = fs_err::remove_file(&part);
                return Err(DownloadError::RangeRejected { url: shown_url });
            }
            offset
        } else {
            0
        };
        let total = total_length(&response, resume_from);
        if let Some(total) = total {
            let needed = total.saturating_sub(resume_from);
            if let Ok(available) = fs4::available_space(dir)
                && available < needed.saturating_add(SPACE_MARGIN)
            {
                return Err(DownloadError::InsufficientSpace {
                    path: dir.to_owned(),
                    needed,
                    available,
                });
            }
        }

        let (file, digest) = open_part(&part, resume_from).await?;
        let mut file = tokio::fs::File::from_std(file.into_parts().0);
        let mut digest = digest;
        let io_error = |source| DownloadError::Io {
            path: part.clone(),
            source,
        };
        reporter.started(id, name.as_deref().unwrap_or_default(), total, resume_from);
        let mut done = resume_from;
        let mut stream = response.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = match chunk {
                Ok(chunk) => chunk,
                Err(err) => {
                    file.flush().await.map_err(io_error)?;
                    return Err(DownloadError::Fetch(FetchError::Network {
                        url: shown_url,
                        source: err.without_url(),
                    }));
                }
            };
            file.write_all(&chunk).await.map_err(io_error)?;
            digest.update(&chunk);
            done += chunk.len() as u64;
            reporter.progress(id, done);
        }
        file.flush().await.map_err(io_error)?;
        file.sync_all().await.map_err(io_error)?;
        drop(file);
        if let Some(total) = total
            && done != total
        {
            return Err(DownloadError::Truncated {
                url: shown_url,
                received: done,
                expected: total,
            });
        }
        let digest = digest.finish();
        if let Some(expected) = &expected
            && !expected.matches(&digest)
        {
            let _ = fs_err::remove_file(&part);
            return Err(DownloadError::HashMismatch {
                url: shown_url,
                expected: expected.describe(),
                actual: expected.actual(&digest),
            });
        }
        if final_path.exists() {
            return Err(DownloadError::DestinationExists { path: final_path });
        }
        fs_err::rename(&part, &final_path).map_err(|source| DownloadError::Io {
            path: final_path.clone(),
            source,
        })?;
        Ok((final_path, digest, resume_from, false))
    }
}

fn civitai_source(file: CivitaiFile, page: &Url) -> Result<ResolvedSource, DownloadError> {
    let download_url =
        Url::parse(&file.download_url).map_err(|_| DownloadError::InvalidUrl(redact_url(page.as_str())))?;
    let expected = file
        .sha256
        .map(ExpectedHash::Sha256)
        .or_else(|| file.blake3.map(ExpectedHash::Blake3));
    Ok(ResolvedSource {
        record_url: redact_url(download_url.as_str()),
        download_url,
        kind: SourceKind::Civitai,
        file_name: file.file_name.as_deref().and_then(safe_file_name),
        folder: file.folder.map(str::to_owned),
        expected,
    })
}

/// The model folder (or its mapped directory) under a root; returns (location root, dir).
fn target_dir(root: &ModelRoot, folder_parts: &[String]) -> (PathBuf, PathBuf) {
    let key = folder_key(&folder_parts[0]);
    let mapped = root.folders.get(key).and_then(|dirs| dirs.first());
    let mut dir = match mapped {
        Some(mapped) => root.path.join(mapped),
        None => root.path.join(&folder_parts[0]),
    };
    for part in &folder_parts[1..] {
        dir.push(part);
    }
    let location_root = if dir.starts_with(&root.path) {
        root.path.clone()
    } else {
        dir.clone()
    };
    (location_root, dir)
}

/// The full file size from `Content-Range` (206) or `Content-Length` (200).
fn total_length(response: &reqwest::Response, resume_from: u64) -> Option<u64> {
    let headers = response.headers();
    if resume_from > 0 {
        headers
            .get(CONTENT_RANGE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit('/').next())
            .and_then(|v| v.parse().ok())
    } else {
        headers
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
    }
}

/// Open (or create) the `.part`, lock it, keep `resume_from` bytes and hash them.
async fn open_part(part: &Path, resume_from: u64) -> Result<(fs_err::File, StreamingDigest), DownloadError> {
    let part = part.to_owned();
    tokio::task::spawn_blocking(move || {
        let io_error = |source| DownloadError::Io {
            path: part.clone(),
            source,
        };
        let file = fs_err::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&part)
            .map_err(io_error)?;
        match file.file().try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(DownloadError::InProgress { path: part.clone() });
            }
            Err(std::fs::TryLockError::Error(source)) => return Err(io_error(source)),
        }
        file.set_len(resume_from).map_err(io_error)?;
        let mut digest = StreamingDigest::new();
        if resume_from > 0 {
            let mut reader = std::io::BufReader::with_capacity(1 << 20, &file);
            let mut buffer = vec![0_u8; 1 << 20];
            loop {
                let read = std::io::Read::read(&mut reader, &mut buffer).map_err(io_error)?;
                if read == 0 {
                    break;
                }
                digest.update(&buffer[..read]);
            }
        }
        let mut file = file;
        std::io::Seek::seek(&mut file, std::io::SeekFrom::End(0)).map_err(io_error)?;
        Ok((file, digest))
    })
    .await
    .map_err(|join| DownloadError::Io {
        path: PathBuf::new(),
        source: std::io::Error::other(join.to_string()),
    })?
}

/// If the final file already exists: accept it when it has the expected hash, else refuse.
async fn existing_final(
    path: &Path,
    expected: Option<&ExpectedHash>,
) -> Result<Option<(PathBuf, FileDigest, u64, bool)>, DownloadError> {
    if !path.exists() {
        return Ok(None);
    }
    let Some(expected) = expected else {
        return Err(DownloadError::DestinationExists {
            path: path.to_owned(),
        });
    };
    let owned = path.to_owned();
    let digest = tokio::task::spawn_blocking(move || {
        crate::hashing::hash_file(&owned, crate::hashing::HashKinds::Blake3AndSha256)
    })
    .await
    .map_err(|join| DownloadError::Io {
        path: path.to_owned(),
        source: std::io::Error::other(join.to_string()),
    })?
    .map_err(|err| DownloadError::Io {
        path: path.to_owned(),
        source: std::io::Error::other(crate::scan::error_chain(&err)),
    })?;
    if expected.matches(&digest) {
        Ok(Some((path.to_owned(), digest, 0, true)))
    } else {
        Err(DownloadError::DestinationExists {
            path: path.to_owned(),
        })
    }
}

/// A source found for an indexed model.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FoundSource {
    pub blake3: String,
    pub sha256: String,
    pub file: CivitaiFile,
    /// The source was not recorded before.
    pub added: bool,
}

/// What `model sources find` did.
#[derive(Debug, Default, serde::Serialize)]
pub struct SourceSearch {
    pub found: Vec<FoundSource>,
    /// blake3 of models Civitai does not know.
    pub not_found: Vec<String>,
    /// `(blake3, message)` of look-ups that failed.
    pub errors: Vec<(String, String)>,
}

impl Downloader {
    /// Look each `(blake3, sha256)` up on Civitai by sha256 (bounded concurrency).
    pub async fn find_civitai_sources(
        &self,
        hashes: &[(String, String)],
    ) -> Vec<Result<Option<CivitaiFile>, JsonFetchError>> {
        let slots = tokio::sync::Semaphore::new(self.concurrency);
        let slots = &slots;
        futures::future::join_all(hashes.iter().map(|(_, sha256)| async move {
            let _slot = slots.acquire().await.ok();
            self.http.civitai_by_hash(sha256).await
        }))
        .await
    }
}

impl ModelIndex {
    /// Index a finished download at its location, with its source URL.
    pub fn record_download(&mut self, downloaded: &Downloaded) -> Result<i64, IndexError> {
        let metadata = fs_err::metadata(&downloaded.path).ok();
        let stamp = metadata.as_ref().map(crate::scan::stamp_of).map_or(
            crate::index::FileStamp {
                size: downloaded.size,
                mtime_ns: 0,
                inode: 0,
            },
            |(stamp, _)| stamp,
        );
        let digest = FileDigest {
            blake3: downloaded.blake3.clone(),
            sha256: downloaded.sha256.clone(),
            size: downloaded.size,
        };
        self.batch(|tx| {
            let (model_id, _) = tx.ensure_model(&digest)?;
            tx.upsert_location(
                model_id,
                &NewLocation {
                    root: &downloaded.root,
                    relative_path: &downloaded.relative_path,
                    folder: downloaded.folder.as_deref(),
                    stamp,
                },
            )?;
            tx.add_source(model_id, &downloaded.source_url, downloaded.source_kind)?;
            Ok(model_id)
        })
    }

    /// `model sources find`: compute missing sha256s, look them up on Civitai, record what is
    /// found. Models without a readable file are reported in `errors`.
    pub async fn find_sources(
        &mut self,
        downloader: &Downloader,
        models: &[crate::index::ModelRecord],
    ) -> Result<SourceSearch, IndexError> {
        let sha = self.ensure_sha256(models)?;
        let mut search = SourceSearch {
            errors: sha
                .errors
                .iter()
                .map(|issue| (issue.path.display().to_string(), issue.message.clone()))
                .collect(),
            ..SourceSearch::default()
        };
        let results = downloader.find_civitai_sources(&sha.hashes).await;
        for ((blake3, sha256), result) in sha.hashes.into_iter().zip(results) {
            match result {
                Ok(Some(file)) => {
                    let added = match self.model_id_by_blake3(&blake3)? {
                        Some(id) => {
                            self.add_source(id, &redact_url(&file.download_url), SourceKind::Civitai)?
                        }
                        None => false,
                    };
                    search.found.push(FoundSource {
                        blake3,
                        sha256,
                        file,
                        added,
                    });
                }
                Ok(None) => search.not_found.push(blake3),
                Err(err) => search.errors.push((blake3, crate::scan::error_chain(&err))),
            }
        }
        Ok(search)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations() {
        assert_eq!(
            parse_destination("loras/detail.safetensors").unwrap(),
            Destination {
                folder: vec!["loras".into()],
                name: Some("detail.safetensors".into())
            }
        );
        assert_eq!(
            parse_destination("checkpoints").unwrap(),
            Destination {
                folder: vec!["checkpoints".into()],
                name: None
            }
        );
        assert_eq!(
            parse_destination("loras/sub/").unwrap().folder,
            vec!["loras", "sub"]
        );
        for bad in [
            "../x.safetensors",
            "loras/../../x",
            "/abs/x",
            "\\x",
            "C:\\x",
            "",
            "./",
        ] {
            assert!(
                matches!(parse_destination(bad), Err(DownloadError::UnsafeDestination(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn file_names_from_headers_and_urls() {
        assert_eq!(
            content_disposition_name("attachment; filename=\"model.safetensors\""),
            Some("model.safetensors".into())
        );
        assert_eq!(
            content_disposition_name("attachment; filename=\"a.pt\"; filename*=UTF-8''my%20lora.safetensors"),
            Some("my lora.safetensors".into())
        );
        assert_eq!(
            content_disposition_name("attachment; filename=\"../../etc/passwd\""),
            Some("passwd".into())
        );
        assert_eq!(content_disposition_name("attachment; filename=\"..\""), None);
        assert_eq!(content_disposition_name("inline"), None);
        let url = Url::parse("https://x.example/a/b/model%201.safetensors?download=true").unwrap();
        assert_eq!(url_file_name(&url), Some("model 1.safetensors".into()));
    }

    #[test]
    fn backoff_grows_and_caps() {
        let policy = RetryPolicy {
            attempts: 5,
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(350),
        };
        assert_eq!(policy.delay(0), Duration::from_millis(100));
        assert_eq!(policy.delay(1), Duration::from_millis(200));
        assert_eq!(policy.delay(2), Duration::from_millis(350));
    }

    /// Every call a [`Reporter`] receives, in order.
    #[derive(Default)]
    struct Calls(std::sync::Mutex<Vec<String>>);

    impl comfydock_foundation::reporter::Reporter for Calls {
        fn warning(&self, message: &str) {
            self.0.lock().unwrap().push(format!("warning {message}"));
        }
        fn start(&self, label: &str, total: Option<u64>) -> usize {
            let mut calls = self.0.lock().unwrap();
            calls.push(format!("start {label} {total:?}"));
            calls.len()
        }
        fn progress(&self, id: usize, done: u64) {
            self.0.lock().unwrap().push(format!("progress {id} {done}"));
        }
        fn finish(&self, id: usize) {
            self.0.lock().unwrap().push(format!("finish {id}"));
        }
    }

    #[test]
    fn downloads_show_as_byte_work_on_a_general_reporter() {
        let calls = Calls::default();
        let downloads = ReportedDownloads::new(&calls);
        downloads.started(0, "a.safetensors", Some(100), 0);
        downloads.progress(0, 40);
        downloads.retrying(0, 1, "connection reset");
        // A retried transfer resumes: the first unit of work ends, a new one starts at the offset.
        downloads.started(0, "a.safetensors", Some(100), 40);
        downloads.progress(0, 100);
        downloads.finished(0, true);
        downloads.progress(0, 100);
        assert_eq!(
            calls.0.into_inner().unwrap(),
            [
                "start a.safetensors Some(100)",
                "progress 1 40",
                "warning retry 1: connection reset",
                "start a.safetensors Some(100)",
                "progress 4 40",
                "finish 1",
                "progress 4 100",
                "finish 4",
            ]
        );
    }
}

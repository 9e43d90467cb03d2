//! Where job outputs live: a local folder (the default, `<dir>/<job id>/<file>`) or an
//! S3-compatible bucket (`--outputs s3://BUCKET/PREFIX`, keys `PREFIX/<job id>/<file>`) that every
//! instance on a shared queue reads and writes, so any instance serves any job's outputs.
//!
//! Files are streamed both ways: a worker passes the backend's `/view` download through chunk by
//! chunk (to a temp file renamed into place, or to the bucket: one PUT below
//! [`S3_PART_SIZE`], a multipart upload in parts of that size above it), and a download streams
//! from the folder or the bucket. No file is ever held in memory whole.
//!
//! The bucket's settings come from the standard AWS variables: `AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION` (or `AWS_DEFAULT_REGION`),
//! `AWS_ENDPOINT_URL` (or `AWS_ENDPOINT_URL_S3`) for servers other than AWS (an `http://` endpoint
//! is allowed, for local servers), and the web-identity and container-credential variables of
//! EKS and ECS. [`OutputStore::check`] writes a probe object at startup so a missing bucket,
//! refused credentials or an unreachable endpoint stop `serve` with a hint instead of failing jobs.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use futures::stream::BoxStream;
use futures::{Stream, StreamExt as _, TryStreamExt as _};
use object_store::aws::{AmazonS3, AmazonS3Builder, AmazonS3ConfigKey};
use object_store::buffered::BufWriter;
use object_store::path::Path as ObjectPath;
use object_store::{
    Attribute, Attributes, BackoffConfig, ClientOptions, ObjectStore, ObjectStoreExt as _, RetryConfig,
};
use tokio::io::AsyncWriteExt as _;
use uuid::Uuid;

/// Outputs up to this size go to the bucket in one PUT; larger ones as a multipart upload in
/// parts of this size (S3's smallest allowed part). At most [`S3_PARTS_IN_FLIGHT`] parts are
/// buffered per file.
pub const S3_PART_SIZE: usize = 5 * 1024 * 1024;

/// Parts of one file uploaded at once.
pub const S3_PARTS_IN_FLIGHT: usize = 2;

/// Where outputs are kept.
#[derive(Debug, Clone)]
pub enum OutputStore {
    /// A folder on this machine (the default).
    Local(LocalOutputs),
    /// An S3-compatible bucket shared by every instance.
    S3(S3Outputs),
}

/// Errors of the output store: at startup (configuration, the probe) and per file.
#[derive(Debug, thiserror::Error)]
pub enum OutputStoreError {
    #[error("`{spec}` is not an S3 location: expected `s3://BUCKET/PREFIX`")]
    InvalidUrl { spec: String },
    #[error("no credentials for `{url}`: {missing} is not set")]
    CredentialsMissing { url: String, missing: &'static str },
    #[error("the S3 settings for `{url}` are invalid")]
    Config {
        url: String,
        #[source]
        source: object_store::Error,
    },
    #[error("bucket `{bucket}` does not exist at {endpoint}")]
    BucketMissing {
        bucket: String,
        endpoint: String,
        #[source]
        source: object_store::Error,
    },
    #[error("the credentials were refused writing to `{url}`")]
    CredentialsRefused {
        url: String,
        #[source]
        source: object_store::Error,
    },
    #[error("cannot reach `{url}` at {endpoint}")]
    Unreachable {
        url: String,
        endpoint: String,
        #[source]
        source: object_store::Error,
    },
    #[error("writing the outputs folder `{}` failed", path.display())]
    LocalWrite {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("reading output `{location}` failed")]
    Read {
        location: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("writing output `{location}` failed")]
    Write {
        location: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl comfydock_foundation::Hinted for OutputStoreError {
    fn hint(&self) -> Option<String> {
        match self {
            OutputStoreError::InvalidUrl { .. } => Some(
                "pass `--outputs s3://BUCKET/PREFIX` for a bucket, or `--outputs DIR` for a folder"
                    .to_owned(),
            ),
            OutputStoreError::CredentialsMissing { .. } => Some(
                "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_REGION; AWS_ENDPOINT_URL for a \
                 server other than AWS S3, e.g. `http://127.0.0.1:9000`)"
                    .to_owned(),
            ),
            OutputStoreError::Config { .. } => {
                Some("check AWS_REGION, AWS_ENDPOINT_URL and the other AWS_* variables".to_owned())
            }
            OutputStoreError::BucketMissing { bucket, .. } => Some(format!(
                "create bucket `{bucket}` first, or name an existing one in `--outputs s3://BUCKET/PREFIX` \
                 (is AWS_ENDPOINT_URL the right server?)"
            )),
            OutputStoreError::CredentialsRefused { url, .. } => Some(format!(
                "check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY: they need to read and write objects \
                 under `{url}`"
            )),
            OutputStoreError::Unreachable { .. } => Some(
                "check AWS_ENDPOINT_URL (an `http://` endpoint is fine for a local server) and AWS_REGION, \
                 and that the server runs"
                    .to_owned(),
            ),
            OutputStoreError::LocalWrite { .. } => {
                Some("pick a folder serve may write with `--outputs DIR`".to_owned())
            }
            OutputStoreError::Read { .. } | OutputStoreError::Write { .. } => None,
        }
    }
}

/// Why saving an output failed: reading its source (the backend) or writing the store.
#[derive(Debug)]
pub enum SaveError<E> {
    Source(E),
    Store(OutputStoreError),
}

/// An output opened for download.
pub struct OutputFile {
    /// Its size, when the store knows it.
    pub size: Option<u64>,
    /// Its bytes, chunk by chunk.
    pub chunks: BoxStream<'static, std::io::Result<Bytes>>,
}

impl From<PathBuf> for OutputStore {
    fn from(dir: PathBuf) -> Self {
        OutputStore::Local(LocalOutputs { dir })
    }
}

impl OutputStore {
    /// `s3://BUCKET/PREFIX` (settings from this process's AWS variables), else a folder path.
    pub fn from_spec(spec: &str) -> Result<Self, OutputStoreError> {
        if spec.starts_with("s3://") {
            Ok(OutputStore::S3(S3Outputs::new(spec, std::env::vars())?))
        } else {
            Ok(PathBuf::from(spec).into())
        }
    }

    /// What `serve` reports: the folder or the `s3://` URL.
    pub fn location(&self) -> String {
        match self {
            OutputStore::Local(local) => local.dir.display().to_string(),
            OutputStore::S3(s3) => s3.url.clone(),
        }
    }

    /// Checks at startup that outputs can be written: creates the folder, or puts (and deletes)
    /// a probe object in the bucket, turning failures into errors that say what to fix.
    pub async fn check(&self) -> Result<(), OutputStoreError> {
        match self {
            OutputStore::Local(local) => local.check().await,
            OutputStore::S3(s3) => s3.check().await,
        }
    }

    /// Streams `chunks` into the output `name` of `job_id` (stored with `content_type` where the
    /// store keeps one); returns its size. A failure leaves nothing under the final name (temp
    /// file + rename; an aborted multipart upload).
    pub async fn save<S, E>(
        &self,
        job_id: Uuid,
        name: &str,
        content_type: &str,
        chunks: S,
    ) -> Result<u64, SaveError<E>>
    where
        S: Stream<Item = Result<Bytes, E>> + Send,
    {
        match self {
            OutputStore::Local(local) => local.save(job_id, name, chunks).await,
            OutputStore::S3(s3) => s3.save(job_id, name, content_type, chunks).await,
        }
    }

    /// Opens the output `name` of `job_id` for streaming; `None` when there is no such output.
    pub async fn open(&self, job_id: Uuid, name: &str) -> Result<Option<OutputFile>, OutputStoreError> {
        match self {
            OutputStore::Local(local) => local.open(job_id, name).await,
            OutputStore::S3(s3) => s3.open(job_id, name).await,
        }
    }
}

/// What a local writer receives: the file's bytes, then `End`. A channel that closes without
/// `End` (the download failed) removes the partial file.
enum Piece {
    Chunk(Bytes),
    End,
}

/// Writes `<dir>/<name>` from `pieces` through a temp file renamed into place; returns its size.
fn write_local(
    dir: &Path,
    name: &str,
    mut pieces: tokio::sync::mpsc::Receiver<Piece>,
) -> Result<u64, OutputStoreError> {
    use std::io::Write as _;
    let failed = |path: &Path, source| LocalOutputs::write_error(path, source);
    fs_err::create_dir_all(dir).map_err(|source| failed(dir, source))?;
    let temp = dir.join(format!(".{name}.{}.part", Uuid::new_v4()));
    let mut file = fs_err::File::create(&temp).map_err(|source| failed(&temp, source))?;
    let mut size = 0_u64;
    let complete = loop {
        match pieces.blocking_recv() {
            Some(Piece::Chunk(bytes)) => {
                if let Err(source) = file.write_all(&bytes) {
                    drop(file);
                    let _ = fs_err::remove_file(&temp);
                    return Err(failed(&temp, source));
                }
                size += u64::try_from(bytes.len()).unwrap_or(u64::MAX);
            }
            Some(Piece::End) => break true,
            None => break false,
        }
    };
    drop(file);
    if !complete {
        let _ = fs_err::remove_file(&temp);
        return Ok(size);
    }
    let target = dir.join(name);
    fs_err::rename(&temp, &target).map_err(|source| failed(&target, source))?;
    Ok(size)
}

/// Outputs in `<dir>/<job id>/<file>`.
#[derive(Debug, Clone)]
pub struct LocalOutputs {
    pub dir: PathBuf,
}

impl LocalOutputs {
    fn write_error(path: &Path, source: std::io::Error) -> OutputStoreError {
        OutputStoreError::LocalWrite {
            path: path.to_owned(),
            source,
        }
    }

    async fn check(&self) -> Result<(), OutputStoreError> {
        fs_err::tokio::create_dir_all(&self.dir)
            .await
            .map_err(|source| Self::write_error(&self.dir, source))?;
        let probe = self
            .dir
            .join(format!(".comfydock-check-{}", Uuid::new_v4().simple()));
        fs_err::tokio::write(&probe, b"ok")
            .await
            .map_err(|source| Self::write_error(&probe, source))?;
        let _ = fs_err::tokio::remove_file(&probe).await;
        Ok(())
    }

    /// The file is written by one blocking task fed chunk by chunk (instead of one trip to the
    /// blocking pool per folder, file, write and rename), so a small output costs one trip.
    async fn save<S, E>(&self, job_id: Uuid, name: &str, chunks: S) -> Result<u64, SaveError<E>>
    where
        S: Stream<Item = Result<Bytes, E>> + Send,
    {
        let dir = self.dir.join(job_id.to_string());
        let name = name.to_owned();
        let (sender, received) = tokio::sync::mpsc::channel(4);
        let writer = tokio::task::spawn_blocking(move || write_local(&dir, &name, received));
        let mut chunks = std::pin::pin!(chunks);
        let mut source_error = None;
        while let Some(chunk) = chunks.next().await {
            match chunk {
                // A closed channel means the writer failed: its error is reported below.
                Ok(bytes) => {
                    if sender.send(Piece::Chunk(bytes)).await.is_err() {
                        break;
                    }
                }
                Err(error) => {
                    source_error = Some(error);
                    break;
                }
            }
        }
        if source_error.is_none() {
            let _ = sender.send(Piece::End).await;
        }
        drop(sender);
        let written = writer.await.unwrap_or_else(|join| {
            Err(OutputStoreError::LocalWrite {
                path: self.dir.clone(),
                source: std::io::Error::other(join),
            })
        });
        match (source_error, written) {
            (Some(error), _) => Err(SaveError::Source(error)),
            (None, written) => written.map_err(SaveError::Store),
        }
    }

    async fn open(&self, job_id: Uuid, name: &str) -> Result<Option<OutputFile>, OutputStoreError> {
        let path = self.dir.join(job_id.to_string()).join(name);
        let file = match fs_err::tokio::File::open(&path).await {
            Ok(file) => file,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(OutputStoreError::Read {
                    location: path.display().to_string(),
                    source: Box::new(source),
                });
            }
        };
        let size = file.metadata().await.ok().map(|meta| meta.len());
        Ok(Some(OutputFile {
            size,
            chunks: file_chunks(file).boxed(),
        }))
    }
}

/// A file as a stream of 64 KiB chunks.
fn file_chunks(file: fs_err::tokio::File) -> impl Stream<Item = std::io::Result<Bytes>> + Send + 'static {
    futures::stream::try_unfold(file, |mut file| async move {
        use tokio::io::AsyncReadExt as _;
        let mut buffer = vec![0_u8; 64 * 1024];
        let read = file.read(&mut buffer).await?;
        if read == 0 {
            return Ok(None);
        }
        buffer.truncate(read);
        Ok(Some((Bytes::from(buffer), file)))
    })
}

/// Outputs in an S3-compatible bucket: `PREFIX/<job id>/<file>`.
#[derive(Debug, Clone)]
pub struct S3Outputs {
    /// `s3://BUCKET/PREFIX` as given.
    url: String,
    bucket: String,
    prefix: Vec<String>,
    endpoint: String,
    store: Arc<AmazonS3>,
    /// The same bucket with few, quick retries: the startup check fails fast.
    probe: Arc<AmazonS3>,
}

/// The credential variables one of which must be set (besides the secret that goes with a key id).
const CREDENTIAL_VARS: [&str; 4] = [
    "AWS_ACCESS_KEY_ID",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
];

impl S3Outputs {
    /// The bucket of `url` (`s3://BUCKET/PREFIX`) with the settings of the `AWS_*` variables in
    /// `vars`.
    pub fn new(
        url: &str,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, OutputStoreError> {
        let invalid = || OutputStoreError::InvalidUrl { spec: url.to_owned() };
        let rest = url.strip_prefix("s3://").ok_or_else(invalid)?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() || bucket.contains(['?', '#', '\\']) {
            return Err(invalid());
        }
        let prefix: Vec<String> = prefix
            .split('/')
            .filter(|part| !part.is_empty())
            .map(str::to_owned)
            .collect();
        if prefix.iter().any(|part| part == "." || part == "..") {
            return Err(invalid());
        }
        let vars: HashMap<String, String> = vars
            .into_iter()
            .filter(|(key, value)| key.starts_with("AWS_") && !value.is_empty())
            .collect();
        if !CREDENTIAL_VARS.iter().any(|var| vars.contains_key(*var)) {
            return Err(OutputStoreError::CredentialsMissing {
                url: url.to_owned(),
                missing: "AWS_ACCESS_KEY_ID",
            });
        }
        if vars.contains_key("AWS_ACCESS_KEY_ID") && !vars.contains_key("AWS_SECRET_ACCESS_KEY") {
            return Err(OutputStoreError::CredentialsMissing {
                url: url.to_owned(),
                missing: "AWS_SECRET_ACCESS_KEY",
            });
        }
        let mut builder = AmazonS3Builder::new();
        for (key, value) in &vars {
            if let Ok(config) = key.to_ascii_lowercase().parse::<AmazonS3ConfigKey>() {
                builder = builder.with_config(config, value.clone());
            }
        }
        // AWS_REGION wins over AWS_DEFAULT_REGION, as in the AWS tools.
        if let Some(region) = vars.get("AWS_REGION") {
            builder = builder.with_region(region.clone());
        }
        let endpoint = vars
            .get("AWS_ENDPOINT_URL_S3")
            .or_else(|| vars.get("AWS_ENDPOINT_URL"))
            .cloned();
        if let Some(endpoint) = &endpoint {
            builder = builder.with_endpoint(endpoint.clone());
        }
        // A local server (MinIO, moto, ...) answers on plain http.
        let allow_http = endpoint.as_deref().is_some_and(|e| e.starts_with("http://"))
            || vars
                .get("AWS_ALLOW_HTTP")
                .is_some_and(|v| v.eq_ignore_ascii_case("true"));
        let builder = builder.with_bucket_name(bucket);
        let config_error = |source| OutputStoreError::Config {
            url: url.to_owned(),
            source,
        };
        let store = builder
            .clone()
            .with_client_options(
                ClientOptions::new()
                    .with_allow_http(allow_http)
                    .with_connect_timeout(Duration::from_secs(10))
                    .with_timeout(Duration::from_mins(5)),
            )
            .build()
            .map_err(config_error)?;
        let probe = builder
            .with_client_options(
                ClientOptions::new()
                    .with_allow_http(allow_http)
                    .with_connect_timeout(Duration::from_secs(5))
                    .with_timeout(Duration::from_secs(20)),
            )
            .with_retry(RetryConfig {
                backoff: BackoffConfig::default(),
                max_retries: 2,
                retry_timeout: Duration::from_secs(20),
            })
            .build()
            .map_err(config_error)?;
        let region = vars
            .get("AWS_REGION")
            .or_else(|| vars.get("AWS_DEFAULT_REGION"))
            .map_or("us-east-1", String::as_str);
        Ok(Self {
            url: url.to_owned(),
            bucket: bucket.to_owned(),
            prefix,
            endpoint: endpoint.unwrap_or_else(|| format!("AWS S3 ({region})")),
            store: Arc::new(store),
            probe: Arc::new(probe),
        })
    }

    /// The object key of a job's output.
    fn key(&self, job_id: Uuid, name: &str) -> ObjectPath {
        let job = job_id.to_string();
        self.prefix
            .iter()
            .map(String::as_str)
            .chain([job.as_str(), name])
            .collect()
    }

    fn classify(&self, source: object_store::Error) -> OutputStoreError {
        match source {
            object_store::Error::NotFound { .. } => OutputStoreError::BucketMissing {
                bucket: self.bucket.clone(),
                endpoint: self.endpoint.clone(),
                source,
            },
            object_store::Error::PermissionDenied { .. } | object_store::Error::Unauthenticated { .. } => {
                OutputStoreError::CredentialsRefused {
                    url: self.url.clone(),
                    source,
                }
            }
            _ => OutputStoreError::Unreachable {
                url: self.url.clone(),
                endpoint: self.endpoint.clone(),
                source,
            },
        }
    }

    async fn check(&self) -> Result<(), OutputStoreError> {
        let probe: ObjectPath = self
            .prefix
            .iter()
            .map(String::as_str)
            .chain([".comfydock-check", &Uuid::new_v4().simple().to_string()])
            .collect();
        self.probe
            .put(&probe, Bytes::from_static(b"ok").into())
            .await
            .map_err(|source| self.classify(source))?;
        if let Err(error) = self.probe.delete(&probe).await {
            tracing::warn!(%error, key = %probe, "deleting the startup probe object failed");
        }
        Ok(())
    }

    async fn save<S, E>(
        &self,
        job_id: Uuid,
        name: &str,
        content_type: &str,
        chunks: S,
    ) -> Result<u64, SaveError<E>>
    where
        S: Stream<Item = Result<Bytes, E>> + Send,
    {
        let key = self.key(job_id, name);
        let failed = |source: Box<dyn std::error::Error + Send + Sync>| {
            SaveError::Store(OutputStoreError::Write {
                location: format!("s3://{}/{key}", self.bucket),
                source,
            })
        };
        let mut attributes = Attributes::new();
        attributes.insert(Attribute::ContentType, content_type.to_owned().into());
        let store: Arc<dyn ObjectStore> = Arc::clone(&self.store) as Arc<dyn ObjectStore>;
        let mut writer = BufWriter::with_capacity(store, key.clone(), S3_PART_SIZE)
            .with_max_concurrency(S3_PARTS_IN_FLIGHT)
            .with_attributes(attributes);
        let mut size = 0_u64;
        let copied: Result<(), SaveError<E>> = async {
            let mut chunks = std::pin::pin!(chunks);
            while let Some(chunk) = chunks.next().await {
                let chunk = chunk.map_err(SaveError::Source)?;
                size += u64::try_from(chunk.len()).unwrap_or(u64::MAX);
                writer.put(chunk).await.map_err(|e| failed(Box::new(e)))?;
            }
            writer.shutdown().await.map_err(|e| failed(Box::new(e)))
        }
        .await;
        if let Err(error) = copied {
            // Nothing was completed: drop the parts uploaded so far.
            if let Err(abort) = writer.abort().await {
                tracing::warn!(error = %abort, key = %key, "aborting a multipart upload failed");
            }
            return Err(error);
        }
        Ok(size)
    }

    async fn open(&self, job_id: Uuid, name: &str) -> Result<Option<OutputFile>, OutputStoreError> {
        let key = self.key(job_id, name);
        match self.store.get(&key).await {
            Ok(result) => Ok(Some(OutputFile {
                size: Some(result.meta.size),
                chunks: result.into_stream().map_err(std::io::Error::from).boxed(),
            })),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(source) => Err(OutputStoreError::Read {
                location: format!("s3://{}/{key}", self.bucket),
                source: Box::new(source),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    const KEYS: [(&str, &str); 2] = [("AWS_ACCESS_KEY_ID", "id"), ("AWS_SECRET_ACCESS_KEY", "secret")];

    #[test]
    fn s3_urls_name_a_bucket_and_a_prefix() {
        let s3 = S3Outputs::new("s3://outputs/serve/prod/", vars(&KEYS)).unwrap();
        assert_eq!(s3.bucket, "outputs");
        let id = Uuid::nil();
        assert_eq!(
            s3.key(id, "a b.png").to_string(),
            format!("serve/prod/{id}/a b.png")
        );
        let bare = S3Outputs::new("s3://outputs", vars(&KEYS)).unwrap();
        assert_eq!(bare.key(id, "x.png").to_string(), format!("{id}/x.png"));
        for bad in ["s3://", "s3:///prefix", "s3://b/../x"] {
            assert!(
                matches!(
                    S3Outputs::new(bad, vars(&KEYS)),
                    Err(OutputStoreError::InvalidUrl { .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn missing_credentials_are_named_with_the_variables_to_set() {
        let error = S3Outputs::new("s3://b/p", vars(&[("AWS_REGION", "eu-west-1")])).unwrap_err();
        assert!(
            matches!(
                error,
                OutputStoreError::CredentialsMissing {
                    missing: "AWS_ACCESS_KEY_ID",
                    ..
                }
            ),
            "{error}"
        );
        let hint = comfydock_foundation::Hinted::hint(&error).unwrap();
        assert!(
            hint.contains("AWS_SECRET_ACCESS_KEY") && hint.contains("AWS_ENDPOINT_URL"),
            "{hint}"
        );
        let error = S3Outputs::new("s3://b/p", vars(&[("AWS_ACCESS_KEY_ID", "id")])).unwrap_err();
        assert!(
            matches!(
                error,
                OutputStoreError::CredentialsMissing {
                    missing: "AWS_SECRET_ACCESS_KEY",
                    ..
                }
            ),
            "{error}"
        );
    }

    #[test]
    fn folders_stay_the_default() {
        let store = OutputStore::from_spec("/srv/outputs").unwrap();
        assert!(matches!(store, OutputStore::Local(ref local) if local.dir == Path::new("/srv/outputs")));
    }

    #[tokio::test]
    async fn an_unreachable_endpoint_fails_the_startup_check_naming_it() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let endpoint = format!("http://127.0.0.1:{port}");
        let mut settings = vars(&KEYS);
        settings.push(("AWS_ENDPOINT_URL".into(), endpoint.clone()));
        let store = OutputStore::S3(S3Outputs::new("s3://b/p", settings).unwrap());
        let error = store.check().await.unwrap_err();
        assert!(
            matches!(error, OutputStoreError::Unreachable { endpoint: ref e, .. } if *e == endpoint),
            "{error}"
        );
        assert!(error.to_string().contains(&endpoint), "{error}");
    }

    #[tokio::test]
    async fn a_local_folder_streams_in_and_out() {
        let dir = tempfile::tempdir().unwrap();
        let store = OutputStore::from(dir.path().join("outputs"));
        store.check().await.unwrap();
        let id = Uuid::new_v4();
        let chunks = futures::stream::iter([
            Ok::<_, std::io::Error>(Bytes::from_static(b"ab")),
            Ok(Bytes::from_static(b"cd")),
        ]);
        assert!(matches!(
            store.save(id, "x.png", "image/png", chunks).await,
            Ok(4)
        ));
        let file = store.open(id, "x.png").await.unwrap().unwrap();
        assert_eq!(file.size, Some(4));
        let bytes: Vec<Bytes> = file.chunks.try_collect().await.unwrap();
        assert_eq!(bytes.concat(), b"abcd");
        assert!(store.open(id, "missing.png").await.unwrap().is_none());
        let failing = futures::stream::iter([
            Ok(Bytes::from_static(b"ab")),
            Err(std::io::Error::other("backend went away")),
        ]);
        assert!(matches!(
            store.save(id, "y.png", "image/png", failing).await,
            Err(SaveError::Source(_))
        ));
        let left: Vec<_> = fs_err::read_dir(dir.path().join("outputs").join(id.to_string()))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, ["x.png"], "a failed save leaves nothing");
    }
}

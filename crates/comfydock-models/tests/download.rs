//! Downloads against a local file server standing in for Hugging Face, Civitai and CDNs.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use comfydock_foundation::reporter::NoReporter;
use comfydock_models::download::{
    DownloadError, DownloadReporter, DownloadRequest, Downloader, ExpectedHash, RetryPolicy,
};
use comfydock_models::endpoints::{Endpoints, Tokens};
use comfydock_models::index::{ModelIndex, SourceKind};
use comfydock_models::roots::ModelRoot;
use comfydock_models::scan::ScanOptions;
use comfydock_test::file_server::FileServer;
use sha2::Digest as _;
use url::Url;

fn payload(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| u8::try_from((i * 7 + usize::from(seed)) % 251).unwrap())
        .collect()
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(bytes))
}

struct Setup {
    _dir: tempfile::TempDir,
    root: ModelRoot,
    db: PathBuf,
    server: FileServer,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let root = ModelRoot::standard(dir.path().join("models"));
    fs_err::create_dir_all(&root.path).unwrap();
    let db = dir.path().join(".metadata/model_index.db");
    Setup {
        _dir: dir,
        root,
        db,
        server: FileServer::start(),
    }
}

fn fast_retry(attempts: u32) -> RetryPolicy {
    RetryPolicy {
        attempts,
        initial_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
    }
}

fn downloader(server: &FileServer, tokens: Tokens, attempts: u32) -> Downloader {
    let endpoints = Endpoints {
        huggingface: Url::parse(&server.url()).unwrap(),
        civitai: Url::parse(&server.url()).unwrap(),
    };
    Downloader::new(endpoints, tokens)
        .unwrap()
        .with_retry(fast_retry(attempts))
}

fn request(url: String, to: &str) -> DownloadRequest {
    DownloadRequest {
        url,
        to: Some(to.to_owned()),
        expected: None,
    }
}

/// (id, name, total, resumed_from) of a started transfer.
type Start = (usize, String, Option<u64>, u64);

#[derive(Default)]
struct Recorder {
    starts: Mutex<Vec<Start>>,
    retries: Mutex<Vec<(usize, String)>>,
    finished: Mutex<Vec<(usize, bool)>>,
}

impl DownloadReporter for Recorder {
    fn started(&self, id: usize, name: &str, total: Option<u64>, resumed_from: u64) {
        self.starts
            .lock()
            .unwrap()
            .push((id, name.to_owned(), total, resumed_from));
    }
    fn retrying(&self, id: usize, _attempt: u32, message: &str) {
        self.retries.lock().unwrap().push((id, message.to_owned()));
    }
    fn finished(&self, id: usize, ok: bool) {
        self.finished.lock().unwrap().push((id, ok));
    }
}

#[tokio::test]
async fn downloads_verifies_and_indexes_with_source() {
    let s = setup();
    let bytes = payload(300_000, 1);
    s.server.add("/files/detail.safetensors", bytes.clone());
    let mut req = request(
        s.server.url_for("/files/detail.safetensors"),
        "loras/detail.safetensors",
    );
    req.expected = Some(ExpectedHash::Sha256(sha256(&bytes).to_uppercase()));

    let done = downloader(&s.server, Tokens::default(), 1)
        .download(&s.root, &req, 0, &NoReporter)
        .await
        .unwrap();
    let final_path = s.root.path.join("loras/detail.safetensors");
    assert_eq!(done.path, final_path);
    assert_eq!(fs_err::read(&final_path).unwrap(), bytes);
    assert!(!s.root.path.join("loras/detail.safetensors.part").exists());
    assert_eq!(done.sha256.as_deref(), Some(sha256(&bytes).as_str()));
    assert_eq!(done.blake3, blake3::hash(&bytes).to_hex().to_string());
    assert_eq!(done.relative_path, "loras/detail.safetensors");
    assert_eq!(done.folder.as_deref(), Some("loras"));

    let mut index = ModelIndex::open(&s.db).unwrap();
    let id = index.record_download(&done).unwrap();
    let model = index.model(id).unwrap().unwrap();
    assert_eq!(model.sources.len(), 1);
    assert_eq!(
        model.sources[0].url,
        s.server.url_for("/files/detail.safetensors")
    );
    assert_eq!(
        model.sources[0].kind,
        SourceKind::Huggingface,
        "the HF endpoint is this server"
    );
    assert_eq!(model.locations[0].path(), final_path);
    // A scan afterwards sees the downloaded file as unchanged.
    let summary = index
        .scan(std::slice::from_ref(&s.root), ScanOptions::default(), &NoReporter)
        .unwrap();
    assert_eq!(summary.bytes_read, 0, "{summary:?}");
}

#[tokio::test]
async fn cut_download_resumes_on_rerun_from_the_part_offset() {
    let s = setup();
    let bytes = payload(400_000, 2);
    s.server.add("/files/big.safetensors", bytes.clone());
    s.server.drop_after("/files/big.safetensors", 150_000, 1);
    let mut req = request(
        s.server.url_for("/files/big.safetensors"),
        "checkpoints/big.safetensors",
    );
    req.expected = Some(ExpectedHash::Blake3(blake3::hash(&bytes).to_hex().to_string()));

    // First run: one attempt only, the connection drops mid-body.
    let err = downloader(&s.server, Tokens::default(), 1)
        .download(&s.root, &req, 0, &NoReporter)
        .await
        .unwrap_err();
    assert!(
        matches!(err, DownloadError::Fetch(_) | DownloadError::Truncated { .. }),
        "{err:?}"
    );
    let part = s.root.path.join("checkpoints/big.safetensors.part");
    let kept = fs_err::metadata(&part).unwrap().len();
    assert!(kept > 0 && kept <= 150_000, "{kept}");
    assert!(!s.root.path.join("checkpoints/big.safetensors").exists());

    // Second run resumes with a Range request from the .part length and verifies.
    let recorder = Recorder::default();
    let done = downloader(&s.server, Tokens::default(), 1)
        .download(&s.root, &req, 0, &recorder)
        .await
        .unwrap();
    assert_eq!(
        s.server.ranges_for("/files/big.safetensors"),
        [format!("bytes={kept}-")]
    );
    assert_eq!(done.resumed_from, kept);
    assert_eq!(fs_err::read(&done.path).unwrap(), bytes);
    assert!(!part.exists());
    assert_eq!(
        recorder.starts.lock().unwrap()[0],
        (0, "big.safetensors".to_owned(), Some(400_000), kept)
    );
}

#[tokio::test]
async fn resume_works_when_the_name_comes_from_content_disposition() {
    let s = setup();
    let bytes = payload(300_000, 3);
    s.server.add("/api/file/42", bytes.clone());
    s.server
        .content_disposition("/api/file/42", "named-by-server.safetensors");
    s.server.drop_after("/api/file/42", 100_000, 1);
    let req = request(s.server.url_for("/api/file/42"), "vae/");

    let dl = downloader(&s.server, Tokens::default(), 1);
    assert!(dl.download(&s.root, &req, 0, &NoReporter).await.is_err());
    let part = s.root.path.join("vae/named-by-server.safetensors.part");
    let kept = fs_err::metadata(&part).unwrap().len();
    assert!(kept > 0);

    let done = dl.download(&s.root, &req, 0, &NoReporter).await.unwrap();
    assert_eq!(done.path, s.root.path.join("vae/named-by-server.safetensors"));
    assert_eq!(fs_err::read(&done.path).unwrap(), bytes);
    assert_eq!(s.server.ranges_for("/api/file/42"), [format!("bytes={kept}-")]);
}

#[tokio::test]
async fn drops_and_server_errors_are_retried_within_one_run() {
    let s = setup();
    let bytes = payload(250_000, 4);
    s.server.add("/files/flaky.safetensors", bytes.clone());
    s.server.fail_with("/files/flaky.safetensors", 503, 2);
    let recorder = Recorder::default();
    let done = downloader(&s.server, Tokens::default(), 3)
        .download(
            &s.root,
            &request(
                s.server.url_for("/files/flaky.safetensors"),
                "loras/flaky.safetensors",
            ),
            7,
            &recorder,
        )
        .await
        .unwrap();
    assert_eq!(fs_err::read(&done.path).unwrap(), bytes);
    assert_eq!(recorder.retries.lock().unwrap().len(), 2);
    assert_eq!(*recorder.finished.lock().unwrap(), [(7, true)]);

    s.server.add("/files/cut.safetensors", bytes.clone());
    s.server.drop_after("/files/cut.safetensors", 80_000, 1);
    let done = downloader(&s.server, Tokens::default(), 3)
        .download(
            &s.root,
            &request(
                s.server.url_for("/files/cut.safetensors"),
                "loras/cut.safetensors",
            ),
            0,
            &NoReporter,
        )
        .await
        .unwrap();
    assert_eq!(fs_err::read(&done.path).unwrap(), bytes);
    assert_eq!(s.server.ranges_for("/files/cut.safetensors").len(), 1);

    // A 404 is not retried.
    let err = downloader(&s.server, Tokens::default(), 3)
        .download(
            &s.root,
            &request(
                s.server.url_for("/files/missing.safetensors"),
                "loras/m.safetensors",
            ),
            0,
            &NoReporter,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, DownloadError::Status { status: 404, .. }),
        "{err:?}"
    );
    assert_eq!(s.server.hits("/files/missing.safetensors"), 1);
}

#[tokio::test]
async fn wrong_bytes_leave_nothing_and_are_not_indexed() {
    let s = setup();
    let bytes = payload(100_000, 5);
    s.server.add("/files/model.safetensors", bytes.clone());
    s.server
        .wrong_bytes("/files/model.safetensors", payload(100_000, 6));
    let mut req = request(
        s.server.url_for("/files/model.safetensors"),
        "checkpoints/model.safetensors",
    );
    req.expected = Some(ExpectedHash::Sha256(sha256(&bytes)));
    let err = downloader(&s.server, Tokens::default(), 3)
        .download(&s.root, &req, 0, &NoReporter)
        .await
        .unwrap_err();
    assert!(matches!(err, DownloadError::HashMismatch { .. }), "{err:?}");
    assert!(err.to_string().contains(&sha256(&bytes)));
    assert!(!s.root.path.join("checkpoints/model.safetensors").exists());
    assert!(!s.root.path.join("checkpoints/model.safetensors.part").exists());
    assert_eq!(
        s.server.hits("/files/model.safetensors"),
        1,
        "a mismatch is not retried"
    );
    let index = ModelIndex::open(&s.db).unwrap();
    assert!(index.list().unwrap().is_empty());
}

#[tokio::test]
async fn civitai_page_resolves_through_the_api_and_tokens_never_cross_hosts() {
    let s = setup();
    let bytes = payload(120_000, 7);
    let version = serde_json::json!({
        "id": 130_072, "modelId": 4201,
        "model": {"name": "Realistic", "type": "Checkpoint"},
        "downloadUrl": s.server.url_for("/api/download/models/130072"),
        "files": [{
            "name": "realistic_v6.safetensors", "primary": true,
            "downloadUrl": s.server.url_for("/api/download/models/130072"),
            "hashes": {"SHA256": sha256(&bytes).to_uppercase()}
        }]
    });
    s.server.add("/api/v1/model-versions/130072", version.to_string());
    // The download link redirects to a CDN on another host name (same port).
    s.server.redirect(
        "/api/download/models/130072",
        307,
        &s.server.localhost_url_for("/cdn/abc/realistic.bin"),
    );
    s.server.add("/cdn/abc/realistic.bin", bytes.clone());

    let tokens = Tokens {
        huggingface: Some("hf_SECRET".into()),
        civitai: Some("cv_SECRET".into()),
    };
    let page = s.server.url_for("/models/4201/realistic?modelVersionId=130072");
    let done = downloader(&s.server, tokens.clone(), 1)
        .download(
            &s.root,
            &DownloadRequest {
                url: page,
                to: None,
                expected: None,
            },
            0,
            &NoReporter,
        )
        .await
        .unwrap();
    assert_eq!(
        done.path,
        s.root.path.join("checkpoints/realistic_v6.safetensors")
    );
    assert_eq!(done.source_kind, SourceKind::Civitai);
    assert_eq!(done.source_url, s.server.url_for("/api/download/models/130072"));
    assert_eq!(fs_err::read(&done.path).unwrap(), bytes);

    // The token went to the API host, never to the redirect target.
    let api = &s.server.requests_for("/api/v1/model-versions/130072")[0];
    assert!(api.has_header("authorization"));
    assert_eq!(s.server.hits("/cdn/abc/realistic.bin"), 1);
    assert!(
        !s.server.authorization_seen_on_host("localhost"),
        "{:?}",
        s.server.authorized_requests()
    );

    // Hugging Face: a blob link on huggingface.co is fetched from the endpoint as /resolve/,
    // with the HF token, and the cross-host redirect gets none.
    s.server.redirect(
        "/org/repo/resolve/main/unet.safetensors",
        302,
        &s.server.localhost_url_for("/cdn/lfs/unet"),
    );
    let unet = payload(50_000, 8);
    s.server.add("/cdn/lfs/unet", unet.clone());
    let done = downloader(&s.server, tokens, 1)
        .download(
            &s.root,
            &request(
                "https://huggingface.co/org/repo/blob/main/unet.safetensors".into(),
                "unet/",
            ),
            0,
            &NoReporter,
        )
        .await
        .unwrap();
    assert_eq!(done.path, s.root.path.join("unet/unet.safetensors"));
    assert_eq!(done.folder.as_deref(), Some("diffusion_models"));
    assert_eq!(fs_err::read(&done.path).unwrap(), unet);
    let hf = &s.server.requests_for("/org/repo/resolve/main/unet.safetensors")[0];
    assert_eq!(hf.header("authorization"), Some("Bearer hf_SECRET"));
    assert!(!s.server.authorization_seen_on_host("localhost"));
}

#[tokio::test]
async fn civitai_model_url_takes_the_latest_version() {
    let s = setup();
    let bytes = payload(10_000, 9);
    let model = serde_json::json!({
        "id": 5, "name": "Detailer", "type": "LORA",
        "modelVersions": [
            {"id": 20, "files": [{"name": "new.safetensors", "downloadUrl": s.server.url_for("/dl/20"),
                                   "hashes": {"SHA256": sha256(&bytes)}}]},
            {"id": 10, "files": [{"name": "old.safetensors", "downloadUrl": s.server.url_for("/dl/10")}]}
        ]
    });
    s.server.add("/api/v1/models/5", model.to_string());
    s.server.add("/dl/20", bytes.clone());
    let done = downloader(&s.server, Tokens::default(), 1)
        .download(
            &s.root,
            &DownloadRequest {
                url: s.server.url_for("/models/5"),
                to: None,
                expected: None,
            },
            0,
            &NoReporter,
        )
        .await
        .unwrap();
    assert_eq!(done.path, s.root.path.join("loras/new.safetensors"));
    assert_eq!(s.server.hits("/dl/10"), 0);
}

#[tokio::test]
async fn unsafe_destinations_are_rejected_before_any_request() {
    let s = setup();
    s.server.add("/files/x.safetensors", payload(10, 1));
    for to in [
        "../x.safetensors",
        "loras/../../x.safetensors",
        "/etc/x.safetensors",
    ] {
        let err = downloader(&s.server, Tokens::default(), 1)
            .download(
                &s.root,
                &request(s.server.url_for("/files/x.safetensors"), to),
                0,
                &NoReporter,
            )
            .await
            .unwrap_err();
        assert!(
            matches!(err, DownloadError::UnsafeDestination(_)),
            "{to}: {err:?}"
        );
    }
    assert_eq!(s.server.hits("/files/x.safetensors"), 0);
    assert!(fs_err::read_dir(&s.root.path).unwrap().next().is_none());

    // No folder and nothing to infer one from.
    let err = downloader(&s.server, Tokens::default(), 1)
        .download(
            &s.root,
            &DownloadRequest {
                url: s.server.url_for("/files/x.safetensors"),
                to: None,
                expected: None,
            },
            0,
            &NoReporter,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, DownloadError::MissingFolder { .. }), "{err:?}");
}

#[tokio::test]
async fn several_downloads_at_once_and_existing_files() {
    let s = setup();
    let files: Vec<Vec<u8>> = (0..4)
        .map(|i| payload(60_000 + i * 1000, u8::try_from(i).unwrap()))
        .collect();
    for (i, bytes) in files.iter().enumerate() {
        s.server.add(&format!("/m/{i}.safetensors"), bytes.clone());
    }
    let requests: Vec<DownloadRequest> = (0..4)
        .map(|i| request(s.server.url_for(&format!("/m/{i}.safetensors")), "embeddings/"))
        .collect();
    let recorder = Recorder::default();
    let results = downloader(&s.server, Tokens::default(), 1)
        .with_concurrency(3)
        .download_all(&s.root, &requests, &recorder)
        .await;
    for (i, result) in results.iter().enumerate() {
        let done = result.as_ref().unwrap();
        assert_eq!(done.path, s.root.path.join(format!("embeddings/{i}.safetensors")));
        assert_eq!(fs_err::read(&done.path).unwrap(), files[i]);
    }
    let mut finished = recorder.finished.lock().unwrap().clone();
    finished.sort_unstable();
    assert_eq!(finished, [(0, true), (1, true), (2, true), (3, true)]);

    // Again without a hash: the file exists, refuse to overwrite.
    let err = downloader(&s.server, Tokens::default(), 1)
        .download(&s.root, &requests[0], 0, &NoReporter)
        .await
        .unwrap_err();
    assert!(matches!(err, DownloadError::DestinationExists { .. }), "{err:?}");
    // With the matching hash: accepted without fetching.
    let hits = s.server.hits("/m/0.safetensors");
    let mut with_hash = requests[0].clone();
    with_hash.to = Some("embeddings/0.safetensors".into());
    with_hash.expected = Some(ExpectedHash::Sha256(sha256(&files[0])));
    let done = downloader(&s.server, Tokens::default(), 1)
        .download(&s.root, &with_hash, 0, &NoReporter)
        .await
        .unwrap();
    assert!(done.already_present);
    assert_eq!(s.server.hits("/m/0.safetensors"), hits);
}

#[tokio::test]
async fn sources_found_on_civitai_by_sha256_are_recorded() {
    let s = setup();
    let known = b"known model bytes".to_vec();
    let unknown = b"private model".to_vec();
    fs_err::create_dir_all(s.root.path.join("loras")).unwrap();
    fs_err::write(s.root.path.join("loras/known.safetensors"), &known).unwrap();
    fs_err::write(s.root.path.join("loras/private.safetensors"), &unknown).unwrap();
    let mut index = ModelIndex::open(&s.db).unwrap();
    index
        .scan(std::slice::from_ref(&s.root), ScanOptions::default(), &NoReporter)
        .unwrap();
    s.server.add(
        &format!("/api/v1/model-versions/by-hash/{}", sha256(&known)),
        serde_json::json!({
            "id": 77, "modelId": 7, "model": {"name": "Known", "type": "LORA"},
            "files": [{"name": "known.safetensors", "downloadUrl": "https://civitai.example/api/download/models/77",
                       "hashes": {"SHA256": sha256(&known).to_uppercase()}}]
        })
        .to_string(),
    );

    let dl = downloader(&s.server, Tokens::default(), 1);
    let models = index.list().unwrap();
    let search = index.find_sources(&dl, &models).await.unwrap();
    assert_eq!(search.found.len(), 1, "{search:?}");
    assert!(search.found[0].added);
    assert_eq!(search.found[0].file.version_id, 77);
    assert_eq!(search.not_found, [blake3::hash(&unknown).to_hex().to_string()]);
    assert!(search.errors.is_empty());
    let blake = blake3::hash(&known).to_hex().to_string();
    let id = index.model_id_by_blake3(&blake).unwrap().unwrap();
    let model = index.model(id).unwrap().unwrap();
    assert_eq!(
        model.sources[0].url,
        "https://civitai.example/api/download/models/77"
    );
    assert_eq!(model.sources[0].kind, SourceKind::Civitai);
    assert_eq!(model.sha256.as_deref(), Some(sha256(&known).as_str()));

    // Running it again finds the same source and does not add it twice.
    let again = index.find_sources(&dl, &index.list().unwrap()).await.unwrap();
    assert!(!again.found[0].added);
}

#[tokio::test]
async fn server_ignoring_range_restarts_the_part_from_zero() {
    use comfydock_test::http::{HttpServer, Response};
    let s = setup();
    let bytes = payload(90_000, 11);
    let served = bytes.clone();
    let plain = HttpServer::start(move |_| Response::ok(served.clone()));
    // A stale .part from an earlier run, with bytes that do not belong to the file.
    fs_err::create_dir_all(s.root.path.join("loras")).unwrap();
    let part = s.root.path.join("loras/plain.safetensors.part");
    fs_err::write(&part, payload(5_000, 99)).unwrap();
    let mut req = request(
        format!("{}/plain.safetensors", plain.url()),
        "loras/plain.safetensors",
    );
    req.expected = Some(ExpectedHash::Sha256(sha256(&bytes)));
    let done = downloader(&s.server, Tokens::default(), 1)
        .download(&s.root, &req, 0, &NoReporter)
        .await
        .unwrap();
    assert_eq!(plain.log().all()[0].header("range"), Some("bytes=5000-"));
    assert_eq!(done.resumed_from, 0, "a 200 answer restarts the file");
    assert_eq!(fs_err::read(&done.path).unwrap(), bytes);
    assert!(!part.exists());
}

#[tokio::test]
async fn rejected_range_starts_over_and_a_dead_server_is_reported() {
    let s = setup();
    let bytes = payload(20_000, 12);
    s.server.add("/files/r.safetensors", bytes.clone());
    fs_err::create_dir_all(s.root.path.join("vae")).unwrap();
    // A .part as long as the whole file: the server answers 416 to `bytes=20000-`.
    fs_err::write(s.root.path.join("vae/r.safetensors.part"), payload(20_000, 13)).unwrap();
    let done = downloader(&s.server, Tokens::default(), 2)
        .download(
            &s.root,
            &request(s.server.url_for("/files/r.safetensors"), "vae/r.safetensors"),
            0,
            &NoReporter,
        )
        .await
        .unwrap();
    assert_eq!(fs_err::read(&done.path).unwrap(), bytes);
    assert_eq!(s.server.ranges_for("/files/r.safetensors"), ["bytes=20000-"]);

    let mut gone = FileServer::start();
    let url = gone.url_for("/files/x.safetensors");
    gone.stop();
    let recorder = Recorder::default();
    let err = downloader(&s.server, Tokens::default(), 3)
        .download(&s.root, &request(url, "vae/x.safetensors"), 0, &recorder)
        .await
        .unwrap_err();
    assert!(matches!(err, DownloadError::Fetch(_)), "{err:?}");
    assert_eq!(recorder.retries.lock().unwrap().len(), 2);
    assert_eq!(*recorder.finished.lock().unwrap(), [(0, false)]);
}

#[tokio::test]
async fn not_enough_disk_space_fails_before_writing() {
    use std::io::{Read as _, Write as _};
    // A raw server announcing a file far larger than any disk.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut request = [0_u8; 4096];
        let _ = stream.read(&mut request).unwrap();
        stream
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 999999999999999999\r\nConnection: close\r\n\r\n")
            .unwrap();
    });
    let s = setup();
    let err = downloader(&s.server, Tokens::default(), 1)
        .download(
            &s.root,
            &request(format!("http://{address}/huge.safetensors"), "checkpoints/"),
            0,
            &NoReporter,
        )
        .await
        .unwrap_err();
    server.join().unwrap();
    assert!(matches!(err, DownloadError::InsufficientSpace { .. }), "{err:?}");
    assert!(!s.root.path.join("checkpoints/huge.safetensors.part").exists());
    assert!(!s.root.path.join("checkpoints/huge.safetensors").exists());
}

/// The CLI and the server spawn these futures on a multi-threaded runtime.
#[test]
fn download_futures_are_send() {
    fn assert_send<T: Send>(_: &T) {}
    let s = setup();
    let dl = downloader(&s.server, Tokens::default(), 1);
    let requests = [request(s.server.url_for("/x.safetensors"), "loras/")];
    assert_send(&dl.download_all(&s.root, &requests, &NoReporter));
    let mut index = ModelIndex::open(&s.db).unwrap();
    assert_send(&index.find_sources(&dl, &[]));
}

#[tokio::test]
async fn huggingface_published_sha256_is_verified() {
    use comfydock_test::http::{HttpServer, Response};
    let s = setup();
    let good = payload(70_000, 21);
    let cdn_good = s.server.localhost_url_for("/cdn/good");
    let cdn_bad = s.server.localhost_url_for("/cdn/bad");
    s.server.add("/cdn/good", good.clone());
    s.server.add("/cdn/bad", payload(70_000, 22));
    let published = sha256(&good);
    // The HF endpoint answers /resolve/ with a redirect carrying the LFS sha256.
    let hf = HttpServer::start(move |request| {
        let target = if request.path().contains("bad") {
            &cdn_bad
        } else {
            &cdn_good
        };
        Response::redirect(302, target.clone()).header("X-Linked-Etag", format!("\"{published}\""))
    });
    let endpoints = Endpoints {
        huggingface: Url::parse(&hf.url()).unwrap(),
        civitai: Url::parse("https://civitai.invalid").unwrap(),
    };
    let dl = Downloader::new(endpoints, Tokens::default())
        .unwrap()
        .with_retry(fast_retry(1));
    let ok = dl
        .download(
            &s.root,
            &request(
                format!("{}/o/r/resolve/main/good.safetensors", hf.url()),
                "loras/",
            ),
            0,
            &NoReporter,
        )
        .await
        .unwrap();
    assert_eq!(fs_err::read(&ok.path).unwrap(), good);
    let err = dl
        .download(
            &s.root,
            &request(format!("{}/o/r/resolve/main/bad.safetensors", hf.url()), "loras/"),
            0,
            &NoReporter,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, DownloadError::HashMismatch { .. }), "{err:?}");
    assert!(!s.root.path.join("loras/bad.safetensors").exists());
    assert!(!s.root.path.join("loras/bad.safetensors.part").exists());
}

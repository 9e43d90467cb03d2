//! Real PyTorch wheels served as a local index laid out like the PyTorch wheel index.
//!
//! The wheels are PyPI's Linux builds of `torch`, `torchvision` and `torchaudio` (CUDA 12.8 builds
//! that run on a machine without a GPU when ComfyUI gets `--cpu`), downloaded once with pip into the
//! real-world cache. Every backend path (`/cpu/torch/`, `/cu128/torch/`, ...) lists the same wheels,
//! as PEP 503 pages with `#sha256=` fragments and PEP 658/714 metadata files, so `uv lock` reads
//! metadata without downloading a wheel. The server listens on a fixed loopback port: uv caches
//! per index URL and the URL lands in `uv.lock`, so warm runs reuse the cache.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use comfydock_foundation::package_name;
use sha2::Digest as _;

use crate::http::{HttpServer, Response};

/// The pinned real torch release the tier runs.
pub const TORCH_REQUIREMENTS: [&str; 3] = ["torch==2.9.1", "torchvision==0.24.1", "torchaudio==2.9.1"];

/// The fixed loopback port of the index (uv's cache is keyed by the index URL).
pub const PORT: u16 = 38_517;

/// One wheel on the index.
#[derive(Debug, Clone)]
pub struct IndexedWheel {
    /// The wheel's file name.
    pub filename: String,
    /// The PEP 503 normalized project name.
    pub project: String,
    /// The wheel on disk.
    pub path: PathBuf,
    /// sha256 of the wheel, hex.
    pub sha256: String,
    /// The wheel's `METADATA` file.
    pub metadata: Vec<u8>,
    /// `Requires-Python` from the metadata, if any.
    pub requires_python: Option<String>,
}

/// The running index; stops when dropped.
pub struct RealTorchIndex {
    server: HttpServer,
    wheels: Arc<Vec<IndexedWheel>>,
}

impl RealTorchIndex {
    /// Downloads the wheels once (into `cache/torch-wheels`) and serves them on [`PORT`].
    pub fn start(cache: &Path) -> Self {
        let dir = cache.join("torch-wheels");
        download_wheels(&dir);
        let wheels = Arc::new(index_wheels(&dir));
        let listing = wheels.clone();
        let server = HttpServer::start_on(PORT, move |request| route(&listing, &request.path()));
        Self { server, wheels }
    }

    /// `torch.index_url`: backends are `{url}/cpu`, `{url}/cu128`, ...
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// The wheels served.
    pub fn wheels(&self) -> &[IndexedWheel] {
        &self.wheels
    }

    /// How many requests downloaded a wheel file (not metadata), to tell a warm run from a cold one.
    pub fn wheel_downloads(&self) -> usize {
        self.server
            .log()
            .all()
            .iter()
            .filter(|r| {
                let path = r.path();
                path.starts_with("/files/") && is_wheel(&path)
            })
            .count()
    }
}

/// `pip download` the pinned wheels for this machine's Python unless they are there already.
fn download_wheels(dir: &Path) {
    let have = |name: &str, version: &str| {
        let prefix = format!("{}-{version}-", name.replace('-', "_"));
        fs_err::read_dir(dir).is_ok_and(|entries| {
            entries.filter_map(Result::ok).any(|e| {
                let file = e.file_name().to_string_lossy().into_owned();
                is_wheel(&file) && file.starts_with(&prefix)
            })
        })
    };
    let missing: Vec<&str> = TORCH_REQUIREMENTS
        .iter()
        .copied()
        .filter(|req| {
            let (name, version) = req.split_once("==").expect("pinned requirement");
            !have(name, version)
        })
        .collect();
    if missing.is_empty() {
        return;
    }
    fs_err::create_dir_all(dir).expect("create the torch wheel folder");
    let out = Command::new("python3")
        .args([
            "-m",
            "pip",
            "download",
            "--quiet",
            "--disable-pip-version-check",
            "--no-deps",
        ])
        .args(["--only-binary", ":all:", "--dest"])
        .arg(dir)
        .args(&missing)
        .env_remove("PIP_NO_INDEX")
        .env_remove("PIP_FIND_LINKS")
        .output()
        .expect("run python3 -m pip download");
    assert!(
        out.status.success(),
        "pip download {missing:?} failed (the tier needs PyPI): {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Reads every wheel in `dir`: hash (cached beside it in `NAME.sha256`) and `METADATA`.
fn index_wheels(dir: &Path) -> Vec<IndexedWheel> {
    let mut wheels = Vec::new();
    let mut entries: Vec<PathBuf> = fs_err::read_dir(dir)
        .expect("read the torch wheel folder")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| is_wheel(&p.to_string_lossy()))
        .collect();
    entries.sort();
    for path in entries {
        let filename = path
            .file_name()
            .expect("file name")
            .to_string_lossy()
            .into_owned();
        let project = package_name::normalize(filename.split('-').next().expect("wheel name"));
        let sha256 = cached_sha256(&path);
        let metadata = wheel_metadata(&path);
        let requires_python = String::from_utf8_lossy(&metadata)
            .lines()
            .find_map(|l| l.strip_prefix("Requires-Python:"))
            .map(|v| v.trim().to_owned());
        wheels.push(IndexedWheel {
            filename,
            project,
            path,
            sha256,
            metadata,
            requires_python,
        });
    }
    wheels
}

fn cached_sha256(wheel: &Path) -> String {
    let sidecar = wheel.with_extension("whl.sha256");
    if let Ok(hex) = fs_err::read_to_string(&sidecar)
        && hex.trim().len() == 64
    {
        return hex.trim().to_owned();
    }
    let mut hasher = sha2::Sha256::new();
    let mut file = fs_err::File::open(wheel).expect("open wheel");
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).expect("read wheel");
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    let hex = hex::encode(hasher.finalize());
    fs_err::write(&sidecar, &hex).expect("write the wheel's sha256 sidecar");
    hex
}

fn wheel_metadata(wheel: &Path) -> Vec<u8> {
    let file = fs_err::File::open(wheel).expect("open wheel");
    let mut archive = zip::ZipArchive::new(file).expect("a wheel is a zip archive");
    let name = archive
        .file_names()
        .filter_map(Result::ok)
        .map(std::borrow::Cow::into_owned)
        .find(|n| n.ends_with(".dist-info/METADATA") && n.matches('/').count() == 1)
        .unwrap_or_else(|| panic!("{} has no .dist-info/METADATA", wheel.display()));
    let mut entry = archive.by_name(&name).expect("METADATA entry");
    let mut out = Vec::new();
    entry.read_to_end(&mut out).expect("read METADATA");
    out
}

fn route(wheels: &[IndexedWheel], path: &str) -> Response {
    if let Some(file) = path.strip_prefix("/files/") {
        if let Some(wheel) = file
            .strip_suffix(".metadata")
            .and_then(|f| wheels.iter().find(|w| w.filename == f))
        {
            return Response::ok(wheel.metadata.clone()).header("Content-Type", "application/octet-stream");
        }
        return wheels
            .iter()
            .find(|w| w.filename == file)
            .map_or_else(Response::not_found, |w| Response::file(&w.path));
    }
    let parts: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|p| !p.is_empty())
        .collect();
    match parts.as_slice() {
        [_backend] => {
            let projects: BTreeSet<&str> = wheels.iter().map(|w| w.project.as_str()).collect();
            let mut html = String::from("<!DOCTYPE html>\n<html><body>\n");
            for project in projects {
                let _ = writeln!(html, "<a href=\"{project}/\">{project}</a><br/>");
            }
            html.push_str("</body></html>\n");
            Response::html(html)
        }
        [_backend, project] => {
            let project = package_name::normalize(project);
            let listed: Vec<&IndexedWheel> = wheels.iter().filter(|w| w.project == project).collect();
            if listed.is_empty() {
                return Response::not_found();
            }
            let mut html = format!("<!DOCTYPE html>\n<html><body><h1>Links for {project}</h1>\n");
            for wheel in listed {
                let metadata_hash = hex::encode(sha2::Sha256::digest(&wheel.metadata));
                let requires_python = wheel
                    .requires_python
                    .as_deref()
                    .map(|v| format!(" data-requires-python=\"{}\"", html_escape(v)))
                    .unwrap_or_default();
                let _ = writeln!(
                    html,
                    "<a href=\"/files/{file}#sha256={sha}\"{requires_python} data-dist-info-metadata=\"sha256={metadata_hash}\" data-core-metadata=\"sha256={metadata_hash}\">{file}</a><br/>",
                    file = wheel.filename,
                    sha = wheel.sha256,
                );
            }
            html.push_str("</body></html>\n");
            Response::html(html)
        }
        _ => Response::not_found(),
    }
}

fn is_wheel(name: &str) -> bool {
    Path::new(name)
        .extension()
        .is_some_and(|x| x.eq_ignore_ascii_case("whl"))
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

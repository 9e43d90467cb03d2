//! A local Python package index standing in for PyPI and the PyTorch indexes.
//!
//! Tiny pure-Python wheels are built at test time ([`WheelSpec`]) and served as PEP 503 simple
//! indexes with `#sha256=` fragments and PEP 658 metadata files:
//!
//! - the main index at `{url}/simple/` (what `UV_DEFAULT_INDEX` / `--index-url` points at);
//! - one PyTorch-style index per backend at `{url}/whl/<backend>/` (`/whl/cpu/torch/`, ...), so that
//!   `torch.index_url = {url}/whl` plus `/cpu` is a working uv index URL, like download.pytorch.org;
//! - wheel files at `{url}/packages/<index>/<filename>`.
//!
//! [`WheelIndex::write_find_links`] writes the same wheels into a flat directory for `--find-links`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use comfydock_foundation::package_name;

use crate::archive::{ZipEntry, build_zip, sha256_hex};
use crate::file_server::serve_bytes;
use crate::http::{HttpServer, Request, RequestLog, Response};

/// The main (PyPI-like) index key.
pub const MAIN_INDEX: &str = "simple";
/// The stand-in torch version published on every index.
pub const TORCH_VERSION: &str = "2.5.1";
/// The torchvision version matching [`TORCH_VERSION`].
pub const TORCHVISION_VERSION: &str = "0.20.1";
/// The torchaudio version matching [`TORCH_VERSION`].
pub const TORCHAUDIO_VERSION: &str = "2.5.1";
/// Backends published by [`WheelIndex::start`], each at `{url}/whl/<backend>/`.
pub const TORCH_BACKENDS: [&str; 4] = ["cpu", "cu126", "cu128", "rocm6.3"];

/// A wheel to build: name, version, dependencies and module files.
#[derive(Clone, Debug)]
pub struct WheelSpec {
    name: String,
    version: String,
    requires: Vec<String>,
    requires_python: Option<String>,
    files: Vec<(String, String)>,
}

impl WheelSpec {
    /// A wheel for `name==version` whose module (`name` with `-` → `_`) has `__version__`.
    pub fn new(name: &str, version: &str) -> Self {
        WheelSpec {
            name: name.to_owned(),
            version: version.to_owned(),
            requires: Vec::new(),
            requires_python: None,
            files: Vec::new(),
        }
    }

    /// Adds a `Requires-Dist` line (a PEP 508 requirement such as `tinynum>=1,<2`).
    #[must_use]
    pub fn requires(mut self, requirement: &str) -> Self {
        self.requires.push(requirement.to_owned());
        self
    }

    /// Sets `Requires-Python` (e.g. `>=3.9`).
    #[must_use]
    pub fn requires_python(mut self, specifier: &str) -> Self {
        self.requires_python = Some(specifier.to_owned());
        self
    }

    /// Adds or replaces a file inside the wheel (path relative to site-packages,
    /// e.g. `tinynum/linalg.py`). Replacing `<module>/__init__.py` drops the default one.
    #[must_use]
    pub fn file(mut self, path: &str, contents: &str) -> Self {
        self.files.retain(|(p, _)| p != path);
        self.files.push((path.to_owned(), contents.to_owned()));
        self
    }

    /// The project name as given.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The version as given (may carry a local part like `+cpu`).
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The importable module name: `comfy-tiny-a` → `comfy_tiny_a`.
    pub fn module_name(&self) -> String {
        self.name.replace(['-', '.'], "_").to_lowercase()
    }

    /// Builds the wheel: `<module>/__init__.py`, `*.dist-info/{METADATA,WHEEL,RECORD}`.
    pub fn build(&self) -> BuiltWheel {
        let dist = wheel_dist_name(&self.name);
        let dist_info = format!("{dist}-{}.dist-info", self.version);
        let mut metadata = format!(
            "Metadata-Version: 2.1\nName: {}\nVersion: {}\nSummary: Stand-in package {} for comfydock tests\n",
            self.name, self.version, self.name
        );
        if let Some(python) = &self.requires_python {
            let _ = writeln!(metadata, "Requires-Python: {python}");
        }
        for requirement in &self.requires {
            let _ = writeln!(metadata, "Requires-Dist: {requirement}");
        }
        let wheel_file =
            "Wheel-Version: 1.0\nGenerator: comfydock-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n";
        let init_path = format!("{}/__init__.py", self.module_name());
        let mut files: Vec<(String, Vec<u8>)> = Vec::new();
        if !self.files.iter().any(|(p, _)| *p == init_path) {
            files.push((
                init_path,
                format!("__version__ = \"{}\"\n", self.version).into_bytes(),
            ));
        }
        files.extend(
            self.files
                .iter()
                .map(|(p, c)| (p.clone(), c.clone().into_bytes())),
        );
        files.push((format!("{dist_info}/METADATA"), metadata.clone().into_bytes()));
        files.push((format!("{dist_info}/WHEEL"), wheel_file.as_bytes().to_vec()));
        let mut record = String::new();
        for (path, bytes) in &files {
            let _ = writeln!(record, "{path},sha256={},{}", record_digest(bytes), bytes.len());
        }
        let _ = writeln!(record, "{dist_info}/RECORD,,");
        files.push((format!("{dist_info}/RECORD"), record.into_bytes()));
        let entries: Vec<ZipEntry> = files.into_iter().map(|(p, b)| ZipEntry::file(p, b)).collect();
        let bytes = build_zip(&entries);
        BuiltWheel {
            name: self.name.clone(),
            version: self.version.clone(),
            filename: format!("{dist}-{}-py3-none-any.whl", self.version),
            sha256: sha256_hex(&bytes),
            requires_python: self.requires_python.clone(),
            metadata,
            bytes,
        }
    }
}

/// A built wheel file.
#[derive(Clone, Debug)]
pub struct BuiltWheel {
    /// Project name as given.
    pub name: String,
    /// Version (with any local part).
    pub version: String,
    /// `<dist>-<version>-py3-none-any.whl`.
    pub filename: String,
    /// The wheel bytes.
    pub bytes: Vec<u8>,
    /// Lowercase hex SHA-256 of `bytes`.
    pub sha256: String,
    /// The METADATA file contents (served as the PEP 658 `.metadata` file).
    pub metadata: String,
    /// `Requires-Python`, if any.
    pub requires_python: Option<String>,
}

impl BuiltWheel {
    /// Writes the wheel into `dir` under its filename and returns the path.
    pub fn write_to(&self, dir: &Path) -> std::path::PathBuf {
        fs_err::create_dir_all(dir).expect("create the wheel directory");
        let path = dir.join(&self.filename);
        fs_err::write(&path, &self.bytes).expect("write a wheel file");
        path
    }
}

/// The distribution part of a wheel filename: normalized name with `_` separators.
fn wheel_dist_name(name: &str) -> String {
    package_name::normalize(name).replace('-', "_")
}

/// `sha256=` value for RECORD: urlsafe base64 without padding.
fn record_digest(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    base64_urlsafe_nopad(&Sha256::digest(bytes))
}

fn base64_urlsafe_nopad(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for i in 0..chars {
            out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

/// The default package set of the main index, usable by a stand-in ComfyUI `requirements.txt` and by
/// custom nodes:
///
/// | name | versions | requires |
/// |---|---|---|
/// | `tinynum` (numpy-like) | 1.26.4, 2.1.0 | — |
/// | `tinyimg` (pillow-like) | 10.4.0, 11.0.0 | — |
/// | `tinyyaml` (pyyaml-like) | 6.0.2 | — |
/// | `comfy-tiny-a` | 1.0.0, 1.1.0 | `tinynum<2` / `tinynum>=1` |
/// | `comfy-tiny-b` | 1.0.0, 2.0.0 | —  / `tinyimg>=10` |
/// | `tinysde` (torchsde-like) | 0.2.6 | `torch>=1.6`, `tinynum>=1.19` |
/// | `shared-dep` | 1.5.0, 2.0.0 | — |
/// | `conflict-a` | 1.0.0 | `shared-dep<2` |
/// | `conflict-b` | 1.0.0 | `shared-dep>=2` |
/// | `node-dep-a` | 1.0.0, 1.1.0, 2.0.0 | — |
/// | `node-dep-b` | 0.5.0 | `node-dep-a>=1` |
/// | `torch`, `torchvision`, `torchaudio` | 2.5.1, 0.20.1, 2.5.1 (no local version, like PyPI) | matching torch |
pub fn default_packages() -> Vec<WheelSpec> {
    let mut specs = vec![
        WheelSpec::new("tinynum", "1.26.4"),
        WheelSpec::new("tinynum", "2.1.0"),
        WheelSpec::new("tinyimg", "10.4.0"),
        WheelSpec::new("tinyimg", "11.0.0"),
        WheelSpec::new("tinyyaml", "6.0.2"),
        WheelSpec::new("comfy-tiny-a", "1.0.0").requires("tinynum<2"),
        WheelSpec::new("comfy-tiny-a", "1.1.0").requires("tinynum>=1"),
        WheelSpec::new("comfy-tiny-b", "1.0.0"),
        WheelSpec::new("comfy-tiny-b", "2.0.0").requires("tinyimg>=10"),
        WheelSpec::new("tinysde", "0.2.6")
            .requires("torch>=1.6")
            .requires("tinynum>=1.19"),
        WheelSpec::new("shared-dep", "1.5.0"),
        WheelSpec::new("shared-dep", "2.0.0"),
        WheelSpec::new("conflict-a", "1.0.0").requires("shared-dep<2"),
        WheelSpec::new("conflict-b", "1.0.0").requires("shared-dep>=2"),
        WheelSpec::new("node-dep-a", "1.0.0"),
        WheelSpec::new("node-dep-a", "1.1.0"),
        WheelSpec::new("node-dep-a", "2.0.0"),
        WheelSpec::new("node-dep-b", "0.5.0").requires("node-dep-a>=1"),
    ];
    specs.extend(torch_family(None));
    specs
}

/// Stand-in `torch`, `torchvision`, `torchaudio` for one backend (`None` = the plain PyPI build).
///
/// Versions carry the backend as local part (`2.5.1+cpu`); torchvision and torchaudio require
/// exactly the matching torch. `torch.version.cuda` is `None` for cpu and e.g. `"12.8"` for cu128,
/// and `torch.cuda.is_available()` returns `False`.
pub fn torch_family(backend: Option<&str>) -> Vec<WheelSpec> {
    torch_family_at(backend, TORCH_VERSION, TORCHVISION_VERSION, TORCHAUDIO_VERSION)
}

/// Like [`torch_family`] for other versions (e.g. `2.6.0`, `0.21.0`, `2.6.0` to test torch updates).
pub fn torch_family_at(
    backend: Option<&str>,
    torch: &str,
    torchvision: &str,
    torchaudio: &str,
) -> Vec<WheelSpec> {
    let local = backend.map(|b| format!("+{b}")).unwrap_or_default();
    let torch_version = format!("{torch}{local}");
    let cuda = match backend {
        Some(b) if b.starts_with("cu") && b.len() > 3 => {
            let digits = &b[2..];
            format!(
                "\"{}.{}\"",
                &digits[..digits.len() - 1],
                &digits[digits.len() - 1..]
            )
        }
        Some(_) => "None".to_owned(),
        None => "\"12.4\"".to_owned(),
    };
    let torch_init =
        format!("__version__ = \"{torch_version}\"\nfrom . import version\nfrom . import cuda\n");
    let torch_version_py = format!("__version__ = \"{torch_version}\"\ncuda = {cuda}\n");
    let cuda_py = "def is_available():\n    return False\n\n\ndef device_count():\n    return 0\n";
    vec![
        WheelSpec::new("torch", &torch_version)
            .file("torch/__init__.py", &torch_init)
            .file("torch/version.py", &torch_version_py)
            .file("torch/cuda.py", cuda_py),
        WheelSpec::new("torchvision", &format!("{torchvision}{local}"))
            .requires(&format!("torch=={torch_version}")),
        WheelSpec::new("torchaudio", &format!("{torchaudio}{local}"))
            .requires(&format!("torch=={torch_version}")),
    ]
}

#[derive(Default)]
struct IndexState {
    /// Pause before serving each wheel file (to interrupt an install midway).
    download_delay: Option<std::time::Duration>,
    /// index key (`simple`, `whl/cpu`) → normalized project → wheels.
    indexes: BTreeMap<String, BTreeMap<String, Vec<Arc<BuiltWheel>>>>,
}

/// A running package index on `127.0.0.1:PORT`; stops when dropped.
pub struct WheelIndex {
    server: HttpServer,
    state: Arc<Mutex<IndexState>>,
}

impl Default for WheelIndex {
    fn default() -> Self {
        Self::start()
    }
}

impl WheelIndex {
    /// Starts with [`default_packages`] on the main index and the torch family on every backend in
    /// [`TORCH_BACKENDS`].
    pub fn start() -> Self {
        let index = Self::empty();
        for spec in default_packages() {
            index.publish(&spec);
        }
        for backend in TORCH_BACKENDS {
            for spec in torch_family(Some(backend)) {
                index.publish_to(&format!("whl/{backend}"), &spec);
            }
        }
        index
    }

    /// Starts with no packages at all.
    pub fn empty() -> Self {
        let state = Arc::new(Mutex::new(IndexState::default()));
        let handler_state = state.clone();
        let server = HttpServer::start(move |request| handle(&handler_state, request));
        WheelIndex { server, state }
    }

    /// Builds and publishes a wheel on the main index; returns it.
    pub fn publish(&self, spec: &WheelSpec) -> Arc<BuiltWheel> {
        self.publish_to(MAIN_INDEX, spec)
    }

    /// Builds and publishes a wheel on the index `key` (`simple` or `whl/<backend>`).
    pub fn publish_to(&self, key: &str, spec: &WheelSpec) -> Arc<BuiltWheel> {
        let wheel = Arc::new(spec.build());
        let mut state = self.state();
        let project = state
            .indexes
            .entry(key.trim_matches('/').to_owned())
            .or_default()
            .entry(package_name::normalize(spec.name()))
            .or_default();
        project.retain(|w| w.filename != wheel.filename);
        project.push(wheel.clone());
        wheel
    }

    /// Waits `delay` before serving every wheel file from now on (`None` = no delay), so a test can
    /// kill comfydock while uv is installing.
    pub fn delay_downloads(&self, delay: Option<std::time::Duration>) {
        self.state().download_delay = delay;
    }

    /// `http://127.0.0.1:PORT` (server root).
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// The main index URL, `http://127.0.0.1:PORT/simple` (for `--index-url` / `UV_DEFAULT_INDEX`).
    pub fn simple_url(&self) -> String {
        format!("{}/{MAIN_INDEX}", self.url())
    }

    /// The PyTorch-style base URL `http://127.0.0.1:PORT/whl` (for `torch.index_url`).
    pub fn torch_index_url(&self) -> String {
        format!("{}/whl", self.url())
    }

    /// One backend's index URL, `http://127.0.0.1:PORT/whl/<backend>`.
    pub fn backend_url(&self, backend: &str) -> String {
        format!("{}/whl/{backend}", self.url())
    }

    /// Every wheel published on index `key`.
    pub fn wheels(&self, key: &str) -> Vec<Arc<BuiltWheel>> {
        self.state()
            .indexes
            .get(key)
            .map(|p| p.values().flatten().cloned().collect())
            .unwrap_or_default()
    }

    /// Writes every wheel of the main index (plus those of `backends`) into `dir` as a flat
    /// find-links directory.
    pub fn write_find_links(&self, dir: &Path, backends: &[&str]) {
        for wheel in self.wheels(MAIN_INDEX) {
            wheel.write_to(dir);
        }
        for backend in backends {
            for wheel in self.wheels(&format!("whl/{backend}")) {
                wheel.write_to(dir);
            }
        }
    }

    /// Requests received so far.
    pub fn log(&self) -> &RequestLog {
        self.server.log()
    }

    /// Whether any wheel file of `project` was downloaded (from any index).
    pub fn downloaded(&self, project: &str) -> bool {
        let prefix = format!("{}-", wheel_dist_name(project));
        self.log().all().iter().any(|r| {
            let path = r.path();
            path.starts_with("/packages/")
                && path.rsplit('/').next().is_some_and(|f| {
                    f.starts_with(&prefix) && Path::new(f).extension().is_some_and(|e| e == "whl")
                })
        })
    }

    /// Stops the server: the index becomes unreachable.
    pub fn stop(&mut self) {
        self.server.stop();
    }

    fn state(&self) -> MutexGuard<'_, IndexState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn handle(state: &Mutex<IndexState>, request: &Request) -> Response {
    let path = request.path();
    let delay = state
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .download_delay;
    if let Some(delay) = delay
        && path.starts_with("/packages/")
        && !path.ends_with(".metadata")
    {
        std::thread::sleep(delay);
    }
    let state = state.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(rest) = path.strip_prefix("/packages/") {
        let Some((key, filename)) = rest.rsplit_once('/') else {
            return Response::not_found();
        };
        let (filename, want_metadata) = filename
            .strip_suffix(".metadata")
            .map_or((filename, false), |f| (f, true));
        let Some(wheel) = state
            .indexes
            .get(key)
            .and_then(|p| p.values().flatten().find(|w| w.filename == filename))
        else {
            return Response::not_found();
        };
        if want_metadata {
            return Response::ok(wheel.metadata.clone()).header("Content-Type", "text/plain");
        }
        return serve_bytes(request, wheel.bytes.clone(), Some("application/octet-stream"));
    }
    // `/<key>/` is an index root, `/<key>/<project>/` a project page; keys may contain `/`.
    let trimmed = path.trim_matches('/');
    if let Some(projects) = state.indexes.get(trimmed) {
        let mut page =
            String::from("<!DOCTYPE html>\n<html><head><title>Simple index</title></head><body>\n");
        for name in projects.keys() {
            let _ = writeln!(page, "<a href=\"{name}/\">{name}</a><br/>");
        }
        page.push_str("</body></html>\n");
        return Response::html(page);
    }
    let Some((key, project)) = trimmed.rsplit_once('/') else {
        return Response::not_found();
    };
    let Some(wheels) = state
        .indexes
        .get(key)
        .and_then(|p| p.get(&package_name::normalize(project)))
    else {
        return Response::not_found();
    };
    let mut page = format!(
        "<!DOCTYPE html>\n<html><head><meta name=\"pypi:repository-version\" content=\"1.0\"><title>Links for {project}</title></head><body>\n<h1>Links for {project}</h1>\n"
    );
    for wheel in wheels {
        let href = format!("/packages/{key}/{}", wheel.filename.replace('+', "%2B"));
        let metadata_hash = sha256_hex(wheel.metadata.as_bytes());
        let requires_python = wheel
            .requires_python
            .as_ref()
            .map(|p| format!(" data-requires-python=\"{}\"", html_escape(p)))
            .unwrap_or_default();
        let _ = writeln!(
            page,
            "<a href=\"{href}#sha256={}\"{requires_python} data-dist-info-metadata=\"sha256={metadata_hash}\" data-core-metadata=\"sha256={metadata_hash}\">{}</a><br/>",
            wheel.sha256, wheel.filename
        );
    }
    page.push_str("</body></html>\n");
    Response::html(page)
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use std::io::{Cursor, Read};

    use super::*;
    use crate::http::client::get;

    #[test]
    fn wheel_has_valid_record_and_metadata() {
        let wheel = WheelSpec::new("Comfy.Tiny_A", "1.0.0")
            .requires("tinynum<2")
            .build();
        assert_eq!(wheel.filename, "comfy_tiny_a-1.0.0-py3-none-any.whl");
        let mut archive = zip::ZipArchive::new(Cursor::new(wheel.bytes.clone())).unwrap();
        let mut read = |name: &str| {
            let mut s = String::new();
            archive.by_name(name).unwrap().read_to_string(&mut s).unwrap();
            s
        };
        assert_eq!(read("comfy_tiny_a/__init__.py"), "__version__ = \"1.0.0\"\n");
        let metadata = read("comfy_tiny_a-1.0.0.dist-info/METADATA");
        assert!(metadata.contains("Requires-Dist: tinynum<2\n"), "{metadata}");
        let record = read("comfy_tiny_a-1.0.0.dist-info/RECORD");
        let init_line = record
            .lines()
            .find(|l| l.starts_with("comfy_tiny_a/__init__.py,"))
            .unwrap();
        // sha256 of `__version__ = "1.0.0"\n`, urlsafe base64 without padding.
        let expected = record_digest(b"__version__ = \"1.0.0\"\n");
        assert_eq!(
            init_line,
            format!("comfy_tiny_a/__init__.py,sha256={expected},22")
        );
        assert!(record.ends_with("comfy_tiny_a-1.0.0.dist-info/RECORD,,\n"));
    }

    #[test]
    fn base64_matches_known_vectors() {
        assert_eq!(base64_urlsafe_nopad(b""), "");
        assert_eq!(base64_urlsafe_nopad(b"f"), "Zg");
        assert_eq!(base64_urlsafe_nopad(b"fo"), "Zm8");
        assert_eq!(base64_urlsafe_nopad(b"foo"), "Zm9v");
        assert_eq!(base64_urlsafe_nopad(&[0xfb, 0xff]), "-_8");
    }

    #[test]
    fn normalizes_names_like_pep_503() {
        assert_eq!(package_name::normalize("Comfy__Tiny.-A"), "comfy-tiny-a");
        assert_eq!(wheel_dist_name("comfy-tiny-a"), "comfy_tiny_a");
    }

    #[test]
    fn serves_simple_pages_with_hashes_and_files() {
        let index = WheelIndex::start();
        let page = get(&format!("{}/tinynum/", index.simple_url()), &[]).unwrap();
        assert_eq!(page.status, 200);
        let text = page.text();
        let wheel = index
            .wheels(MAIN_INDEX)
            .into_iter()
            .find(|w| w.filename.starts_with("tinynum-2.1.0"))
            .unwrap();
        assert!(text.contains(&format!(
            "/packages/simple/tinynum-2.1.0-py3-none-any.whl#sha256={}",
            wheel.sha256
        )));
        let file = get(
            &format!("{}/packages/simple/{}", index.url(), wheel.filename),
            &[],
        )
        .unwrap();
        assert_eq!(file.body, wheel.bytes);
        let metadata = get(
            &format!("{}/packages/simple/{}.metadata", index.url(), wheel.filename),
            &[],
        )
        .unwrap();
        assert_eq!(metadata.text(), wheel.metadata);
        // Per-backend torch pages with local versions.
        let cpu = get(&format!("{}/torch/", index.backend_url("cpu")), &[])
            .unwrap()
            .text();
        assert!(cpu.contains("torch-2.5.1%2Bcpu-py3-none-any.whl"), "{cpu}");
        let root = get(&format!("{}/", index.simple_url()), &[]).unwrap().text();
        assert!(root.contains("href=\"conflict-a/\""));
        assert_eq!(
            get(&format!("{}/nope/", index.simple_url()), &[]).unwrap().status,
            404
        );
        assert!(index.downloaded("tinynum"));
        assert!(!index.downloaded("torch"));
        index.delay_downloads(Some(std::time::Duration::from_millis(100)));
        let started = std::time::Instant::now();
        get(
            &format!("{}/packages/simple/{}", index.url(), wheel.filename),
            &[],
        )
        .unwrap();
        assert!(started.elapsed() >= std::time::Duration::from_millis(100));
    }

    #[test]
    fn find_links_directory_holds_wheels() {
        let index = WheelIndex::start();
        let dir = tempfile::tempdir().unwrap();
        index.write_find_links(dir.path(), &["cpu"]);
        assert!(dir.path().join("conflict_b-1.0.0-py3-none-any.whl").is_file());
        assert!(dir.path().join("torch-2.5.1+cpu-py3-none-any.whl").is_file());
        assert!(dir.path().join("torch-2.5.1-py3-none-any.whl").is_file());
    }

    #[test]
    fn torch_family_pins_matching_local_versions() {
        let family = torch_family_at(Some("cu128"), "2.6.0", "0.21.0", "2.6.0");
        let built: Vec<BuiltWheel> = family.iter().map(WheelSpec::build).collect();
        assert_eq!(built[0].filename, "torch-2.6.0+cu128-py3-none-any.whl");
        assert!(built[1].metadata.contains("Requires-Dist: torch==2.6.0+cu128\n"));
        assert!(built[2].metadata.contains("Version: 2.6.0+cu128\n"));
        let mut archive = zip::ZipArchive::new(Cursor::new(built[0].bytes.clone())).unwrap();
        let mut version_py = String::new();
        archive
            .by_name("torch/version.py")
            .unwrap()
            .read_to_string(&mut version_py)
            .unwrap();
        assert_eq!(version_py, "__version__ = \"2.6.0+cu128\"\ncuda = \"12.8\"\n");
    }
}

//! Writing generated files into the output folder, and staging verified models for `bake`.
//!
//! Each kind (`docker`, `k8s`) keeps a marker listing what it wrote, written last: files a
//! previous run generated and this one does not are removed, and a folder that holds other
//! people's files (no marker) is refused rather than overwritten.

use std::collections::BTreeSet;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use super::spec::{DeploySpec, ModelPin};
use super::{DeployError, GeneratedFile};
use comfydock_foundation::atomic_file::{write_atomic, write_atomic_with_mode};
use comfydock_foundation::reporter::Reporter;

const MARKER_PREFIX: &str = ".comfydock-deploy-";

fn marker(dir: &Path, kind: &str) -> PathBuf {
    dir.join(format!("{MARKER_PREFIX}{kind}.json"))
}

/// Write `files` under `dir`. `kind` names the set (`docker`, `k8s`).
pub fn write_context(dir: &Path, kind: &str, files: &[GeneratedFile]) -> Result<(), DeployError> {
    if dir.is_dir() {
        let mut foreign = false;
        let mut ours = false;
        for entry in fs_err::read_dir(dir)? {
            let name = entry?.file_name().to_string_lossy().into_owned();
            if name.starts_with(MARKER_PREFIX) {
                ours = true;
            } else {
                foreign = true;
            }
        }
        if foreign && !ours {
            return Err(DeployError::ForeignOutDir {
                dir: dir.to_path_buf(),
            });
        }
    }
    fs_err::create_dir_all(dir)?;
    let previous: Vec<String> = fs_err::read_to_string(marker(dir, kind))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    let current: BTreeSet<&str> = files.iter().map(|f| f.path.as_str()).collect();
    for stale in previous.iter().filter(|p| !current.contains(p.as_str())) {
        if is_relative_inside(stale) {
            match fs_err::remove_file(dir.join(stale)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
                _ => {}
            }
        }
    }
    for file in files {
        let path = dir.join(&file.path);
        if let Some(parent) = path.parent() {
            fs_err::create_dir_all(parent)?;
        }
        let mode = if file.executable { Some(0o755) } else { Some(0o644) };
        write_atomic_with_mode(&path, &file.contents, mode)?;
    }
    let list: Vec<&str> = current.into_iter().collect();
    write_atomic(
        &marker(dir, kind),
        serde_json::to_string_pretty(&list).expect("list serialises") + "\n",
    )?;
    Ok(())
}

fn is_relative_inside(path: &str) -> bool {
    !path.starts_with('/') && path.split('/').all(|p| p != ".." && !p.is_empty())
}

/// Models that `--models bake` cannot take: every baked model needs a blake3 (checked by
/// `b3sum --check` in the build).
pub fn check_bakeable(spec: &DeploySpec) -> Result<(), DeployError> {
    for model in &spec.models {
        if model.blake3.is_none() {
            return Err(DeployError::ModelUnavailable {
                target: model.target.clone(),
                reason: "it has no blake3 hash recorded".into(),
            });
        }
    }
    Ok(())
}

/// Where a model's file may be on this machine, best first (e.g. `<models root>/<target>`, then
/// the locations the model index knows for its hash).
pub type ModelLocator<'a> = dyn Fn(&ModelPin) -> Vec<PathBuf> + 'a;

/// The locator for one models root: `<root>/<target>`.
pub fn models_root_locator(root: &Path) -> impl Fn(&ModelPin) -> Vec<PathBuf> + '_ {
    move |model| vec![root.join(&model.target)]
}

/// Copy every model into `dir/models/<target>` from the first candidate whose size and blake3
/// match; files already staged and matching are kept; other files under `dir/models` go.
pub fn stage_models(
    spec: &DeploySpec,
    locate: &ModelLocator<'_>,
    dir: &Path,
    reporter: &dyn Reporter,
) -> Result<(), DeployError> {
    check_bakeable(spec)?;
    let staged_root = dir.join("models");
    let wanted: BTreeSet<PathBuf> = spec.models.iter().map(|m| staged_root.join(&m.target)).collect();
    if staged_root.is_dir() {
        for entry in walkdir::WalkDir::new(&staged_root) {
            let entry = entry.map_err(std::io::Error::other)?;
            if entry.file_type().is_file() && !wanted.contains(entry.path()) {
                fs_err::remove_file(entry.path())?;
            }
        }
    }
    for model in &spec.models {
        let expected = model.blake3.as_deref().unwrap_or_default();
        let dest = staged_root.join(&model.target);
        if dest.is_file() && matches(&dest, expected, model.size)? {
            continue;
        }
        let candidates = locate(model);
        reporter.status("Verifying", &model.target);
        let mut source = None;
        for candidate in &candidates {
            if candidate.is_file() && matches(candidate, expected, model.size)? {
                source = Some(candidate.clone());
                break;
            }
        }
        let Some(source) = source else {
            let tried: Vec<String> = candidates.iter().map(|c| format!("`{}`", c.display())).collect();
            return Err(DeployError::ModelUnavailable {
                target: model.target.clone(),
                reason: if tried.is_empty() {
                    "no copy of it is known on this machine".to_owned()
                } else {
                    format!("no file matching its size and blake3 at {}", tried.join(", "))
                },
            });
        };
        let parent = dest.parent().expect("model target has a folder");
        fs_err::create_dir_all(parent)?;
        let staging = parent.join(format!(
            ".{}.staging",
            dest.file_name().unwrap_or_default().to_string_lossy()
        ));
        match fs_err::remove_file(&staging) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
            _ => {}
        }
        if fs_err::hard_link(&source, &staging).is_err() {
            fs_err::copy(&source, &staging)?;
        }
        fs_err::rename(&staging, &dest)?;
        reporter.status("Staged", &model.target);
    }
    Ok(())
}

fn matches(path: &Path, blake3: &str, size: Option<u64>) -> Result<bool, DeployError> {
    let len = fs_err::metadata(path)?.len();
    if size.is_some_and(|s| s != len) {
        return Ok(false);
    }
    Ok(file_blake3(path)?.eq_ignore_ascii_case(blake3))
}

/// The blake3 (lower-case hex) of a file's whole content, comfydock's model identity.
pub fn file_blake3(path: &Path) -> std::io::Result<String> {
    let mut file = fs_err::File::open(path)?;
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; 1024 * 1024];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher.finalize().to_hex().to_string())
}

/// Copy every dev node's sources into `<dir>/dev_nodes/<name>/` (`.gitignore` respected; `.git`,
/// `__pycache__` and links left out) for the Dockerfile's `COPY`. Returns the number of files.
pub fn stage_dev_nodes(
    spec: &DeploySpec,
    env: &comfydock_environments::environment::Environment,
    dir: &Path,
) -> Result<usize, DeployError> {
    let staged = dir.join("dev_nodes");
    if staged.exists() {
        fs_err::remove_dir_all(&staged)?;
    }
    let mut count = 0;
    for node in spec
        .nodes
        .iter()
        .filter(|n| n.source == comfydock_environments::nodes::NodeSource::Dev)
    {
        let source = node
            .path
            .as_deref()
            .map(PathBuf::from)
            .filter(|p| p.is_dir())
            .or_else(|| {
                fs_err::canonicalize(comfydock_environments::nodes::install::node_dir(env, node)).ok()
            })
            .filter(|p| p.is_dir())
            .ok_or_else(|| DeployError::UnpinnedNode {
                node: node.key.clone(),
                env: spec.environment.clone(),
                reason: "its dev folder is missing on this machine".to_owned(),
            })?;
        let files = comfydock_bundles::export::walk_files(&source, true)
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        for file in files {
            let target = staged.join(&node.name).join(&file.rel);
            if let Some(parent) = target.parent() {
                fs_err::create_dir_all(parent)?;
            }
            fs_err::copy(&file.path, &target)?;
            count += 1;
        }
    }
    Ok(count)
}

/// Copy this comfydock binary to `dir/api/comfydock` for the API image (written to a temporary
/// name, then renamed, so a half-copied binary is never built).
pub fn stage_api_binary(dir: &Path) -> Result<(), DeployError> {
    let exe = std::env::current_exe()?;
    let target = dir.join(super::docker_context::API_BINARY);
    if let Some(parent) = target.parent() {
        fs_err::create_dir_all(parent)?;
    }
    let partial = target.with_extension("partial");
    fs_err::copy(&exe, &partial)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        fs_err::set_permissions(&partial, std::fs::Permissions::from_mode(0o755))?;
    }
    fs_err::rename(&partial, &target)?;
    Ok(())
}

//! Real upstream inputs for the real-world test tier: ComfyUI releases and custom node packs as git
//! bundles in `../shared/realworld/` (beside the repository), and a cache folder that survives
//! between runs on one machine (uv's cache and the real torch wheels live there).

use std::path::{Path, PathBuf};
use std::process::Command;

/// `../shared/realworld` beside the repository root. Panics, naming the path, when it is missing:
/// the tier must fail loudly rather than pass without the real inputs.
pub fn inputs_dir() -> PathBuf {
    let repo_root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dir = repo_root.join("../shared/realworld");
    assert!(
        dir.join("comfyui.bundle").is_file(),
        "the real-world inputs are missing: expected {} (with comfyui.bundle) beside the repository",
        dir.display()
    );
    fs_err::canonicalize(&dir).expect("canonicalize the real-world inputs folder")
}

/// The cache kept between runs on this machine: `$COMFYDOCK_REALWORLD_CACHE`, else
/// `$XDG_CACHE_HOME/comfydock-ci/realworld`, else `~/.cache/comfydock-ci/realworld`.
pub fn cache_dir() -> PathBuf {
    let dir = if let Some(dir) = std::env::var_os("COMFYDOCK_REALWORLD_CACHE") {
        PathBuf::from(dir)
    } else if let Some(xdg) = std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
        PathBuf::from(xdg).join("comfydock-ci/realworld")
    } else {
        std::env::home_dir()
            .expect("a home directory for the real-world cache")
            .join(".cache/comfydock-ci/realworld")
    };
    fs_err::create_dir_all(&dir).expect("create the real-world cache folder");
    dir
}

/// uv's cache for the tier, kept between runs so a warm run downloads nothing.
pub fn uv_cache_dir() -> PathBuf {
    cache_dir().join("uv-cache")
}

/// Clones `bundle` (a file name in [`inputs_dir`]) into a bare repository at `dest`; returns
/// `dest` for use as a `file://` git URL.
pub fn bare_repo_from_bundle(bundle: &str, dest: &Path) -> PathBuf {
    let source = inputs_dir().join(bundle);
    let out = Command::new("git")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .args(["clone", "--quiet", "--bare"])
        .arg(&source)
        .arg(dest)
        .output()
        .expect("run git clone");
    assert!(
        out.status.success(),
        "git clone --bare {} failed: {}",
        source.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    dest.to_path_buf()
}

//! Locating the real external tools tests drive (uv, Python) and running uv hermetically.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Finds an executable on `PATH`.
pub fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// The `uv` binary tests use: `COMFYDOCK_UV` if set, else `uv` on `PATH`.
///
/// Panics when neither exists: a test that needs uv must fail, not skip. `.ci/run` puts a pinned uv
/// on `PATH`; locally `python3 -m pip install --target /tmp/uvbin uv==0.13.9` and add
/// `/tmp/uvbin/bin` to `PATH`.
pub fn uv_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("COMFYDOCK_UV").filter(|p| !p.is_empty()) {
        return PathBuf::from(path);
    }
    find_on_path("uv").expect(
        "uv is not on PATH (and COMFYDOCK_UV is unset); install it with \
         `python3 -m pip install --target /tmp/uvbin uv==0.13.9` and add /tmp/uvbin/bin to PATH",
    )
}

/// The Python interpreter request tests pass to uv (`--python`): a system Python 3.11.
pub const PYTHON_REQUEST: &str = "3.11";

/// A `uv` command with no user or system config, no Python downloads, only system interpreters, a private
/// cache directory and none of the caller's index settings.
pub fn uv_command(cache_dir: &Path) -> Command {
    let mut cmd = Command::new(uv_binary());
    cmd.env("UV_CACHE_DIR", cache_dir)
        .env("UV_PYTHON_DOWNLOADS", "never")
        .env("UV_PYTHON_PREFERENCE", "only-system")
        // Not UV_NO_CONFIG: that would also ignore the project's own `[tool.uv]`.
        .env("XDG_CONFIG_HOME", cache_dir.join("no-user-config"))
        .env("XDG_CONFIG_DIRS", cache_dir.join("no-system-config"))
        .env("UV_NO_PROGRESS", "1")
        .env_remove("UV_INDEX_URL")
        .env_remove("UV_DEFAULT_INDEX")
        .env_remove("UV_EXTRA_INDEX_URL")
        .env_remove("UV_INDEX")
        .env_remove("UV_FIND_LINKS")
        .env_remove("UV_OFFLINE")
        .env_remove("VIRTUAL_ENV")
        .env("NO_PROXY", "*");
    cmd
}

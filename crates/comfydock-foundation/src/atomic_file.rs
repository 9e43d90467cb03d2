//! Atomic file replacement: write a temp file beside the target, flush, rename over it.
//!
//! A reader sees either the old or the new content, never a torn file. An existing file's
//! permissions are kept (tempfile creates 0600, which must not leak onto a 0644 manifest).

use std::io::Write as _;
use std::path::Path;

/// Replace `path` with `contents` atomically, keeping the old file's permissions.
pub fn write_atomic(path: &Path, contents: impl AsRef<[u8]>) -> std::io::Result<()> {
    write_atomic_with_mode(path, contents, None)
}

/// Replace `path` atomically and set its Unix mode (e.g. `0o600` for credentials).
pub fn write_atomic_with_mode(
    path: &Path,
    contents: impl AsRef<[u8]>,
    mode: Option<u32>,
) -> std::io::Result<()> {
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let old_permissions = fs_err::metadata(path).ok().map(|m| m.permissions());
    let mut temp = tempfile::Builder::new()
        .prefix(&format!(
            ".{}.",
            path.file_name().unwrap_or_default().to_string_lossy()
        ))
        .suffix(".tmp")
        .tempfile_in(parent)
        .map_err(|err| annotate(&err, "create a temporary file in", parent))?;
    temp.write_all(contents.as_ref())
        .map_err(|err| annotate(&err, "write", temp.path()))?;
    temp.as_file()
        .sync_data()
        .map_err(|err| annotate(&err, "flush", temp.path()))?;
    set_permissions(temp.path(), old_permissions, mode)?;
    temp.persist(path)
        .map_err(|err| annotate(&err.error, "replace", path))?;
    Ok(())
}

#[cfg(unix)]
fn set_permissions(path: &Path, old: Option<std::fs::Permissions>, mode: Option<u32>) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    let permissions = match (mode, old) {
        (Some(mode), _) => std::fs::Permissions::from_mode(mode),
        (None, Some(old)) => old,
        (None, None) => std::fs::Permissions::from_mode(0o644),
    };
    fs_err::set_permissions(path, permissions)
}

#[cfg(not(unix))]
fn set_permissions(
    path: &Path,
    old: Option<std::fs::Permissions>,
    _mode: Option<u32>,
) -> std::io::Result<()> {
    match old {
        Some(old) => fs_err::set_permissions(path, old),
        None => Ok(()),
    }
}

fn annotate(err: &std::io::Error, action: &str, path: &Path) -> std::io::Error {
    std::io::Error::new(
        err.kind(),
        format!("failed to {action} `{}`: {err}", path.display()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_content_and_keeps_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.toml");
        fs_err::write(&path, "old").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            fs_err::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        }
        write_atomic(&path, "new").unwrap();
        assert_eq!(fs_err::read_to_string(&path).unwrap(), "new");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            assert_eq!(
                fs_err::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o640
            );
        }
        // No temp files left behind.
        assert_eq!(fs_err::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[cfg(unix)]
    #[test]
    fn explicit_mode_wins() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret.json");
        write_atomic_with_mode(&path, "{}", Some(0o600)).unwrap();
        assert_eq!(
            fs_err::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
}

//! Registry archives: downloaded once per workspace, verified by sha256 and size, extracted
//! safely into a content-addressed store, and installed into `custom_nodes` by hardlink or copy.
//!
//! ```text
//! cache/nodes/archives/<id>/<version>.zip          the download
//! cache/nodes/archives/<id>/<version>.zip.sha256   its hash when first downloaded (trust on first use)
//! cache/nodes/store/<sha256>/                      the extracted content (renamed into place when complete)
//! ```

use std::io::Read as _;
use std::path::{Component, Path, PathBuf};

use sha2::Digest as _;

use super::error::{ArchiveLimit, NodeError};
use super::registry::RegistryClient;
use comfydock_foundation::reporter::Reporter;

/// A verified archive in the cache.
#[derive(Debug, Clone)]
pub struct CachedArchive {
    pub path: PathBuf,
    pub sha256: String,
    pub size: u64,
    /// Downloaded by this call (false: it was already cached).
    pub downloaded: bool,
}

/// The workspace's node archive cache and store.
#[derive(Debug, Clone)]
pub struct ArchiveStore {
    root: PathBuf,
}

impl ArchiveStore {
    /// The store under `<workspace>/cache/nodes`.
    pub fn new(cache_dir: &Path) -> Self {
        Self {
            root: cache_dir.join("nodes"),
        }
    }

    /// Where the archive of `id@version` is cached; both must be plain names (they come from
    /// manifests and registry answers).
    pub fn archive_path(&self, id: &str, version: &str) -> Result<PathBuf, NodeError> {
        comfydock_foundation::path_part::check(version)?;
        let dir = comfydock_foundation::path_part::join(&self.root.join("archives"), id)?;
        Ok(comfydock_foundation::path_part::join(
            &dir,
            &format!("{version}.zip"),
        )?)
    }

    /// Where the content with this hash is extracted (`sha256` is computed here, never read).
    pub fn store_path(&self, sha256: &str) -> PathBuf {
        debug_assert!(sha256.bytes().all(|b| b.is_ascii_hexdigit()));
        self.root.join("store").join(sha256)
    }

    /// Whether `id@version` is in the cache (no verification).
    pub fn is_cached(&self, id: &str, version: &str) -> bool {
        self.archive_path(id, version).is_ok_and(|p| p.is_file())
    }

    /// The archive of `id@version`, downloaded from `url` if not cached. The file is checked
    /// against `expected` (from the manifest) or, failing that, the hash recorded when it was
    /// first downloaded. A download shows its bytes on `reporter`.
    pub fn fetch(
        &self,
        client: &RegistryClient,
        id: &str,
        version: &str,
        url: &str,
        expected: Option<(&str, Option<u64>)>,
        reporter: &dyn Reporter,
    ) -> Result<CachedArchive, NodeError> {
        let path = self.archive_path(id, version)?;
        let sidecar = sidecar_path(&path);
        let mut downloaded = false;
        if !path.is_file() {
            let dir = path.parent().expect("archive path has a parent");
            fs_err::create_dir_all(dir)?;
            let temp = tempfile::Builder::new()
                .prefix(".download-")
                .suffix(".zip")
                .tempfile_in(dir)?
                .into_temp_path();
            client.download(url, &temp, &format!("{id} {version}"), reporter)?;
            let (sha, size) = hash_file(&temp)?;
            if let Some((want, want_size)) = expected {
                check(&temp, want, want_size, &sha, size)?;
            }
            temp.persist(&path).map_err(|e| e.error)?;
            comfydock_foundation::atomic_file::write_atomic(&sidecar, format!("{sha}\n"))?;
            downloaded = true;
        }
        let (sha, size) = hash_file(&path)?;
        let recorded = fs_err::read_to_string(&sidecar).ok().map(|s| s.trim().to_owned());
        match expected {
            Some((want, want_size)) => check(&path, want, want_size, &sha, size)?,
            None => {
                if let Some(recorded) = recorded.filter(|r| !r.is_empty()) {
                    check(&path, &recorded, None, &sha, size)?;
                }
            }
        }
        Ok(CachedArchive {
            path,
            sha256: sha,
            size,
            downloaded,
        })
    }

    /// Extract a verified archive into the store (once per hash); returns the store folder.
    pub fn extract(&self, archive: &CachedArchive) -> Result<PathBuf, NodeError> {
        let target = self.store_path(&archive.sha256);
        if target.is_dir() {
            return Ok(target);
        }
        let parent = target.parent().expect("store path has a parent");
        fs_err::create_dir_all(parent)?;
        let staging = tempfile::Builder::new().prefix(".extract-").tempdir_in(parent)?;
        extract_zip(&archive.path, staging.path())?;
        match fs_err::rename(staging.path(), &target) {
            Ok(()) => {
                let _ = staging.keep();
            }
            // Another process extracted the same content first.
            Err(_) if target.is_dir() => {}
            Err(e) => return Err(e.into()),
        }
        Ok(target)
    }
}

fn sidecar_path(archive: &Path) -> PathBuf {
    let mut s = archive.as_os_str().to_owned();
    s.push(".sha256");
    PathBuf::from(s)
}

fn check(path: &Path, want: &str, want_size: Option<u64>, sha: &str, size: u64) -> Result<(), NodeError> {
    if !want.eq_ignore_ascii_case(sha) {
        return Err(NodeError::HashMismatch {
            path: path.to_path_buf(),
            expected: want.to_owned(),
            actual: sha.to_owned(),
        });
    }
    if let Some(want_size) = want_size
        && want_size != size
    {
        return Err(NodeError::SizeMismatch {
            path: path.to_path_buf(),
            expected: want_size,
            actual: size,
        });
    }
    Ok(())
}

/// sha256 (hex) and size of a file.
pub fn hash_file(path: &Path) -> std::io::Result<(String, u64)> {
    let mut file = fs_err::File::open(path)?;
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    Ok((hex::encode(hasher.finalize()), size))
}

/// Caps for extracting a node archive (a zip bomb is refused, not unpacked).
#[derive(Debug, Clone, Copy)]
pub struct ZipLimits {
    pub max_entries: usize,
    pub max_entry_bytes: u64,
    pub max_total_bytes: u64,
}

impl Default for ZipLimits {
    /// Real node packs hold at most a few thousand files (a bundled web frontend) and a few
    /// hundred MB (packs shipping small models); these caps leave ample room above that while
    /// bounding the disk and time a hostile archive can cost.
    fn default() -> Self {
        Self {
            max_entries: 50_000,
            max_entry_bytes: 2 * 1024 * 1024 * 1024,
            max_total_bytes: 4 * 1024 * 1024 * 1024,
        }
    }
}

/// Extract `archive` into the empty folder `dest` within [`ZipLimits::default`].
pub fn extract_zip(archive: &Path, dest: &Path) -> Result<(), NodeError> {
    extract_zip_within(archive, dest, ZipLimits::default())
}

/// Extract `archive` into the empty folder `dest`. Every entry is checked first: an entry with
/// `..`, an absolute path or a link, too many entries, or declared sizes over `limits` are
/// rejected before anything is written; the bytes actually inflated are capped as well (a
/// header may lie). Entries are streamed to disk, never held in memory.
pub fn extract_zip_within(archive: &Path, dest: &Path, limits: ZipLimits) -> Result<(), NodeError> {
    let bad = |source| NodeError::BadArchive {
        archive: archive.to_path_buf(),
        source,
    };
    let file = fs_err::File::open(archive)?;
    let mut zip = zip::ZipArchive::new(std::io::BufReader::new(file)).map_err(bad)?;
    let too_large = |what: String, limit: ArchiveLimit| NodeError::ArchiveTooLarge {
        archive: archive.to_path_buf(),
        what,
        limit,
    };
    if zip.len() > limits.max_entries {
        return Err(too_large(
            "the archive".into(),
            ArchiveLimit::Entries {
                found: zip.len(),
                limit: limits.max_entries,
            },
        ));
    }
    let mut declared_total = 0u64;
    let mut plan: Vec<(usize, PathBuf, bool)> = Vec::with_capacity(zip.len());
    for i in 0..zip.len() {
        let entry = zip.by_index_raw(i).map_err(bad)?;
        let name = entry.name().map_err(bad)?.into_owned();
        let unsafe_entry = |reason| NodeError::UnsafeArchive {
            archive: archive.to_path_buf(),
            entry: name.clone(),
            reason,
        };
        if entry.is_symlink() {
            return Err(unsafe_entry("is a symbolic link"));
        }
        let relative = safe_relative(&name).ok_or_else(|| {
            if name.starts_with('/') || name.starts_with('\\') || name.get(1..2) == Some(":") {
                unsafe_entry("has an absolute path")
            } else {
                unsafe_entry("leaves the extraction folder (`..`)")
            }
        })?;
        if entry.size() > limits.max_entry_bytes {
            return Err(too_large(
                format!("entry `{name}`"),
                ArchiveLimit::EntryBytes {
                    limit: limits.max_entry_bytes,
                },
            ));
        }
        declared_total = declared_total.saturating_add(entry.size());
        if declared_total > limits.max_total_bytes {
            return Err(too_large(
                format!("entry `{name}`"),
                ArchiveLimit::TotalBytes {
                    limit: limits.max_total_bytes,
                },
            ));
        }
        plan.push((i, relative, entry.is_dir()));
    }
    let mut written_total = 0u64;
    for (i, relative, is_dir) in plan {
        let target = dest.join(&relative);
        if is_dir {
            fs_err::create_dir_all(&target)?;
            continue;
        }
        if let Some(parent) = target.parent() {
            fs_err::create_dir_all(parent)?;
        }
        let mut entry = zip.by_index(i).map_err(bad)?;
        let name = relative.to_string_lossy().into_owned();
        let mut out = fs_err::File::create(&target)?;
        let entry_cap = limits.max_entry_bytes;
        let total_cap = limits.max_total_bytes.saturating_sub(written_total);
        let cap = entry_cap.min(total_cap);
        let written = std::io::copy(&mut (&mut entry).take(cap.saturating_add(1)), &mut out)?;
        if written > cap {
            // The header understated the size: the bytes themselves are over a limit.
            let limit = if entry_cap <= total_cap {
                ArchiveLimit::EntryBytes { limit: entry_cap }
            } else {
                ArchiveLimit::TotalBytes {
                    limit: limits.max_total_bytes,
                }
            };
            return Err(too_large(format!("entry `{name}`"), limit));
        }
        written_total += written;
        #[cfg(unix)]
        if let Some(mode) = entry.unix_mode() {
            use std::os::unix::fs::PermissionsExt as _;
            fs_err::set_permissions(&target, std::fs::Permissions::from_mode((mode & 0o755) | 0o644))?;
        }
    }
    Ok(())
}

/// A zip entry name as a relative path with only normal components.
fn safe_relative(name: &str) -> Option<PathBuf> {
    if name.is_empty() || name.starts_with('/') || name.starts_with('\\') || name.contains('\0') {
        return None;
    }
    let normalized = name.replace('\\', "/");
    let path = Path::new(&normalized);
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => out.push(part),
            Component::CurDir => {}
            _ => return None,
        }
    }
    if out.as_os_str().is_empty() || normalized.split('/').any(|p| p.contains(':')) {
        return None;
    }
    Some(out)
}

/// Extensions of files a node may rewrite in place (its settings); they are copied, never
/// hardlinked, so an edit cannot reach the shared store or other environments.
const COPIED_EXTENSIONS: &[&str] = &[
    "json", "ini", "yaml", "yml", "cfg", "toml", "conf", "txt", "csv", "db", "sqlite",
];

fn is_copied(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| COPIED_EXTENSIONS.iter().any(|c| c.eq_ignore_ascii_case(e)))
}

/// Populate `dest` (must not exist) from a store folder: code and assets are hardlinked (copied
/// across devices), settings-like files are copied.
pub fn install_tree(store: &Path, dest: &Path) -> std::io::Result<()> {
    fs_err::create_dir_all(dest)?;
    for entry in walkdir::WalkDir::new(store).min_depth(1) {
        let entry = entry.map_err(std::io::Error::other)?;
        let relative = entry.path().strip_prefix(store).expect("walk stays under store");
        let target = dest.join(relative);
        if entry.file_type().is_dir() {
            fs_err::create_dir_all(&target)?;
        } else if entry.file_type().is_file()
            && (is_copied(entry.path()) || fs_err::hard_link(entry.path(), &target).is_err())
        {
            fs_err::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::*;

    type Entries<'a> = &'a [(&'a str, Option<&'a str>)];

    #[test]
    fn zip_bombs_are_refused_by_a_named_limit() {
        let tight = ZipLimits {
            max_entries: 2,
            max_entry_bytes: 4,
            max_total_bytes: 8,
        };
        let roomy_entries = ZipLimits {
            max_entry_bytes: 6,
            ..tight
        };
        // (entries, limits, expected limit, expected message)
        let cases: [(Entries<'_>, ZipLimits, ArchiveLimit, &str); 3] = [
            (
                &[("a", None), ("b", None), ("c", None)],
                tight,
                ArchiveLimit::Entries { found: 3, limit: 2 },
                "the archive holds 3 entries, more than the limit of 2",
            ),
            (
                &[("a.py", None)],
                tight,
                ArchiveLimit::EntryBytes { limit: 4 },
                "entry `a.py` unpacks to more than the limit of 4 B for one file",
            ),
            (
                &[("a", None), ("b", None)],
                roomy_entries,
                ArchiveLimit::TotalBytes { limit: 8 },
                "entry `b` makes the archive unpack to more than the limit of 8 B in total",
            ),
        ];
        for (entries, limits, expected, message) in cases {
            let zip = zip_with(entries);
            let dest = tempfile::tempdir().unwrap();
            let err = extract_zip_within(zip.path(), dest.path(), limits).unwrap_err();
            assert!(
                matches!(&err, NodeError::ArchiveTooLarge { archive, limit, .. } if *limit == expected && archive == zip.path()),
                "{err:?}"
            );
            assert!(err.to_string().contains(message), "{err}");
            assert!(comfydock_foundation::Hinted::hint(&err).is_some());
            assert_eq!(
                fs_err::read_dir(dest.path()).unwrap().count(),
                0,
                "something was written"
            );
        }
        let zip = zip_with(&[("a", None)]);
        let dest = tempfile::tempdir().unwrap();
        extract_zip_within(zip.path(), dest.path(), roomy_entries).unwrap();
        assert_eq!(fs_err::read(dest.path().join("a")).unwrap(), b"x = 1\n");
    }

    #[test]
    fn a_header_understating_the_size_stops_inflating_at_the_declared_size() {
        let file = tempfile::NamedTempFile::new().unwrap();
        let mut w = zip::ZipWriter::new(file.reopen().unwrap());
        let opts =
            zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        w.start_file("bomb.bin", opts).unwrap();
        w.write_all(&[0u8; 4096]).unwrap();
        w.finish().unwrap();
        // Rewrite the declared uncompressed size (local and central headers) to 2 bytes.
        let mut bytes = fs_err::read(file.path()).unwrap();
        for (signature, offset) in [(b"PK\x03\x04", 22), (b"PK\x01\x02", 24)] {
            let at = bytes.windows(4).position(|w| w == signature).unwrap();
            bytes[at + offset..at + offset + 4].copy_from_slice(&2u32.to_le_bytes());
        }
        fs_err::write(file.path(), &bytes).unwrap();
        let limits = ZipLimits {
            max_entries: 10,
            max_entry_bytes: 100,
            max_total_bytes: 1000,
        };
        let dest = tempfile::tempdir().unwrap();
        let err = extract_zip_within(file.path(), dest.path(), limits).unwrap_err();
        // The zip reader itself stops at the declared size (our own cap is the second guard).
        assert!(
            matches!(&err, NodeError::Io(e) if e.kind() == std::io::ErrorKind::InvalidData),
            "{err:?}"
        );
        assert!(fs_err::metadata(dest.path().join("bomb.bin")).unwrap().len() <= 2);
    }

    fn zip_with(entries: &[(&str, Option<&str>)]) -> tempfile::NamedTempFile {
        let file = tempfile::NamedTempFile::new().unwrap();
        let mut w = zip::ZipWriter::new(file.reopen().unwrap());
        let opts = zip::write::SimpleFileOptions::default();
        for (name, link) in entries {
            if let Some(target) = link {
                w.add_symlink(*name, *target, opts).unwrap();
            } else {
                w.start_file(*name, opts).unwrap();
                w.write_all(b"x = 1\n").unwrap();
            }
        }
        w.finish().unwrap();
        file
    }

    #[test]
    fn archive_paths_refuse_unsafe_ids_and_versions() {
        let dir = tempfile::tempdir().unwrap();
        let store = ArchiveStore::new(dir.path());
        assert_eq!(
            store.archive_path("my-node", "1.0.0").unwrap(),
            dir.path().join("nodes/archives/my-node/1.0.0.zip")
        );
        for (id, version) in [
            ("../../../../x", "1.0.0"),
            ("my-node", "../../x"),
            ("my-node", "a/b"),
            ("", "1.0.0"),
            ("/abs", "1"),
            ("ok", ".."),
        ] {
            let err = store.archive_path(id, version).unwrap_err();
            assert!(matches!(err, NodeError::UnsafeName(_)), "{id}@{version}: {err}");
            assert!(!store.is_cached(id, version));
        }
    }

    #[test]
    fn safe_paths() {
        assert_eq!(safe_relative("a/b.py"), Some(PathBuf::from("a/b.py")));
        assert_eq!(safe_relative("./a"), Some(PathBuf::from("a")));
        for bad in ["../x", "a/../../x", "/etc/passwd", "\\x", "C:/x", "a/../..", ""] {
            assert_eq!(safe_relative(bad), None, "{bad}");
        }
    }

    #[test]
    fn rejects_traversal_absolute_and_links_writing_nothing() {
        for entries in [
            vec![("ok.py", None), ("../escape.py", None)],
            vec![("ok.py", None), ("/tmp/abs.py", None)],
            vec![("ok.py", None), ("link", Some("../../etc/passwd"))],
        ] {
            let zip = zip_with(&entries);
            let dest = tempfile::tempdir().unwrap();
            let err = extract_zip(zip.path(), dest.path()).unwrap_err();
            assert!(matches!(err, NodeError::UnsafeArchive { .. }), "{err}");
            assert_eq!(fs_err::read_dir(dest.path()).unwrap().count(), 0);
        }
        let zip = zip_with(&[("pkg/ok.py", None), ("__init__.py", None)]);
        let dest = tempfile::tempdir().unwrap();
        extract_zip(zip.path(), dest.path()).unwrap();
        assert!(dest.path().join("pkg/ok.py").is_file());
        fs_err::write(dest.path().join("pkg/config.json"), "{}").unwrap();
        let installed = dest.path().join("installed");
        install_tree(dest.path().join("pkg").as_path(), &installed).unwrap();
        assert!(installed.join("ok.py").is_file());
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt as _;
            let inode = |p: &Path| fs_err::metadata(p).unwrap().ino();
            assert_eq!(
                inode(&installed.join("ok.py")),
                inode(&dest.path().join("pkg/ok.py"))
            );
            assert_ne!(
                inode(&installed.join("config.json")),
                inode(&dest.path().join("pkg/config.json")),
                "settings files are copies"
            );
        }
    }
}

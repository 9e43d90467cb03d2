//! The `.tar.gz` container: a deterministic writer and a validating reader.
//!
//! Writing: entries sorted by path after `manifest.json`, regular files only, fixed mtime,
//! uid/gid 0, no owner names, mode 0644 (0755 when executable), and a gzip header without
//! file name or time — the same input gives the same bytes.
//!
//! Reading: every entry is checked before its bytes are written anywhere, into a fresh temporary
//! folder outside the workspace: only regular files and folders, relative UTF-8 paths without
//! `..`, no duplicates, caps on the entry count, on the size of the entries `import` loads into
//! memory (metadata and workflows) and on the total unpacked size — all checked against each header
//! before reading, so a decompression bomb is refused without inflating it. Entry bytes are streamed
//! to disk (hashed on the way) and never held in memory whole.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use sha2::Digest as _;

use super::BundleError;
use super::format::{FORMAT_VERSION, FileDigest, MANIFEST_NAME};

/// One file to put into a bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleEntry {
    pub content: EntryContent,
    pub executable: bool,
}

/// Where an entry's bytes come from: small metadata is held in memory, files (workflows, dev
/// node sources of any size) are streamed from disk when hashed and again when written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryContent {
    Bytes(Vec<u8>),
    /// A file of `size` bytes (its size when the environment was walked; a file that changes
    /// before it is written is refused by [`write`]).
    File {
        path: PathBuf,
        size: u64,
    },
}

impl BundleEntry {
    /// A non-executable entry held in memory.
    pub fn file(data: Vec<u8>) -> Self {
        Self {
            content: EntryContent::Bytes(data),
            executable: false,
        }
    }

    /// An entry streamed from the file at `path`, `size` bytes long.
    pub fn on_disk(path: PathBuf, size: u64, executable: bool) -> Self {
        Self {
            content: EntryContent::File { path, size },
            executable,
        }
    }

    /// Bytes this entry holds.
    pub fn size(&self) -> u64 {
        match &self.content {
            EntryContent::Bytes(data) => data.len() as u64,
            EntryContent::File { size, .. } => *size,
        }
    }

    /// sha256 and size of the entry's bytes, read through a fixed buffer.
    pub fn digest(&self) -> std::io::Result<FileDigest> {
        match &self.content {
            EntryContent::Bytes(data) => Ok(digest(data)),
            EntryContent::File { path, size } => {
                let mut hashing = HashingReader::new(open_exact(path, *size)?);
                std::io::copy(&mut hashing, &mut std::io::sink())?;
                hashing.finish(path, *size)
            }
        }
    }
}

/// sha256 and size of some bytes.
pub fn digest(data: &[u8]) -> FileDigest {
    FileDigest {
        sha256: hex::encode(sha2::Sha256::digest(data)),
        size: data.len() as u64,
    }
}

/// Read buffer for entries streamed from disk: large reads keep syscalls few, and memory stays
/// fixed whatever the file size.
const STREAM_BUFFER: usize = 256 * 1024;

/// The file at `path`, read at most `size` bytes (one more, to notice a file that grew).
fn open_exact(path: &Path, size: u64) -> std::io::Result<impl Read> {
    let file = fs_err::File::open(path)?;
    Ok(std::io::BufReader::with_capacity(STREAM_BUFFER, file).take(size.saturating_add(1)))
}

/// A reader that hashes and counts what passes through it.
struct HashingReader<R> {
    inner: R,
    hasher: sha2::Sha256,
    count: u64,
}

impl<R: Read> HashingReader<R> {
    fn new(inner: R) -> Self {
        Self {
            inner,
            hasher: sha2::Sha256::new(),
            count: 0,
        }
    }

    /// The digest of what was read; an error naming `path` unless exactly `size` bytes were.
    fn finish(self, path: &Path, size: u64) -> std::io::Result<FileDigest> {
        if self.count != size {
            return Err(changed_while_exporting(path));
        }
        Ok(FileDigest {
            sha256: hex::encode(self.hasher.finalize()),
            size,
        })
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

fn changed_while_exporting(path: &Path) -> std::io::Error {
    std::io::Error::other(format!(
        "`{}` changed while it was being exported; export again",
        path.display()
    ))
}

/// Write `manifest` then `entries` (sorted by path) as a deterministic `.tar.gz` to `out`.
///
/// Entries on disk are streamed through a fixed buffer, hashed on the way; when `expected` is
/// given, an entry whose bytes no longer match its digest there (the file changed since it was
/// hashed) fails the write, so a bundle never contradicts its manifest.
pub fn write(
    out: impl Write,
    manifest: &[u8],
    entries: &BTreeMap<String, BundleEntry>,
    expected: Option<&BTreeMap<String, FileDigest>>,
    mtime: u64,
) -> std::io::Result<()> {
    let gz = flate2::GzBuilder::new()
        .mtime(0)
        .write(out, flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    tar.mode(tar::HeaderMode::Deterministic);
    let mut append = |path: &str, entry: &BundleEntry| -> std::io::Result<()> {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_size(entry.size());
        header.set_mode(if entry.executable { 0o755 } else { 0o644 });
        header.set_mtime(mtime);
        header.set_uid(0);
        header.set_gid(0);
        header.set_username("")?;
        header.set_groupname("")?;
        match &entry.content {
            EntryContent::Bytes(data) => tar.append_data(&mut header, path, data.as_slice()),
            EntryContent::File { path: file, size } => {
                // At most `size` bytes reach the archive (the header promises that many); a
                // shorter or longer file, or other bytes than hashed, is refused below.
                let mut hashing = HashingReader::new(open_exact(file, *size)?);
                tar.append_data(&mut header, path, (&mut hashing).take(*size))?;
                // One byte more shows a file that grew.
                let mut extra = [0u8; 1];
                if hashing.read(&mut extra)? != 0 {
                    return Err(changed_while_exporting(file));
                }
                let written = hashing.finish(file, *size)?;
                if expected.is_some_and(|digests| digests.get(path) != Some(&written)) {
                    return Err(changed_while_exporting(file));
                }
                Ok(())
            }
        }
    };
    append(MANIFEST_NAME, &BundleEntry::file(manifest.to_vec()))?;
    for (path, entry) in entries {
        append(path, entry)?;
    }
    let gz = tar.into_inner()?;
    gz.finish()?.flush()
}

/// Caps applied while reading a bundle.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Entries of any kind (folders included).
    pub max_entries: usize,
    /// Bytes of all files together.
    pub max_total_bytes: u64,
    /// Bytes of each file `import` reads whole: `manifest.json`, `pyproject.toml`, `uv.lock`,
    /// `.python-version`.
    pub max_metadata_bytes: u64,
    /// Bytes of each `workflows/` file (one is parsed at a time when model paths are rewritten).
    pub max_workflow_bytes: u64,
}

/// Files `import` reads into memory whole; capped by [`Limits::max_metadata_bytes`].
const METADATA_FILES: [&str; 4] = [MANIFEST_NAME, "pyproject.toml", "uv.lock", ".python-version"];

impl Default for Limits {
    /// An exported environment has a few hundred workflows and a few dev nodes (export caps each
    /// at 200 MB); 20,000 entries leaves room for large dev nodes while an import of that many
    /// files stays in seconds. A big lock is about 1 MB; the largest real workflows (embedded
    /// images) are tens of MB.
    fn default() -> Self {
        Self {
            max_entries: 20_000,
            max_total_bytes: 4 * 1024 * 1024 * 1024,
            max_metadata_bytes: 16 * 1024 * 1024,
            max_workflow_bytes: 128 * 1024 * 1024,
        }
    }
}

impl Limits {
    /// The cap on one file at `path` (a clean bundle path), beyond the total.
    pub(crate) fn per_entry(&self, path: &str) -> Option<u64> {
        if METADATA_FILES.contains(&path) {
            Some(self.max_metadata_bytes)
        } else if path.starts_with("workflows/") {
            Some(self.max_workflow_bytes)
        } else {
            None
        }
    }
}

/// A bundle unpacked into a temporary folder, every entry checked.
#[derive(Debug)]
pub struct Unpacked {
    /// Where the files are; removed when this value is dropped.
    pub dir: tempfile::TempDir,
    /// Every file: path → digest (including `manifest.json` when present).
    pub files: BTreeMap<String, FileDigest>,
}

impl Unpacked {
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn read(&self, name: &str) -> std::io::Result<Vec<u8>> {
        fs_err::read(self.path(name))
    }

    /// Files under `prefix/` (relative to it), sorted.
    pub fn under(&self, prefix: &str) -> Vec<String> {
        let prefix = format!("{prefix}/");
        self.files
            .keys()
            .filter_map(|k| k.strip_prefix(&prefix).map(str::to_owned))
            .collect()
    }
}

/// Unpack and check the container of `bundle` (entry types, paths, caps). Checksums and the
/// format version are checked by [`verify_manifest`].
pub fn read(bundle: &Path, limits: Limits) -> Result<Unpacked, BundleError> {
    let invalid = |reason: String| BundleError::Invalid {
        path: bundle.to_path_buf(),
        reason,
    };
    let read_err = |source| BundleError::Read {
        path: bundle.to_path_buf(),
        source,
    };
    let file = fs_err::File::open(bundle).map_err(read_err)?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(std::io::BufReader::new(file)));
    let dir = tempfile::Builder::new()
        .prefix("comfydock-import-")
        .tempdir()
        .map_err(read_err)?;
    let mut files = BTreeMap::new();
    let mut count = 0usize;
    let mut total = 0u64;
    let entries = archive
        .entries()
        .map_err(|e| invalid(format!("not a gzip-compressed tar archive ({e})")))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| invalid(format!("corrupt archive ({e})")))?;
        count += 1;
        if count > limits.max_entries {
            return Err(BundleError::TooManyEntries {
                path: bundle.to_path_buf(),
                limit: limits.max_entries,
            });
        }
        let raw = entry.path_bytes().into_owned();
        let name = String::from_utf8(raw).map_err(|_| invalid("an entry path is not UTF-8".into()))?;
        let kind = entry.header().entry_type();
        let clean = check_path(&name).map_err(|reason| invalid(format!("entry `{name}`: {reason}")))?;
        match kind {
            tar::EntryType::Directory => {
                fs_err::create_dir_all(dir.path().join(&clean)).map_err(read_err)?;
                continue;
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {}
            tar::EntryType::Symlink => return Err(invalid(format!("entry `{name}` is a symbolic link"))),
            tar::EntryType::Link => return Err(invalid(format!("entry `{name}` is a hard link"))),
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                return Err(invalid(format!("entry `{name}` is a device or pipe")));
            }
            other => {
                return Err(invalid(format!(
                    "entry `{name}` has unsupported type {:?}",
                    other.as_byte() as char
                )));
            }
        }
        let size = entry
            .header()
            .size()
            .map_err(|e| invalid(format!("entry `{name}`: {e}")))?;
        if let Some(limit) = limits.per_entry(&clean)
            && size > limit
        {
            return Err(BundleError::EntryTooLarge {
                path: bundle.to_path_buf(),
                entry: clean,
                size,
                limit,
            });
        }
        total = total.saturating_add(size);
        if total > limits.max_total_bytes {
            return Err(invalid(format!(
                "unpacks to more than {} bytes (a decompression bomb?)",
                limits.max_total_bytes
            )));
        }
        if files.contains_key(&clean) {
            return Err(invalid(format!("entry `{name}` appears twice")));
        }
        let dest = dir.path().join(&clean);
        if let Some(parent) = dest.parent() {
            fs_err::create_dir_all(parent).map_err(read_err)?;
        }
        let out = fs_err::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&dest)
            .map_err(|e| invalid(format!("entry `{name}` collides with another entry ({e})")))?;
        // Streamed through a fixed buffer: hashed and written, never held whole.
        let mut hasher = sha2::Sha256::new();
        let mut written = 0u64;
        let mut buf = vec![0u8; 64 * 1024];
        let mut limited = (&mut entry).take(size);
        let mut out = std::io::BufWriter::with_capacity(256 * 1024, out);
        loop {
            let n = limited
                .read(&mut buf)
                .map_err(|e| invalid(format!("entry `{name}` is truncated ({e})")))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            out.write_all(&buf[..n]).map_err(read_err)?;
            written += n as u64;
        }
        out.flush().map_err(read_err)?;
        if written != size {
            return Err(invalid(format!("entry `{name}` is truncated")));
        }
        files.insert(
            clean,
            FileDigest {
                sha256: hex::encode(hasher.finalize()),
                size,
            },
        );
    }
    Ok(Unpacked { dir, files })
}

/// A safe relative path (`a/b.json`), or why not. `export` applies the same rule.
pub fn check_path(name: &str) -> Result<String, String> {
    let trimmed = name.trim_end_matches('/');
    if trimmed.is_empty() {
        return Err("empty path".into());
    }
    if trimmed.starts_with('/') || trimmed.contains('\\') || trimmed.contains(':') {
        return Err("absolute or non-portable path".into());
    }
    let mut parts = Vec::new();
    for part in trimmed.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err("path leaves the bundle (`..`)".into()),
            p if p.chars().any(char::is_control) => return Err("control character in path".into()),
            p => parts.push(p),
        }
    }
    if parts.is_empty() {
        return Err("empty path".into());
    }
    Ok(parts.join("/"))
}

/// Check `manifest.json` against the unpacked files: format version, every listed file present
/// with its sha256, nothing unlisted. Returns the manifest.
pub fn verify_manifest(
    bundle: &Path,
    unpacked: &Unpacked,
) -> Result<super::format::BundleManifest, BundleError> {
    let invalid = |reason: String| BundleError::Invalid {
        path: bundle.to_path_buf(),
        reason,
    };
    let text = unpacked
        .read(MANIFEST_NAME)
        .map_err(|_| invalid(format!("missing {MANIFEST_NAME}")))?;
    let value: serde_json::Value =
        serde_json::from_slice(&text).map_err(|e| invalid(format!("{MANIFEST_NAME} is not JSON ({e})")))?;
    let found = value
        .get("format_version")
        .and_then(serde_json::Value::as_u64)
        .ok_or_else(|| invalid(format!("{MANIFEST_NAME} has no format_version")))?;
    if found > u64::from(FORMAT_VERSION) {
        return Err(BundleError::NewerFormat {
            path: bundle.to_path_buf(),
            found: u32::try_from(found).unwrap_or(u32::MAX),
            supported: FORMAT_VERSION,
        });
    }
    let manifest: super::format::BundleManifest =
        serde_json::from_value(value).map_err(|e| invalid(format!("{MANIFEST_NAME} is malformed ({e})")))?;
    for (name, expected) in &manifest.files {
        match unpacked.files.get(name) {
            None => {
                return Err(invalid(format!(
                    "missing file `{name}` listed in {MANIFEST_NAME}"
                )));
            }
            Some(actual) if actual != expected => {
                return Err(invalid(format!(
                    "checksum mismatch for `{name}`: expected sha256 {}, found {}",
                    expected.sha256, actual.sha256
                )));
            }
            Some(_) => {}
        }
    }
    for name in unpacked.files.keys() {
        if name != MANIFEST_NAME && !manifest.files.contains_key(name) {
            return Err(invalid(format!("file `{name}` is not listed in {MANIFEST_NAME}")));
        }
    }
    for required in ["pyproject.toml", "uv.lock"] {
        if !manifest.files.contains_key(required) {
            return Err(invalid(format!("missing {required}")));
        }
    }
    Ok(manifest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_confined() {
        assert_eq!(check_path("workflows/a.json").unwrap(), "workflows/a.json");
        assert_eq!(check_path("./dev_nodes/x/").unwrap(), "dev_nodes/x");
        for bad in ["../x", "/etc/passwd", "a/../../b", "c:\\x", "", "a\\b"] {
            assert!(check_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn writing_is_deterministic_and_reads_back() {
        let mut entries = BTreeMap::new();
        entries.insert("b.txt".to_owned(), BundleEntry::file(b"bee".to_vec()));
        entries.insert(
            "a/run.sh".to_owned(),
            BundleEntry {
                content: EntryContent::Bytes(b"#!/bin/sh\n".to_vec()),
                executable: true,
            },
        );
        let mut one = Vec::new();
        write(&mut one, b"{}", &entries, None, 1_700_000_000).unwrap();
        let mut two = Vec::new();
        write(&mut two, b"{}", &entries, None, 1_700_000_000).unwrap();
        assert_eq!(one, two);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.tar.gz");
        fs_err::write(&path, &one).unwrap();
        let unpacked = read(&path, Limits::default()).unwrap();
        assert_eq!(
            unpacked.files.keys().collect::<Vec<_>>(),
            ["a/run.sh", "b.txt", "manifest.json"]
        );
        assert_eq!(unpacked.read("b.txt").unwrap(), b"bee");
        assert_eq!(unpacked.files["b.txt"], digest(b"bee"));
    }

    /// Pseudo-random bytes (xorshift), so the stream does not compress to nothing.
    fn noise(len: usize, mut state: u64) -> Vec<u8> {
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state.to_le_bytes()[0]
            })
            .collect()
    }

    /// Entries streamed from disk make exactly the bytes the same entries held in memory make,
    /// with the same digests; a file larger than the read buffer crosses many reads.
    #[test]
    fn entries_streamed_from_disk_write_the_same_bundle_as_in_memory() {
        let dir = tempfile::tempdir().unwrap();
        let big = noise(3 * STREAM_BUFFER + 12_345, 0x9e37_79b9_7f4a_7c15);
        let small = b"print('hi')\n".to_vec();
        fs_err::write(dir.path().join("big.bin"), &big).unwrap();
        fs_err::write(dir.path().join("run.py"), &small).unwrap();
        fs_err::write(dir.path().join("empty"), b"").unwrap();
        let on_disk: BTreeMap<String, BundleEntry> = [
            ("dev_nodes/n/big.bin", "big.bin", big.len(), false),
            ("dev_nodes/n/run.py", "run.py", small.len(), true),
            ("workflows/empty.json", "empty", 0, false),
        ]
        .into_iter()
        .map(|(name, file, size, executable)| {
            (
                name.to_owned(),
                BundleEntry::on_disk(dir.path().join(file), size as u64, executable),
            )
        })
        .collect();
        let in_memory: BTreeMap<String, BundleEntry> = [
            ("dev_nodes/n/big.bin", big.clone(), false),
            ("dev_nodes/n/run.py", small.clone(), true),
            ("workflows/empty.json", Vec::new(), false),
        ]
        .into_iter()
        .map(|(name, data, executable)| {
            (
                name.to_owned(),
                BundleEntry {
                    content: EntryContent::Bytes(data),
                    executable,
                },
            )
        })
        .collect();
        let digests: BTreeMap<String, FileDigest> = on_disk
            .iter()
            .map(|(name, entry)| (name.clone(), entry.digest().unwrap()))
            .collect();
        assert_eq!(digests["dev_nodes/n/big.bin"], digest(&big));
        assert_eq!(digests["dev_nodes/n/run.py"], digest(&small));
        assert_eq!(digests["workflows/empty.json"], digest(b""));

        let mut streamed = Vec::new();
        write(&mut streamed, b"{}", &on_disk, Some(&digests), 1_700_000_000).unwrap();
        let mut held = Vec::new();
        write(&mut held, b"{}", &in_memory, None, 1_700_000_000).unwrap();
        assert!(streamed == held, "streamed and in-memory bundles differ");

        let path = dir.path().join("b.tar.gz");
        fs_err::write(&path, &streamed).unwrap();
        let unpacked = read(&path, Limits::default()).unwrap();
        assert!(unpacked.read("dev_nodes/n/big.bin").unwrap() == big);
        for (name, expected) in &digests {
            assert_eq!(&unpacked.files[name], expected, "{name}");
        }
    }

    /// A file that changed between hashing and writing (other bytes, shorter, longer) fails the
    /// write instead of making a bundle that contradicts its manifest.
    #[test]
    fn a_file_changed_after_hashing_fails_the_write() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("weights.bin");
        let original = noise(100_000, 7);
        fs_err::write(&file, &original).unwrap();
        let mut entries = BTreeMap::new();
        entries.insert(
            "dev_nodes/n/weights.bin".to_owned(),
            BundleEntry::on_disk(file.clone(), original.len() as u64, false),
        );
        let digests: BTreeMap<String, FileDigest> = entries
            .iter()
            .map(|(name, entry)| (name.clone(), entry.digest().unwrap()))
            .collect();
        let mut same_size = original.clone();
        same_size[50_000] ^= 0xff;
        let mut longer = original.clone();
        longer.push(0);
        for changed in [same_size, original[..99_999].to_vec(), longer] {
            fs_err::write(&file, &changed).unwrap();
            let err = write(Vec::new(), b"{}", &entries, Some(&digests), 0).unwrap_err();
            assert!(
                err.to_string().contains("changed while it was being exported"),
                "{err}"
            );
            if changed.len() != original.len() {
                let err = entries["dev_nodes/n/weights.bin"].digest().unwrap_err();
                assert!(
                    err.to_string().contains("changed while it was being exported"),
                    "{err}"
                );
            }
        }
        fs_err::write(&file, &original).unwrap();
        write(Vec::new(), b"{}", &entries, Some(&digests), 0).unwrap();
    }

    #[test]
    fn entry_count_cap() {
        let mut entries = BTreeMap::new();
        for i in 0..20 {
            entries.insert(format!("f{i}"), BundleEntry::file(Vec::new()));
        }
        let mut bytes = Vec::new();
        write(&mut bytes, b"{}", &entries, None, 0).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.tar.gz");
        fs_err::write(&path, &bytes).unwrap();
        let err = read(
            &path,
            Limits {
                max_entries: 10,
                ..Limits::default()
            },
        )
        .unwrap_err();
        assert!(
            matches!(err, BundleError::TooManyEntries { limit: 10, .. }),
            "{err:?}"
        );
        let err = read(
            &path,
            Limits {
                max_total_bytes: 1,
                ..Limits::default()
            },
        )
        .unwrap_err();
        assert!(format!("{err:?}").contains("decompression bomb"), "{err:?}");
    }
}

//! Full-content hashing of model files.
//!
//! A model's identity is the blake3 of its whole content. Large files are memory-mapped and
//! hashed on several threads (`blake3::Hasher::update_mmap_rayon`); where mapping is impossible
//! (pipes, some network file systems) the file is streamed instead. sha256 is only needed for
//! registry look-ups (Civitai publishes it), so it is computed on demand — and when both are
//! needed, one read feeds both hashers.

use std::io::Read;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use sha2::Digest as _;

/// Read size for streamed hashing; large enough for `update_rayon` to split across threads.
const STREAM_CHUNK: usize = 4 * 1024 * 1024;

/// Files up to this size are read whole instead of memory-mapped.
const SMALL_FILE: u64 = 256 * 1024;

/// Which digests to compute in one read of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashKinds {
    /// Only the blake3 identity (memory-mapped, multi-threaded).
    Blake3,
    /// blake3 and sha256 in a single streamed read.
    Blake3AndSha256,
}

/// The digests of one file, lower-case hex.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileDigest {
    pub blake3: String,
    pub sha256: Option<String>,
    /// Number of bytes hashed (the file's size at hashing time).
    pub size: u64,
}

/// Hashing a file failed.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("Cannot read `{path}`")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl HashError {
    /// The file the error concerns.
    pub fn path(&self) -> &Path {
        match self {
            Self::Read { path, .. } => path,
        }
    }
}

impl comfydock_foundation::Hinted for HashError {}

/// Hash one file. Opening the file first gives a clear error for unreadable files.
pub fn hash_file(path: &Path, set: HashKinds) -> Result<FileDigest, HashError> {
    hash_file_of_size(path, set, None)
}

/// [`hash_file`] of a file whose size the caller has just seen (a scan's walk), which saves
/// asking for it again; the file is read to its end whatever its size now.
pub fn hash_file_of_size(path: &Path, set: HashKinds, size: Option<u64>) -> Result<FileDigest, HashError> {
    let read_error = |source| HashError::Read {
        path: path.to_owned(),
        source,
    };
    let mut file = fs_err::File::open(path).map_err(read_error)?;
    match set {
        HashKinds::Blake3 => {
            // A small file is read whole through this handle: one open and one read, where
            // mapping would open it again.
            let size = match size {
                Some(size) => Some(size),
                None => file.metadata().ok().map(|metadata| metadata.len()),
            };
            if let Some(size) = size.filter(|size| *size <= SMALL_FILE) {
                let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0) + 1);
                // Read at most one byte past the limit: a file that has grown since is mapped.
                (&mut file)
                    .take(SMALL_FILE + 1)
                    .read_to_end(&mut bytes)
                    .map_err(read_error)?;
                if bytes.len() as u64 <= SMALL_FILE {
                    return Ok(FileDigest {
                        blake3: blake3::hash(&bytes).to_hex().to_string(),
                        sha256: None,
                        size: bytes.len() as u64,
                    });
                }
                file = fs_err::File::open(path).map_err(read_error)?;
            }
            let mut hasher = blake3::Hasher::new();
            match hasher.update_mmap_rayon(path) {
                Ok(_) => Ok(FileDigest {
                    blake3: hasher.finalize().to_hex().to_string(),
                    sha256: None,
                    size: hasher.count(),
                }),
                // Mapping (or the mapped read) failed: stream from the handle we already hold.
                Err(_) => hash_reader(file, set).map_err(read_error),
            }
        }
        HashKinds::Blake3AndSha256 => hash_reader(file, set).map_err(read_error),
    }
}

/// Hash everything `reader` yields by streaming it in large chunks.
///
/// blake3 uses several threads per chunk; with sha256 both hashers run side by side.
pub fn hash_reader(mut reader: impl Read, set: HashKinds) -> std::io::Result<FileDigest> {
    let mut blake = blake3::Hasher::new();
    let mut sha = (set == HashKinds::Blake3AndSha256).then(sha2::Sha256::new);
    let mut buffer = vec![0_u8; STREAM_CHUNK];
    loop {
        let filled = read_full(&mut reader, &mut buffer)?;
        if filled == 0 {
            break;
        }
        let chunk = &buffer[..filled];
        match sha.as_mut() {
            Some(sha) => {
                rayon::join(|| sha.update(chunk), || blake.update_rayon(chunk));
            }
            None => {
                blake.update_rayon(chunk);
            }
        }
        if filled < buffer.len() {
            break;
        }
    }
    Ok(FileDigest {
        blake3: blake.finalize().to_hex().to_string(),
        sha256: sha.map(|sha| hex::encode(sha.finalize())),
        size: blake.count(),
    })
}

/// Fill `buffer` as far as the reader allows; returns the bytes read (short only at EOF).
fn read_full(reader: &mut impl Read, buffer: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match reader.read(&mut buffer[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    Ok(filled)
}

/// Hash many files in parallel; results come back in the order of `paths`.
pub fn hash_files(paths: &[PathBuf], set: HashKinds) -> Vec<Result<FileDigest, HashError>> {
    paths.par_iter().map(|path| hash_file(path, set)).collect()
}

/// Incremental hashing of a byte stream (downloads): blake3 always, sha256 too.
#[derive(Debug, Clone, Default)]
pub struct StreamingDigest {
    blake3: blake3::Hasher,
    sha256: sha2::Sha256,
}

impl StreamingDigest {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn update(&mut self, bytes: &[u8]) {
        self.blake3.update(bytes);
        self.sha256.update(bytes);
    }

    /// Bytes fed so far.
    pub fn count(&self) -> u64 {
        self.blake3.count()
    }

    pub fn finish(self) -> FileDigest {
        FileDigest {
            blake3: self.blake3.finalize().to_hex().to_string(),
            sha256: Some(hex::encode(self.sha256.finalize())),
            size: self.blake3.count(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| u8::try_from(i * 31 % 251).unwrap()).collect()
    }

    #[test]
    fn files_around_the_small_file_limit_hash_like_their_bytes() {
        let dir = tempfile::tempdir().unwrap();
        for len in [0, 1, 1_025, 256 * 1024, 256 * 1024 + 1] {
            let path = dir.path().join(format!("{len}.safetensors"));
            let data = pattern(len);
            fs_err::write(&path, &data).unwrap();
            let digest = hash_file(&path, HashKinds::Blake3).unwrap();
            assert_eq!(
                digest.blake3,
                blake3::hash(&data).to_hex().to_string(),
                "{len} bytes"
            );
            assert_eq!(digest.size, len as u64);
        }
    }

    /// A size seen before the file changed (it grew past the small-file limit, or shrank) only
    /// picks how the file is read: the digest is always of its bytes now.
    #[test]
    fn a_stale_size_still_hashes_the_whole_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("growing.safetensors");
        for (seen, len) in [
            (10, 256 * 1024 + 1),
            (10, 3 * 1024 * 1024),
            (300 * 1024, 10),
            (5, 5),
        ] {
            let data = pattern(len);
            fs_err::write(&path, &data).unwrap();
            let digest = hash_file_of_size(&path, HashKinds::Blake3, Some(seen)).unwrap();
            assert_eq!(
                digest.blake3,
                blake3::hash(&data).to_hex().to_string(),
                "{len} bytes, {seen} seen"
            );
            assert_eq!(digest.size, len as u64);
        }
    }

    #[test]
    fn mapped_and_streamed_hashes_agree_for_large_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.safetensors");
        let data = pattern(STREAM_CHUNK * 2 + 12_345);
        fs_err::write(&path, &data).unwrap();

        let mapped = hash_file(&path, HashKinds::Blake3).unwrap();
        let streamed = hash_reader(&data[..], HashKinds::Blake3).unwrap();
        let both = hash_file(&path, HashKinds::Blake3AndSha256).unwrap();

        let expected = blake3::hash(&data).to_hex().to_string();
        assert_eq!(mapped.blake3, expected);
        assert_eq!(streamed.blake3, expected);
        assert_eq!(both.blake3, expected);
        assert_eq!(mapped.size, data.len() as u64);
        assert_eq!(both.size, data.len() as u64);
        assert_eq!(mapped.sha256, None);
        assert_eq!(both.sha256.unwrap(), hex::encode(sha2::Sha256::digest(&data)));
    }

    #[test]
    fn sha256_of_known_input() {
        let digest = hash_reader(&b"abc"[..], HashKinds::Blake3AndSha256).unwrap();
        assert_eq!(
            digest.sha256.as_deref(),
            Some("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        );
        let empty = hash_reader(&b""[..], HashKinds::Blake3AndSha256).unwrap();
        assert_eq!(empty.sha256.as_deref(), Some(EMPTY_SHA256));
        assert_eq!(empty.size, 0);
    }

    #[test]
    fn streaming_digest_matches_file_hash() {
        let data = pattern(100_000);
        let mut streaming = StreamingDigest::new();
        for chunk in data.chunks(7_000) {
            streaming.update(chunk);
        }
        assert_eq!(streaming.count(), 100_000);
        let whole = hash_reader(&data[..], HashKinds::Blake3AndSha256).unwrap();
        assert_eq!(streaming.finish(), whole);
    }

    #[test]
    fn missing_file_names_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nope.safetensors");
        let err = hash_file(&path, HashKinds::Blake3).unwrap_err();
        assert_eq!(err.path(), path);
    }

    #[test]
    fn many_files_hash_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let paths: Vec<PathBuf> = (0..8)
            .map(|i| {
                let path = dir.path().join(format!("{i}.pt"));
                fs_err::write(&path, pattern(1000 * (i + 1))).unwrap();
                path
            })
            .collect();
        let results = hash_files(&paths, HashKinds::Blake3);
        for (i, result) in results.into_iter().enumerate() {
            let expected = blake3::hash(&pattern(1000 * (i + 1))).to_hex().to_string();
            assert_eq!(result.unwrap().blake3, expected);
        }
    }
}

//! Building zip archives in memory for wheels and registry node packs, including deliberately
//! malicious entries (`../` paths, absolute paths, symlinks) for extraction-safety tests.

use std::io::{Cursor, Write};

use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipWriter};

/// One entry of a zip archive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ZipEntry {
    /// A regular file; the name is written exactly as given (even `../x` or `/abs`).
    File {
        /// Entry name inside the archive.
        name: String,
        /// File contents.
        bytes: Vec<u8>,
    },
    /// A directory entry (`name` should end with `/`).
    Dir {
        /// Entry name inside the archive.
        name: String,
    },
    /// A symbolic link entry pointing at `target`.
    Symlink {
        /// Entry name inside the archive.
        name: String,
        /// Link target as stored.
        target: String,
    },
}

impl ZipEntry {
    /// A regular file entry.
    pub fn file(name: impl Into<String>, bytes: impl Into<Vec<u8>>) -> Self {
        ZipEntry::File {
            name: name.into(),
            bytes: bytes.into(),
        }
    }
}

/// Builds a deflated zip with a fixed timestamp, so the same entries always give the same bytes.
pub fn build_zip(entries: &[ZipEntry]) -> Vec<u8> {
    let mut writer = ZipWriter::new(Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .last_modified_time(DateTime::DEFAULT)
        .unix_permissions(0o644);
    for entry in entries {
        match entry {
            ZipEntry::File { name, bytes } => {
                writer
                    .start_file(name, options)
                    .expect("start a zip entry in memory");
                writer.write_all(bytes).expect("write a zip entry in memory");
            }
            ZipEntry::Dir { name } => {
                writer
                    .add_directory(name, options.unix_permissions(0o755))
                    .expect("add a zip directory");
            }
            ZipEntry::Symlink { name, target } => {
                writer
                    .add_symlink(name, target, options.unix_permissions(0o777))
                    .expect("add a zip symlink in memory");
            }
        }
    }
    writer.finish().expect("finish a zip in memory").into_inner()
}

/// Lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zip_keeps_malicious_names_and_symlinks_as_written() {
        let bytes = build_zip(&[
            ZipEntry::file("ok.py", "x = 1\n"),
            ZipEntry::file("../evil.py", "bad"),
            ZipEntry::file("/abs/evil.py", "bad"),
            ZipEntry::Symlink {
                name: "link".into(),
                target: "../../etc/passwd".into(),
            },
        ]);
        let mut archive = zip::ZipArchive::new(Cursor::new(bytes.clone())).unwrap();
        let names: Vec<String> = (0..archive.len())
            .map(|i| archive.by_index(i).unwrap().name().unwrap().into_owned())
            .collect();
        assert_eq!(names, ["ok.py", "../evil.py", "/abs/evil.py", "link"]);
        assert!(archive.by_name("link").unwrap().is_symlink());
        // Deterministic: same input, same bytes.
        assert_eq!(
            bytes,
            build_zip(&[
                ZipEntry::file("ok.py", "x = 1\n"),
                ZipEntry::file("../evil.py", "bad"),
                ZipEntry::file("/abs/evil.py", "bad"),
                ZipEntry::Symlink {
                    name: "link".into(),
                    target: "../../etc/passwd".into()
                },
            ])
        );
    }
}

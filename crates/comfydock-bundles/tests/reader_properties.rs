//! Property tests for the bundle reader (issue 18): whatever bytes a `.tar.gz` holds — random, or
//! a well-formed bundle with hostile entries and random damage — reading, verifying and opening
//! it returns a value or an error, never panics, and never writes outside its own temporary folder.
//!
//! `PROPTEST_CASES=20000 cargo nextest run -p comfydock-bundles -E 'binary(reader_properties)'` for a
//! longer run; the default keeps CI short.

use std::io::Write as _;
use std::path::Path;

use comfydock_bundles::archive::{self, Limits};
use comfydock_bundles::import;
use proptest::prelude::*;

/// Marks every escape attempt, so a file written outside the unpack folder is found.
const MARKER: &str = "comfydock-proptest-escaped";

/// Entry names: ordinary ones, the names the importer reads, and escape attempts.
fn entry_name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("manifest.json".to_owned()),
        Just("pyproject.toml".to_owned()),
        Just("uv.lock".to_owned()),
        Just(".python-version".to_owned()),
        Just("workflows/a.json".to_owned()),
        Just("dev_nodes/n/__init__.py".to_owned()),
        Just(format!("../{MARKER}")),
        Just(format!("../../{MARKER}")),
        Just(format!("workflows/../../{MARKER}")),
        Just(format!("/tmp/{MARKER}")),
        Just(format!("C:\\{MARKER}")),
        Just(format!("./{MARKER}/")),
        "[a-z./\\\\:é\u{0}-\u{1f}]{0,24}",
    ]
}

#[derive(Debug, Clone)]
enum Kind {
    File(Vec<u8>),
    Dir,
    Symlink(String),
    HardLink(String),
    Fifo,
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        4 => proptest::collection::vec(any::<u8>(), 0..64).prop_map(Kind::File),
        1 => Just(Kind::Dir),
        1 => entry_name().prop_map(Kind::Symlink),
        1 => entry_name().prop_map(Kind::HardLink),
        1 => Just(Kind::Fifo),
    ]
}

/// A manifest listing some files with right or wrong digests, or a damaged one.
fn manifest_text() -> impl Strategy<Value = Vec<u8>> {
    let digest = prop_oneof![
        Just(serde_json::json!({"sha256": "0".repeat(64), "size": 0})),
        Just(
            serde_json::json!({"sha256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "size": 0})
        ),
        Just(serde_json::json!({"sha256": "é", "size": -1})),
    ];
    let files = proptest::collection::btree_map(entry_name(), digest, 0..5);
    (files, any::<u32>(), any::<bool>()).prop_map(|(files, version, good)| {
        let value = serde_json::json!({
            "format_version": if good { 1 } else { version },
            "comfydock_version": "0.1.0", "created_at": "2026-01-01T00:00:00Z",
            "environment_name": "p", "platform": "linux-x86_64", "python": "3.12",
            "comfyui": {"reference": "v0.3.40", "commit": "0".repeat(40)},
            "torch_backend": "cpu", "torch_backends": ["cpu"], "cec_commit": "0".repeat(40),
            "counts": {"workflows": 0, "registry_nodes": 0, "git_nodes": 0, "dev_nodes": 0, "models": 0},
            "models": [], "files": files,
        });
        serde_json::to_vec(&value).unwrap()
    })
}

/// A tar stream of `entries` (headers written by hand, so any name and type goes in).
fn tar_bytes(entries: &[(String, Kind)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (name, kind) in entries {
        let mut header = tar::Header::new_gnu();
        let (data, entry_type, link): (&[u8], _, Option<&str>) = match kind {
            Kind::File(data) => (data, tar::EntryType::Regular, None),
            Kind::Dir => (&[], tar::EntryType::Directory, None),
            Kind::Symlink(target) => (&[], tar::EntryType::Symlink, Some(target)),
            Kind::HardLink(target) => (&[], tar::EntryType::Link, Some(target)),
            Kind::Fifo => (&[], tar::EntryType::Fifo, None),
        };
        header.set_entry_type(entry_type);
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        // Raw name bytes: `append_data` would refuse `..` and absolute paths itself.
        let raw = name.as_bytes();
        let field = &mut header.as_old_mut().name;
        let n = raw.len().min(field.len());
        field[..n].copy_from_slice(&raw[..n]);
        if let Some(target) = link {
            let _ = header.set_link_name(target);
        }
        header.set_cksum();
        builder.append(&header, data).unwrap();
    }
    builder.into_inner().unwrap()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

/// Random damage: (position, new byte).
fn damage(bytes: &mut [u8], edits: &[(prop::sample::Index, u8)]) {
    if bytes.is_empty() {
        return;
    }
    for (at, byte) in edits {
        bytes[at.index(bytes.len())] = *byte;
    }
}

/// Reads, verifies and opens `bytes` as a bundle; checks what was unpacked.
fn read_everything(bytes: &[u8]) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("b.tar.gz");
    fs_err::write(&path, bytes).unwrap();
    let small = Limits {
        max_entries: 64,
        max_total_bytes: 1 << 20,
        max_metadata_bytes: 1 << 16,
        max_workflow_bytes: 1 << 16,
    };
    if let Ok(unpacked) = archive::read(&path, small) {
        for name in unpacked.files.keys() {
            assert_eq!(archive::check_path(name).as_deref(), Ok(name.as_str()));
            let file = unpacked.path(name);
            assert!(file.starts_with(unpacked.dir.path()));
            let meta = fs_err::symlink_metadata(&file).unwrap();
            assert!(meta.is_file(), "{name} is not a regular file");
        }
        let _ = archive::verify_manifest(&path, &unpacked);
    }
    let _ = import::open(&path, small);
    assert_nothing_escaped(dir.path());
}

fn assert_nothing_escaped(work: &Path) {
    for place in [
        std::env::temp_dir(),
        work.to_path_buf(),
        std::env::current_dir().unwrap(),
    ] {
        for entry in fs_err::read_dir(&place).unwrap().flatten() {
            assert!(
                !entry.file_name().to_string_lossy().contains(MARKER),
                "an entry escaped to {}",
                entry.path().display()
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: ProptestConfig::default().cases.max(300), ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048), gzipped in any::<bool>()) {
        let bytes = if gzipped { gzip(&bytes) } else { bytes };
        read_everything(&bytes);
    }

    #[test]
    fn hostile_and_damaged_bundles_never_panic_or_escape(
        entries in proptest::collection::vec((entry_name(), kind()), 0..8),
        manifest in manifest_text(),
        tar_edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
        gz_edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..2),
    ) {
        let mut all = vec![("manifest.json".to_owned(), Kind::File(manifest))];
        all.extend(entries);
        let mut tar = tar_bytes(&all);
        damage(&mut tar, &tar_edits);
        let mut gz = gzip(&tar);
        // Damage after the 10-byte gzip header, so the stream is still recognised as gzip.
        if gz.len() > 10 {
            damage(&mut gz[10..], &gz_edits);
        }
        read_everything(&gz);
    }
}

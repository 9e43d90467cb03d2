//! list / find / show / duplicates / verify / sha256 on a real index.

use std::path::PathBuf;

use comfydock_foundation::reporter::NoReporter;
use comfydock_models::index::ModelIndex;
use comfydock_models::query::{FindQuery, LookupError, ModelId, VerifyStatus};
use comfydock_models::roots::ModelRoot;
use comfydock_models::scan::ScanOptions;
use sha2::Digest as _;

struct Fixture {
    _dir: tempfile::TempDir,
    models: PathBuf,
    index: ModelIndex,
}

fn fixture(files: &[(&str, &[u8])]) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let models = dir.path().join("models");
    for (relative, content) in files {
        let path = models.join(relative);
        fs_err::create_dir_all(path.parent().unwrap()).unwrap();
        fs_err::write(&path, content).unwrap();
    }
    let mut index = ModelIndex::open(&dir.path().join("index.db")).unwrap();
    let summary = index
        .scan(
            &[ModelRoot::standard(&models)],
            ScanOptions::default(),
            &NoReporter,
        )
        .unwrap();
    assert!(summary.errors.is_empty());
    Fixture {
        _dir: dir,
        models,
        index,
    }
}

fn b3(content: &[u8]) -> String {
    blake3::hash(content).to_hex().to_string()
}

#[test]
fn parse_model_ids() {
    assert_eq!(ModelId::parse("ABCDEF12"), ModelId::HashPrefix("abcdef12".into()));
    assert_eq!(
        ModelId::parse("blake3:abcdef1234"),
        ModelId::HashPrefix("abcdef1234".into())
    );
    assert_eq!(ModelId::parse("abcdef1"), ModelId::Path("abcdef1".into()));
    assert_eq!(
        ModelId::parse("loras/abcdef12"),
        ModelId::Path("loras/abcdef12".into())
    );
}

#[test]
fn list_find_and_show() {
    let fx = fixture(&[
        ("checkpoints/SDXL_base.safetensors", b"sdxl"),
        ("unet/flux-dev.gguf", b"flux"),
        ("loras/detail.safetensors", b"detail"),
    ]);
    assert_eq!(fx.index.list().unwrap().len(), 3);

    let by_text = fx
        .index
        .find(&FindQuery {
            text: Some("sdxl".into()),
            folder: None,
        })
        .unwrap();
    assert_eq!(by_text.len(), 1);
    assert_eq!(by_text[0].blake3, b3(b"sdxl"));

    let by_legacy_folder = fx
        .index
        .find(&FindQuery {
            text: None,
            folder: Some("unet".into()),
        })
        .unwrap();
    assert_eq!(by_legacy_folder.len(), 1);
    assert_eq!(by_legacy_folder[0].blake3, b3(b"flux"));

    let prefix = &b3(b"detail")[..10];
    let shown = fx.index.resolve(&ModelId::parse(prefix)).unwrap();
    assert_eq!(shown.blake3, b3(b"detail"));
    let by_path = fx
        .index
        .resolve(&ModelId::Path(fx.models.join("loras/detail.safetensors")))
        .unwrap();
    assert_eq!(by_path.blake3, b3(b"detail"));
    assert!(matches!(
        fx.index.resolve(&ModelId::parse("00000000000")),
        Err(LookupError::NotFound(_))
    ));
    assert!(matches!(
        fx.index
            .resolve(&ModelId::Path(fx.models.join("nope.safetensors"))),
        Err(LookupError::NotFound(_))
    ));
}

#[test]
fn duplicates_by_content_and_by_name() {
    let fx = fixture(&[
        ("checkpoints/a.safetensors", b"same"),
        ("checkpoints/copy-of-a.safetensors", b"same"),
        ("loras/model.safetensors", b"one"),
        ("vae/model.safetensors", b"two"),
    ]);
    let report = fx.index.duplicates().unwrap();
    assert_eq!(report.same_content.len(), 1);
    assert_eq!(report.same_content[0].blake3, b3(b"same"));
    assert_eq!(report.same_content[0].locations.len(), 2);
    assert_eq!(report.same_name.len(), 1);
    assert_eq!(report.same_name[0].file_name, "model.safetensors");
    assert_eq!(report.same_name[0].models.len(), 2);
}

#[test]
fn verify_reports_drift_and_missing_files() {
    let fx = fixture(&[
        ("checkpoints/ok.safetensors", b"fine"),
        ("checkpoints/rot.safetensors", b"original"),
        ("checkpoints/gone.safetensors", b"gone"),
    ]);
    assert!(fx.index.verify(&fx.index.list().unwrap()).is_clean());

    fs_err::write(fx.models.join("checkpoints/rot.safetensors"), b"bitrot!!").unwrap();
    fs_err::remove_file(fx.models.join("checkpoints/gone.safetensors")).unwrap();
    let report = fx.index.verify(&fx.index.list().unwrap());
    assert!(!report.is_clean());
    let status_of = |name: &str| {
        report
            .entries
            .iter()
            .find(|e| e.path.ends_with(name))
            .unwrap()
            .status
            .clone()
    };
    assert_eq!(status_of("ok.safetensors"), VerifyStatus::Ok);
    assert_eq!(status_of("gone.safetensors"), VerifyStatus::Missing);
    assert_eq!(
        status_of("rot.safetensors"),
        VerifyStatus::Changed {
            actual_blake3: b3(b"bitrot!!"),
            actual_size: 8
        }
    );
    assert_eq!(report.bytes_read, 4 + 8);

    let one = fx.index.resolve(&ModelId::parse(&b3(b"fine"))).unwrap();
    let single = fx.index.verify(&[one]);
    assert_eq!(single.entries.len(), 1);
}

#[test]
fn sha256_on_demand_is_stored_and_not_recomputed() {
    let mut fx = fixture(&[
        ("checkpoints/a.safetensors", b"alpha"),
        ("checkpoints/b.safetensors", b"bravo"),
    ]);
    let report = fx.index.ensure_sha256(&fx.index.list().unwrap()).unwrap();
    assert_eq!(report.hashes.len(), 2);
    assert_eq!(report.bytes_read, 10);
    let a = fx.index.resolve(&ModelId::parse(&b3(b"alpha"))).unwrap();
    let expected = hex::encode(sha2::Sha256::digest(b"alpha"));
    assert_eq!(a.sha256.as_deref(), Some(expected.as_str()));
    // Look-up by sha256 prefix works too.
    let by_sha = fx.index.resolve(&ModelId::parse(&expected[..12])).unwrap();
    assert_eq!(by_sha.blake3, a.blake3);

    let again = fx.index.ensure_sha256(&fx.index.list().unwrap()).unwrap();
    assert_eq!(again.bytes_read, 0);
    assert_eq!(again.hashes.len(), 2);
}

#[test]
fn sha256_refuses_drifted_content() {
    let mut fx = fixture(&[("checkpoints/a.safetensors", b"alpha")]);
    fs_err::write(fx.models.join("checkpoints/a.safetensors"), b"other").unwrap();
    let report = fx.index.ensure_sha256(&fx.index.list().unwrap()).unwrap();
    assert!(report.hashes.is_empty());
    assert_eq!(report.errors.len(), 1);
    assert!(report.errors[0].message.contains("changed since it was indexed"));
    let a = fx.index.resolve(&ModelId::parse(&b3(b"alpha"))).unwrap();
    assert_eq!(a.sha256, None);
}

/// `list` and `find` read the index in one pass; each record must equal the one `show` loads
/// row by row: every location (not only the matching one), sources, sha256.
#[test]
fn streamed_records_equal_the_ones_loaded_one_by_one() {
    let mut fx = fixture(&[
        ("checkpoints/SDXL_base.safetensors", b"sdxl"),
        ("loras/copy_of_base.safetensors", b"sdxl"),
        ("unet/flux-dev.gguf", b"flux"),
        ("loras/Ärger.safetensors", b"unicode"),
        ("loras/detail.safetensors", b"detail"),
        ("loras/odd_50%.safetensors", b"percent"),
    ]);
    let sdxl = fx.index.resolve(&ModelId::parse(&b3(b"sdxl"))).unwrap();
    let detail = fx.index.resolve(&ModelId::parse(&b3(b"detail"))).unwrap();
    fx.index
        .add_source(
            sdxl.id,
            "https://x.test/b",
            comfydock_models::index::SourceKind::Url,
        )
        .unwrap();
    fx.index
        .add_source(
            sdxl.id,
            "https://x.test/a",
            comfydock_models::index::SourceKind::Url,
        )
        .unwrap();
    fx.index
        .add_source(
            detail.id,
            "https://x.test/d",
            comfydock_models::index::SourceKind::Url,
        )
        .unwrap();
    fx.index.ensure_sha256(std::slice::from_ref(&detail)).unwrap();

    let one_by_one: Vec<_> = fx
        .index
        .model_ids()
        .unwrap()
        .into_iter()
        .map(|id| fx.index.model(id).unwrap().unwrap())
        .collect();
    assert_eq!(fx.index.list().unwrap(), one_by_one);
    let listed = fx.index.list().unwrap();
    let sdxl = listed.iter().find(|m| m.blake3 == b3(b"sdxl")).unwrap();
    assert_eq!(sdxl.locations.len(), 2);
    assert_eq!(sdxl.sources.len(), 2);
    assert!(
        listed
            .iter()
            .find(|m| m.blake3 == b3(b"detail"))
            .unwrap()
            .sha256
            .is_some()
    );

    let find = |text: Option<&str>, folder: Option<&str>| -> Vec<String> {
        fx.index
            .find(&FindQuery {
                text: text.map(str::to_owned),
                folder: folder.map(str::to_owned),
            })
            .unwrap()
            .into_iter()
            .map(|model| {
                assert_eq!(Some(&model), one_by_one.iter().find(|m| m.id == model.id));
                model.blake3
            })
            .collect()
    };
    // A match on one location returns the model with all its locations and sources.
    assert_eq!(find(Some("COPY_of"), None), [b3(b"sdxl")]);
    assert_eq!(find(Some("base"), Some("loras")), [b3(b"sdxl")]);
    assert_eq!(find(Some("base"), Some("vae")), Vec::<String>::new());
    assert_eq!(find(None, Some("unet")), [b3(b"flux")]);
    // Unicode lower case, as before the filter moved into SQL.
    assert_eq!(find(Some("äRGER"), None), [b3(b"unicode")]);
    assert_eq!(find(Some("no such model"), None), Vec::<String>::new());
    // `%` and `_` are plain characters, not patterns.
    assert_eq!(find(Some("%"), None), [b3(b"percent")]);
    assert_eq!(find(Some("d_5"), None), [b3(b"percent")]);
    assert_eq!(find(Some("l_r"), None), Vec::<String>::new());

    // A visitor that stops gets no further model.
    let mut seen = 0;
    let visited = fx
        .index
        .visit_models(None, |_| {
            seen += 1;
            std::ops::ControlFlow::Break(())
        })
        .unwrap();
    assert_eq!((seen, visited), (1, 1));
}

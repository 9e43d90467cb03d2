//! Scanning real files in temporary folders into a real SQLite index.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use comfydock_foundation::reporter::NoReporter;
use comfydock_models::index::{ModelIndex, ModelRecord, SourceKind};
use comfydock_models::roots::ModelRoot;
use comfydock_models::scan::{ScanIssue, ScanOptions, ScanReporter, ScanSummary};

struct Fixture {
    _dir: tempfile::TempDir,
    models: PathBuf,
    db: PathBuf,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let models = dir.path().join("models");
        fs_err::create_dir_all(&models).unwrap();
        let db = dir.path().join(".metadata/model_index.db");
        Self {
            _dir: dir,
            models,
            db,
        }
    }

    fn write(&self, relative: &str, content: &[u8]) -> PathBuf {
        let path = self.models.join(relative);
        fs_err::create_dir_all(path.parent().unwrap()).unwrap();
        fs_err::write(&path, content).unwrap();
        path
    }

    fn scan(&self, index: &mut ModelIndex) -> ScanSummary {
        index
            .scan(
                &[ModelRoot::standard(&self.models)],
                ScanOptions::default(),
                &NoReporter,
            )
            .unwrap()
    }
}

fn all_models(index: &ModelIndex) -> Vec<ModelRecord> {
    index
        .model_ids()
        .unwrap()
        .into_iter()
        .map(|id| index.model(id).unwrap().unwrap())
        .collect()
}

fn model_by_content(index: &ModelIndex, content: &[u8]) -> ModelRecord {
    let blake3 = blake3::hash(content).to_hex().to_string();
    let id = index
        .model_id_by_blake3(&blake3)
        .unwrap()
        .expect("model is indexed");
    index.model(id).unwrap().unwrap()
}

fn set_mtime(path: &Path, time: SystemTime) {
    let file = fs_err::OpenOptions::new().write(true).open(path).unwrap();
    file.file().set_modified(time).unwrap();
}

#[test]
fn indexes_model_files_with_folders_and_skips_the_rest() {
    let fx = Fixture::new();
    fx.write("checkpoints/sd15.safetensors", b"checkpoint bytes");
    fx.write("unet/flux.gguf", b"gguf bytes");
    fx.write("clip/t5.safetensors", b"t5 bytes");
    fx.write("loras/sub/style.pt", b"lora bytes");
    fx.write("top.ckpt", b"top level");
    fx.write("checkpoints/empty.safetensors", b"");
    fx.write("checkpoints/readme.txt", b"not a model");
    fx.write("checkpoints/half.safetensors.part", b"partial download");
    fx.write(".cache/hidden.safetensors", b"hidden");

    let mut index = ModelIndex::open(&fx.db).unwrap();
    let summary = fx.scan(&mut index);
    assert_eq!(summary.files_seen, 5, "{summary:?}");
    assert_eq!(summary.files_hashed, 5);
    assert_eq!(summary.files_skipped, 3, "empty, txt and .part are skipped");
    assert_eq!(summary.models_added, 5);
    assert!(summary.errors.is_empty(), "{:?}", summary.errors);
    let expected_bytes: usize = [16, 10, 8, 10, 9].iter().sum();
    assert_eq!(summary.bytes_read, expected_bytes as u64);

    let folder_of = |content: &[u8]| model_by_content(&index, content).locations[0].folder.clone();
    assert_eq!(folder_of(b"checkpoint bytes").as_deref(), Some("checkpoints"));
    assert_eq!(folder_of(b"gguf bytes").as_deref(), Some("diffusion_models"));
    assert_eq!(folder_of(b"t5 bytes").as_deref(), Some("text_encoders"));
    assert_eq!(folder_of(b"lora bytes").as_deref(), Some("loras"));
    assert_eq!(folder_of(b"top level"), None);
    let lora = model_by_content(&index, b"lora bytes");
    assert_eq!(lora.locations[0].relative_path, "loras/sub/style.pt");
    assert_eq!(lora.size, 10);
    assert_eq!(lora.sha256, None, "sha256 is computed on demand only");
}

#[test]
fn rescan_of_unchanged_tree_reads_nothing_and_touch_rehashes_one_file() {
    let fx = Fixture::new();
    let paths: Vec<PathBuf> = (0..20)
        .map(|i| fx.write(&format!("loras/l{i}.safetensors"), format!("lora {i}").as_bytes()))
        .collect();
    let mut index = ModelIndex::open(&fx.db).unwrap();
    let first = fx.scan(&mut index);
    assert_eq!(first.files_hashed, 20);

    let second = fx.scan(&mut index);
    assert_eq!(second.bytes_read, 0, "{second:?}");
    assert_eq!(second.files_hashed, 0);
    assert_eq!(second.files_unchanged, 20);
    assert!(second.locations_removed.is_empty());

    // Same content, new mtime: read again (only this one), same model.
    set_mtime(&paths[3], SystemTime::now() + Duration::from_mins(1));
    let third = fx.scan(&mut index);
    assert_eq!(third.files_hashed, 1, "{third:?}");
    assert_eq!(third.files_unchanged, 19);
    assert_eq!(third.bytes_read, "lora 3".len() as u64);
    assert_eq!(third.models_added, 0);

    // New content in place: new model, location moves to it.
    fs_err::write(&paths[4], b"changed lora 4").unwrap();
    let fourth = fx.scan(&mut index);
    assert_eq!(fourth.files_hashed, 1);
    assert_eq!(fourth.models_added, 1);
    let changed = model_by_content(&index, b"changed lora 4");
    assert_eq!(changed.locations[0].relative_path, "loras/l4.safetensors");
    let old = model_by_content(&index, b"lora 4");
    assert!(
        old.locations.is_empty(),
        "the old content has no location any more"
    );
}

#[test]
fn deleted_file_loses_location_but_keeps_hashes_and_sources() {
    let fx = Fixture::new();
    let gone = fx.write("vae/gone.safetensors", b"vae content");
    fx.write("vae/stays.safetensors", b"other vae");
    let mut index = ModelIndex::open(&fx.db).unwrap();
    index
        .scan(
            &[ModelRoot::standard(&fx.models)],
            ScanOptions { compute_sha256: true },
            &NoReporter,
        )
        .unwrap();
    let model = model_by_content(&index, b"vae content");
    index
        .add_source(model.id, "https://example.test/vae.safetensors", SourceKind::Url)
        .unwrap();

    fs_err::remove_file(&gone).unwrap();
    let summary = fx.scan(&mut index);
    assert_eq!(summary.locations_removed, vec![gone]);
    let after = model_by_content(&index, b"vae content");
    assert!(after.locations.is_empty());
    assert_eq!(after.blake3, model.blake3);
    assert_eq!(after.sha256, model.sha256);
    assert!(after.sha256.is_some());
    assert_eq!(after.sources.len(), 1);
    assert_eq!(model_by_content(&index, b"other vae").locations.len(), 1);
}

#[cfg(unix)]
#[test]
fn symlinked_model_is_indexed_once_with_both_locations() {
    let fx = Fixture::new();
    let real = fx.write("checkpoints/real.safetensors", b"shared weights");
    fs_err::create_dir_all(fx.models.join("loras")).unwrap();
    std::os::unix::fs::symlink(&real, fx.models.join("loras/link.safetensors")).unwrap();
    // A directory loop must not hang the scan or be reported.
    std::os::unix::fs::symlink(&fx.models, fx.models.join("checkpoints/loop")).unwrap();

    let mut index = ModelIndex::open(&fx.db).unwrap();
    let summary = fx.scan(&mut index);
    assert!(summary.errors.is_empty(), "{:?}", summary.errors);
    assert_eq!(summary.files_hashed, 1, "{summary:?}");
    assert_eq!(summary.bytes_read, b"shared weights".len() as u64);
    let models = all_models(&index);
    assert_eq!(models.len(), 1);
    let paths: Vec<&str> = models[0]
        .locations
        .iter()
        .map(|l| l.relative_path.as_str())
        .collect();
    assert_eq!(paths, ["checkpoints/real.safetensors", "loras/link.safetensors"]);
    assert_eq!(models[0].locations[1].folder.as_deref(), Some("loras"));

    // A new link to an already indexed file is recorded without reading it.
    std::os::unix::fs::symlink(&real, fx.models.join("loras/second.safetensors")).unwrap();
    let again = fx.scan(&mut index);
    assert_eq!(again.bytes_read, 0, "{again:?}");
    assert_eq!(all_models(&index)[0].locations.len(), 3);
}

#[cfg(unix)]
#[test]
fn unreadable_file_is_reported_and_the_scan_goes_on() {
    use std::os::unix::fs::PermissionsExt as _;
    let fx = Fixture::new();
    fx.write("checkpoints/good.safetensors", b"good");
    std::os::unix::fs::symlink(
        fx.models.join("nowhere.safetensors"),
        fx.models.join("checkpoints/dangling.safetensors"),
    )
    .unwrap();
    let locked = fx.write("checkpoints/locked.safetensors", b"locked");
    fs_err::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).unwrap();
    // root can read a 0o000 file; find out what this process can do.
    let locked_readable = fs_err::File::open(&locked).is_ok();

    let mut index = ModelIndex::open(&fx.db).unwrap();
    let summary = fx.scan(&mut index);
    let reported: Vec<&Path> = summary.errors.iter().map(|e| e.path.as_path()).collect();
    assert!(
        reported.contains(&fx.models.join("checkpoints/dangling.safetensors").as_path()),
        "{summary:?}"
    );
    assert!(model_by_content(&index, b"good").locations.len() == 1);
    if locked_readable {
        assert_eq!(model_by_content(&index, b"locked").locations.len(), 1);
        assert_eq!(summary.errors.len(), 1);
    } else {
        assert!(reported.contains(&locked.as_path()), "{summary:?}");
        assert_eq!(summary.errors.len(), 2);
    }
}

#[test]
fn missing_root_is_reported_and_keeps_its_locations() {
    let fx = Fixture::new();
    fx.write("checkpoints/a.safetensors", b"aaa");
    let mut index = ModelIndex::open(&fx.db).unwrap();
    fx.scan(&mut index);
    let moved = fx.models.with_file_name("models-unmounted");
    fs_err::rename(&fx.models, &moved).unwrap();
    let summary = fx.scan(&mut index);
    assert_eq!(summary.errors.len(), 1);
    assert_eq!(summary.errors[0].path, fx.models);
    assert!(summary.locations_removed.is_empty());
    assert_eq!(model_by_content(&index, b"aaa").locations.len(), 1);
}

#[test]
fn mapped_root_uses_folder_keys_from_the_mapping() {
    let fx = Fixture::new();
    let a1111 = fx.models.join("a1111");
    fs_err::create_dir_all(a1111.join("models/Stable-diffusion")).unwrap();
    fs_err::create_dir_all(a1111.join("models/Lora")).unwrap();
    fs_err::write(a1111.join("models/Stable-diffusion/base.safetensors"), b"base").unwrap();
    fs_err::write(a1111.join("models/Lora/x.safetensors"), b"lora x").unwrap();
    fs_err::write(a1111.join("unrelated.safetensors"), b"outside mapping").unwrap();
    let mut root = ModelRoot::standard(&a1111);
    root.folders
        .insert("checkpoints".into(), vec!["models/Stable-diffusion".into()]);
    root.folders.insert(
        "loras".into(),
        vec!["models/Lora".into(), "models/LyCORIS".into()],
    );

    let mut index = ModelIndex::open(&fx.db).unwrap();
    let summary = index.scan(&[root], ScanOptions::default(), &NoReporter).unwrap();
    assert_eq!(summary.files_seen, 2, "{summary:?}");
    assert!(summary.errors.is_empty());
    let base = model_by_content(&index, b"base");
    assert_eq!(base.locations[0].folder.as_deref(), Some("checkpoints"));
    assert_eq!(
        base.locations[0].relative_path,
        "models/Stable-diffusion/base.safetensors"
    );
    assert_eq!(base.locations[0].root, a1111);
    let lora = model_by_content(&index, b"lora x");
    assert_eq!(lora.locations[0].folder.as_deref(), Some("loras"));
}

#[derive(Default)]
struct Events {
    started: Mutex<Vec<(u64, u64)>>,
    hashed: Mutex<Vec<(PathBuf, u64)>>,
    issues: Mutex<Vec<ScanIssue>>,
}

impl ScanReporter for Events {
    fn hashing_started(&self, files: u64, bytes: u64) {
        self.started.lock().unwrap().push((files, bytes));
    }
    fn file_hashed(&self, path: &Path, bytes: u64) {
        self.hashed.lock().unwrap().push((path.to_owned(), bytes));
    }
    fn issue(&self, issue: &ScanIssue) {
        self.issues.lock().unwrap().push(issue.clone());
    }
}

#[test]
fn progress_events_report_files_and_bytes() {
    let fx = Fixture::new();
    fx.write("checkpoints/a.safetensors", &[1; 1000]);
    fx.write("loras/b.safetensors", &[2; 500]);
    let events = Events::default();
    let mut index = ModelIndex::open(&fx.db).unwrap();
    index
        .scan(
            &[ModelRoot::standard(&fx.models)],
            ScanOptions::default(),
            &events,
        )
        .unwrap();
    assert_eq!(*events.started.lock().unwrap(), [(2, 1500)]);
    let mut hashed = events.hashed.lock().unwrap().clone();
    hashed.sort();
    assert_eq!(
        hashed,
        [
            (fx.models.join("checkpoints/a.safetensors"), 1000),
            (fx.models.join("loras/b.safetensors"), 500)
        ]
    );
    assert!(events.issues.lock().unwrap().is_empty());
}

#[test]
fn forgetting_a_root_drops_its_locations_only() {
    let fx = Fixture::new();
    fx.write("checkpoints/a.safetensors", b"in the removed root");
    let mut index = ModelIndex::open(&fx.db).unwrap();
    fx.scan(&mut index);
    let model = model_by_content(&index, b"in the removed root");
    index
        .add_source(model.id, "https://example.test/a", SourceKind::Url)
        .unwrap();
    assert_eq!(index.forget_root(&ModelRoot::standard(&fx.models)).unwrap(), 1);
    let after = model_by_content(&index, b"in the removed root");
    assert!(after.locations.is_empty());
    assert_eq!(after.sources.len(), 1);
}

/// Bytes this process has passed to `write`-like calls so far (`wchar` of `/proc/self/io`).
#[cfg(target_os = "linux")]
fn bytes_written_by_this_process() -> u64 {
    let io = fs_err::read_to_string("/proc/self/io").unwrap();
    io.lines()
        .find_map(|line| line.strip_prefix("wchar: "))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// A first scan writes each database page about once: batches are large transactions, and the
/// WAL is copied into the database once at the end (not after every 1,000 pages). Without that,
/// every commit rewrites most pages of the hash indexes (issue 22 measured 45× the final size).
#[cfg(target_os = "linux")]
#[test]
fn a_first_scan_writes_the_database_about_once() {
    let fx = Fixture::new();
    for i in 0..6_000 {
        fx.write(
            &format!("loras/set{}/model_{i:05}.safetensors", i / 500),
            format!("model {i} ").repeat(20).as_bytes(),
        );
    }
    let mut index = ModelIndex::open(&fx.db).unwrap();
    let before = bytes_written_by_this_process();
    let summary = fx.scan(&mut index);
    let written = bytes_written_by_this_process() - before;
    assert_eq!(summary.files_hashed, 6_000);
    let wal = fx.db.with_extension("db-wal");
    assert_eq!(
        fs_err::metadata(&wal).map_or(0, |m| m.len()),
        0,
        "the scan ends with its WAL copied into the database"
    );
    let database = fs_err::metadata(&fx.db).unwrap().len();
    assert!(
        written <= 3 * database,
        "{written} bytes written for a {database}-byte database (about {}×)",
        written.div_ceil(database)
    );
    assert_eq!(index.list().unwrap().len(), 6_000);
}

/// Files are recorded in path order whatever order the workers finish in: model ids ascend with
/// the paths (so `model list` is the same from run to run), across many result runs and files of
/// every size; files with the same content (not links) are one model with each location.
#[test]
fn models_are_recorded_in_path_order_and_same_content_is_one_model() {
    let fx = Fixture::new();
    let mut expected = Vec::new();
    for i in 0..300usize {
        // Sizes that do not follow the paths, one larger than a read buffer.
        let size = if i == 150 {
            300 * 1024
        } else {
            1 + (i * 7919) % 4000
        };
        let relative = format!("checkpoints/set{}/m{i:03}.safetensors", i / 100);
        let content: Vec<u8> = format!("model {i} ").bytes().cycle().take(size).collect();
        fx.write(&relative, &content);
        expected.push(relative);
    }
    fx.write("loras/copy_a.safetensors", b"same content");
    fx.write("loras/copy_b.safetensors", b"same content");
    let mut index = ModelIndex::open(&fx.db).unwrap();
    let summary = fx.scan(&mut index);
    assert_eq!(summary.files_hashed, 302, "{summary:?}");
    assert_eq!(summary.models_added, 301);
    let in_id_order: Vec<String> = all_models(&index)
        .iter()
        .filter(|m| m.locations.len() == 1)
        .map(|m| m.locations[0].relative_path.clone())
        .collect();
    assert_eq!(in_id_order, expected);
    let copy = model_by_content(&index, b"same content");
    let paths: Vec<&str> = copy.locations.iter().map(|l| l.relative_path.as_str()).collect();
    assert_eq!(paths, ["loras/copy_a.safetensors", "loras/copy_b.safetensors"]);
}

//! Scanning model roots into the index.
//!
//! 1. Walk every root in parallel, following symlinks (loops are detected and skipped), and
//!    keep files with a model extension and a non-zero size.
//! 2. A file whose size, mtime (ns) and inode equal the indexed ones is not read again.
//! 3. Changed and new files are hashed on worker threads; paths that are the same file (symlinks,
//!    hard links) are read once and all become locations of one model.
//! 4. Results are written in batched transactions while hashing goes on (large batches, one
//!    WAL checkpoint at the end: see [`ModelIndex::bulk_writes`](crate::index::ModelIndex)).
//! 5. Locations whose file vanished are removed; models, hashes and sources stay.
//!
//! An unreadable file is reported in [`ScanSummary::errors`] and the scan goes on.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::folders::{folder_key, is_model_file_name};
use crate::hashing::{FileDigest, HashError, HashKinds, hash_file_of_size};
use crate::index::{FileStamp, IndexError, KnownLocation, ModelIndex, NewLocation};
use crate::roots::ModelRoot;

/// Hashed files are committed in batches: at least this often while hashing, so an
/// interrupted scan keeps nearly all of its work...
const BATCH_INTERVAL: Duration = Duration::from_secs(5);
/// ...and at most this many files at once, bounding the memory held by pending results. Every
/// commit rewrites the pages of the hash indexes it touches (new hashes land all over them),
/// so few large batches write far less than many small ones.
const BATCH_FILES: usize = 50_000;

/// Hashed files are handed to the writing thread in runs of at most this many files...
const RUN_FILES: usize = 64;
/// ...or this many bytes.
const RUN_BYTES: u64 = 4 * 1024 * 1024;

/// What a scan should do beyond the blake3 identity.
#[derive(Debug, Clone, Copy, Default)]
pub struct ScanOptions {
    /// Also compute sha256 for every file that is read (one read feeds both hashers).
    pub compute_sha256: bool,
}

/// Receives scan progress (the CLI draws a bar with bytes, files and an ETA).
pub trait ScanReporter: Send + Sync {
    /// Walking is done: this many files with this many bytes will be read.
    fn hashing_started(&self, _files: u64, _bytes: u64) {}
    /// One file (or group of links to one file) was hashed.
    fn file_hashed(&self, _path: &Path, _bytes: u64) {}
    /// A problem that did not stop the scan.
    fn issue(&self, _issue: &ScanIssue) {}
}

impl ScanReporter for comfydock_foundation::reporter::NoReporter {}

/// A file or folder the scan could not process.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ScanIssue {
    pub path: PathBuf,
    pub message: String,
}

/// What a scan did; serialisable for `--json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ScanSummary {
    /// Model files found under the roots.
    pub files_seen: u64,
    /// Files read and hashed (links to one file count once).
    pub files_hashed: u64,
    /// Files skipped because size, mtime and inode were unchanged.
    pub files_unchanged: u64,
    /// Zero-byte and non-model files.
    pub files_skipped: u64,
    /// Bytes of file content read.
    pub bytes_read: u64,
    /// Models that were not in the index before.
    pub models_added: u64,
    /// Locations removed because their file is gone.
    pub locations_removed: Vec<PathBuf>,
    /// Problems that did not stop the scan.
    pub errors: Vec<ScanIssue>,
}

/// A model file found by the walk.
#[derive(Debug, Clone)]
struct FoundFile {
    /// Index into the scan's location roots.
    root: usize,
    relative_path: String,
    folder: Option<String>,
    path: PathBuf,
    stamp: FileStamp,
    device: u64,
}

/// Everything the walk produced.
#[derive(Default)]
struct WalkOutput {
    files: Vec<FoundFile>,
    issues: Vec<ScanIssue>,
    skipped: u64,
}

impl ModelIndex {
    /// Scan `roots` into the index. Only database failures abort; file problems are reported.
    pub fn scan(
        &mut self,
        roots: &[ModelRoot],
        options: ScanOptions,
        reporter: &dyn ScanReporter,
    ) -> Result<ScanSummary, IndexError> {
        self.bulk_writes(|index| index.scan_roots(roots, options, reporter))
    }

    fn scan_roots(
        &mut self,
        roots: &[ModelRoot],
        options: ScanOptions,
        reporter: &dyn ScanReporter,
    ) -> Result<ScanSummary, IndexError> {
        let mut summary = ScanSummary::default();

        // Location roots: a root's base path, or a mapped folder outside it.
        let mut location_roots: Vec<PathBuf> = Vec::new();
        let mut incomplete: HashSet<usize> = HashSet::new();
        let mut units: Vec<(usize, PathBuf, Option<String>)> = Vec::new();
        for root in roots {
            if !root.path.is_dir() {
                let issue = ScanIssue {
                    path: root.path.clone(),
                    message: "model root is missing or not a folder; its locations are kept".to_owned(),
                };
                reporter.issue(&issue);
                summary.errors.push(issue);
                let index = intern(&mut location_roots, &root.path);
                incomplete.insert(index);
                continue;
            }
            for (dir, folder) in root.scan_dirs() {
                let base = if dir.starts_with(&root.path) {
                    &root.path
                } else {
                    &dir
                };
                let index = intern(&mut location_roots, base);
                if dir.is_dir() {
                    units.push((index, dir, folder));
                }
            }
        }

        let walk = walk_units(&location_roots, &units);
        summary.files_skipped = walk.skipped;
        summary.files_seen = walk.files.len() as u64;
        for issue in walk.issues {
            reporter.issue(&issue);
            summary.errors.push(issue);
        }

        // Compare with the index.
        let mut known: Vec<HashMap<String, KnownLocation>> = Vec::with_capacity(location_roots.len());
        for root in &location_roots {
            known.push(self.known_locations(root)?);
        }
        let mut seen: Vec<HashSet<&str>> = vec![HashSet::new(); location_roots.len()];
        let mut unchanged_models: HashMap<FileStamp, i64> = HashMap::new();
        let mut changed: Vec<&FoundFile> = Vec::new();
        for file in &walk.files {
            seen[file.root].insert(&file.relative_path);
            match known[file.root].get(&file.relative_path) {
                Some(row) if row.stamp == file.stamp => {
                    summary.files_unchanged += 1;
                    unchanged_models.insert(row.stamp, row.model_id);
                }
                _ => changed.push(file),
            }
        }

        // Paths that are one file on disk are read once.
        let mut groups: HashMap<(u64, u64, PathBuf), Vec<&FoundFile>> = HashMap::new();
        for file in changed {
            let key = if file.stamp.inode == 0 {
                (0, 0, file.path.clone())
            } else {
                (file.device, file.stamp.inode, PathBuf::new())
            };
            groups.entry(key).or_default().push(file);
        }
        let mut to_hash: Vec<Vec<&FoundFile>> = Vec::new();
        let mut relinked: Vec<(i64, Vec<&FoundFile>)> = Vec::new();
        for group in groups.into_values() {
            // A new link to a file already indexed under another path: no need to read it.
            match unchanged_models.get(&group[0].stamp) {
                Some(&model_id) if group[0].stamp.inode != 0 => relinked.push((model_id, group)),
                _ => to_hash.push(group),
            }
        }
        // In path order: rows then land in the index's path-ordered indexes one after another
        // (far less work than at random places), and model ids follow paths. Large files are
        // hashed on every core each, so their order does not matter for keeping threads busy.
        for group in &mut to_hash {
            group.sort_by(|a, b| (a.root, &a.relative_path).cmp(&(b.root, &b.relative_path)));
        }
        to_hash.sort_by(|a, b| (a[0].root, &a[0].relative_path).cmp(&(b[0].root, &b[0].relative_path)));
        let bytes_to_hash = to_hash.iter().map(|group| group[0].stamp.size).sum();
        reporter.hashing_started(to_hash.len() as u64, bytes_to_hash);

        if !relinked.is_empty() {
            self.batch(|tx| {
                for (model_id, group) in &relinked {
                    for file in group {
                        tx.upsert_location(*model_id, &new_location(&location_roots, file))?;
                    }
                }
                Ok(())
            })?;
        }

        let kinds = if options.compute_sha256 {
            HashKinds::Blake3AndSha256
        } else {
            HashKinds::Blake3
        };
        let batch = Batch {
            location_roots: &location_roots,
            known: &known,
            to_hash: &to_hash,
        };
        self.hash_and_record(&batch, kinds, reporter, &mut summary)?;

        // Vanished files lose their location; models, hashes and sources stay.
        let mut removed: Vec<(i64, PathBuf)> = Vec::new();
        for (index, rows) in known.iter().enumerate() {
            if incomplete.contains(&index) {
                continue;
            }
            for (relative_path, row) in rows {
                if !seen[index].contains(relative_path.as_str()) {
                    removed.push((
                        row.id,
                        crate::index::join_relative(&location_roots[index], relative_path),
                    ));
                }
            }
        }
        self.batch(|tx| {
            for (id, _) in &removed {
                tx.remove_location(*id)?;
            }
            for (index, root) in location_roots.iter().enumerate() {
                if !incomplete.contains(&index) {
                    tx.touch_root(root)?;
                }
            }
            Ok(())
        })?;
        summary.locations_removed = removed.into_iter().map(|(_, path)| path).collect();
        summary.locations_removed.sort();
        summary.errors.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(summary)
    }

    /// Hash groups on worker threads while this thread records the results, in scan order, in
    /// batched transactions: writing goes on while hashing does, instead of after it.
    fn hash_and_record(
        &mut self,
        batch: &Batch<'_>,
        kinds: HashKinds,
        reporter: &dyn ScanReporter,
        summary: &mut ScanSummary,
    ) -> Result<(), IndexError> {
        let to_hash = batch.to_hash;
        if to_hash.is_empty() {
            return Ok(());
        }
        // Unbounded: hashing goes on while a batch is committed (a result is a few hundred
        // bytes, and there is at most one per file found). Results travel in small runs: one
        // message (and one wake-up of this thread) per file cost more than reading a small file.
        let (sender, receiver) = mpsc::channel::<Vec<(usize, Result<FileDigest, HashError>)>>();
        let runs = result_runs(to_hash);
        // Workers take runs in order, so results arrive nearly in scan order and are written
        // as they come (rayon's splitting would hand one worker the second half from the start,
        // whose results would wait for the first half).
        let next_run = AtomicUsize::new(0);
        let workers = std::thread::available_parallelism().map_or(1, usize::from);
        std::thread::scope(|scope| {
            for _ in 0..workers {
                let sender = sender.clone();
                let (runs, next_run) = (&runs, &next_run);
                scope.spawn(move || {
                    while let Some(run) = runs.get(next_run.fetch_add(1, Ordering::Relaxed)) {
                        let results = run
                            .clone()
                            .map(|position| {
                                let file = to_hash[position][0];
                                (
                                    position,
                                    hash_file_of_size(&file.path, kinds, Some(file.stamp.size)),
                                )
                            })
                            .collect();
                        // The receiver only goes away on a database error; stop then.
                        if sender.send(results).is_err() {
                            break;
                        }
                    }
                });
            }
            drop(sender);
            let mut order = InOrder::default();
            let mut results = receiver.into_iter().flatten();
            while !order.finished {
                summary.models_added += self.batch(|tx| {
                    let started = Instant::now();
                    let mut added = 0;
                    let mut written = 0;
                    loop {
                        while let Some(digest) = order.next_ready() {
                            let position = order.next - 1;
                            let (model_id, created) = tx.ensure_model(&digest)?;
                            added += u64::from(created);
                            for file in &to_hash[position] {
                                let location = new_location(batch.location_roots, file);
                                if batch.known[file.root].contains_key(&file.relative_path) {
                                    tx.upsert_location(model_id, &location)?;
                                } else {
                                    tx.insert_location(model_id, &location)?;
                                }
                            }
                            written += 1;
                        }
                        if written >= BATCH_FILES || started.elapsed() >= BATCH_INTERVAL {
                            return Ok(added);
                        }
                        let Some((position, result)) = results.next() else {
                            order.finished = true;
                            return Ok(added);
                        };
                        let group = &to_hash[position];
                        match result {
                            Ok(digest) => {
                                summary.files_hashed += 1;
                                summary.bytes_read += digest.size;
                                reporter.file_hashed(&group[0].path, digest.size);
                                order.ready.insert(position, Some(digest));
                            }
                            Err(err) => {
                                for file in group {
                                    let issue = ScanIssue {
                                        path: file.path.clone(),
                                        message: error_chain(&err),
                                    };
                                    reporter.issue(&issue);
                                    summary.errors.push(issue);
                                }
                                order.ready.insert(position, None);
                            }
                        }
                    }
                })?;
            }
            Ok(())
        })
    }
}

/// Hash results put back in scan order: recording them in that order keeps model ids (and so
/// `model list`) the same from run to run whichever worker finishes first.
#[derive(Default)]
struct InOrder {
    /// Results that arrived before an earlier one, by position (`None`: the file failed).
    ready: std::collections::BTreeMap<usize, Option<FileDigest>>,
    /// The position to record next.
    next: usize,
    /// Every result has arrived.
    finished: bool,
}

impl InOrder {
    /// The digest at [`InOrder::next`] when it has arrived (skipping failed files), advancing.
    fn next_ready(&mut self) -> Option<FileDigest> {
        while let Some(result) = self.ready.remove(&self.next) {
            self.next += 1;
            if result.is_some() {
                return result;
            }
        }
        None
    }
}

/// Runs of files hashed one after another and reported together: up to [`RUN_FILES`] files
/// or [`RUN_BYTES`] bytes, so small files share a message while a large one still shows its
/// progress alone.
fn result_runs(to_hash: &[Vec<&FoundFile>]) -> Vec<std::ops::Range<usize>> {
    let mut runs = Vec::new();
    let mut start = 0;
    let mut bytes = 0u64;
    for (position, group) in to_hash.iter().enumerate() {
        bytes += group[0].stamp.size;
        if position + 1 - start >= RUN_FILES || bytes >= RUN_BYTES {
            runs.push(start..position + 1);
            start = position + 1;
            bytes = 0;
        }
    }
    if start < to_hash.len() {
        runs.push(start..to_hash.len());
    }
    runs
}

/// What the hashed files are recorded against.
struct Batch<'a> {
    location_roots: &'a [PathBuf],
    /// The index's locations under each root before the scan, by relative path.
    known: &'a [HashMap<String, KnownLocation>],
    /// Groups of paths that are one file, in scan order.
    to_hash: &'a [Vec<&'a FoundFile>],
}

impl ModelIndex {
    /// Drop every location under `root` (after `model root remove`); models, hashes and sources
    /// stay. Returns how many locations were removed.
    pub fn forget_root(&mut self, root: &ModelRoot) -> Result<u64, IndexError> {
        let mut keys = vec![root.path.clone()];
        for (dir, _) in root.scan_dirs() {
            if !dir.starts_with(&root.path) && !keys.contains(&dir) {
                keys.push(dir);
            }
        }
        self.batch(|tx| {
            let mut removed = 0;
            for key in &keys {
                removed += tx.remove_root(key)?;
            }
            Ok(removed)
        })
    }
}

fn new_location<'a>(location_roots: &'a [PathBuf], file: &'a FoundFile) -> NewLocation<'a> {
    NewLocation {
        root: &location_roots[file.root],
        relative_path: &file.relative_path,
        folder: file.folder.as_deref(),
        stamp: file.stamp,
    }
}

fn intern(list: &mut Vec<PathBuf>, path: &Path) -> usize {
    if let Some(position) = list.iter().position(|known| known == path) {
        position
    } else {
        list.push(path.to_owned());
        list.len() - 1
    }
}

/// An error and its causes on one line (`Cannot read `x`: Permission denied`).
pub(crate) use comfydock_foundation::hint::error_chain;

/// Walk all units in parallel, following symlinks safely.
fn walk_units(location_roots: &[PathBuf], units: &[(usize, PathBuf, Option<String>)]) -> WalkOutput {
    let files = Mutex::new(Vec::new());
    let issues = Mutex::new(Vec::new());
    let skipped = AtomicU64::new(0);
    for (root_index, dir, folder) in units {
        let root = &location_roots[*root_index];
        let walker = ignore::WalkBuilder::new(dir)
            .standard_filters(false)
            .follow_links(true)
            .filter_entry(|entry| entry.depth() == 0 || !entry.file_name().to_string_lossy().starts_with('.'))
            .build_parallel();
        walker.run(|| {
            Box::new(|entry| {
                match entry {
                    Ok(entry) => match visit(&entry, *root_index, root, folder.as_deref()) {
                        Visit::Model(found) => files
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .push(found),
                        Visit::Skipped => {
                            skipped.fetch_add(1, Ordering::Relaxed);
                        }
                        Visit::Ignored => {}
                        Visit::Issue(issue) => issues
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .push(issue),
                    },
                    Err(err) => {
                        if let Some(issue) = walk_issue(&err, dir) {
                            issues
                                .lock()
                                .unwrap_or_else(std::sync::PoisonError::into_inner)
                                .push(issue);
                        }
                    }
                }
                ignore::WalkState::Continue
            })
        });
    }
    WalkOutput {
        files: files
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
        issues: issues
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
        skipped: skipped.into_inner(),
    }
}

enum Visit {
    Model(FoundFile),
    Skipped,
    Ignored,
    Issue(ScanIssue),
}

fn visit(entry: &ignore::DirEntry, root_index: usize, root: &Path, folder: Option<&str>) -> Visit {
    if entry.file_type().is_none_or(|kind| !kind.is_file()) {
        return Visit::Ignored;
    }
    let name = entry.file_name().to_string_lossy();
    if !is_model_file_name(&name) {
        return Visit::Skipped;
    }
    let metadata = match entry.metadata() {
        Ok(metadata) => metadata,
        Err(err) => {
            return Visit::Issue(ScanIssue {
                path: entry.path().to_owned(),
                message: error_chain(&err),
            });
        }
    };
    if metadata.len() == 0 {
        return Visit::Skipped;
    }
    let Ok(relative) = entry.path().strip_prefix(root) else {
        return Visit::Ignored;
    };
    let relative_path = slash_separated(relative);
    let folder = match folder {
        Some(key) => Some(key.to_owned()),
        None => relative_path
            .split_once('/')
            .map(|(first, _)| folder_key(first).to_owned()),
    };
    let (stamp, device) = stamp_of(&metadata);
    Visit::Model(FoundFile {
        root: root_index,
        relative_path,
        folder,
        path: entry.path().to_owned(),
        stamp,
        device,
    })
}

/// A relative path as stored in the index: components joined with `/`.
fn slash_separated(relative: &Path) -> String {
    if cfg!(unix) {
        relative.to_string_lossy().into_owned()
    } else {
        relative
            .components()
            .map(|part| part.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/")
    }
}

/// Turn a walk error into an issue; symlink loops and dangling non-model links are not issues.
fn walk_issue(err: &ignore::Error, dir: &Path) -> Option<ScanIssue> {
    let mut path = None;
    let mut current = err;
    loop {
        match current {
            ignore::Error::WithPath { path: p, err } => {
                path.get_or_insert_with(|| p.clone());
                current = err;
            }
            ignore::Error::WithDepth { err, .. } | ignore::Error::WithLineNumber { err, .. } => current = err,
            ignore::Error::Loop { .. } => return None,
            ignore::Error::Io(io) => {
                let is_model = path
                    .as_ref()
                    .and_then(|p: &PathBuf| p.file_name())
                    .is_some_and(|name| is_model_file_name(&name.to_string_lossy()));
                if io.kind() == std::io::ErrorKind::NotFound && !is_model {
                    return None;
                }
                break;
            }
            _ => break,
        }
    }
    Some(ScanIssue {
        path: path.unwrap_or_else(|| dir.to_owned()),
        message: current.to_string(),
    })
}

#[cfg(unix)]
pub(crate) fn stamp_of(metadata: &std::fs::Metadata) -> (FileStamp, u64) {
    use std::os::unix::fs::MetadataExt as _;
    (
        FileStamp {
            size: metadata.len(),
            mtime_ns: metadata
                .mtime()
                .saturating_mul(1_000_000_000)
                .saturating_add(metadata.mtime_nsec()),
            inode: metadata.ino(),
        },
        metadata.dev(),
    )
}

#[cfg(not(unix))]
pub(crate) fn stamp_of(metadata: &std::fs::Metadata) -> (FileStamp, u64) {
    let mtime_ns = metadata
        .modified()
        .ok()
        .and_then(|time| time.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX));
    (
        FileStamp {
            size: metadata.len(),
            mtime_ns,
            inode: 0,
        },
        0,
    )
}

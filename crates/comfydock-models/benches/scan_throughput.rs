//! Scan throughput against `b3sum` on the same page-cached files (target: at least 0.8× b3sum).
//!
//! ```text
//! cargo install b3sum            # benchmark only, never in CI
//! cargo bench -p comfydock-models --bench scan_throughput
//! ```
//!
//! Writes `SCAN_BENCH_MB` MiB (default 1536) of pseudo-random data as 256 MiB model files plus
//! 2,000 small files into a temporary folder, reads everything once to warm the page cache, then
//! times `b3sum` over all files and a full first scan into a fresh index (best of two each).
//! Without `b3sum` on PATH (or in `B3SUM`), only the scan figure is printed.
#![allow(clippy::print_stdout)] // a benchmark program reports on stdout
#![allow(clippy::cast_precision_loss, clippy::cast_possible_truncation)] // figures for display

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use comfydock_foundation::reporter::NoReporter;
use comfydock_models::index::ModelIndex;
use comfydock_models::roots::ModelRoot;
use comfydock_models::scan::ScanOptions;

const BIG_FILE_MB: usize = 256;
const SMALL_FILES: usize = 2_000;

fn write_random(path: &Path, len: usize, seed: u64) {
    let mut state = seed | 1;
    let mut file = std::io::BufWriter::with_capacity(1 << 20, fs_err::File::create(path).unwrap());
    let mut chunk = vec![0_u8; 1 << 20];
    let mut left = len;
    while left > 0 {
        for word in chunk.chunks_exact_mut(8) {
            // xorshift64*: fast, and blake3's speed does not depend on the data.
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            word.copy_from_slice(&state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
        }
        let n = left.min(chunk.len());
        file.write_all(&chunk[..n]).unwrap();
        left -= n;
    }
    file.flush().unwrap();
}

fn best_of<F: FnMut() -> Duration>(runs: usize, mut run: F) -> Duration {
    (0..runs).map(|_| run()).min().unwrap()
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` / `cargo bench -- --list` probing
    }
    let total_mb: usize = std::env::var("SCAN_BENCH_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1536);
    let dir = tempfile::tempdir().unwrap();
    let models = dir.path().join("models");
    fs_err::create_dir_all(models.join("checkpoints")).unwrap();
    fs_err::create_dir_all(models.join("embeddings")).unwrap();
    let mut files: Vec<PathBuf> = Vec::new();
    let big_files = (total_mb / BIG_FILE_MB).max(1);
    for i in 0..big_files {
        let path = models.join("checkpoints").join(format!("big-{i}.safetensors"));
        write_random(&path, BIG_FILE_MB << 20, 0x9E37_79B9 + i as u64);
        files.push(path);
    }
    for i in 0..SMALL_FILES {
        let path = models.join("embeddings").join(format!("small-{i}.pt"));
        write_random(&path, 4096 + i, 7 + i as u64);
        files.push(path);
    }
    let bytes: u64 = files.iter().map(|f| fs_err::metadata(f).unwrap().len()).sum();

    // Warm the page cache.
    for file in &files {
        std::hint::black_box(fs_err::read(file).unwrap().len());
    }

    let b3sum = std::env::var("B3SUM").unwrap_or_else(|_| "b3sum".to_owned());
    let b3sum_time = Command::new(&b3sum).arg("--version").output().ok().map(|_| {
        best_of(2, || {
            let start = Instant::now();
            let output = Command::new(&b3sum).args(&files).output().unwrap();
            assert!(output.status.success());
            start.elapsed()
        })
    });

    let roots = [ModelRoot::standard(&models)];
    let mut run = 0;
    let scan_time = best_of(2, || {
        run += 1;
        let db = dir.path().join(format!("index-{run}.db"));
        let start = Instant::now();
        let mut index = ModelIndex::open(&db).unwrap();
        let summary = index.scan(&roots, ScanOptions::default(), &NoReporter).unwrap();
        let elapsed = start.elapsed();
        assert_eq!(summary.bytes_read, bytes);
        assert_eq!(summary.files_hashed as usize, files.len());
        elapsed
    });

    // The acceptance check: a rescan of the unchanged tree reads no content.
    let mut index = ModelIndex::open(&dir.path().join(format!("index-{run}.db"))).unwrap();
    let start = Instant::now();
    let rescan = index.scan(&roots, ScanOptions::default(), &NoReporter).unwrap();
    let rescan_time = start.elapsed();
    assert_eq!(rescan.bytes_read, 0);

    let gib_per_s = |d: Duration| bytes as f64 / d.as_secs_f64() / f64::from(1 << 30);
    println!(
        "data: {} files, {:.2} GiB (page-cached), {} threads",
        files.len(),
        bytes as f64 / f64::from(1 << 30),
        std::thread::available_parallelism().map_or(1, usize::from)
    );
    println!(
        "comfydock scan (fresh index): {:.3} s = {:.2} GiB/s",
        scan_time.as_secs_f64(),
        gib_per_s(scan_time)
    );
    println!(
        "comfydock rescan (unchanged): {:.1} ms, bytes read {}",
        rescan_time.as_secs_f64() * 1000.0,
        rescan.bytes_read
    );
    match b3sum_time {
        Some(time) => {
            println!(
                "b3sum:                       {:.3} s = {:.2} GiB/s",
                time.as_secs_f64(),
                gib_per_s(time)
            );
            println!(
                "scan throughput / b3sum throughput = {:.2} (target >= 0.80)",
                time.as_secs_f64() / scan_time.as_secs_f64()
            );
        }
        None => println!("b3sum not found (set B3SUM or `cargo install b3sum`); no comparison"),
    }
}

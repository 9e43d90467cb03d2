//! Rescan of 10,000 unchanged small model files (target: under 100 ms).
//!
//! `cargo bench -p comfydock-models --bench rescan`

use std::hint::black_box;

use comfydock_foundation::reporter::NoReporter;
use comfydock_models::index::ModelIndex;
use comfydock_models::roots::ModelRoot;
use comfydock_models::scan::ScanOptions;
use criterion::{Criterion, criterion_group, criterion_main};

const FILES: usize = 10_000;

fn rescan(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let models = dir.path().join("models");
    let folders = ["checkpoints", "loras", "vae", "embeddings", "controlnet"];
    for folder in folders {
        fs_err::create_dir_all(models.join(folder)).unwrap();
    }
    for i in 0..FILES {
        let folder = folders[i % folders.len()];
        fs_err::write(
            models.join(folder).join(format!("model-{i}.safetensors")),
            format!("small model number {i}"),
        )
        .unwrap();
    }
    let roots = [ModelRoot::standard(&models)];
    let mut index = ModelIndex::open(&dir.path().join("model_index.db")).unwrap();
    let first = index.scan(&roots, ScanOptions::default(), &NoReporter).unwrap();
    assert_eq!(first.files_hashed, FILES as u64);

    let mut group = c.benchmark_group("rescan");
    group.sample_size(20);
    group.bench_function("10k_unchanged_files", |b| {
        b.iter(|| {
            let summary = index.scan(&roots, ScanOptions::default(), &NoReporter).unwrap();
            assert_eq!(summary.bytes_read, 0);
            assert_eq!(summary.files_unchanged, FILES as u64);
            black_box(summary)
        });
    });
    group.finish();
}

criterion_group!(benches, rescan);
criterion_main!(benches);

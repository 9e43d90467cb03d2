//! Starts the ComfyUI stand-in repository and the local wheel index for benchmarks and manual
//! runs, prints `export` lines pointing comfydock at them, and serves until killed.
//!
//! `comfydock-standins DIR` → the repo is built in `DIR/ComfyUI`.

use std::io::Write as _;

use comfydock_test::comfyui_repo::ComfyUiRepo;
use comfydock_test::registry::{NodePackage, RegistryServer};
use comfydock_test::wheel_index::WheelIndex;

fn main() {
    let dir = std::env::args_os().nth(1).map_or_else(
        || std::env::temp_dir().join("comfydock-standins"),
        std::path::PathBuf::from,
    );
    let repo = ComfyUiRepo::create_in(&dir.join("ComfyUI"));
    let index = WheelIndex::start();
    // A registry with one node pack, `bench-node` 1.0.0 (requires node-dep-b), for `node add` benchmarks.
    let registry = RegistryServer::start();
    registry.publish(
        NodePackage::new("bench-node", "1.0.0")
            .node_class("BenchNode")
            .requirements("node-dep-b"),
    );
    let mut out = std::io::stdout();
    let _ = writeln!(out, "export COMFYDOCK_COMFYUI_REPO='{}'", repo.url());
    let _ = writeln!(
        out,
        "export COMFYDOCK_TORCH_INDEX_URL='{}'",
        index.torch_index_url()
    );
    let _ = writeln!(out, "export UV_INDEX_URL='{}'", index.simple_url());
    let _ = writeln!(out, "export COMFYDOCK_REGISTRY_URL='{}'", registry.url());
    let _ = writeln!(
        out,
        "export COMFYDOCK_MANAGER_DATA_URL='{}'",
        registry.manager_data_url()
    );
    let _ = out.flush();
    loop {
        std::thread::park();
    }
}

//! The ComfyUI contract: the live real server's recording must equal the recording committed in the
//! repository (which the main suite holds the stand-in to), and the stand-in must match it too.
//! `COMFYDOCK_RECORD=1` rewrites the committed recording from the live server.

use std::path::PathBuf;

use comfydock_test::comfyui_contract::{self, Recording};
use comfydock_test::comfyui_server::ComfyUiServer;

fn committed_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../comfydock-test/recordings/comfyui-v0.3.77.json")
}

pub fn assert_stand_in_matches(real_base: &str) {
    let live = comfyui_contract::record(real_base);
    let path = committed_path();
    if std::env::var_os("COMFYDOCK_RECORD").is_some() {
        let text = serde_json::to_string_pretty(&live).expect("recording serializes") + "\n";
        fs_err::write(&path, text).expect("write the recording");
    }
    let committed: Recording =
        serde_json::from_str(&fs_err::read_to_string(&path).expect("read the committed ComfyUI recording"))
            .expect("the committed recording parses");
    let drift = comfyui_contract::differences(&committed, &live);
    assert!(
        drift.is_empty(),
        "real ComfyUI no longer answers as recorded in {} (rerun with COMFYDOCK_RECORD=1 after checking):\n{}",
        path.display(),
        drift.join("\n")
    );
    let stand_in = ComfyUiServer::start();
    let differences = comfyui_contract::differences(&live, &comfyui_contract::record(&stand_in.url()));
    assert!(
        differences.is_empty(),
        "the ComfyUI stand-in differs from real ComfyUI:\n{}",
        differences.join("\n")
    );
}

/// The built-in widget table the workflow crate names positional widget values with must be what a
/// real ComfyUI without custom nodes defines. `COMFYDOCK_RECORD=1` rewrites the table.
pub fn assert_builtin_widgets_match(object_info: &serde_json::Value) {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../comfydock-workflow/data/builtin_widgets.tsv");
    let live = comfydock_workflow::widget_order::builtin_table_from_object_info(object_info);
    if std::env::var_os("COMFYDOCK_RECORD").is_some() {
        fs_err::write(&path, &live).expect("write the built-in widget table");
    }
    let committed = fs_err::read_to_string(&path).expect("read the built-in widget table");
    let changed: Vec<String> = live
        .lines()
        .filter(|line| !committed.lines().any(|c| c == *line))
        .map(|line| format!("live:      {line}"))
        .chain(
            committed
                .lines()
                .filter(|line| !live.lines().any(|l| l == *line))
                .map(|line| format!("committed: {line}")),
        )
        .collect();
    assert!(
        changed.is_empty(),
        "real ComfyUI's widgets differ from {} (rerun with COMFYDOCK_RECORD=1 after checking):\n{}",
        path.display(),
        changed.join("\n")
    );
}

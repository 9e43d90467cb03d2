//! The ComfyUI stand-in answers with the shapes and message order real ComfyUI v0.3.77 gave, as
//! recorded by the real-world tier in `recordings/comfyui-v0.3.77.json`.

use comfydock_test::comfyui_contract::{self, Recording};
use comfydock_test::comfyui_server::ComfyUiServer;

#[test]
fn stand_in_matches_the_recording_of_real_comfyui() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("recordings/comfyui-v0.3.77.json");
    let real: Recording = serde_json::from_str(&fs_err::read_to_string(&path).expect("read the recording"))
        .expect("parse the recording");
    let server = ComfyUiServer::start();
    let stand_in = comfyui_contract::record(&server.url());
    let differences = comfyui_contract::differences(&real, &stand_in);
    assert!(
        differences.is_empty(),
        "the stand-in differs from real ComfyUI:\n{}",
        differences.join("\n")
    );
}

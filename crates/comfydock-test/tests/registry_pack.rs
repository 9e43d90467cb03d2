//! A registry pack downloaded from the stand-in registry loads in the stand-in ComfyUI once its
//! dependency is installed from the stand-in index — the stand-ins fit together.

use std::io::{BufRead, BufReader, Cursor};
use std::process::{Command, Stdio};

use comfydock_test::comfyui_repo::ComfyUiRepo;
use comfydock_test::git::git;
use comfydock_test::http::client::get;
use comfydock_test::registry::{NodePackage, RegistryServer};
use comfydock_test::tools::{PYTHON_REQUEST, uv_command};
use comfydock_test::wheel_index::WheelIndex;

#[test]
fn registry_pack_loads_in_comfyui_with_its_dependency() {
    let registry = RegistryServer::start();
    registry.publish(
        NodePackage::new("my-node", "1.0.0")
            .node_class("MyNodeA")
            .requirements("node-dep-a>=1.1"),
    );
    let index = WheelIndex::start();
    let repo = ComfyUiRepo::create();
    let tmp = tempfile::tempdir().unwrap();
    let comfy = tmp.path().join("ComfyUI");
    git(tmp.path(), &["clone", "-q", &repo.url(), comfy.to_str().unwrap()]);

    // What a client does: /install → downloadUrl → extract into custom_nodes/<id>.
    let install = get(
        &format!("{}/nodes/my-node/install?version=1.0.0", registry.url()),
        &[],
    )
    .unwrap()
    .json();
    let zip = get(install["downloadUrl"].as_str().unwrap(), &[]).unwrap().body;
    let target = comfy.join("custom_nodes/my-node");
    zip::ZipArchive::new(Cursor::new(zip))
        .unwrap()
        .extract(&target)
        .unwrap();

    let cache = tmp.path().join("cache");
    let venv = tmp.path().join("venv");
    assert!(
        uv_command(&cache)
            .args(["venv", "-q", "--python", PYTHON_REQUEST])
            .arg(&venv)
            .status()
            .unwrap()
            .success()
    );
    let out = uv_command(&cache)
        .args(["pip", "install", "-q", "--python"])
        .arg(venv.join("bin/python"))
        .args(["--index-url", &index.simple_url(), "-r"])
        .arg(comfy.join("requirements.txt"))
        .arg("-r")
        .arg(target.join("requirements.txt"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let mut child = Command::new(venv.join("bin/python"))
        .arg(comfy.join("main.py"))
        .args(["--port", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let url = loop {
        let line = lines
            .next()
            .expect("ComfyUI stand-in exited before listening")
            .unwrap();
        if let Some(url) = line.strip_prefix("To see the GUI go to: ") {
            break url.to_owned();
        }
    };
    let info = get(&format!("{url}/object_info/MyNodeA"), &[]).unwrap().json();
    assert!(
        Command::new("kill")
            .arg(child.id().to_string())
            .status()
            .unwrap()
            .success()
    );
    assert_eq!(child.wait().unwrap().code(), Some(0));
    assert_eq!(info["MyNodeA"]["python_module"], "custom_nodes.my-node");
    assert_eq!(info["MyNodeA"]["display_name"], "MyNodeA (my-node)");
}

//! The ComfyUI stand-in repository, driven with the real git, uv and Python.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::Duration;

use comfydock_test::comfyui_repo::{
    ComfyUiRepo, EXIT_CODE_ENV, IMPORT_ENV, LATEST_TAG, RELEASE_TAGS, SKIP_IMPORTS_ENV, STARTUP_DELAY_ENV,
    requirements_for,
};
use comfydock_test::git::git;
use comfydock_test::http::client::get;
use comfydock_test::tools::{PYTHON_REQUEST, uv_command};
use comfydock_test::wheel_index::WheelIndex;

fn clone_at(repo: &ComfyUiRepo, rev: &str, dest: &Path) {
    let parent = dest.parent().unwrap();
    git(parent, &["clone", "-q", &repo.url(), dest.to_str().unwrap()]);
    git(dest, &["checkout", "-q", rev]);
}

/// Creates a venv with the requirements of the checked-out stand-in installed from the index.
fn provision(comfy: &Path, index: &WheelIndex, work: &Path) -> PathBuf {
    let cache = work.join("uv-cache");
    let venv = work.join("venv");
    let status = uv_command(&cache)
        .args(["venv", "-q", "--python", PYTHON_REQUEST])
        .arg(&venv)
        .status()
        .unwrap();
    assert!(status.success());
    let out = uv_command(&cache)
        .args(["pip", "install", "-q", "--python"])
        .arg(venv.join("bin/python"))
        .args(["--index-url", &index.simple_url(), "-r"])
        .arg(comfy.join("requirements.txt"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    venv.join("bin/python")
}

struct Running {
    child: Child,
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl Running {
    fn start(python: &Path, comfy: &Path, extra: &[&str], env: &[(&str, &str)]) -> Self {
        let mut cmd = Command::new(python);
        cmd.arg(comfy.join("main.py"))
            .args(["--listen", "127.0.0.1", "--port", "0"])
            .args(extra);
        cmd.current_dir(comfy)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let (tx, lines) = channel();
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        Running {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits for "To see the GUI go to: http://HOST:PORT" and returns the URL.
    fn url(&mut self) -> String {
        loop {
            let line = self
                .lines
                .recv_timeout(Duration::from_secs(30))
                .unwrap_or_else(|_| panic!("no GUI line; output so far: {:#?}", self.seen));
            self.seen.push(line.clone());
            if let Some(url) = line.strip_prefix("To see the GUI go to: ") {
                return url.to_owned();
            }
        }
    }

    fn terminate(mut self) -> (i32, Vec<String>) {
        let pid = self.child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success()
        );
        let status = self.child.wait().unwrap();
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(2)) {
            self.seen.push(line);
        }
        (
            status.code().expect("exited, not killed by a signal"),
            std::mem::take(&mut self.seen),
        )
    }
}

impl Drop for Running {
    /// A failed assertion must not leave a server process behind.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn repo_has_release_tags_and_master_ahead() {
    let repo = ComfyUiRepo::create();
    assert_eq!(repo.tags(), RELEASE_TAGS);
    let shas: Vec<String> = RELEASE_TAGS.iter().map(|t| repo.commit(t)).collect();
    assert_eq!(shas.len(), 3);
    assert!(shas[0] != shas[1] && shas[1] != shas[2]);
    let master = repo.commit("master");
    assert_ne!(master, shas[2]);
    assert_eq!(
        git(repo.path(), &["merge-base", "--is-ancestor", &shas[2], &master]),
        ""
    );
    // Deterministic commit ids: building again gives the same history.
    assert_eq!(ComfyUiRepo::create().commit(LATEST_TAG), shas[2]);

    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("ComfyUI");
    clone_at(&repo, "v0.3.40", &dest);
    assert_eq!(
        fs_err::read_to_string(dest.join("comfyui_version.py"))
            .unwrap()
            .lines()
            .last()
            .unwrap(),
        "__version__ = \"0.3.40\""
    );
    assert_eq!(
        fs_err::read_to_string(dest.join("requirements.txt")).unwrap(),
        requirements_for("v0.3.40")
    );
    assert!(dest.join("comfy_extras/nodes_images.py").is_file());
    assert!(!dest.join("comfy_extras/nodes_stitch.py").exists());
    assert!(dest.join("custom_nodes/example_node.py.example").is_file());
    assert!(dest.join("models/checkpoints/put_checkpoints_here").is_file());

    let added = repo.add_release("v0.3.42", "tinynum>=2\n");
    assert_eq!(repo.commit("v0.3.42"), added);
    assert_eq!(repo.tags().last().unwrap(), "v0.3.42");
}

#[test]
fn main_py_serves_system_stats_and_object_info_then_exits_0_on_sigterm() {
    let repo = ComfyUiRepo::create();
    let index = WheelIndex::start();
    let tmp = tempfile::tempdir().unwrap();
    let comfy = tmp.path().join("ComfyUI");
    clone_at(&repo, LATEST_TAG, &comfy);
    let python = provision(&comfy, &index, tmp.path());

    // A model directory configured through --extra-model-paths-config, and a custom node.
    let models = tmp.path().join("shared-models");
    fs_err::create_dir_all(models.join("checkpoints/sub")).unwrap();
    fs_err::write(models.join("checkpoints/sub/model.safetensors"), b"x").unwrap();
    fs_err::write(models.join("checkpoints/notes.txt"), b"x").unwrap();
    let yaml = tmp.path().join("extra_model_paths.yaml");
    fs_err::write(&yaml, format!("comfydock:\n    base_path: {}\n    is_default: true\n    checkpoints: checkpoints\n    loras: |\n        loras\n        more_loras\n", models.display())).unwrap();
    fs_err::create_dir_all(comfy.join("custom_nodes/my-pack")).unwrap();
    fs_err::write(comfy.join("custom_nodes/my-pack/__init__.py"), "import tinynum\nclass MyNode:\n    @classmethod\n    def INPUT_TYPES(s):\n        return {'required': {'x': ('INT', {'default': 1})}}\n    RETURN_TYPES = ('INT',)\n    FUNCTION = 'run'\n    CATEGORY = 'custom'\nNODE_CLASS_MAPPINGS = {'MyNode': MyNode}\n").unwrap();
    fs_err::create_dir_all(comfy.join("custom_nodes/broken")).unwrap();
    fs_err::write(
        comfy.join("custom_nodes/broken/__init__.py"),
        "import not_installed_anywhere\n",
    )
    .unwrap();
    let user_dir = tmp.path().join("user");

    // Like ComfyUI's argparse check: a user directory that does not exist is a usage error.
    let out = Command::new(&python)
        .arg(comfy.join("main.py"))
        .args(["--port", "0", "--user-directory"])
        .arg(&user_dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains(&format!(
            "argument --user-directory: The path '{}' does not exist.",
            user_dir.display()
        )),
        "{text}"
    );
    fs_err::create_dir_all(&user_dir).unwrap();

    let mut running = Running::start(
        &python,
        &comfy,
        &[
            "--extra-model-paths-config",
            yaml.to_str().unwrap(),
            "--user-directory",
            user_dir.to_str().unwrap(),
            "--unknown-flag",
            "--preview-method",
            "auto",
        ],
        &[],
    );
    let url = running.url();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");

    let stats = get(&format!("{url}/system_stats"), &[]).unwrap();
    assert_eq!(stats.status, 200);
    let stats = stats.json();
    assert_eq!(stats["system"]["comfyui_version"], "0.3.41");
    assert_eq!(stats["system"]["pytorch_version"], "2.5.1");
    let argv: Vec<&str> = stats["system"]["argv"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        argv.contains(&"--extra-model-paths-config") && argv.contains(&"--unknown-flag"),
        "{argv:?}"
    );
    assert_eq!(stats["devices"][0]["type"], "cpu");

    let info = get(&format!("{url}/api/object_info"), &[]).unwrap().json();
    assert_eq!(info["KSampler"]["python_module"], "nodes");
    assert_eq!(
        info["CheckpointLoaderSimple"]["input"]["required"]["ckpt_name"][0],
        serde_json::json!(["sub/model.safetensors"])
    );
    assert_eq!(
        info["CheckpointLoaderSimple"]["output"],
        serde_json::json!(["MODEL", "CLIP", "VAE"])
    );
    assert_eq!(info["ImageStitch"]["python_module"], "comfy_extras.nodes_stitch");
    assert_eq!(info["MyNode"]["python_module"], "custom_nodes.my-pack");
    assert_eq!(info["KSampler"]["input_order"]["required"][0], "model");
    let one = get(&format!("{url}/object_info/VAEDecode"), &[]).unwrap().json();
    assert_eq!(one.as_object().unwrap().keys().collect::<Vec<_>>(), ["VAEDecode"]);
    let models_list = get(&format!("{url}/models/checkpoints"), &[]).unwrap().json();
    assert_eq!(models_list, serde_json::json!(["sub/model.safetensors"]));
    assert_eq!(get(&format!("{url}/models/nope"), &[]).unwrap().status, 404);

    let accepted = comfydock_test::http::client::request(
        "POST",
        &format!("{url}/prompt"),
        &[("Content-Type", "application/json")],
        br#"{"prompt": {"1": {"class_type": "EmptyLatentImage", "inputs": {}}}, "prompt_id": "p-1"}"#,
    )
    .unwrap();
    assert_eq!(accepted.json()["prompt_id"], "p-1");
    assert_eq!(
        get(&format!("{url}/history/p-1"), &[]).unwrap().json()["p-1"]["status"]["status_str"],
        "success"
    );
    let rejected = comfydock_test::http::client::request(
        "POST",
        &format!("{url}/prompt"),
        &[],
        br#"{"prompt": {"1": {"class_type": "NoSuchNode", "inputs": {}}}}"#,
    )
    .unwrap();
    assert_eq!(rejected.status, 400);
    assert_eq!(rejected.json()["error"]["type"], "invalid_prompt");

    let (code, log) = running.terminate();
    assert_eq!(code, 0, "{log:#?}");
    let log = log.join("\n");
    assert!(log.contains("ComfyUI version: 0.3.41"), "{log}");
    assert!(log.contains("Starting server"), "{log}");
    assert!(
        log.contains(&format!(
            "Adding extra search path checkpoints {}",
            models.join("checkpoints").display()
        )),
        "{log}"
    );
    assert!(
        log.contains("(IMPORT FAILED)") && log.contains("custom_nodes/broken"),
        "{log}"
    );
}

#[test]
fn main_py_exit_code_control_and_missing_requirements() {
    let repo = ComfyUiRepo::create();
    let python = comfydock_test::tools::find_on_path("python3").expect("python3 on PATH");
    let status = Command::new(&python)
        .arg(repo.path().join("main.py"))
        .args(["--port", "0"])
        .env(EXIT_CODE_ENV, "3")
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(3));
    let status = Command::new(&python)
        .arg(repo.path().join("main.py"))
        .args(["--standin-exit-code", "7"])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(7));

    // Without its requirements installed the stand-in fails like ComfyUI does (ImportError).
    let out = Command::new(&python)
        .arg(repo.path().join("main.py"))
        .args(["--port", "0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("ModuleNotFoundError"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // An undeclared import that is not installed dies as Python reports it.
    let out = Command::new(&python)
        .arg(repo.path().join("main.py"))
        .args(["--port", "0"])
        .env(SKIP_IMPORTS_ENV, "1")
        .env(IMPORT_ENV, "json, comfydock_no_such_module")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(text.starts_with("Traceback (most recent call last):"), "{text}");
    assert_eq!(
        text.trim_end().lines().last(),
        Some("ModuleNotFoundError: No module named 'comfydock_no_such_module'"),
        "{text}"
    );

    // A busy port: exit code 1 and a message naming the address, like ComfyUI's bind error.
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port().to_string();
    let out = Command::new(&python)
        .arg(repo.path().join("main.py"))
        .args(["--port", &port])
        .env(SKIP_IMPORTS_ENV, "1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(text.contains(&format!("('127.0.0.1', {port})")), "{text}");

    // With imports skipped it serves using the system python3 alone.
    let started = std::time::Instant::now();
    let mut running = Running::start(
        &python,
        repo.path(),
        &[],
        &[(SKIP_IMPORTS_ENV, "1"), (STARTUP_DELAY_ENV, "0.3")],
    );
    let url = running.url();
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "startup delay honoured"
    );
    assert_eq!(
        get(&format!("{url}/system_stats"), &[]).unwrap().json()["system"]["comfyui_version"],
        "0.3.41"
    );
    let (code, _) = running.terminate();
    assert_eq!(code, 0);
}

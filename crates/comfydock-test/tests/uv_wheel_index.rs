//! The wheel index stand-in, driven by the real uv: venv + pip install, lock + sync with the
//! per-backend torch index, find-links, and the conflicting pair.

use std::path::Path;
use std::process::{Command, Output};

use comfydock_test::tools::{PYTHON_REQUEST, uv_command};
use comfydock_test::wheel_index::WheelIndex;

fn run(mut cmd: Command) -> Output {
    let output = cmd.output().expect("run uv");
    assert!(
        output.status.success(),
        "{cmd:?} failed:\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn python_eval(venv: &Path, code: &str) -> String {
    let output = Command::new(venv.join("bin/python"))
        .args(["-c", code])
        .output()
        .expect("run venv python");
    assert!(
        output.status.success(),
        "python -c {code:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

#[test]
fn uv_pip_installs_from_the_simple_index() {
    let index = WheelIndex::start();
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let venv = tmp.path().join("venv");
    let mut venv_cmd = uv_command(&cache);
    venv_cmd.args(["venv", "--python", PYTHON_REQUEST]).arg(&venv);
    run(venv_cmd);

    let mut install = uv_command(&cache);
    install
        .args(["pip", "install", "--python"])
        .arg(venv.join("bin/python"))
        .args([
            "--index-url",
            &index.simple_url(),
            "comfy-tiny-a",
            "comfy-tiny-b==2.0.0",
        ]);
    run(install);
    assert_eq!(
        python_eval(
            &venv,
            "import comfy_tiny_a, comfy_tiny_b, tinynum, tinyimg; print(comfy_tiny_a.__version__, comfy_tiny_b.__version__, tinynum.__version__, tinyimg.__version__)"
        ),
        "1.1.0 2.0.0 2.1.0 11.0.0"
    );
    assert!(index.downloaded("tinyimg"));
}

#[test]
fn uv_reports_the_conflicting_pair() {
    let index = WheelIndex::start();
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let venv = tmp.path().join("venv");
    let mut venv_cmd = uv_command(&cache);
    venv_cmd.args(["venv", "--python", PYTHON_REQUEST]).arg(&venv);
    run(venv_cmd);
    let output = uv_command(&cache)
        .args(["pip", "install", "--python"])
        .arg(venv.join("bin/python"))
        .args(["--index-url", &index.simple_url(), "conflict-a", "conflict-b"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("conflict-a") && stderr.contains("conflict-b") && stderr.contains("shared-dep"),
        "{stderr}"
    );
}

#[test]
fn uv_lock_and_sync_take_torch_from_the_backend_index() {
    let index = WheelIndex::start();
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let project = tmp.path().join("proj");
    fs_err::create_dir_all(&project).unwrap();
    fs_err::write(
        project.join("pyproject.toml"),
        format!(
            r#"[project]
name = "env"
version = "0.1.0"
requires-python = ">=3.11"
dependencies = ["comfy-tiny-a>=1.1", "tinysde", "torch", "torchvision", "torchaudio"]

[tool.uv]
package = false

[[tool.uv.index]]
name = "stand-in-pypi"
url = "{simple}"
default = true

[[tool.uv.index]]
name = "pytorch-cpu"
url = "{torch}/cpu"
explicit = true

[tool.uv.sources]
torch = {{ index = "pytorch-cpu" }}
torchvision = {{ index = "pytorch-cpu" }}
torchaudio = {{ index = "pytorch-cpu" }}
"#,
            simple = index.simple_url(),
            torch = index.torch_index_url()
        ),
    )
    .unwrap();
    let mut lock = uv_command(&cache);
    lock.current_dir(&project)
        .args(["lock", "--python", PYTHON_REQUEST]);
    run(lock);
    let lockfile = fs_err::read_to_string(project.join("uv.lock")).unwrap();
    assert!(lockfile.contains("version = \"2.5.1+cpu\""), "{lockfile}");
    assert!(lockfile.contains(&format!("{}/whl/cpu", index.url())));

    let mut sync = uv_command(&cache);
    sync.current_dir(&project)
        .args(["sync", "--python", PYTHON_REQUEST]);
    run(sync);
    let venv = project.join(".venv");
    assert_eq!(
        python_eval(
            &venv,
            "import torch, torchvision, torchaudio, tinysde; print(torch.__version__, torch.version.cuda, torchvision.__version__, torch.cuda.is_available())"
        ),
        "2.5.1+cpu None 0.20.1+cpu False"
    );
}

#[test]
fn uv_installs_offline_from_find_links() {
    let index = WheelIndex::start();
    let tmp = tempfile::tempdir().unwrap();
    let links = tmp.path().join("wheels");
    index.write_find_links(&links, &["cu128"]);
    let cache = tmp.path().join("cache");
    let venv = tmp.path().join("venv");
    let mut venv_cmd = uv_command(&cache);
    venv_cmd.args(["venv", "--python", PYTHON_REQUEST]).arg(&venv);
    run(venv_cmd);
    let mut install = uv_command(&cache);
    install
        .env("UV_OFFLINE", "1")
        .args(["pip", "install", "--no-index", "--find-links"])
        .arg(&links)
        .arg("--python")
        .arg(venv.join("bin/python"))
        .args(["torch==2.5.1+cu128", "node-dep-b"]);
    run(install);
    assert_eq!(
        python_eval(
            &venv,
            "import torch, node_dep_b, node_dep_a; print(torch.__version__, torch.version.cuda, node_dep_a.__version__)"
        ),
        "2.5.1+cu128 12.8 2.0.0"
    );
}

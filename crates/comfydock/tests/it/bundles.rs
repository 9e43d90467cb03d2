//! `export` / `import` between two workspaces on one machine, against the stand-ins (issue 7).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use comfydock_test::context::TestContext;
use comfydock_test::file_server::FileServer;
use comfydock_test::node_repo::{NodeContent, NodeRepo};
use comfydock_test::registry::{NodePackage, RegistryServer};

use crate::common::{context, make_bundles, stderr, stdout};
use crate::env_support::EnvSandbox;
use crate::snapshot::comfydock_snapshot;

/// Workspace A (an EnvSandbox) and workspace B sharing A's stand-ins.
struct TwoWorkspaces {
    a: EnvSandbox,
    b: TestContext,
    registry: RegistryServer,
}

impl TwoWorkspaces {
    fn new() -> Self {
        let mut a = EnvSandbox::new();
        let registry = RegistryServer::start();
        registry.publish(
            NodePackage::new("my-node", "1.0.0")
                .name("My Node")
                .node_class("MyNodeA")
                .requirements("node-dep-a<1.1"),
        );
        a.ctx
            .env("COMFYDOCK_REGISTRY_URL", registry.url())
            .env("COMFYDOCK_MANAGER_DATA_URL", registry.manager_data_url());
        let b = other_workspace(&a, &registry);
        Self { a, b, registry }
    }

    fn other_workspace(&self) -> TestContext {
        other_workspace(&self.a, &self.registry)
    }

    fn b_env(&self, name: &str) -> PathBuf {
        self.b.workspace.join("environments").join(name)
    }
}

/// Another initialised workspace on this machine using A's stand-ins.
fn other_workspace(a: &EnvSandbox, registry: &RegistryServer) -> TestContext {
    let mut b = context();
    b.env("COMFYDOCK_COMFYUI_REPO", a.repo.url())
        .env("COMFYDOCK_TORCH_INDEX_URL", a.index.torch_index_url())
        .env("UV_INDEX_URL", a.index.simple_url())
        .env("UV_PYTHON_PREFERENCE", "only-system")
        .env("COMFYDOCK_REGISTRY_URL", registry.url())
        .env("COMFYDOCK_MANAGER_DATA_URL", registry.manager_data_url());
    b.init_workspace();
    b
}

fn run_ok(ctx: &TestContext, args: &[&str]) -> std::process::Output {
    let out = ctx.command().args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?} failed:\n{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    out
}

fn sha256_of(ctx: &TestContext, path: &Path) -> String {
    let out = ctx.std_command("sha256sum").arg(path).output().unwrap();
    assert!(out.status.success());
    stdout(&out).split_whitespace().next().unwrap().to_owned()
}

fn workflow(loader: &str, value: &str, properties: &str) -> String {
    format!(
        r#"{{"last_node_id": 1, "last_link_id": 0, "nodes": [{{"id": 1, "type": "{loader}", "pos": [0, 0], "size": [300, 100], "flags": {{}}, "order": 0, "mode": 0, "inputs": [], "outputs": [], "properties": {{{properties}}}, "widgets_values": ["{value}"]}}], "links": [], "groups": [], "config": {{}}, "extra": {{}}, "version": 0.4}}"#
    )
}

/// `status --json` of environment `a` (not clean is not a failure).
fn status_of_a(ctx: &TestContext) -> serde_json::Value {
    let out = ctx
        .command()
        .args(["-e", "a", "--json", "status"])
        .output()
        .unwrap();
    serde_json::from_str(&stdout(&out)).unwrap()
}

/// `workflow resolve NAME --auto --install` in environment `a`, which must succeed; its report.
fn resolve_installing(ctx: &TestContext, workflow: &str) -> serde_json::Value {
    let out = run_ok(
        ctx,
        &[
            "-e",
            "a",
            "--json",
            "workflow",
            "resolve",
            workflow,
            "--auto",
            "--install",
        ],
    );
    serde_json::from_str(&stdout(&out)).unwrap()
}

fn git_head(ctx: &TestContext, dir: &Path) -> String {
    let out = ctx
        .std_command("git")
        .arg("-C")
        .arg(dir)
        .args(["rev-parse", "HEAD"])
        .output()
        .unwrap();
    stdout(&out).trim().to_owned()
}

#[test]
fn export_then_import_into_another_workspace_reproduces_the_environment() {
    let t = TwoWorkspaces::new();
    let a = &t.a;
    a.create("a", "v0.3.40");
    let env_a = a.env_dir("a");

    // A registry node, a git node and a dev node living in custom_nodes (with ignored files).
    let repo = NodeRepo::create("ComfyUI-Foo");
    repo.release(
        &NodeContent::new()
            .node_class("FooNode")
            .requirements("node-dep-b"),
        "v1.0.0",
    );
    let dev = env_a.join("ComfyUI/custom_nodes/MyDevNode");
    NodeContent::new()
        .node_class("DevNode")
        .file(".gitignore", "build/\n")
        .file("build/big.bin", "generated")
        .file(".env", "TOKEN=secret")
        .write_to(&dev, "MyDevNode");
    let git_spec = format!("{}@v1.0.0", repo.url());
    run_ok(
        &a.ctx,
        &[
            "-e",
            "a",
            "node",
            "add",
            "My-Node@1.0.0",
            &git_spec,
            "--dev",
            dev.to_str().unwrap(),
        ],
    );

    // Two workflows and two models served by the file server.
    let files = FileServer::start();
    let sd15 = b"checkpoint bytes ".repeat(1000);
    let detail = b"lora bytes ".repeat(500);
    files.add("/m/sd15.safetensors", sd15.clone());
    files.add("/m/detail.safetensors", detail.clone());
    let blobs = a.ctx.path().join("blobs");
    fs_err::create_dir_all(&blobs).unwrap();
    fs_err::write(blobs.join("sd15"), &sd15).unwrap();
    fs_err::write(blobs.join("detail"), &detail).unwrap();
    let sd15_sha = sha256_of(&a.ctx, &blobs.join("sd15"));
    let detail_sha = sha256_of(&a.ctx, &blobs.join("detail"));
    let live = env_a.join("ComfyUI/user/default/workflows");
    fs_err::create_dir_all(&live).unwrap();
    fs_err::write(
        live.join("txt2img.json"),
        workflow("CheckpointLoaderSimple", "sd15.safetensors", ""),
    )
    .unwrap();
    fs_err::write(
        live.join("lora.json"),
        workflow(
            "LoraLoaderModelOnly",
            "detail.safetensors",
            &format!(
                r#""models": [{{"name": "detail.safetensors", "directory": "loras", "url": "{}"}}]"#,
                files.url_for("/m/detail.safetensors")
            ),
        ),
    )
    .unwrap();
    run_ok(&a.ctx, &["-e", "a", "workflow", "track", "--all"]);
    // The model references `workflow resolve` records, written here by hand.
    let manifest_path = env_a.join(".cec/pyproject.toml");
    let mut manifest = fs_err::read_to_string(&manifest_path).unwrap();
    write!(
        manifest,
        "\n[tool.comfydock.models.sd15]\nsha256 = \"{sd15_sha}\"\nsize = {}\ntarget = \"checkpoints/sd15.safetensors\"\nsources = [\"{}\"]\ncriticality = \"required\"\n\n[tool.comfydock.models.detail]\nsha256 = \"{detail_sha}\"\nsize = {}\ntarget = \"loras/detail.safetensors\"\nsources = [\"{}\"]\ncriticality = \"optional\"\n",
        sd15.len(),
        files.url_for("/m/sd15.safetensors"),
        detail.len(),
        files.url_for("/m/detail.safetensors"),
    )
    .unwrap();
    // Each workflow's resolution pins its model (keyed by sha256, as a teammate may write it).
    for (workflow, sha, target, criticality) in [
        ("txt2img", &sd15_sha, "checkpoints/sd15.safetensors", "required"),
        ("lora", &detail_sha, "loras/detail.safetensors", "optional"),
    ] {
        write!(
            manifest,
            "\n[tool.comfydock.workflows.{workflow}.models.\"sha256:{sha}\"]\ntarget = \"{target}\"\ncriticality = \"{criticality}\"\n"
        )
        .unwrap();
    }
    fs_err::write(&manifest_path, manifest).unwrap();

    // Uncommitted changes are refused, naming the fix.
    let bundle = a.ctx.path().join("a.tar.gz");
    let out = a
        .ctx
        .command()
        .args(["-e", "a", "export", "-o", bundle.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("uncommitted changes"), "{}", stderr(&out));
    assert!(stderr(&out).contains("comfydock -e a commit"), "{}", stderr(&out));
    assert!(!bundle.exists());
    run_ok(&a.ctx, &["-e", "a", "commit", "-m", "Nodes, workflows, models"]);

    // Exporting twice gives identical bytes; the summary and the secret warning are shown.
    // Sizes vary with the stand-ins' port numbers written into pyproject.toml.
    let sizes = vec![
        (r"\(\d+(\.\d)? (B|KiB)\)", "([SIZE])"),
        (r#""size": \d+"#, r#""size": "[SIZE]""#),
    ];
    let out = comfydock_snapshot!(
        a.ctx,
        a.ctx
            .command()
            .args(["-e", "a", "export", "-o", bundle.to_str().unwrap()]),
        filters = sizes.clone()
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let again = a.ctx.path().join("again.tar.gz");
    let out = comfydock_snapshot!(
        a.ctx,
        a.ctx
            .command()
            .args(["-e", "a", "--json", "export", "-o", again.to_str().unwrap()]),
        filters = sizes
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(fs_err::read(&bundle).unwrap(), fs_err::read(&again).unwrap());

    // Import into workspace B, required models only.
    let bundle_dir = a.ctx.path().to_str().unwrap().to_owned();
    let out = comfydock_snapshot!(
        t.b,
        t.b.command().args([
            "--yes",
            "import",
            bundle.to_str().unwrap(),
            "--models",
            "required",
        ]),
        filters = vec![(bundle_dir.as_str(), "[EXPORTER]")]
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("Import summary"), "{err}");
    assert!(err.contains("Imported"), "{err}");
    let env_b = t.b_env("a");
    for file in [".cec/pyproject.toml", ".cec/uv.lock", ".cec/.python-version"] {
        assert_eq!(
            fs_err::read(env_a.join(file)).unwrap(),
            fs_err::read(env_b.join(file)).unwrap(),
            "{file} differs"
        );
    }
    assert_eq!(git_head(&t.b, &env_b.join("ComfyUI")), a.repo.commit("v0.3.40"));
    // Nodes: registry and git installed and verified, dev sources from the bundle without ignored files.
    let nodes = env_b.join("ComfyUI/custom_nodes");
    assert!(nodes.join("MyDevNode/__init__.py").is_file());
    assert!(
        !nodes.join("MyDevNode/build/big.bin").exists(),
        ".gitignore respected"
    );
    let out = run_ok(&t.b, &["-e", "a", "--json", "node", "list"]);
    let listed: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let states: BTreeMap<String, String> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["key"].as_str().unwrap().to_owned(),
                n["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(states.len(), 3, "{states:?}");
    assert!(states.values().all(|s| s == "installed"), "{states:?}");
    // Python packages of every node are installed from the lock.
    let python = env_b.join(".venv/bin/python");
    let out =
        t.b.std_command(&python)
            .args(["-c", "import node_dep_a, node_dep_b, tinynum"])
            .output()
            .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    // The folders `run` points ComfyUI at exist (ComfyUI refuses a missing --user-directory).
    for dir in ["user", "input", "output"] {
        assert!(
            env_b.join("ComfyUI").join(dir).is_dir(),
            "ComfyUI/{dir} after import"
        );
    }
    // Workflows are in ComfyUI's user folder.
    let live_b = env_b.join("ComfyUI/user/default/workflows");
    assert!(live_b.join("txt2img.json").is_file() && live_b.join("lora.json").is_file());
    // Only the required model was downloaded, verified.
    let models_b = t.b.workspace.join("models");
    assert_eq!(
        fs_err::read(models_b.join("checkpoints/sd15.safetensors")).unwrap(),
        sd15
    );
    assert!(!models_b.join("loras/detail.safetensors").exists());
    // Status in B lists only the optional model left out, with the command that fetches it.
    let out = run_ok(&t.b, &["-e", "a", "--json", "status"]);
    let b_status: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let issues = b_status["issues"].as_array().unwrap();
    assert_eq!(issues.len(), 1, "{b_status}");
    assert!(
        issues[0]["what"]
            .as_str()
            .unwrap()
            .starts_with("model `loras/detail.safetensors` (optional"),
        "{b_status}"
    );
    assert_eq!(issues[0]["fix"], "comfydock -e a sync --models all");

    // Importing again: the name is taken, so it becomes `a-1`; `skip` downloads nothing, and the
    // checkpoint is found locally by hash. The git node's repository is gone now: that node
    // fails, the import does not, and the failure is listed.
    let moved = repo.path().with_file_name("ComfyUI-Foo-moved");
    fs_err::rename(repo.path(), &moved).unwrap();
    fs_err::remove_dir_all(t.b.workspace.join("cache/git/nodes")).unwrap();
    let out = run_ok(
        &t.b,
        &["--yes", "import", bundle.to_str().unwrap(), "--models", "skip"],
    );
    fs_err::rename(&moved, repo.path()).unwrap();
    let err = stderr(&out);
    assert!(err.contains("importing as `a-1`"), "{err}");
    assert!(err.contains("1 found locally, 0 downloaded, 1 skipped"), "{err}");
    assert!(err.contains("node `comfyui-foo` failed"), "{err}");
    assert!(err.contains("Custom nodes: 2/3 installed"), "{err}");
    assert!(t.b_env("a-1").join(".ready").is_file());
    assert!(
        t.b_env("a-1")
            .join("ComfyUI/custom_nodes/MyDevNode/__init__.py")
            .is_file()
    );
    assert!(!models_b.join("loras/detail.safetensors").exists());
    // The skipped model is fetched later by `workflow resolve --install` (URL from the workflow).
    let out =
        t.b.command()
            .args(["-e", "a-1", "workflow", "resolve", "lora", "--auto", "--install"])
            .output()
            .unwrap();
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    assert_eq!(
        fs_err::read(models_b.join("loras/detail.safetensors")).unwrap(),
        detail
    );
    // What `workflow resolve` recorded travels in the next export's manifest.json.
    run_ok(&t.b, &["-e", "a-1", "commit", "-m", "Resolved lora"]);
    let from_b = t.b.path().join("from-b.tar.gz");
    run_ok(&t.b, &["-e", "a-1", "export", "-o", from_b.to_str().unwrap()]);
    let out =
        t.b.std_command("tar")
            .arg("-xzOf")
            .arg(&from_b)
            .arg("manifest.json")
            .output()
            .unwrap();
    let bundle_manifest: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let lora = bundle_manifest["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["target"] == "loras/detail.safetensors")
        .unwrap_or_else(|| panic!("{bundle_manifest}"));
    assert_eq!(lora["blake3"].as_str().unwrap().len(), 64, "{lora}");
    assert_eq!(lora["sources"][0], files.url_for("/m/detail.safetensors"));

    // Workspace C has the checkpoint under another folder and name: found by hash, nothing is
    // downloaded, and the workflow's widget value is rewritten to the local path (seed 001).
    let c = t.other_workspace();
    let local = c.workspace.join("models/checkpoints/mine/local-sd15.safetensors");
    fs_err::create_dir_all(local.parent().unwrap()).unwrap();
    fs_err::write(&local, &sd15).unwrap();
    run_ok(&c, &["model", "scan", "--sha256"]);
    let out = run_ok(
        &c,
        &[
            "--yes",
            "import",
            bundle.to_str().unwrap(),
            "--models",
            "all",
            "--name",
            "c",
        ],
    );
    let err = stderr(&out);
    assert!(err.contains("1 found locally, 1 downloaded"), "{err}");
    assert!(
        err.contains("substituted in `txt2img` node 1: sd15.safetensors → mine/local-sd15.safetensors"),
        "{err}"
    );
    let env_c = c.workspace.join("environments/c");
    let live_c: serde_json::Value = serde_json::from_str(
        &fs_err::read_to_string(env_c.join("ComfyUI/user/default/workflows/txt2img.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        live_c["nodes"][0]["widgets_values"][0],
        "mine/local-sd15.safetensors"
    );
    assert!(!c.workspace.join("models/checkpoints/sd15.safetensors").exists());
    assert_eq!(
        fs_err::read(c.workspace.join("models/loras/detail.safetensors")).unwrap(),
        detail
    );
    // The committed copy keeps the bundle's workflow; the change is the user's to commit.
    assert_eq!(
        fs_err::read(env_c.join(".cec/workflows/txt2img.json")).unwrap(),
        fs_err::read(env_a.join(".cec/workflows/txt2img.json")).unwrap()
    );

    // A model that cannot be referenced (no hash) is an issue: refused, unless --allow-issues.
    let mut manifest = fs_err::read_to_string(&manifest_path).unwrap();
    manifest.push_str("\n[tool.comfydock.models.mystery]\ntarget = \"vae/mystery.safetensors\"\n");
    fs_err::write(&manifest_path, manifest).unwrap();
    run_ok(&a.ctx, &["-e", "a", "commit", "-m", "Unhashed model"]);
    let out = a
        .ctx
        .command()
        .args(["-e", "a", "export", "-o", again.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("model `models.mystery` cannot be referenced"),
        "{err}"
    );
    assert!(err.contains("--allow-issues"), "{err}");
    let out = run_ok(
        &a.ctx,
        &[
            "-e",
            "a",
            "export",
            "--allow-issues",
            "-o",
            again.to_str().unwrap(),
        ],
    );
    assert!(stderr(&out).contains("mystery"), "{}", stderr(&out));
}

#[test]
fn a_failed_environment_creation_removes_the_partial_environment() {
    let sb = EnvSandbox::new();
    let dir = make_bundles(&sb.ctx, MAKE_BUNDLES, &[]);
    // Valid bundle, but its ComfyUI commit does not exist in the source repository.
    let out = sb
        .ctx
        .command()
        .args(["--yes", "import"])
        .arg(dir.join("unknown-commit.tar.gz"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("Failed to create environment `evil`"), "{err}");
    assert!(
        err.contains(&"0".repeat(40)),
        "the unknown commit is named: {err}"
    );
    assert!(!sb.env_dir("evil").exists(), "partial environment left behind");
    let out = run_ok(&sb.ctx, &["--json", "list"]);
    assert_eq!(stdout(&out).trim(), "[]");
}

/// Every file under `dir` with its size.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, u64> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs_err::read_dir(&d).unwrap().flatten() {
            let path = entry.path();
            let meta = fs_err::symlink_metadata(&path).unwrap();
            if meta.is_dir() {
                stack.push(path.clone());
            }
            out.insert(path, meta.len());
        }
    }
    out
}

const MAKE_BUNDLES: &str = r#"
import gzip, hashlib, io, json, sys, tarfile
out = sys.argv[1]
pin = "[tool.comfydock]\ntorch_backends = ['cpu']\n\n[tool.comfydock.comfyui]\nref = 'v0.3.40'\ncommit = '" + "0" * 40 + "'\n"
# The smallest lock covering the cpu backend (import reads the backends from the lock).
lock = b"version = 1\n\n[[package]]\nname = 'x'\nversion = '0.0.0'\nsource = { virtual = '.' }\n\n[package.optional-dependencies]\ncpu = [{ name = 'torch', version = '2.5.1+cpu', source = { registry = 'http://127.0.0.1:9/whl/cpu' } }]\n"
base = {"pyproject.toml": ("[project]\nname = 'x'\n" + pin).encode(), "uv.lock": lock}
def digest(files):
    return {n: {"sha256": hashlib.sha256(d).hexdigest(), "size": len(d)} for n, d in files.items()}
def manifest(listed, version=1, models=()):
    return json.dumps({"format_version": version, "comfydock_version": "0.1.0",
        "created_at": "2026-01-01T00:00:00Z", "environment_name": "evil", "platform": "linux-x86_64",
        "python": "3.12", "comfyui": {"reference": "v0.3.40", "commit": "0" * 40},
        "torch_backend": "cpu", "torch_backends": ["cpu"], "cec_commit": "0" * 40,
        "counts": {"workflows": 0, "registry_nodes": 0, "git_nodes": 0, "dev_nodes": 0, "models": 0},
        "models": list(models), "files": digest(listed)}).encode()
def add(t, name, data=b"", **kw):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    for k, v in kw.items():
        setattr(info, k, v)
    t.addfile(info, io.BytesIO(data) if data else None)
def bundle(name, extra=None, files=base, listed=None, version=1, models=()):
    buf = io.BytesIO()
    t = tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT)
    add(t, "manifest.json", manifest(files if listed is None else listed, version, models))
    for n, d in files.items():
        add(t, n, d)
    if extra:
        extra(t, buf)
    else:
        t.close()
    with open(f"{out}/{name}.tar.gz", "wb") as f:
        f.write(gzip.compress(buf.getvalue(), mtime=0))
bundle("unknown-commit")
bundle("traversal", lambda t, b: (add(t, "../escape.txt", b"x"), t.close()))
bundle("absolute", lambda t, b: (add(t, "/tmp/abs.txt", b"x"), t.close()))
bundle("symlink", lambda t, b: (add(t, "workflows/link.json", type=tarfile.SYMTYPE, linkname="/etc/passwd"), t.close()))
bundle("hardlink", lambda t, b: (add(t, "workflows/hard.json", type=tarfile.LNKTYPE, linkname="pyproject.toml"), t.close()))
bundle("device", lambda t, b: (add(t, "dev/null", type=tarfile.CHRTYPE), t.close()))
def bomb(name):
    def write(t, b):
        info = tarfile.TarInfo(name)
        info.size = 64 * 1024 ** 3
        b.write(info.tobuf(tarfile.GNU_FORMAT))
        b.write(b"\0" * 4096)
    return write
# Over the total cap (a dev node file has no cap of its own), and over a workflow's own cap.
bundle("bomb", bomb("dev_nodes/n/bomb.bin"))
bundle("bomb-workflow", bomb("workflows/bomb.json"))
bundle("checksum", listed={"pyproject.toml": b"[project]\nname = 'y'\n", "uv.lock": base["uv.lock"]})
bundle("missing", listed=dict(base, **{"workflows/a.json": b"{}"}))
bundle("unlisted", lambda t, b: (add(t, "workflows/extra.json", b"{}"), t.close()))
bundle("newer", version=99)
evil = dict(base, **{"pyproject.toml": base["pyproject.toml"] + b"\n[tool.comfydock.nodes.x]\nsource = 'dev'\nname = '../../escape'\n"})
bundle("nodename", files=evil)
huge = {"blake3": "a" * 64, "sha256": None, "size": 10 ** 18, "target": "checkpoints/huge.safetensors",
        "sources": ["http://127.0.0.1:9/huge"], "criticality": "required"}
bundle("huge-model", models=[huge])
with open(f"{out}/garbage.tar.gz", "wb") as f:
    f.write(b"this is not a bundle")
"#;

#[test]
fn malicious_and_broken_bundles_are_rejected_without_touching_the_workspace() {
    let ctx = context();
    ctx.init_workspace();
    let dir = make_bundles(&ctx, MAKE_BUNDLES, &[]);
    let before = snapshot(&ctx.workspace);
    let cases = [
        ("traversal", "leaves the bundle"),
        ("absolute", "absolute"),
        ("symlink", "symbolic link"),
        ("hardlink", "hard link"),
        ("device", "device"),
        ("bomb", "decompression bomb"),
        (
            "bomb-workflow",
            "entry `workflows/bomb.json` is 64.0 GiB, more than the 128.0 MiB allowed for it",
        ),
        ("checksum", "checksum mismatch for `pyproject.toml`"),
        ("missing", "missing file `workflows/a.json`"),
        ("unlisted", "not listed in manifest.json"),
        ("newer", "format version 99"),
        ("nodename", "unsafe folder name `../../escape`"),
        ("garbage", "Invalid bundle"),
    ];
    for (name, expected) in cases {
        let path = dir.join(format!("{name}.tar.gz"));
        let out = ctx
            .command()
            .args(["--yes", "import"])
            .arg(&path)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{name} was accepted");
        let err = stderr(&out);
        assert!(err.contains(expected), "{name}: expected `{expected}` in:\n{err}");
        assert!(err.contains("hint:"), "{name}: no hint in:\n{err}");
        assert_eq!(snapshot(&ctx.workspace), before, "{name} changed the workspace");
    }
    assert!(!ctx.path().join("escape.txt").exists());
}

const MAKE_COMFYGIT: &str = r#"
import gzip, io, sys, tarfile
out, python, commit, git_url, git_commit = sys.argv[1:6]
pyproject = f"""[project]
name = "comfygit-env-from-cg"
version = "0.1.0"
requires-python = ">={python}"
dependencies = []

[tool.uv]
constraint-dependencies = ["numpy<2"]

[tool.comfygit]
schema_version = 2
comfyui_version = "v0.3.40"
comfyui_version_type = "release"
comfyui_commit_sha = "{commit}"
python_version = "{python}"

[tool.comfygit.nodes.my-node]
name = "My Node"
registry_id = "my-node"
version = "1.0.0"
source = "registry"

[tool.comfygit.nodes.ComfyUI-Foo]
name = "ComfyUI-Foo"
repository = "{git_url}"
version = "{git_commit}"
source = "git"

[tool.comfygit.nodes.Mine]
name = "Mine"
version = "dev"
source = "development"

[tool.comfygit.models]
0b222b1d568748dc = {{ filename = "x.safetensors", relative_path = "checkpoints/x.safetensors", sources = ["https://example.invalid/x"] }}
"""
files = {"pyproject.toml": pyproject.encode(), ".python-version": f"{python}\n".encode(),
         "workflows/one.json": b'{"nodes": [], "links": []}'}
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w") as t:
    for name, data in files.items():
        info = tarfile.TarInfo(name)
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
with open(out, "wb") as f:
    f.write(gzip.compress(buf.getvalue()))
"#;

#[test]
fn a_comfygit_export_is_mapped_where_clear_and_the_rest_is_listed() {
    let t = TwoWorkspaces::new();
    let repo = NodeRepo::create("ComfyUI-Foo");
    let git_commit = repo.release(&NodeContent::new().node_class("FooNode"), "v1.0.0");
    let out =
        t.b.std_command("python3")
            .args(["-c", "import sys; print('%d.%d' % sys.version_info[:2])"])
            .output()
            .unwrap();
    let python = stdout(&out).trim().to_owned();
    let bundle = t.b.path().join("cg.tar.gz");
    let out =
        t.b.std_command("python3")
            .args(["-c", MAKE_COMFYGIT])
            .arg(&bundle)
            .args([&python, &t.a.repo.commit("v0.3.40"), &repo.url(), &git_commit])
            .output()
            .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));

    let out = run_ok(&t.b, &["--yes", "import", bundle.to_str().unwrap()]);
    let err = stderr(&out);
    assert!(err.contains("this is a comfygit export"), "{err}");
    assert!(err.contains("Imported environment `from-cg`"), "{err}");
    assert!(err.contains("not mapped from the comfygit export"), "{err}");
    assert!(err.contains("dev node `Mine`"), "{err}");
    assert!(err.contains("model `checkpoints/x.safetensors`"), "{err}");
    assert!(err.contains("numpy<2"), "{err}");

    let env = t.b_env("from-cg");
    assert_eq!(git_head(&t.b, &env.join("ComfyUI")), t.a.repo.commit("v0.3.40"));
    let out = run_ok(&t.b, &["-e", "from-cg", "--json", "node", "list"]);
    let listed: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let mut nodes: Vec<(String, String)> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["key"].as_str().unwrap().to_owned(),
                n["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    nodes.sort();
    assert_eq!(
        nodes,
        [
            ("comfyui-foo".to_owned(), "installed".to_owned()),
            ("my-node".to_owned(), "installed".to_owned())
        ]
    );
    let manifest = fs_err::read_to_string(env.join(".cec/pyproject.toml")).unwrap();
    assert!(
        manifest.contains(&format!("commit = \"{git_commit}\"")),
        "{manifest}"
    );
    assert!(env.join(".cec/workflows/one.json").is_file());
    assert!(env.join("ComfyUI/user/default/workflows/one.json").is_file());
    let out = run_ok(&t.b, &["-e", "from-cg", "--json", "status"]);
    let status: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(status["clean"], true, "{status}");
}

#[test]
fn models_that_do_not_fit_stop_the_import_before_anything_is_created() {
    let ctx = context();
    ctx.init_workspace();
    let dir = make_bundles(&ctx, MAKE_BUNDLES, &[]);
    let out = ctx
        .command()
        .args(["--yes", "import", "--models", "all"])
        .arg(dir.join("huge-model.tar.gz"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("Not enough disk space"), "{err}");
    assert!(err.contains("need 888.2 PiB, "), "sizes in human units: {err}");
    let environments: Vec<_> = fs_err::read_dir(ctx.workspace.join("environments"))
        .map(|r| r.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(environments.is_empty(), "{environments:?}");
}

/// The recovery loop: a resolved workflow exported, imported with `--models skip` elsewhere;
/// `status` names the missing model with its fix, `resolve` keeps the pins it cannot satisfy,
/// and `sync --models` downloads and verifies it from the recorded source. `pyproject.toml`
/// never changes on the way.
#[test]
fn a_model_skipped_at_import_is_listed_by_status_and_fetched_by_sync_models() {
    let t = TwoWorkspaces::new();
    let a = &t.a;
    a.create("a", "v0.3.40");
    let files = FileServer::start();
    let model = b"dream checkpoint ".repeat(2000);
    files.add("/m/dream.safetensors", model.clone());
    let sha = comfydock_test::archive::sha256_hex(&model);
    let live = a.env_dir("a").join("ComfyUI/user/default/workflows");
    fs_err::create_dir_all(&live).unwrap();
    fs_err::write(
        live.join("flow.json"),
        workflow(
            "CheckpointLoaderSimple",
            "dream.safetensors",
            &format!(
                r#""models": [{{"name": "dream.safetensors", "directory": "checkpoints", "url": "{}", "hash": "{sha}", "hash_type": "SHA256"}}]"#,
                files.url_for("/m/dream.safetensors")
            ),
        ),
    )
    .unwrap();
    run_ok(&a.ctx, &["-e", "a", "workflow", "track", "flow"]);
    run_ok(
        &a.ctx,
        &["-e", "a", "workflow", "resolve", "flow", "--auto", "--install"],
    );
    run_ok(&a.ctx, &["-e", "a", "commit", "-m", "Flow"]);
    let bundle = a.ctx.path().join("flow.tar.gz");
    run_ok(&a.ctx, &["-e", "a", "export", "-o", bundle.to_str().unwrap()]);
    let pinned = fs_err::read(a.env_dir("a").join(".cec/pyproject.toml")).unwrap();

    // On a terminal import asks which models to fetch, with the sizes and the free space.
    let out =
        t.b.terminal_command(&["import", bundle.to_str().unwrap()], "y\n3\n");
    let shown = stdout(&out);
    assert!(out.status.success(), "{shown}");
    assert!(
        shown.contains("Which models should be downloaded? (files already on this machine are reused; ")
            && shown.contains(" free under "),
        "{shown}"
    );
    assert!(shown.contains("  1. all: 1 models, up to 33.2 KiB"), "{shown}");
    assert!(
        shown.contains("  2. required: 1 models, up to 33.2 KiB"),
        "{shown}"
    );
    assert!(shown.contains("  3. skip: none now"), "{shown}");
    assert!(shown.contains("1 skipped"), "{shown}");
    let manifest_b = t.b_env("a").join(".cec/pyproject.toml");
    assert_eq!(fs_err::read(&manifest_b).unwrap(), pinned);
    let model_b = t.b.workspace.join("models/checkpoints/dream.safetensors");
    assert!(!model_b.exists());

    // status names the model, who needs it, and the command that fetches it.
    let out = comfydock_snapshot!(t.b, t.b.command().args(["-e", "a", "status"]));
    assert!(out.status.success(), "{}", stderr(&out));
    let status: serde_json::Value =
        serde_json::from_str(&stdout(&run_ok(&t.b, &["-e", "a", "--json", "status"]))).unwrap();
    assert_eq!(status["clean"], false, "{status}");
    let missing = status["missing_models"].as_array().unwrap();
    assert_eq!(missing.len(), 1, "{status}");
    assert_eq!(missing[0]["sha256"], sha);
    assert_eq!(missing[0]["workflows"][0], "flow");
    assert!(
        status["issues"]
            .to_string()
            .contains("comfydock -e a sync --models required"),
        "{status}"
    );

    // A resolve that cannot find the file keeps the pin and its sources.
    let out =
        t.b.command()
            .args(["-e", "a", "workflow", "resolve", "flow", "--auto"])
            .output()
            .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(fs_err::read(&manifest_b).unwrap(), pinned, "no pin is dropped");

    // sync --models fetches it from the recorded source and verifies it.
    let out = comfydock_snapshot!(t.b, t.b.command().args(["-e", "a", "sync", "--models"]));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(fs_err::read(&model_b).unwrap(), model);
    let status: serde_json::Value =
        serde_json::from_str(&stdout(&run_ok(&t.b, &["-e", "a", "--json", "status"]))).unwrap();
    assert_eq!(status["missing_models"], serde_json::json!([]), "{status}");
    assert_eq!(status["clean"], true, "{status}");
    assert_eq!(fs_err::read(&manifest_b).unwrap(), pinned);

    // Bytes that do not match the pin are never installed.
    fs_err::remove_file(&model_b).unwrap();
    run_ok(&t.b, &["model", "scan"]);
    files.wrong_bytes("/m/dream.safetensors", b"tampered".repeat(100));
    let out =
        t.b.command()
            .args(["-e", "a", "sync", "--models", "all"])
            .output()
            .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(!model_b.exists(), "a file that fails verification is not kept");
    assert!(
        stderr(&out).contains("could not be downloaded"),
        "{}",
        stderr(&out)
    );
}

/// `export` refuses a tracked workflow nobody resolved, and one using a node type no package
/// is known for, each with its fix; `--allow-issues` exports anyway and lists them.
#[test]
fn export_refuses_unresolved_workflows_and_unknown_node_types() {
    let t = TwoWorkspaces::new();
    let a = &t.a;
    a.create("a", "v0.3.40");
    let live = a.env_dir("a").join("ComfyUI/user/default/workflows");
    fs_err::create_dir_all(&live).unwrap();
    fs_err::write(live.join("flow.json"), workflow("MysteryNode", "x", "")).unwrap();
    run_ok(&a.ctx, &["-e", "a", "workflow", "track", "flow"]);
    run_ok(&a.ctx, &["-e", "a", "commit", "-m", "Flow"]);
    let bundle = a.ctx.path().join("flow.tar.gz");
    let export = |extra: &[&str]| {
        a.ctx
            .command()
            .args(["-e", "a", "export", "-o", bundle.to_str().unwrap()])
            .args(extra)
            .output()
            .unwrap()
    };
    let out = export(&[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("workflow `flow` was never resolved"),
        "{}",
        stderr(&out)
    );
    assert!(!bundle.exists());

    // Resolving records the unknown type; export now names it and the mapping command.
    let out = a
        .ctx
        .command()
        .args(["-e", "a", "workflow", "resolve", "flow", "--auto"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    run_ok(&a.ctx, &["-e", "a", "commit", "-m", "Resolve flow"]);
    let out = comfydock_snapshot!(
        a.ctx,
        a.ctx
            .command()
            .args(["-e", "a", "export", "-o", bundle.to_str().unwrap()])
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(!bundle.exists());
    let out = export(&["--allow-issues"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("MysteryNode"), "{}", stderr(&out));
    assert!(bundle.is_file());
    fs_err::remove_file(&bundle).unwrap();

    // Mapped by hand to a registry package, the workflow resolves, installs and exports.
    let out = comfydock_snapshot!(
        a.ctx,
        a.ctx
            .command()
            .args(["-e", "a", "workflow", "node", "map", "MysteryNode", "my-node"])
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let manifest = fs_err::read_to_string(a.env_dir("a").join(".cec/pyproject.toml")).unwrap();
    assert!(
        manifest.contains("[tool.comfydock.node_mappings]\nMysteryNode = \"my-node\""),
        "{manifest}"
    );
    let report = resolve_installing(&a.ctx, "flow");
    assert_eq!(report["nodes"][0]["package"], "my-node", "{report}");
    assert_eq!(
        report["nodes_installed"],
        serde_json::json!(["my-node"]),
        "{report}"
    );
    run_ok(&a.ctx, &["-e", "a", "commit", "-m", "Map MysteryNode"]);
    run_ok(&a.ctx, &["-e", "a", "export", "-o", bundle.to_str().unwrap()]);

    // `--none` says the type needs no package; unmap takes any mapping back.
    run_ok(
        &a.ctx,
        &["-e", "a", "workflow", "node", "map", "MysteryNode", "--none"],
    );
    let manifest = fs_err::read_to_string(a.env_dir("a").join(".cec/pyproject.toml")).unwrap();
    assert!(manifest.contains("MysteryNode = false"), "{manifest}");
    run_ok(&a.ctx, &["-e", "a", "workflow", "node", "unmap", "MysteryNode"]);
    let out = comfydock_snapshot!(
        a.ctx,
        a.ctx
            .command()
            .args(["-e", "a", "workflow", "node", "unmap", "MysteryNode"])
    );
    assert_eq!(out.status.code(), Some(1));
    let manifest = fs_err::read_to_string(a.env_dir("a").join(".cec/pyproject.toml")).unwrap();
    assert!(!manifest.contains("node_mappings"), "{manifest}");
}

/// The `[tool.comfydock.workflows.NAME.models]` tables of a manifest: the pins and their sources.
fn model_pins(manifest: &Path, workflow: &str) -> String {
    let text = fs_err::read_to_string(manifest).unwrap();
    let parsed: toml::Table = toml::from_str(&text).unwrap();
    let models = &parsed["tool"]["comfydock"]["workflows"][workflow]["models"];
    toml::to_string(models).unwrap()
}

/// Issue 16's loop, end to end. One workflow needs an ambiguous model (two indexed files), a
/// model no index knows (no URL in the workflow), a node type two packages provide, a node type
/// only a registry search by class name finds, and a node type nothing knows. Resolve on a
/// terminal asks each question once; the unknown type is mapped by hand; `--auto --install`
/// reuses every answer; export; import with `--models skip` into a fresh workspace; `status`
/// lists the missing models; `sync --models all` fetches and verifies them; the pins and their
/// sources in `pyproject.toml` never change.
#[test]
fn the_resolution_loop_end_to_end() {
    let t = TwoWorkspaces::new();
    let a = &t.a;
    for id in ["upscale-a", "upscale-b"] {
        t.registry
            .publish(NodePackage::new(id, "1.0.0").node_class("SharedUpscale"));
    }
    t.registry.publish(
        NodePackage::new("fresh-pack", "0.2.0")
            .description("Adds the FreshNode sampler")
            .node_class("FreshNode")
            .not_in_manager_map(),
    );
    t.registry.publish(
        NodePackage::new("mystery-pack", "3.0.0")
            .node_class("MysteryNode")
            .not_in_manager_map(),
    );
    a.create("a", "v0.3.40");

    // Two indexed checkpoints named model.safetensors, each with a recorded source; an upscaler
    // the index does not know, served by a file server.
    let files = FileServer::start();
    let checkpoints = a.ctx.workspace.join("models/checkpoints");
    let mut checkpoint_urls = Vec::new();
    for (version, bytes) in [
        ("v1", b"first version ".repeat(300)),
        ("v2", b"second version ".repeat(400)),
    ] {
        fs_err::create_dir_all(checkpoints.join(version)).unwrap();
        fs_err::write(checkpoints.join(version).join("model.safetensors"), &bytes).unwrap();
        let path = format!("/m/{version}/model.safetensors");
        files.add(&path, bytes);
        checkpoint_urls.push(files.url_for(&path));
    }
    let upscaler = b"upscaler weights ".repeat(500);
    files.add("/m/upscaler.pth", upscaler.clone());
    run_ok(&a.ctx, &["model", "scan"]);
    for (version, url) in ["v1", "v2"].iter().zip(&checkpoint_urls) {
        let path = checkpoints.join(version).join("model.safetensors");
        run_ok(&a.ctx, &["model", "add-source", path.to_str().unwrap(), url]);
    }

    let live = a.env_dir("a").join("ComfyUI/user/default/workflows");
    fs_err::create_dir_all(&live).unwrap();
    let node = |id: u32, node_type: &str, value: &str| {
        format!(
            r#"{{"id": {id}, "type": "{node_type}", "pos": [0, {y}], "size": [300, 100], "flags": {{}}, "order": {id}, "mode": 0, "inputs": [], "outputs": [], "properties": {{}}, "widgets_values": ["{value}"]}}"#,
            y = id * 150
        )
    };
    let nodes = [
        node(1, "CheckpointLoaderSimple", "model.safetensors"),
        node(2, "UpscaleModelLoader", "upscaler.pth"),
        node(3, "SharedUpscale", "2x"),
        node(4, "FreshNode", "euler"),
        node(5, "MysteryNode", "?"),
    ];
    fs_err::write(
        live.join("flow.json"),
        format!(
            r#"{{"last_node_id": 5, "last_link_id": 0, "nodes": [{}], "links": [], "groups": [], "config": {{}}, "extra": {{}}, "version": 0.4}}"#,
            nodes.join(", ")
        ),
    )
    .unwrap();
    run_ok(&a.ctx, &["-e", "a", "workflow", "track", "flow"]);
    let manifest_a = a.env_dir("a").join(".cec/pyproject.toml");

    // 1. On a terminal: which package, which checkpoint, and where the upscaler comes from.
    let input = format!("2\n2\n2\n{}\n", files.url_for("/m/upscaler.pth"));
    let out = a
        .ctx
        .terminal_command(&["-e", "a", "workflow", "resolve", "flow"], &input);
    let shown = stdout(&out);
    assert!(
        shown.contains("Several packages provide `SharedUpscale`:"),
        "{shown}"
    );
    assert!(
        shown.contains("  1. upscale-a (") && shown.contains("  2. upscale-b ("),
        "{shown}"
    );
    assert!(
        shown.contains("Several indexed files match model `model.safetensors`:"),
        "{shown}"
    );
    assert!(
        shown.contains(
            "No indexed file matches model `upscaler.pth` (optional), and the workflow gives no URL:"
        ),
        "{shown}"
    );
    assert!(
        shown.contains("MysteryNode"),
        "the unknown type is reported: {shown}"
    );
    assert!(
        shown.contains("comfydock -e a workflow node map MysteryNode"),
        "its fix names the mapping command: {shown}"
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "nodes are missing and one type is unknown: {shown}"
    );
    let pins = model_pins(&manifest_a, "flow");
    assert!(
        pins.contains(&checkpoint_urls[1]),
        "the chosen checkpoint (v2) is pinned with its source: {pins}"
    );
    assert!(!pins.contains(&checkpoint_urls[0]), "{pins}");
    assert!(
        pins.contains(&files.url_for("/m/upscaler.pth")),
        "the upscaler is pinned with the URL given: {pins}"
    );
    assert_eq!(
        fs_err::read(a.ctx.workspace.join("models/upscale_models/upscaler.pth")).unwrap(),
        upscaler,
        "downloaded, verified and indexed"
    );

    // 2. The unknown type is mapped by hand; `--auto --install` asks nothing and reuses answers.
    run_ok(
        &a.ctx,
        &[
            "-e",
            "a",
            "workflow",
            "node",
            "map",
            "MysteryNode",
            "mystery-pack",
        ],
    );
    let report = resolve_installing(&a.ctx, "flow");
    let why_of = |node_type: &str| {
        let node = report["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["node_type"] == node_type)
            .unwrap_or_else(|| panic!("{node_type} in {report}"));
        (
            node["package"].as_str().unwrap().to_owned(),
            node["why"].as_str().unwrap().to_owned(),
        )
    };
    assert_eq!(
        why_of("SharedUpscale"),
        (
            "upscale-b".to_owned(),
            "chosen earlier (saved in pyproject.toml)".to_owned()
        )
    );
    assert_eq!(
        why_of("FreshNode").0,
        "fresh-pack",
        "found by a registry search for the class"
    );
    assert_eq!(
        why_of("MysteryNode"),
        (
            "mystery-pack".to_owned(),
            "mapped by hand (`workflow node map`)".to_owned()
        )
    );
    for model in report["models"].as_array().unwrap() {
        assert_eq!(
            model["how"], "pinned earlier (saved in pyproject.toml)",
            "{report}"
        );
    }
    let mut installed = report["nodes_installed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap().to_owned())
        .collect::<Vec<_>>();
    installed.sort();
    assert_eq!(installed, ["fresh-pack", "mystery-pack", "upscale-b"]);
    assert_eq!(model_pins(&manifest_a, "flow"), pins, "the pins did not move");

    // 3. Commit and export: nothing to refuse.
    run_ok(&a.ctx, &["-e", "a", "commit", "-m", "Resolve flow"]);
    let bundle = a.ctx.path().join("flow.tar.gz");
    run_ok(&a.ctx, &["-e", "a", "export", "-o", bundle.to_str().unwrap()]);
    assert_eq!(model_pins(&manifest_a, "flow"), pins);

    // 4. Import into a fresh workspace without models: the same pins; status lists what is missing.
    let b = t.other_workspace();
    run_ok(
        &b,
        &["--yes", "import", bundle.to_str().unwrap(), "--models", "skip"],
    );
    let manifest_b = b.workspace.join("environments/a/.cec/pyproject.toml");
    assert_eq!(model_pins(&manifest_b, "flow"), pins);
    let status = status_of_a(&b);
    assert_eq!(status["clean"], false, "{status}");
    let mut missing: Vec<&str> = status["missing_models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["target"].as_str().unwrap_or_default())
        .collect();
    missing.sort_unstable();
    assert_eq!(
        missing,
        ["checkpoints/model.safetensors", "upscale_models/upscaler.pth"],
        "{status}"
    );
    assert_eq!(model_pins(&manifest_b, "flow"), pins);

    // 5. The recovery command fetches both from their recorded sources and verifies them.
    run_ok(&b, &["-e", "a", "sync", "--models", "all"]);
    assert_eq!(
        fs_err::read(b.workspace.join("models/checkpoints/model.safetensors")).unwrap(),
        b"second version ".repeat(400),
        "the chosen checkpoint, not the other one"
    );
    assert_eq!(
        fs_err::read(b.workspace.join("models/upscale_models/upscaler.pth")).unwrap(),
        upscaler
    );
    let status = status_of_a(&b);
    assert_eq!(status["missing_models"], serde_json::json!([]), "{status}");
    assert_eq!(status["clean"], true, "{status}");
    assert_eq!(model_pins(&manifest_b, "flow"), pins);
    assert_eq!(model_pins(&manifest_a, "flow"), pins);

    // 6. An edit in ComfyUI reads by widget name in `workflow diff`.
    let edited = fs_err::read_to_string(live.join("flow.json"))
        .unwrap()
        .replace(r#""widgets_values": ["2x"]"#, r#""widgets_values": ["4x"]"#)
        .replace(r#"["model.safetensors"]"#, r#"["other.safetensors"]"#);
    fs_err::write(live.join("flow.json"), edited).unwrap();
    let out = run_ok(&a.ctx, &["-e", "a", "workflow", "diff", "flow"]);
    let shown = stdout(&out);
    assert!(
        shown.contains(r#"(CheckpointLoaderSimple) ckpt_name: "model.safetensors" -> "other.safetensors""#),
        "a built-in node's widget by name: {shown}"
    );
    assert!(
        shown.contains(r#"(SharedUpscale) #0: "2x" -> "4x""#),
        "a custom node without a definition by position: {shown}"
    );
}

/// `git -C DIR ARGS…` in `ctx`'s hermetic environment; its stdout.
fn git_in(ctx: &TestContext, dir: &Path, args: &[&str]) -> String {
    let out = ctx
        .std_command("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {}", stderr(&out));
    stdout(&out)
}

/// A's environment `a` (node `my-node`, workflow `flow` tracked and committed) with a remote
/// `origin`: a bare repository served over smart HTTP.
struct Team {
    cec_a: PathBuf,
    live_a: PathBuf,
    branch: String,
    bare: PathBuf,
    url: String,
    _server: comfydock_test::git_server::GitHttpServer,
}

impl Team {
    fn start(t: &TwoWorkspaces) -> Self {
        let a = &t.a;
        a.create("a", "v0.3.40");
        run_ok(&a.ctx, &["-e", "a", "node", "add", "my-node"]);
        let live_a = a.env_dir("a").join("ComfyUI/user/default/workflows");
        fs_err::create_dir_all(&live_a).unwrap();
        fs_err::write(live_a.join("flow.json"), workflow("MyNodeA", "x", "")).unwrap();
        run_ok(&a.ctx, &["-e", "a", "workflow", "track", "flow"]);
        run_ok(&a.ctx, &["-e", "a", "workflow", "resolve", "flow", "--auto"]);
        run_ok(&a.ctx, &["-e", "a", "commit", "-m", "Flow"]);
        let cec_a = a.env_dir("a").join(".cec");
        let branch = git_in(&a.ctx, &cec_a, &["symbolic-ref", "--short", "HEAD"])
            .trim()
            .to_owned();
        let bare = a.ctx.path().join("team.git");
        let out = a
            .ctx
            .std_command("git")
            .args(["init", "--quiet", "--bare", "--initial-branch", &branch])
            .arg(&bare)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        let server = comfydock_test::git_server::GitHttpServer::start();
        let url = server.serve_writable("team/shared", &bare);
        run_ok(&a.ctx, &["-e", "a", "remote", "add", "origin", &url]);
        Self {
            cec_a,
            live_a,
            branch,
            bare,
            url,
            _server: server,
        }
    }
}

/// Issue 20: A pushes an environment to a git server (smart HTTP), B clones it (nodes installed,
/// the same manifest and lock, A's history), A's next commit reaches B with `pull` (fast-forward,
/// then synced); a push never rewrites the remote's history.
#[test]
fn a_team_shares_an_environment_through_a_git_remote() {
    let t = TwoWorkspaces::new();
    let a = &t.a;
    let team = Team::start(&t);
    let (cec_a, live_a, bare, url) = (&team.cec_a, &team.live_a, &team.bare, team.url.as_str());
    let branch = &team.branch;
    let listed = stdout(&run_ok(&a.ctx, &["-e", "a", "remote", "list"]));
    assert!(listed.contains("origin") && listed.contains(url), "{listed}");

    // Only committed states are shared.
    fs_err::write(live_a.join("flow.json"), workflow("MyNodeA", "y", "")).unwrap();
    let out = a.ctx.command().args(["-e", "a", "push"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("uncommitted changes"), "{}", stderr(&out));
    fs_err::write(live_a.join("flow.json"), workflow("MyNodeA", "x", "")).unwrap();
    let out = run_ok(&a.ctx, &["-e", "a", "push"]);
    assert!(stderr(&out).contains("Pushed"), "{}", stderr(&out));

    // B clones: the same manifest and lock, the node installed, A's history and remote.
    run_ok(
        &t.b,
        &["--yes", "clone", url, "--name", "shared", "--models", "skip"],
    );
    let cec_b = t.b_env("shared").join(".cec");
    for file in ["pyproject.toml", "uv.lock", "workflows/flow.json"] {
        assert_eq!(
            fs_err::read(cec_a.join(file)).unwrap(),
            fs_err::read(cec_b.join(file)).unwrap(),
            "{file}"
        );
    }
    assert!(git_in(&t.b, &cec_b, &["log", "--format=%s"]).contains("Flow"));
    assert_eq!(
        git_in(&t.b, &cec_b, &["status", "--porcelain"]),
        "",
        "a clean clone"
    );
    assert!(
        t.b_env("shared").join("ComfyUI/custom_nodes/my-node").is_dir(),
        "the node is installed"
    );
    assert!(
        t.b_env("shared")
            .join("ComfyUI/user/default/workflows/flow.json")
            .is_file()
    );
    let status: serde_json::Value =
        serde_json::from_str(&stdout(&run_ok(&t.b, &["-e", "shared", "--json", "status"]))).unwrap();
    assert_eq!(status["clean"], true, "{status}");

    // A's next commit reaches B with pull.
    fs_err::write(live_a.join("flow.json"), workflow("MyNodeA", "tuned", "")).unwrap();
    run_ok(&a.ctx, &["-e", "a", "commit", "-m", "Tune flow"]);
    run_ok(&a.ctx, &["-e", "a", "push"]);
    let out = run_ok(&t.b, &["-e", "shared", "pull"]);
    assert!(stderr(&out).contains("Pulled"), "{}", stderr(&out));
    assert_eq!(
        fs_err::read(cec_a.join("workflows/flow.json")).unwrap(),
        fs_err::read(cec_b.join("workflows/flow.json")).unwrap()
    );
    let out = run_ok(&t.b, &["-e", "shared", "pull"]);
    assert!(stderr(&out).contains("is up to date"), "{}", stderr(&out));

    // A pulled state that does not sync (a ComfyUI commit that does not exist) leaves B as it
    // was; `--preview` shows it first and changes nothing.
    let manifest_a = cec_a.join("pyproject.toml");
    let text = fs_err::read_to_string(&manifest_a).unwrap();
    let pinned = text
        .lines()
        .find(|l| l.starts_with("commit = \""))
        .unwrap()
        .to_owned();
    let bogus = format!("commit = \"{}\"", "0123456789".repeat(4));
    fs_err::write(&manifest_a, text.replacen(&pinned, &bogus, 1)).unwrap();
    git_in(
        &a.ctx,
        cec_a,
        &[
            "commit",
            "--quiet",
            "-am",
            "Pin a ComfyUI commit that does not exist",
        ],
    );
    run_ok(&a.ctx, &["-e", "a", "push"]);
    let b_head = git_in(&t.b, &cec_b, &["rev-parse", "HEAD"]);
    let b_manifest = fs_err::read(cec_b.join("pyproject.toml")).unwrap();
    let preview: serde_json::Value = serde_json::from_str(&stdout(&run_ok(
        &t.b,
        &["-e", "shared", "--json", "pull", "--preview"],
    )))
    .unwrap();
    assert_eq!(preview["fast_forward"], true, "{preview}");
    assert!(preview["diff"].to_string().contains("0123456789"), "{preview}");
    assert_eq!(git_in(&t.b, &cec_b, &["rev-parse", "HEAD"]), b_head);
    let out = t.b.command().args(["-e", "shared", "pull"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("could not be applied"), "{}", stderr(&out));
    assert_eq!(
        git_in(&t.b, &cec_b, &["rev-parse", "HEAD"]),
        b_head,
        "`.cec` is back"
    );
    assert_eq!(fs_err::read(cec_b.join("pyproject.toml")).unwrap(), b_manifest);
    let status: serde_json::Value =
        serde_json::from_str(&stdout(&run_ok(&t.b, &["-e", "shared", "--json", "status"]))).unwrap();
    assert_eq!(status["clean"], true, "B is synced as before: {status}");
    git_in(&a.ctx, cec_a, &["revert", "--no-edit", "HEAD"]);
    run_ok(&a.ctx, &["-e", "a", "push"]);
    run_ok(&t.b, &["-e", "shared", "pull"]);

    // A teammate's commit that would build code from source is not pulled without consent.
    let text = fs_err::read_to_string(&manifest_a).unwrap();
    fs_err::write(
        &manifest_a,
        format!(
            "{text}\n[build-system]\nrequires = [\"setuptools\"]\nbuild-backend = \"setuptools.build_meta\"\n"
        ),
    )
    .unwrap();
    git_in(&a.ctx, cec_a, &["commit", "--quiet", "-am", "Build the project"]);
    run_ok(&a.ctx, &["-e", "a", "push"]);
    let b_head = git_in(&t.b, &cec_b, &["rev-parse", "HEAD"]);
    let out = t.b.command().args(["-e", "shared", "pull"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("would build 1 package(s) from source")
            && stderr(&out).contains("pull --run-install-scripts"),
        "{}",
        stderr(&out)
    );
    assert_eq!(git_in(&t.b, &cec_b, &["rev-parse", "HEAD"]), b_head);
    git_in(&a.ctx, cec_a, &["revert", "--no-edit", "HEAD"]);
    run_ok(&a.ctx, &["-e", "a", "push"]);
    run_ok(&t.b, &["-e", "shared", "pull"]);

    // Both commit: B's push never rewrites A's history.
    let live_b = t.b_env("shared").join("ComfyUI/user/default/workflows");
    fs_err::write(live_b.join("flow.json"), workflow("MyNodeA", "from b", "")).unwrap();
    run_ok(&t.b, &["-e", "shared", "commit", "-m", "B's take"]);
    fs_err::write(live_a.join("flow.json"), workflow("MyNodeA", "from a", "")).unwrap();
    run_ok(&a.ctx, &["-e", "a", "commit", "-m", "A's take"]);
    run_ok(&a.ctx, &["-e", "a", "push"]);
    let remote_branch = format!("refs/heads/{}", branch.trim());
    let remote_head = git_in(&t.b, bare, &["rev-parse", &remote_branch]);
    let out = t.b.command().args(["-e", "shared", "push"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("pull"), "{}", stderr(&out));
    assert_eq!(
        git_in(&t.b, bare, &["rev-parse", &remote_branch]),
        remote_head,
        "the remote history is untouched"
    );

    // Branches: B tries something on a branch and switches back; ComfyUI shows each branch's
    // version of the workflow.
    let on_main = fs_err::read(live_b.join("flow.json")).unwrap();
    run_ok(&t.b, &["-e", "shared", "switch", "--create", "experiment"]);
    fs_err::write(live_b.join("flow.json"), workflow("MyNodeA", "experiment", "")).unwrap();
    run_ok(&t.b, &["-e", "shared", "commit", "-m", "Experiment"]);
    let listed = stdout(&run_ok(&t.b, &["-e", "shared", "branch"]));
    assert!(
        listed.contains("* experiment") && listed.contains(&format!("  {}", branch.trim())),
        "{listed}"
    );
    run_ok(&t.b, &["-e", "shared", "switch", branch.trim()]);
    assert_eq!(fs_err::read(live_b.join("flow.json")).unwrap(), on_main);
    run_ok(&t.b, &["-e", "shared", "switch", "experiment"]);
    assert_eq!(
        fs_err::read(live_b.join("flow.json")).unwrap(),
        fs_err::read(cec_b.join("workflows/flow.json")).unwrap()
    );
    assert!(String::from_utf8_lossy(&fs_err::read(live_b.join("flow.json")).unwrap()).contains("experiment"));
}

/// Issue 20: teammates who both committed merge by meaning. Different nodes on each side are
/// both kept, the lock is re-resolved from the merged manifest, a workflow both changed is kept
/// twice; `--preview` shows it first; a merge whose requirements conflict is refused naming
/// both sides and changes nothing; conflicting edits of one key need a side; no history is
/// rewritten.
#[test]
fn teammates_merge_by_meaning_with_the_lock_re_resolved() {
    let t = TwoWorkspaces::new();
    for (id, class, requirement) in [
        ("img-node", "ImgNode", "tinyimg"),
        ("dep-node", "DepNode", "node-dep-b"),
        ("left-node", "LeftNode", "conflict-a"),
        ("right-node", "RightNode", "conflict-b"),
    ] {
        t.registry.publish(
            NodePackage::new(id, "1.0.0")
                .node_class(class)
                .requirements(requirement),
        );
    }
    let a = &t.a;
    let team = Team::start(&t);
    run_ok(&a.ctx, &["-e", "a", "push"]);
    run_ok(
        &t.b,
        &[
            "--yes", "clone", &team.url, "--name", "shared", "--models", "skip",
        ],
    );
    let b = &t.b;
    let cec_b = t.b_env("shared").join(".cec");
    let live_b = t.b_env("shared").join("ComfyUI/user/default/workflows");
    let nodes_b = t.b_env("shared").join("ComfyUI/custom_nodes");

    // A adds a node and changes the workflow; so does B.
    run_ok(&a.ctx, &["-e", "a", "node", "add", "img-node"]);
    let from_a = workflow("MyNodeA", "from a", "");
    fs_err::write(team.live_a.join("flow.json"), &from_a).unwrap();
    run_ok(&a.ctx, &["-e", "a", "commit", "-m", "A: img-node, tuned flow"]);
    run_ok(&a.ctx, &["-e", "a", "push"]);
    let a_head = git_in(&a.ctx, &team.cec_a, &["rev-parse", "HEAD"]);
    run_ok(b, &["-e", "shared", "node", "add", "dep-node"]);
    let from_b = workflow("MyNodeA", "from b", "");
    fs_err::write(live_b.join("flow.json"), &from_b).unwrap();
    run_ok(b, &["-e", "shared", "commit", "-m", "B: dep-node, its own flow"]);
    let b_head = git_in(b, &cec_b, &["rev-parse", "HEAD"]);

    // The preview shows the merge and changes nothing.
    let preview: serde_json::Value = serde_json::from_str(&stdout(&run_ok(
        b,
        &["-e", "shared", "--json", "pull", "--preview"],
    )))
    .unwrap();
    assert_eq!(preview["fast_forward"], false, "{preview}");
    let plan = &preview["merge"];
    assert_eq!(plan["conflicts"], serde_json::json!([]), "{plan}");
    assert_eq!(plan["lock"]["status"], "resolved", "{plan}");
    assert_eq!(plan["kept_both"][0]["workflow"], "flow", "{plan}");
    let copy = plan["kept_both"][0]["theirs_as"].as_str().unwrap().to_owned();
    let names = |list: &serde_json::Value| -> Vec<String> {
        list.as_array()
            .unwrap()
            .iter()
            .map(|c| format!("{} {}", c["kind"].as_str().unwrap(), c["name"].as_str().unwrap()))
            .collect()
    };
    assert_eq!(names(&preview["diff"]["nodes"]), ["added img-node"], "{preview}");
    assert!(
        names(&preview["diff"]["locked"]).contains(&"added tinyimg".to_owned()),
        "the lock is re-resolved: {preview}"
    );
    assert_eq!(git_in(b, &cec_b, &["rev-parse", "HEAD"]), b_head);
    assert!(!nodes_b.join("img-node").exists());

    // The pull merges: both nodes, a lock with both requirements, both workflows.
    let out = run_ok(b, &["-e", "shared", "pull"]);
    assert!(
        stderr(&out).contains(&format!("theirs is kept as `{copy}`")),
        "{}",
        stderr(&out)
    );
    let manifest = fs_err::read_to_string(cec_b.join("pyproject.toml")).unwrap();
    assert!(
        manifest.contains("[tool.comfydock.nodes.img-node]")
            && manifest.contains("[tool.comfydock.nodes.dep-node]"),
        "{manifest}"
    );
    let lock = fs_err::read_to_string(cec_b.join("uv.lock")).unwrap();
    assert!(
        lock.contains("name = \"tinyimg\"") && lock.contains("name = \"node-dep-b\""),
        "{lock}"
    );
    assert!(nodes_b.join("img-node").is_dir() && nodes_b.join("dep-node").is_dir());
    assert_eq!(
        fs_err::read_to_string(cec_b.join("workflows/flow.json")).unwrap(),
        from_b
    );
    assert_eq!(
        fs_err::read_to_string(cec_b.join(format!("workflows/{copy}.json"))).unwrap(),
        from_a
    );
    assert_eq!(
        fs_err::read_to_string(live_b.join(format!("{copy}.json"))).unwrap(),
        from_a
    );
    assert_eq!(fs_err::read_to_string(live_b.join("flow.json")).unwrap(), from_b);
    assert!(
        manifest.contains(&format!("[tool.comfydock.workflows.\"{copy}\"]")),
        "{manifest}"
    );
    // A merge commit with both lines as parents: nothing rewritten.
    assert_eq!(git_in(b, &cec_b, &["rev-parse", "HEAD^1"]), b_head);
    assert_eq!(git_in(b, &cec_b, &["rev-parse", "HEAD^2"]), a_head);
    let status: serde_json::Value =
        serde_json::from_str(&stdout(&run_ok(b, &["-e", "shared", "--json", "status"]))).unwrap();
    assert_eq!(status["clean"], true, "{status}");
    let out = b
        .std_command("uv")
        .args(["lock", "--check", "--project"])
        .arg(&cec_b)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the merged lock matches the manifest: {}",
        stderr(&out)
    );

    // B runs the merged environment: ComfyUI loads the nodes of both sides.
    let port = crate::env_support::free_port().to_string();
    run_ok(
        b,
        &[
            "-e",
            "shared",
            "run",
            "--background",
            "--no-sync",
            "--port",
            &port,
        ],
    );
    let classes: serde_json::Value = serde_json::from_str(&crate::env_support::http_get(
        port.parse().unwrap(),
        "/object_info",
    ))
    .unwrap();
    run_ok(b, &["-e", "shared", "stop"]);
    for class in ["MyNodeA", "ImgNode", "DepNode"] {
        assert!(classes.get(class).is_some(), "{class} is loaded");
    }

    // B shares the merge; A fast-forwards to it.
    run_ok(b, &["-e", "shared", "push"]);
    run_ok(&a.ctx, &["-e", "a", "pull"]);
    assert_eq!(
        fs_err::read(team.cec_a.join("uv.lock")).unwrap(),
        fs_err::read(cec_b.join("uv.lock")).unwrap()
    );
    assert!(a.env_dir("a").join("ComfyUI/custom_nodes/dep-node").is_dir());

    // Requirements that cannot both be installed: the merge is refused, naming both sides and
    // who brought each, and B is exactly as before.
    run_ok(&a.ctx, &["-e", "a", "node", "add", "left-node"]);
    run_ok(&a.ctx, &["-e", "a", "commit", "-m", "A: left-node"]);
    run_ok(&a.ctx, &["-e", "a", "push"]);
    run_ok(b, &["-e", "shared", "node", "add", "right-node"]);
    run_ok(b, &["-e", "shared", "commit", "-m", "B: right-node"]);
    let b_head = git_in(b, &cec_b, &["rev-parse", "HEAD"]);
    let files_of_b = || -> Vec<Vec<u8>> {
        ["pyproject.toml", "uv.lock"]
            .iter()
            .map(|f| fs_err::read(cec_b.join(f)).unwrap())
            .collect()
    };
    let before = files_of_b();
    let out = b.command().args(["-e", "shared", "pull"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    for needed in [
        "does not resolve",
        "conflict-a",
        "conflict-b",
        "node `left-node`, brought by `origin/",
        "node `right-node`, brought by this environment",
        "nothing was changed",
    ] {
        assert!(err.contains(needed), "{needed}: {err}");
    }
    assert_eq!(git_in(b, &cec_b, &["rev-parse", "HEAD"]), b_head);
    assert_eq!(files_of_b(), before);
    assert!(!nodes_b.join("left-node").exists() && nodes_b.join("right-node").is_dir());
    assert_eq!(git_in(b, &cec_b, &["status", "--porcelain"]), "");

    // One key both changed differently: a conflict until a side is chosen.
    run_ok(b, &["-e", "shared", "node", "remove", "right-node"]);
    run_ok(b, &["-e", "shared", "commit", "-m", "B: drop right-node"]);
    run_ok(b, &["-e", "shared", "pull"]);
    let set_description = |text: &str| {
        let path = cec_b.join("pyproject.toml");
        let manifest = fs_err::read_to_string(&path).unwrap();
        let manifest = manifest.replacen(
            "[project]\n",
            &format!("[project]\ndescription = \"{text}\"\n"),
            1,
        );
        fs_err::write(&path, manifest).unwrap();
        git_in(b, &cec_b, &["commit", "--quiet", "-am", text]);
    };
    run_ok(b, &["-e", "shared", "switch", "--create", "experiment"]);
    set_description("the experiment");
    run_ok(b, &["-e", "shared", "switch", &team.branch]);
    set_description("the main line");
    let out = b
        .command()
        .args(["-e", "shared", "merge", "experiment"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("conflicts on `project.description`")
            && stderr(&out).contains("merge experiment --ours"),
        "{}",
        stderr(&out)
    );
    let plan: serde_json::Value = serde_json::from_str(&stdout(&run_ok(
        b,
        &["-e", "shared", "--json", "merge", "experiment", "--preview"],
    )))
    .unwrap();
    assert_eq!(plan["conflicts"][0]["ours"], "\"the main line\"", "{plan}");
    assert_eq!(plan["conflicts"][0]["theirs"], "\"the experiment\"", "{plan}");
    run_ok(b, &["-e", "shared", "merge", "experiment", "--theirs"]);
    let manifest = fs_err::read_to_string(cec_b.join("pyproject.toml")).unwrap();
    assert!(
        manifest.contains("description = \"the experiment\""),
        "{manifest}"
    );
}

/// `export` never writes a bundle `import` would refuse by its limits: here a dev node with more
/// files than an import accepts.
#[test]
fn export_refuses_a_bundle_import_would_refuse() {
    let sb = EnvSandbox::new();
    sb.create("a", "v0.3.40");
    let dev = sb.ctx.path().join("ManyFiles");
    fs_err::create_dir_all(dev.join("data")).unwrap();
    fs_err::write(dev.join("__init__.py"), "NODE_CLASS_MAPPINGS = {}\n").unwrap();
    for i in 0..20_000 {
        fs_err::write(dev.join("data").join(format!("{i}.txt")), "x").unwrap();
    }
    run_ok(
        &sb.ctx,
        &["-e", "a", "node", "add", "--dev", dev.to_str().unwrap()],
    );
    run_ok(&sb.ctx, &["-e", "a", "commit", "-m", "Many files"]);
    let bundle = sb.ctx.path().join("a.tar.gz");
    let out = sb
        .ctx
        .command()
        .args(["-e", "a", "export", "-o", bundle.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("would make a bundle that `import` refuses")
            && stderr(&out).contains("more than the 20000 an import accepts"),
        "{}",
        stderr(&out)
    );
    assert!(!bundle.exists(), "nothing is written");
}

/// A dev node with a file many times larger than export's read buffer is streamed into the
/// bundle: unpacked, every file is the dev node's bytes (mode included), and `manifest.json` lists
/// each one with the sha256 and size of the source file.
#[test]
fn export_streams_a_large_dev_node_byte_for_byte() {
    let sb = EnvSandbox::new();
    sb.create("a", "v0.3.40");
    let dev = sb.ctx.path().join("Heavy");
    fs_err::create_dir_all(dev.join("bin")).unwrap();
    fs_err::write(dev.join("__init__.py"), "NODE_CLASS_MAPPINGS = {}\n").unwrap();
    // 6 MiB of xorshift noise: gzip cannot shrink it, so the stream really carries 6 MiB.
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let weights: Vec<u8> = (0..6 << 20)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[3]
        })
        .collect();
    fs_err::write(dev.join("weights.bin"), &weights).unwrap();
    fs_err::write(dev.join("bin/run.sh"), "#!/bin/sh\necho run\n").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        fs_err::set_permissions(dev.join("bin/run.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    run_ok(
        &sb.ctx,
        &["-e", "a", "node", "add", "--dev", dev.to_str().unwrap()],
    );
    run_ok(&sb.ctx, &["-e", "a", "commit", "-m", "Heavy dev node"]);
    let bundle = sb.ctx.path().join("a.tar.gz");
    run_ok(&sb.ctx, &["-e", "a", "export", "-o", bundle.to_str().unwrap()]);

    let unpacked = sb.ctx.path().join("unpacked");
    fs_err::create_dir_all(&unpacked).unwrap();
    let out = sb
        .ctx
        .std_command("tar")
        .arg("-xzf")
        .arg(&bundle)
        .arg("-C")
        .arg(&unpacked)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let manifest: serde_json::Value =
        serde_json::from_slice(&fs_err::read(unpacked.join("manifest.json")).unwrap()).unwrap();
    for rel in ["__init__.py", "weights.bin", "bin/run.sh"] {
        let source = dev.join(rel);
        let packed = unpacked.join("dev_nodes/Heavy").join(rel);
        assert!(
            fs_err::read(&packed).unwrap() == fs_err::read(&source).unwrap(),
            "`{rel}` differs from the dev node's file"
        );
        let listed = &manifest["files"][format!("dev_nodes/Heavy/{rel}")];
        assert_eq!(listed["sha256"], sha256_of(&sb.ctx, &source).as_str(), "{rel}");
        assert_eq!(listed["size"], fs_err::metadata(&source).unwrap().len(), "{rel}");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = |p: &Path| fs_err::metadata(p).unwrap().permissions().mode() & 0o111;
        assert_ne!(
            mode(&unpacked.join("dev_nodes/Heavy/bin/run.sh")),
            0,
            "stays executable"
        );
        assert_eq!(mode(&unpacked.join("dev_nodes/Heavy/weights.bin")), 0);
    }
}

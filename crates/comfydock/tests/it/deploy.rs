//! `deploy docker | k8s | history` against real environments built from the stand-ins (issue 8).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use comfydock_deploy::dockerfile_syntax::{self, Instruction, Stage};
use comfydock_environments::manifest::Manifest;
use comfydock_environments::manifest::node_entry as entry;
use comfydock_environments::nodes::NodeSource;
use comfydock_test::node_repo::{NodeContent, NodeRepo};
use comfydock_test::registry::{NodePackage, RegistryServer};

use crate::common::{stderr, stdout};
use crate::env_support::{EnvSandbox, http_get};
use crate::snapshot::comfydock_snapshot;
use comfydock_test::context::TestContext;

struct DeploySandbox {
    sb: EnvSandbox,
    _registry: RegistryServer,
    node_repo: NodeRepo,
}

impl DeploySandbox {
    /// Environment `studio` at v0.3.40 with a registry node and a git node, committed.
    fn new() -> Self {
        let mut sb = EnvSandbox::new();
        let registry = RegistryServer::start();
        sb.ctx
            .env("COMFYDOCK_REGISTRY_URL", registry.url())
            .env("COMFYDOCK_MANAGER_DATA_URL", registry.manager_data_url())
            // Whatever engine this machine has, these tests must not reach it.
            .env("DOCKER_HOST", "unix:///nonexistent/comfydock-test-docker.sock");
        registry.publish(
            NodePackage::new("my-node", "1.0.0")
                .name("My Node")
                .node_class("MyNodeA")
                .requirements("node-dep-a<1.1"),
        );
        let repo = NodeRepo::create("ComfyUI-Foo");
        repo.release(
            &NodeContent::new()
                .node_class("FooNode")
                .requirements("node-dep-b"),
            "v1.0.0",
        );
        sb.create("studio", "v0.3.40");
        let ds = Self {
            sb,
            _registry: registry,
            node_repo: repo,
        };
        let git_spec = format!("{}@v1.0.0", ds.node_repo.url());
        ds.ok(&["-e", "studio", "node", "add", "my-node@1.0.0", &git_spec]);
        ds.ok(&["-e", "studio", "commit", "-m", "nodes"]);
        ds
    }

    fn run(&self, args: &[&str]) -> std::process::Output {
        self.sb.ctx.command().args(args).output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> std::process::Output {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "{args:?} failed:\n{}\n{}",
            stdout(&out),
            stderr(&out)
        );
        out
    }

    fn cec(&self, file: &str) -> PathBuf {
        self.sb.env_dir("studio").join(".cec").join(file)
    }

    fn out_dir(&self, name: &str) -> PathBuf {
        self.sb.ctx.path().join(name)
    }

    fn cec_head(&self) -> String {
        let out = std::process::Command::new("git")
            .args(["rev-parse", "HEAD"])
            .current_dir(self.cec(""))
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }
}

fn files_under(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    walkdir(dir)
        .into_iter()
        .map(|p| {
            let rel = p.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
            (rel, fs_err::read(&p).unwrap())
        })
        .collect()
}

fn walkdir(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in fs_err::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walkdir(&path));
        } else {
            out.push(path);
        }
    }
    out
}

fn sha256_of(path: &Path) -> String {
    let out = std::process::Command::new("sha256sum")
        .arg(path)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned()
}

fn stages(dir: &Path) -> Vec<Stage> {
    let text = fs_err::read_to_string(dir.join("Dockerfile")).unwrap();
    let instructions = dockerfile_syntax::parse(&text).unwrap();
    dockerfile_syntax::stages(&instructions).unwrap()
}

fn commands(stage: &Stage) -> Vec<String> {
    stage
        .instructions
        .iter()
        .filter(|i| i.keyword == "RUN")
        .flat_map(Instruction::shell_commands)
        .collect()
}

#[test]
fn docker_context_pins_equal_the_environment_and_are_deterministic() {
    let ds = DeploySandbox::new();
    let out1 = ds.out_dir("ctx1");
    let run = ds.ok(&[
        "-e",
        "studio",
        "deploy",
        "docker",
        "--allow-local-urls",
        "--gpu",
        "cpu",
        "--out",
        out1.to_str().unwrap(),
    ]);
    assert!(stderr(&run).contains("Generated"), "{}", stderr(&run));
    for file in [
        "Dockerfile",
        ".dockerignore",
        "compose.yaml",
        "models.json",
        "entrypoint.sh",
        "fetch_models.py",
        "cec/pyproject.toml",
        "cec/uv.lock",
    ] {
        assert!(out1.join(file).is_file(), "{file}");
    }

    // Pins read back through the Dockerfile parser equal the environment's.
    let manifest = Manifest::load(&ds.cec("pyproject.toml")).unwrap();
    let comfyui = manifest.comfyui().unwrap();
    assert_eq!(comfyui.commit, ds.sb.comfyui_head("studio"));
    let built = stages(&out1);
    let builder = built
        .iter()
        .find(|s| s.name.as_deref() == Some("builder"))
        .unwrap();
    let cmds = commands(builder);
    assert!(
        cmds.contains(&format!(
            "test \"$(git -C /opt/comfyui rev-parse HEAD)\" = {}",
            comfyui.commit
        )),
        "{cmds:#?}"
    );
    let lock_sha = sha256_of(&ds.cec("uv.lock"));
    assert!(cmds.contains(&format!("echo \"{lock_sha}  uv.lock\" | sha256sum -c -")));
    assert_eq!(
        fs_err::read(out1.join("cec/uv.lock")).unwrap(),
        fs_err::read(ds.cec("uv.lock")).unwrap()
    );
    let sync = cmds.iter().find(|c| c.starts_with("uv sync")).unwrap();
    assert!(
        sync.contains("--frozen") && sync.contains("--extra cpu") && sync.contains("--all-groups"),
        "{sync}"
    );
    let nodes = entry::read_all(&manifest);
    assert_eq!(nodes.len(), 2);
    for node in &nodes {
        match node.source {
            NodeSource::Registry => {
                let sha = node.sha256.as_deref().unwrap();
                assert!(
                    cmds.contains(&format!(
                        "echo \"{sha}  /tmp/node-{}.zip\" | sha256sum -c -",
                        node.key
                    )),
                    "{cmds:#?}"
                );
            }
            NodeSource::Git => {
                let commit = node.commit.as_deref().unwrap();
                assert!(
                    cmds.iter()
                        .any(|c| c.starts_with("test ") && c.ends_with(&format!("= {commit}"))),
                    "{cmds:#?}"
                );
            }
            NodeSource::Dev => unreachable!(),
        }
    }
    let runtime = built.last().unwrap();
    assert_eq!(runtime.image, "ubuntu:24.04");
    let health = runtime
        .instructions
        .iter()
        .find(|i| i.keyword == "HEALTHCHECK")
        .unwrap();
    assert!(health.args.contains("/system_stats"));

    // Same environment, same bytes; the default tag names the .cec commit.
    let out2 = ds.out_dir("ctx2");
    ds.ok(&[
        "-e",
        "studio",
        "deploy",
        "docker",
        "--allow-local-urls",
        "--gpu",
        "cpu",
        "--out",
        out2.to_str().unwrap(),
    ]);
    assert_eq!(files_under(&out1), files_under(&out2));
    let compose = fs_err::read_to_string(out1.join("compose.yaml")).unwrap();
    assert!(
        compose.contains(&format!("comfydock-studio:{}", &ds.cec_head()[..12])),
        "{compose}"
    );

    // The CUDA target syncs the locked cu128 extra on NVIDIA's pinned base.
    let cuda = ds.out_dir("cuda");
    ds.ok(&[
        "-e",
        "studio",
        "deploy",
        "docker",
        "--allow-local-urls",
        "--gpu",
        "cuda",
        "--cuda",
        "12.8",
        "--out",
        cuda.to_str().unwrap(),
    ]);
    let cuda_stages = stages(&cuda);
    assert_eq!(
        cuda_stages.last().unwrap().image,
        "nvidia/cuda:12.8.1-base-ubuntu24.04"
    );
    assert!(
        commands(&cuda_stages[1])
            .iter()
            .any(|c| c.starts_with("uv sync") && c.contains("--extra cu128"))
    );
    // ROCm is not locked by default: a clear error naming what is.
    let rocm = ds.run(&[
        "-e",
        "studio",
        "deploy",
        "docker",
        "--allow-local-urls",
        "--gpu",
        "rocm",
        "--out",
        cuda.to_str().unwrap(),
    ]);
    assert_eq!(rocm.status.code(), Some(1));
    assert!(stderr(&rocm).contains("does not cover"), "{}", stderr(&rocm));
    assert!(
        stderr(&rocm).contains("hint: add it to the lock with `comfydock -e studio backend add rocm6.4`"),
        "the hint names a real backend and the command that adds it: {}",
        stderr(&rocm)
    );
}

#[test]
fn a_backend_added_after_create_deploys_and_its_frozen_sync_succeeds_against_the_lock() {
    let ds = DeploySandbox::new();
    let added = ds.ok(&["-e", "studio", "backend", "add", "rocm6.3"]);
    assert!(stderr(&added).contains("Locked"), "{}", stderr(&added));
    let covered = comfydock_environments::lock_coverage::read(&ds.cec("uv.lock")).unwrap();
    let rocm = covered
        .iter()
        .find(|l| l.backend.as_str() == "rocm6.3")
        .expect("uv.lock covers the added backend");
    assert_eq!(rocm.torch.as_deref(), Some("2.5.1+rocm6.3"));
    assert_eq!(
        rocm.index.as_deref(),
        Some(ds.sb.index.backend_url("rocm6.3").as_str())
    );

    let ctx_dir = ds.out_dir("rocm");
    ds.ok(&[
        "-e",
        "studio",
        "deploy",
        "docker",
        "--allow-local-urls",
        "--gpu",
        "rocm",
        "--out",
        ctx_dir.to_str().unwrap(),
    ]);
    let stages = stages(&ctx_dir);
    assert_eq!(stages.last().unwrap().image, "rocm/dev-ubuntu-24.04:6.3");
    let sync_line = commands(&stages[1])
        .into_iter()
        .find(|c| c.starts_with("uv sync --frozen"))
        .expect("the builder syncs the lock");
    assert!(sync_line.contains("--extra rocm6-3"), "{sync_line}");

    // Run the Dockerfile's own sync line against the context's lock, in a copy of the project.
    let project = ds.out_dir("rocm-project");
    fs_err::create_dir_all(&project).unwrap();
    for file in ["pyproject.toml", "uv.lock"] {
        fs_err::copy(ctx_dir.join("cec").join(file), project.join(file)).unwrap();
    }
    let venv = ds.out_dir("rocm-venv");
    let uv = comfydock_test::tools::uv_binary();
    let template = comfydock_test::tools::uv_command(&ds.out_dir("rocm-uv-cache"));
    let mut sh = std::process::Command::new("sh");
    for (key, value) in template.get_envs() {
        match value {
            Some(value) => sh.env(key, value),
            None => sh.env_remove(key),
        };
    }
    let path = std::env::join_paths(std::iter::once(uv.parent().unwrap().to_path_buf()).chain(
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
    ))
    .unwrap();
    let out = sh
        .env("PATH", path)
        .env("UV_PROJECT_ENVIRONMENT", &venv)
        .args(["-c", &sync_line])
        .current_dir(&project)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "`{sync_line}` failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let torch = std::process::Command::new(venv.join("bin/python"))
        .args(["-c", "import torch; print(torch.__version__)"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&torch.stdout).trim(), "2.5.1+rocm6.3");
}

#[test]
fn build_without_engine_reports_the_ready_context_and_history_records_it() {
    let ds = DeploySandbox::new();
    let out = ds.out_dir("ctx");
    let run = comfydock_snapshot!(
        ds.sb.ctx,
        ds.sb
            .ctx
            .command()
            .env("COMFYDOCK_CONTAINER_ENGINE", "docker")
            .args([
                "-e",
                "studio",
                "deploy",
                "docker",
                "--allow-local-urls",
                "--gpu",
                "cpu",
                "--out",
                out.to_str().unwrap(),
                "--build",
            ])
    );
    assert_eq!(run.status.code(), Some(1), "{}", stderr(&run));
    assert!(out.join("Dockerfile").is_file());

    let k8s = comfydock_snapshot!(
        ds.sb.ctx,
        ds.sb.ctx.command().args([
            "-e",
            "studio",
            "deploy",
            "k8s",
            "--allow-local-urls",
            "--gpu",
            "cuda",
            "--with-api",
            "--out",
            out.to_str().unwrap(),
        ])
    );
    assert!(k8s.status.success(), "{}", stderr(&k8s));
    for file in [
        "deployment.yaml",
        "service.yaml",
        "pvc.yaml",
        "configmap.yaml",
        "api-service.yaml",
        "keda.yaml",
        "kustomization.yaml",
    ] {
        assert!(out.join("k8s").join(file).is_file(), "{file}");
    }
    let deployment = fs_err::read_to_string(out.join("k8s/deployment.yaml")).unwrap();
    assert!(deployment.contains("nvidia.com/gpu: 1"), "{deployment}");
    assert!(
        out.join("Dockerfile").is_file(),
        "k8s generation keeps the docker context"
    );

    let history = comfydock_snapshot!(
        ds.sb.ctx,
        ds.sb
            .ctx
            .command()
            .args(["-e", "studio", "--json", "deploy", "history"])
    );
    assert!(history.status.success(), "{}", stderr(&history));
    let rows: serde_json::Value = serde_json::from_str(&stdout(&history)).unwrap();
    let rows = rows.as_array().unwrap();
    let results: Vec<&str> = rows.iter().map(|r| r["result"].as_str().unwrap()).collect();
    assert_eq!(results, ["generated", "failed", "generated"], "{rows:#?}");
    let kinds: Vec<&str> = rows.iter().map(|r| r["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["k8s", "docker", "docker"]);
    let head = ds.cec_head();
    for row in rows {
        assert_eq!(row["environment"], "studio");
        assert_eq!(row["cec_commit"].as_str(), Some(head.as_str()));
        assert!(row["time"].as_str().unwrap().ends_with('Z'));
    }
    assert!(rows[1]["detail"].as_str().unwrap().contains("No Docker engine"));
    let text = comfydock_snapshot!(
        ds.sb.ctx,
        ds.sb.ctx.command().args(["-e", "studio", "deploy", "history"])
    );
    assert!(text.status.success(), "{}", stderr(&text));
    assert_eq!(stdout(&text).lines().count(), 3, "{}", stdout(&text));
}

#[test]
fn workflow_deploys_only_what_it_needs_and_unknown_workflows_fail_clearly() {
    let ds = DeploySandbox::new();
    let manifest_path = ds.cec("pyproject.toml");
    let manifest = Manifest::load(&manifest_path).unwrap();
    let git_node = entry::read_all(&manifest)
        .into_iter()
        .find(|n| n.source == NodeSource::Git)
        .unwrap();
    let mut text = fs_err::read_to_string(&manifest_path).unwrap();
    text.push_str(
        "\n[tool.comfydock.workflows.portrait]\nnodes = [\"my-node\"]\n\n\
         [tool.comfydock.workflows.portrait.models.\"blake3:aa00aa00aa00aa00aa00aa00aa00aa00aa00aa00aa00aa00aa00aa00aa00aa00\"]\n\
         size = 11\nfolder = \"checkpoints\"\nfilename = \"tiny.safetensors\"\nsources = [\"https://files.example/tiny.safetensors\"]\n",
    );
    fs_err::write(&manifest_path, text).unwrap();
    ds.ok(&["-e", "studio", "commit", "-m", "resolved portrait"]);

    let out = ds.out_dir("portrait");
    let run = ds.ok(&[
        "-e",
        "studio",
        "--json",
        "deploy",
        "docker",
        "--allow-local-urls",
        "--gpu",
        "cpu",
        "--workflow",
        "portrait",
        "--out",
        out.to_str().unwrap(),
    ]);
    let report: serde_json::Value = serde_json::from_str(&stdout(&run)).unwrap();
    assert_eq!(report["nodes"], serde_json::json!(["my-node"]));
    assert_eq!(report["models"][0]["target"], "checkpoints/tiny.safetensors");
    let portrait_stages = stages(&out);
    let cmds = commands(&portrait_stages[1]);
    assert!(
        !cmds
            .iter()
            .any(|c| c.contains(git_node.commit.as_deref().unwrap())),
        "{cmds:#?}"
    );
    let sync = cmds.iter().find(|c| c.starts_with("uv sync")).unwrap();
    // ComfyUI's own requirements are a group too: a narrowed build must still install them.
    assert!(
        sync.ends_with("--no-default-groups --group comfyui --group my-node"),
        "{sync}"
    );
    let models: serde_json::Value =
        serde_json::from_str(&fs_err::read_to_string(out.join("models.json")).unwrap()).unwrap();
    assert_eq!(models["models"][0]["size"], 11);

    let bad = ds.run(&[
        "-e",
        "studio",
        "deploy",
        "docker",
        "--allow-local-urls",
        "--workflow",
        "nope",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        stderr(&bad).contains("no resolved workflow `nope`"),
        "{}",
        stderr(&bad)
    );
    assert!(stderr(&bad).contains("`portrait`"), "{}", stderr(&bad));

    // Baking needs the model file; it is not in the workspace, so nothing is baked.
    let bake = ds.run(&[
        "-e",
        "studio",
        "deploy",
        "docker",
        "--allow-local-urls",
        "--gpu",
        "cpu",
        "--workflow",
        "portrait",
        "--models",
        "bake",
        "--out",
        ds.out_dir("bake").to_str().unwrap(),
    ]);
    assert_eq!(bake.status.code(), Some(1));
    assert!(stderr(&bake).contains("cannot be baked"), "{}", stderr(&bake));
}

/// The generated model fetcher, run for real with Python against a local file server: good files
/// land verified, a file whose hash does not match never becomes visible, and a missing required
/// model stops the start (exit 1) while a missing optional one does not.
#[test]
fn fetcher_downloads_verified_models_and_refuses_bad_ones() {
    use comfydock_deploy::docker_context::FETCH_MODELS_PY;
    use comfydock_test::file_server::FileServer;

    let server = FileServer::start();
    let good = b"good model bytes".to_vec();
    server.add("/good.safetensors", good.clone());
    server.add("/bad.safetensors", b"tampered bytes".to_vec());
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("fetch_models.py");
    fs_err::write(&script, FETCH_MODELS_PY).unwrap();
    let good_sha = {
        let p = dir.path().join("good");
        fs_err::write(&p, &good).unwrap();
        sha256_of(&p)
    };
    let models_dir = dir.path().join("models");
    let manifest = |bad_required: bool| {
        serde_json::json!({
            "environment": "studio",
            "models_dir": "/opt/comfyui/models",
            "models": [
                {"target": "checkpoints/good.safetensors", "sha256": good_sha, "size": good.len(),
                 "sources": [server.url_for("/missing.safetensors"), server.url_for("/good.safetensors")], "required": true},
                {"target": "loras/bad.safetensors", "sha256": "0".repeat(64), "size": 14,
                 "sources": [server.url_for("/bad.safetensors")], "required": bad_required},
            ]
        })
        .to_string()
    };
    let run = |mode: &str, bad_required: bool| {
        let path = dir.path().join("models.json");
        fs_err::write(&path, manifest(bad_required)).unwrap();
        std::process::Command::new("python3")
            .arg(&script)
            .args(["--mode", mode, "--manifest"])
            .arg(&path)
            .arg("--models-dir")
            .arg(&models_dir)
            .output()
            .unwrap()
    };

    let out = run("fetch", true);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("did not match"), "{}", stderr(&out));
    assert!(stderr(&out).contains("loras/bad.safetensors"), "{}", stderr(&out));
    assert_eq!(
        fs_err::read(models_dir.join("checkpoints/good.safetensors")).unwrap(),
        good
    );
    assert!(!models_dir.join("loras/bad.safetensors").exists());
    assert!(!models_dir.join("loras/bad.safetensors.part").exists());

    // Optional models may be missing; the verified file is not downloaded again.
    let before = server.hits("/good.safetensors");
    let out = run("fetch", false);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(server.hits("/good.safetensors"), before);

    // mount: only presence and size; a wrong-size file counts as missing.
    fs_err::write(models_dir.join("checkpoints/good.safetensors"), b"short").unwrap();
    let out = run("mount", false);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("checkpoints/good.safetensors"),
        "{}",
        stderr(&out)
    );
}

/// `--models bake`: the model is verified and staged into the context, listed for `b3sum --check`
/// in a dedicated stage, and copied into the runtime; a tampered source is refused.
#[test]
fn bake_stages_verified_models_into_the_context() {
    use comfydock_deploy::output::file_blake3;

    let ds = DeploySandbox::new();
    let model = ds.sb.ctx.workspace.join("models/checkpoints/tiny.safetensors");
    fs_err::create_dir_all(model.parent().unwrap()).unwrap();
    fs_err::write(&model, b"tiny model weights").unwrap();
    let hash = file_blake3(&model).unwrap();
    let manifest_path = ds.cec("pyproject.toml");
    let mut text = fs_err::read_to_string(&manifest_path).unwrap();
    let _ = write!(
        text,
        "\n[tool.comfydock.models.tiny]\nhash = \"blake3:{hash}\"\nsize = 18\npath = \"checkpoints/tiny.safetensors\"\n"
    );
    fs_err::write(&manifest_path, text).unwrap();
    ds.ok(&["-e", "studio", "commit", "-m", "model"]);

    let out = ds.out_dir("bake");
    ds.ok(&[
        "-e",
        "studio",
        "deploy",
        "docker",
        "--allow-local-urls",
        "--gpu",
        "cpu",
        "--models",
        "bake",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(
        fs_err::read(out.join("models/checkpoints/tiny.safetensors")).unwrap(),
        b"tiny model weights"
    );
    assert_eq!(
        fs_err::read_to_string(out.join("models.b3")).unwrap(),
        format!("{hash}  checkpoints/tiny.safetensors\n")
    );
    let stages = stages(&out);
    let models_stage = stages
        .iter()
        .find(|s| s.name.as_deref() == Some("models"))
        .unwrap();
    assert!(commands(models_stage).contains(&"b3sum --check /models.b3".to_owned()));
    let runtime = stages.last().unwrap();
    assert!(runtime.instructions.iter().any(|i| i.keyword == "COPY"
        && i.flag("from") == Some("models")
        && i.args.ends_with("/opt/comfyui/models/")));
    let ignore = fs_err::read_to_string(out.join(".dockerignore")).unwrap();
    assert!(ignore.lines().any(|l| l == "!models/"), "{ignore}");

    // A changed source file is refused, and the staged copy is not replaced by it.
    fs_err::remove_file(out.join("models/checkpoints/tiny.safetensors")).unwrap();
    fs_err::write(&model, b"tiny model weightz").unwrap();
    let bad = ds.run(&[
        "-e",
        "studio",
        "deploy",
        "docker",
        "--allow-local-urls",
        "--gpu",
        "cpu",
        "--models",
        "bake",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(stderr(&bad).contains("cannot be baked"), "{}", stderr(&bad));
    assert!(!out.join("models/checkpoints/tiny.safetensors").exists());
}

#[test]
fn dev_nodes_are_copied_into_the_context_respecting_gitignore() {
    let ds = DeploySandbox::new();
    let dev = ds.sb.ctx.path().join("my-dev-node");
    NodeContent::new()
        .node_class("DevThing")
        .write_to(&dev, "my-dev-node");
    fs_err::write(dev.join(".gitignore"), "secret.env\n").unwrap();
    fs_err::write(dev.join("secret.env"), "TOKEN=do-not-ship\n").unwrap();
    ds.ok(&["-e", "studio", "node", "add", "--dev", dev.to_str().unwrap()]);
    ds.ok(&["-e", "studio", "commit", "-m", "dev node"]);

    let out = ds.out_dir("ctx-dev");
    ds.ok(&[
        "-e",
        "studio",
        "deploy",
        "docker",
        "--allow-local-urls",
        "--gpu",
        "cpu",
        "--out",
        out.to_str().unwrap(),
    ]);
    let staged = out.join("dev_nodes/my-dev-node");
    assert!(staged.join("__init__.py").is_file(), "dev sources are staged");
    assert!(!staged.join("secret.env").exists(), ".gitignore is respected");
    let dockerfile = fs_err::read_to_string(out.join("Dockerfile")).unwrap();
    assert!(
        dockerfile.contains("COPY [\"dev_nodes/my-dev-node\", \"/opt/comfyui/custom_nodes/my-dev-node\"]"),
        "{dockerfile}"
    );
    assert!(
        fs_err::read_to_string(out.join(".dockerignore"))
            .unwrap()
            .contains("!dev_nodes/")
    );
}

/// Podman set up the way these machines need (no Docker engine, no cgroup controllers, no
/// rlimits): host network (build steps and containers reach the stand-ins on 127.0.0.1), runc,
/// chroot isolation for builds. `containers.conf` is written under `dir`.
fn podman_env(dir: &Path) -> Vec<(&'static str, String)> {
    let conf = dir.join("containers.conf");
    fs_err::write(
        &conf,
        "[containers]\ndefault_ulimits = []\nnetns = \"host\"\n[engine]\ncgroup_manager = \"cgroupfs\"\nruntime = \"runc\"\n",
    )
    .unwrap();
    vec![
        ("CONTAINERS_CONF", conf.display().to_string()),
        ("BUILDAH_ISOLATION", "chroot".to_owned()),
        ("COMFYDOCK_CONTAINER_ENGINE", "podman".to_owned()),
    ]
}

fn podman(ctx: &TestContext, env: &[(&'static str, String)], args: &[&str]) -> std::process::Output {
    let mut cmd = ctx.std_command("podman");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.args(args).output().unwrap()
}

/// Containers started by the test, removed when it ends (pass or fail).
struct Containers<'a> {
    ctx: &'a TestContext,
    env: &'a [(&'static str, String)],
    names: Vec<String>,
}

impl Drop for Containers<'_> {
    fn drop(&mut self) {
        for name in &self.names {
            let _ = podman(self.ctx, self.env, &["rm", "--force", name]);
        }
    }
}

/// A local Debian base image (debootstrap from the Debian mirror; made once per machine) and a
/// uv image holding the uv binary this machine installed from PyPI: the only inputs a build
/// here may start from.
fn local_base_images(ctx: &TestContext, env: &[(&'static str, String)]) -> (String, String) {
    const BASE: &str = "localhost/comfydock-test-base:bookworm";
    if !podman(ctx, env, &["image", "exists", BASE]).status.success() {
        let rootfs = ctx.path().join("rootfs");
        let mirror = fs_err::read_to_string("/etc/apt/sources.list.d/debian.sources")
            .ok()
            .and_then(|t| {
                t.lines()
                    .find_map(|l| l.strip_prefix("URIs:").map(|u| u.trim().to_owned()))
            })
            .unwrap_or_else(|| "http://deb.debian.org/debian".to_owned());
        let out = ctx
            .std_command("debootstrap")
            .args(["--variant=minbase", "bookworm"])
            .arg(&rootfs)
            .arg(&mirror)
            .output()
            .unwrap();
        assert!(out.status.success(), "debootstrap: {}", stderr(&out));
        let tar = ctx.path().join("rootfs.tar");
        let out = ctx
            .std_command("tar")
            .arg("-C")
            .arg(&rootfs)
            .arg("-cf")
            .arg(&tar)
            .arg(".")
            .output()
            .unwrap();
        assert!(out.status.success(), "tar: {}", stderr(&out));
        let out = podman(ctx, env, &["import", tar.to_str().unwrap(), BASE]);
        assert!(out.status.success(), "podman import: {}", stderr(&out));
    }
    let uv = stdout(
        &ctx.std_command("sh")
            .args(["-c", "command -v uv"])
            .output()
            .unwrap(),
    )
    .trim()
    .to_owned();
    let version = stdout(&ctx.std_command(&uv).arg("--version").output().unwrap());
    let version = version.split_whitespace().nth(1).unwrap().to_owned();
    let uv_image = format!("localhost/comfydock-test-uv:{version}");
    let dir = ctx.path().join("uv-image");
    fs_err::create_dir_all(&dir).unwrap();
    fs_err::copy(&uv, dir.join("uv")).unwrap();
    let tar = ctx.path().join("uv.tar");
    let out = ctx
        .std_command("tar")
        .arg("-C")
        .arg(&dir)
        .arg("-cf")
        .arg(&tar)
        .arg("uv")
        .output()
        .unwrap();
    assert!(out.status.success(), "tar: {}", stderr(&out));
    let out = podman(ctx, env, &["import", tar.to_str().unwrap(), &uv_image]);
    assert!(out.status.success(), "podman import: {}", stderr(&out));
    (BASE.to_owned(), uv_image)
}

/// Issue 17: a generated context really builds and runs here. `deploy docker --with-api --build`
/// builds the ComfyUI image and the API image with podman from local inputs only (a
/// debootstrapped base, uv from PyPI, packages from the stand-in index and registry on the host
/// network); the ComfyUI container answers `/system_stats`; the API container (the binary and
/// workflow of the context, keys from its environment) accepts a job and returns its output.
#[test]
fn a_generated_image_builds_runs_and_serves_a_job() {
    for tool in ["podman", "debootstrap", "runc"] {
        let found = std::process::Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .is_ok_and(|o| o.status.success());
        assert!(
            found,
            "`{tool}` is needed (`.ci/run` installs podman, buildah, runc and debootstrap)"
        );
    }
    let mut sb = EnvSandbox::new();
    let registry = RegistryServer::start();
    sb.ctx
        .env("COMFYDOCK_REGISTRY_URL", registry.url())
        .env("COMFYDOCK_MANAGER_DATA_URL", registry.manager_data_url());
    registry.publish(NodePackage::new("my-node", "1.0.0").node_class("MyNodeA"));
    sb.create("studio", "v0.3.40");
    let ok = |args: &[&str]| {
        let out = sb.ctx.command().args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}\n{}",
            stdout(&out),
            stderr(&out)
        );
        out
    };
    ok(&["-e", "studio", "node", "add", "my-node@1.0.0"]);
    let live = sb.env_dir("studio").join("ComfyUI/user/default/workflows");
    fs_err::create_dir_all(&live).unwrap();
    let workflow = serde_json::json!({
        "1": {"class_type": "LoadImage", "_meta": {"title": "Source"}, "inputs": {"image": "example.png"}},
        "2": {"class_type": "SaveImage", "_meta": {"title": "Save"}, "inputs": {"images": ["1", 0], "filename_prefix": "x"}},
    });
    fs_err::write(live.join("pipeline.json"), workflow.to_string()).unwrap();
    ok(&["-e", "studio", "workflow", "track", "pipeline"]);
    ok(&["-e", "studio", "commit", "-m", "Pipeline"]);

    // The build clones ComfyUI over HTTP (a path on this machine means nothing in a container).
    let git_server = comfydock_test::git_server::GitHttpServer::start();
    let comfyui_url = git_server.serve("comfyanonymous/ComfyUI", sb.repo.path());
    let env = podman_env(sb.ctx.path());
    let (base, uv_image) = local_base_images(&sb.ctx, &env);
    let out_dir = sb.ctx.path().join("ctx");
    let tag = "localhost/comfydock-studio:test";
    let mut deploy = sb.ctx.command();
    deploy.env("COMFYDOCK_COMFYUI_REPO", &comfyui_url);
    for (k, v) in &env {
        deploy.env(k, v);
    }
    // Local URLs are refused with the fix named …
    let refused = sb
        .ctx
        .command()
        .env("COMFYDOCK_COMFYUI_REPO", &comfyui_url)
        .args(["-e", "studio", "deploy", "docker", "--gpu", "cpu", "--out"])
        .arg(&out_dir)
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(1), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("only this machine reaches: http://127.0.0.1:")
            && stderr(&refused).contains("--public-url http://127.0.0.1:")
            && stderr(&refused).contains("--allow-local-urls"),
        "{}",
        stderr(&refused)
    );
    // … and allowed here, where the build runs on this machine's network.
    let built = deploy
        .args([
            "-e",
            "studio",
            "deploy",
            "docker",
            "--allow-local-urls",
            "--gpu",
            "cpu",
            "--with-api",
            "--system-python",
            "--base-image",
            &base,
            "--uv-image",
            &uv_image,
            "--tag",
            tag,
            "--build",
            "--out",
        ])
        .arg(&out_dir)
        .output()
        .unwrap();
    assert!(built.status.success(), "deploy --build:\n{}", stderr(&built));
    let api_tag = "localhost/comfydock-studio-api:test";
    for image in [tag, api_tag] {
        assert!(
            podman(&sb.ctx, &env, &["image", "exists", image])
                .status
                .success(),
            "{image}"
        );
    }

    let mut containers = Containers {
        ctx: &sb.ctx,
        env: &env,
        names: Vec::new(),
    };
    let comfy_port = crate::env_support::free_port();
    let name = format!("comfydock-test-comfyui-{comfy_port}");
    containers.names.push(name.clone());
    let port_text = comfy_port.to_string();
    let out = podman(
        &sb.ctx,
        &env,
        &[
            "run",
            "--detach",
            "--name",
            &name,
            tag,
            "--listen",
            "127.0.0.1",
            "--port",
            &port_text,
        ],
    );
    assert!(out.status.success(), "podman run: {}", stderr(&out));
    let deadline = Instant::now() + Duration::from_mins(2);
    let stats = loop {
        if std::net::TcpStream::connect(("127.0.0.1", comfy_port)).is_ok() {
            break http_get(comfy_port, "/system_stats");
        }
        let logs = podman(&sb.ctx, &env, &["logs", &name]);
        assert!(
            Instant::now() < deadline,
            "ComfyUI did not answer:\n{}{}",
            stdout(&logs),
            stderr(&logs)
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    let stats: serde_json::Value = serde_json::from_str(&stats).unwrap();
    assert_eq!(stats["system"]["comfyui_version"], "0.3.40", "{stats}");
    let classes: serde_json::Value = serde_json::from_str(&http_get(comfy_port, "/object_info")).unwrap();
    assert!(
        classes.get("MyNodeA").is_some(),
        "the node is installed in the image"
    );
    let user = podman(&sb.ctx, &env, &["exec", &name, "id", "-u"]);
    assert_eq!(
        stdout(&user).trim(),
        "10001",
        "ComfyUI runs as the image's own user, not root"
    );

    // The API image serves the context's workflow; its worker talks to a ComfyUI that runs jobs.
    let backend = comfydock_test::comfyui_server::ComfyUiServer::start();
    let api_port = crate::env_support::free_port();
    let api_name = format!("comfydock-test-api-{api_port}");
    containers.names.push(api_name.clone());
    let key = "0123456789abcdef".repeat(4);
    let out = podman(
        &sb.ctx,
        &env,
        &[
            "run",
            "--detach",
            "--name",
            &api_name,
            "--env",
            &format!("COMFYDOCK_SERVE_API_KEYS={key}"),
            "--env",
            &format!("COMFYDOCK_COMFYUI_URL={}", backend.url()),
            "--env",
            &format!("COMFYDOCK_API_PORT={api_port}"),
            api_tag,
        ],
    );
    assert!(out.status.success(), "podman run api: {}", stderr(&out));
    let http = reqwest::blocking::Client::new();
    let base_url = format!("http://127.0.0.1:{api_port}");
    let deadline = Instant::now() + Duration::from_mins(1);
    while http.get(format!("{base_url}/healthz")).send().is_err() {
        let logs = podman(&sb.ctx, &env, &["logs", &api_name]);
        assert!(
            Instant::now() < deadline,
            "the API did not come up:\n{}",
            stderr(&logs)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let unauthorised = http
        .post(format!("{base_url}/v1/workflows/pipeline/jobs"))
        .json(&serde_json::json!({"params": {}}))
        .send()
        .unwrap();
    assert_eq!(unauthorised.status(), 401, "keys gate the API");
    let created: serde_json::Value = http
        .post(format!("{base_url}/v1/workflows/pipeline/jobs"))
        .bearer_auth(&key)
        .json(&serde_json::json!({"params": {"save_filename_prefix": "from-the-image"}}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let id = created["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{created}"))
        .to_owned();
    let deadline = Instant::now() + Duration::from_mins(1);
    let job = loop {
        let job: serde_json::Value = http
            .get(format!("{base_url}/v1/jobs/{id}"))
            .bearer_auth(&key)
            .send()
            .unwrap()
            .json()
            .unwrap();
        if job["status"] == "succeeded" {
            break job;
        }
        assert!(
            Instant::now() < deadline && job["status"] != "dead" && job["status"] != "failed",
            "{job}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let output_url = job["outputs"][0]["url"]
        .as_str()
        .unwrap_or_else(|| panic!("{job}"));
    let output = http
        .get(format!("{base_url}{output_url}"))
        .bearer_auth(&key)
        .send()
        .unwrap();
    assert_eq!(output.status(), 200);
    assert!(!output.bytes().unwrap().is_empty(), "the job's output comes back");
    drop(containers);
}

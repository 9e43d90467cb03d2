//! `workflow resolve --auto --install`: a workflow needing a registry node and a model that only the
//! local file server has ends installed, downloaded, indexed and recorded (issue 6 acceptance).

use comfydock_test::file_server::FileServer;
use comfydock_test::registry::{NodePackage, RegistryServer};

use crate::common::{stderr, stdout};
use crate::env_support::EnvSandbox;
use crate::snapshot::comfydock_snapshot;

fn workflow(model_url: &str, sha256: &str, seed: u64) -> String {
    format!(
        r#"{{"last_node_id": 2, "last_link_id": 0,
 "nodes": [
  {{"id": 1, "type": "PackNode", "title": "Pack", "pos": [0, 0], "size": [200, 80], "flags": {{}}, "order": 0, "mode": 0,
   "inputs": [], "outputs": [], "properties": {{"cnr_id": "test-pack", "ver": "1.0.0"}}, "widgets_values": [{seed}, "fixed"]}},
  {{"id": 2, "type": "CheckpointLoaderSimple", "pos": [0, 200], "size": [300, 100], "flags": {{}}, "order": 1, "mode": 0,
   "inputs": [], "outputs": [{{"name": "MODEL", "type": "MODEL", "links": null}}],
   "properties": {{"models": [{{"name": "dream.safetensors", "url": "{model_url}", "directory": "checkpoints", "hash": "{sha256}", "hash_type": "SHA256"}}]}},
   "widgets_values": ["dream.safetensors"]}}
 ],
 "links": [], "groups": [], "config": {{}}, "extra": {{}}, "version": 0.4}}"#
    )
}

#[test]
fn resolve_auto_install_adds_the_node_downloads_the_model_and_records_both() {
    let mut sb = EnvSandbox::new();
    let registry = RegistryServer::start();
    registry.publish(
        NodePackage::new("test-pack", "1.0.0")
            .node_class("PackNode")
            .requirements("node-dep-b"),
    );
    let files = FileServer::start();
    let model: Vec<u8> = (0..100_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13).to_le_bytes()[0])
        .collect();
    let sha = comfydock_test::archive::sha256_hex(&model);
    files.add("/models/dream.safetensors", model.clone());
    sb.ctx
        .env("COMFYDOCK_REGISTRY_URL", registry.url())
        .env("COMFYDOCK_MANAGER_DATA_URL", registry.manager_data_url());
    sb.create("a", "v0.3.40");
    let live = sb.env_dir("a").join("ComfyUI/user/default/workflows/flow.json");
    fs_err::create_dir_all(live.parent().unwrap()).unwrap();
    fs_err::write(
        &live,
        workflow(&files.url_for("/models/dream.safetensors"), &sha, 42),
    )
    .unwrap();

    let run = |args: &[&str]| sb.ctx.command().args(["-e", "a"]).args(args).output().unwrap();
    let out = comfydock_snapshot!(
        sb.ctx,
        sb.ctx.command().args(["-e", "a", "workflow", "track", "flow"])
    );
    assert!(out.status.success());

    // Without --install the gaps are reported and the command fails with the fix.
    let out = comfydock_snapshot!(
        sb.ctx,
        sb.ctx
            .command()
            .args(["-e", "a", "workflow", "resolve", "flow", "--auto"])
    );
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));

    let out = run(&["--json", "workflow", "resolve", "flow", "--auto", "--install"]);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    let report: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(report["nodes"][0]["package"], "test-pack");
    assert_eq!(report["nodes"][0]["installed"], true);
    assert_eq!(report["models"][0]["how"], "downloaded and verified");

    // The node is installed, its requirement importable; the model downloaded and indexed.
    let nodes: serde_json::Value = serde_json::from_str(&stdout(&run(&["--json", "node", "list"]))).unwrap();
    assert!(nodes.to_string().contains("test-pack"), "{nodes}");
    assert!(sb.python("a", "import node_dep_b").is_ok());
    assert_eq!(
        fs_err::read(sb.ctx.workspace.join("models/checkpoints/dream.safetensors")).unwrap(),
        model
    );
    let found: serde_json::Value =
        serde_json::from_str(&stdout(&run(&["--json", "model", "find", "dream"]))).unwrap();
    assert_eq!(found[0]["sha256"], sha);

    // Recorded in the manifest: nodes, and models by hash with criticality and sources.
    let manifest = fs_err::read_to_string(sb.env_dir("a").join(".cec/pyproject.toml")).unwrap();
    let parsed: toml_edit::DocumentMut = manifest.parse().unwrap();
    let entry = &parsed["tool"]["comfydock"]["workflows"]["flow"];
    assert_eq!(
        entry["nodes"].as_array().unwrap().get(0).and_then(|v| v.as_str()),
        Some("test-pack"),
        "{manifest}"
    );
    let blake3 = found[0]["blake3"].as_str().unwrap();
    assert_eq!(
        entry["models"][blake3]["criticality"].as_str(),
        Some("required"),
        "{manifest}"
    );
    assert!(
        entry["models"][blake3]["sources"]
            .to_string()
            .contains("/models/dream.safetensors")
    );
    assert_eq!(
        entry["models"][blake3]["relative_path"].as_str(),
        Some("checkpoints/dream.safetensors")
    );

    let out = run(&["commit", "-m", "Resolve flow"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let status: serde_json::Value = serde_json::from_str(&stdout(&run(&["--json", "status"]))).unwrap();
    assert_eq!(status["clean"], true, "{status}");

    // A widget change shows up by node and value.
    fs_err::write(
        &live,
        workflow(&files.url_for("/models/dream.safetensors"), &sha, 7),
    )
    .unwrap();
    let out = comfydock_snapshot!(
        sb.ctx,
        sb.ctx.command().args(["-e", "a", "workflow", "diff", "flow"])
    );
    assert!(out.status.success(), "{}", stderr(&out));

    // A second resolve is a no-op that keeps everything resolved.
    let out = comfydock_snapshot!(
        sb.ctx,
        sb.ctx.command().args(["-e", "a", "workflow", "resolve", "flow"])
    );
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));

    // The commit's semantic diff reads as nodes, models and workflows, not JSON.
    let out = comfydock_snapshot!(
        sb.ctx,
        sb.ctx.command().args(["-e", "a", "diff", "HEAD~1", "HEAD"])
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stdout(&out).contains('{'), "{}", stdout(&out));
}

/// Index the workspace's models, then return environment `a`'s ComfyUI workflows folder
/// (created).
fn scan_and_open_workflows(sb: &EnvSandbox) -> std::path::PathBuf {
    let out = sb.ctx.command().args(["model", "scan"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let live = sb.env_dir("a").join("ComfyUI/user/default/workflows");
    fs_err::create_dir_all(&live).unwrap();
    live
}

/// A UI workflow of loader nodes, one per `(type, file)`, stacked vertically.
fn loaders_workflow(loaders: &[(&str, &str)]) -> String {
    let nodes: Vec<String> = loaders
        .iter()
        .enumerate()
        .map(|(i, (node_type, file))| {
            format!(
                r#"{{"id": {id}, "type": "{node_type}", "pos": [0, {y}], "size": [300, 100], "flags": {{}}, "order": {i}, "mode": 0, "inputs": [], "outputs": [], "properties": {{}}, "widgets_values": ["{file}"]}}"#,
                id = i + 1,
                y = i * 200
            )
        })
        .collect();
    format!(
        r#"{{"last_node_id": {}, "last_link_id": 0, "nodes": [{}], "links": [], "groups": [], "config": {{}}, "extra": {{}}, "version": 0.4}}"#,
        loaders.len(),
        nodes.join(", ")
    )
}

fn checkpoint_workflow(file: &str) -> String {
    loaders_workflow(&[("CheckpointLoaderSimple", file)])
}

/// Seed 001 edge case 1: two indexed files match a model reference. Without a terminal the
/// command says which flag decides; on a terminal it asks (path, size, hash, who uses each), the
/// answer becomes the pin and is never asked again; `--auto` prefers the file other workflows use.
#[test]
fn an_ambiguous_model_is_asked_once_and_the_answer_is_kept() {
    let sb = EnvSandbox::new();
    sb.create("a", "v0.3.40");
    let models = sb.ctx.workspace.join("models/checkpoints");
    for (version, bytes) in [
        ("v1", b"first version ".repeat(300)),
        ("v2", b"second version ".repeat(400)),
    ] {
        fs_err::create_dir_all(models.join(version)).unwrap();
        fs_err::write(models.join(version).join("model.safetensors"), bytes).unwrap();
    }
    let live = scan_and_open_workflows(&sb);
    for name in ["flow", "other"] {
        fs_err::write(
            live.join(format!("{name}.json")),
            checkpoint_workflow("model.safetensors"),
        )
        .unwrap();
    }
    let run = |args: &[&str]| sb.ctx.command().args(["-e", "a"]).args(args).output().unwrap();
    assert!(run(&["workflow", "track", "flow", "other"]).status.success());

    // No terminal: a usage error naming --auto.
    let out = comfydock_snapshot!(
        sb.ctx,
        sb.ctx.command().args(["-e", "a", "workflow", "resolve", "flow"])
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));

    // On a terminal: the choices, then the second one.
    let out = sb
        .ctx
        .terminal_command(&["-e", "a", "workflow", "resolve", "flow"], "2\n");
    let shown = stdout(&out);
    assert!(out.status.success(), "{shown}");
    assert!(
        shown.contains("Several indexed files match model `model.safetensors`:"),
        "{shown}"
    );
    assert!(
        shown.contains("  1. ") && shown.contains("v1/model.safetensors (4.1 KiB, blake3 "),
        "{shown}"
    );
    assert!(
        shown.contains("  2. ") && shown.contains("v2/model.safetensors (5.9 KiB, blake3 "),
        "{shown}"
    );
    assert!(
        shown.find("v1/model").unwrap() < shown.find("v2/model").unwrap(),
        "listed in path order: {shown}"
    );
    let v2: serde_json::Value = serde_json::from_str(&stdout(
        &sb.ctx
            .command()
            .args(["--json", "model", "show"])
            .arg(models.join("v2/model.safetensors"))
            .output()
            .unwrap(),
    ))
    .unwrap();
    let v2_blake3 = v2["blake3"].as_str().unwrap().to_owned();
    let manifest = fs_err::read_to_string(sb.env_dir("a").join(".cec/pyproject.toml")).unwrap();
    assert!(
        manifest.contains(&format!("[tool.comfydock.workflows.flow.models.{v2_blake3}]")),
        "{manifest}"
    );

    // Asked once: the next resolve (no terminal) keeps the answer.
    let out = run(&["--json", "workflow", "resolve", "flow"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(report["models"][0]["blake3"], v2_blake3.as_str());
    assert_eq!(
        report["models"][0]["how"],
        "pinned earlier (saved in pyproject.toml)"
    );

    // --auto for another workflow takes the file `flow` already uses.
    let out = run(&["--json", "workflow", "resolve", "other", "--auto"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(report["models"][0]["blake3"], v2_blake3.as_str());
    assert!(
        report["models"][0]["how"]
            .as_str()
            .unwrap()
            .contains("workflow `flow` already uses"),
        "{report}"
    );
}

fn two_loader_workflow(first: &str, second: &str, third: &str) -> String {
    loaders_workflow(&[
        ("CheckpointLoaderSimple", first),
        ("CheckpointLoaderSimple", second),
        ("UpscaleModelLoader", third),
    ])
}

/// Seed 001 edge case 3: models the index does not know by name. `workflow model set` pins one
/// to an indexed file under another name, downloads another from a URL (verified and indexed),
/// and marks the third optional; the answers are kept and `resolve` then succeeds.
#[test]
fn models_set_by_hand_are_pinned_and_kept() {
    let sb = EnvSandbox::new();
    sb.create("a", "v0.3.40");
    let models = sb.ctx.workspace.join("models/checkpoints");
    fs_err::create_dir_all(&models).unwrap();
    fs_err::write(models.join("renamed.safetensors"), b"local bytes ".repeat(100)).unwrap();
    let files = FileServer::start();
    files.add("/m/extra.safetensors", b"remote bytes ".repeat(100));
    let live = scan_and_open_workflows(&sb);
    fs_err::write(
        live.join("flow.json"),
        two_loader_workflow("known.safetensors", "extra.safetensors", "upscaler.pth"),
    )
    .unwrap();
    let run = |args: &[&str]| sb.ctx.command().args(["-e", "a"]).args(args).output().unwrap();
    assert!(run(&["workflow", "track", "flow"]).status.success());
    let out = run(&["workflow", "resolve", "flow", "--auto"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));

    let out = comfydock_snapshot!(
        sb.ctx,
        sb.ctx.command().args([
            "-e",
            "a",
            "workflow",
            "model",
            "set",
            "flow",
            "known.safetensors",
            models.join("renamed.safetensors").to_str().unwrap()
        ])
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let url = files.url_for("/m/extra.safetensors");
    let out = run(&["workflow", "model", "set", "flow", "extra.safetensors", &url]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        fs_err::read(models.join("extra.safetensors")).unwrap(),
        b"remote bytes ".repeat(100)
    );
    let out = run(&["workflow", "model", "set", "flow", "upscaler.pth", "--optional"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = comfydock_snapshot!(
        sb.ctx,
        sb.ctx.command().args([
            "-e",
            "a",
            "workflow",
            "model",
            "set",
            "flow",
            "nope.safetensors",
            "--optional"
        ])
    );
    assert_eq!(out.status.code(), Some(1));

    // Kept: resolve now succeeds, the pins and the optional mark unchanged.
    let before = fs_err::read_to_string(sb.env_dir("a").join(".cec/pyproject.toml")).unwrap();
    assert!(
        before.contains("optional_models = [\"upscaler.pth\"]"),
        "{before}"
    );
    let out = run(&["--json", "workflow", "resolve", "flow"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let report: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let how: Vec<&str> = report["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["how"].as_str().unwrap())
        .collect();
    assert_eq!(how[0], "pinned earlier (saved in pyproject.toml)", "{report}");
    assert_eq!(report["models"][2]["criticality"], "optional", "{report}");
    let after = fs_err::read_to_string(sb.env_dir("a").join(".cec/pyproject.toml")).unwrap();
    assert_eq!(before, after, "a second resolve changes nothing");
}

/// On a terminal, `resolve` asks about each model nothing matches: a file the user has, a URL,
/// optional, or skip. The answers are saved; without a terminal the same gaps fail with the fix.
#[test]
fn resolve_asks_about_models_nothing_matches_on_a_terminal() {
    let sb = EnvSandbox::new();
    sb.create("a", "v0.3.40");
    let models = sb.ctx.workspace.join("models/checkpoints");
    fs_err::create_dir_all(&models).unwrap();
    let renamed = models.join("renamed.safetensors");
    fs_err::write(&renamed, b"local bytes ".repeat(100)).unwrap();
    let live = scan_and_open_workflows(&sb);
    fs_err::write(
        live.join("flow.json"),
        loaders_workflow(&[
            ("CheckpointLoaderSimple", "known.safetensors"),
            ("UpscaleModelLoader", "upscaler.pth"),
        ]),
    )
    .unwrap();
    let run = |args: &[&str]| sb.ctx.command().args(["-e", "a"]).args(args).output().unwrap();
    assert!(run(&["workflow", "track", "flow"]).status.success());
    let out = run(&["workflow", "resolve", "flow"]);
    assert_eq!(out.status.code(), Some(1), "no terminal: {}", stderr(&out));

    let input = format!("1\n{}\n3\n", renamed.display());
    let out = sb
        .ctx
        .terminal_command(&["-e", "a", "workflow", "resolve", "flow"], &input);
    let shown = stdout(&out);
    assert!(out.status.success(), "{shown}");
    assert!(
        shown.contains(
            "No indexed file matches model `known.safetensors` (required), and the workflow gives no URL:"
        ),
        "{shown}"
    );
    assert!(shown.contains("set by you (saved in pyproject.toml)"), "{shown}");
    assert!(shown.contains("marked optional by you"), "{shown}");

    // Saved: the next resolve needs no terminal and asks nothing.
    let out = run(&["--json", "workflow", "resolve", "flow"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(
        report["models"][0]["how"],
        "pinned earlier (saved in pyproject.toml)"
    );
    assert_eq!(report["models"][1]["criticality"], "optional");
}

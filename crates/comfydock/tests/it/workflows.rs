//! `comfydock workflow`: analyze/validate/convert files, and tracking in an environment (issue 6).

use std::path::PathBuf;

use crate::common::{context, stderr, stdout};
use crate::env_support::EnvSandbox;
use crate::snapshot::comfydock_snapshot;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/it/fixtures")
        .join(name)
}

#[test]
fn analyze_lists_custom_nodes_with_packages_and_models_with_folders() {
    let ctx = context();
    let out = comfydock_snapshot!(
        ctx,
        ctx.command()
            .args(["workflow", "analyze"])
            .arg(fixture("custom_nodes.json"))
    );
    assert!(out.status.success(), "{}", stderr(&out));

    let out = comfydock_snapshot!(
        ctx,
        ctx.command()
            .args(["--json", "workflow", "analyze"])
            .arg(fixture("custom_nodes.json"))
    );
    let analysis: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let models = analysis["models"].as_array().unwrap();
    let ckpt = models
        .iter()
        .find(|m| m["relative_path"] == "sd15/dream.safetensors")
        .unwrap();
    assert_eq!(ckpt["folder"], "checkpoints");
    assert_eq!(ckpt["url"], "http://models.invalid/dream.safetensors");
    assert!(
        models
            .iter()
            .any(|m| m["relative_path"] == "hunyuan_video_720_fp8.safetensors"),
        "{analysis}"
    );
}

#[test]
fn bad_files_are_explained() {
    let ctx = context();
    let bad = ctx.path().join("bad.json");
    fs_err::write(&bad, "{\n  \"nodes\": [\n    {\"id\": 1,,}\n  ]\n}").unwrap();
    let out = comfydock_snapshot!(ctx, ctx.command().args(["workflow", "validate"]).arg(&bad));
    assert_eq!(out.status.code(), Some(1));

    let not_workflow = ctx.path().join("list.json");
    fs_err::write(&not_workflow, "[1, 2, 3]").unwrap();
    let out = comfydock_snapshot!(
        ctx,
        ctx.command().args(["workflow", "analyze"]).arg(&not_workflow)
    );
    assert_eq!(out.status.code(), Some(1));

    // A dangling link is an error naming the node.
    let text = fs_err::read_to_string(fixture("simple_ui.json")).unwrap();
    let dangling = ctx.path().join("dangling.json");
    fs_err::write(&dangling, text.replace("\"link\": 1}", "\"link\": 9}")).unwrap();
    let out = comfydock_snapshot!(ctx, ctx.command().args(["workflow", "validate"]).arg(&dangling));
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let out = comfydock_snapshot!(
        ctx,
        ctx.command()
            .args(["--json", "workflow", "validate"])
            .arg(&dangling)
    );
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let out = comfydock_snapshot!(
        ctx,
        ctx.command()
            .args(["workflow", "validate"])
            .arg(fixture("simple_ui.json"))
    );
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
}

#[test]
fn validate_with_object_info_reports_missing_required_inputs() {
    let ctx = context();
    let object_info = ctx.path().join("object_info.json");
    let definitions = serde_json::json!({
        "EmptyImage": {
            "input": {"required": {"width": ["INT"], "height": ["INT"], "batch_size": ["INT"], "color": ["INT"]}},
            "output": ["IMAGE"], "output_node": false
        },
        "ImageInvert": {"input": {"required": {"image": ["IMAGE"]}}, "output": ["IMAGE"], "output_node": false},
        "SaveImage": {
            "input": {"required": {"images": ["IMAGE"], "filename_prefix": ["STRING", {"default": "ComfyUI"}]}},
            "output": [], "output_node": true
        }
    });
    fs_err::write(&object_info, definitions.to_string()).unwrap();
    let mut prompt = serde_json::json!({
        "1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}},
        "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "x"}}
    });
    let file = ctx.path().join("prompt.json");
    let validate = |json: bool| {
        let mut cmd = ctx.command();
        if json {
            cmd.arg("--json");
        }
        cmd.args(["workflow", "validate"])
            .arg(&file)
            .arg("--object-info")
            .arg(&object_info)
            .output()
            .unwrap()
    };
    fs_err::write(&file, prompt.to_string()).unwrap();
    let out = validate(false);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));

    prompt["3"]["inputs"].as_object_mut().unwrap().remove("images");
    fs_err::write(&file, prompt.to_string()).unwrap();
    let out = validate(false);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(
        stdout(&out).trim(),
        "error: node 3 (SaveImage): required input 'images' is missing"
    );
    let out = validate(true);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    // One JSON document: the failure, carrying the issues as its data.
    let document: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(document["exit_code"], 1, "{document}");
    let issues = &document["data"];
    assert_eq!(issues[0]["code"], "required_input_missing", "{issues}");
    assert_eq!(issues[0]["node_id"], "3");
    assert_eq!(issues[0]["input_name"], "images");
}

#[test]
fn convert_produces_an_api_prompt() {
    let ctx = context();
    let out = comfydock_snapshot!(
        ctx,
        ctx.command()
            .args(["workflow", "convert"])
            .arg(fixture("simple_ui.json"))
            .arg("--object-info")
            .arg(fixture("object_info.json"))
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let prompt: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(prompt["1"]["class_type"], "CheckpointLoaderSimple");
    assert_eq!(prompt["1"]["inputs"]["ckpt_name"], "sd15/dream.safetensors");
    assert_eq!(prompt["2"]["inputs"]["text"], "a cat");
    assert_eq!(prompt["2"]["inputs"]["clip"], serde_json::json!(["1", 1]));
    assert_eq!(prompt["2"]["_meta"]["title"], "Positive");
}

#[test]
fn track_commit_modify_diff_restore() {
    let sb = EnvSandbox::new();
    sb.create("a", "v0.3.40");
    let live_dir = sb.env_dir("a").join("ComfyUI/user/default/workflows");
    fs_err::create_dir_all(live_dir.join("portraits")).unwrap();
    let original = fs_err::read_to_string(fixture("simple_ui.json")).unwrap();
    fs_err::write(live_dir.join("portraits/flux.json"), &original).unwrap();
    fs_err::write(live_dir.join("scratch.json"), &original).unwrap();
    fs_err::write(sb.env_dir("a").join(".cec/.comfydockignore"), "scratch.json\n").unwrap();

    let ws = |args: &[&str]| sb.ctx.command().args(["-e", "a"]).args(args).output().unwrap();
    let out = ws(&["--json", "workflow", "list"]);
    let rows: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(
        rows.as_array().unwrap().len(),
        1,
        "ignored workflows are not listed: {rows}"
    );
    assert_eq!(
        (rows[0]["name"].as_str(), rows[0]["tracked"].as_bool()),
        (Some("portraits/flux"), Some(false))
    );
    assert_eq!(rows[0]["state"], "new");

    let out = ws(&["workflow", "track", "--all"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let manifest = fs_err::read_to_string(sb.env_dir("a").join(".cec/pyproject.toml")).unwrap();
    assert!(
        manifest.contains("[tool.comfydock.workflows.\"portraits/flux\"]"),
        "{manifest}"
    );
    assert!(!manifest.contains("scratch"), "{manifest}");
    assert!(
        !sb.env_dir("a")
            .join(".cec/workflows/portraits/flux.json")
            .exists(),
        "track alone copies nothing"
    );

    let out = ws(&["commit", "-m", "Track flux"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        fs_err::read_to_string(sb.env_dir("a").join(".cec/workflows/portraits/flux.json")).unwrap(),
        original
    );
    let out = ws(&["--json", "workflow", "list"]);
    let rows: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(rows[0]["state"], "synced");

    // Moving the canvas is not a change; editing a prompt is.
    let panned = original.replace("\"offset\": [0, 0]", "\"offset\": [120, -40]");
    fs_err::write(live_dir.join("portraits/flux.json"), &panned).unwrap();
    let rows: serde_json::Value =
        serde_json::from_str(&stdout(&ws(&["--json", "workflow", "list"]))).unwrap();
    assert_eq!(rows[0]["state"], "synced", "view state is ignored");
    fs_err::write(
        live_dir.join("portraits/flux.json"),
        original.replace("a cat", "a dog"),
    )
    .unwrap();
    let rows: serde_json::Value =
        serde_json::from_str(&stdout(&ws(&["--json", "workflow", "list"]))).unwrap();
    assert_eq!(rows[0]["state"], "modified");

    let status: serde_json::Value = serde_json::from_str(&stdout(&ws(&["--json", "status"]))).unwrap();
    assert_eq!(status["clean"], false);
    assert!(
        status["issues"]
            .to_string()
            .contains("tracked workflow `portraits/flux` is modified"),
        "{status}"
    );

    let out = ws(&["workflow", "diff", "portraits/flux"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let diff = stdout(&out);
    assert!(diff.contains("node 2 \"Positive\" (CLIPTextEncode)"), "{diff}");
    assert!(diff.contains("\"a cat\" -> \"a dog\""), "{diff}");

    // Restoring over uncommitted changes is refused, naming the ways out.
    let edited = original.replace("a cat", "a dog");
    let out = comfydock_snapshot!(
        sb.ctx,
        sb.ctx
            .command()
            .args(["-e", "a", "workflow", "restore", "portraits/flux"])
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(
        fs_err::read_to_string(live_dir.join("portraits/flux.json")).unwrap(),
        edited
    );
    // With --force the edited file goes to the workspace trash, then the commit is restored.
    let out = comfydock_snapshot!(
        sb.ctx,
        sb.ctx
            .command()
            .args(["-e", "a", "workflow", "restore", "portraits/flux", "--force"]),
        filters = vec![(r"trash/a/\d+/", "trash/a/[TIME]/")]
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("reload the workflow"), "{}", stderr(&out));
    assert_eq!(
        fs_err::read_to_string(live_dir.join("portraits/flux.json")).unwrap(),
        original
    );
    let kept: Vec<String> = walk_files(&sb.ctx.workspace.join("trash/a"));
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert!(kept[0].ends_with("/workflows/portraits/flux.json"), "{kept:?}");
    assert_eq!(fs_err::read_to_string(&kept[0]).unwrap(), edited);
    let status: serde_json::Value = serde_json::from_str(&stdout(&ws(&["--json", "status"]))).unwrap();
    assert_eq!(status["clean"], true, "{status}");

    // A tracked workflow deleted in ComfyUI: status offers restore or untrack, and restore
    // brings it back without needing --force.
    fs_err::remove_file(live_dir.join("portraits/flux.json")).unwrap();
    let out = comfydock_snapshot!(sb.ctx, sb.ctx.command().args(["-e", "a", "status"]));
    assert!(
        stdout(&out).contains("workflow restore portraits/flux"),
        "{}",
        stdout(&out)
    );
    assert!(ws(&["workflow", "restore", "portraits/flux"]).status.success());
    assert_eq!(
        fs_err::read_to_string(live_dir.join("portraits/flux.json")).unwrap(),
        original
    );

    // Untracking drops the committed copy at the next commit.
    assert!(ws(&["workflow", "untrack", "portraits/flux"]).status.success());
    assert!(ws(&["commit", "-m", "Untrack"]).status.success());
    assert!(
        !sb.env_dir("a")
            .join(".cec/workflows/portraits/flux.json")
            .exists()
    );
    let out = ws(&["workflow", "track", "nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("No workflow `nope`"), "{}", stderr(&out));
}

#[test]
fn analyze_with_an_environment_uses_its_comfyui_builtins() {
    let sb = EnvSandbox::new();
    // A newer ComfyUI ships a core node the fallback list has never heard of.
    sb.repo.commit_file(
        "comfy_extras/nodes_future.py",
        "class FutureCoreNode:\n    pass\n\n\nNODE_CLASS_MAPPINGS = {\"FutureCoreNode\": FutureCoreNode}\n",
        "Add FutureCoreNode",
    );
    sb.repo.add_release(
        "v0.3.42",
        comfydock_test::comfyui_repo::requirements_for("v0.3.41"),
    );
    sb.create("next", "v0.3.42");
    let text = fs_err::read_to_string(fixture("simple_ui.json"))
        .unwrap()
        .replace("\"CLIPTextEncode\"", "\"FutureCoreNode\"");
    let file = sb.ctx.path().join("future.json");
    fs_err::write(&file, text).unwrap();

    let categories = |args: &[&str]| -> String {
        let out = sb
            .ctx
            .command()
            .args(args)
            .args(["--json", "workflow", "analyze"])
            .arg(&file)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        let analysis: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
        let node = analysis["node_types"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["node_type"] == "FutureCoreNode")
            .cloned();
        node.unwrap()["category"].as_str().unwrap().to_owned()
    };
    assert_eq!(
        categories(&[]),
        "custom",
        "without an environment only the fallback list is known"
    );
    assert_eq!(categories(&["-e", "next"]), "builtin");
}

#[test]
fn analyze_maps_unhinted_custom_types_through_the_node_index() {
    let mut sb = EnvSandbox::new();
    let registry = comfydock_test::registry::RegistryServer::start();
    registry.add_extension_map_entry(
        "https://github.com/kijai/ComfyUI-KJNodes",
        &["ImageResizeKJ", "GetLatentRangeFromBatch"],
        "KJNodes",
    );
    sb.ctx
        .env("COMFYDOCK_REGISTRY_URL", registry.url())
        .env("COMFYDOCK_MANAGER_DATA_URL", registry.manager_data_url());
    sb.create("a", "v0.3.40");
    // Like the KJNodes example: no cnr_id/aux_id on nodes, only legacy extra.node_versions.
    let text = fs_err::read_to_string(fixture("simple_ui.json"))
        .unwrap()
        .replace("\"CLIPTextEncode\"", "\"ImageResizeKJ\"")
        .replace("\"extra\": {", "\"extra\": {\"node_versions\": {\"comfy-core\": \"0.3.13\", \"ComfyUI-KJNodes\": \"a8aeef670b3f288303f956bf94385cb87978ea93\"}, ");
    let file = sb.ctx.path().join("kj.json");
    fs_err::write(&file, text).unwrap();
    let out = sb
        .ctx
        .command()
        .args(["-e", "a", "workflow", "analyze"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("ImageResizeKJ  (https://github.com/kijai/comfyui-kjnodes (node index: manager)"),
        "{text}"
    );
    assert!(
        text.contains("Packs named in extra.node_versions: ComfyUI-KJNodes@a8aeef670b3f"),
        "{text}"
    );
}

/// Every file below `dir`, as paths.
fn walk_files(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs_err::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path.to_string_lossy().into_owned());
            }
        }
    }
    out
}

/// Many files (and folders) in one run: each file's own result, failures named and counted,
/// then a summary; `--json` is one document. A single file keeps its own output (above).
#[test]
fn analyze_and_validate_many_files_and_folders_in_one_run() {
    let ctx = context();
    let folder = ctx.path().join("workflows");
    fs_err::create_dir_all(folder.join("nested")).unwrap();
    fs_err::copy(fixture("custom_nodes.json"), folder.join("a_custom.json")).unwrap();
    fs_err::copy(fixture("simple_ui.json"), folder.join("nested/b_simple.json")).unwrap();
    fs_err::write(folder.join("notes.txt"), "not a workflow").unwrap();
    fs_err::write(folder.join(".hidden.json"), "not read").unwrap();
    let broken = ctx.path().join("broken.json");
    fs_err::write(&broken, "[1, 2, 3]").unwrap();

    // A folder: every workflow below it, in name order, with one summary line.
    let out = comfydock_snapshot!(ctx, ctx.command().args(["workflow", "analyze"]).arg(&folder));
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let custom = text.find("a_custom.json: 5 nodes").unwrap();
    let simple = text.find("b_simple.json: ").unwrap();
    assert!(custom < simple, "{text}");
    assert!(
        stderr(&out).contains("Analyzed 2 of 2 workflows"),
        "{}",
        stderr(&out)
    );

    // A file that cannot be read is reported, the others still analysed; the run fails.
    let out = ctx
        .command()
        .args(["--json", "workflow", "analyze"])
        .arg(&folder)
        .arg(&broken)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let document: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(document["summary"]["files"], 3, "{document}");
    assert_eq!(document["summary"]["analyzed"], 2);
    assert_eq!(document["summary"]["failed"], 1);
    assert_eq!(document["files"].as_array().unwrap().len(), 2);
    assert!(
        document["files"][0]["path"]
            .as_str()
            .unwrap()
            .ends_with("a_custom.json")
    );
    assert_eq!(document["files"][0]["analysis"]["node_count"], 5);
    assert!(
        document["failures"][0]["path"]
            .as_str()
            .unwrap()
            .ends_with("broken.json")
    );
    assert!(!document["failures"][0]["error"].as_str().unwrap().is_empty());

    // validate: issues prefixed with their file, a summary, the run fails on any error.
    let text = fs_err::read_to_string(fixture("simple_ui.json")).unwrap();
    let dangling = folder.join("c_dangling.json");
    fs_err::write(&dangling, text.replace("\"link\": 1}", "\"link\": 9}")).unwrap();
    let out = comfydock_snapshot!(ctx, ctx.command().args(["workflow", "validate"]).arg(&folder));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("c_dangling.json: error: "),
        "{}",
        stdout(&out)
    );
    assert!(
        stderr(&out).contains("3 workflows: 2 valid, 1 with errors, 0 unreadable"),
        "{}",
        stderr(&out)
    );
    let out = ctx
        .command()
        .args(["--json", "workflow", "validate"])
        .arg(folder.join("a_custom.json"))
        .arg(folder.join("nested/b_simple.json"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let document: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(document["summary"]["valid"], 2, "{document}");
    assert_eq!(document["files"][1]["valid"], true);

    // A folder without workflows is a failure that names it.
    let empty = ctx.path().join("empty");
    fs_err::create_dir_all(&empty).unwrap();
    let out = ctx
        .command()
        .args(["workflow", "analyze"])
        .arg(&empty)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("holds no workflow"), "{}", stderr(&out));
}

//! Custom nodes against the Registry stand-in, local git node repos and the local wheel index (issue 4).

use std::path::{Path, PathBuf};

use comfydock_test::node_repo::{NodeContent, NodeRepo};
use comfydock_test::registry::{NodePackage, RegistryServer};

use crate::common::{stderr, stdout};
use crate::env_support::EnvSandbox;
use crate::snapshot::comfydock_snapshot;

/// An environment sandbox plus a registry stand-in.
struct NodeSandbox {
    sb: EnvSandbox,
    registry: RegistryServer,
}

impl NodeSandbox {
    fn new() -> Self {
        let mut sb = EnvSandbox::new();
        let registry = RegistryServer::start();
        sb.ctx
            .env("COMFYDOCK_REGISTRY_URL", registry.url())
            .env("COMFYDOCK_MANAGER_DATA_URL", registry.manager_data_url());
        registry.publish(
            NodePackage::new("my-node", "1.0.0")
                .name("My Node")
                .node_class("MyNodeA")
                .requirements("node-dep-a<1.1"),
        );
        registry.publish(
            NodePackage::new("my-node", "1.1.0")
                .name("My Node")
                .node_class("MyNodeA")
                .node_class("MyNodeB")
                .requirements("node-dep-a>=1.1,<2"),
        );
        Self { sb, registry }
    }

    fn node(&self, env: &str, args: &[&str]) -> std::process::Output {
        self.sb
            .ctx
            .command()
            .args(["-e", env, "node"])
            .args(args)
            .output()
            .unwrap()
    }

    fn ok(&self, env: &str, args: &[&str]) -> std::process::Output {
        let out = self.node(env, args);
        assert!(
            out.status.success(),
            "node {args:?} failed:\n{}\n{}",
            stdout(&out),
            stderr(&out)
        );
        out
    }

    fn run(&self, env: &str, args: &[&str]) -> std::process::Output {
        let out = self
            .sb
            .ctx
            .command()
            .args(["-e", env])
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?} failed:\n{}", stderr(&out));
        out
    }

    fn custom_nodes(&self, env: &str) -> PathBuf {
        self.sb.env_dir(env).join("ComfyUI/custom_nodes")
    }

    fn cec(&self, env: &str, file: &str) -> PathBuf {
        self.sb.env_dir(env).join(".cec").join(file)
    }

    fn list(&self, env: &str) -> Vec<serde_json::Value> {
        let out = self.ok(env, &["list", "--json"]);
        serde_json::from_str::<serde_json::Value>(&stdout(&out))
            .unwrap()
            .as_array()
            .unwrap()
            .clone()
    }
}

fn node_folders(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs_err::read_dir(dir)
        .map(|r| {
            r.flatten()
                .filter(|e| e.path().is_dir())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| !n.starts_with('.') && n != "__pycache__")
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn nodes_registry_git_and_dev_then_commit_and_rollback() {
    let ns = NodeSandbox::new();
    let repo = NodeRepo::create("ComfyUI-Foo");
    let tagged = repo.release(
        &NodeContent::new()
            .node_class("FooNode")
            .requirements("node-dep-b"),
        "v1.0.0",
    );
    let later = repo.commit(
        &NodeContent::new()
            .node_class("FooNode")
            .node_class("FooNode2")
            .requirements("node-dep-b"),
        "more work",
    );
    assert_ne!(tagged, later);
    let dev = ns.sb.ctx.path().join("dev/MyDevNode");
    NodeContent::new()
        .node_class("DevNode")
        .requirements("shared-dep")
        .write_to(&dev, "MyDevNode");

    ns.sb.create("a", "v0.3.40");
    let git_spec = format!("{}@v1.0.0", repo.url());
    let out = comfydock_snapshot!(
        ns.sb.ctx,
        ns.sb.ctx.command().args([
            "-e",
            "a",
            "node",
            "add",
            "My-Node@1.0.0",
            &git_spec,
            "--dev",
            dev.to_str().unwrap()
        ])
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("Added"), "{}", stderr(&out));
    // Side-effect-free endpoints only: no install was recorded.
    assert!(ns.registry.installs().is_empty());

    let nodes = ns.list("a");
    let by_key = |k: &str| nodes.iter().find(|n| n["key"] == k).unwrap().clone();
    let registry_node = by_key("my-node");
    assert_eq!(registry_node["source"], "registry");
    assert_eq!(registry_node["version"], "1.0.0");
    assert_eq!(registry_node["sha256"].as_str().unwrap().len(), 64);
    assert!(registry_node["size"].as_u64().unwrap() > 0);
    assert_eq!(registry_node["state"], "installed");
    let git_node = by_key("comfyui-foo");
    assert_eq!(git_node["source"], "git");
    assert_eq!(git_node["commit"], tagged.as_str(), "tags are recorded as a sha");
    assert_eq!(git_node["ref"], "v1.0.0");
    let dev_node = by_key("mydevnode");
    assert_eq!(dev_node["source"], "dev");
    assert_eq!(dev_node["state"], "installed");

    // Canonical lowercase id and dependency groups in the manifest.
    let manifest = fs_err::read_to_string(ns.cec("a", "pyproject.toml")).unwrap();
    assert!(manifest.contains("[tool.comfydock.nodes.my-node]"), "{manifest}");
    assert!(
        manifest.contains("my-node = [\n    \"node-dep-a<1.1\",\n]"),
        "{manifest}"
    );
    assert!(
        manifest.contains("comfyui-foo = [\n    \"node-dep-b\",\n]"),
        "{manifest}"
    );
    assert!(
        manifest.contains("mydevnode = [\n    \"shared-dep\",\n]"),
        "{manifest}"
    );

    // Each node's dependencies import in the environment's Python; the folders are there.
    let versions =
        "import node_dep_a, node_dep_b, shared_dep; print(node_dep_a.__version__, node_dep_b.__version__)";
    assert_eq!(ns.sb.python("a", versions).unwrap(), "1.0.0 0.5.0");
    let cn = ns.custom_nodes("a");
    assert_eq!(node_folders(&cn), ["ComfyUI-Foo", "MyDevNode", "my-node"]);
    assert!(
        fs_err::read_to_string(cn.join("my-node/__init__.py"))
            .unwrap()
            .contains("MyNodeA")
    );
    let git_head = String::from_utf8(
        ns.sb
            .ctx
            .std_command("git")
            .arg("-C")
            .arg(cn.join("ComfyUI-Foo"))
            .args(["rev-parse", "HEAD"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    assert_eq!(git_head.trim(), tagged);
    let status: serde_json::Value =
        serde_json::from_str(&stdout(&ns.run("a", &["--json", "status"]))).unwrap();
    let issues = status["issues"].to_string();
    assert!(!issues.contains("node"), "{status}");

    // commit, then rollback removes them; rolling forward restores them.
    ns.run("a", &["commit", "-m", "add nodes"]);
    ns.run("a", &["rollback", "HEAD~1"]);
    assert!(node_folders(&cn).is_empty(), "{:?}", node_folders(&cn));
    assert!(dev.join("__init__.py").is_file(), "a dev folder is never deleted");
    assert!(ns.sb.python("a", "import node_dep_b").is_err());
    ns.run("a", &["rollback", "HEAD~1"]);
    assert_eq!(node_folders(&cn), ["ComfyUI-Foo", "MyDevNode", "my-node"]);
    assert_eq!(ns.sb.python("a", versions).unwrap(), "1.0.0 0.5.0");

    // A folder deleted by hand shows in status and comes back with sync.
    fs_err::remove_dir_all(cn.join("my-node")).unwrap();
    let status: serde_json::Value =
        serde_json::from_str(&stdout(&ns.run("a", &["--json", "status"]))).unwrap();
    let issues = status["issues"].to_string();
    assert!(issues.contains("node `my-node` is not installed"), "{status}");
    assert!(issues.contains("comfydock -e a sync"), "{status}");
    ns.run("a", &["sync"]);
    assert!(cn.join("my-node/__init__.py").is_file());

    // disable / enable move the folder and show in list.
    let out = comfydock_snapshot!(
        ns.sb.ctx,
        ns.sb
            .ctx
            .command()
            .args(["-e", "a", "node", "disable", "my-node"])
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(cn.join(".disabled/my-node").is_dir());
    assert!(!cn.join("my-node").exists());
    let nodes = ns.list("a");
    assert_eq!(
        nodes.iter().find(|n| n["key"] == "my-node").unwrap()["state"],
        "disabled"
    );
    comfydock_snapshot!(ns.sb.ctx, ns.sb.ctx.command().args(["-e", "a", "node", "list"]));
    let out = comfydock_snapshot!(
        ns.sb.ctx,
        ns.sb.ctx.command().args(["-e", "a", "node", "enable", "my-node"])
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(cn.join("my-node").is_dir());

    // The node index knows the installed classes; search finds them with their package.
    let out = ns.ok("a", &["--json", "search", "FooNode"]);
    let found: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let claims = found["classes"].as_array().unwrap();
    assert!(
        claims.iter().any(|c| c["class_name"] == "FooNode"
            && c["package"] == "comfyui-foo"
            && c["source"] == "installed"),
        "{found}"
    );
}

#[test]
fn nodes_conflict_fails_the_whole_add_and_restores_everything() {
    let ns = NodeSandbox::new();
    ns.registry
        .publish(NodePackage::new("pack-one", "1.0.0").requirements("conflict-a"));
    ns.registry
        .publish(NodePackage::new("pack-two", "1.0.0").requirements("conflict-b"));
    ns.registry
        .publish(NodePackage::new("fine-pack", "1.0.0").requirements("node-dep-b"));
    ns.sb.create("a", "v0.3.40");
    ns.ok("a", &["add", "pack-one"]);
    let manifest = fs_err::read(ns.cec("a", "pyproject.toml")).unwrap();
    let lock = fs_err::read(ns.cec("a", "uv.lock")).unwrap();

    // fine-pack would be fine alone: the whole add fails.
    let out = comfydock_snapshot!(
        ns.sb.ctx,
        ns.sb
            .ctx
            .command()
            .args(["-e", "a", "node", "add", "fine-pack", "pack-two"])
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("`conflict-b` (from node `pack-two`)")
            && err.contains("`conflict-a` (from node `pack-one`)"),
        "{err}"
    );
    assert!(err.contains("hint:"), "{err}");
    assert_eq!(fs_err::read(ns.cec("a", "pyproject.toml")).unwrap(), manifest);
    assert_eq!(fs_err::read(ns.cec("a", "uv.lock")).unwrap(), lock);
    assert_eq!(node_folders(&ns.custom_nodes("a")), ["pack-one"]);
    assert!(ns.sb.python("a", "import conflict_b").is_err());
}

#[test]
fn nodes_unsafe_archives_and_tampered_cache_are_rejected() {
    let ns = NodeSandbox::new();
    ns.registry
        .publish(NodePackage::new("evil-traversal", "1.0.0").traversal_entry());
    ns.registry
        .publish(NodePackage::new("evil-link", "1.0.0").symlink_entry("link", "../../../../etc/passwd"));
    ns.sb.create("a", "v0.3.40");
    let manifest = fs_err::read(ns.cec("a", "pyproject.toml")).unwrap();
    let store = ns.sb.ctx.workspace.join("cache/nodes/store");
    for id in ["evil-traversal", "evil-link"] {
        let out = ns.node("a", &["add", id]);
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        assert!(stderr(&out).contains("Refusing to extract"), "{}", stderr(&out));
        assert!(stderr(&out).contains("hint:"), "{}", stderr(&out));
        assert_eq!(fs_err::read(ns.cec("a", "pyproject.toml")).unwrap(), manifest);
        assert!(node_folders(&ns.custom_nodes("a")).is_empty());
    }
    assert!(!store.join("comfydock-escaped.py").exists());
    assert!(
        !ns.sb
            .ctx
            .workspace
            .join("cache/nodes/comfydock-escaped.py")
            .exists()
    );
    assert!(node_folders(&store).is_empty(), "nothing extracted");

    // A tampered cached archive fails at the next install with a hash mismatch.
    ns.ok("a", &["add", "my-node@1.0.0"]);
    let archive = ns.sb.ctx.workspace.join("cache/nodes/archives/my-node/1.0.0.zip");
    let mut bytes = fs_err::read(&archive).unwrap();
    bytes.extend_from_slice(b"tampered");
    fs_err::write(&archive, bytes).unwrap();
    fs_err::remove_dir_all(ns.custom_nodes("a").join("my-node")).unwrap();
    let out = ns.sb.ctx.command().args(["-e", "a", "sync"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("Hash mismatch"), "{}", stderr(&out));
    assert!(stderr(&out).contains("hint:"), "{}", stderr(&out));
}

#[test]
fn nodes_update_prints_from_to_and_remove_cleans_up() {
    let ns = NodeSandbox::new();
    ns.sb.create("a", "v0.3.40");
    ns.ok("a", &["add", "my-node@1.0.0"]);
    assert_eq!(
        ns.sb
            .python("a", "import node_dep_a; print(node_dep_a.__version__)")
            .unwrap(),
        "1.0.0"
    );
    let out = comfydock_snapshot!(
        ns.sb.ctx,
        ns.sb.ctx.command().args(["-e", "a", "node", "update", "my-node"])
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        ns.sb
            .python("a", "import node_dep_a; print(node_dep_a.__version__)")
            .unwrap(),
        "1.1.0"
    );
    let nodes = ns.list("a");
    assert_eq!(nodes[0]["version"], "1.1.0");
    comfydock_snapshot!(ns.sb.ctx, ns.sb.ctx.command().args(["-e", "a", "node", "list"]));
    comfydock_snapshot!(
        ns.sb.ctx,
        ns.sb.ctx.command().args(["-e", "a", "--json", "node", "list"])
    );
    let out = comfydock_snapshot!(
        ns.sb.ctx,
        ns.sb
            .ctx
            .command()
            .args(["-e", "a", "node", "add", "no-such-node"])
    );
    assert_eq!(out.status.code(), Some(1));
    let out = comfydock_snapshot!(
        ns.sb.ctx,
        ns.sb
            .ctx
            .command()
            .args(["-e", "a", "node", "remove", "no-such-node"])
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        fs_err::read_to_string(ns.custom_nodes("a").join("my-node/__init__.py"))
            .unwrap()
            .contains("MyNodeB")
    );
    let out = comfydock_snapshot!(
        ns.sb.ctx,
        ns.sb.ctx.command().args(["-e", "a", "node", "update", "--all"])
    );
    assert!(out.status.success(), "{}", stderr(&out));

    // A folder at another version shows in status and is replaced by sync.
    let marker = ns.custom_nodes("a").join("my-node/.comfydock-node.json");
    let text = fs_err::read_to_string(&marker).unwrap();
    fs_err::write(&marker, text.replace("\"1.1.0\"", "\"1.0.0\"")).unwrap();
    let status: serde_json::Value =
        serde_json::from_str(&stdout(&ns.run("a", &["--json", "status"]))).unwrap();
    assert!(
        status["issues"]
            .to_string()
            .contains("node `my-node` is at 1.0.0 but .cec pins 1.1.0"),
        "{status}"
    );
    ns.run("a", &["sync"]);
    assert!(fs_err::read_to_string(&marker).unwrap().contains("\"1.1.0\""));

    let out = comfydock_snapshot!(
        ns.sb.ctx,
        ns.sb.ctx.command().args(["-e", "a", "node", "remove", "my-node"])
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(node_folders(&ns.custom_nodes("a")).is_empty());
    let manifest = fs_err::read_to_string(ns.cec("a", "pyproject.toml")).unwrap();
    assert!(!manifest.contains("my-node"), "{manifest}");
    let lock = fs_err::read_to_string(ns.cec("a", "uv.lock")).unwrap();
    assert!(!lock.contains("node-dep-a"), "re-locked without the group");
    assert!(ns.sb.python("a", "import node_dep_a").is_err(), "synced");
    let out = ns.node("a", &["remove", "my-node"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("hint:"), "{}", stderr(&out));
}

#[test]
fn nodes_offline_with_a_warm_cache() {
    let mut ns = NodeSandbox::new();
    ns.sb.create("a", "v0.3.40");
    ns.sb.create("b", "v0.3.40");
    ns.ok("a", &["add", "my-node@1.0.0"]);
    let downloads = ns.registry.zip_downloads("my-node");
    ns.registry.stop();
    let out = ns.ok("b", &["add", "my-node@1.0.0"]);
    assert!(stderr(&out).contains("offline"), "{}", stderr(&out));
    assert!(ns.custom_nodes("b").join("my-node/__init__.py").is_file());
    assert_eq!(downloads, 1);
    // Without a cache entry it fails, naming the registry, with a hint.
    let out = ns.node("b", &["add", "other-node"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("unreachable"), "{}", stderr(&out));
    assert!(stderr(&out).contains("hint:"), "{}", stderr(&out));
}

#[test]
fn nodes_submodules_torch_filter_install_scripts_and_import_check() {
    let ns = NodeSandbox::new();
    let inner = NodeRepo::create("inner-lib");
    inner.commit(&NodeContent::new().file("lib.py", "VALUE = 42\n"), "lib");
    let outer = NodeRepo::create("ComfyUI-Sub");
    outer.commit(
        &NodeContent::new()
            .node_class("SubNode")
            .requirements("torch==2.0.1")
            .requirements("node-dep-a==1.0.0"),
        "initial",
    );
    let with_sub = outer.add_submodule("vendor/inner", &inner);
    outer.tag("v2.0.0");
    ns.registry.publish(
        NodePackage::new("scripted", "1.0.0").file("install.py", "open('installed.txt', 'w').write('ok')\n"),
    );
    ns.registry.publish(
        NodePackage::new("importer", "1.0.0")
            .requirements("node-dep-b")
            .file(
                "extra.py",
                "import os\nimport node_dep_b\nfrom .local import x\nimport not_a_real_module\nimport cv2\ntry:\n    import maybe_there\nexcept ModuleNotFoundError:\n    maybe_there = None\n\n\ndef lazy():\n    import only_when_called\n",
            ),
    );
    ns.sb.create("a", "v0.3.40");

    let spec = format!("{}@v2.0.0", outer.url());
    let out = ns.ok("a", &["add", &spec]);
    let err = stderr(&out);
    assert!(err.contains("torch==2.0.1") && err.contains("ignored"), "{err}");
    let cn = ns.custom_nodes("a");
    assert_eq!(
        fs_err::read_to_string(cn.join("ComfyUI-Sub/vendor/inner/lib.py")).unwrap(),
        "VALUE = 42\n",
        "submodules are checked out"
    );
    assert_eq!(ns.list("a")[0]["commit"], with_sub.as_str());
    let manifest = fs_err::read_to_string(ns.cec("a", "pyproject.toml")).unwrap();
    assert!(
        manifest.contains("comfyui-sub = [\n    \"node-dep-a==1.0.0\",\n]"),
        "{manifest}"
    );
    assert_eq!(
        ns.sb
            .python("a", "import torch; print(torch.__version__)")
            .unwrap(),
        "2.5.1+cpu",
        "node requirements never change torch"
    );

    // install.py is arbitrary code: not run unless asked, and the user is told.
    let out = ns.ok("a", &["add", "scripted"]);
    assert!(
        stderr(&out).contains("install.py; it was NOT run"),
        "{}",
        stderr(&out)
    );
    assert!(!cn.join("scripted/installed.txt").exists());
    ns.ok("a", &["remove", "scripted"]);
    ns.ok("a", &["add", "scripted", "--run-install-scripts"]);
    assert_eq!(
        fs_err::read_to_string(cn.join("scripted/installed.txt")).unwrap(),
        "ok"
    );

    // The static import check names the file and line of an import nothing provides.
    ns.ok("a", &["add", "importer"]);
    let out = comfydock_snapshot!(
        ns.sb.ctx,
        ns.sb.ctx.command().args(["-e", "a", "node", "check", "importer"])
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let json = ns.node("a", &["--json", "check", "importer"]);
    // One JSON document: the failure, carrying the reports as its data.
    let document: serde_json::Value = serde_json::from_str(&stdout(&json)).unwrap();
    assert_eq!(document["exit_code"], 1, "{document}");
    let reports = &document["data"];
    assert_eq!(reports[0]["missing"][0]["package"], "opencv-python", "{reports}");
    assert_eq!(reports[0]["optional"][0]["reason"], "guarded_by_try", "{reports}");
    ns.ok("a", &["check", "comfyui-sub"]);
}

#[test]
fn nodes_conflict_with_comfyui_and_class_name_collisions() {
    let ns = NodeSandbox::new();
    ns.registry
        .publish(NodePackage::new("needs-new-num", "1.0.0").requirements("tinynum>=2"));
    ns.registry.add_extension_map_entry(
        "https://github.com/someone/ClashPack",
        &["MyNodeA", "ClashOnly"],
        "Clash Pack",
    );
    ns.sb.create("a", "v0.3.40");
    let lock = fs_err::read(ns.cec("a", "uv.lock")).unwrap();
    let out = ns.node("a", &["add", "needs-new-num"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("`tinynum>=2` (from node `needs-new-num`)")
            && err.contains("`tinynum<2` (from ComfyUI's requirements)"),
        "{err}"
    );
    assert_eq!(fs_err::read(ns.cec("a", "uv.lock")).unwrap(), lock);

    // Two packages claim MyNodeA: both are kept, ranked, with their sources.
    ns.ok("a", &["add", "my-node@1.1.0"]);
    let out = ns.ok("a", &["--json", "search", "my node"]);
    let found: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(found["registry"][0]["id"], "my-node", "{found}");
    let out = ns.ok("a", &["--json", "search", "MyNodeA"]);
    let found: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let claims: Vec<(String, String, i64)> = found["classes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["class_name"] == "MyNodeA")
        .map(|c| {
            (
                c["package"].as_str().unwrap().to_owned(),
                c["source"].as_str().unwrap().to_owned(),
                c["rank"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        claims,
        [
            ("my-node".to_owned(), "installed".to_owned(), 1),
            ("my-node".to_owned(), "registry".to_owned(), 2),
            (
                "https://github.com/someone/ClashPack".to_owned(),
                "manager".to_owned(),
                3
            ),
            ("my-node".to_owned(), "manager".to_owned(), 3),
        ],
        "{found}"
    );
    let out = comfydock_snapshot!(
        ns.sb.ctx,
        ns.sb.ctx.command().args(["-e", "a", "node", "info", "my-node"])
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let out = comfydock_snapshot!(
        ns.sb.ctx,
        ns.sb.ctx.command().args(["-e", "a", "node", "search", "my node"])
    );
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn nodes_that_would_move_torch_are_refused() {
    use comfydock_test::wheel_index::WheelSpec;
    let ns = NodeSandbox::new();
    ns.sb.index.publish(&WheelSpec::new("torch", "2.4.0"));
    ns.sb
        .index
        .publish(&WheelSpec::new("old-torch-addon", "1.0.0").requires("torch<2.5"));
    ns.registry
        .publish(NodePackage::new("torchy", "1.0.0").requirements("old-torch-addon"));
    ns.sb.create("a", "v0.3.40");
    let manifest = fs_err::read(ns.cec("a", "pyproject.toml")).unwrap();
    let lock = fs_err::read(ns.cec("a", "uv.lock")).unwrap();
    let out = ns.node("a", &["add", "torchy"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("(from node `torchy`)") && err.contains("torch backend)"),
        "{err}"
    );
    assert!(err.contains("torch is chosen by the environment"), "{err}");
    assert!(!err.contains("Using CPython"), "{err}");
    assert_eq!(fs_err::read(ns.cec("a", "pyproject.toml")).unwrap(), manifest);
    assert_eq!(fs_err::read(ns.cec("a", "uv.lock")).unwrap(), lock);
    assert!(node_folders(&ns.custom_nodes("a")).is_empty());
    assert_eq!(
        ns.sb
            .python("a", "import torch; print(torch.__version__)")
            .unwrap(),
        "2.5.1+cpu"
    );
}

#[test]
fn nodes_git_branch_update_moves_to_the_new_commit() {
    let ns = NodeSandbox::new();
    let repo = NodeRepo::create("ComfyUI-Branchy");
    let first = repo.commit(
        &NodeContent::new()
            .node_class("BranchNode")
            .requirements("node-dep-a==1.0.0"),
        "first",
    );
    ns.sb.create("a", "v0.3.40");
    let spec = format!("{}@main", repo.url());
    ns.ok("a", &["add", &spec]);
    assert_eq!(ns.list("a")[0]["commit"], first.as_str());
    let out = ns.ok("a", &["update", "comfyui-branchy"]);
    assert!(stderr(&out).contains("is up to date"), "{}", stderr(&out));

    let second = repo.commit(
        &NodeContent::new()
            .node_class("BranchNode")
            .requirements("node-dep-a==2.0.0"),
        "second",
    );
    let out = ns.ok("a", &["update", "comfyui-branchy"]);
    let expected = format!(
        "`comfyui-branchy` main ({}) -> main ({})",
        &first[..12],
        &second[..12]
    );
    assert!(stderr(&out).contains(&expected), "{}", stderr(&out));
    assert_eq!(ns.list("a")[0]["commit"], second.as_str());
    assert_eq!(
        ns.sb
            .python("a", "import node_dep_a; print(node_dep_a.__version__)")
            .unwrap(),
        "2.0.0"
    );
    let head = ns
        .sb
        .ctx
        .std_command("git")
        .arg("-C")
        .arg(ns.custom_nodes("a").join("ComfyUI-Branchy"))
        .args(["rev-parse", "HEAD"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&head.stdout).trim(), second);
}

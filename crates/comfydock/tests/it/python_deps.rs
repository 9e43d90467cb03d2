//! `comfydock py`: the user's own Python packages, kept apart from ComfyUI's requirements, against
//! the ComfyUI stand-in and the local wheel index.

use comfydock_test::comfyui_repo::requirements_for;

use crate::common::{stderr, stdout};
use crate::env_support::EnvSandbox;
use crate::snapshot::comfydock_snapshot;

/// `comfydock -e NAME py ARGS...`.
fn py(sb: &EnvSandbox, env: &str, args: &[&str]) -> std::process::Output {
    sb.ctx
        .command()
        .args(["-e", env, "py"])
        .args(args)
        .output()
        .unwrap()
}

fn py_ok(sb: &EnvSandbox, env: &str, args: &[&str]) -> std::process::Output {
    let out = py(sb, env, args);
    assert!(out.status.success(), "py {args:?} failed:\n{}", stderr(&out));
    out
}

fn py_list(sb: &EnvSandbox, env: &str) -> serde_json::Value {
    let out = py_ok(sb, env, &["--json", "list"]);
    serde_json::from_str(&stdout(&out)).unwrap()
}

fn manifest(sb: &EnvSandbox, env: &str) -> toml::Table {
    fs_err::read_to_string(sb.env_dir(env).join(".cec/pyproject.toml"))
        .unwrap()
        .parse()
        .unwrap()
}

fn strings(value: &toml::Value) -> Vec<String> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

/// ComfyUI's non-torch requirements of a stand-in release, as written.
fn comfyui_requirements(tag: &str) -> Vec<String> {
    requirements_for(tag)
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with("torch"))
        .map(str::to_owned)
        .collect()
}

/// Versions of `package` in the environment's `uv.lock`.
fn locked(sb: &EnvSandbox, env: &str, package: &str) -> Vec<String> {
    let lock: toml::Table = fs_err::read_to_string(sb.env_dir(env).join(".cec/uv.lock"))
        .unwrap()
        .parse()
        .unwrap();
    lock["package"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["name"].as_str() == Some(package))
        .map(|p| p["version"].as_str().unwrap().to_owned())
        .collect()
}

/// `.cec/pyproject.toml` and `.cec/uv.lock`, byte for byte.
fn cec_bytes(sb: &EnvSandbox, env: &str) -> (Vec<u8>, Vec<u8>) {
    let cec = sb.env_dir(env).join(".cec");
    (
        fs_err::read(cec.join("pyproject.toml")).unwrap(),
        fs_err::read(cec.join("uv.lock")).unwrap(),
    )
}

#[test]
fn py_add_installs_replaces_lists_and_py_remove_uninstalls() {
    let sb = EnvSandbox::new();
    sb.create("a", "v0.3.40");
    let m = manifest(&sb, "a");
    assert!(strings(&m["project"]["dependencies"]).is_empty());
    assert_eq!(
        strings(&m["dependency-groups"]["comfyui"]),
        comfyui_requirements("v0.3.40")
    );

    let out = comfydock_snapshot!(
        sb.ctx,
        sb.ctx
            .command()
            .args(["-e", "a", "py", "add", "node-dep-a==1.0.0"])
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        sb.python("a", "import node_dep_a; print(node_dep_a.__version__)")
            .unwrap(),
        "1.0.0"
    );
    // The same name again replaces its spec.
    let out = comfydock_snapshot!(
        sb.ctx,
        sb.ctx
            .command()
            .args(["-e", "a", "py", "--json", "add", "node-dep-a==1.1.0"])
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let change: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(change["place"]["kind"], "packages");
    assert_eq!(change["replaced"][0]["old"], "node-dep-a==1.0.0");
    assert_eq!(change["replaced"][0]["new"], "node-dep-a==1.1.0");
    assert_eq!(
        sb.python("a", "import node_dep_a; print(node_dep_a.__version__)")
            .unwrap(),
        "1.1.0"
    );
    py_ok(&sb, "a", &["add", "tinyimg==10.4.0", "--group", "extras"]);
    assert_eq!(
        sb.python("a", "import tinyimg; print(tinyimg.__version__)")
            .unwrap(),
        "10.4.0"
    );

    comfydock_snapshot!(sb.ctx, sb.ctx.command().args(["-e", "a", "py", "list"]));
    comfydock_snapshot!(sb.ctx, sb.ctx.command().args(["-e", "a", "--json", "py", "list"]));
    let list = py_list(&sb, "a");
    assert_eq!(list["environment"], "a");
    assert_eq!(list["schema_version"], 2);
    assert_eq!(list["layout"], "split");
    assert_eq!(list["packages"], serde_json::json!(["node-dep-a==1.1.0"]));
    assert_eq!(
        list["groups"],
        serde_json::json!([{ "name": "extras", "requirements": ["tinyimg==10.4.0"] }])
    );
    assert_eq!(list["comfyui"]["ref"], "v0.3.40");
    assert_eq!(
        list["comfyui"]["requirements"],
        serde_json::json!(comfyui_requirements("v0.3.40"))
    );
    assert_eq!(list["nodes"], serde_json::json!([]));
    assert_eq!(list["constraints"], serde_json::json!([]));

    let status: serde_json::Value = serde_json::from_str(&stdout(
        &sb.ctx
            .command()
            .args(["-e", "a", "--json", "status"])
            .output()
            .unwrap(),
    ))
    .unwrap();
    assert_eq!(status["packages_in_sync"], true, "{status}");

    py_ok(&sb, "a", &["remove", "node-dep-a"]);
    assert!(
        sb.python("a", "import node_dep_a").is_err(),
        "py remove must uninstall"
    );
    py_ok(&sb, "a", &["remove", "tinyimg", "--group", "extras"]);
    assert!(manifest(&sb, "a")["dependency-groups"].get("extras").is_none());

    let before = cec_bytes(&sb, "a");
    let out = py(&sb, "a", &["remove", "node-dep-a"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("`node-dep-a` is not in your packages"),
        "{}",
        stderr(&out)
    );
    // ComfyUI's requirements are not the user's to remove.
    let out = py(&sb, "a", &["remove", "tinynum"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("comes from ComfyUI's requirements"),
        "{}",
        stderr(&out)
    );
    // Nor is its group the user's to add to.
    let out = py(&sb, "a", &["add", "tinyyaml", "--group", "comfyui"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("belongs to ComfyUI's requirements"),
        "{}",
        stderr(&out)
    );
    assert_eq!(cec_bytes(&sb, "a"), before);
}

#[test]
fn failed_py_add_restores_both_files_byte_for_byte() {
    let sb = EnvSandbox::new();
    sb.create("a", "v0.3.40");
    let before = cec_bytes(&sb, "a");

    // ComfyUI v0.3.40 asks for tinynum<2.
    let out = py(&sb, "a", &["add", "tinynum>=2"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("`tinynum>=2` (from your packages)")
            && err.contains("`tinynum<2` (from ComfyUI's requirements)"),
        "{err}"
    );
    assert_eq!(cec_bytes(&sb, "a"), before);

    let out = py(&sb, "a", &["add", "node-dep-a", "no-such-package"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("`no-such-package`"), "{}", stderr(&out));
    assert_eq!(cec_bytes(&sb, "a"), before);
    assert!(sb.python("a", "import node_dep_a").is_err(), "all or nothing");

    let out = py(&sb, "a", &["add", "node-dep-a>="]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("not a PEP 508 requirement"),
        "{}",
        stderr(&out)
    );
    assert_eq!(cec_bytes(&sb, "a"), before);

    for torch in ["torch==2.6.0", "TorchVision", "torchaudio>=2"] {
        let out = py(&sb, "a", &["add", torch]);
        assert_eq!(out.status.code(), Some(1), "{torch}");
        let err = stderr(&out);
        assert!(err.contains("torch backend") && err.contains("hint:"), "{err}");
        assert_eq!(cec_bytes(&sb, "a"), before);
    }
    let out = py(&sb, "a", &["constrain", "torch<2"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(cec_bytes(&sb, "a"), before);
}

#[test]
fn constraints_bound_the_lock_and_are_listed() {
    let sb = EnvSandbox::new();
    sb.create("a", "v0.3.40");
    py_ok(&sb, "a", &["add", "node-dep-a"]);
    assert_eq!(locked(&sb, "a", "node-dep-a"), ["2.0.0"]);

    py_ok(&sb, "a", &["constrain", "node-dep-a<2"]);
    assert_eq!(locked(&sb, "a", "node-dep-a"), ["1.1.0"]);
    assert_eq!(
        sb.python("a", "import node_dep_a; print(node_dep_a.__version__)")
            .unwrap(),
        "1.1.0"
    );
    let list = py_list(&sb, "a");
    assert_eq!(list["constraints"], serde_json::json!(["node-dep-a<2"]));
    assert_eq!(list["packages"], serde_json::json!(["node-dep-a"]));

    // A constraint that contradicts ComfyUI's requirements changes nothing.
    let before = cec_bytes(&sb, "a");
    let out = comfydock_snapshot!(
        sb.ctx,
        sb.ctx
            .command()
            .args(["-e", "a", "py", "constrain", "tinynum>=2"])
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(cec_bytes(&sb, "a"), before);

    let out = py(&sb, "a", &["unconstrain", "tinynum"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("`tinynum` is not constrained"),
        "{}",
        stderr(&out)
    );
    py_ok(&sb, "a", &["unconstrain", "node-dep-a"]);
    assert_eq!(py_list(&sb, "a")["constraints"], serde_json::json!([]));
    assert!(
        !fs_err::read_to_string(sb.env_dir("a").join(".cec/pyproject.toml"))
            .unwrap()
            .contains("constraint-dependencies")
    );
}

#[test]
fn comfyui_update_replaces_only_comfyuis_group() {
    let sb = EnvSandbox::new();
    sb.create("a", "v0.3.40");
    py_ok(&sb, "a", &["add", "node-dep-a==1.1.0"]);
    let out = sb
        .ctx
        .command()
        .args(["-e", "a", "--json", "comfyui", "update", "v0.3.41"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let update: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(update["packages"], serde_json::json!(["node-dep-a==1.1.0"]));
    assert_eq!(update["migrated"], serde_json::Value::Null);

    let m = manifest(&sb, "a");
    assert_eq!(strings(&m["project"]["dependencies"]), ["node-dep-a==1.1.0"]);
    assert_eq!(
        strings(&m["dependency-groups"]["comfyui"]),
        comfyui_requirements("v0.3.41")
    );
    assert_eq!(
        sb.python(
            "a",
            "import node_dep_a, tinynum; print(node_dep_a.__version__, tinynum.__version__)"
        )
        .unwrap(),
        "1.1.0 2.1.0"
    );
}

/// Rewrite a fresh (split) manifest the way schema 1 wrote it: ComfyUI's requirements, plus
/// `extra`, in `[project].dependencies`, no `comfyui` group.
fn to_legacy_layout(text: &str, comfyui: &[String], extra: &str) -> String {
    let start = text.find("comfyui = [\n").expect("comfyui group");
    let end = start + text[start..].find("]\n").expect("end of group") + 2;
    let mut deps: Vec<String> = comfyui.to_vec();
    deps.push(extra.to_owned());
    let deps: String = deps
        .iter()
        .map(|d| format!("    \"{d}\",\n"))
        .collect::<Vec<_>>()
        .concat();
    let legacy = format!("{}{}", &text[..start], &text[end..])
        .replace("dependencies = []\n", &format!("dependencies = [\n{deps}]\n"))
        .replace("schema_version = 2\n", "schema_version = 1\n");
    assert_ne!(legacy, text);
    legacy
}

#[test]
fn comfyui_update_keeps_user_packages_of_an_old_layout_manifest() {
    let sb = EnvSandbox::new();
    sb.create("a", "v0.3.40");
    let path = sb.env_dir("a").join(".cec/pyproject.toml");
    let text = fs_err::read_to_string(&path).unwrap();
    fs_err::write(
        &path,
        to_legacy_layout(&text, &comfyui_requirements("v0.3.40"), "node-dep-a==1.1.0"),
    )
    .unwrap();
    sb.ctx.command().args(["-e", "a", "sync"]).assert().success();
    sb.ctx
        .command()
        .args(["-e", "a", "commit", "-m", "old layout"])
        .assert()
        .success();

    // Listed by owner without rewriting anything.
    let before = fs_err::read(&path).unwrap();
    let list = py_list(&sb, "a");
    assert_eq!(list["layout"], "legacy");
    assert_eq!(list["packages"], serde_json::json!(["node-dep-a==1.1.0"]));
    assert_eq!(
        list["comfyui"]["requirements"],
        serde_json::json!(comfyui_requirements("v0.3.40"))
    );
    assert_eq!(fs_err::read(&path).unwrap(), before);

    let out = sb
        .ctx
        .command()
        .args(["-e", "a", "--json", "comfyui", "update", "v0.3.41"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let update: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(
        update["migrated"]["user"],
        serde_json::json!(["node-dep-a==1.1.0"])
    );

    let m = manifest(&sb, "a");
    assert_eq!(m["tool"]["comfydock"]["schema_version"].as_integer(), Some(2));
    assert_eq!(strings(&m["project"]["dependencies"]), ["node-dep-a==1.1.0"]);
    assert_eq!(
        strings(&m["dependency-groups"]["comfyui"]),
        comfyui_requirements("v0.3.41")
    );
    assert_eq!(
        sb.python("a", "import node_dep_a; print(node_dep_a.__version__)")
            .unwrap(),
        "1.1.0"
    );
}

#[test]
fn py_add_moves_an_old_layout_manifest_to_the_split_one() {
    let sb = EnvSandbox::new();
    sb.create("a", "v0.3.40");
    let path = sb.env_dir("a").join(".cec/pyproject.toml");
    let text = fs_err::read_to_string(&path).unwrap();
    fs_err::write(
        &path,
        to_legacy_layout(&text, &comfyui_requirements("v0.3.40"), "tinyimg==10.4.0"),
    )
    .unwrap();
    sb.ctx.command().args(["-e", "a", "sync"]).assert().success();

    py_ok(&sb, "a", &["add", "node-dep-a==1.0.0"]);
    let m = manifest(&sb, "a");
    assert_eq!(m["tool"]["comfydock"]["schema_version"].as_integer(), Some(2));
    assert_eq!(
        strings(&m["project"]["dependencies"]),
        ["tinyimg==10.4.0", "node-dep-a==1.0.0"]
    );
    assert_eq!(
        strings(&m["dependency-groups"]["comfyui"]),
        comfyui_requirements("v0.3.40")
    );
}

#[test]
fn a_manifest_from_a_newer_comfydock_is_refused() {
    let sb = EnvSandbox::new();
    sb.create("a", "v0.3.40");
    let path = sb.env_dir("a").join(".cec/pyproject.toml");
    let text = fs_err::read_to_string(&path).unwrap();
    let newer = text.replace("schema_version = 2\n", "schema_version = 99\n");
    assert_ne!(newer, text);
    fs_err::write(&path, &newer).unwrap();
    for args in [
        &["status"][..],
        &["py", "list"],
        &["py", "add", "tinyyaml"],
        &["sync"],
    ] {
        let out = sb.ctx.command().args(["-e", "a"]).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = stderr(&out);
        assert!(
            err.contains("schema version 99") && err.contains("upgrade comfydock"),
            "{args:?}: {err}"
        );
    }
    assert_eq!(fs_err::read_to_string(&path).unwrap(), newer);
}

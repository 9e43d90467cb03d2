//! `comfydock init` and workspace discovery.

use crate::common::{context, stderr, stdout};
use crate::snapshot::comfydock_snapshot;

#[test]
fn init_creates_the_layout_and_a_rerun_changes_nothing() {
    let ctx = context();
    let ws = ctx.path().join("ws");
    let out = comfydock_snapshot!(ctx, ctx.command().args(["init", "ws"]));
    assert!(out.status.success(), "{}", stderr(&out));
    for dir in [".metadata", "environments", "models", "cache", "logs"] {
        assert!(ws.join(dir).is_dir(), "missing {dir}");
    }
    let meta: serde_json::Value =
        serde_json::from_str(&fs_err::read_to_string(ws.join(".metadata/workspace.json")).unwrap()).unwrap();
    assert_eq!(meta["schema_version"], 1);
    assert!(meta["active_environment"].is_null());

    let before = fs_err::read(ws.join(".metadata/workspace.json")).unwrap();
    let out = comfydock_snapshot!(ctx, ctx.command().args(["init", "ws"]));
    assert!(out.status.success());
    assert_eq!(before, fs_err::read(ws.join(".metadata/workspace.json")).unwrap());
}

#[test]
fn init_refuses_a_non_empty_folder_unless_forced() {
    let ctx = context();
    let dir = ctx.path().join("stuff");
    fs_err::create_dir(&dir).unwrap();
    fs_err::write(dir.join("notes.txt"), "mine").unwrap();
    let out = comfydock_snapshot!(ctx, ctx.command().args(["init", "stuff"]));
    assert_eq!(out.status.code(), Some(1));
    assert!(!dir.join(".metadata").exists());

    let out = comfydock_snapshot!(ctx, ctx.command().args(["init", "--force", "stuff"]));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(fs_err::read_to_string(dir.join("notes.txt")).unwrap(), "mine");
}

#[test]
fn init_on_a_file_fails() {
    let ctx = context();
    fs_err::write(ctx.path().join("afile"), "x").unwrap();
    let out = comfydock_snapshot!(ctx, ctx.command().args(["init", "afile"]));
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn init_json_reports_path_and_creation() {
    let ctx = context();
    let out = comfydock_snapshot!(ctx, ctx.command().args(["--json", "init"]));
    assert!(out.status.success(), "{}", stderr(&out));
    let value: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(value["path"].as_str().unwrap(), ctx.workspace.to_str().unwrap());
    comfydock_snapshot!(ctx, ctx.command().args(["--json", "init"]));
}

#[test]
fn workspace_flag_beats_comfydock_home() {
    let ctx = context();
    ctx.command().args(["init", "other"]).assert().success();
    // COMFYDOCK_HOME (the context's `ws`) does not exist, so only the flag can make this work.
    let out = ctx
        .command()
        .args(["--workspace", "other", "config", "list"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn commands_outside_a_workspace_say_how_to_create_one() {
    let ctx = context();
    for args in [
        &["config", "list"][..],
        &["--json", "config", "list"],
        &["status"],
        &["list"],
        &["--json", "list"],
        &["-e", "a", "node", "list"],
        &["model", "list"],
        &["--workspace", "elsewhere", "doctor"],
    ] {
        let out = comfydock_snapshot!(
            ctx,
            ctx.command().args(args),
            description = format!("comfydock {}", args.join(" "))
        );
        assert_eq!(out.status.code(), Some(1), "{args:?}");
    }
    assert!(!ctx.workspace.exists(), "nothing creates a workspace but init");
}

#[test]
fn default_workspace_is_in_home() {
    let mut ctx = context();
    ctx.env("COMFYDOCK_HOME", "");
    let out = ctx.command().args(["--json", "init"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(ctx.home.join("comfydock/.metadata/workspace.json").is_file());
}

#[test]
fn corrupt_workspace_json_names_file_line_and_column_and_is_kept() {
    let ctx = context();
    ctx.init_workspace();
    let path = ctx.workspace.join(".metadata/workspace.json");
    let broken = "{\n  \"schema_version\": 1,\n  \"settings\": {,}\n}\n";
    fs_err::write(&path, broken).unwrap();
    let out = comfydock_snapshot!(
        ctx,
        ctx.command()
            .args(["config", "set", "registry.url", "http://127.0.0.1:1"])
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(fs_err::read_to_string(&path).unwrap(), broken);
}

//! `comfydock init` and workspace discovery.

use crate::common::{context, stderr, stdout};

#[test]
fn init_creates_the_layout_and_a_rerun_changes_nothing() {
    let ctx = context();
    let ws = ctx.path().join("ws");
    let out = ctx.command().args(["init", "ws"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    for dir in [".metadata", "environments", "models", "cache", "logs"] {
        assert!(ws.join(dir).is_dir(), "missing {dir}");
    }
    let meta: serde_json::Value =
        serde_json::from_str(&fs_err::read_to_string(ws.join(".metadata/workspace.json")).unwrap()).unwrap();
    assert_eq!(meta["schema_version"], 1);
    assert!(meta["active_environment"].is_null());

    let before = fs_err::read(ws.join(".metadata/workspace.json")).unwrap();
    let out = ctx.command().args(["init", "ws"]).output().unwrap();
    assert!(out.status.success());
    assert!(stderr(&out).contains("already a workspace"), "{}", stderr(&out));
    assert_eq!(before, fs_err::read(ws.join(".metadata/workspace.json")).unwrap());
}

#[test]
fn init_refuses_a_non_empty_folder_unless_forced() {
    let ctx = context();
    let dir = ctx.path().join("stuff");
    fs_err::create_dir(&dir).unwrap();
    fs_err::write(dir.join("notes.txt"), "mine").unwrap();
    let out = ctx.command().args(["init", "stuff"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = ctx.filter(&stderr(&out));
    assert!(err.contains("is not empty"), "{err}");
    assert!(err.contains("hint:") && err.contains("--force"), "{err}");
    assert!(!dir.join(".metadata").exists());

    let out = ctx.command().args(["init", "--force", "stuff"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(fs_err::read_to_string(dir.join("notes.txt")).unwrap(), "mine");
}

#[test]
fn init_on_a_file_fails() {
    let ctx = context();
    fs_err::write(ctx.path().join("afile"), "x").unwrap();
    let out = ctx.command().args(["init", "afile"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("is a file, not a folder"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn init_json_reports_path_and_creation() {
    let ctx = context();
    let out = ctx.command().args(["--json", "init"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let value: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(value["created"], true);
    assert_eq!(value["path"].as_str().unwrap(), ctx.workspace.to_str().unwrap());
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
    let out = ctx.command().args(["config", "list"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = ctx.filter(&stderr(&out));
    assert!(
        err.contains("error: No workspace at `[TEMP]/ws` (from COMFYDOCK_HOME)"),
        "{err}"
    );
    assert!(
        err.contains("hint: create one with `comfydock init [TEMP]/ws`"),
        "{err}"
    );
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
    let out = ctx
        .command()
        .args(["config", "set", "registry.url", "http://127.0.0.1:1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = ctx.filter(&stderr(&out));
    assert!(
        err.contains("Failed to parse `[TEMP]/ws/.metadata/workspace.json` at line 3, column 16"),
        "{err}"
    );
    assert_eq!(fs_err::read_to_string(&path).unwrap(), broken);
}

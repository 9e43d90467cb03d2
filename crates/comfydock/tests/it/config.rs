//! `comfydock config`: typed keys, precedence, secrets.

use crate::common::{context, stderr, stdout};
use crate::snapshot::comfydock_snapshot;

fn list_json(ctx: &comfydock_test::context::TestContext) -> Vec<serde_json::Value> {
    let out = ctx.command().args(["--json", "config", "list"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_str(&stdout(&out)).unwrap()
}

fn row<'a>(rows: &'a [serde_json::Value], key: &str) -> &'a serde_json::Value {
    rows.iter()
        .find(|r| r["key"] == key)
        .unwrap_or_else(|| panic!("no row for {key}"))
}

#[test]
fn list_shows_every_key_with_value_and_origin() {
    let mut ctx = context();
    // The sandbox points endpoints at closed ports through env vars; drop two to see defaults.
    ctx.env("COMFYDOCK_CIVITAI_URL", "").env("HF_ENDPOINT", "");
    ctx.init_workspace();
    let out = comfydock_snapshot!(
        ctx,
        ctx.command()
            .args(["config", "set", "civitai.url", "http://127.0.0.1:4000/"])
    );
    assert!(out.status.success(), "{}", stderr(&out));
    comfydock_snapshot!(ctx, ctx.command().args(["config", "list"]));
    comfydock_snapshot!(ctx, ctx.command().args(["--json", "config", "list"]));
    let rows = list_json(&ctx);
    let keys: Vec<&str> = rows.iter().map(|r| r["key"].as_str().unwrap()).collect();
    assert_eq!(
        keys,
        [
            "comfyui.repo",
            "registry.url",
            "torch.index_url",
            "manager_data.url",
            "huggingface.endpoint",
            "civitai.url",
            "uv.path",
            "tokens.huggingface",
            "tokens.civitai"
        ]
    );
    let civitai = row(&rows, "civitai.url");
    assert_eq!(
        (civitai["value"].as_str(), civitai["origin"].as_str()),
        (Some("http://127.0.0.1:4000"), Some("config"))
    );
    let hf = row(&rows, "huggingface.endpoint");
    assert_eq!(
        (hf["value"].as_str(), hf["origin"].as_str()),
        (Some("https://huggingface.co"), Some("default"))
    );
    let registry = row(&rows, "registry.url");
    assert_eq!(
        (registry["value"].as_str(), registry["origin"].as_str()),
        (Some("http://127.0.0.1:9"), Some("env"))
    );
    assert_eq!(registry["env"], "COMFYDOCK_REGISTRY_URL");
}

#[test]
fn flag_beats_env_beats_config() {
    let ctx = context();
    ctx.init_workspace();
    ctx.command()
        .args(["config", "set", "registry.url", "http://config.invalid"])
        .assert()
        .success();
    let out = comfydock_snapshot!(ctx, ctx.command().args(["config", "get", "registry.url"]));
    assert_eq!(stdout(&out).trim(), "http://127.0.0.1:9", "env wins over config");
    let out = comfydock_snapshot!(
        ctx,
        ctx.command().args([
            "-c",
            "registry.url=http://flag.invalid",
            "--json",
            "config",
            "get",
            "registry.url",
        ])
    );
    let value: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(
        (value["value"].as_str(), value["origin"].as_str()),
        (Some("http://flag.invalid"), Some("flag"))
    );
}

#[test]
fn tokens_are_masked_everywhere_and_stored_0600() {
    let ctx = context();
    ctx.init_workspace();
    let token = "hf_SECRETsecretSECRET1234";
    let out = comfydock_snapshot!(
        ctx,
        ctx.command().args(["config", "set", "tokens.huggingface", token])
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stderr(&out).contains(token) && !stdout(&out).contains(token));
    for args in [
        &["config", "list"][..],
        &["--json", "config", "list"],
        &["config", "get", "tokens.huggingface"],
    ] {
        let out = ctx.command().args(args).output().unwrap();
        let text = format!("{}{}", stdout(&out), stderr(&out));
        assert!(!text.contains("SECRET"), "{args:?} leaked the token: {text}");
        assert!(text.contains("****1234"), "{args:?}: {text}");
    }
    let rows = list_json(&ctx);
    assert_eq!(row(&rows, "tokens.huggingface")["secret"], true);
    let creds = ctx.workspace.join(".metadata/credentials.json");
    assert!(fs_err::read_to_string(&creds).unwrap().contains(token));
    let workspace_json = fs_err::read_to_string(ctx.workspace.join(".metadata/workspace.json")).unwrap();
    assert!(!workspace_json.contains(token));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(
            fs_err::metadata(&creds).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    // A token from the environment is masked too.
    let mut ctx2 = context();
    ctx2.env("CIVITAI_API_TOKEN", "civitai-token-abcdefgh");
    ctx2.init_workspace();
    let out = ctx2.command().args(["config", "list"]).output().unwrap();
    assert!(!stdout(&out).contains("civitai-token"), "{}", stdout(&out));
}

#[test]
fn invalid_values_are_rejected_and_nothing_is_written() {
    let ctx = context();
    ctx.init_workspace();
    let path = ctx.workspace.join(".metadata/workspace.json");
    let before = fs_err::read(&path).unwrap();
    for (key, value) in [
        ("registry.url", "not-a-url"),
        ("registry.url", "ftp://example.org"),
        ("comfyui.repo", "relative/path"),
        ("uv.path", "/no/such/uv"),
        ("tokens.civitai", "has space"),
    ] {
        let out = comfydock_snapshot!(
            ctx,
            ctx.command().args(["config", "set", key, value]),
            description = format!("comfydock config set {key} {value}")
        );
        assert_eq!(out.status.code(), Some(1), "{key}={value}");
    }
    assert_eq!(before, fs_err::read(&path).unwrap());
    assert!(!ctx.workspace.join(".metadata/credentials.json").exists());
}

#[test]
fn unknown_key_suggests_the_closest() {
    let ctx = context();
    ctx.init_workspace();
    let out = comfydock_snapshot!(ctx, ctx.command().args(["config", "get", "registry.ur"]));
    assert_eq!(out.status.code(), Some(1));
    let out = comfydock_snapshot!(
        ctx,
        ctx.command().args(["--json", "config", "get", "registry.ur"])
    );
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn unset_restores_the_default() {
    let mut ctx = context();
    ctx.env("COMFYDOCK_CIVITAI_URL", "");
    ctx.init_workspace();
    ctx.command()
        .args(["config", "set", "civitai.url", "http://127.0.0.1:4000"])
        .assert()
        .success();
    let out = comfydock_snapshot!(ctx, ctx.command().args(["config", "unset", "civitai.url"]));
    assert!(out.status.success());
    let out = ctx
        .command()
        .args(["config", "get", "civitai.url"])
        .output()
        .unwrap();
    assert_eq!(stdout(&out).trim(), "https://civitai.com");
    let out = comfydock_snapshot!(ctx, ctx.command().args(["config", "unset", "civitai.url"]));
    assert!(out.status.success());
}

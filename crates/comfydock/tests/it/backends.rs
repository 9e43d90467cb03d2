//! `comfydock backend` and `--torch-backend` on `sync` and `import`, against the stand-in
//! PyTorch indexes (cpu, cu126, cu128, rocm6.3; no xpu).

use comfydock_environments::lock_coverage;

use crate::common::{context, stderr, stdout};
use crate::env_support::EnvSandbox;
use crate::snapshot::comfydock_snapshot;

fn run(sb: &EnvSandbox, args: &[&str]) -> std::process::Output {
    sb.ctx.command().args(args).output().unwrap()
}

fn ok(sb: &EnvSandbox, args: &[&str]) -> std::process::Output {
    let out = run(sb, args);
    assert!(
        out.status.success(),
        "{args:?} failed:\n{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    out
}

/// Backends `uv.lock` of `env` covers, in lock order.
fn locked(sb: &EnvSandbox, env: &str) -> Vec<String> {
    lock_coverage::read(&sb.env_dir(env).join(".cec/uv.lock"))
        .unwrap()
        .into_iter()
        .map(|l| l.backend.to_string())
        .collect()
}

fn torch_version(sb: &EnvSandbox, env: &str) -> String {
    sb.python(env, "import torch; print(torch.__version__)").unwrap()
}

fn in_sync(sb: &EnvSandbox, env: &str) -> bool {
    let out = ok(sb, &["-e", env, "--json", "status"]);
    let status: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    status["packages_in_sync"].as_bool().unwrap()
}

#[test]
fn backends_are_listed_added_switched_and_removed() {
    let sb = EnvSandbox::new();
    sb.create("studio", "v0.3.40");

    let out = comfydock_snapshot!(
        sb.ctx,
        sb.ctx
            .command()
            .args(["-e", "studio", "--json", "backend", "list"])
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let listing: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(listing["current"], "cpu");
    let names: Vec<&str> = listing["locked"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["backend"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["cpu", "cu128"]);
    assert_eq!(listing["locked"][1]["index"], sb.index.backend_url("cu128"));
    assert_eq!(listing["locked"][1]["torch"], "2.5.1+cu128");
    let out = comfydock_snapshot!(sb.ctx, sb.ctx.command().args(["-e", "studio", "backend", "list"]));
    assert!(out.status.success(), "{}", stderr(&out));

    // The machine's own backend cannot be removed.
    let refused = comfydock_snapshot!(
        sb.ctx,
        sb.ctx
            .command()
            .args(["-e", "studio", "backend", "remove", "cpu"])
    );
    assert_eq!(refused.status.code(), Some(1));

    // Adding re-locks: the lock covers it, the manifest lists it, the venv stays in sync.
    ok(&sb, &["-e", "studio", "backend", "add", "cu126"]);
    assert_eq!(locked(&sb, "studio"), ["cpu", "cu126", "cu128"]);
    let manifest = fs_err::read_to_string(sb.env_dir("studio").join(".cec/pyproject.toml")).unwrap();
    assert!(
        manifest.contains("torch_backends = [\"cpu\", \"cu128\", \"cu126\"]"),
        "{manifest}"
    );
    assert!(in_sync(&sb, "studio"));
    let again = comfydock_snapshot!(
        sb.ctx,
        sb.ctx.command().args(["-e", "studio", "backend", "add", "cu126"])
    );
    assert!(again.status.success(), "{}", stderr(&again));

    // `use` switches this machine and syncs torch from that backend's index.
    ok(&sb, &["-e", "studio", "backend", "use", "cu126"]);
    assert_eq!(torch_version(&sb, "studio"), "2.5.1+cu126");
    let state = fs_err::read_to_string(sb.env_dir("studio").join(".local.json")).unwrap();
    assert!(state.contains("\"torch_backend\": \"cu126\""), "{state}");
    assert!(in_sync(&sb, "studio"));

    // Now cpu can go; the lock no longer covers it.
    ok(&sb, &["-e", "studio", "backend", "remove", "cpu"]);
    assert_eq!(locked(&sb, "studio"), ["cu126", "cu128"]);
    let manifest = fs_err::read_to_string(sb.env_dir("studio").join(".cec/pyproject.toml")).unwrap();
    assert!(!manifest.contains("pytorch-cpu"), "{manifest}");

    // A backend the lock does not cover cannot be used; the hint adds it.
    let out = comfydock_snapshot!(
        sb.ctx,
        sb.ctx
            .command()
            .args(["-e", "studio", "backend", "use", "rocm6.3"])
    );
    assert_eq!(out.status.code(), Some(1));
    let bad = run(&sb, &["-e", "studio", "backend", "add", "cuda"]);
    assert_eq!(bad.status.code(), Some(2), "{}", stderr(&bad));
}

#[test]
fn a_backend_whose_index_has_no_torch_changes_nothing() {
    let sb = EnvSandbox::new();
    sb.create("studio", "v0.3.40");
    let cec = sb.env_dir("studio").join(".cec");
    let pyproject = fs_err::read(cec.join("pyproject.toml")).unwrap();
    let lock = fs_err::read(cec.join("uv.lock")).unwrap();

    // The stand-in publishes no xpu index: adding it together with cu126 fails as a whole.
    let out = run(&sb, &["-e", "studio", "backend", "add", "cu126", "xpu"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("Failed to lock torch backend `cu126`, `xpu`"),
        "{err}"
    );
    assert!(
        err.contains(&format!("{}/xpu", sb.index.torch_index_url())),
        "{err}"
    );
    assert!(err.contains("nothing was changed"), "{err}");
    assert_eq!(fs_err::read(cec.join("pyproject.toml")).unwrap(), pyproject);
    assert_eq!(fs_err::read(cec.join("uv.lock")).unwrap(), lock);
    assert!(in_sync(&sb, "studio"));
}

#[test]
fn a_backend_listed_by_hand_makes_sync_lock_it() {
    let sb = EnvSandbox::new();
    sb.create("studio", "v0.3.40");
    let path = sb.env_dir("studio").join(".cec/pyproject.toml");
    let text = fs_err::read_to_string(&path).unwrap();
    let edited = text.replace(
        "torch_backends = [\"cpu\", \"cu128\"]",
        "torch_backends = [\"cpu\", \"cu128\", \"rocm6.3\"]",
    );
    assert_ne!(edited, text);
    fs_err::write(&path, edited).unwrap();
    assert!(!in_sync(&sb, "studio"), "the fingerprint covers torch_backends");

    let dry = ok(&sb, &["-e", "studio", "sync", "--dry-run"]);
    assert!(stdout(&dry).contains("Would re-lock"), "{}", stdout(&dry));
    assert_eq!(
        locked(&sb, "studio"),
        ["cpu", "cu128"],
        "a dry run changes nothing"
    );

    let out = ok(&sb, &["-e", "studio", "sync"]);
    assert!(stdout(&out).contains("re-lock"), "{}", stdout(&out));
    assert_eq!(locked(&sb, "studio"), ["cpu", "cu128", "rocm6.3"]);
    assert!(in_sync(&sb, "studio"));
    let listing = stdout(&ok(&sb, &["-e", "studio", "backend", "list"]));
    assert!(listing.contains("rocm6.3"), "{listing}");

    // `sync --torch-backend` switches this machine as `backend use` does.
    let out = ok(&sb, &["-e", "studio", "sync", "--torch-backend", "rocm6.3"]);
    assert!(
        stderr(&out).contains("Torch backend: rocm6.3 (was cpu)"),
        "{}",
        stderr(&out)
    );
    assert_eq!(torch_version(&sb, "studio"), "2.5.1+rocm6.3");
}

#[test]
fn import_says_which_backend_it_chose_and_why() {
    let sb = EnvSandbox::new();
    sb.create("studio", "v0.3.40");
    ok(&sb, &["-e", "studio", "backend", "add", "cu126"]);
    ok(&sb, &["-e", "studio", "commit", "-m", "cu126"]);
    let bundle = sb.ctx.path().join("studio.tar.gz");
    ok(&sb, &["-e", "studio", "export", "-o", bundle.to_str().unwrap()]);

    let mut b = context();
    b.env("COMFYDOCK_COMFYUI_REPO", sb.repo.url())
        .env("COMFYDOCK_TORCH_INDEX_URL", sb.index.torch_index_url())
        .env("UV_INDEX_URL", sb.index.simple_url())
        .env("UV_PYTHON_PREFERENCE", "only-system");
    b.init_workspace();
    let import = |args: &[&str]| {
        b.command()
            .args(["--yes", "import", bundle.to_str().unwrap(), "--models", "skip"])
            .args(args)
            .output()
            .unwrap()
    };
    let out = import(&["--torch-backend", "cu126"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("Torch backend: cu126 (chosen with --torch-backend)"),
        "{}",
        stderr(&out)
    );
    let torch = b
        .std_command(b.workspace.join("environments/studio/.venv/bin/python"))
        .args(["-c", "import torch; print(torch.__version__)"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&torch.stdout).trim(), "2.5.1+cu126");

    // A backend the bundle's lock does not cover is refused before anything is created.
    let out = import(&["--torch-backend", "rocm6.3", "--name", "other"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("this machine needs `rocm6.3`"), "{err}");
    assert!(err.contains("--torch-backend cpu"), "{err}");
    assert!(!b.workspace.join("environments/other").exists());

    // `auto` says what it saw (no GPU here: cpu).
    let out = import(&["--name", "auto"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("Torch backend: cpu ("), "{}", stderr(&out));
}

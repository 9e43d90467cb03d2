//! Hostile inputs (issue 18): bundles, registry answers and manifests written by someone else.
//! Each table case proves that nothing is written outside the workspace, that the command fails
//! with an `error:` naming the bad value and a `hint:`, and that nothing panics.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use comfydock_test::context::TestContext;
use comfydock_test::http::{HttpServer, Response};
use comfydock_test::registry::{NodePackage, RegistryServer};
use serde_json::json;

use crate::common::{context, make_bundles, stderr, stdout};
use crate::env_support::EnvSandbox;

/// Every path under `dir` with its size, leaving out `skip` (a folder that may change).
fn snapshot(dir: &Path, skip: Option<&Path>) -> BTreeMap<PathBuf, u64> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs_err::read_dir(&d).unwrap().flatten() {
            let path = entry.path();
            if Some(path.as_path()) == skip {
                continue;
            }
            let meta = fs_err::symlink_metadata(&path).unwrap();
            if meta.is_dir() {
                stack.push(path.clone());
            }
            out.insert(path, meta.len());
        }
    }
    out
}

/// A name unique to this sandbox, used as the target of every escape attempt.
fn escape_name(ctx: &TestContext) -> String {
    format!("escaped-{}", ctx.path().file_name().unwrap().to_string_lossy())
}

/// Whether an escape attempt left anything in the temp root or in its parent folder.
fn escaped(ctx: &TestContext) -> Vec<PathBuf> {
    let name = escape_name(ctx);
    let mut found = Vec::new();
    for dir in [ctx.path(), ctx.path().parent().unwrap()] {
        for entry in fs_err::read_dir(dir).unwrap().flatten() {
            if entry.file_name().to_string_lossy().starts_with(&name) {
                found.push(entry.path());
            }
        }
    }
    found
}

fn assert_no_panic(case: &str, out: &std::process::Output) {
    let err = stderr(out);
    assert!(!err.contains("panicked"), "{case}: panicked:\n{err}");
    assert_ne!(out.status.code(), Some(101), "{case}: exit code of a panic");
}

/// `case` failed cleanly (exit 1, no panic) with `expected` and a hint on stderr; its stderr.
fn assert_refused(case: &str, out: &std::process::Output, expected: &str) -> String {
    assert_no_panic(case, out);
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(1), "{case} was not refused:\n{err}");
    assert!(err.contains(expected), "{case}: expected `{expected}` in:\n{err}");
    assert!(err.contains("hint:"), "{case}: no hint in:\n{err}");
    err
}

/// Hand-made bundles: argv[1] is the output folder, argv[2] the escape name.
const MAKE_HOSTILE_BUNDLES: &str = r#"
import gzip, hashlib, io, json, sys, tarfile
out, esc = sys.argv[1], sys.argv[2]
pin = "[tool.comfydock]\ntorch_backends = ['cpu']\n\n[tool.comfydock.comfyui]\nref = 'v0.3.40'\ncommit = '" + "0" * 40 + "'\n"
def bundle(name, extra_toml, lock="version = 1\n", extra_files={}):
    files = {"pyproject.toml": ("[project]\nname = 'x'\n" + pin + extra_toml).encode(), "uv.lock": lock.encode(), **extra_files}
    manifest = json.dumps({"format_version": 1, "comfydock_version": "0.1.0",
        "created_at": "2026-01-01T00:00:00Z", "environment_name": "evil", "platform": "linux-x86_64",
        "python": "3.12", "comfyui": {"reference": "v0.3.40", "commit": "0" * 40},
        "torch_backend": "cpu", "torch_backends": ["cpu"], "cec_commit": "0" * 40,
        "counts": {"workflows": 0, "registry_nodes": 1, "git_nodes": 0, "dev_nodes": 0, "models": 0},
        "models": [], "files": {n: {"sha256": hashlib.sha256(d).hexdigest(), "size": len(d)} for n, d in files.items()}}).encode()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as t:
        for n, d in [("manifest.json", manifest)] + list(files.items()):
            info = tarfile.TarInfo(n)
            info.size = len(d)
            t.addfile(info, io.BytesIO(d))
    with open(f"{out}/{name}.tar.gz", "wb") as f:
        f.write(gzip.compress(buf.getvalue(), mtime=0))
reg = "source = 'registry'\nurl = 'http://127.0.0.1:9/x.zip'\n"
bundle("node-key", f"\n[tool.comfydock.nodes.\"../../../../{esc}\"]\n{reg}version = '1.0.0'\n")
bundle("node-key-deep", f"\n[tool.comfydock.nodes.\"../../../../../{esc}\"]\n{reg}version = '1.0.0'\n")
bundle("node-version", f"\n[tool.comfydock.nodes.fine]\n{reg}version = '../../../../../{esc}'\n")
bundle("node-name", f"\n[tool.comfydock.nodes.fine]\nsource = 'git'\nname = '../../../../{esc}'\nurl = 'file:///nonexistent'\n")
bundle("node-name-backslash", f"\n[tool.comfydock.nodes.fine]\nsource = 'dev'\nname = '..\\\\..\\\\{esc}'\n")
bundle("node-key-colon", f"\n[tool.comfydock.nodes.\"C:{esc}\"]\n{reg}version = '1.0.0'\n")
bundle("workflow-name", f"\n[tool.comfydock.workflows.\"../../../../{esc}\"]\ntracked = true\n")
# The smallest lock covering the cpu backend (import reads the backends from the lock).
cpu_lock = "version = 1\n\n[[package]]\nname = 'x'\nversion = '0.0.0'\nsource = { virtual = '.' }\n\n[package.optional-dependencies]\ncpu = [{ name = 'torch', version = '2.5.1+cpu', source = { registry = 'http://127.0.0.1:9/whl/cpu' } }]\n"
bundle("plain", "", lock=cpu_lock)
git = "\n[tool.comfydock.nodes.fine]\nsource = 'git'\nname = 'fine'\n"
bundle("git-url-option", git + f"url = '--upload-pack=touch {esc}'\ncommit = '{'0' * 40}'\n")
bundle("git-url-ext", git + f"url = 'ext::sh -c touch% {esc}'\ncommit = '{'0' * 40}'\n")
bundle("git-url-scheme", git + f"url = 'relative/{esc}'\ncommit = '{'0' * 40}'\n")
bundle("git-commit-option", git + f"url = 'https://example.invalid/x.git'\ncommit = '--output=../{esc}'\n")
bundle("git-ref-option", git + f"url = 'https://example.invalid/x.git'\nref = '-c{esc}'\ncommit = '{'0' * 40}'\n")
# A dev node with an in-tree PEP 517 backend that would write a marker next to the workspace.
backend = f"import pathlib\ndef _mark(*a, **k):\n    next(p for p in pathlib.Path(__file__).parents if p.name.startswith('comfydock-test-')).joinpath('{esc}-built').write_text('ran')\n    raise SystemExit(1)\nbuild_wheel = build_editable = prepare_metadata_for_build_wheel = get_requires_for_build_wheel = _mark\n"
node_pyproject = "[project]\nname = 'evil'\nversion = '1.0'\n[build-system]\nrequires = []\nbuild-backend = 'backend'\nbackend-path = ['.']\n"
build_lock = "version = 1\nrequires-python = '>=3.10'\n\n[[package]]\nname = 'x'\nversion = '0.0.0'\nsource = { virtual = '.' }\ndependencies = [{ name = 'evil' }]\n\n[[package]]\nname = 'evil'\nversion = '1.0'\nsource = { directory = '../ComfyUI/custom_nodes/evil' }\n"
bundle("build-backend",
    "\n[tool.uv.sources]\nevil = { path = '../ComfyUI/custom_nodes/evil' }\n\n[tool.comfydock.nodes.evil]\nsource = 'dev'\nname = 'evil'\npath = 'custom_nodes/evil'\n",
    lock=build_lock,
    extra_files={"dev_nodes/evil/pyproject.toml": node_pyproject.encode(), "dev_nodes/evil/backend.py": backend.encode()})
bundle("root-build-system", "\n[build-system]\nrequires = []\nbuild-backend = 'backend'\nbackend-path = ['workflows']\n",
    extra_files={"workflows/backend.py": backend.encode()})
"#;

#[test]
fn hostile_bundles_are_refused_before_anything_is_written() {
    let ctx = context();
    ctx.init_workspace();
    let dir = make_bundles(&ctx, MAKE_HOSTILE_BUNDLES, &[&escape_name(&ctx)]);
    let esc = escape_name(&ctx);
    let cases: &[(&str, String)] = &[
        ("node-key", format!("unsafe folder name `../../../../{esc}`")),
        (
            "node-key-deep",
            format!("unsafe folder name `../../../../../{esc}`"),
        ),
        (
            "node-version",
            format!("unsafe folder name `../../../../../{esc}`"),
        ),
        ("node-name", format!("unsafe folder name `../../../../{esc}`")),
        ("node-name-backslash", "path separator".to_owned()),
        ("node-key-colon", format!("unsafe folder name `C:{esc}`")),
        ("workflow-name", format!("workflow name `../../../../{esc}`")),
        ("git-url-option", format!("unsafe git URL `--upload-pack=touch {esc}`: it starts with `-`")),
        ("git-url-ext", format!("unsafe git URL `ext::sh -c touch% {esc}`")),
        ("git-url-scheme", format!("unsafe git URL `relative/{esc}`: the scheme is not one of")),
        ("git-commit-option", format!("unsafe git revision `--output=../{esc}`")),
        ("git-ref-option", format!("unsafe git revision `-c{esc}`")),
        (
            "build-backend",
            "would build 2 package(s) from source, running their code: `evil` from path ../ComfyUI/custom_nodes/evil, `evil` from folder ../ComfyUI/custom_nodes/evil".to_owned(),
        ),
        ("root-build-system", "`the project` from pyproject.toml (`[build-system]`)".to_owned()),
    ];
    let before = snapshot(ctx.path(), None);
    for (name, expected) in cases {
        let out = ctx
            .command()
            .args(["--yes", "import"])
            .arg(dir.join(format!("{name}.tar.gz")))
            .output()
            .unwrap();
        assert_refused(name, &out, expected);
        assert_eq!(snapshot(ctx.path(), None), before, "{name} wrote something");
        assert_eq!(escaped(&ctx), Vec::<PathBuf>::new(), "{name} escaped or ran code");
    }
}

/// A registry whose answers are scripted per path; any other `/nodes/…/versions` lists one
/// good version whose archive is `zip_url` (so a hostile id would reach the download).
fn hostile_registry(answers: BTreeMap<String, serde_json::Value>, zip_url: String) -> HttpServer {
    HttpServer::start(move |request| {
        let path = request.path();
        match answers.get(&path) {
            Some(answer) => Response::json(answer),
            None if path.starts_with("/nodes/") && path.ends_with("/versions") => {
                Response::json(&json!([{"version": "1.0.0", "downloadUrl": zip_url, "deprecated": false}]))
            }
            None => Response::not_found(),
        }
    })
}

#[test]
fn hostile_registry_answers_and_manifests_write_nothing_outside_and_never_panic() {
    let mut sb = EnvSandbox::new();
    let esc = escape_name(&sb.ctx);
    // A real archive, so that an unchecked id or version would be downloaded and written.
    let zips = RegistryServer::start();
    zips.publish(NodePackage::new("x", "1.0.0"));
    let zip_url = zips.download_url("x", "1.0.0");
    let zip_url = zip_url.as_str();
    // A zip bomb by entry count: more files than the node archive limit allows.
    let many = (0..50_001).fold(NodePackage::new("zip-many", "1.0.0"), |p, i| {
        p.file(&format!("data/f{i}.txt"), "")
    });
    zips.publish(many);
    let many_url = zips.download_url("zip-many", "1.0.0");
    let version = |v: &str| json!([{"version": v, "downloadUrl": zip_url, "deprecated": false}]);
    let node = |id: &str| json!({"id": id, "name": "evil", "description": ""});
    let answers: BTreeMap<String, serde_json::Value> = [
        // The id the registry answers with becomes the archive folder.
        ("/nodes/evil-id".to_owned(), node(&format!("../../../../{esc}"))),
        (
            "/nodes/evil-id-deep".to_owned(),
            node(&format!("../../../../../{esc}")),
        ),
        (
            "/nodes/evil-id-slash".to_owned(),
            node(&format!("a/../../../../../{esc}")),
        ),
        // The version becomes the archive file name.
        ("/nodes/evil-version".to_owned(), node("evil-version")),
        (
            "/nodes/evil-version/versions".to_owned(),
            version(&format!("../../../../../{esc}")),
        ),
        ("/nodes/evil-version-abs".to_owned(), node("evil-version-abs")),
        (
            "/nodes/evil-version-abs/versions".to_owned(),
            version(&format!("/tmp/{esc}")),
        ),
        ("/nodes/zip-many".to_owned(), node("zip-many")),
        (
            "/nodes/zip-many/versions".to_owned(),
            json!([{"version": "1.0.0", "downloadUrl": many_url, "deprecated": false}]),
        ),
    ]
    .into_iter()
    .collect();
    let registry = hostile_registry(answers, zip_url.to_owned());
    sb.ctx.env("COMFYDOCK_REGISTRY_URL", registry.url());
    sb.create("e", "v0.3.40");
    let env_dir = sb.env_dir("e");

    let registry_cases = [
        ("evil-id", "cannot be used as a file or folder name"),
        ("evil-id-deep", "cannot be used as a file or folder name"),
        ("evil-id-slash", "cannot be used as a file or folder name"),
        ("evil-version", "has no installable version in the registry"),
        ("evil-version-abs", "has no installable version in the registry"),
    ];
    let manifest_before = fs_err::read(env_dir.join(".cec/pyproject.toml")).unwrap();
    for (id, expected) in registry_cases {
        let before = snapshot(sb.ctx.path(), Some(&sb.ctx.workspace.join(".metadata")));
        let out = sb
            .ctx
            .command()
            .args(["-e", "e", "node", "add", id])
            .output()
            .unwrap();
        assert_refused(id, &out, expected);
        assert_eq!(
            snapshot(sb.ctx.path(), Some(&sb.ctx.workspace.join(".metadata"))),
            before,
            "{id} wrote something"
        );
        assert_eq!(escaped(&sb.ctx), Vec::<PathBuf>::new(), "{id} escaped");
        assert_eq!(
            fs_err::read(env_dir.join(".cec/pyproject.toml")).unwrap(),
            manifest_before
        );
    }

    // The archive is downloaded, then refused by the entry limit before anything is extracted.
    let out = sb
        .ctx
        .command()
        .args(["-e", "e", "node", "add", "zip-many"])
        .output()
        .unwrap();
    assert_refused(
        "zip-many",
        &out,
        "entries, more than the limit of 50000; nothing was installed",
    );
    assert!(!env_dir.join("ComfyUI/custom_nodes/zip-many").exists());
    assert_eq!(
        fs_err::read(env_dir.join(".cec/pyproject.toml")).unwrap(),
        manifest_before
    );

    // A `.cec` pulled from a teammate: unsafe entries are ignored by every command, and
    // non-ASCII hashes and commits are displayed without panicking.
    let hostile_nodes = format!(
        r#"
[tool.comfydock.nodes."../../../../{esc}"]
source = "registry"
version = "1.0.0"
url = "{zip_url}"

[tool.comfydock.nodes.evil-version]
source = "registry"
version = "../../../../../{esc}"
url = "{zip_url}"

[tool.comfydock.nodes.unicode-commit]
source = "git"
url = "file:///nonexistent/repo"
ref = "main"
commit = "ééééééééééééééééééé"

[tool.comfydock.nodes.unicode-hash]
source = "registry"
version = "1.0.0"
url = "{zip_url}"
sha256 = "ééééééééééééééééééé"

[tool.comfydock.workflows."../../../../{esc}"]
tracked = true
"#
    );
    let mut manifest = String::from_utf8(manifest_before).unwrap();
    manifest.push_str(&hostile_nodes);
    fs_err::write(env_dir.join(".cec/pyproject.toml"), manifest).unwrap();
    let commands: [&[&str]; 6] = [
        &["--json", "-e", "e", "status"],
        &["-e", "e", "status"],
        &["-e", "e", "node", "list"],
        &["--json", "-e", "e", "node", "list"],
        &["-e", "e", "sync", "--dry-run"],
        &["-e", "e", "sync"],
    ];
    for args in commands {
        let case = args.join(" ");
        let out = sb.ctx.command().args(args).output().unwrap();
        assert_no_panic(&case, &out);
        assert_eq!(escaped(&sb.ctx), Vec::<PathBuf>::new(), "{case} escaped");
        if args[0] == "--json" {
            let text = stdout(&out);
            let value = serde_json::from_str::<serde_json::Value>(&text)
                .unwrap_or_else(|e| panic!("{case}: stdout is not JSON ({e}):\n{text}\n{}", stderr(&out)));
            if args.contains(&"status") {
                // Ignored entries are reported, never dropped silently.
                let names: Vec<&str> = value["ignored"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|i| i["name"].as_str().unwrap())
                    .collect();
                let escape_key = format!("../../../../{esc}");
                assert_eq!(
                    names,
                    [escape_key.as_str(), "evil-version", escape_key.as_str()],
                    "{case}"
                );
            }
        }
    }
    assert!(
        !sb.ctx
            .workspace
            .join("cache/nodes/archives")
            .join("evil-version")
            .exists(),
        "an archive folder was created for an unsafe version"
    );
}

#[test]
fn the_lock_file_names_the_subcommand_never_its_arguments() {
    use std::sync::{Arc, Mutex};
    let ctx = context();
    ctx.init_workspace();
    // ComfyUI's repository hangs until released, so `create` holds the lock meanwhile.
    let gate = Arc::new(Mutex::new(()));
    let held = gate.lock().unwrap();
    let handler_gate = gate.clone();
    let server = HttpServer::start(move |_| {
        drop(handler_gate.lock());
        Response::not_found()
    });
    let secret = "hf_SECRETSECRETSECRET";
    let mut holder = ctx
        .std_command(env!("CARGO_BIN_EXE_comfydock"))
        .env("COMFYDOCK_COMFYUI_REPO", format!("{}/comfyui.git", server.url()))
        .args([
            "-c",
            &format!("tokens.huggingface={secret}"),
            "create",
            "e",
            "--comfyui",
            "v0.3.40",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let lock_path = ctx.workspace.join(".metadata/workspace.lock");
    let deadline = std::time::Instant::now() + std::time::Duration::from_mins(1);
    let mut text = String::new();
    while text.is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
        text = fs_err::read_to_string(&lock_path).unwrap_or_default();
    }
    assert_eq!(text, format!("pid {} running `comfydock create`", holder.id()));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = fs_err::metadata(&lock_path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "lock file mode {mode:o}");
    }
    let waiter = ctx
        .command()
        .env("COMFYDOCK_LOCK_TIMEOUT", "0.2")
        .args(["config", "set", "civitai.url", "http://127.0.0.1:4000"])
        .output()
        .unwrap();
    assert_eq!(waiter.status.code(), Some(1));
    let err = stderr(&waiter);
    assert!(err.contains("running `comfydock create`"), "{err}");
    assert!(!err.contains(secret), "the secret was shown to a waiter:\n{err}");
    holder.kill().unwrap();
    holder.wait().unwrap();
    drop(held);
    assert!(!fs_err::read_to_string(&lock_path).unwrap().contains(secret));
}

#[test]
fn a_closed_pipe_ends_completions_quietly() {
    let ctx = context();
    let mut child = ctx
        .std_command(env!("CARGO_BIN_EXE_comfydock"))
        .args(["completions", "bash"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Close the reading end before the script is written.
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert_no_panic("completions bash | (closed)", &out);
    assert!(stderr(&out).is_empty(), "{}", stderr(&out));
    assert!(
        matches!(out.status.code(), Some(0 | 141)),
        "status {:?}",
        out.status
    );
}

/// Run `args` in the sandbox and return (exit code, stdout, stderr), failing on a panic.
fn run(sb: &EnvSandbox, args: &[&str]) -> (Option<i32>, String, String) {
    let out = sb.ctx.command().args(args).output().unwrap();
    assert_no_panic(&args.join(" "), &out);
    (out.status.code(), stdout(&out), stderr(&out))
}

#[test]
fn non_portable_workflow_names_and_node_entries_are_reported_never_lost() {
    let sb = EnvSandbox::new();
    sb.create("e", "v0.3.40");
    let env_dir = sb.env_dir("e");
    let live = env_dir.join("ComfyUI/user/default/workflows");
    fs_err::create_dir_all(&live).unwrap();
    let doc = br#"{"nodes": [], "links": []}"#;
    fs_err::write(live.join("fine.json"), doc).unwrap();
    // (file name in ComfyUI, workflow name, portable suggestion)
    let cases = [
        ("scene:v2.json", "scene:v2", "scene-v2"),
        ("a\\b.json", "a\\b", "a-b"),
        ("what?.json", "what?", "what-"),
        ("dots..json", "dots.", "dots"),
    ];
    for (file, _, _) in cases {
        fs_err::write(live.join(file), doc).unwrap();
    }

    // `track NAME` refuses with a portable suggestion; `track --all` skips and says so.
    for (_, name, suggestion) in cases {
        let (code, _, err) = run(&sb, &["-e", "e", "workflow", "track", name]);
        assert_eq!(code, Some(1), "{name} was tracked:\n{err}");
        assert!(err.contains("not a plain portable name"), "{name}:\n{err}");
        assert!(
            err.contains(&format!("`{suggestion}`")),
            "{name}: no suggestion in\n{err}"
        );
    }
    let (code, out, err) = run(&sb, &["--json", "-e", "e", "workflow", "track", "--all"]);
    assert_eq!(code, Some(0), "{err}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["tracked"], json!(["fine"]), "{out}");
    let mut skipped: Vec<(String, String)> = report["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_owned(),
                s["suggestion"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    skipped.sort();
    let mut expected: Vec<(String, String)> = cases
        .iter()
        .map(|(_, n, s)| ((*n).to_owned(), (*s).to_owned()))
        .collect();
    expected.sort();
    assert_eq!(skipped, expected);
    let (_, _, err) = run(&sb, &["-e", "e", "workflow", "track", "--all"]);
    assert!(
        err.contains("warning: workflow `scene:v2` is not tracked"),
        "{err}"
    );
    let (code, _, err) = run(&sb, &["-e", "e", "commit", "-m", "fine"]);
    assert_eq!(code, Some(0), "{err}");

    // A `.cec` from an older comfydock (or a teammate) tracks `scene:v2` with a committed copy.
    let manifest_path = env_dir.join(".cec/pyproject.toml");
    let mut manifest = fs_err::read_to_string(&manifest_path).unwrap();
    manifest.push_str(
        "\n[tool.comfydock.workflows.\"scene:v2\"]\ntracked = true\n\n[tool.comfydock.nodes.\"bad:key\"]\nsource = \"registry\"\nversion = \"1.0.0\"\n",
    );
    fs_err::write(&manifest_path, manifest).unwrap();
    let kept = env_dir.join(".cec/workflows/scene:v2.json");
    fs_err::write(&kept, doc).unwrap();

    let (code, out, err) = run(&sb, &["--json", "-e", "e", "status"]);
    assert_eq!(code, Some(0), "{err}");
    let status: serde_json::Value = serde_json::from_str(&out).unwrap();
    let ignored: Vec<(String, String, String)> = status["ignored"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["kind"].as_str().unwrap().to_owned(),
                i["name"].as_str().unwrap().to_owned(),
                i["suggestion"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        ignored,
        [
            ("node".to_owned(), "bad:key".to_owned(), "bad-key".to_owned()),
            (
                "workflow".to_owned(),
                "scene:v2".to_owned(),
                "scene-v2".to_owned()
            )
        ]
    );
    assert_eq!(status["clean"], json!(false));
    let (_, out, _) = run(&sb, &["-e", "e", "status"]);
    assert!(
        out.contains("node `bad:key` in .cec/pyproject.toml is ignored"),
        "{out}"
    );
    assert!(
        out.contains("tracked workflow `scene:v2` has a name that is not portable"),
        "{out}"
    );
    assert!(out.contains("workflow track scene-v2"), "{out}");

    // `commit` refuses and keeps the copy; `export` refuses too.
    let (code, _, err) = run(&sb, &["-e", "e", "commit", "-m", "x"]);
    assert_eq!(code, Some(1), "commit went ahead:\n{err}");
    assert!(err.contains("`scene:v2` cannot be committed"), "{err}");
    assert!(
        err.contains("hint:") && err.contains("workflow untrack 'scene:v2'"),
        "{err}"
    );
    assert!(kept.is_file(), "commit removed the tracked copy");
    let bundle = sb.ctx.path().join("out.tar.gz");
    let (code, _, err) = run(&sb, &["-e", "e", "export", "-o", bundle.to_str().unwrap()]);
    assert_eq!(code, Some(1), "export went ahead:\n{err}");
    assert!(!bundle.exists());

    // Following the hint: untrack the old name (it can be untracked although it is not portable).
    let (code, _, err) = run(&sb, &["-e", "e", "workflow", "untrack", "scene:v2"]);
    assert_eq!(code, Some(0), "{err}");
    let (code, _, err) = run(&sb, &["-e", "e", "commit", "-m", "x"]);
    assert_eq!(code, Some(0), "{err}");
}

#[test]
fn export_refuses_workflow_files_import_would_refuse() {
    let sb = EnvSandbox::new();
    sb.create("e", "v0.3.40");
    let env_dir = sb.env_dir("e");
    for (file, why) in [("scene:v2.json", "non-portable"), ("a?.json", "Windows forbids")] {
        let dir = env_dir.join(".cec/workflows");
        fs_err::create_dir_all(&dir).unwrap();
        fs_err::write(dir.join(file), b"{}").unwrap();
        // Committed by an older comfydock (today's `commit` drops untracked copies).
        for args in [
            &["add", "--all"][..],
            &["commit", "--quiet", "--no-verify", "-m", file],
        ] {
            let out = sb
                .ctx
                .std_command("git")
                .current_dir(env_dir.join(".cec"))
                .args(args)
                .output()
                .unwrap();
            assert!(out.status.success(), "{}", stderr(&out));
        }
        let bundle = sb.ctx.path().join("out.tar.gz");
        let (code, _, err) = run(&sb, &["-e", "e", "export", "-o", bundle.to_str().unwrap()]);
        assert_eq!(code, Some(1), "{file} was exported:\n{err}");
        assert!(err.contains("names that `import` would refuse"), "{file}:\n{err}");
        assert!(
            err.contains(&format!("`workflows/{file}`")) && err.contains(why),
            "{file}:\n{err}"
        );
        assert!(err.contains("hint:"), "{err}");
        assert!(!bundle.exists());
        fs_err::remove_file(dir.join(file)).unwrap();
        let (code, _, err) = run(&sb, &["-e", "e", "commit", "-m", "removed"]);
        assert_eq!(code, Some(0), "{err}");
    }
}

#[test]
fn git_urls_and_revisions_from_users_never_read_as_options() {
    let sb = EnvSandbox::new();
    sb.create("e", "v0.3.40");
    let esc = escape_name(&sb.ctx);
    let outside = sb.ctx.path().join(&esc);
    let outside = outside.to_str().unwrap();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec![
                "node".into(),
                "add".into(),
                format!("https://example.invalid/x.git@--output={outside}"),
            ],
            "Refusing git revision",
        ),
        (
            vec!["rollback".into(), "--".into(), format!("--output={outside}")],
            "Refusing git revision",
        ),
        (
            vec!["diff".into(), "--".into(), format!("--output={outside}")],
            "Refusing git revision",
        ),
        (
            vec![
                "workflow".into(),
                "restore".into(),
                "w".into(),
                format!("--rev=--output={outside}"),
            ],
            "Refusing git revision",
        ),
    ];
    for (args, expected) in cases {
        let mut all = vec!["-e".to_owned(), "e".to_owned()];
        all.extend(args.iter().cloned());
        let refs: Vec<&str> = all.iter().map(String::as_str).collect();
        let (code, _, err) = run(&sb, &refs);
        let case = args.join(" ");
        assert_eq!(code, Some(1), "{case} was not refused:\n{err}");
        assert!(err.contains(expected), "{case}: expected `{expected}` in\n{err}");
        assert!(err.contains("hint:"), "{case}: no hint in\n{err}");
        assert_eq!(escaped(&sb.ctx), Vec::<PathBuf>::new(), "{case} wrote outside");
    }
}

#[test]
fn credentials_in_urls_are_never_shown_or_stored() {
    let sb = EnvSandbox::new();
    sb.create("e", "v0.3.40");
    let secret = "SECRETpw1234";
    let token = "hf_TOKENTOKEN5678";
    let manifest = fs_err::read(sb.env_dir("e").join(".cec/pyproject.toml")).unwrap();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec![
                "model".into(),
                "add-source".into(),
                "0123456789abcdef".into(),
                format!("http://u:{secret}@127.0.0.1:9/f.safetensors?access_token={token}"),
            ],
            "carries credentials (a password in the URL)",
        ),
        (
            vec![
                "model".into(),
                "add-source".into(),
                "0123456789abcdef".into(),
                format!("https://127.0.0.1:9/f.safetensors?token={token}"),
            ],
            "carries credentials (the query parameter `token`)",
        ),
        (
            vec![
                "node".into(),
                "add".into(),
                format!("http://u:{secret}@127.0.0.1:9/x.git"),
            ],
            "Refusing to record `http://***@127.0.0.1:9/x.git`: it carries credentials (a password in the URL)",
        ),
        (
            vec![
                "node".into(),
                "add".into(),
                format!("https://{token}@127.0.0.1:9/x.git"),
            ],
            "Refusing to record `https://***@127.0.0.1:9/x.git`: it carries credentials (a user name in the URL)",
        ),
        (
            vec![
                "node".into(),
                "add".into(),
                format!("https://127.0.0.1:9/x.git?private_token={token}"),
            ],
            "the query parameter `private_token`",
        ),
    ];
    for (args, expected) in cases {
        for json in [false, true] {
            let mut all: Vec<String> = if json { vec!["--json".into()] } else { Vec::new() };
            all.extend(["-v".to_owned(), "-e".into(), "e".into()]);
            all.extend(args.iter().cloned());
            let refs: Vec<&str> = all.iter().map(String::as_str).collect();
            let (code, out, err) = run(&sb, &refs);
            let case = all.join(" ");
            assert_eq!(code, Some(1), "{case} succeeded:\n{err}");
            for text in [&out, &err] {
                assert!(
                    !text.contains(secret) && !text.contains(token),
                    "{case} showed a credential:\n{text}"
                );
            }
            if !json {
                assert!(err.contains(expected), "{case}: expected `{expected}` in\n{err}");
                assert!(err.contains("hint:"), "{case}: no hint in\n{err}");
            }
        }
    }
    assert_eq!(
        fs_err::read(sb.env_dir("e").join(".cec/pyproject.toml")).unwrap(),
        manifest
    );
    // A ComfyUI source with credentials, in a workspace without a ComfyUI mirror yet (git's own
    // errors name the URL).
    let fresh = context();
    fresh.init_workspace();
    let out = fresh
        .command()
        .args(["-v", "-c"])
        .arg(format!("comfyui.repo=http://u:{secret}@127.0.0.1:9/c.git"))
        .args(["create", "e2", "--comfyui", "v0.3.40"])
        .output()
        .unwrap();
    assert_no_panic("create with a credentialed ComfyUI source", &out);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        !err.contains(secret),
        "the ComfyUI source's password was shown:\n{err}"
    );
    assert!(
        err.contains("Failed to clone ComfyUI from `http://***@127.0.0.1:9/c.git`"),
        "{err}"
    );

    // Nothing comfydock keeps holds a credential (model index, logs, lock, `.cec`).
    let kept = snapshot(&sb.ctx.workspace.join(".metadata"), None)
        .into_keys()
        .chain(snapshot(&sb.env_dir("e").join(".cec"), None).into_keys());
    for path in kept {
        if path.is_file() {
            let bytes = fs_err::read(&path).unwrap();
            let text = String::from_utf8_lossy(&bytes);
            assert!(
                !text.contains(secret) && !text.contains(token),
                "{} holds a credential",
                path.display()
            );
        }
    }
}

#[test]
fn a_killed_import_is_retried_under_the_same_name() {
    let ctx = context();
    ctx.init_workspace();
    let dir = make_bundles(&ctx, MAKE_HOSTILE_BUNDLES, &[&escape_name(&ctx)]);
    // What `kill -9` during an import leaves: the environment folder without `.ready`.
    let leftover = ctx.workspace.join("environments/evil");
    fs_err::create_dir_all(leftover.join(".cec")).unwrap();
    fs_err::write(leftover.join(".cec/pyproject.toml"), "half").unwrap();
    let out = ctx
        .command()
        .args(["--yes", "import"])
        .arg(dir.join("plain.tar.gz"))
        .output()
        .unwrap();
    assert_no_panic("import after a killed import", &out);
    let err = stderr(&out);
    assert!(
        err.contains("Removing incomplete environment `evil` left by an interrupted command"),
        "{err}"
    );
    assert!(!err.contains("importing as `evil-1`"), "{err}");
    // The bundle's ComfyUI commit is unknown here, so the import itself fails, under its name.
    assert!(err.contains("Failed to create environment `evil`"), "{err}");
    assert!(!ctx.workspace.join("environments/evil-1").exists());
}

/// Bundles that cost time or memory: argv[1] is the output folder. Large entries are zeros, streamed
/// into the gzip stream (a few hundred KB on disk).
const MAKE_COSTLY_BUNDLES: &str = r#"
import hashlib, io, json, sys, tarfile
out = sys.argv[1]
pin = "[tool.comfydock]\ntorch_backends = ['cpu']\n\n[tool.comfydock.comfyui]\nref = 'v0.3.40'\ncommit = '" + "0" * 40 + "'\n"
lock = "version = 1\n\n[[package]]\nname = 'x'\nversion = '0.0.0'\nsource = { virtual = '.' }\n\n[package.optional-dependencies]\ncpu = [{ name = 'torch', version = '2.5.1+cpu', source = { registry = 'http://127.0.0.1:9/whl/cpu' } }]\n"
class Zeros(io.RawIOBase):
    def __init__(self, n): self.left = n
    def readable(self): return True
    def readinto(self, b):
        n = min(len(b), self.left)
        b[:n] = bytes(n)
        self.left -= n
        return n
def zeros_sha(n):
    h, block = hashlib.sha256(), bytes(1 << 20)
    while n:
        k = min(n, len(block)); h.update(block[:k]); n -= k
    return h.hexdigest()
def bundle(name, small={}, zeros={}):
    small = {"pyproject.toml": ("[project]\nname = 'x'\n" + pin).encode(), "uv.lock": lock.encode(), **small}
    listed = {n: {"sha256": hashlib.sha256(d).hexdigest(), "size": len(d)} for n, d in small.items()}
    listed.update({n: {"sha256": zeros_sha(s), "size": s} for n, s in zeros.items()})
    manifest = json.dumps({"format_version": 1, "comfydock_version": "0.1.0",
        "created_at": "2026-01-01T00:00:00Z", "environment_name": name, "platform": "linux-x86_64",
        "python": "3.12", "comfyui": {"reference": "v0.3.40", "commit": "0" * 40},
        "torch_backend": "cpu", "torch_backends": ["cpu"], "cec_commit": "0" * 40,
        "counts": {"workflows": 0, "registry_nodes": 0, "git_nodes": 0, "dev_nodes": 0, "models": 0},
        "models": [], "files": listed}).encode()
    with tarfile.open(f"{out}/{name}.tar.gz", "w:gz", format=tarfile.GNU_FORMAT, compresslevel=1) as t:
        for n, d in [("manifest.json", manifest)] + list(small.items()):
            info = tarfile.TarInfo(n); info.size = len(d); t.addfile(info, io.BytesIO(d))
        for n, s in zeros.items():
            info = tarfile.TarInfo(n); info.size = s; t.addfile(info, io.BufferedReader(Zeros(s), 1 << 20))
bundle("too-many-entries", small={f"workflows/w{i:05}.json": b"{}" for i in range(20_000)})
bundle("many-entries", small={f"workflows/w{i:05}.json": b"{}" for i in range(19_990)})
bundle("huge-workflow", zeros={"workflows/big.json": 300 << 20})
bundle("large-entries", zeros={"dev_nodes/blob/weights.bin": 300 << 20, "workflows/large.json": 100 << 20})
"#;

/// Runs `comfydock args` and returns its output with the peak resident memory (KiB) of the
/// process, measured by python's `getrusage(RUSAGE_CHILDREN)` after it exits.
fn run_measured(ctx: &TestContext, args: &[&str]) -> (std::process::Output, u64) {
    const MEASURE: &str = "import resource, subprocess, sys\nr = subprocess.run(sys.argv[2:])\nopen(sys.argv[1], 'w').write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))\nsys.exit(r.returncode)";
    let rss_dir = tempfile::tempdir().unwrap();
    let rss_file = rss_dir.path().join("peak-rss");
    let out = ctx
        .std_command("python3")
        .args(["-c", MEASURE])
        .arg(&rss_file)
        .arg(env!("CARGO_BIN_EXE_comfydock"))
        .args(args)
        .output()
        .unwrap();
    let kib = fs_err::read_to_string(&rss_file).unwrap().trim().parse().unwrap();
    (out, kib)
}

/// Inputs built to cost time or memory: each is refused by a named limit, or handled while the
/// process stays small (large entries are streamed, never held in memory).
#[test]
fn costly_bundles_and_workflows_stay_within_named_limits() {
    use std::fmt::Write as _;
    // Peak memory is measured in KiB.
    const MIB: u64 = 1024;
    let ctx = context();
    ctx.init_workspace();
    let dir = make_bundles(&ctx, MAKE_COSTLY_BUNDLES, &[]);
    // 50,000 nested subgraph definitions (the attack cost 20 s and 9.4 GB).
    let mut deep =
        String::from(r#"{"nodes":[{"id":1,"type":"sg-0"}],"links":[],"definitions":{"subgraphs":["#);
    for level in 0..50_000 {
        if level > 0 {
            deep.push(',');
        }
        write!(
            deep,
            r#"{{"id":"sg-{level}","nodes":[{{"id":1,"type":"sg-{}"}}],"links":[]}}"#,
            level + 1
        )
        .unwrap();
    }
    deep.push_str("]}}");
    let deep_file = ctx.path().join("deep.json");
    fs_err::write(&deep_file, deep).unwrap();
    let deep_arg = deep_file.to_string_lossy().into_owned();
    let bundle = |name: &str| dir.join(format!("{name}.tar.gz")).to_string_lossy().into_owned();
    // (case, arguments, expected in stderr, peak memory allowed)
    let refused: Vec<(&str, Vec<String>, &str, u64)> = vec![
        (
            "deep-subgraphs",
            vec!["workflow".into(), "analyze".into(), deep_arg],
            "nests subgraphs more than 64 levels deep",
            200 * MIB,
        ),
        (
            "too-many-entries",
            vec!["--yes".into(), "import".into(), bundle("too-many-entries")],
            "more than 20000 entries",
            64 * MIB,
        ),
        (
            "huge-workflow",
            vec!["--yes".into(), "import".into(), bundle("huge-workflow")],
            "entry `workflows/big.json` is 300.0 MiB, more than the 128.0 MiB allowed for it",
            64 * MIB,
        ),
    ];
    let before = snapshot(ctx.path(), None);
    for (name, args, expected, max_kib) in &refused {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (out, kib) = run_measured(&ctx, &args);
        assert_refused(name, &out, expected);
        assert!(kib < *max_kib, "{name}: peak memory {kib} KiB");
        assert_eq!(snapshot(ctx.path(), None), before, "{name} wrote something");
    }
    // Accepted by every check, then streamed: the environment is created from the files and fails
    // only at the ComfyUI checkout (no ComfyUI source here), removing the partial environment.
    for (name, max_kib) in [("large-entries", 64 * MIB), ("many-entries", 64 * MIB)] {
        let (out, kib) = run_measured(&ctx, &["--yes", "import", &bundle(name)]);
        assert_no_panic(name, &out);
        let err = stderr(&out);
        assert!(
            err.contains(&format!("Failed to create environment `{name}`"))
                && err.contains("Failed to clone ComfyUI"),
            "{name}: expected to reach the ComfyUI checkout:\n{err}"
        );
        assert!(kib < max_kib, "{name}: peak memory {kib} KiB");
        assert!(
            !ctx.workspace.join("environments").join(name).exists(),
            "{name}: partial environment left"
        );
    }
}

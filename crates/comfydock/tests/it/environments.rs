//! Environments against the ComfyUI stand-in repo and the local wheel index (issue 3).

use std::time::{Duration, Instant};

use comfydock_test::comfyui_repo::{EXIT_CODE_ENV, IMPORT_ENV, SHUTDOWN_DELAY_ENV};

use crate::common::{stderr, stdout};
use crate::env_support::{EnvSandbox, free_port, http_get};
use crate::snapshot::comfydock_snapshot;

#[test]
fn two_environments_at_different_commits_share_one_mirror() {
    let sb = EnvSandbox::new();
    let out = comfydock_snapshot!(
        sb.ctx,
        sb.ctx
            .command()
            .args(["create", "a", "--comfyui", "v0.3.40", "--torch-backend", "cpu"])
    );
    assert!(out.status.success(), "{}", stderr(&out));
    // The second create must not clone from the source again: take the source away.
    let moved = sb.repo.path().with_file_name("ComfyUI-moved");
    fs_err::rename(sb.repo.path(), &moved).unwrap();
    sb.create("b", "v0.3.41");
    fs_err::rename(&moved, sb.repo.path()).unwrap();

    assert_eq!(sb.comfyui_head("a"), sb.repo.commit("v0.3.40"));
    assert_eq!(sb.comfyui_head("b"), sb.repo.commit("v0.3.41"));
    let versions = "import tinynum, comfy_tiny_a, torch; print(tinynum.__version__, comfy_tiny_a.__version__, torch.__version__)";
    assert_eq!(sb.python("a", versions).unwrap(), "1.26.4 1.0.0 2.5.1+cpu");
    assert_eq!(sb.python("b", versions).unwrap(), "2.1.0 1.1.0 2.5.1+cpu");
    assert!(
        sb.python("a", "import comfy_tiny_b").is_err(),
        "v0.3.40 does not require comfy-tiny-b"
    );

    // The manifest records ref and commit; the backend stays out of git.
    let manifest = fs_err::read_to_string(sb.env_dir("a").join(".cec/pyproject.toml")).unwrap();
    assert!(manifest.contains("ref = \"v0.3.40\""), "{manifest}");
    assert!(manifest.contains(&format!("commit = \"{}\"", sb.repo.commit("v0.3.40"))));
    assert!(sb.env_dir("a").join(".cec/uv.lock").is_file());
    let lock = fs_err::read_to_string(sb.env_dir("a").join(".cec/uv.lock")).unwrap();
    assert!(
        lock.contains("2.5.1+cpu") && lock.contains("2.5.1+cu128"),
        "one lock covers both backends"
    );

    let out = sb.ctx.command().args(["--json", "list"]).output().unwrap();
    let rows: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let names: Vec<&str> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a", "b"]);

    let out = sb
        .ctx
        .command()
        .args(["-e", "a", "--json", "status"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let status: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(status["clean"], true, "{status}");
}

#[test]
fn default_ref_is_the_newest_release_and_use_makes_it_active() {
    let sb = EnvSandbox::new();
    let out = comfydock_snapshot!(
        sb.ctx,
        sb.ctx
            .command()
            .args(["--json", "create", "main", "--torch-backend", "cpu", "--use"])
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let created: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(created["comfyui"]["reference"], "v0.3.41");
    assert_eq!(created["comfyui"]["commit"], sb.repo.commit("v0.3.41"));
    comfydock_snapshot!(sb.ctx, sb.ctx.command().arg("list"));
    // Commands now act on it without -e.
    sb.ctx.command().arg("status").assert().success();
}

#[test]
fn run_in_background_logs_stop_and_foreground_exit_code() {
    let sb = EnvSandbox::new();
    sb.create("a", "v0.3.40");
    let port = free_port();
    let port_text = port.to_string();
    let port_regex = format!(r"\b{port}\b");
    let out = comfydock_snapshot!(
        sb.ctx,
        sb.ctx
            .command()
            .args(["-e", "a", "run", "--background", "--port", &port_text]),
        filters = vec![(port_regex.as_str(), "[PORT]")]
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let stats: serde_json::Value = serde_json::from_str(&http_get(port, "/system_stats")).unwrap();
    assert_eq!(stats["system"]["comfyui_version"], "0.3.40");
    let argv = stats["system"]["argv"].to_string();
    assert!(argv.contains("--extra-model-paths-config"), "{argv}");

    // A second run on the same port is refused, naming the port.
    let out = comfydock_snapshot!(
        sb.ctx,
        sb.ctx
            .command()
            .args(["-e", "a", "run", "--no-sync", "--port", &port_text]),
        filters = vec![(port_regex.as_str(), "[PORT]")]
    );
    assert_eq!(out.status.code(), Some(1));

    let out = sb
        .ctx
        .command()
        .args(["-e", "a", "logs", "-n", "200"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("To see the GUI go to"), "{}", stdout(&out));

    let out = comfydock_snapshot!(sb.ctx, sb.ctx.command().args(["-e", "a", "delete", "--yes"]));
    assert_eq!(out.status.code(), Some(1), "delete must refuse while running");

    let out = comfydock_snapshot!(sb.ctx, sb.ctx.command().args(["-e", "a", "stop"]));
    assert!(out.status.success(), "{}", stderr(&out));
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "still serving after stop"
    );

    let mut fg = sb.ctx.command();
    fg.args(["-e", "a", "run", "--port", &free_port().to_string()])
        .env(EXIT_CODE_ENV, "3");
    let out = fg.output().unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
}

#[test]
fn stop_returns_once_the_port_is_free_and_run_right_after_succeeds() {
    let sb = EnvSandbox::new();
    sb.create("a", "v0.3.40");
    let comfyui = sb.env_dir("a").join("ComfyUI");
    assert!(comfyui.join("user").is_dir(), "create makes ComfyUI/user");
    // ComfyUI exits 2 when --user-directory does not exist: `run` makes it again.
    fs_err::remove_dir_all(comfyui.join("user")).unwrap();
    let port = free_port().to_string();
    // On SIGTERM this ComfyUI's main thread exits first while another thread keeps the port
    // bound for a while, as real ComfyUI does while it tears down.
    let out = sb
        .ctx
        .command()
        .args(["-e", "a", "run", "--background", "--no-sync", "--port", &port])
        .env(SHUTDOWN_DELAY_ENV, "2")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(comfyui.join("user").is_dir());

    let out = sb
        .ctx
        .command()
        .args(["-e", "a", "--json", "stop"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let stopped: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(stopped["killed"], false, "{stopped}");
    assert_eq!(stopped["port_free"], true, "{stopped}");
    assert!(!sb.env_dir("a").join(".run.json").exists());
    let pid = stopped["pid"].as_u64().unwrap();
    let live_threads: Vec<_> = fs_err::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten()
        .filter_map(|task| fs_err::read_to_string(task.unwrap().path().join("stat")).ok())
        .filter(|stat| !stat.contains(") Z ") && !stat.contains(") X "))
        .collect();
    assert!(
        live_threads.is_empty(),
        "threads left after stop: {live_threads:?}"
    );

    // At once on the same port.
    let out = sb
        .ctx
        .command()
        .args(["-e", "a", "run", "--background", "--no-sync", "--port", &port])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    sb.ctx.command().args(["-e", "a", "stop"]).assert().success();
}

/// /proc/PID/stat field 22: the start time `run --background` records.
fn process_start(pid: u32) -> String {
    let stat = fs_err::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after_name = stat.rsplit_once(')').unwrap().1;
    after_name.split_whitespace().nth(19).unwrap().to_owned()
}

#[test]
fn a_run_record_whose_pid_is_another_process_is_stale_and_never_signalled() {
    let sb = EnvSandbox::new();
    sb.create("a", "v0.3.40");
    let mut unrelated = sb.ctx.std_command("sleep").arg("60").spawn().unwrap();
    let pid = unrelated.id();
    let record_path = sb.env_dir("a").join(".run.json");
    let write_record = |process_start: Option<String>| {
        let record = serde_json::json!({
            "pid": pid,
            "port": free_port(),
            "host": "127.0.0.1",
            "log": sb.ctx.path().join("comfyui.log"),
            "started_at": "2025-01-01T00:00:00Z",
            "process_start": process_start,
        });
        fs_err::write(&record_path, record.to_string()).unwrap();
    };
    let running_pid = || {
        let out = sb
            .ctx
            .command()
            .args(["-e", "a", "--json", "status"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        let status: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
        status["running_pid"].clone()
    };
    let real_start = process_start(pid);
    let wrong_start = format!("{real_start}1");

    for start in [Some(wrong_start.clone()), None] {
        // The pid is alive, but it is not the process the record was written for.
        write_record(start.clone());
        assert_eq!(running_pid(), serde_json::Value::Null, "start {start:?}");
        assert!(!record_path.exists(), "a stale record is removed");

        write_record(start.clone());
        let out = sb.ctx.command().args(["-e", "a", "stop"]).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        assert!(stderr(&out).contains("`a` is not running"), "{}", stderr(&out));
        assert!(!record_path.exists(), "a stale record is removed");
        assert!(
            unrelated.try_wait().unwrap().is_none(),
            "the unrelated process was signalled"
        );
    }

    // The same record with the right start time does name a running process.
    write_record(Some(real_start));
    assert_eq!(running_pid(), serde_json::json!(pid));
    sb.ctx.command().args(["-e", "a", "stop"]).assert().success();
    let status = unrelated.wait().unwrap();
    assert!(!status.success(), "stop ends the recorded process: {status:?}");
}

#[test]
fn a_missing_module_at_startup_is_reported_with_the_package_to_add() {
    let sb = EnvSandbox::new();
    sb.create("a", "v0.3.40");

    // Foreground: ComfyUI's traceback passes through, then the error names the package.
    let out = sb
        .ctx
        .command()
        .args(["-e", "a", "run", "--no-sync", "--port", &free_port().to_string()])
        .env(IMPORT_ENV, "cv2")
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("ModuleNotFoundError: No module named 'cv2'"),
        "{err}"
    );
    assert!(err.contains("Python module `cv2` is not installed"), "{err}");
    assert!(err.contains("`comfydock -e a py add opencv-python`"), "{err}");

    // Background: read from the log while waiting for it to listen.
    let out = sb
        .ctx
        .command()
        .args([
            "-e",
            "a",
            "run",
            "--background",
            "--no-sync",
            "--port",
            &free_port().to_string(),
        ])
        .env(IMPORT_ENV, "requests")
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("Python module `requests` is not installed"), "{err}");
    assert!(err.contains("`comfydock -e a py add requests`"), "{err}");

    // `logs` shows the traceback and ends with the same advice.
    let out = comfydock_snapshot!(
        sb.ctx,
        sb.ctx.command().args(["-e", "a", "logs"]),
        // Frames inside Python's own library differ between Python versions.
        filters = vec![(
            r#"(?m)(?:^  File "(?:<frozen [^"]+>|[^"]*/lib/python3\.\d+/[^"]+)", line \d+, in \w+\n(?:    .*\n)*)+"#,
            "  [PYTHON LIBRARY FRAMES]\n"
        )]
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out).trim_end().lines().last(),
        Some("ModuleNotFoundError: No module named 'requests'"),
        "{}",
        stdout(&out)
    );
    let hint = stderr(&out);
    assert!(hint.contains("hint:"), "{hint}");
    assert!(hint.contains("`comfydock -e a py add requests`"), "{hint}");

    // A dotted import names the package of its top-level module.
    let out = sb
        .ctx
        .command()
        .args([
            "-e",
            "a",
            "run",
            "--background",
            "--no-sync",
            "--port",
            &free_port().to_string(),
        ])
        .env(IMPORT_ENV, "yaml.constructor")
        .output()
        .unwrap();
    assert!(stderr(&out).contains("py add pyyaml"), "{}", stderr(&out));

    // A ComfyUI that started fine gets no such hint.
    let port = free_port().to_string();
    let out = sb
        .ctx
        .command()
        .args(["-e", "a", "run", "--background", "--no-sync", "--port", &port])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let out = sb.ctx.command().args(["-e", "a", "logs"]).output().unwrap();
    assert!(!stderr(&out).contains("py add"), "{}", stderr(&out));
    sb.ctx.command().args(["-e", "a", "stop"]).assert().success();
}

#[test]
fn busy_port_is_an_error_naming_it() {
    let sb = EnvSandbox::new();
    sb.create("a", "v0.3.40");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let out = sb
        .ctx
        .command()
        .args(["-e", "a", "run", "--port", &port.to_string()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(&format!("Port {port} on 127.0.0.1 is already in use")),
        "{}",
        stderr(&out)
    );
}

#[test]
fn edit_sync_commit_rollback_log_diff() {
    let sb = EnvSandbox::new();
    sb.create("a", "v0.3.40");
    let cec = sb.env_dir("a").join(".cec");
    let original_manifest = fs_err::read(cec.join("pyproject.toml")).unwrap();
    let original_lock = fs_err::read(cec.join("uv.lock")).unwrap();

    // A manual edit adding a dependency of the user's own.
    let text = String::from_utf8(original_manifest.clone()).unwrap();
    let edited = text.replacen(
        "dependencies = []\n",
        "dependencies = [\n    \"node-dep-a==1.1.0\",\n]\n",
        1,
    );
    assert_ne!(text, edited);
    fs_err::write(cec.join("pyproject.toml"), edited).unwrap();

    comfydock_snapshot!(sb.ctx, sb.ctx.command().args(["-e", "a", "status"]));
    let out = comfydock_snapshot!(sb.ctx, sb.ctx.command().args(["-e", "a", "--json", "status"]));
    let status: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(status["clean"], false);
    assert_eq!(status["packages_in_sync"], false);
    let fixes = status["issues"].to_string();
    assert!(fixes.contains("comfydock -e a sync"), "{fixes}");

    let out = comfydock_snapshot!(sb.ctx, sb.ctx.command().args(["-e", "a", "sync", "--dry-run"]));
    assert!(out.status.success(), "{}", stderr(&out));
    let out = comfydock_snapshot!(sb.ctx, sb.ctx.command().args(["-e", "a", "sync"]));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        sb.python("a", "import node_dep_a; print(node_dep_a.__version__)")
            .unwrap(),
        "1.1.0"
    );

    let out = comfydock_snapshot!(sb.ctx, sb.ctx.command().args(["-e", "a", "diff"]));
    assert!(out.status.success(), "{}", stderr(&out));

    let out = comfydock_snapshot!(
        sb.ctx,
        sb.ctx
            .command()
            .args(["-e", "a", "commit", "-m", "Add node-dep-a"])
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let out = comfydock_snapshot!(
        sb.ctx,
        sb.ctx.command().args(["-e", "a", "commit", "-m", "again"])
    );
    assert!(out.status.success());

    let out = comfydock_snapshot!(
        sb.ctx,
        sb.ctx
            .command()
            .args(["-e", "a", "--json", "diff", "HEAD~1", "HEAD"])
    );
    let diff: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(diff["requirements"][0]["name"], "node-dep-a");
    assert_eq!(diff["requirements"][0]["kind"], "added");

    let out = comfydock_snapshot!(sb.ctx, sb.ctx.command().args(["-e", "a", "rollback", "HEAD~1"]));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        fs_err::read(cec.join("pyproject.toml")).unwrap(),
        original_manifest
    );
    assert_eq!(fs_err::read(cec.join("uv.lock")).unwrap(), original_lock);
    assert!(
        sb.python("a", "import node_dep_a").is_err(),
        "rollback must uninstall node-dep-a"
    );

    comfydock_snapshot!(sb.ctx, sb.ctx.command().args(["-e", "a", "log"]));
    let out = comfydock_snapshot!(sb.ctx, sb.ctx.command().args(["-e", "a", "--json", "log"]));
    let log: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let messages: Vec<&str> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["message"].as_str().unwrap())
        .collect();
    assert_eq!(messages.len(), 3, "{messages:?}");
    assert!(messages[0].starts_with("Rollback to "), "{messages:?}");
    assert_eq!(messages[1], "Add node-dep-a");
    assert_eq!(messages[2], "Create environment a");

    comfydock_snapshot!(sb.ctx, sb.ctx.command().args(["-e", "a", "status"]));
    let out = comfydock_snapshot!(sb.ctx, sb.ctx.command().args(["-e", "a", "--json", "status"]));
    let status: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(status["clean"], true, "{status}");
    comfydock_snapshot!(sb.ctx, sb.ctx.command().arg("list"));
    comfydock_snapshot!(sb.ctx, sb.ctx.command().args(["--json", "list"]));
}

#[test]
fn rollback_refuses_uncommitted_changes_without_force() {
    let sb = EnvSandbox::new();
    sb.create("a", "v0.3.40");
    let path = sb.env_dir("a").join(".cec/workflows/mine.json");
    fs_err::write(&path, "{}").unwrap();
    let out = sb.ctx.command().args(["-e", "a", "rollback"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("uncommitted changes"), "{}", stderr(&out));
    assert!(path.exists());
    sb.ctx
        .command()
        .args(["-e", "a", "rollback", "--force"])
        .assert()
        .success();
    assert!(!path.exists());
}

#[test]
fn comfyui_update_moves_to_a_newer_release_and_rollback_moves_back() {
    let sb = EnvSandbox::new();
    sb.create("a", "v0.3.40");
    let out = comfydock_snapshot!(
        sb.ctx,
        sb.ctx.command().args(["-e", "a", "comfyui", "update", "v0.3.41"])
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(sb.comfyui_head("a"), sb.repo.commit("v0.3.41"));
    assert_eq!(
        sb.python("a", "import tinynum, comfy_tiny_b; print(tinynum.__version__)")
            .unwrap(),
        "2.1.0"
    );
    let out = comfydock_snapshot!(sb.ctx, sb.ctx.command().args(["-e", "a", "diff"]));
    assert!(out.status.success(), "{}", stderr(&out));
    sb.ctx
        .command()
        .args(["-e", "a", "commit", "-m", "ComfyUI v0.3.41"])
        .assert()
        .success();

    let out = comfydock_snapshot!(sb.ctx, sb.ctx.command().args(["-e", "a", "rollback", "HEAD~1"]));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(sb.comfyui_head("a"), sb.repo.commit("v0.3.40"));
    assert_eq!(
        sb.python("a", "import tinynum; print(tinynum.__version__)")
            .unwrap(),
        "1.26.4"
    );

    let out = comfydock_snapshot!(
        sb.ctx,
        sb.ctx
            .command()
            .args(["-e", "a", "--json", "comfyui", "update", "v0.3.41"])
    );
    let report: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(report["to"]["commit"], sb.repo.commit("v0.3.41"), "{report}");
}

#[test]
fn a_failed_comfyui_update_changes_nothing() {
    let sb = EnvSandbox::new();
    sb.create("a", "v0.3.40");
    sb.repo.add_release("v0.3.42", "no-such-package>=1\n");
    let cec = sb.env_dir("a").join(".cec");
    let before = (
        fs_err::read(cec.join("pyproject.toml")).unwrap(),
        fs_err::read(cec.join("uv.lock")).unwrap(),
    );
    let out = comfydock_snapshot!(
        sb.ctx,
        sb.ctx
            .command()
            .args(["-e", "a", "--json", "comfyui", "update", "v0.3.42"])
    );
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(
        report["exit_code"], 1,
        "one JSON document names the failure: {report}"
    );
    let err = stderr(&out);
    assert!(
        err.contains("no-such-package"),
        "uv's own message is shown: {err}"
    );
    assert!(
        err.contains("`no-such-package>=1` (from ComfyUI's requirements)"),
        "the requirement and who asked for it are named: {err}"
    );
    assert!(
        err.contains("nothing was changed (ComfyUI stays at v0.3.40)"),
        "{err}"
    );
    let after = (
        fs_err::read(cec.join("pyproject.toml")).unwrap(),
        fs_err::read(cec.join("uv.lock")).unwrap(),
    );
    assert!(
        before == after,
        "pyproject.toml and uv.lock must be restored byte for byte"
    );
    assert_eq!(sb.comfyui_head("a"), sb.repo.commit("v0.3.40"));
}

#[test]
fn sigkill_during_create_leaves_no_half_environment() {
    let sb = EnvSandbox::new();
    // Kill it once it is resolving or installing Python packages.
    let mut child = sb.spawn_create_until_cec("half");
    child.kill().unwrap();
    child.wait().unwrap();

    let out = sb.ctx.command().args(["--json", "list"]).output().unwrap();
    assert_eq!(stdout(&out).trim(), "[]", "a half environment is listed");
    let out = sb.ctx.command().args(["-e", "half", "status"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    sb.create("half", "v0.3.40");
    assert_eq!(
        sb.python("half", "import tinynum; print(tinynum.__version__)")
            .unwrap(),
        "1.26.4"
    );
}

#[test]
fn bad_input_is_rejected_with_a_useful_error() {
    let sb = EnvSandbox::new();
    let out = comfydock_snapshot!(
        sb.ctx,
        sb.ctx
            .command()
            .args(["create", "x", "--comfyui", "v0.3.4O", "--torch-backend", "cpu"])
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(!sb.env_dir("x").exists(), "a failed create leaves nothing");

    let out = comfydock_snapshot!(sb.ctx, sb.ctx.command().args(["create", "../x"]));
    assert_eq!(out.status.code(), Some(1));
    for name in [".hidden", "models"] {
        let out = comfydock_snapshot!(
            sb.ctx,
            sb.ctx.command().args(["create", name]),
            description = format!("comfydock create {name}")
        );
        assert_eq!(out.status.code(), Some(1), "{name}");
    }
    let out = comfydock_snapshot!(
        sb.ctx,
        sb.ctx.command().args(["create", "y", "--torch-backend", "cuda"])
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));

    // uv failing: a release whose requirements cannot be resolved.
    sb.repo.add_release("v0.3.42", "no-such-package>=1\n");
    let out = sb
        .ctx
        .command()
        .args(["create", "z", "--comfyui", "v0.3.42", "--torch-backend", "cpu"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("error: Failed to create environment `z`"), "{err}");
    assert!(
        err.contains("Caused by:") && err.contains(" lock --project "),
        "the uv command line is shown: {err}"
    );
    assert!(
        err.contains("no-such-package"),
        "uv's own message is shown: {err}"
    );
    assert!(!sb.env_dir("z").exists());

    // Nothing selected, or an environment that does not exist.
    let out = comfydock_snapshot!(sb.ctx, sb.ctx.command().arg("status"));
    assert_eq!(out.status.code(), Some(1));
    let out = comfydock_snapshot!(sb.ctx, sb.ctx.command().args(["--json", "status"]));
    assert_eq!(out.status.code(), Some(1));
    for args in [
        &["-e", "nope", "status"][..],
        &["use", "nope"],
        &["delete", "nope", "--yes"],
        &["-e", "nope", "node", "add", "some-node"],
        &["-e", "nope", "py", "list"],
        &["-e", "nope", "backend", "list"],
        &["-e", "nope", "workflow", "list"],
        &["-e", "nope", "export"],
        &["-e", "nope", "deploy", "docker", "--out", "ctx"],
        &["-e", "nope", "log"],
        &["import", "no-such-bundle.tar.gz"],
    ] {
        let out = comfydock_snapshot!(
            sb.ctx,
            sb.ctx.command().args(args),
            description = format!("comfydock {}", args.join(" "))
        );
        assert_eq!(out.status.code(), Some(1), "{args:?}");
    }
    comfydock_snapshot!(sb.ctx, sb.ctx.command().arg("list"));
    comfydock_snapshot!(sb.ctx, sb.ctx.command().args(["--json", "list"]));
}

#[test]
fn delete_asks_unless_yes_and_never_touches_models() {
    let sb = EnvSandbox::new();
    sb.create("a", "v0.3.40");
    let model = sb.ctx.workspace.join("models/checkpoints/keep.safetensors");
    fs_err::create_dir_all(model.parent().unwrap()).unwrap();
    fs_err::write(&model, "weights").unwrap();
    let out = comfydock_snapshot!(sb.ctx, sb.ctx.command().args(["delete", "a"]));
    assert_eq!(out.status.code(), Some(2), "no terminal: must fail naming --yes");
    assert!(sb.env_dir("a").exists());
    let out = comfydock_snapshot!(sb.ctx, sb.ctx.command().args(["delete", "a", "--yes"]));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!sb.env_dir("a").exists());
    assert_eq!(fs_err::read_to_string(&model).unwrap(), "weights");
    let yaml = sb.ctx.workspace.join("environments");
    assert!(yaml.is_dir());
}

#[test]
fn prune_moves_unmanaged_node_folders_to_the_trash_never_deleting_them() {
    let sb = EnvSandbox::new();
    sb.create("a", "v0.3.40");
    let mine = sb.env_dir("a").join("ComfyUI/custom_nodes/my-hack");
    fs_err::create_dir_all(&mine).unwrap();
    fs_err::write(mine.join("__init__.py"), "NODE_CLASS_MAPPINGS = {}\n").unwrap();

    let out = sb
        .ctx
        .command()
        .args(["-e", "a", "--json", "status"])
        .output()
        .unwrap();
    assert!(
        stdout(&out).contains("my-hack"),
        "status reports the folder: {}",
        stdout(&out)
    );
    sb.ctx.command().args(["-e", "a", "sync"]).assert().success();
    assert!(mine.join("__init__.py").is_file(), "a plain sync keeps it");

    let out = sb
        .ctx
        .command()
        .args(["-e", "a", "sync", "--prune"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!mine.exists());
    let trash = sb.ctx.workspace.join("trash/a");
    let kept: Vec<_> = walk(&trash)
        .into_iter()
        .filter(|p| p.ends_with("my-hack/__init__.py"))
        .collect();
    assert_eq!(
        kept.len(),
        1,
        "moved into the workspace trash: {:?}",
        walk(&trash)
    );
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = fs_err::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                out.extend(walk(&path));
            } else {
                out.push(path);
            }
        }
    }
    out
}

#[test]
fn ctrl_c_during_create_removes_the_partial_environment_at_once() {
    let sb = EnvSandbox::new();
    // Slow wheel downloads keep `create` in its install phase long enough to interrupt it.
    sb.index.delay_downloads(Some(Duration::from_millis(400)));
    let child = sb.spawn_create_until_cec("half");
    // Only comfydock gets the signal here (a terminal would signal uv too): it must finish the
    // running step, stop, and clean up by itself.
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    assert_ne!(out.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Interrupted"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !sb.env_dir("half").exists(),
        "the partial environment is removed at once"
    );
    sb.index.delay_downloads(None);
    sb.create("half", "v0.3.40");
}

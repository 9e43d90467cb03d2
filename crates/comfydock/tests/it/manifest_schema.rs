//! `[tool.comfydock]` is read through one typed schema: an entry that does not fit is an error
//! naming its key, never dropped; a manifest from a newer comfydock is refused with an upgrade
//! hint; and `workflow resolve` keeps the pins it did not produce.

use crate::common::stderr;
use crate::env_support::EnvSandbox;

/// `comfydock -e a ARGS` → (exit code, stderr).
fn run(sb: &EnvSandbox, args: &[&str]) -> (Option<i32>, String) {
    let out = sb.ctx.command().args(["-e", "a"]).args(args).output().unwrap();
    (out.status.code(), stderr(&out))
}

/// The `error:` and `hint:` lines of a failure of `args`.
fn error_and_hint<'a>(args: &[&str], err: &'a str) -> (&'a str, &'a str) {
    let line = |prefix: &str| {
        err.lines()
            .find(|l| l.trim_start().starts_with(prefix))
            .unwrap_or_else(|| panic!("{args:?}: no `{prefix}` line in:\n{err}"))
    };
    (line("error:"), line("hint:"))
}

#[test]
fn manifest_entries_that_do_not_fit_the_schema_are_errors_naming_the_key() {
    let sb = EnvSandbox::new();
    sb.create("a", "v0.3.40");
    let path = sb.env_dir("a").join(".cec/pyproject.toml");
    let original = fs_err::read_to_string(&path).unwrap();

    // Each of these was silently dropped (or read as nothing) before.
    let cases = [
        (
            "\n[tool.comfydock.nodes.broken]\nsource = \"registry\"\nversion = 1\n",
            "`tool.comfydock.nodes.broken.version`",
        ),
        (
            "\n[tool.comfydock.nodes.broken]\nsource = \"svn\"\n",
            "`tool.comfydock.nodes.broken.source`",
        ),
        (
            "\n[tool.comfydock.workflows.flow]\ntracked = true\nmodel_pins = []\n",
            "`tool.comfydock.workflows.flow.model_pins`",
        ),
    ];
    for (extra, key) in cases {
        let text = format!("{original}{extra}");
        fs_err::write(&path, &text).unwrap();
        for args in [
            &["status"][..],
            &["--json", "status"],
            &["sync"],
            &["node", "list"],
            &["workflow", "list"],
        ] {
            let (code, err) = run(&sb, args);
            assert_eq!(code, Some(1), "{args:?} with {extra}:\n{err}");
            let (error, hint) = error_and_hint(args, &err);
            assert!(error.contains(key), "{args:?}: the error names {key}:\n{err}");
            assert!(
                error.contains(".cec/pyproject.toml"),
                "{args:?}: the error names the file:\n{err}"
            );
            assert!(hint.contains(key), "{args:?}: {err}");
        }
        assert_eq!(fs_err::read_to_string(&path).unwrap(), text, "nothing rewritten");
    }
}

#[test]
fn a_manifest_from_a_newer_comfydock_is_refused_with_an_upgrade_hint() {
    let sb = EnvSandbox::new();
    sb.create("a", "v0.3.40");
    let path = sb.env_dir("a").join(".cec/pyproject.toml");
    let text = fs_err::read_to_string(&path).unwrap();
    // A newer schema may bring keys this build does not know: the answer is still "upgrade".
    let newer = text.replace("schema_version = 2\n", "schema_version = 3\nfuture_key = true\n");
    assert_ne!(newer, text);
    fs_err::write(&path, &newer).unwrap();
    for args in [&["status"][..], &["node", "list"], &["sync"]] {
        let (code, err) = run(&sb, args);
        assert_eq!(code, Some(1), "{args:?}:\n{err}");
        let (error, hint) = error_and_hint(args, &err);
        assert!(error.contains("schema version 3"), "{args:?}:\n{err}");
        assert!(!err.contains("future_key"), "{args:?}:\n{err}");
        assert!(
            hint.contains("written by a newer comfydock") && hint.contains("cargo install"),
            "{args:?}:\n{err}"
        );
    }
    assert_eq!(fs_err::read_to_string(&path).unwrap(), newer);
}

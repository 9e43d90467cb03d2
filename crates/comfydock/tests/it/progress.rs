//! Live progress: on a terminal uv draws its own progress (resolving, downloading, installing)
//! through comfydock's reporter; without one the same commands stay quiet.

use crate::common::stderr;
use crate::env_support::EnvSandbox;

/// A sandbox where uv is free to draw progress (the test default turns it off).
fn sandbox() -> EnvSandbox {
    let mut sb = EnvSandbox::new();
    sb.ctx.env_remove("UV_NO_PROGRESS");
    sb
}

#[test]
fn create_shows_uvs_progress_on_a_terminal_and_nothing_without_one() {
    let sb = sandbox();
    let create = ["create", "a", "--comfyui", "v0.3.40", "--torch-backend", "cpu"];

    let out = sb.ctx.terminal_command(&create, "");
    let shown = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{shown}");
    // uv's own lines, drawn live between comfydock's phases: resolving, then installing.
    let resolving = shown.find("Phase Resolving Python dependencies").expect(&shown);
    let resolved = shown.find("Resolved ").expect(&shown);
    let installing = shown.find("Phase Installing Python packages").expect(&shown);
    let installed = shown.find("Installed ").expect(&shown);
    assert!(
        resolving < resolved && resolved < installing && installing < installed,
        "{shown}"
    );
    assert!(shown.contains(" + tinynum=="), "{shown}");

    let out = sb
        .ctx
        .command()
        .args(["create", "b", "--comfyui", "v0.3.40", "--torch-backend", "cpu"])
        .output()
        .unwrap();
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("Resolving Python dependencies"), "{err}");
    assert!(!err.contains("Resolved ") && !err.contains("Installed "), "{err}");
    assert!(!err.contains('\u{1b}') && !err.contains('\r'), "{err:?}");
}

#[test]
fn a_conflict_on_a_terminal_names_both_sides_from_what_uv_drew() {
    let sb = sandbox();
    sb.create("a", "v0.3.40");
    let cec = sb.env_dir("a").join(".cec");
    let before = (
        fs_err::read(cec.join("pyproject.toml")).unwrap(),
        fs_err::read(cec.join("uv.lock")).unwrap(),
    );

    // uv's failure is read from the text it left on the terminal, as it is from its stderr.
    let out = sb
        .ctx
        .terminal_command(&["-e", "a", "py", "constrain", "tinynum>=2"], "");
    let shown = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(1), "{shown}");
    assert!(
        shown.contains("`tinynum<2` (from ComfyUI's requirements) and `tinynum>=2` (from your constraints) cannot both be installed"),
        "{shown}"
    );
    assert!(shown.contains("No solution found"), "{shown}");
    let after = (
        fs_err::read(cec.join("pyproject.toml")).unwrap(),
        fs_err::read(cec.join("uv.lock")).unwrap(),
    );
    assert_eq!(after, before);
}

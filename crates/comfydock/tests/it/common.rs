//! Shared helpers for the integration tests.

use comfydock_test::context::TestContext;

/// A sandbox for the binary under test.
pub fn context() -> TestContext {
    TestContext::new(env!("CARGO_BIN_EXE_comfydock"))
}

/// stdout of a finished command as text.
pub fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// stderr of a finished command as text.
pub fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Run the Python `script` (argv[1] = the folder, then `extra`) to write hand-made bundles into
/// `ctx`'s `bundles/` folder; returns that folder.
pub fn make_bundles(ctx: &TestContext, script: &str, extra: &[&str]) -> std::path::PathBuf {
    let dir = ctx.path().join("bundles");
    fs_err::create_dir_all(&dir).unwrap();
    let out = ctx
        .std_command("python3")
        .args(["-c", script])
        .arg(&dir)
        .args(extra)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    dir
}

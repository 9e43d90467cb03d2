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

//! Errors that know the user's next step.
//!
//! Library errors stay plain `thiserror` enums; the ones a user can act on also implement
//! [`Hinted`] so the CLI can print `hint:` with the exact command to run.

/// An error that may carry a hint: the exact next command or setting that fixes it.
pub trait Hinted: std::error::Error + Send + Sync + 'static {
    /// The next step for the user, if there is a useful one.
    fn hint(&self) -> Option<String> {
        None
    }
}

impl Hinted for std::io::Error {}
impl Hinted for serde_json::Error {}

/// An error and all its causes on one line (`outer: cause: root cause`), for warnings and
/// per-item failure reports where the full `Caused by:` block would be too much.
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut message = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

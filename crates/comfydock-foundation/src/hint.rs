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

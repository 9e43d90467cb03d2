//! How long-running library work reports progress without printing.
//!
//! The CLI implements [`Reporter`] with progress bars on a TTY and plain lines elsewhere; the
//! server implements it by streaming events. [`NoReporter`] discards everything.

/// Receives progress from long-running operations.
pub trait Reporter: Send + Sync {
    /// A new phase of a multi-step operation starts (e.g. "Resolving dependencies").
    fn phase(&self, _name: &str) {}
    /// A short status line ("Cloned ComfyUI", "Using cached mirror").
    fn status(&self, _verb: &str, _message: &str) {}
    /// A warning the user should see even when the operation succeeds.
    fn warning(&self, _message: &str) {}
    /// Start a unit of measurable work; returns an id for [`Reporter::progress`].
    fn start(&self, _label: &str, _total: Option<u64>) -> usize {
        0
    }
    /// Advance the work started with [`Reporter::start`] to `done` units.
    fn progress(&self, _id: usize, _done: u64) {}
    /// The work started with [`Reporter::start`] ended.
    fn finish(&self, _id: usize) {}
    /// Whether progress is drawn live on a terminal. Programs that draw their own progress only
    /// on a terminal (uv) are then run on a pseudo-terminal whose output goes to
    /// [`Reporter::terminal_output`]; without it they run captured and quiet.
    fn live(&self) -> bool {
        false
    }
    /// Bytes a program drew on its pseudo-terminal (text, carriage returns, cursor moves), to be
    /// shown as they are. Called only when [`Reporter::live`] is true.
    fn terminal_output(&self, _bytes: &[u8]) {}
}

/// A reporter that discards everything (tests, `--quiet`, library callers).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoReporter;

impl Reporter for NoReporter {}

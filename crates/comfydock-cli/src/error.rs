//! The one error type commands return, and how it is printed.
//!
//! ```text
//! error: <what failed>
//!   Caused by: <why>
//! hint: <the exact next command>
//! ```

use std::error::Error;
use std::fmt::Write as _;

use comfydock_foundation::Hinted;
use owo_colors::OwoColorize as _;

/// How a command ended; maps to the process exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// 0: everything worked.
    Success,
    /// 1: the operation failed.
    Failure,
    /// 2: the command line was wrong (clap errors, a missing `--yes`, ...).
    Usage,
    /// The exit code of a program we ran in the foreground (`run`).
    External(u8),
}

impl From<ExitStatus> for std::process::ExitCode {
    fn from(status: ExitStatus) -> Self {
        match status {
            ExitStatus::Success => Self::SUCCESS,
            ExitStatus::Failure => Self::from(1),
            ExitStatus::Usage => Self::from(2),
            ExitStatus::External(code) => Self::from(code),
        }
    }
}

/// A failed command: the error chain, hints for the user, and the exit status.
#[derive(Debug)]
pub struct CommandError {
    error: Box<dyn Error + Send + Sync>,
    hints: Vec<String>,
    status: ExitStatus,
}

/// A plain message used as an error.
#[derive(Debug)]
struct Message(String);

impl std::fmt::Display for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl Error for Message {}

impl<E: Hinted> From<E> for CommandError {
    fn from(error: E) -> Self {
        let hints = error.hint().into_iter().collect();
        Self {
            error: Box::new(error),
            hints,
            status: ExitStatus::Failure,
        }
    }
}

impl CommandError {
    /// The operation failed with `message`.
    pub fn failed(message: impl Into<String>) -> Self {
        Self {
            error: Box::new(Message(message.into())),
            hints: Vec::new(),
            status: ExitStatus::Failure,
        }
    }

    /// The command line was wrong.
    pub fn usage(message: impl Into<String>) -> Self {
        Self {
            status: ExitStatus::Usage,
            ..Self::failed(message)
        }
    }

    #[must_use]
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hints.push(hint.into());
        self
    }

    pub fn status(&self) -> ExitStatus {
        self.status
    }

    /// The error and its causes on one line (`message: cause: cause`), URLs redacted: how a
    /// command that goes on after a failure (one file of many) reports it.
    pub fn one_line(&self) -> String {
        let mut out = self.error.to_string();
        let mut source = self.error.source();
        while let Some(cause) = source {
            out.push_str(": ");
            out.push_str(&cause.to_string());
            source = cause.source();
        }
        comfydock_foundation::redact::redact_text(&out)
    }

    /// Render for a terminal (colours are stripped by the stream when not wanted).
    pub fn render(&self) -> String {
        comfydock_foundation::redact::redact_text(&self.render_unredacted())
    }

    fn render_unredacted(&self) -> String {
        let mut out = format!("{} {}\n", "error:".red().bold(), self.error);
        let mut source = self.error.source();
        while let Some(cause) = source {
            let text = cause.to_string();
            let mut lines = text.lines();
            if let Some(first) = lines.next() {
                let _ = writeln!(out, "  {} {first}", "Caused by:".bold());
                for line in lines {
                    let _ = writeln!(out, "  {line}");
                }
            }
            source = cause.source();
        }
        for hint in &self.hints {
            let _ = writeln!(out, "{} {hint}", "hint:".cyan().bold());
        }
        out
    }

    /// The error as JSON for `--json` callers.
    pub fn to_json(&self) -> serde_json::Value {
        let mut causes = Vec::new();
        let mut source = self.error.source();
        while let Some(cause) = source {
            causes.push(cause.to_string());
            source = cause.source();
        }
        let redact = |s: &str| comfydock_foundation::redact::redact_text(s);
        serde_json::json!({
            "error": redact(&self.error.to_string()),
            "causes": causes.iter().map(|c| redact(c)).collect::<Vec<_>>(),
            "hints": self.hints.iter().map(|h| redact(h)).collect::<Vec<_>>(),
            "exit_code": match self.status {
                ExitStatus::Success => 0,
                ExitStatus::Failure => 1,
                ExitStatus::Usage => 2,
                ExitStatus::External(code) => code,
            },
        })
    }
}

/// Result of a command.
pub type CommandResult<T = ()> = Result<T, CommandError>;

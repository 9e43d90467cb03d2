//! Running external programs (`git`, `uv`, `python`) with errors that carry argv and stderr.

use std::path::PathBuf;
use std::process::{Command, Output};

use crate::Hinted;
use crate::reporter::Reporter;

/// A program that failed to start or exited non-zero.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("Failed to run `{command}`")]
    Spawn {
        command: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{command}` failed ({status}){}", format_stderr(stderr))]
    Failed {
        command: String,
        cwd: Option<PathBuf>,
        status: String,
        stderr: String,
    },
}

impl Hinted for ProcessError {}

impl ProcessError {
    /// The failing program's own stderr (empty for spawn failures).
    pub fn stderr(&self) -> &str {
        match self {
            Self::Spawn { .. } => "",
            Self::Failed { stderr, .. } => stderr,
        }
    }
}

fn format_stderr(stderr: &str) -> String {
    let trimmed = stderr.trim();
    if trimmed.is_empty() {
        String::new()
    } else {
        let trimmed = crate::redact::redact_text(trimmed);
        let body: Vec<String> = trimmed.lines().map(|l| format!("  | {l}")).collect();
        format!(":\n{}", body.join("\n"))
    }
}

/// Render a command line for messages: program and args, quoted where needed, URLs redacted.
pub fn display_command(cmd: &Command) -> String {
    let mut parts = vec![quote(&cmd.get_program().to_string_lossy())];
    parts.extend(
        cmd.get_args()
            .map(|a| quote(&crate::redact::redact_text(&a.to_string_lossy()))),
    );
    parts.join(" ")
}

fn quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@+,%".contains(c))
    {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// Run to completion, capturing output; a non-zero exit becomes [`ProcessError::Failed`].
pub fn run_checked(cmd: &mut Command) -> Result<Output, ProcessError> {
    let command = display_command(cmd);
    tracing::debug!("running {command}");
    let output = cmd.output();
    checked(cmd, command, output)
}

/// [`run_checked`] for a program that draws its own progress on a terminal: when `reporter`
/// draws live progress, the program's stderr is a pseudo-terminal shown through the reporter
/// ([`crate::pseudo_terminal`]), and the captured stderr is the text left on it at the end.
/// Otherwise the same as [`run_checked`].
pub fn run_checked_showing_progress(
    cmd: &mut Command,
    reporter: &dyn Reporter,
) -> Result<Output, ProcessError> {
    #[cfg(unix)]
    if reporter.live() {
        let command = display_command(cmd);
        tracing::debug!("running {command} on a pseudo-terminal");
        let output = crate::pseudo_terminal::output_on_terminal(cmd, reporter);
        return checked(cmd, command, output);
    }
    #[cfg(not(unix))]
    let _ = reporter;
    run_checked(cmd)
}

fn checked(cmd: &Command, command: String, output: std::io::Result<Output>) -> Result<Output, ProcessError> {
    let output = output.map_err(|source| ProcessError::Spawn {
        command: command.clone(),
        source,
    })?;
    if output.status.success() {
        Ok(output)
    } else {
        Err(ProcessError::Failed {
            command,
            cwd: cmd.get_current_dir().map(PathBuf::from),
            status: output.status.to_string(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        })
    }
}

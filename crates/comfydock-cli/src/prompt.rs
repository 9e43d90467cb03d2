//! Asking the user, or refusing to block when nobody can answer.

use std::io::{BufRead as _, IsTerminal as _, Write as _};

use crate::error::{CommandError, CommandResult};

/// Ask a yes/no question on stderr. `--yes` answers yes; without a terminal this fails
/// naming the flag instead of blocking.
pub fn confirm(question: &str, yes: bool) -> CommandResult<bool> {
    if yes {
        return Ok(true);
    }
    if !std::io::stdin().is_terminal() {
        return Err(CommandError::usage(format!(
            "{question} needs confirmation, and there is no terminal to ask on"
        ))
        .with_hint("pass `--yes` to confirm non-interactively"));
    }
    let mut err = std::io::stderr();
    let _ = write!(err, "{question} [y/N] ");
    let _ = err.flush();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(CommandError::from)?;
    Ok(matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes"))
}

/// Print `options` numbered on stderr and read a 1-based choice from the terminal (0 when the
/// answer is not a number). Callers check there is a terminal first.
pub fn choose(question: &str, options: &[String]) -> std::io::Result<usize> {
    let mut err = std::io::stderr();
    let _ = writeln!(err, "{question}");
    for (i, option) in options.iter().enumerate() {
        let _ = writeln!(err, "  {}. {option}", i + 1);
    }
    let _ = write!(err, "Choose [1-{}]: ", options.len());
    let _ = err.flush();
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim().parse().unwrap_or(0))
}

/// Ask for one line of text on the terminal (trimmed; empty when the user just pressed enter).
pub fn ask_line(question: &str) -> std::io::Result<String> {
    let mut err = std::io::stderr();
    let _ = write!(err, "{question}");
    let _ = err.flush();
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim().to_owned())
}

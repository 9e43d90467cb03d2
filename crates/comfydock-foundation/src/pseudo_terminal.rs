//! Running a program with its stderr on a pseudo-terminal, for programs that draw their own
//! progress only on a terminal (uv).
//!
//! What the program draws is handed to [`Reporter::terminal_output`] as it comes, so the person
//! sees the program's own progress between comfydock's lines. The same bytes are kept and
//! replayed into the text left on screen at the end ([`crate::terminal_transcript`]), which is
//! returned as the captured stderr: callers that read the program's messages on failure see the
//! same words they would see without a terminal.

use std::io::Read as _;
use std::os::fd::OwnedFd;
use std::process::{Command, Output, Stdio};

use rustix::fs::{Mode, OFlags};
use rustix::pty::OpenptFlags;
use rustix::termios::Winsize;

use crate::reporter::Reporter;

/// The size given to the pseudo-terminal when comfydock's own stderr has none.
const FALLBACK_SIZE: Winsize = Winsize {
    ws_row: 24,
    ws_col: 100,
    ws_xpixel: 0,
    ws_ypixel: 0,
};

/// Run `cmd` to completion with stdin closed, stdout captured and stderr on a new
/// pseudo-terminal the size of ours. Returns the exit status, stdout, and as stderr the text the
/// terminal shows at the end.
pub fn output_on_terminal(cmd: &mut Command, reporter: &dyn Reporter) -> std::io::Result<Output> {
    let (controller, user_side) = open_pair()?;
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(user_side));
    let spawned = cmd.spawn();
    // The command keeps its `Stdio` after spawning: replace it so our copy of the terminal's user
    // side closes and reading the controller side ends when the program exits.
    cmd.stderr(Stdio::null());
    let mut child = spawned?;
    let mut stdout_pipe = child.stdout.take().expect("stdout is piped");
    let (stdout, drawn) = std::thread::scope(|scope| {
        let stdout = scope.spawn(move || {
            let mut bytes = Vec::new();
            stdout_pipe.read_to_end(&mut bytes).map(|_| bytes)
        });
        let drawn = copy_terminal(&controller, reporter);
        (stdout.join().expect("stdout reader does not panic"), drawn)
    });
    let status = child.wait()?;
    Ok(Output {
        status,
        stdout: stdout?,
        stderr: crate::terminal_transcript::final_text(&drawn).into_bytes(),
    })
}

/// A new pseudo-terminal: the controller side we read, the user side the program writes to.
fn open_pair() -> std::io::Result<(OwnedFd, OwnedFd)> {
    let controller = rustix::pty::openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC)?;
    rustix::pty::grantpt(&controller)?;
    rustix::pty::unlockpt(&controller)?;
    let name = rustix::pty::ptsname(&controller, Vec::new())?;
    let user_side = rustix::fs::open(
        name.as_c_str(),
        OFlags::RDWR | OFlags::NOCTTY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let size = rustix::termios::tcgetwinsize(std::io::stderr())
        .ok()
        .filter(|s| s.ws_col > 0 && s.ws_row > 0)
        .unwrap_or(FALLBACK_SIZE);
    rustix::termios::tcsetwinsize(&controller, size)?;
    Ok((controller, user_side))
}

/// Pass everything drawn on the terminal to the reporter until the program's side closes;
/// returns all of it.
fn copy_terminal(controller: &OwnedFd, reporter: &dyn Reporter) -> Vec<u8> {
    let mut drawn = Vec::new();
    let mut buf = [0_u8; 8192];
    loop {
        match rustix::io::read(controller, &mut buf) {
            Ok(0) => break,
            Ok(n) => {
                reporter.terminal_output(&buf[..n]);
                drawn.extend_from_slice(&buf[..n]);
            }
            Err(rustix::io::Errno::INTR) => {}
            // Linux answers EIO once every user side is closed.
            Err(_) => break,
        }
    }
    drawn
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    #[derive(Default)]
    struct Shown(Mutex<Vec<u8>>);

    impl Reporter for Shown {
        fn terminal_output(&self, bytes: &[u8]) {
            self.0.lock().unwrap().extend_from_slice(bytes);
        }
    }

    #[test]
    fn the_program_sees_a_terminal_and_its_drawing_is_shown_and_captured_as_text() {
        let shown = Shown::default();
        let mut cmd = Command::new("sh");
        cmd.args([
            "-c",
            "test -t 2 && printf 'spin\\r\\033[2Kdone\\n' >&2; echo out; exit 3",
        ]);
        let out = output_on_terminal(&mut cmd, &shown).unwrap();
        assert_eq!(out.status.code(), Some(3));
        assert_eq!(out.stdout, b"out\n");
        assert_eq!(String::from_utf8(out.stderr).unwrap(), "done\n");
        let shown = String::from_utf8(shown.0.into_inner().unwrap()).unwrap();
        assert!(shown.contains("spin\r\u{1b}[2Kdone"), "{shown:?}");
    }
}

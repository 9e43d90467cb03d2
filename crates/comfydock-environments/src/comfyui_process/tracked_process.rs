//! A process known by its pid *and* its start time, so that a later process which happens to
//! reuse the pid is never mistaken for it, nor signalled.
//!
//! Alive means "some thread of it still runs": when a multi-threaded program such as ComfyUI
//! exits, its main thread can turn into a zombie while the other threads are still tearing down
//! and hold its listening socket, so the main thread's state alone says nothing.

use rustix::process::{Pid, Signal};

/// When the process `pid` started, as an opaque token: two processes that share a pid at
/// different times have different tokens. Linux: the start time in clock ticks after boot
/// (`/proc/PID/stat` field 22); other systems: `ps -o lstart=`. `None` if there is no such process.
pub fn start_time(pid: u32) -> Option<String> {
    #[cfg(target_os = "linux")]
    {
        let stat = fs_err::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // Field 2 (the command name) is parenthesised and may hold spaces; field 3 follows the
        // last `)`, so field 22 is the 20th after it.
        let after_name = stat.rsplit_once(')')?.1;
        after_name.split_whitespace().nth(19).map(str::to_owned)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let out = std::process::Command::new("ps")
            .args(["-o", "lstart=", "-p", &pid.to_string()])
            .stderr(std::process::Stdio::null())
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        (out.status.success() && !text.is_empty()).then_some(text)
    }
}

/// Whether any thread of `pid` is still running (not a zombie).
fn has_live_thread(pid: u32) -> bool {
    #[cfg(target_os = "linux")]
    {
        let Ok(tasks) = fs_err::read_dir(format!("/proc/{pid}/task")) else {
            return false;
        };
        tasks.filter_map(Result::ok).any(|task| {
            fs_err::read_to_string(task.path().join("stat")).is_ok_and(|stat| {
                let state = stat
                    .rsplit_once(')')
                    .and_then(|(_, rest)| rest.split_whitespace().next());
                !matches!(state, None | Some("Z" | "X"))
            })
        })
    }
    #[cfg(not(target_os = "linux"))]
    {
        raw_pid(pid).is_some_and(|pid| rustix::process::test_kill_process(pid).is_ok())
    }
}

fn raw_pid(pid: u32) -> Option<Pid> {
    i32::try_from(pid).ok().and_then(Pid::from_raw)
}

/// A live process verified to be the one that was recorded. On Linux it holds a pidfd, so a
/// signal reaches exactly that process even if it exits and its pid is reused meanwhile.
pub struct TrackedProcess {
    pid: u32,
    start: String,
    #[cfg(target_os = "linux")]
    pidfd: Option<rustix::fd::OwnedFd>,
}

impl TrackedProcess {
    /// The process `pid` if it is alive and started at `start` (see [`start_time`]); `None`
    /// when it is gone or the pid now belongs to another process.
    pub fn find(pid: u32, start: &str) -> Option<Self> {
        let raw = raw_pid(pid)?;
        // Open the pidfd first, then check the start time: if the pid still belongs to the
        // recorded process after the open, the pidfd refers to that process.
        #[cfg(target_os = "linux")]
        let pidfd = rustix::process::pidfd_open(raw, rustix::process::PidfdFlags::empty()).ok();
        #[cfg(not(target_os = "linux"))]
        let _ = raw;
        let tracked = TrackedProcess {
            pid,
            start: start.to_owned(),
            #[cfg(target_os = "linux")]
            pidfd,
        };
        tracked.is_alive().then_some(tracked)
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Whether the process still runs: same start time, and at least one thread not a zombie.
    pub fn is_alive(&self) -> bool {
        start_time(self.pid).as_deref() == Some(self.start.as_str()) && has_live_thread(self.pid)
    }

    /// Send `signal` to this process (never to a process that reused its pid).
    pub fn signal(&self, signal: Signal) -> std::io::Result<()> {
        #[cfg(target_os = "linux")]
        if let Some(pidfd) = &self.pidfd {
            return rustix::process::pidfd_send_signal(pidfd, signal).map_err(Into::into);
        }
        // Without a pidfd: check right before signalling (a small window remains).
        if !self.is_alive() {
            return Err(std::io::Error::from(std::io::ErrorKind::NotFound));
        }
        let pid = raw_pid(self.pid).ok_or_else(|| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
        rustix::process::kill_process(pid, signal).map_err(Into::into)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_live_child_is_found_by_its_start_time_and_not_by_another() {
        let mut child = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        let pid = child.id();
        let start = start_time(pid).expect("a live child has a start time");
        assert!(TrackedProcess::find(pid, &start).is_some());
        assert!(TrackedProcess::find(pid, &format!("{start}0")).is_none());
        let tracked = TrackedProcess::find(pid, &start).unwrap();
        tracked.signal(Signal::KILL).unwrap();
        child.wait().unwrap();
        assert!(!tracked.is_alive());
        assert!(start_time(pid).is_none() || TrackedProcess::find(pid, &start).is_none());
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn an_exited_unreaped_child_is_not_alive() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        let start = start_time(pid).expect("an unreaped child keeps its /proc entry");
        // Wait for the exit without reaping: the zombie keeps its pid and start time.
        while has_live_thread(pid) {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert_eq!(start_time(pid).as_deref(), Some(start.as_str()));
        assert!(TrackedProcess::find(pid, &start).is_none());
        child.wait().unwrap();
    }
}

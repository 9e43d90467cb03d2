//! The workspace lock: an OS file lock that serialises mutating commands.
//!
//! The holder writes its pid and subcommand (never its arguments, which may hold secrets) into
//! the lock file, readable by the owner only, so that a waiter can say who holds it. The OS
//! releases the lock when the holder exits, even on SIGKILL.

use std::io::{Read as _, Seek as _, Write as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::Hinted;
use crate::env_vars;
use crate::reporter::Reporter;

/// Default time to wait for another comfydock process before giving up.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_mins(1);

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("Timed out after {waited:?} waiting for the workspace lock `{path}` held by {holder}")]
    Timeout {
        path: PathBuf,
        holder: String,
        waited: Duration,
    },
    #[error("Failed to open the workspace lock `{path}`")]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("Failed to lock `{path}`")]
    Lock {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl Hinted for LockError {
    fn hint(&self) -> Option<String> {
        match self {
            Self::Timeout { .. } => Some(format!(
                "wait for the other command to finish, or raise `{}` (seconds)",
                env_vars::COMFYDOCK_LOCK_TIMEOUT
            )),
            _ => None,
        }
    }
}

/// A held workspace lock; released on drop.
#[derive(Debug)]
pub struct WorkspaceLock {
    file: fs_err::File,
}

impl WorkspaceLock {
    /// Take the lock at `path`, waiting up to `timeout` while another process holds it.
    /// `command` names the holder to waiters (the subcommand, e.g. `comfydock node add`; never
    /// its arguments).
    pub fn acquire(
        path: &Path,
        command: &str,
        timeout: Duration,
        reporter: &dyn Reporter,
    ) -> Result<Self, LockError> {
        let open_err = |source| LockError::Open {
            path: path.to_path_buf(),
            source,
        };
        let mut options = fs_err::OpenOptions::new();
        options.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        fs_err::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(path).map_err(open_err)?;
        // A lock file created by an older build may still be world-readable.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let _ = file.set_permissions(std::fs::Permissions::from_mode(0o600));
        }
        let start = Instant::now();
        let mut announced = false;
        loop {
            match file.file().try_lock() {
                Ok(()) => break,
                Err(std::fs::TryLockError::WouldBlock) => {
                    let holder = read_holder(&mut file);
                    if start.elapsed() >= timeout {
                        return Err(LockError::Timeout {
                            path: path.to_path_buf(),
                            holder,
                            waited: timeout,
                        });
                    }
                    if !announced {
                        reporter.status("Waiting", &format!("for the workspace lock held by {holder}"));
                        announced = true;
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(std::fs::TryLockError::Error(source)) => {
                    return Err(LockError::Lock {
                        path: path.to_path_buf(),
                        source,
                    });
                }
            }
        }
        // Record who we are for anyone who waits on us. Failing to write this is not fatal.
        let _ = file.set_len(0).and_then(|()| {
            file.rewind()?;
            write!(file, "pid {} running `{}`", std::process::id(), command)?;
            file.flush()
        });
        Ok(Self { file })
    }

    /// Read the lock timeout from `COMFYDOCK_LOCK_TIMEOUT` (seconds), else the default.
    pub fn timeout_from_env() -> Duration {
        std::env::var(env_vars::COMFYDOCK_LOCK_TIMEOUT)
            .ok()
            .and_then(|s| s.trim().parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map_or(DEFAULT_TIMEOUT, Duration::from_secs_f64)
    }
}

impl Drop for WorkspaceLock {
    fn drop(&mut self) {
        let _ = self.file.set_len(0);
        let _ = self.file.file().unlock();
    }
}

fn read_holder(file: &mut fs_err::File) -> String {
    let mut text = String::new();
    let _ = file.rewind().and_then(|()| file.read_to_string(&mut text));
    let text = text.trim();
    if text.is_empty() {
        "another comfydock process".to_owned()
    } else {
        text.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reporter::NoReporter;

    #[test]
    fn second_lock_times_out_naming_holder() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lock");
        let _held = WorkspaceLock::acquire(&path, "comfydock test", DEFAULT_TIMEOUT, &NoReporter).unwrap();
        let err =
            WorkspaceLock::acquire(&path, "other", Duration::from_millis(200), &NoReporter).unwrap_err();
        let message = err.to_string();
        assert!(
            message.contains(&format!("pid {}", std::process::id())),
            "{message}"
        );
        assert!(message.contains("comfydock test"), "{message}");
    }

    #[test]
    fn lock_is_released_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lock");
        drop(WorkspaceLock::acquire(&path, "a", DEFAULT_TIMEOUT, &NoReporter).unwrap());
        WorkspaceLock::acquire(&path, "b", Duration::from_millis(10), &NoReporter).unwrap();
    }
}

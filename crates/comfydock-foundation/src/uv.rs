//! A small typed driver for `uv`, and its provisioning.
//!
//! uv is found by `uv.path` > PATH > `<workspace>/tools/`; when absent, a pinned uv is installed
//! from PyPI into `<workspace>/tools/uv-<version>` with `python3 -m pip install --target`.
//! A uv on PATH outside [`SUPPORTED_UV`] is passed over (and remembered for `doctor`); an
//! explicitly configured `uv.path` is used whatever its version, and `doctor` warns about it.
//! uv's own variables (`UV_INDEX_URL`, `UV_OFFLINE`, ...) pass through untouched.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::Hinted;
use crate::env_vars;
use crate::reporter::Reporter;
use crate::subprocess::{ProcessError, display_command, run_checked, run_checked_showing_progress};

/// The uv version comfydock installs when none is found.
pub const PINNED_UV_VERSION: &str = "0.13.9";

/// The uv versions comfydock drives: `>=` the first, `<` the second. comfydock parses uv's JSON
/// plan (`sync --output-format json`), its lock file and its resolver messages, so a uv outside
/// the range CI tests against is not trusted.
pub const SUPPORTED_UV: ((u64, u64, u64), (u64, u64, u64)) = ((0, 13, 0), (0, 14, 0));

/// The supported range as text, `>=0.13.0, <0.14.0`.
pub fn supported_range() -> String {
    let (low, high) = SUPPORTED_UV;
    format!(
        ">={}.{}.{}, <{}.{}.{}",
        low.0, low.1, low.2, high.0, high.1, high.2
    )
}

/// Whether a uv version (`0.13.9`, `0.13.9+3`) is in [`SUPPORTED_UV`]; an unreadable one is not.
pub fn is_supported(version: &str) -> bool {
    let mut parts = version
        .split(['+', '-'])
        .next()
        .unwrap_or_default()
        .split('.')
        .map(str::parse::<u64>);
    let (Some(Ok(major)), Some(Ok(minor))) = (parts.next(), parts.next()) else {
        return false;
    };
    let patch = match parts.next() {
        Some(Ok(p)) => p,
        Some(Err(_)) => return false,
        None => 0,
    };
    let (low, high) = SUPPORTED_UV;
    (major, minor, patch) >= low && (major, minor, patch) < high
}

/// A uv that was found but not used because its version is outside [`SUPPORTED_UV`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PassedOverUv {
    pub path: PathBuf,
    /// What `uv --version` said (empty when it did not run).
    pub version: String,
}

#[derive(Debug, thiserror::Error)]
pub enum UvError {
    #[error("The configured uv `{0}` does not exist")]
    ConfiguredMissing(PathBuf),
    #[error("Failed to install uv {PINNED_UV_VERSION} into `{target}`")]
    Install {
        target: PathBuf,
        manual: String,
        #[source]
        source: Box<ProcessError>,
    },
    #[error("uv was installed into `{0}` but its binary is missing")]
    InstallIncomplete(PathBuf),
    #[error("`{command}` printed something comfydock cannot read: {reason}")]
    UnexpectedOutput { command: String, reason: String },
    #[error(transparent)]
    Process(#[from] Box<ProcessError>),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl Hinted for UvError {
    fn hint(&self) -> Option<String> {
        match self {
            Self::ConfiguredMissing(_) => Some(
                "fix it with `comfydock config set uv.path /path/to/uv` or remove it with `comfydock config unset uv.path`"
                    .into(),
            ),
            Self::Install { manual, .. } => Some(format!(
                "install uv yourself with `{manual}`, or put an existing uv on PATH, or run `comfydock config set uv.path /path/to/uv`"
            )),
            Self::UnexpectedOutput { .. } => Some(format!(
                "comfydock supports uv {}; see the uv in use with `comfydock doctor`",
                supported_range()
            )),
            _ => None,
        }
    }
}

/// Where the uv binary came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UvOrigin {
    Config,
    Path,
    Workspace,
    Installed,
}

impl std::fmt::Display for UvOrigin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Config => "uv.path",
            Self::Path => "PATH",
            Self::Workspace => "workspace tools",
            Self::Installed => "installed now",
        })
    }
}

/// The uv binary plus the environment every uv call gets.
#[derive(Debug, Clone)]
pub struct Uv {
    program: PathBuf,
    origin: UvOrigin,
    cache_dir: Option<PathBuf>,
    passed_over: Option<PassedOverUv>,
}

impl Uv {
    /// Find uv without installing it.
    pub fn locate(configured: Option<&str>, tools_dir: &Path) -> Result<Option<Self>, UvError> {
        if let Some(path) = configured {
            let path = PathBuf::from(path);
            if !path.is_file() {
                return Err(UvError::ConfiguredMissing(path));
            }
            return Ok(Some(Self::new(path, UvOrigin::Config)));
        }
        let mut passed_over = None;
        if let Ok(path) = which::which("uv") {
            let on_path = Self::new(path.clone(), UvOrigin::Path);
            let version = on_path.version().unwrap_or_default();
            if is_supported(&version) {
                return Ok(Some(on_path));
            }
            tracing::debug!(
                "uv {version} at {} is outside {}; not used",
                path.display(),
                supported_range()
            );
            passed_over = Some(PassedOverUv { path, version });
        }
        let provisioned = provisioned_binary(tools_dir);
        Ok(provisioned.is_file().then(|| Self {
            passed_over: passed_over.clone(),
            ..Self::new(provisioned, UvOrigin::Workspace)
        }))
    }

    /// The uv on PATH passed over for this one because of its version, if any.
    pub fn passed_over(&self) -> Option<&PassedOverUv> {
        self.passed_over.as_ref()
    }

    /// The uv on PATH that [`Uv::locate`] would pass over, if any (for `locate_or_install`).
    fn unsupported_on_path() -> Option<PassedOverUv> {
        let path = which::which("uv").ok()?;
        let version = Self::new(path.clone(), UvOrigin::Path)
            .version()
            .unwrap_or_default();
        (!is_supported(&version)).then_some(PassedOverUv { path, version })
    }

    /// Find uv, installing the pinned version into `tools_dir` when it is nowhere to be found.
    pub fn locate_or_install(
        configured: Option<&str>,
        tools_dir: &Path,
        reporter: &dyn Reporter,
    ) -> Result<Self, UvError> {
        if let Some(uv) = Self::locate(configured, tools_dir)? {
            return Ok(uv);
        }
        let passed_over = Self::unsupported_on_path();
        if let Some(skipped) = &passed_over {
            reporter.warning(&format!(
                "uv {} at {} is outside the supported range {}; installing the pinned uv {PINNED_UV_VERSION}",
                skipped.version,
                skipped.path.display(),
                supported_range()
            ));
        }
        install(tools_dir, reporter).map(|p| Self {
            passed_over,
            ..Self::new(p, UvOrigin::Installed)
        })
    }

    fn new(program: PathBuf, origin: UvOrigin) -> Self {
        Self {
            program,
            origin,
            cache_dir: None,
            passed_over: None,
        }
    }

    /// Use this cache directory unless the user set `UV_CACHE_DIR`.
    #[must_use]
    pub fn with_cache_dir(mut self, dir: PathBuf) -> Self {
        self.cache_dir = Some(dir);
        self
    }

    pub fn program(&self) -> &Path {
        &self.program
    }

    pub fn origin(&self) -> UvOrigin {
        self.origin
    }

    /// A uv command with the common environment.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(&self.program);
        if std::env::var_os(env_vars::UV_CACHE_DIR).is_none()
            && let Some(dir) = &self.cache_dir
        {
            cmd.env(env_vars::UV_CACHE_DIR, dir);
        }
        cmd.env(env_vars::UV_NO_PROGRESS, "1");
        cmd
    }

    /// Run a command made by [`Uv::command`] that resolves or downloads. When `reporter` draws
    /// live progress, uv draws its own progress (resolving, downloading, installing) on a
    /// pseudo-terminal shown through the reporter; its captured stderr is then the text left on
    /// that terminal, its messages unchanged. Otherwise uv runs captured and quiet.
    pub fn run_showing_progress(
        &self,
        cmd: &mut Command,
        reporter: &dyn Reporter,
    ) -> Result<Output, UvError> {
        if reporter.live() && std::env::var_os(env_vars::UV_NO_PROGRESS).is_none() {
            cmd.env_remove(env_vars::UV_NO_PROGRESS);
        }
        Ok(run_checked_showing_progress(cmd, reporter).map_err(Box::new)?)
    }

    /// Run uv with `args` in `dir`; a non-zero exit carries uv's own message.
    pub fn run<I, S>(&self, dir: Option<&Path>, args: I) -> Result<Output, UvError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = self.command();
        cmd.args(args);
        if let Some(dir) = dir {
            cmd.current_dir(dir);
        }
        Ok(run_checked(&mut cmd).map_err(Box::new)?)
    }

    /// `uv --version`, e.g. `0.13.9`.
    pub fn version(&self) -> Result<String, UvError> {
        let out = self.run(None, ["--version"])?;
        let text = String::from_utf8_lossy(&out.stdout);
        Ok(text.split_whitespace().nth(1).unwrap_or_default().to_owned())
    }
}

fn provisioned_root(tools_dir: &Path) -> PathBuf {
    tools_dir.join(format!("uv-{PINNED_UV_VERSION}"))
}

fn provisioned_binary(tools_dir: &Path) -> PathBuf {
    provisioned_root(tools_dir)
        .join("bin")
        .join(if cfg!(windows) { "uv.exe" } else { "uv" })
}

/// Install the pinned uv with pip into a temporary folder, then move it into place.
fn install(tools_dir: &Path, reporter: &dyn Reporter) -> Result<PathBuf, UvError> {
    let python = std::env::var(env_vars::COMFYDOCK_PYTHON).unwrap_or_else(|_| "python3".to_owned());
    let target = provisioned_root(tools_dir);
    fs_err::create_dir_all(tools_dir)?;
    let staging = tempfile::Builder::new()
        .prefix(".uv-install-")
        .tempdir_in(tools_dir)?;
    let mut cmd = Command::new(&python);
    cmd.args([
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-input",
        "--target",
    ])
    .arg(staging.path())
    .arg(format!("uv=={PINNED_UV_VERSION}"));
    let manual = format!(
        "{python} -m pip install --target {} uv=={PINNED_UV_VERSION}",
        target.display()
    );
    reporter.status(
        "Installing",
        &format!("uv {PINNED_UV_VERSION} into {}", target.display()),
    );
    tracing::debug!("{}", display_command(&cmd));
    run_checked(&mut cmd).map_err(|source| UvError::Install {
        target: target.clone(),
        manual,
        source: Box::new(source),
    })?;
    if target.exists() {
        fs_err::remove_dir_all(&target)?;
    }
    fs_err::rename(staging.keep(), &target)?;
    let binary = provisioned_binary(tools_dir);
    if !binary.is_file() {
        return Err(UvError::InstallIncomplete(target));
    }
    ensure_executable(&binary)?;
    Ok(binary)
}

/// pip keeps the wheel's mode bits, which not every build of a wheel sets; make sure uv runs.
#[cfg(unix)]
fn ensure_executable(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    let mut permissions = fs_err::metadata(path)?.permissions();
    if permissions.mode() & 0o111 == 0 {
        permissions.set_mode(permissions.mode() | 0o755);
        fs_err::set_permissions(path, permissions)?;
    }
    Ok(())
}

#[cfg(not(unix))]
fn ensure_executable(_path: &Path) -> std::io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_supported_range_is_half_open() {
        assert!(is_supported(PINNED_UV_VERSION));
        for ok in ["0.13.0", "0.13.9", "0.13.10+2", "0.13"] {
            assert!(is_supported(ok), "{ok}");
        }
        for bad in ["0.12.99", "0.14.0", "1.0.0", "", "uv", "0.x.1", "0.13.x"] {
            assert!(!is_supported(bad), "{bad}");
        }
        assert_eq!(supported_range(), ">=0.13.0, <0.14.0");
    }
}

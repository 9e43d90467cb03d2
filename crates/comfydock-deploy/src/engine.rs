//! Building and pushing with the `docker` client: `docker buildx build` (or `docker build`)
//! with output streamed to the terminal, only when `docker info` reaches an engine.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::DeployError;

/// The docker client, once an engine answered.
#[derive(Debug, Clone)]
pub struct DockerEngine {
    program: PathBuf,
    buildx: bool,
}

impl DockerEngine {
    /// Find `docker` and check that `docker info` reaches an engine. `context_dir` is named in
    /// the error so the user knows the build context is ready regardless.
    pub fn connect(context_dir: &Path) -> Result<Self, DeployError> {
        let no_engine = |reason: String| DeployError::NoEngine {
            dir: context_dir.to_path_buf(),
            reason,
        };
        let program = which::which("docker").map_err(|_| no_engine("`docker` is not on PATH".into()))?;
        let info = Command::new(&program)
            .args(["info", "--format", "{{.ServerVersion}}"])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| no_engine(format!("cannot run `docker info`: {e}")))?;
        if !info.status.success() {
            let stderr = String::from_utf8_lossy(&info.stderr);
            let reason = stderr
                .lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("`docker info` failed");
            return Err(no_engine(reason.trim().to_owned()));
        }
        let buildx = Command::new(&program)
            .args(["buildx", "version"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        Ok(Self { program, buildx })
    }

    /// Build `dir` as `tag`, streaming the engine's output to this process's stderr.
    pub fn build(&self, dir: &Path, tag: &str) -> Result<(), DeployError> {
        let mut cmd = Command::new(&self.program);
        if self.buildx {
            cmd.args(["buildx", "build", "--load", "--progress", "plain"]);
        } else {
            cmd.env("DOCKER_BUILDKIT", "1").arg("build");
        }
        cmd.args(["--tag", tag]).arg(dir);
        Self::stream(cmd, "build", tag)
    }

    /// Push `tag` to its registry (credentials from `docker login`, never from comfydock).
    pub fn push(&self, tag: &str) -> Result<(), DeployError> {
        let mut cmd = Command::new(&self.program);
        cmd.args(["push", tag]);
        Self::stream(cmd, "push", tag)
    }

    /// The image id, or the registry digest once pushed.
    pub fn digest(&self, tag: &str, pushed: bool) -> Option<String> {
        let format = if pushed {
            "{{index .RepoDigests 0}}"
        } else {
            "{{.Id}}"
        };
        let out = Command::new(&self.program)
            .args(["image", "inspect", "--format", format, tag])
            .stdin(Stdio::null())
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        (out.status.success() && !text.is_empty()).then_some(text)
    }

    /// Run with the engine's output on this process's stderr (stdout stays free for `--json`).
    fn stream(mut cmd: Command, step: &'static str, tag: &str) -> Result<(), DeployError> {
        let status = cmd
            .stdin(Stdio::null())
            .stdout(stderr_stdio()?)
            .stderr(Stdio::inherit())
            .status()?;
        if status.success() {
            Ok(())
        } else {
            Err(DeployError::EngineStep {
                step,
                tag: tag.to_owned(),
                code: status.code(),
            })
        }
    }
}

#[cfg(unix)]
fn stderr_stdio() -> std::io::Result<Stdio> {
    use std::os::fd::AsFd as _;
    Ok(Stdio::from(std::io::stderr().as_fd().try_clone_to_owned()?))
}

#[cfg(not(unix))]
fn stderr_stdio() -> std::io::Result<Stdio> {
    Ok(Stdio::inherit())
}

//! Building and pushing with the `docker` client (`docker buildx build`, or `docker build`)
//! when `docker info` reaches an engine, else with `podman` (daemonless: `podman build`), with
//! output streamed to the terminal.

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
    /// Find `docker` whose `docker info` reaches an engine, else `podman`. `context_dir` is
    /// named in the error so the user knows the build context is ready regardless.
    pub fn connect(context_dir: &Path) -> Result<Self, DeployError> {
        if let Some(chosen) = std::env::var_os(comfydock_foundation::env_vars::COMFYDOCK_CONTAINER_ENGINE)
            .filter(|v| !v.is_empty())
        {
            return Self::connect_to(&chosen.to_string_lossy(), context_dir);
        }
        match Self::connect_to("docker", context_dir) {
            Ok(engine) => Ok(engine),
            Err(docker) => Self::connect_to("podman", context_dir).map_err(|podman| {
                let reason = |e: DeployError| match e {
                    DeployError::NoEngine { reason, .. } => reason,
                    other => other.to_string(),
                };
                DeployError::NoEngine {
                    dir: context_dir.to_path_buf(),
                    reason: format!("{}; {}", reason(docker), reason(podman)),
                }
            }),
        }
    }

    fn connect_to(name: &str, context_dir: &Path) -> Result<Self, DeployError> {
        let no_engine = |reason: String| DeployError::NoEngine {
            dir: context_dir.to_path_buf(),
            reason,
        };
        let program = which::which(name).map_err(|_| no_engine(format!("`{name}` is not on PATH")))?;
        let info = Command::new(&program)
            .args(if name == "docker" {
                &["info", "--format", "{{.ServerVersion}}"][..]
            } else {
                &["info", "--format", "{{.Version.Version}}"][..]
            })
            .stdin(Stdio::null())
            .output()
            .map_err(|e| no_engine(format!("cannot run `{name} info`: {e}")))?;
        if !info.status.success() {
            let stderr = String::from_utf8_lossy(&info.stderr);
            let reason = stderr
                .lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("the engine does not answer");
            return Err(no_engine(reason.trim().to_owned()));
        }
        let buildx = name == "docker"
            && Command::new(&program)
                .args(["buildx", "version"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
        Ok(Self { program, buildx })
    }

    /// The client's name (`docker`, `podman`).
    pub fn name(&self) -> String {
        self.program
            .file_stem()
            .map_or_else(|| "docker".to_owned(), |s| s.to_string_lossy().into_owned())
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

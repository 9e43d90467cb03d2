//! [`TestContext`]: a sandbox for running the real `comfydock` binary.
//!
//! Each context has its own HOME, workspace folder and uv cache; git reads no user or system
//! config; uv never downloads Python and its default index is a closed local port (tests point
//! it at a local stand-in); no token or endpoint from the developer's
//! environment leaks in. Output filters replace temp paths so snapshots are stable.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// Environment variables removed from every command so the developer's setup cannot leak in.
const SCRUBBED_VARS: &[&str] = &[
    "COMFYDOCK_HOME",
    "COMFYDOCK_ENV",
    "COMFYDOCK_COMFYUI_REPO",
    "COMFYDOCK_REGISTRY_URL",
    "COMFYDOCK_TORCH_INDEX_URL",
    "COMFYDOCK_MANAGER_DATA_URL",
    "COMFYDOCK_CIVITAI_URL",
    "COMFYDOCK_UV",
    "COMFYDOCK_LOCK_TIMEOUT",
    "HF_ENDPOINT",
    "HF_TOKEN",
    "CIVITAI_API_TOKEN",
    "UV_INDEX_URL",
    "UV_DEFAULT_INDEX",
    "UV_EXTRA_INDEX_URL",
    "UV_FIND_LINKS",
    "VIRTUAL_ENV",
    "CONDA_PREFIX",
    "RUST_LOG",
    "PIP_INDEX_URL",
    "PIP_FIND_LINKS",
];

/// A sandbox for one test.
#[derive(Debug)]
pub struct TestContext {
    /// Holds every path below; removed on drop.
    pub root: tempfile::TempDir,
    /// `$HOME` for the commands.
    pub home: PathBuf,
    /// The workspace path (`COMFYDOCK_HOME`); not created until [`TestContext::init_workspace`].
    pub workspace: PathBuf,
    /// uv's cache for this test.
    pub uv_cache: PathBuf,
    bin: PathBuf,
    extra_env: Vec<(OsString, OsString)>,
    removed_env: Vec<OsString>,
}

impl TestContext {
    /// A sandbox running `bin` (pass `env!("CARGO_BIN_EXE_comfydock")`).
    pub fn new(bin: impl Into<PathBuf>) -> Self {
        let root = tempfile::Builder::new()
            .prefix("comfydock-test-")
            .tempdir()
            .expect("create temp dir");
        let home = root.path().join("home");
        let uv_cache = root.path().join("uv-cache");
        fs_err::create_dir_all(&home).expect("create home");
        let workspace = root.path().join("ws");
        Self {
            home,
            workspace,
            uv_cache,
            bin: bin.into(),
            extra_env: Vec::new(),
            removed_env: Vec::new(),
            root,
        }
    }

    /// Set an environment variable for every command of this context.
    pub fn env(&mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> &mut Self {
        self.extra_env.push((key.into(), value.into()));
        self
    }

    /// Leave `key` unset for every command of this context, overriding the hermetic default (the
    /// real-world tier unsets `UV_INDEX_URL` so uv uses its default index, the real one).
    pub fn env_remove(&mut self, key: impl Into<OsString>) -> &mut Self {
        let key = key.into();
        self.extra_env.retain(|(k, _)| *k != key);
        self.removed_env.push(key);
        self
    }

    /// The temp folder everything lives in.
    pub fn path(&self) -> &Path {
        self.root.path()
    }

    /// A `comfydock` command in the sandbox, run from the temp root.
    pub fn command(&self) -> assert_cmd::Command {
        let mut cmd = assert_cmd::Command::new(&self.bin);
        self.apply_env(cmd.current_dir(self.root.path()));
        cmd
    }

    /// The same hermetic environment for any other program (git, uv, python).
    pub fn std_command(&self, program: impl AsRef<std::ffi::OsStr>) -> std::process::Command {
        let mut cmd = std::process::Command::new(program);
        cmd.current_dir(self.root.path());
        for var in SCRUBBED_VARS {
            cmd.env_remove(var);
        }
        for (k, v) in self.hermetic_env() {
            cmd.env(k, v);
        }
        cmd
    }

    fn hermetic_env(&self) -> Vec<(OsString, OsString)> {
        let mut env: Vec<(OsString, OsString)> = vec![
            ("HOME".into(), self.home.clone().into()),
            ("COMFYDOCK_HOME".into(), self.workspace.clone().into()),
            ("GIT_CONFIG_GLOBAL".into(), "/dev/null".into()),
            ("GIT_CONFIG_NOSYSTEM".into(), "1".into()),
            ("GIT_TERMINAL_PROMPT".into(), "0".into()),
            ("UV_PYTHON_DOWNLOADS".into(), "never".into()),
            ("UV_CACHE_DIR".into(), self.uv_cache.clone().into()),
            ("UV_NO_PROGRESS".into(), "1".into()),
            ("NO_COLOR".into(), "1".into()),
            ("COMFYDOCK_LOCK_TIMEOUT".into(), "5".into()),
            // Nothing may reach the real services: every endpoint points at a closed local port.
            ("COMFYDOCK_REGISTRY_URL".into(), "http://127.0.0.1:9".into()),
            ("COMFYDOCK_COMFYUI_REPO".into(), "/nonexistent/comfyui".into()),
            (
                "COMFYDOCK_TORCH_INDEX_URL".into(),
                "http://127.0.0.1:9/whl".into(),
            ),
            ("COMFYDOCK_MANAGER_DATA_URL".into(), "http://127.0.0.1:9".into()),
            ("COMFYDOCK_CIVITAI_URL".into(), "http://127.0.0.1:9".into()),
            ("HF_ENDPOINT".into(), "http://127.0.0.1:9".into()),
            ("UV_INDEX_URL".into(), "http://127.0.0.1:9/simple".into()),
            ("PIP_NO_INDEX".into(), "1".into()),
        ];
        // pyenv shims find their interpreters through PYENV_ROOT, which defaults to $HOME/.pyenv.
        if std::env::var_os("PYENV_ROOT").is_none()
            && let Some(real_home) = std::env::home_dir()
            && real_home.join(".pyenv").is_dir()
        {
            env.push(("PYENV_ROOT".into(), real_home.join(".pyenv").into()));
        }
        env.retain(|(k, _)| !self.removed_env.contains(k));
        env.extend(self.extra_env.iter().cloned());
        env
    }

    /// Run comfydock with `args` on a pseudo-terminal (through util-linux `script`), typing
    /// `input` (e.g. `"2\n"`) as the user would: for the prompts that only appear on a
    /// terminal. stdout holds everything the terminal showed (stdout and stderr together).
    pub fn terminal_command(&self, args: &[&str], input: &str) -> std::process::Output {
        use std::io::Write as _;
        let line = std::iter::once(self.bin.to_string_lossy().into_owned())
            .chain(args.iter().map(|a| (*a).to_owned()))
            .map(|a| format!("'{}'", a.replace('\'', r"'\''")))
            .collect::<Vec<_>>()
            .join(" ");
        let mut cmd = self.std_command("script");
        cmd.args(["--quiet", "--return", "--command", &line, "/dev/null"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = cmd.spawn().expect("util-linux `script` runs");
        let mut stdin = child.stdin.take().expect("piped stdin");
        stdin.write_all(input.as_bytes()).expect("the answer is typed");
        drop(stdin);
        child.wait_with_output().expect("the terminal session ends")
    }

    fn apply_env(&self, cmd: &mut assert_cmd::Command) {
        for var in SCRUBBED_VARS {
            cmd.env_remove(var);
        }
        for (k, v) in self.hermetic_env() {
            cmd.env(k, v);
        }
    }

    /// Run `comfydock init` on the context's workspace, asserting success.
    pub fn init_workspace(&self) {
        self.command().arg("init").assert().success();
    }

    /// Replace sandbox paths in `text` so it can be compared or snapshotted.
    pub fn filter(&self, text: &str) -> String {
        let root = self.root.path().to_string_lossy();
        let canonical = fs_err::canonicalize(self.root.path()).map(|p| p.to_string_lossy().into_owned());
        let mut out = text.replace(root.as_ref(), "[TEMP]");
        if let Ok(canonical) = canonical {
            out = out.replace(&canonical, "[TEMP]");
        }
        let pid = regex::Regex::new(r"pid \d+").expect("valid regex");
        pid.replace_all(&out, "pid [PID]").into_owned()
    }
}

//! A sandbox wired to the ComfyUI stand-in repository and the local wheel index.

use comfydock_test::comfyui_repo::ComfyUiRepo;
use comfydock_test::context::TestContext;
use comfydock_test::wheel_index::WheelIndex;

use crate::common::{context, stderr};

/// A workspace whose ComfyUI, PyPI and PyTorch are local stand-ins.
pub struct EnvSandbox {
    pub ctx: TestContext,
    pub repo: ComfyUiRepo,
    pub index: WheelIndex,
}

impl EnvSandbox {
    pub fn new() -> Self {
        let mut ctx = context();
        let repo = ComfyUiRepo::create();
        let index = WheelIndex::start();
        ctx.env("COMFYDOCK_COMFYUI_REPO", repo.url())
            .env("COMFYDOCK_TORCH_INDEX_URL", index.torch_index_url())
            .env("UV_INDEX_URL", index.simple_url())
            .env("UV_PYTHON_PREFERENCE", "only-system");
        ctx.init_workspace();
        Self { ctx, repo, index }
    }

    /// `comfydock create NAME --comfyui REF --torch-backend cpu`, asserting success.
    pub fn create(&self, name: &str, reference: &str) {
        let out = self
            .ctx
            .command()
            .args(["create", name, "--comfyui", reference, "--torch-backend", "cpu"])
            .output()
            .unwrap();
        assert!(out.status.success(), "create {name} failed:\n{}", stderr(&out));
    }

    /// Start `create NAME --comfyui v0.3.40` in the background and return once it has written
    /// `.cec/pyproject.toml` (it is then resolving or installing Python packages).
    pub fn spawn_create_until_cec(&self, name: &str) -> std::process::Child {
        let child = self
            .ctx
            .std_command(env!("CARGO_BIN_EXE_comfydock"))
            .env("COMFYDOCK_HOME", &self.ctx.workspace)
            .env("COMFYDOCK_COMFYUI_REPO", self.repo.url())
            .env("COMFYDOCK_TORCH_INDEX_URL", self.index.torch_index_url())
            .env("UV_INDEX_URL", self.index.simple_url())
            .args(["create", name, "--comfyui", "v0.3.40", "--torch-backend", "cpu"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let cec = self.env_dir(name).join(".cec/pyproject.toml");
        let deadline = std::time::Instant::now() + std::time::Duration::from_mins(1);
        while !cec.exists() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert!(cec.exists(), "create never reached the .cec phase");
        child
    }

    pub fn env_dir(&self, name: &str) -> std::path::PathBuf {
        self.ctx.workspace.join("environments").join(name)
    }

    /// Run Python code in an environment's venv; returns trimmed stdout.
    pub fn python(&self, name: &str, code: &str) -> Result<String, String> {
        let out = self
            .ctx
            .std_command(self.env_dir(name).join(".venv/bin/python"))
            .args(["-c", code])
            .output()
            .unwrap();
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// The commit ComfyUI is checked out at in an environment.
    pub fn comfyui_head(&self, name: &str) -> String {
        let out = self
            .ctx
            .std_command("git")
            .args(["-C"])
            .arg(self.env_dir(name).join("ComfyUI"))
            .args(["rev-parse", "HEAD"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }
}

/// A free TCP port on loopback.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `GET path` on 127.0.0.1:port; returns the body.
pub fn http_get(port: u16, path: &str) -> String {
    use std::io::{Read as _, Write as _};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(
        response.starts_with("HTTP/1.") && response.contains(" 200 "),
        "{response}"
    );
    response.split("\r\n\r\n").nth(1).unwrap_or_default().to_owned()
}

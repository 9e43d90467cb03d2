//! Installing without Python or Rust (`scripts/install.sh`) and `comfydock self update`, against a
//! local server laid out like a release host (`…/releases/latest/download/ASSET`).

use std::path::{Path, PathBuf};

use comfydock_test::archive::sha256_hex;
use comfydock_test::context::TestContext;
use comfydock_test::file_server::FileServer;

use crate::common::{context, stderr, stdout};

const TARGET: &str = "x86_64-unknown-linux-gnu";

fn install_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/install.sh")
}

/// A `.tar.gz` holding `comfydock` (this build's binary, plus `marker` bytes at its end: an ELF
/// file runs the same with bytes appended, so each release is told apart by its tail).
fn release_archive(ctx: &TestContext, marker: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let mut binary = fs_err::read(env!("CARGO_BIN_EXE_comfydock")).unwrap();
    binary.extend_from_slice(marker);
    let dir = ctx.path().join(format!("pack-{}", sha256_hex(marker)));
    fs_err::create_dir_all(dir.join("comfydock-release")).unwrap();
    fs_err::write(dir.join("comfydock-release/comfydock"), &binary).unwrap();
    let out = ctx
        .std_command("tar")
        .arg("-czf")
        .arg(dir.join("archive.tar.gz"))
        .arg("-C")
        .arg(&dir)
        .arg("comfydock-release")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    (fs_err::read(dir.join("archive.tar.gz")).unwrap(), binary)
}

/// Publish `archive` as the latest release `version` (manifest, archive, `.sha256`).
fn publish(files: &FileServer, version: &str, archive: &[u8], manifest_sha256: &str) {
    let name = format!("comfydock-{TARGET}.tar.gz");
    files.add(&format!("/releases/latest/download/{name}"), archive.to_vec());
    files.add(
        &format!("/releases/latest/download/{name}.sha256"),
        format!("{}  {name}\n", sha256_hex(archive)),
    );
    files.add(
        "/releases/latest/download/comfydock-release.json",
        serde_json::json!({
            "version": version,
            "archives": {TARGET: {"file": name, "sha256": manifest_sha256}}
        })
        .to_string(),
    );
}

/// `scripts/install.sh` against `files`, installing into `bin_dir`.
fn run_installer(ctx: &TestContext, files: &FileServer, bin_dir: &Path) -> std::process::Output {
    ctx.std_command("sh")
        .arg(install_script())
        .env("COMFYDOCK_RELEASE_URL", files.url_for("/releases"))
        .env("COMFYDOCK_INSTALL_DIR", bin_dir)
        .output()
        .unwrap()
}

fn run(ctx: &TestContext, program: &Path, args: &[&str]) -> std::process::Output {
    ctx.std_command(program).args(args).output().unwrap()
}

#[test]
fn the_installer_installs_a_verified_release_and_self_update_replaces_it() {
    if std::env::consts::ARCH != "x86_64" || std::env::consts::OS != "linux" {
        return; // The release layout below is built for this machine's target only.
    }
    let ctx = context();
    let files = FileServer::start();
    let (first, first_binary) = release_archive(&ctx, b"\nrelease one\n");
    publish(&files, env!("CARGO_PKG_VERSION"), &first, &sha256_hex(&first));

    let bin_dir = ctx.path().join("home/.local/bin");
    let out = run_installer(&ctx, &files, &bin_dir);
    assert!(out.status.success(), "{}", stderr(&out));
    let installed = bin_dir.join("comfydock");
    assert_eq!(fs_err::read(&installed).unwrap(), first_binary);
    assert!(stderr(&out).contains("installed comfydock "), "{}", stderr(&out));
    let receipt: serde_json::Value =
        serde_json::from_slice(&fs_err::read(bin_dir.join("comfydock-receipt.json")).unwrap()).unwrap();
    assert_eq!(receipt["target"], TARGET);

    // The newest release already: nothing changes.
    let out = run(&ctx, &installed, &["self", "update"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("is the newest release"), "{}", stderr(&out));
    assert_eq!(fs_err::read(&installed).unwrap(), first_binary);

    // A release whose archive does not match its published sha256 is refused, the binary kept.
    let (second, second_binary) = release_archive(&ctx, b"\nrelease two\n");
    publish(&files, "99.0.0", &second, &sha256_hex(b"something else"));
    let out = run(&ctx, &installed, &["self", "update"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("does not match the release's sha256"),
        "{}",
        stderr(&out)
    );
    assert_eq!(fs_err::read(&installed).unwrap(), first_binary);

    // A newer, verified release replaces the binary, which then runs.
    publish(&files, "99.0.0", &second, &sha256_hex(&second));
    let out = run(&ctx, &installed, &["--json", "self", "update"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(report["updated"], true);
    assert_eq!(report["to"], "99.0.0");
    assert_eq!(fs_err::read(&installed).unwrap(), second_binary);
    let out = run(&ctx, &installed, &["--version"]);
    assert!(out.status.success(), "{}", stderr(&out));

    // The installer refuses an archive that does not match its `.sha256`.
    files.add(
        &format!("/releases/latest/download/comfydock-{TARGET}.tar.gz.sha256"),
        format!("{}  x\n", sha256_hex(b"other")),
    );
    let out = run_installer(&ctx, &files, &bin_dir);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("nothing was installed"), "{}", stderr(&out));
    assert_eq!(fs_err::read(&installed).unwrap(), second_binary);
}

/// Installed into a Python environment, `self update` names the tool that updates it.
#[test]
fn self_update_names_the_tool_that_installed_it() {
    let ctx = context();
    let layouts: [(&str, &str, &str); 3] = [
        ("uv-tool", "uv-receipt.toml", "uv tool upgrade comfydock-rs"),
        ("pipx-venv", "pipx_metadata.json", "pipx upgrade comfydock-rs"),
        ("venv", "pyvenv.cfg", "-m pip install --upgrade comfydock-rs"),
    ];
    for (name, marker, command) in layouts {
        let env = ctx.path().join(name);
        fs_err::create_dir_all(env.join("bin")).unwrap();
        fs_err::write(env.join(marker), "").unwrap();
        let binary = env.join("bin/comfydock");
        fs_err::copy(env!("CARGO_BIN_EXE_comfydock"), &binary).unwrap();
        let out = run(&ctx, &binary, &["self", "update"]);
        assert_eq!(out.status.code(), Some(1), "{name}: {}", stderr(&out));
        assert!(stderr(&out).contains(command), "{name}: {}", stderr(&out));
    }
}

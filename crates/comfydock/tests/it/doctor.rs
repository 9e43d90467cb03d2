//! `comfydock doctor` and uv provisioning: a pinned uv is installed with pip into
//! `<workspace>/tools` when none is found. pip is pointed at a local find-links folder holding
//! a stand-in `uv` wheel, so nothing is downloaded.

use std::path::{Path, PathBuf};

use comfydock_test::archive::{ZipEntry, build_zip};
use comfydock_test::context::TestContext;

use crate::common::{context, stderr, stdout};
use crate::snapshot::comfydock_snapshot;

/// git's version and location differ between machines, and the columns follow their width.
const TOOL_FILTERS: [(&str, &str); 3] = [
    (r"(?m)^git .*$", "git [VERSION] [PATH] (PATH)"),
    (r"(?m)^uv +(\S+) +", "uv $1 "),
    (
        r#"("name": "git",\s+"path": "[^"]*",\s+"version": )"[^"]*""#,
        r#"$1"[VERSION]""#,
    ),
];

const UV_VERSION: &str = "0.13.9";

/// The real interpreter behind `python3` (pyenv shims need their own PATH entries).
fn real_python() -> PathBuf {
    let out = std::process::Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .expect("python3 runs");
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

/// A PATH holding only git, so no uv can be found on it.
fn path_without_uv(ctx: &TestContext) -> PathBuf {
    let bin = ctx.path().join("bin");
    fs_err::create_dir_all(&bin).unwrap();
    let git = which_git();
    std::os::unix::fs::symlink(git, bin.join("git")).unwrap();
    bin
}

fn which_git() -> PathBuf {
    let out = std::process::Command::new("sh")
        .args(["-c", "command -v git"])
        .output()
        .unwrap();
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

/// A wheel named `uv` whose script prints a version line like the real one.
fn write_fake_uv_wheel(dir: &Path) {
    fs_err::create_dir_all(dir).unwrap();
    let dist = format!("uv-{UV_VERSION}");
    let script = format!("#!/bin/sh\necho 'uv {UV_VERSION} (stand-in)'\n");
    let files = [
        (format!("{dist}.data/scripts/uv"), script),
        (
            format!("{dist}.dist-info/METADATA"),
            format!("Metadata-Version: 2.1\nName: uv\nVersion: {UV_VERSION}\n"),
        ),
        (
            format!("{dist}.dist-info/WHEEL"),
            "Wheel-Version: 1.0\nGenerator: comfydock-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
                .to_owned(),
        ),
    ];
    let mut names: Vec<String> = files.iter().map(|(name, _)| name.clone()).collect();
    names.push(format!("{dist}.dist-info/RECORD"));
    let record = names
        .iter()
        .map(|n| format!("{n},,"))
        .collect::<Vec<_>>()
        .join("\n")
        + "\n";
    let mut entries: Vec<ZipEntry> = files
        .iter()
        .map(|(n, b)| ZipEntry::file(n.clone(), b.clone()))
        .collect();
    entries.push(ZipEntry::file(format!("{dist}.dist-info/RECORD"), record));
    fs_err::write(dir.join(format!("{dist}-py3-none-any.whl")), build_zip(&entries)).unwrap();
}

#[test]
fn installs_pinned_uv_when_missing_then_reuses_it() {
    let mut ctx = context();
    let wheels = ctx.path().join("wheels");
    write_fake_uv_wheel(&wheels);
    let bin = path_without_uv(&ctx);
    ctx.env("PATH", bin)
        .env("PIP_FIND_LINKS", &wheels)
        .env("COMFYDOCK_PYTHON", real_python());
    ctx.init_workspace();

    let out = comfydock_snapshot!(ctx, ctx.command().arg("doctor"), filters = TOOL_FILTERS);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        ctx.workspace
            .join(format!("tools/uv-{UV_VERSION}/bin/uv"))
            .is_file()
    );

    let out = comfydock_snapshot!(
        ctx,
        ctx.command().args(["--json", "doctor"]),
        filters = TOOL_FILTERS
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        !stderr(&out).contains("Installing"),
        "installed twice: {}",
        stderr(&out)
    );
    let tools: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let uv = tools
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "uv")
        .unwrap();
    assert_eq!(uv["origin"], "workspace tools");
    assert_eq!(uv["version"], UV_VERSION);
}

#[test]
fn a_failed_uv_install_gives_the_manual_command() {
    let mut ctx = context();
    let bin = path_without_uv(&ctx);
    // No find-links and no index: pip cannot find uv.
    ctx.env("PATH", bin).env("COMFYDOCK_PYTHON", real_python());
    ctx.init_workspace();
    let out = ctx.command().arg("doctor").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = ctx.filter(&stderr(&out));
    assert!(
        err.contains(&format!("error: Failed to install uv {UV_VERSION}")),
        "{err}"
    );
    assert!(err.contains("Caused by:") && err.contains("pip install"), "{err}");
    assert!(err.contains("hint: install uv yourself with `"), "{err}");
    assert!(
        err.contains(&format!(
            "--target [TEMP]/ws/tools/uv-{UV_VERSION} uv=={UV_VERSION}"
        )),
        "{err}"
    );
    assert!(
        !ctx.workspace.join(format!("tools/uv-{UV_VERSION}")).exists(),
        "half install left behind"
    );
}

#[test]
fn configured_uv_path_is_used() {
    use std::os::unix::fs::PermissionsExt as _;
    let mut ctx = context();
    let wheels = ctx.path().join("wheels");
    write_fake_uv_wheel(&wheels);
    let bin = path_without_uv(&ctx);
    // Provide a uv via the setting: a script that acts like uv.
    let fake = ctx.path().join("my-uv");
    fs_err::write(&fake, "#!/bin/sh\necho 'uv 9.9.9'\n").unwrap();
    fs_err::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    ctx.env("PATH", bin);
    ctx.init_workspace();
    ctx.command()
        .args(["config", "set", "uv.path", fake.to_str().unwrap()])
        .assert()
        .success();
    let out = ctx.command().args(["--json", "doctor"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let tools: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let uv = tools
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "uv")
        .unwrap();
    assert_eq!(
        (uv["version"].as_str(), uv["origin"].as_str()),
        (Some("9.9.9"), Some("uv.path"))
    );
    // An explicitly configured uv is used whatever its version; doctor says it is unsupported.
    assert_eq!(uv["supported"], false, "{uv}");
    let out = ctx.command().arg("doctor").output().unwrap();
    assert!(
        stderr(&out).contains("uv 9.9.9 is outside the supported range >=0.13.0, <0.14.0"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_uv_on_path_outside_the_supported_range_is_passed_over_for_the_pinned_one() {
    use std::os::unix::fs::PermissionsExt as _;
    let mut ctx = context();
    let wheels = ctx.path().join("wheels");
    write_fake_uv_wheel(&wheels);
    let bin = path_without_uv(&ctx);
    let old = bin.join("uv");
    fs_err::write(&old, "#!/bin/sh\necho 'uv 0.4.30'\n").unwrap();
    fs_err::set_permissions(&old, std::fs::Permissions::from_mode(0o755)).unwrap();
    ctx.env("PATH", &bin)
        .env("PIP_FIND_LINKS", &wheels)
        .env("COMFYDOCK_PYTHON", real_python());
    ctx.init_workspace();

    let out = ctx.command().arg("doctor").output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let err = ctx.filter(&stderr(&out));
    assert!(
        err.contains("uv 0.4.30 at [TEMP]/bin/uv is outside the supported range >=0.13.0, <0.14.0"),
        "{err}"
    );
    assert!(err.contains(&format!("Installing uv {UV_VERSION}")), "{err}");
    let text = ctx.filter(&stdout(&out));
    assert!(text.contains(&format!("uv   {UV_VERSION}")), "{text}");

    // Next time the pinned one is reused, and doctor still says why the PATH one is not.
    let out = ctx.command().args(["--json", "doctor"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let tools: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let uv = tools
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "uv")
        .unwrap();
    assert_eq!(uv["origin"], "workspace tools", "{uv}");
    assert_eq!(uv["version"], UV_VERSION);
    assert_eq!(uv["supported"], true);
    assert_eq!(uv["passed_over"]["version"], "0.4.30", "{uv}");
    assert_eq!(
        uv["passed_over"]["path"]
            .as_str()
            .map(|p| ctx.filter(p))
            .as_deref(),
        Some("[TEMP]/bin/uv")
    );
}

//! `comfydock release` through the binary, on the release crate's fixture monorepo, with a real
//! local package index (pypiserver) — the nano banana regression as a user runs it.

#[path = "../../../comfydock-release/tests/support/mod.rs"]
mod support;

use crate::common::{context, stderr, stdout};
use crate::snapshot::comfydock_snapshot;

#[test]
fn nano_banana_regression_through_the_cli() {
    let mut ctx = context();
    // uv's own publish credentials pass through comfydock untouched.
    ctx.env("UV_PUBLISH_USERNAME", "ci")
        .env("UV_PUBLISH_PASSWORD", "ci");
    let index = support::index_server::IndexServer::start();
    let fixture = support::Fixture::new();
    fixture.tag("v1.0.0");
    // As the maintainer runs it: `cd repo && comfydock release …`, no `--repo`.
    let release = |args: &[&str]| {
        let mut cmd = ctx.command();
        cmd.current_dir(&fixture.root).arg("release").args(args);
        cmd.output().unwrap()
    };

    // The first release goes out as is.
    let out = release(&["publish", "--index-url", &index.simple_url()]);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));

    fixture.add_nano_banana_template();
    fixture.commit("Add nano banana");

    let release_command = |args: &[&str]| {
        let mut cmd = ctx.command();
        cmd.current_dir(&fixture.root).arg("release").args(args);
        cmd
    };
    let out = comfydock_snapshot!(ctx, release_command(&["status"]));
    assert!(out.status.success(), "{}", stderr(&out));
    let out = comfydock_snapshot!(ctx, release_command(&["--json", "status"]));
    assert!(out.status.success(), "{}", stderr(&out));
    let status: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let media_api = status["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["package"] == "tmpl-media-api");
    let media_api = media_api.unwrap_or_else(|| panic!("status does not name tmpl-media-api: {status}"));
    assert!(
        media_api["reasons"].to_string().contains("nano_banana"),
        "{media_api}"
    );

    let out = release(&["--json", "validate", "--index-url", &index.simple_url()]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a failed validation exits 1 in JSON mode too"
    );
    let report: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap_or_else(|e| {
        panic!(
            "--json prints exactly one document on failure ({e}): {}",
            stdout(&out)
        )
    });
    assert!(report["problems"].to_string().contains("nano_banana"), "{report}");
    let out = comfydock_snapshot!(
        ctx,
        release_command(&["validate", "--index-url", &index.simple_url()])
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "validate must fail while assets are missing"
    );
    assert!(stdout(&out).contains("nano_banana"), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("release problem(s) found"),
        "{}",
        stderr(&out)
    );

    fixture.add_nano_banana_assets();
    fixture.commit("Add nano banana assets");
    let out = release(&["bump"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "bump refuses while the meta version was not raised"
    );
    assert!(
        stderr(&out).contains("hint:") && stderr(&out).contains("--meta-version"),
        "{}",
        stderr(&out)
    );

    let out = release(&["bump", "--meta-version", "1.1.0"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("Bumped tmpl-media-api 0.1.0 -> 0.1.1"),
        "{}",
        stdout(&out)
    );
    let meta = fixture.read("pyproject.toml");
    assert!(meta.contains("tmpl-media-api==0.1.1"), "{meta}");
    fixture.commit("Release 1.1.0");

    // Bumping again keeps the raised version and says so instead of "Bumped X a -> a".
    let out = release(&["bump"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("Kept tmpl-media-api 0.1.1 (already raised since the last release)"),
        "{}",
        stdout(&out)
    );
    assert!(!stdout(&out).contains("0.1.1 -> 0.1.1"), "{}", stdout(&out));

    let out = release(&["validate", "--index-url", &index.simple_url()]);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    let out = release(&["publish", "--dry-run", "--index-url", &index.simple_url()]);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    assert!(
        stdout(&out).contains("tmpl-media-api 0.1.1: would be published")
            && stdout(&out).contains("tmpl-core 0.1.0: already on the index"),
        "human output names outcomes in words: {}",
        stdout(&out)
    );
    let out = release(&["--json", "publish", "--index-url", &index.simple_url()]);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    let report: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(report["complete"], true);
    let files = index.files();
    assert!(
        files.iter().any(|f| f.starts_with("tmpl_media_api-0.1.1")),
        "{files:?}"
    );
    assert!(
        files.iter().any(|f| f.starts_with("tmpl_meta-1.1.0")),
        "{files:?}"
    );
}

/// Issue 19's acceptance: a monorepo shaped like workflow_templates (generated asset folders, a
/// sync script, a frozen package, an unpinned blueprints package, JSON-only index files, inputs,
/// logos), released from inside the repository without `--repo`; both nano banana traps are
/// replayed and refused with their fix; pip installs the result.
#[test]
fn workflow_templates_release_refuses_both_nano_banana_traps() {
    use support::workflow_templates::{self, MANIFEST, add_template};

    let mut ctx = context();
    ctx.env("UV_PUBLISH_USERNAME", "ci")
        .env("UV_PUBLISH_PASSWORD", "ci");
    let index = support::index_server::IndexServer::start();
    let url = index.simple_url();
    let fixture = workflow_templates::fixture();
    let release = |args: &[&str]| {
        let mut cmd = ctx.command();
        cmd.current_dir(&fixture.root).arg("release").args(args);
        cmd.output().unwrap()
    };
    let ok = |out: &std::process::Output| {
        assert!(out.status.success(), "{}\n{}", stdout(out), stderr(out));
    };

    // The first release: everything goes out, tagged v0.11.96.
    ok(&release(&["publish", "--index-url", &url]));
    assert!(
        index
            .files()
            .iter()
            .any(|f| f.starts_with("wt_templates-0.11.96"))
    );

    // 0.11.97 adds a media-api template; the meta upload fails: a partial release.
    add_template(&fixture, "gemini_edit", "media-api", b"RIFF gemini thumbnail");
    fixture.sync();
    ok(&release(&[
        "bump",
        "--meta-version",
        "0.11.97",
        "--index-url",
        &url,
    ]));
    fixture.commit("Release 0.11.97");
    let meta_files = [
        "wt_templates-0.11.97-py3-none-any.whl",
        "wt_templates-0.11.97.tar.gz",
    ];
    for file in meta_files {
        index.reject_uploads_of(file);
    }
    let out = release(&["publish", "--index-url", &url]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("wt-templates-media-api 0.3.85: published"),
        "{}",
        stdout(&out)
    );
    for file in meta_files {
        index.accept_uploads_of(file);
    }

    // Trap 1: the nano banana lands in media-api after the partial release.
    add_template(
        &fixture,
        "nano_banana",
        "media-api",
        b"RIFF nano banana thumbnail",
    );
    fixture.sync();
    fixture.commit("Add nano banana");
    let out = release(&["validate", "--index-url", &url]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("packages/media_api: wt-templates-media-api 0.3.85 is on")
            && stdout(&out).contains("nano_banana-1.webp")
            && stdout(&out).contains("run `comfydock release bump`"),
        "{}",
        stdout(&out)
    );
    let files_before = index.files();
    let out = release(&["publish", "--index-url", &url]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("hint:"), "{}", stderr(&out));
    assert_eq!(index.files(), files_before, "nothing was uploaded");
    // The fix.
    let out = release(&["bump", "--index-url", &url]);
    ok(&out);
    assert!(
        stdout(&out).contains("Bumped wt-templates-media-api 0.3.85 -> 0.3.86"),
        "{}",
        stdout(&out)
    );
    fixture.commit("Bump past the partial release");

    // Trap 2: another template with its asset copied by hand; the sync is not run.
    add_template(&fixture, "nano_banana_pro", "media-api", b"RIFF nano banana pro");
    fs_err::copy(
        fixture.path("templates/nano_banana_pro-1.webp"),
        fixture
            .generated("media_api", "wt_templates_media_api")
            .join("nano_banana_pro-1.webp"),
    )
    .unwrap();
    fixture.commit("Add nano banana pro");
    let out = release(&["validate", "--no-sync", "--index-url", &url]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("template nano_banana_pro: not in")
            && stdout(&out).contains("not found in manifest")
            && stdout(&out).contains("run `python3 scripts/sync_bundles.py` and commit the manifest"),
        "{}",
        stdout(&out)
    );
    let out = release(&["publish", "--index-url", &url]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(MANIFEST) && stderr(&out).contains("rewrote it"),
        "the stale manifest stops the publication: {}",
        stderr(&out)
    );
    assert_eq!(index.files(), files_before, "nothing was uploaded");
    // The fix: commit what the sync generated (the refused publish ran it).
    assert!(fixture.read(MANIFEST).contains("\"id\": \"nano_banana_pro\""));
    fixture.commit("Sync manifest");
    ok(&release(&["validate", "--index-url", &url]));

    let out = release(&["publish", "--index-url", &url]);
    ok(&out);
    assert!(
        stdout(&out).contains("wt-templates 0.11.97: published"),
        "{}",
        stdout(&out)
    );
    assert!(fixture.git(&["tag", "--list"]).contains("v0.11.97"));

    // pip installs the meta package from the index: the new asset and its manifest entry are there.
    let venv = fixture.root.parent().unwrap().join("venv");
    support::run(
        std::process::Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv),
    );
    support::run(
        std::process::Command::new(venv.join("bin/pip"))
            .args([
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--no-cache-dir",
            ])
            .args(["--index-url", &url, "wt-templates==0.11.97"]),
    );
    let check = support::run(std::process::Command::new(venv.join("bin/python")).args([
        "-c",
        r#"
import hashlib, json
from importlib import resources
manifest = json.loads(resources.files("wt_templates_core").joinpath("manifest.json").read_text())
entry = next(t for t in manifest["templates"] if t["id"] == "nano_banana_pro")
asset = resources.files("wt_templates_media_api").joinpath("templates", "nano_banana_pro-1.webp").read_bytes()
assert entry["bundle"] == "media-api", entry
assert entry["assets"][0]["sha256"] == hashlib.sha256(asset).hexdigest(), entry
assert resources.files("wt_templates_media_api").joinpath("templates", "nano_banana-1.webp").is_file()
print("installed", entry["id"])
"#,
    ]));
    assert!(check.contains("installed nano_banana_pro"), "{check}");
}

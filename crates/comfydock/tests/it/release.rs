//! `comfydock release` through the binary, on the release crate's fixture monorepo, with a real
//! local package index (pypiserver) — the nano banana regression as a user runs it.

#[path = "../../../comfydock-release/tests/support/mod.rs"]
mod support;

use crate::common::{context, stderr, stdout};

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

    let out = release(&["--json", "status"]);
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
    let out = release(&["validate", "--index-url", &index.simple_url()]);
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

//! `[tool.comfydock.release]` on a monorepo shaped like workflow_templates: generated asset
//! folders, JSON-only index files, a frozen package, an unpinned blueprints package, inputs
//! served from the repository and logos.

mod support;

use comfydock_foundation::Hinted as _;
use comfydock_foundation::reporter::NoReporter;
use comfydock_release::bump::BumpAction;
use comfydock_release::status::Cause;
use comfydock_release::validate::ProblemKind;
use comfydock_release::{BumpOptions, ReleaseError, StatusOptions, ValidateOptions, bump, status, validate};
use support::workflow_templates::{self, add_template};

fn offline() -> ValidateOptions {
    ValidateOptions {
        offline: true,
        ..ValidateOptions::default()
    }
}

fn affected(fixture: &support::Fixture) -> Vec<String> {
    let report = status(&fixture.root, &StatusOptions::default()).unwrap();
    report.packages.iter().map(|p| p.package.clone()).collect()
}

#[test]
fn a_fresh_checkout_validates_after_the_sync_command_generates_the_package_folders() {
    let fixture = workflow_templates::fixture();
    fixture.tag("v0.11.96");
    // A fresh checkout has none of the gitignored generated folders.
    for (dir, name, _) in workflow_templates::PACKAGES {
        let generated = fixture.generated(dir, &name.replace('-', "_"));
        if generated.exists() {
            fs_err::remove_dir_all(generated).unwrap();
        }
    }
    let report = validate(&fixture.root, &offline(), &NoReporter).unwrap();
    assert!(report.is_ok(), "{:#?}", report.problems);
    assert!(
        fixture
            .generated("media_api", "wt_templates_media_api")
            .join("api_flux-1.webp")
            .is_file()
    );
    assert_eq!(
        fixture.git(&["status", "--porcelain"]),
        "",
        "the sync rewrote nothing tracked"
    );

    // Without the sync, the same checkout misses every asset.
    fs_err::remove_dir_all(fixture.generated("media_api", "wt_templates_media_api")).unwrap();
    let report = validate(
        &fixture.root,
        &ValidateOptions {
            skip_sync: true,
            ..offline()
        },
        &NoReporter,
    )
    .unwrap();
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.kind == ProblemKind::AssetMissingFromPackage
                && p.subject == "templates/api_flux-1.webp"),
        "{:#?}",
        report.problems
    );
}

#[test]
fn index_files_logos_inputs_and_blueprints_map_to_their_own_packages() {
    let fixture = workflow_templates::fixture();
    fixture.tag("v0.11.96");

    // Index files are listed under the frozen media-other bundle but ship in the JSON package only.
    fixture.edit("templates/index.es.json", "Básicos", "Fundamentos");
    assert_eq!(affected(&fixture), ["wt-templates-json", "wt-templates"]);
    let report = status(&fixture.root, &StatusOptions::default()).unwrap();
    assert!(matches!(
        report.packages[0].reasons[0].cause,
        Cause::JsonOnlyFile { .. }
    ));
    fixture.git(&["checkout", "--", "."]);

    // A logo goes with the logo package.
    fixture.write("templates/logo/bfl.png", b"\x89PNG new bfl logo");
    assert_eq!(affected(&fixture), ["wt-templates-json", "wt-templates"]);
    fixture.git(&["checkout", "--", "."]);

    // Inputs are served from the repository: no package changes, no warning.
    fixture.write("input/cat.png", b"\x89PNG another cat");
    let report = status(&fixture.root, &StatusOptions::default()).unwrap();
    assert!(report.packages.is_empty(), "{:#?}", report.packages);
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    fixture.git(&["checkout", "--", "."]);

    // Blueprints are built from files outside packages/ and are not pinned by the meta package.
    fixture.write("blueprints/upscale.json", r#"{"name": "upscale", "v": 2}"#);
    assert_eq!(affected(&fixture), ["wt-blueprints", "wt-templates"]);
    fixture.edit("pyproject.toml", "version = \"0.11.96\"", "version = \"0.11.97\"");
    let report = bump(&fixture.root, &BumpOptions::default(), &NoReporter).unwrap();
    assert_eq!(report.bumps.len(), 1);
    assert_eq!(
        (report.bumps[0].dir.as_str(), report.bumps[0].to.as_str()),
        ("blueprints", "0.1.6")
    );
    assert!(report.pins.is_empty(), "{:#?}", report.pins);
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    fixture.sync();
    let report = validate(&fixture.root, &offline(), &NoReporter).unwrap();
    assert!(report.is_ok(), "{:#?}", report.problems);
}

#[test]
fn a_frozen_package_is_never_bumped_without_an_explicit_flag() {
    let fixture = workflow_templates::fixture();
    fixture.tag("v0.11.96");
    add_template(&fixture, "video_new", "media-other", b"RIFF new video");
    fixture.edit("pyproject.toml", "version = \"0.11.96\"", "version = \"0.11.97\"");
    fixture.sync();
    fixture.commit("A template in a frozen bundle");

    let err = bump(&fixture.root, &BumpOptions::default(), &NoReporter).unwrap_err();
    assert!(
        matches!(err, ReleaseError::FrozenPackagesChanged { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("video_new"), "{err}");
    let hint = err.hint().unwrap();
    assert!(hint.contains("--allow-frozen media_other"), "{hint}");
    assert_eq!(fixture.git(&["status", "--porcelain"]), "", "nothing written");
    let report = validate(&fixture.root, &offline(), &NoReporter).unwrap();
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.kind == ProblemKind::FrozenPackageChanged),
        "{:#?}",
        report.problems
    );

    // Naming a package that is not frozen is a mistake, not a no-op.
    let err = bump(
        &fixture.root,
        &BumpOptions {
            allow_frozen: vec!["media_api".into()],
            ..BumpOptions::default()
        },
        &NoReporter,
    )
    .unwrap_err();
    assert!(matches!(err, ReleaseError::NotFrozen { .. }), "{err:?}");

    let report = bump(
        &fixture.root,
        &BumpOptions {
            allow_frozen: vec!["media_other".into()],
            ..BumpOptions::default()
        },
        &NoReporter,
    )
    .unwrap();
    let other = report.bumps.iter().find(|b| b.dir == "media_other").unwrap();
    assert_eq!((other.to.as_str(), other.action), ("0.3.230", BumpAction::Bumped));
}

#[test]
fn a_stale_manifest_is_refused_and_the_sync_command_is_the_fix() {
    let fixture = workflow_templates::fixture();
    fixture.tag("v0.11.96");
    // The template lands with its asset copied into the package by hand; the sync is not run.
    add_template(&fixture, "nano_banana", "media-api", b"RIFF nano banana");
    let generated = fixture.generated("media_api", "wt_templates_media_api");
    fs_err::copy(
        fixture.path("templates/nano_banana-1.webp"),
        generated.join("nano_banana-1.webp"),
    )
    .unwrap();
    fixture.commit("Add nano banana (assets copied by hand)");
    let manifest_before = fixture.read(workflow_templates::MANIFEST);

    // Checked as committed: the manifest lacks the template the runtime will look up.
    let report = validate(
        &fixture.root,
        &ValidateOptions {
            skip_sync: true,
            ..offline()
        },
        &NoReporter,
    )
    .unwrap();
    let missing = report
        .problems
        .iter()
        .find(|p| p.kind == ProblemKind::ManifestTemplateMissing)
        .unwrap_or_else(|| panic!("{:#?}", report.problems));
    assert_eq!(missing.subject, "template nano_banana");
    assert!(missing.message.contains("not found in manifest"), "{missing}");
    assert!(
        missing.message.contains("python3 scripts/sync_bundles.py"),
        "{missing}"
    );

    // With the sync: the manifest is regenerated, and the stale committed one is the problem.
    let report = validate(&fixture.root, &offline(), &NoReporter).unwrap();
    let stale = report
        .problems
        .iter()
        .find(|p| p.kind == ProblemKind::SyncChangedFile)
        .unwrap_or_else(|| panic!("{:#?}", report.problems));
    assert_eq!(stale.subject, workflow_templates::MANIFEST);
    assert!(stale.message.contains("commit"), "{stale}");
    assert!(
        !report
            .problems
            .iter()
            .any(|p| p.kind == ProblemKind::ManifestTemplateMissing),
        "{:#?}",
        report.problems
    );
    let manifest = fixture.read(workflow_templates::MANIFEST);
    assert_ne!(manifest, manifest_before);
    assert!(manifest.contains("\"id\": \"nano_banana\""), "{manifest}");

    // The fix: commit what the sync generated; the manifest problems are gone.
    fixture.commit("Sync");
    let report = validate(&fixture.root, &offline(), &NoReporter).unwrap();
    assert!(
        !report.problems.iter().any(|p| matches!(
            p.kind,
            ProblemKind::SyncChangedFile
                | ProblemKind::ManifestTemplateMissing
                | ProblemKind::ManifestAssetMissing
        )),
        "{:#?}",
        report.problems
    );

    // A manifest that lists an old hash of an asset is caught too.
    fixture.write("templates/nano_banana-1.webp", b"RIFF nano banana, retouched");
    fixture.commit("Retouch the thumbnail without syncing");
    let report = validate(
        &fixture.root,
        &ValidateOptions {
            skip_sync: true,
            ..offline()
        },
        &NoReporter,
    )
    .unwrap();
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.kind == ProblemKind::ManifestAssetOutdated
                && p.subject == "templates/nano_banana-1.webp"),
        "{:#?}",
        report.problems
    );
}

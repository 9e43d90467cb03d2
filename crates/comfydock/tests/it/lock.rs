//! The workspace lock guards mutating commands.

use std::time::{Duration, Instant};

use comfydock_foundation::reporter::NoReporter;
use comfydock_foundation::workspace_lock::WorkspaceLock;

use crate::common::context;
use crate::snapshot::comfydock_snapshot;

#[test]
fn a_mutating_command_waits_then_fails_naming_the_holder() {
    let mut ctx = context();
    ctx.env("COMFYDOCK_LOCK_TIMEOUT", "1");
    ctx.init_workspace();
    let lock_path = ctx.workspace.join(".metadata/workspace.lock");
    let held = WorkspaceLock::acquire(
        &lock_path,
        "comfydock create slow-env",
        Duration::from_secs(1),
        &NoReporter,
    )
    .unwrap();
    let start = Instant::now();
    let out = comfydock_snapshot!(
        ctx,
        ctx.command()
            .args(["config", "set", "civitai.url", "http://127.0.0.1:4000"])
    );
    let waited = start.elapsed();
    assert_eq!(out.status.code(), Some(1));
    assert!(waited >= Duration::from_secs(1), "did not wait: {waited:?}");
    let text = fs_err::read_to_string(ctx.workspace.join(".metadata/workspace.json")).unwrap();
    assert!(!text.contains("4000"), "nothing written while locked");

    drop(held);
    ctx.command()
        .args(["config", "set", "civitai.url", "http://127.0.0.1:4000"])
        .assert()
        .success();
}

#[test]
fn reading_commands_do_not_need_the_lock() {
    let ctx = context();
    ctx.init_workspace();
    let lock_path = ctx.workspace.join(".metadata/workspace.lock");
    let _held = WorkspaceLock::acquire(&lock_path, "holder", Duration::from_secs(1), &NoReporter).unwrap();
    ctx.command().args(["config", "list"]).assert().success();
}

//! Global CLI behaviour: help, version, usage errors, completions.

use crate::common::{context, stderr, stdout};
use crate::snapshot::comfydock_snapshot;

/// Filters the crate version out of `--version` output, so a release does not change snapshots.
const VERSION_FILTER: [(&str, &str); 1] = [(r"comfydock \d+\.\d+\.\d+\S*", "comfydock [VERSION]")];

#[test]
fn help_lists_every_command_with_a_description() {
    use clap::CommandFactory as _;
    let ctx = context();
    let out = ctx.command().arg("--help").output().unwrap();
    assert!(out.status.success());
    let text = stdout(&out);
    let commands: Vec<String> = comfydock_cli::Cli::command()
        .get_subcommands()
        .map(|c| c.get_name().to_owned())
        .collect();
    assert!(commands.len() >= 25, "{commands:?}");
    for command in &commands {
        let line = text
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{command} ")))
            .unwrap_or_else(|| panic!("`{command}` missing from --help:\n{text}"));
        let description = line.trim_start().trim_start_matches(command.as_str()).trim();
        assert!(!description.is_empty(), "`{command}` has no description: {line}");
    }
}

#[test]
fn help_output() {
    let ctx = context();
    comfydock_snapshot!(ctx, ctx.command().arg("--help"));
    comfydock_snapshot!(ctx, ctx.command().args(["node", "--help"]));
    comfydock_snapshot!(ctx, ctx.command().args(["model", "--help"]));
    comfydock_snapshot!(ctx, ctx.command().args(["serve", "--help"]));
    comfydock_snapshot!(ctx, ctx.command().arg("--version"), filters = VERSION_FILTER);
}

#[test]
fn version_prints_the_crate_version() {
    let out = context().command().arg("--version").output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        stdout(&out).trim(),
        format!("comfydock {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn usage_errors_exit_2() {
    let ctx = context();
    let out = comfydock_snapshot!(ctx, ctx.command().arg("no-such-command"));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let out = comfydock_snapshot!(ctx, ctx.command().args(["-c", "nonsense", "config", "list"]));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let out = comfydock_snapshot!(ctx, ctx.command().args(["completions", "no-such-shell"]));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let out = comfydock_snapshot!(ctx, ctx.command().args(["--verbose", "--quiet", "list"]));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

#[test]
fn completions_for_bash_mention_subcommands() {
    let out = context()
        .command()
        .args(["completions", "bash"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let script = stdout(&out);
    assert!(
        script.contains("comfydock") && script.contains("config"),
        "{script}"
    );
}

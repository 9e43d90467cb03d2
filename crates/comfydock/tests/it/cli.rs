//! Global CLI behaviour: help, version, usage errors, completions.

use crate::common::{context, stderr, stdout};
use crate::snapshot::comfydock_snapshot;

/// Filters the crate version out of `--version` output, so a release does not change snapshots.
const VERSION_FILTER: [(&str, &str); 1] = [(
    r"comfydock \d+\.\d+\.\d+\S*( \([0-9a-f]+ \d{4}-\d\d-\d\d\))?",
    "comfydock [VERSION]",
)];

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
fn version_prints_the_crate_version_and_the_commit_it_was_built_from() {
    let ctx = context();
    let git = |args: &[&str]| {
        let out = ctx
            .std_command("git")
            .arg("-C")
            .arg(env!("CARGO_MANIFEST_DIR"))
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}: {}", stderr(&out));
        stdout(&out).trim().to_owned()
    };
    let commit = git(&["rev-parse", "--short=9", "HEAD"]);
    let date = git(&["log", "-1", "--format=%cd", "--date=short", "HEAD"]);
    let out = ctx.command().arg("--version").output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        stdout(&out).trim(),
        format!("comfydock {} ({commit} {date})", env!("CARGO_PKG_VERSION"))
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

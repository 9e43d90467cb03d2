//! Global CLI behaviour: help, version, usage errors, completions.

use crate::common::{context, stderr, stdout};

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
    let out = ctx.command().arg("no-such-command").output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let out = ctx
        .command()
        .args(["-c", "nonsense", "config", "list"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("expected KEY=VALUE"), "{}", stderr(&out));
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

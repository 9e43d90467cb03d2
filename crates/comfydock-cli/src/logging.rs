//! tracing setup: `-v` counts map to filter directives; `RUST_LOG` overrides them.

use comfydock_foundation::env_vars;

const OUR_CRATES: &[&str] = &[
    "comfydock_cli",
    "comfydock_foundation",
    "comfydock_environments",
    "comfydock_bundles",
    "comfydock_deploy",
    "comfydock_models",
    "comfydock_workflow",
    "comfydock_serve",
    "comfydock_release",
];

/// Install the global subscriber writing to stderr.
pub fn setup(verbose: u8, quiet: bool) {
    let level = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "debug",
        (false, _) => "trace",
    };
    let directives = if verbose == 0 {
        level.to_owned()
    } else {
        let ours: Vec<String> = OUR_CRATES.iter().map(|c| format!("{c}={level}")).collect();
        format!("warn,{}", ours.join(","))
    };
    let filter = match std::env::var(env_vars::RUST_LOG) {
        Ok(user) if !user.is_empty() => tracing_subscriber::EnvFilter::new(user),
        _ => tracing_subscriber::EnvFilter::new(directives),
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(verbose > 1)
        .without_time()
        .try_init();
}

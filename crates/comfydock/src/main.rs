//! The `comfydock` binary: everything lives in `comfydock-cli`.

fn main() -> std::process::ExitCode {
    comfydock_cli::main()
}

//! Output snapshots: [`comfydock_snapshot!`] runs a command and snapshots its exit code, stdout
//! and stderr as one text, with everything that varies between runs (sandbox paths, durations,
//! timestamps, hashes, ports, tool versions) replaced by stable placeholders.
//!
//! Update snapshots with `INSTA_UPDATE=always cargo nextest run -p comfydock` (or
//! `cargo insta review`), then read every changed `.snap` file before committing it.

use std::path::Path;

use comfydock_test::context::TestContext;

/// Runs `$cmd` (anything with `.output()`: an `assert_cmd` or `std::process` command), snapshots
/// `success / exit_code / stdout / stderr` with [`filters`] applied, and returns the output so the
/// test can go on checking exit codes and files on disk.
///
/// `comfydock_snapshot!(ctx, cmd)` names the snapshot after the test (`-2`, `-3`, ... for the
/// following ones) and describes it with the command's source text. Options, in this order:
/// `filters = [(regex, replacement), ...]` applied before the common ones, and
/// `description = text` (for commands built in a loop, whose source text says little).
macro_rules! comfydock_snapshot {
    (@or , $default:expr) => {
        $default
    };
    (@or $value:expr, $default:expr) => {
        $value
    };
    ($ctx:expr, $cmd:expr $(, filters = $extra:expr)? $(, description = $description:expr)? $(,)?) => {{
        let output = $cmd.output().expect("the command runs");
        let text = $crate::snapshot::format_output(&output);
        let extra = comfydock_snapshot!(@or $($extra)?, ::std::vec::Vec::<(&str, &str)>::new());
        let description = ::std::string::ToString::to_string(
            &comfydock_snapshot!(@or $($description)?, stringify!($cmd)),
        );
        let mut settings = ::insta::Settings::clone_current();
        settings.set_omit_expression(true);
        settings.set_description(description);
        for (regex, replacement) in $crate::snapshot::filters(&$ctx, extra) {
            settings.add_filter(&regex, replacement);
        }
        settings.bind(|| ::insta::assert_snapshot!(text));
        output
    }};
}
pub(crate) use comfydock_snapshot;

/// The uv-style text of a finished command.
pub fn format_output(output: &std::process::Output) -> String {
    format!(
        "success: {}\nexit_code: {}\n----- stdout -----\n{}\n----- stderr -----\n{}\n",
        output.status.success(),
        output
            .status
            .code()
            .map_or_else(|| "signal".to_owned(), |code| code.to_string()),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    )
}

/// `(regex, replacement)` pairs for a snapshot of a command run in `ctx`: `extra` first (so a
/// test can name a path more precisely than the generic filters would), then the sandbox paths,
/// then values that change between runs.
pub fn filters<'a>(
    ctx: &TestContext,
    extra: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Vec<(String, String)> {
    let mut filters: Vec<(String, String)> = extra
        .into_iter()
        .map(|(regex, replacement)| (regex.to_owned(), replacement.to_owned()))
        .collect();
    // Fixtures are read from the crate's folder, wherever it is checked out.
    for dir in path_spellings(Path::new(env!("CARGO_MANIFEST_DIR"))) {
        filters.push((regex_escape(&dir), "[CRATE]".to_owned()));
    }
    for root in path_spellings(ctx.path()) {
        filters.push((regex_escape(&root), "[TEMP]".to_owned()));
    }
    filters.extend(
        [
            (r"\[TEMP\]/ws\b", "[WORKSPACE]"),
            (r"\[TEMP\]/home\b", "[HOME]"),
            (r"\[TEMP\]/uv-cache\b", "[UV_CACHE]"),
        ]
        .map(|(regex, replacement)| (regex.to_owned(), replacement.to_owned())),
    );
    // Stand-ins (ComfyUI repo, node repos, wheel index) live in their own temp folders.
    for tmp in path_spellings(&std::env::temp_dir()) {
        filters.push((
            format!(r"{}/[^/\s`'\x22]+", regex_escape(tmp.trim_end_matches('/'))),
            "[TEMP_DIR]".to_owned(),
        ));
    }
    filters.extend(
        [
            // Timestamps, then bare dates.
            (
                r"\b\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})?",
                "[TIMESTAMP]",
            ),
            (r"\b\d{4}-\d{2}-\d{2}\b", "[DATE]"),
            // File identity and times of the model index.
            (
                r#""(inode|mtime_ns|first_seen|last_seen|mtime|created_at|revoked_at)": \d+"#,
                r#""$1": "[NUMBER]""#,
            ),
            // sha256 / blake3 digests, then full git commit ids.
            (r"\b[0-9a-f]{64}\b", "[HASH]"),
            (r"\b[0-9a-f]{40}\b", "[COMMIT]"),
            (
                r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b",
                "[UUID]",
            ),
            // Short commit ids (`log`, `commit`, `rollback`, `status`); this also hides 7 to 12
            // digit numbers, which no snapshot relies on.
            (r"\b[0-9a-f]{7,12}\b", "[SHORT_COMMIT]"),
            // Durations: `1.2s`, `340ms`, `12µs`.
            (r"\b\d+(\.\d+)?(ms|µs|s)\b", "[TIME]"),
            // Ports of local stand-in servers (the closed port 9 stays as it is).
            (r"\b(127\.0\.0\.1|localhost):\d{5}\b", "$1:[PORT]"),
            (r"\bpid \d+", "pid [PID]"),
            (r#""pid": \d+"#, r#""pid": "[PID]""#),
        ]
        .map(|(regex, replacement)| (regex.to_owned(), replacement.to_owned())),
    );
    filters
}

/// `path` as given and canonicalised (they differ when the temp folder is behind a symlink).
fn path_spellings(path: &Path) -> Vec<String> {
    let mut spellings = Vec::new();
    if let Ok(canonical) = fs_err::canonicalize(path) {
        spellings.push(canonical.to_string_lossy().into_owned());
    }
    let given = path.to_string_lossy().into_owned();
    if !spellings.contains(&given) {
        spellings.push(given);
    }
    spellings
}

/// `text` as a regex matching itself literally.
pub fn regex_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if "\\.+*?()|[]{}^$#&-~".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

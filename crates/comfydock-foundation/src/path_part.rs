//! One rule for untrusted strings that become parts of a path on this machine.
//!
//! Node keys and folder names, registry ids and versions, workflow names and model targets come
//! from manifests, bundles, teammates' `.cec` folders and registry answers. Each part of such a
//! path must be a plain portable name ([`check`]): it can never climb out of (`..`), replace
//! (absolute paths) or escape (separators, drive letters) the folder it is joined to, and it is a
//! valid file name on Linux, macOS and Windows. [`join`] is the one way to append such a string
//! to a trusted base folder; the rule is also checked where the data enters (manifest read,
//! registry answer, bundle import) so a bad value is refused with its name.

use std::path::{Path, PathBuf};

use crate::Hinted;

/// Longest part, in bytes (the usual file name limit).
pub const MAX_PART_BYTES: usize = 255;

/// A string that may not become (part of) a path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{}` cannot be used as a file or folder name: {reason}", crate::display_text::truncate(.value, 80))]
pub struct UnsafePathPart {
    /// The whole value as received.
    pub value: String,
    pub reason: &'static str,
}

impl Hinted for UnsafePathPart {
    fn hint(&self) -> Option<String> {
        Some(
            "names must be plain: no `/`, `\\`, `:`, `..`, control characters or `<>\"|?*`; fix the manifest entry, or ask the author of the bundle or registry entry for a corrected one"
                .into(),
        )
    }
}

/// Why `part` is not a plain portable name, if it is not.
fn problem(part: &str) -> Option<&'static str> {
    const RESERVED: &[&str] = &[
        "con", "prn", "aux", "nul", "com1", "com2", "com3", "com4", "com5", "com6", "com7", "com8", "com9",
        "lpt1", "lpt2", "lpt3", "lpt4", "lpt5", "lpt6", "lpt7", "lpt8", "lpt9",
    ];
    if part.is_empty() {
        return Some("it is empty");
    }
    if part == "." || part == ".." {
        return Some("it refers to a folder itself or its parent");
    }
    if part.len() > MAX_PART_BYTES {
        return Some("it is longer than 255 bytes");
    }
    if part.contains(['/', '\\']) {
        return Some("it contains a path separator");
    }
    if part.contains(':') {
        return Some("it contains `:` (a drive or stream on Windows)");
    }
    if part.chars().any(char::is_control) {
        return Some("it contains a control character");
    }
    if part.contains(['<', '>', '"', '|', '?', '*']) {
        return Some("it contains a character Windows forbids in names (`<>\"|?*`)");
    }
    if part.ends_with(['.', ' ']) {
        return Some("it ends with a dot or a space");
    }
    let stem = part
        .split('.')
        .next()
        .unwrap_or(part)
        .trim_end()
        .to_ascii_lowercase();
    if RESERVED.contains(&stem.as_str()) {
        return Some("it is a device name on Windows");
    }
    None
}

/// Check that `part` is one plain portable name.
pub fn check(part: &str) -> Result<(), UnsafePathPart> {
    problem(part).map_or(Ok(()), |reason| {
        Err(UnsafePathPart {
            value: part.to_owned(),
            reason,
        })
    })
}

/// Whether `part` is one plain portable name.
pub fn is_plain(part: &str) -> bool {
    problem(part).is_none()
}

/// Check a relative path of plain names separated by `/` (`portraits/flux`).
pub fn check_relative(relative: &str) -> Result<(), UnsafePathPart> {
    if relative.is_empty() {
        return Err(UnsafePathPart {
            value: relative.to_owned(),
            reason: "it is empty",
        });
    }
    for part in relative.split('/') {
        if let Some(reason) = problem(part) {
            return Err(UnsafePathPart {
                value: relative.to_owned(),
                reason,
            });
        }
    }
    Ok(())
}

/// `base` joined with `relative` (plain names separated by `/`), which therefore stays inside
/// `base`. The one way to turn untrusted strings into paths.
pub fn join(base: &Path, relative: &str) -> Result<PathBuf, UnsafePathPart> {
    check_relative(relative)?;
    let mut out = base.to_path_buf();
    out.extend(relative.split('/'));
    Ok(out)
}

/// A plain portable name close to `part`, for hints: every forbidden character becomes `-`,
/// trailing dots and spaces are dropped, device names get a `-file` suffix, and an empty result
/// becomes `unnamed`. `suggest(x) == x` exactly when `x` is already plain.
pub fn suggest(part: &str) -> String {
    if is_plain(part) {
        return part.to_owned();
    }
    let mut out: String = part
        .chars()
        .map(|c| {
            if c.is_control() || matches!(c, '/' | '\\' | ':' | '<' | '>' | '"' | '|' | '?' | '*') {
                '-'
            } else {
                c
            }
        })
        .collect();
    while out.ends_with(['.', ' ']) {
        out.pop();
    }
    if out.len() > MAX_PART_BYTES {
        let mut end = MAX_PART_BYTES;
        while !out.is_char_boundary(end) {
            end -= 1;
        }
        out.truncate(end);
    }
    if out.is_empty() || out.chars().all(|c| c == '.') {
        return "unnamed".to_owned();
    }
    if !is_plain(&out) {
        out.push_str("-file");
    }
    out
}

/// [`suggest`] for each `/`-separated part of a relative name (`scene:v2` → `scene-v2`).
pub fn suggest_relative(relative: &str) -> String {
    relative.split('/').map(suggest).collect::<Vec<_>>().join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_names_pass() {
        for ok in [
            "comfyui-impact-pack",
            "ComfyUI_Foo.bar",
            "1.0.0",
            "1.0.0+build.5",
            "v2-rc1",
            "Ölgemälde",
            "scene v2",
            "ｆｕｌｌ",
            "a.b",
            "console",
        ] {
            assert_eq!(check(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn hostile_names_fail() {
        let long = "a".repeat(256);
        for bad in [
            "",
            ".",
            "..",
            "../x",
            "../../../../x",
            "a/b",
            "a\\b",
            "/etc",
            "C:",
            "c:x",
            "x\0y",
            "x\ny",
            "x\u{1b}[31m",
            "a*",
            "a?",
            "a|b",
            "a<b",
            "a\"b",
            "trailing.",
            "trailing ",
            "CON",
            "nul.txt",
            "com1",
            long.as_str(),
        ] {
            assert!(check(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn suggestions_are_plain() {
        for (bad, good) in [
            ("scene:v2", "scene-v2"),
            ("a\\b", "a-b"),
            ("x?*", "x--"),
            ("trailing. ", "trailing"),
            ("..", "unnamed"),
            ("", "unnamed"),
            ("CON", "CON-file"),
            ("fine", "fine"),
        ] {
            assert_eq!(suggest(bad), good, "{bad:?}");
            assert!(is_plain(&suggest(bad)), "{bad:?}");
        }
        assert_eq!(suggest_relative("portraits/scene:v2"), "portraits/scene-v2");
        assert!(is_plain(&suggest(&"é".repeat(200))));
    }

    #[test]
    fn join_stays_inside_the_base() {
        let base = Path::new("/w/cache");
        assert_eq!(join(base, "a/b.json").unwrap(), Path::new("/w/cache/a/b.json"));
        for bad in ["", "a//b", "a/../..", "/abs", "a/./b", "a/", "..\\x", "x/C:"] {
            assert!(join(base, bad).is_err(), "{bad:?} was joined");
        }
        let err = join(base, "x/../../y").unwrap_err();
        assert_eq!(err.value, "x/../../y");
        assert!(err.to_string().contains("x/../../y"), "{err}");
        assert!(err.hint().is_some());
    }
}

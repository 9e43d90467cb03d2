//! Python project names compared the way package indexes compare them (PEP 503): `Foo_Bar`,
//! `foo.bar` and `FOO--bar` are one project, `foo-bar`.

/// The PEP 503 normalised form of a project name: lower case, and every run of `-`, `_` and
/// `.` becomes a single `-`.
pub fn normalize(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut in_separator_run = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            if !in_separator_run {
                out.push('-');
            }
            in_separator_run = true;
        } else {
            out.push(c.to_ascii_lowercase());
            in_separator_run = false;
        }
    }
    out
}

/// The normalised project name a PEP 508 requirement starts with (`Foo_Bar[x]>=1` →
/// `foo-bar`): the leading run of letters, digits, `-`, `_` and `.`, after any spaces.
pub fn of_requirement(requirement: &str) -> String {
    let requirement = requirement.trim_start();
    let end = requirement
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
        .unwrap_or(requirement.len());
    normalize(&requirement[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_of_separators_become_one_dash_and_letters_lower_case() {
        assert_eq!(normalize("a..b"), "a-b");
        assert_eq!(normalize("A_B-c"), "a-b-c");
        assert_eq!(normalize("x---y"), "x-y");
        assert_eq!(normalize("Comfy__Tiny.-A"), "comfy-tiny-a");
        assert_eq!(normalize("torch"), "torch");
        assert_eq!(normalize(""), "");
    }

    #[test]
    fn the_name_of_a_requirement_ignores_extras_specifiers_and_markers() {
        assert_eq!(of_requirement("Comfy_Tiny.A[x]>=1"), "comfy-tiny-a");
        assert_eq!(of_requirement("a..b==1.0"), "a-b");
        assert_eq!(of_requirement("  Pillow ; python_version > '3'"), "pillow");
        assert_eq!(
            of_requirement("my.pkg @ https://example.test/my.pkg-1.0.tar.gz"),
            "my-pkg"
        );
        assert_eq!(of_requirement("numpy"), "numpy");
        assert_eq!(of_requirement(">=1"), "");
    }
}

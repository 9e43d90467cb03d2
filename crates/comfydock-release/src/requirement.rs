//! The few parts of a PEP 508 dependency string the release manager needs: the project name
//! and the version specifier, with their positions so a pin can be rewritten in place.

use std::ops::Range;

/// A dependency string such as `media-api[extra]==0.3.6 ; python_version >= "3.9"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    text: String,
    name: Range<usize>,
    /// Where the version specifier sits (empty range right after name/extras when absent).
    specifier: Range<usize>,
    /// A direct reference (`name @ url`): it has no version specifier to pin.
    direct_reference: bool,
}

impl Requirement {
    /// Parse the name and specifier of a dependency string; `None` when it has no project name.
    pub fn parse(text: &str) -> Option<Self> {
        let start = text.len() - text.trim_start().len();
        let name_len = text[start..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || "-_.".contains(c)))
            .unwrap_or(text.len() - start);
        if name_len == 0 {
            return None;
        }
        let name = start..start + name_len;
        let mut cursor = skip_spaces(text, name.end);
        if text[cursor..].starts_with('[') {
            cursor = text[cursor..].find(']').map_or(text.len(), |i| cursor + i + 1);
            cursor = skip_spaces(text, cursor);
        }
        if text[cursor..].starts_with('@') {
            return Some(Self {
                text: text.to_owned(),
                name,
                specifier: cursor..cursor,
                direct_reference: true,
            });
        }
        let specifier = if text[cursor..].starts_with('(') {
            let close = text[cursor..].find(')').map_or(text.len(), |i| cursor + i);
            trimmed_range(text, cursor + 1..close)
        } else {
            let end = text[cursor..].find(';').map_or(text.len(), |i| cursor + i);
            let range = trimmed_range(text, cursor..end);
            if range.is_empty() {
                name_or_extras_end(text, &name)..name_or_extras_end(text, &name)
            } else {
                range
            }
        };
        Some(Self {
            text: text.to_owned(),
            name,
            specifier,
            direct_reference: false,
        })
    }

    /// The whole dependency string.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The project name as written.
    pub fn name(&self) -> &str {
        &self.text[self.name.clone()]
    }

    /// The PEP 503 normalised project name.
    pub fn normalized_name(&self) -> String {
        comfydock_foundation::package_name::normalize(self.name())
    }

    /// The version specifier as written (`==0.3.6`, `>=0.3.4`, or empty).
    pub fn specifier(&self) -> &str {
        &self.text[self.specifier.clone()]
    }

    /// The version when the specifier is exactly one `==` pin without wildcards.
    pub fn exact_pin(&self) -> Option<&str> {
        let version = self.specifier().strip_prefix("==")?.trim();
        let exact = !version.is_empty()
            && !version.starts_with('=')
            && !version.contains([',', '*', ' ', '<', '>', '!', '~']);
        exact.then_some(version)
    }

    /// The same dependency string with its specifier replaced by `==version`; everything else
    /// (extras, markers, spacing) stays as written. `None` for direct references.
    pub fn with_exact_pin(&self, version: &str) -> Option<String> {
        if self.direct_reference {
            return None;
        }
        let mut out = String::with_capacity(self.text.len() + version.len());
        out.push_str(&self.text[..self.specifier.start]);
        out.push_str("==");
        out.push_str(version);
        out.push_str(&self.text[self.specifier.end..]);
        Some(out)
    }
}

fn skip_spaces(text: &str, from: usize) -> usize {
    from + (text[from..].len() - text[from..].trim_start().len())
}

fn trimmed_range(text: &str, range: Range<usize>) -> Range<usize> {
    let slice = &text[range.clone()];
    let start = range.start + (slice.len() - slice.trim_start().len());
    let end = range.start + slice.trim_end().len();
    start..end.max(start)
}

fn name_or_extras_end(text: &str, name: &Range<usize>) -> usize {
    let after = &text[name.end..];
    let trimmed = after.trim_start();
    if trimmed.starts_with('[') {
        let offset = name.end + (after.len() - trimmed.len());
        trimmed.find(']').map_or(name.end, |i| offset + i + 1)
    } else {
        name.end
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_name_and_pin() {
        let req = Requirement::parse("comfyui-workflow-templates-media-api==0.3.6").unwrap();
        assert_eq!(req.name(), "comfyui-workflow-templates-media-api");
        assert_eq!(req.exact_pin(), Some("0.3.6"));
    }

    #[test]
    fn greater_equal_is_not_a_pin_and_is_rewritten() {
        let req = Requirement::parse("media-api >= 0.3.4 ; python_version >= '3.9'").unwrap();
        assert_eq!(req.specifier(), ">= 0.3.4");
        assert_eq!(req.exact_pin(), None);
        assert_eq!(
            req.with_exact_pin("0.3.7").unwrap(),
            "media-api ==0.3.7 ; python_version >= '3.9'"
        );
    }

    #[test]
    fn bare_name_with_extras_gets_a_pin_after_the_extras() {
        let req = Requirement::parse("Media_API[all]").unwrap();
        assert_eq!(req.normalized_name(), "media-api");
        assert_eq!(req.with_exact_pin("1.0.0").unwrap(), "Media_API[all]==1.0.0");
    }

    #[test]
    fn wildcards_and_ranges_are_not_exact() {
        for spec in ["x==1.*", "x==1.0,<2", "x===1.0", "x~=1.0"] {
            assert_eq!(Requirement::parse(spec).unwrap().exact_pin(), None, "{spec}");
        }
    }

    #[test]
    fn direct_references_cannot_be_pinned() {
        let req = Requirement::parse("x @ https://example.invalid/x.whl").unwrap();
        assert_eq!(req.with_exact_pin("1"), None);
    }

    #[test]
    fn normalizes_names() {
        let req = Requirement::parse("Foo.__Bar-baz==1").unwrap();
        assert_eq!(req.normalized_name(), "foo-bar-baz");
    }
}

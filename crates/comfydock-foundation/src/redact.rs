//! One way to show a URL: without its credentials.
//!
//! URLs come from users, manifests, bundles and registries and may carry a password
//! (`https://user:pw@host/…`) or a token in the query (`?access_token=…`). Every display, log line,
//! error message and stored source goes through [`RedactedUrl`] (or [`redact_text`] for text that
//! may contain URLs, such as a command line or a program's stderr), so a secret never leaves the
//! process by accident. Sources with credentials are refused before they are stored
//! ([`credentials_in`]).

use std::fmt;

/// What replaces a secret.
pub const MASK: &str = "***";

/// Query parameter names (compared case-insensitively) whose values are secrets; any name
/// containing `token`, `secret`, `password`, `signature` or `credential` is one too.
const SECRET_KEYS: &[&str] = &[
    "key",
    "api_key",
    "apikey",
    "sig",
    "auth",
    "authorization",
    "pass",
    "pwd",
];
const SECRET_PARTS: &[&str] = &["token", "secret", "password", "signature", "credential"];

/// Whether a query parameter named `key` carries a secret.
pub fn is_secret_key(key: &str) -> bool {
    let lower = key.to_ascii_lowercase();
    SECRET_KEYS.contains(&lower.as_str()) || SECRET_PARTS.iter().any(|p| lower.contains(p))
}

/// A URL displayed with user info and token-like query values masked.
#[derive(Debug, Clone, Copy)]
pub struct RedactedUrl<'a>(pub &'a str);

impl fmt::Display for RedactedUrl<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact_url(self.0))
    }
}

/// `url` with its user info replaced by `***` and secret query values by `***`. A URL without
/// secrets, and text that is not a URL, are returned byte for byte, except that anything before an `@` in an scp-like address with a
/// password (`user:pw@host:path`) is masked.
pub fn redact_url(url: &str) -> String {
    // Without `://` (`user:pw@host:path`, `mailto:`-like forms) there is no host part to parse.
    let parsed = url.contains("://").then(|| url::Url::parse(url).ok()).flatten();
    let Some(mut parsed) = parsed else {
        return redact_unparsed(url);
    };
    // A password always; a user name too over http(s), where tokens travel as user names.
    let http = parsed.scheme().eq_ignore_ascii_case("http") || parsed.scheme().eq_ignore_ascii_case("https");
    let user_info = parsed.password().is_some() || (http && !parsed.username().is_empty());
    let secret_query = parsed.query().is_some() && parsed.query_pairs().any(|(k, _)| is_secret_key(&k));
    if !user_info && !secret_query {
        // Re-serialising would normalise it (a trailing `/`, percent-encoding): keep what was given.
        return url.to_owned();
    }
    if user_info {
        let _ = parsed.set_password(None);
        let _ = parsed.set_username(MASK);
    }
    if secret_query {
        let pairs: Vec<(String, String)> = parsed
            .query_pairs()
            .map(|(k, v)| {
                let value = if is_secret_key(&k) {
                    MASK.to_owned()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), value)
            })
            .collect();
        parsed.query_pairs_mut().clear().extend_pairs(pairs);
    }
    parsed.to_string()
}

/// Text that did not parse as a URL: mask user info before an `@` when it holds a `:` (a
/// password), as in `user:pw@host:path`.
fn redact_unparsed(text: &str) -> String {
    match text.split_once('@') {
        Some((user, rest)) if user.contains(':') && !user.contains('/') => format!("{MASK}@{rest}"),
        _ => text.to_owned(),
    }
}

/// `text` (a command line, a program's stderr, a message) with every URL in it redacted.
pub fn redact_text(text: &str) -> String {
    let is_boundary = |c: char| c.is_whitespace() || matches!(c, '\'' | '"' | '<' | '>' | '`' | '(' | ')');
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let start = rest[..at]
            .rfind(is_boundary)
            .map_or(0, |i| i + rest[i..].chars().next().map_or(1, char::len_utf8));
        let end = rest[at..].find(is_boundary).map_or(rest.len(), |i| at + i);
        out.push_str(&rest[..start]);
        out.push_str(&redact_url(&rest[start..end]));
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// The credentials a URL carries, named for a message (`a password`, `the query parameter
/// `token``), or `None`.
pub fn credentials_in(url: &str) -> Option<String> {
    let parsed = url::Url::parse(url).ok()?;
    if parsed.password().is_some() {
        return Some("a password in the URL".to_owned());
    }
    if !parsed.username().is_empty() && parsed.scheme().starts_with("http") {
        return Some("a user name in the URL".to_owned());
    }
    parsed
        .query_pairs()
        .find(|(k, _)| is_secret_key(k))
        .map(|(k, _)| format!("the query parameter `{k}`"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_without_secrets_is_kept_byte_for_byte() {
        for text in [
            "(https://, ssh://, file://, user@host:path)",
            "postgres://…",
            "http://127.0.0.1:4000",
            "see https://example.org/a%20b?x=1 for more",
        ] {
            assert_eq!(redact_text(text), text);
        }
    }

    #[test]
    fn secrets_are_masked() {
        for (raw, shown) in [
            (
                "http://u:pw@host/f?access_token=abc&x=1",
                "http://***@host/f?access_token=***&x=1",
            ),
            (
                "https://host/f?token=t&Signature=s",
                "https://host/f?token=***&Signature=***",
            ),
            (
                "https://host/f?X-Amz-Credential=c&ok=1",
                "https://host/f?X-Amz-Credential=***&ok=1",
            ),
            ("https://host/plain/path", "https://host/plain/path"),
            ("https://user@host/x.git", "https://***@host/x.git"),
            ("u:pw@host:x/y.git", "***@host:x/y.git"),
            ("git@github.com:a/b.git", "git@github.com:a/b.git"),
            ("ssh://git@host/x.git", "ssh://git@host/x.git"),
            ("ssh://git:pw@host/x.git", "ssh://***@host/x.git"),
            ("not a url", "not a url"),
        ] {
            assert_eq!(redact_url(raw), shown, "{raw}");
            assert_eq!(RedactedUrl(raw).to_string(), shown);
        }
    }

    #[test]
    fn urls_inside_text_are_masked() {
        let text = "git clone --mirror -- 'https://u:hunter2@host/x.git' /tmp/m\nfatal: unable to access 'https://u:hunter2@host/x.git/': 403 (see https://host/?token=zzz)";
        let shown = redact_text(text);
        assert!(!shown.contains("hunter2") && !shown.contains("zzz"), "{shown}");
        assert!(shown.contains("'https://***@host/x.git'"), "{shown}");
        assert!(shown.starts_with("git clone --mirror -- '"), "{shown}");
        assert_eq!(redact_text("no urls here: é"), "no urls here: é");
        assert_eq!(
            redact_text("ünïcode https://a:b@h/ é"),
            "ünïcode https://***@h/ é"
        );
    }

    #[test]
    fn credentials_are_named() {
        assert_eq!(credentials_in("https://host/f"), None);
        assert!(credentials_in("http://u:pw@host/f").unwrap().contains("password"));
        assert!(
            credentials_in("https://host/f?access_token=x")
                .unwrap()
                .contains("access_token")
        );
        assert!(credentials_in("https://host/f?hf_token=x").is_some());
    }
}

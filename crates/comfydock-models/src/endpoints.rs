//! Where Hugging Face and Civitai live (configurable), which token may go where, and URL
//! normalisation for both.
//!
//! A token is attached only to a request whose host (and port) is the configured host of the
//! service it belongs to. Redirects are followed by hand, so a redirect to another host (a CDN,
//! or an attacker) never receives `Authorization`.

use std::fmt;

use url::Url;

use crate::index::SourceKind;

/// The configured service endpoints (`huggingface.endpoint`, `civitai.url` settings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    pub huggingface: Url,
    pub civitai: Url,
}

/// API tokens. `Debug` never shows them.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Tokens {
    pub huggingface: Option<String>,
    pub civitai: Option<String>,
}

impl fmt::Debug for Tokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = |token: &Option<String>| if token.is_some() { "set" } else { "unset" };
        f.debug_struct("Tokens")
            .field("huggingface", &state(&self.huggingface))
            .field("civitai", &state(&self.civitai))
            .finish()
    }
}

/// Whether two URLs name the same host and port.
pub(crate) fn same_host(a: &Url, b: &Url) -> bool {
    a.host_str().map(str::to_ascii_lowercase) == b.host_str().map(str::to_ascii_lowercase)
        && a.port_or_known_default() == b.port_or_known_default()
}

/// The public Hugging Face host; links to it are served from the configured endpoint.
const HUGGINGFACE_HOST: &str = "huggingface.co";

impl Endpoints {
    /// The `Authorization` value for a request to `url`, if a token belongs to its host.
    pub(crate) fn authorization_for(&self, url: &Url, tokens: &Tokens) -> Option<String> {
        if same_host(url, &self.huggingface) {
            return tokens.huggingface.as_ref().map(|t| format!("Bearer {t}"));
        }
        if same_host(url, &self.civitai) {
            return tokens.civitai.as_ref().map(|t| format!("Bearer {t}"));
        }
        None
    }

    /// What kind of source a URL is, by host.
    pub fn classify(&self, url: &str) -> SourceKind {
        let Ok(parsed) = Url::parse(url) else {
            return SourceKind::Url;
        };
        if same_host(&parsed, &self.huggingface) || parsed.host_str() == Some(HUGGINGFACE_HOST) {
            SourceKind::Huggingface
        } else if same_host(&parsed, &self.civitai) {
            SourceKind::Civitai
        } else {
            SourceKind::Url
        }
    }

    /// Hugging Face links: `huggingface.co` links move to the configured endpoint, and
    /// `/blob/` (the web page) becomes `/resolve/` (the file). Other URLs are returned as given.
    pub fn normalize_huggingface(&self, url: &Url) -> Url {
        let on_endpoint = same_host(url, &self.huggingface);
        if !on_endpoint && url.host_str() != Some(HUGGINGFACE_HOST) {
            return url.clone();
        }
        let mut segments: Vec<&str> = url.path_segments().map(Iterator::collect).unwrap_or_default();
        // <org>/<repo>/blob/<rev>/<file...>
        if segments.len() >= 5 && segments[2] == "blob" {
            segments[2] = "resolve";
        }
        let mut out = self.huggingface.clone();
        let base = self.huggingface.path().trim_end_matches('/');
        out.set_path(&format!("{base}/{}", segments.join("/")));
        out.set_query(url.query());
        out
    }

    /// The Civitai model-version id or model id a Civitai URL names.
    pub fn civitai_target(&self, url: &Url) -> Option<CivitaiTarget> {
        if !same_host(url, &self.civitai) {
            return None;
        }
        let base = self.civitai.path().trim_end_matches('/');
        let path = url.path().strip_prefix(base).unwrap_or(url.path());
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let number = |text: &str| text.parse::<u64>().ok();
        let version_in_query = url
            .query_pairs()
            .find(|(key, _)| key == "modelVersionId")
            .and_then(|(_, value)| number(&value));
        match segments.as_slice() {
            ["models", id, ..] => Some(match version_in_query {
                Some(version) => CivitaiTarget::Version(version),
                None => CivitaiTarget::Model(number(id)?),
            }),
            ["api", "v1", "model-versions", id] => Some(CivitaiTarget::Version(number(id)?)),
            ["api", "v1", "models", id] => Some(CivitaiTarget::Model(number(id)?)),
            ["api", "download", "models", id] => Some(CivitaiTarget::Download(number(id)?)),
            _ => None,
        }
    }

    /// `<civitai>/api/...` on the configured host.
    pub(crate) fn civitai_api(&self, path: &str) -> Url {
        let mut url = self.civitai.clone();
        let base = self.civitai.path().trim_end_matches('/');
        url.set_path(&format!("{base}{path}"));
        url.set_query(None);
        url
    }
}

/// What a Civitai URL points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CivitaiTarget {
    /// A model page or `/api/v1/models/{id}`: its latest version.
    Model(u64),
    /// A model-version page (`?modelVersionId=`) or `/api/v1/model-versions/{id}`.
    Version(u64),
    /// A direct download link `/api/download/models/{version}`.
    Download(u64),
}

/// A URL safe to show (user info and secret query values masked); see
/// [`comfydock_foundation::redact`], the one redaction rule.
pub fn redact_url(url: &str) -> String {
    comfydock_foundation::redact::redact_url(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoints() -> Endpoints {
        Endpoints {
            huggingface: Url::parse("https://hf.example").unwrap(),
            civitai: Url::parse("https://civitai.example").unwrap(),
        }
    }

    #[test]
    fn tokens_only_for_their_own_host() {
        let tokens = Tokens {
            huggingface: Some("hf_secret".into()),
            civitai: Some("cv_secret".into()),
        };
        let e = endpoints();
        let auth = |url: &str| e.authorization_for(&Url::parse(url).unwrap(), &tokens);
        assert_eq!(
            auth("https://hf.example/a/b/resolve/main/x"),
            Some("Bearer hf_secret".into())
        );
        assert_eq!(
            auth("https://civitai.example/api/download/models/1"),
            Some("Bearer cv_secret".into())
        );
        assert_eq!(auth("https://cdn.example/x"), None);
        assert_eq!(
            auth("https://hf.example:8443/x"),
            None,
            "another port is another origin"
        );
        assert_eq!(auth("https://sub.hf.example/x"), None);
        assert!(!format!("{tokens:?}").contains("secret"));
    }

    #[test]
    fn huggingface_blob_links_become_resolve_links_on_the_endpoint() {
        let e = endpoints();
        let normalize = |url: &str| e.normalize_huggingface(&Url::parse(url).unwrap()).to_string();
        assert_eq!(
            normalize("https://huggingface.co/org/repo/blob/main/sub/x.safetensors?download=true"),
            "https://hf.example/org/repo/resolve/main/sub/x.safetensors?download=true"
        );
        assert_eq!(
            normalize("https://hf.example/org/repo/resolve/main/x.safetensors"),
            "https://hf.example/org/repo/resolve/main/x.safetensors"
        );
        assert_eq!(
            normalize("https://other.example/org/repo/blob/main/x"),
            "https://other.example/org/repo/blob/main/x"
        );
    }

    #[test]
    fn civitai_targets() {
        let e = endpoints();
        let target = |url: &str| e.civitai_target(&Url::parse(url).unwrap());
        assert_eq!(
            target("https://civitai.example/models/4201/realistic"),
            Some(CivitaiTarget::Model(4201))
        );
        assert_eq!(
            target("https://civitai.example/models/4201/realistic?modelVersionId=130072"),
            Some(CivitaiTarget::Version(130_072))
        );
        assert_eq!(
            target("https://civitai.example/api/v1/model-versions/9"),
            Some(CivitaiTarget::Version(9))
        );
        assert_eq!(
            target("https://civitai.example/api/v1/models/5"),
            Some(CivitaiTarget::Model(5))
        );
        assert_eq!(
            target("https://civitai.example/api/download/models/7"),
            Some(CivitaiTarget::Download(7))
        );
        assert_eq!(target("https://civitai.example/user/x"), None);
        assert_eq!(target("https://elsewhere.example/models/1"), None);
        assert_eq!(
            e.classify("https://civitai.example/models/1"),
            SourceKind::Civitai
        );
        assert_eq!(e.classify("https://huggingface.co/a/b"), SourceKind::Huggingface);
        assert_eq!(e.classify("https://x.example/a"), SourceKind::Url);
    }

    #[test]
    fn redaction() {
        assert_eq!(
            redact_url("https://u:p@x.example/a?token=abc&v=1"),
            "https://***@x.example/a?token=***&v=1"
        );
        assert_eq!(redact_url("not a url"), "not a url");
    }
}

//! A minimal client of a package index's simple API (PEP 503 HTML, PEP 691 JSON): which
//! distribution files of a project exist, and so which versions are published.

use std::time::Duration;

use comfydock_foundation::package_name;
use regex::Regex;
use serde::Serialize;
use url::Url;

use crate::error::ReleaseError;
use crate::version;

/// The simple API of PyPI.
pub const PYPI_SIMPLE_URL: &str = "https://pypi.org/simple/";

/// The kind of a distribution file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DistKind {
    Wheel,
    Sdist,
}

/// A distribution file listed on the index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DistFile {
    pub filename: String,
    pub version: String,
    pub kind: DistKind,
    /// Where to download it (absolute, without the hash fragment); empty when unknown.
    pub url: String,
    /// Its SHA-256 as the index states it (`#sha256=` or `hashes.sha256`), lowercase hex.
    pub sha256: Option<String>,
}

/// A package index reached over HTTP.
#[derive(Debug, Clone)]
pub struct PackageIndex {
    url: Url,
    client: reqwest::blocking::Client,
}

impl PackageIndex {
    /// An index at `simple_url` (e.g. `https://pypi.org/simple/`).
    pub fn new(simple_url: &str) -> Result<Self, ReleaseError> {
        let mut url = Url::parse(simple_url).map_err(|source| ReleaseError::InvalidIndexUrl {
            url: simple_url.to_owned(),
            source,
        })?;
        if !url.path().ends_with('/') {
            let path = format!("{}/", url.path());
            url.set_path(&path);
        }
        let client = reqwest::blocking::Client::builder()
            .connect_timeout(Duration::from_secs(15))
            .timeout(Duration::from_mins(1))
            .user_agent(concat!("comfydock-release/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|source| ReleaseError::IndexRequest {
                url: url.to_string(),
                source,
            })?;
        Ok(Self { url, client })
    }

    /// The simple API URL.
    pub fn url(&self) -> &str {
        self.url.as_str()
    }

    /// The distribution files of `project` (none when the index does not know it).
    pub fn files(&self, project: &str) -> Result<Vec<DistFile>, ReleaseError> {
        let url = self
            .url
            .join(&format!("{}/", package_name::normalize(project)))
            .map_err(|source| ReleaseError::InvalidIndexUrl {
                url: self.url.to_string(),
                source,
            })?;
        let request_error = |source| ReleaseError::IndexRequest {
            url: url.to_string(),
            source,
        };
        let response = self
            .client
            .get(url.clone())
            .header(
                reqwest::header::ACCEPT,
                "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.1",
            )
            .send()
            .map_err(request_error)?;
        let status = response.status();
        if status == reqwest::StatusCode::NOT_FOUND {
            return Ok(Vec::new());
        }
        if !status.is_success() {
            return Err(ReleaseError::IndexStatus {
                url: url.to_string(),
                status: status.as_u16(),
            });
        }
        let is_json = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("json"));
        let body = response.text().map_err(request_error)?;
        let links = if is_json {
            json_links(&body)
        } else {
            html_links(&body)
        };
        Ok(links
            .into_iter()
            .filter_map(|(name, href)| {
                let mut file = parse_filename(&name)?;
                if let Ok(mut absolute) = url.join(&href.replace("&amp;", "&")) {
                    file.sha256 = absolute
                        .fragment()
                        .and_then(|f| f.strip_prefix("sha256="))
                        .map(str::to_ascii_lowercase);
                    absolute.set_fragment(None);
                    file.url = absolute.to_string();
                }
                Some(file)
            })
            .collect())
    }

    /// Download a distribution file into `dest`.
    pub fn download(&self, file: &DistFile, dest: &std::path::Path) -> Result<(), ReleaseError> {
        let request_error = |source| ReleaseError::IndexRequest {
            url: file.url.clone(),
            source,
        };
        let response = self
            .client
            .get(&file.url)
            .timeout(Duration::from_mins(30))
            .send()
            .map_err(request_error)?;
        if !response.status().is_success() {
            return Err(ReleaseError::IndexStatus {
                url: file.url.clone(),
                status: response.status().as_u16(),
            });
        }
        let bytes = response.bytes().map_err(request_error)?;
        fs_err::write(dest, &bytes).map_err(|source| ReleaseError::Write {
            path: dest.to_owned(),
            source,
        })
    }

    /// The versions of `project` on the index.
    pub fn versions(&self, project: &str) -> Result<Vec<String>, ReleaseError> {
        let mut versions: Vec<String> = Vec::new();
        for file in self.files(project)? {
            if !versions.iter().any(|v| version::same(v, &file.version)) {
                versions.push(file.version);
            }
        }
        Ok(versions)
    }
}

/// (filename, url) of every file of a PEP 691 JSON project page.
fn json_links(body: &str) -> Vec<(String, String)> {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("files").and_then(|f| f.as_array()).cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|f| {
            let name = f.get("filename")?.as_str()?.to_owned();
            let mut url = f
                .get("url")
                .and_then(|u| u.as_str())
                .unwrap_or_default()
                .to_owned();
            // Carry the stated hash the way HTML listings do, as a fragment.
            if let Some(hash) = f.pointer("/hashes/sha256").and_then(|h| h.as_str())
                && !url.contains('#')
            {
                url = format!("{url}#sha256={hash}");
            }
            Some((name, url))
        })
        .collect()
}

/// (filename, href) of every anchor of a PEP 503 HTML project page.
fn html_links(body: &str) -> Vec<(String, String)> {
    let anchor = Regex::new(r#"(?is)<a\s[^>]*href\s*=\s*["']([^"']*)["'][^>]*>(.*?)</a>"#)
        .expect("valid anchor pattern");
    anchor
        .captures_iter(body)
        .map(|c| {
            let text = c[2].trim();
            let name = if text.is_empty() || text.contains('<') {
                let href = c[1].split('#').next().unwrap_or_default();
                href.rsplit('/').next().unwrap_or_default().to_owned()
            } else {
                text.to_owned()
            };
            (name.replace("&amp;", "&"), c[1].to_owned())
        })
        .collect()
}

/// Version and kind from a wheel (`name-ver-py-abi-plat.whl`) or sdist (`name-ver.tar.gz`) name.
pub fn parse_filename(filename: &str) -> Option<DistFile> {
    let (version, kind) = if let Some(stem) = filename.strip_suffix(".whl") {
        (stem.split('-').nth(1)?, DistKind::Wheel)
    } else {
        let stem = filename
            .strip_suffix(".tar.gz")
            .or_else(|| filename.strip_suffix(".zip"))?;
        (stem.rsplit_once('-')?.1, DistKind::Sdist)
    };
    version::parse(version)?;
    Some(DistFile {
        filename: filename.to_owned(),
        version: version.to_owned(),
        kind,
        url: String::new(),
        sha256: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_distribution_filenames() {
        let wheel = parse_filename("tmpl_media_api-0.1.1-py3-none-any.whl").unwrap();
        assert_eq!((wheel.version.as_str(), wheel.kind), ("0.1.1", DistKind::Wheel));
        let sdist = parse_filename("tmpl-media-api-0.1.1.tar.gz").unwrap();
        assert_eq!((sdist.version.as_str(), sdist.kind), ("0.1.1", DistKind::Sdist));
        assert_eq!(parse_filename("README.md"), None);
    }

    #[test]
    fn reads_html_and_json_listings() {
        let html = r#"<html><body><h1>Links for x</h1>
            <a href="/packages/x-1.0-py3-none-any.whl#sha256=ab">x-1.0-py3-none-any.whl</a><br>
            <a href="../../packages/x-1.1.tar.gz#sha256=cd" data-requires-python="&gt;=3.8"></a>
        </body></html>"#;
        let names: Vec<String> = html_links(html).into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["x-1.0-py3-none-any.whl", "x-1.1.tar.gz"]);
        assert_eq!(html_links(html)[1].1, "../../packages/x-1.1.tar.gz#sha256=cd");
        let json = r#"{"meta": {"api-version": "1.1"}, "name": "x", "files": [{"filename": "x-2.0.tar.gz", "url": "u", "hashes": {"sha256": "ef"}}]}"#;
        assert_eq!(
            json_links(json),
            [("x-2.0.tar.gz".to_owned(), "u#sha256=ef".to_owned())]
        );
    }
}

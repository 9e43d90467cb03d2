//! The web console under `/console`: a form per served workflow (built from `/openapi.json`), a
//! live job view (the event WebSocket), the queue with cancel and retry, and the environment.
//!
//! Plain HTML, CSS and ES modules, embedded at compile time: nothing to build or download. The
//! pages themselves hold no data and are public, like `/docs`; everything they show comes from
//! `/v1`, with the API key the person types in (kept in the tab's `sessionStorage`, sent as
//! `Authorization: Bearer` and, for WebSockets, as the `comfydock.bearer.<key>` subprotocol).

use std::sync::LazyLock;

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use sha2::{Digest as _, Sha256};

/// One embedded file.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static str,
}

const HTML: &str = "text/html; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const SVG: &str = "image/svg+xml";

/// `name => content type` pairs, embedded from `src/console/<name>`.
macro_rules! assets {
    ($($name:literal => $content_type:expr),* $(,)?) => {
        &[$(Asset { name: $name, content_type: $content_type, body: include_str!(concat!("console/", $name)) }),*]
    };
}

/// Every file of the console, by the name it is served under (`/console/<name>`).
const ASSETS: &[Asset] = assets![
    "index.html" => HTML,
    "console.css" => CSS,
    "app.js" => JS,
    "api.js" => JS,
    "dom.js" => JS,
    "form.js" => JS,
    "job.js" => JS,
    "queue.js" => JS,
    "environment.js" => JS,
    "favicon.svg" => SVG,
];

/// Entity tags of the assets (a hash of their bytes), so a browser revalidates cheaply.
static ETAGS: LazyLock<Vec<String>> = LazyLock::new(|| {
    ASSETS
        .iter()
        .map(|asset| {
            format!(
                "\"{}\"",
                &hex::encode(Sha256::digest(asset.body.as_bytes()))[..20]
            )
        })
        .collect()
});

/// Scripts, styles and fetches from this origin only; media may also come from blob URLs (outputs
/// fetched with the key) and HTTPS URLs (outputs in an object store).
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' blob: data: https:; media-src 'self' blob: https:; connect-src 'self' ws: wss:; \
     base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The routes: `/console/` and its files, `/console` and `/` redirecting there.
pub fn router() -> Router {
    Router::new()
        .route("/", get(|| async { Redirect::to("/console/") }))
        .route("/console", get(|| async { Redirect::to("/console/") }))
        .route(
            "/console/",
            get(|headers: HeaderMap| async move { serve("index.html", &headers) }),
        )
        .route(
            "/console/{file}",
            get(|Path(file): Path<String>, headers: HeaderMap| async move { serve(&file, &headers) }),
        )
}

/// Names of the embedded files (for tests and `--help` texts).
pub fn asset_names() -> impl Iterator<Item = &'static str> {
    ASSETS.iter().map(|asset| asset.name)
}

fn serve(name: &str, headers: &HeaderMap) -> Response {
    let Some(index) = ASSETS.iter().position(|asset| asset.name == name) else {
        return (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!("no console file `{name}`"),
        )
            .into_response();
    };
    let asset = &ASSETS[index];
    let etag: &'static str = ETAGS[index].as_str();
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|tags| tags.split(',').any(|tag| tag.trim() == etag));
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, asset.content_type)], asset.body).into_response()
    };
    let out = response.headers_mut();
    out.insert(header::ETAG, HeaderValue::from_static(etag));
    out.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    out.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    out.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    out.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_the_pages_import_is_embedded() {
        let names: Vec<&str> = asset_names().collect();
        for asset in ASSETS {
            for line in asset.body.lines() {
                let line = line.trim();
                let imported = line
                    .strip_prefix("import ")
                    .and_then(|rest| rest.split(" from ").nth(1))
                    .map(|from| from.trim_matches(|c| c == '"' || c == '\'' || c == ';'))
                    .or_else(|| {
                        line.split("src=\"")
                            .nth(1)
                            .or_else(|| line.split("href=\"").nth(1))
                            .and_then(|rest| rest.split('"').next())
                    });
                if let Some(path) = imported.and_then(|p| p.strip_prefix("./").or(Some(p)))
                    && !path.starts_with('/')
                    && !path.starts_with('#')
                    && !path.contains(':')
                    && !path.contains('$')
                    && !path.is_empty()
                {
                    assert!(
                        names.contains(&path),
                        "{} refers to `{path}`, which is not embedded",
                        asset.name
                    );
                }
            }
        }
    }

    #[test]
    fn pages_load_nothing_from_elsewhere() {
        for asset in ASSETS {
            let body = asset.body.replace("xmlns=\"http://www.w3.org/2000/svg\"", "");
            assert!(
                !body.contains("http://") && !body.contains("https://"),
                "{} refers to another origin",
                asset.name
            );
        }
    }
}

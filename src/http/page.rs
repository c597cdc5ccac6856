//! The status page: static HTML, JS and CSS (`page/`, compiled in) served with a
//! Content-Security-Policy that lets only its own script and style run.

use axum::http::header;
use axum::response::{IntoResponse, Response};

/// The status page (`/`; notifications link `/#/alert/<fingerprint>`, a route of its script): static
/// HTML whose script reads the JSON API, so everything it shows is data put into the page
/// as text, never markup.
pub(super) async fn status_page() -> Response {
    page(PAGE_HTML, "text/html; charset=utf-8")
}

pub(super) async fn page_js() -> Response {
    page(PAGE_JS, "text/javascript; charset=utf-8")
}

pub(super) async fn page_css() -> Response {
    page(PAGE_CSS, "text/css; charset=utf-8")
}

pub(super) const PAGE_HTML: &str = include_str!("page/index.html");

pub(super) const PAGE_JS: &str = include_str!("page/page.js");

pub(super) const PAGE_CSS: &str = include_str!("page/page.css");

/// Only the page's own script and style run: a value that slipped into markup could not
/// load or run anything.
const PAGE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
     connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

pub(super) fn page(body: &'static str, content_type: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CONTENT_SECURITY_POLICY, PAGE_CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

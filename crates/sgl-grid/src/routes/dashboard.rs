//! The web dashboard: static pages and ES modules embedded in the binary (`build.rs` turns
//! `dashboard/static` into `ASSETS`), served under `/dashboard/`. The pages call the same JSON
//! API as the CLI, with the caller's API key (or the admin token) in a header they keep in
//! `sessionStorage`: the grid sets no cookie, so a page of another site cannot act with the
//! user's credentials (no CSRF by construction).
//!
//! Every answer carries a Content-Security-Policy that allows scripts, styles, images and
//! connections from this origin only (no inline script or style, no framing), `nosniff`, no
//! referrer, and an `ETag` with `Cache-Control: no-cache`, so browsers revalidate (a 304 costs
//! a few bytes) and never run an old module after an upgrade. Only `GET` and `HEAD` exist here;
//! anything else sent from another site's page is refused before it is routed (see
//! [`same_site_writes`]).

use std::collections::HashMap;
use std::sync::LazyLock;

use axum::Router;
use axum::extract::{Path, Request};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

use crate::error::ApiError;
use crate::state::AppState;

include!(concat!(env!("OUT_DIR"), "/dashboard_assets.rs"));

/// The policy every dashboard answer carries.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
     frame-ancestors 'none'";

/// Each asset's bytes, media type and entity tag, by path.
static INDEX: LazyLock<HashMap<&'static str, Asset>> = LazyLock::new(|| {
    ASSETS
        .iter()
        .map(|(path, bytes)| {
            let etag = format!("\"{}\"", &sgl_protocol::encoding::sha256_hex(bytes)[..16]);
            (*path, Asset { bytes, media_type: media_type(path), etag })
        })
        .collect()
});

struct Asset {
    bytes: &'static [u8],
    media_type: &'static str,
    etag: String,
}

/// The dashboard's routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/dashboard", get(|| async { Redirect::permanent("/dashboard/") }))
        .route("/dashboard/", get(|headers: HeaderMap| async move { serve("index.html", &headers) }))
        .route(
            "/dashboard/{*path}",
            get(|Path(path): Path<String>, headers: HeaderMap| async move { serve(&path, &headers) }),
        )
        .layer(axum::middleware::from_fn(secure_headers))
}

/// Every path served, for tests and the benchmark.
pub fn paths() -> impl Iterator<Item = &'static str> {
    ASSETS.iter().map(|(path, _)| *path)
}

fn serve(path: &str, headers: &HeaderMap) -> Response {
    let Some(asset) = INDEX.get(path) else {
        return ApiError::not_found("no such dashboard page").into_response();
    };
    let etag = HeaderValue::from_str(&asset.etag).unwrap_or(HeaderValue::from_static("\"\""));
    let cached = headers.get(header::IF_NONE_MATCH).is_some_and(|sent| sent.as_bytes() == etag.as_bytes());
    let mut response = if cached { StatusCode::NOT_MODIFIED.into_response() } else { asset.bytes.into_response() };
    let response_headers = response.headers_mut();
    response_headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(asset.media_type));
    response_headers.insert(header::ETAG, etag);
    response_headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

fn media_type(path: &str) -> &'static str {
    match path.rsplit('.').next() {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("json") => "application/json",
        Some("wasm") => "application/wasm",
        _ => "text/plain; charset=utf-8",
    }
}

/// Adds the security headers to every dashboard answer (errors included).
async fn secure_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert("cross-origin-opener-policy", HeaderValue::from_static("same-origin"));
    response
}

/// Refuses (403) a request that changes state or reads a credentialed view when a browser says
/// it comes from another site: `Sec-Fetch-Site: cross-site` or `same-site`, or, from browsers
/// without fetch metadata, an `Origin` whose host is not the request's `Host`. Requests without
/// either header (the CLI, SDKs, curl) pass: they carry their credentials explicitly. Applied to
/// the dashboard's pages and the admin routes; a top-level navigation to a page (a link from
/// elsewhere) is a `GET` and is let through.
pub async fn same_site_writes(request: Request, next: Next) -> Response {
    let navigation = request.method() == Method::GET
        && request.headers().get("sec-fetch-mode").is_some_and(|mode| mode.as_bytes() == b"navigate");
    if !navigation && from_another_site(request.headers()) {
        return ApiError::forbidden("this request came from another site's page").into_response();
    }
    next.run(request).await
}

fn from_another_site(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site") {
        return !matches!(site.as_bytes(), b"same-origin" | b"none");
    }
    let origin_host = headers
        .get(header::ORIGIN)
        .and_then(|origin| origin.to_str().ok())
        .filter(|origin| *origin != "null")
        .map(|origin| origin.split_once("://").map_or(origin, |(_, rest)| rest));
    let host = headers.get(header::HOST).and_then(|host| host.to_str().ok());
    match (origin_host, host) {
        (Some(origin), Some(host)) => !origin.eq_ignore_ascii_case(host),
        (Some(_), None) => true,
        (None, _) => false,
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod vector;

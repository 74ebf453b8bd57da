//! The asset table, media types and the same-site rule.

use axum::http::{HeaderMap, HeaderValue, header};

use super::*;

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.insert(axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(), HeaderValue::from_str(value).unwrap());
    }
    map
}

#[test]
fn every_page_and_module_is_embedded_with_its_media_type() {
    let paths: Vec<&str> = paths().collect();
    for page in [
        "index.html",
        "account.html",
        "chat.html",
        "jobs.html",
        "machines.html",
        "operator.html",
        "admin.html",
        "css/dashboard.css",
    ] {
        assert!(paths.contains(&page), "{page} is embedded: {paths:?}");
    }
    assert!(paths.contains(&"vendor/noble-ciphers/chacha.js"), "the vendored AEAD is embedded: {paths:?}");
    let guest = ASSETS.iter().find(|(path, _)| *path == "wasm/mnist-train.wasm").expect("the training form's guest");
    let committed = include_bytes!("../../../../../examples/wasm/mnist-train/train.wasm");
    assert_eq!(guest.1, committed.as_slice(), "the guest sgl-cloud train runs");
    assert_eq!(media_type("wasm/mnist-train.wasm"), "application/wasm");
    assert_eq!(media_type("js/api.js"), "text/javascript; charset=utf-8");
    assert_eq!(media_type("index.html"), "text/html; charset=utf-8");
    assert_eq!(media_type("css/dashboard.css"), "text/css; charset=utf-8");
}

#[test]
fn no_page_has_inline_script_or_style() {
    for (path, bytes) in ASSETS.iter().filter(|(path, _)| path.ends_with(".html")) {
        let text = std::str::from_utf8(bytes).expect("pages are UTF-8");
        for script in text.match_indices("<script").map(|(at, _)| &text[at..]) {
            let tag = &script[..script.find('>').expect("a closed tag")];
            assert!(tag.contains("src="), "{path}: an inline script: {tag}");
        }
        assert!(!text.contains("<style"), "{path}: an inline style element");
        assert!(!text.contains(" style=\""), "{path}: an inline style attribute");
        assert!(!text.contains(" onclick=") && !text.contains(" onload="), "{path}: an inline handler");
    }
}

#[test]
fn a_revalidation_with_the_current_tag_is_a_304() {
    let first = serve("index.html", &HeaderMap::new());
    assert_eq!(first.status(), StatusCode::OK);
    let etag = first.headers().get(header::ETAG).expect("an etag").to_str().unwrap().to_owned();
    assert_eq!(first.headers().get(header::CACHE_CONTROL).unwrap(), "no-cache");
    let again = serve("index.html", &headers(&[("if-none-match", &etag)]));
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(serve("nope.html", &HeaderMap::new()).status(), StatusCode::NOT_FOUND);
}

#[test]
fn requests_from_another_sites_page_are_told_apart() {
    assert!(!from_another_site(&headers(&[])), "the CLI sends neither header");
    assert!(!from_another_site(&headers(&[("sec-fetch-site", "same-origin")])));
    assert!(!from_another_site(&headers(&[("sec-fetch-site", "none")])), "typed in the address bar");
    assert!(from_another_site(&headers(&[("sec-fetch-site", "cross-site")])));
    assert!(from_another_site(&headers(&[("sec-fetch-site", "same-site")])), "a sibling subdomain is another site");
    assert!(!from_another_site(&headers(&[("origin", "http://grid.example:8080"), ("host", "grid.example:8080")])));
    assert!(from_another_site(&headers(&[("origin", "https://evil.example"), ("host", "grid.example")])));
}

#[test]
fn seal_vector_is_current() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../dashboard/test-vectors/seal-v2.json");
    let mut expected = serde_json::to_string_pretty(&super::vector::vector()).expect("JSON");
    expected.push('\n');
    if std::env::var_os("SGL_UPDATE_VECTORS").is_some() {
        std::fs::write(path, &expected).expect("writing the vector");
    }
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(committed == expected, "{path} is stale: run this test with SGL_UPDATE_VECTORS=1 and commit the file");
}

#[test]
fn every_page_but_the_sign_in_carries_the_shared_header() {
    let pages = ASSETS.iter().filter(|(path, _)| path.ends_with(".html") && *path != "index.html");
    let mut count = 0;
    for (path, bytes) in pages {
        let text = std::str::from_utf8(bytes).expect("pages are UTF-8");
        assert!(!text.contains("<!-- include:"), "{path}: an include left unexpanded");
        assert!(text.contains(r#"<nav aria-label="Dashboard">"#) && text.contains(r#"id="sign-out""#), "{path}");
        for page in ["account", "chat", "jobs", "machines", "operator", "admin"] {
            assert!(text.contains(&format!(r#"href="/dashboard/{page}.html""#)), "{path} links to {page}");
        }
        count += 1;
    }
    assert_eq!(count, 6, "the six signed-in pages");
}

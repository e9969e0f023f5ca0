//! The dashboard is served by the gateway itself, from the binary: the app for every page
//! path, its hashed assets cached for good, and never in the way of the API's own 404s.

use serde_json::Value;

use crate::harness::{self, TestResult};

async fn get(h: &harness::Harness, path: &str) -> TestResult<reqwest::Response> {
    Ok(h.http.get(format!("{}{path}", h.url)).send().await?)
}

fn header<'a>(answer: &'a reqwest::Response, name: &str) -> &'a str {
    answer
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

#[tokio::test]
async fn the_dashboard_is_served_from_the_binary_with_its_assets() {
    let h = harness::start().await.unwrap();

    let index = get(&h, "/").await.unwrap();
    assert_eq!(index.status(), 200);
    assert_eq!(header(&index, "content-type"), "text/html; charset=utf-8");
    assert_eq!(header(&index, "cache-control"), "no-cache");
    let csp = header(&index, "content-security-policy").to_owned();
    assert!(
        csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert_eq!(header(&index, "x-frame-options"), "DENY");
    let html = index.text().await.unwrap();
    assert!(html.contains(r#"<div id="app">"#), "{html}");

    // Every script and stylesheet the page names is there, typed, and cached immutably.
    let assets: Vec<&str> = html
        .split('"')
        .filter(|part| part.starts_with("/assets/"))
        .collect();
    assert!(assets.iter().any(|a| a.ends_with(".js")), "{html}");
    assert!(assets.iter().any(|a| a.ends_with(".css")), "{html}");
    for asset in assets {
        let answer = get(&h, asset).await.unwrap();
        assert_eq!(answer.status(), 200, "{asset}");
        let kind = if asset.ends_with(".js") {
            "text/javascript"
        } else {
            "text/css"
        };
        assert!(header(&answer, "content-type").starts_with(kind), "{asset}");
        assert_eq!(
            header(&answer, "cache-control"),
            "public, max-age=31536000, immutable"
        );
        assert!(!answer.bytes().await.unwrap().is_empty());
    }
}

#[tokio::test]
async fn page_paths_answer_the_app_and_api_paths_keep_their_json_404() {
    let h = harness::start().await.unwrap();

    // Client-side routes reload into the app.
    for path in [
        "/runs",
        "/runs/task-42",
        "/approvals",
        "/policies/pol_1?x=1",
    ] {
        let answer = get(&h, path).await.unwrap();
        assert_eq!(answer.status(), 200, "{path}");
        assert!(
            answer.text().await.unwrap().contains(r#"<div id="app">"#),
            "{path}"
        );
    }

    // A stale page asking for an asset that is gone gets a 404, not HTML posing as a script;
    // unknown API routes and non-GET requests keep the API's JSON error.
    for path in ["/assets/index-gone.js", "/api/nope", "/v1/nope"] {
        let answer = get(&h, path).await.unwrap();
        assert_eq!(answer.status(), 404, "{path}");
        let body: Value = answer.json().await.unwrap();
        assert_eq!(body["error"]["type"], "not_found", "{path}");
    }
    let posted = h.http.post(format!("{}/runs", h.url)).send().await.unwrap();
    assert_eq!(posted.status(), 404);
    let body: Value = posted.json().await.unwrap();
    assert_eq!(body["error"]["type"], "not_found");
}

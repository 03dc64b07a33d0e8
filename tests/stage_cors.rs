//! The `cors` stage over real sockets (HTTP/1.1 and HTTP/2): preflights answered without
//! reaching the handler, allowed origins (exact and wildcard) echoed, others refused or passed
//! through without CORS headers, credentials never with `*`.

mod common;

use common::*;
use reqwest::{Method, Response};

const SITE: &str = r#"
[[sites]]
hosts = ["*"]

[[sites.use]]
type = "cors"
allowed_origins = ["https://app.example", "https://*.example.com"]
allowed_methods = ["GET", "PUT"]
allowed_headers = ["X-Token"]
exposed_headers = ["x-total"]
max_age = "5m"

[[sites.routes]]
handler = { type = "respond", status = 200, body = "handler", headers = { "x-total" = "3" } }
"#;

const CREDENTIALS: &str = r#"
[[sites]]
hosts = ["*"]

[[sites.use]]
type = "cors"
allowed_origins = ["*"]
allowed_headers = ["*"]
allow_credentials = true

[[sites.routes]]
handler = { type = "respond", status = 200, body = "handler" }
"#;

fn header(resp: &Response, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
}

/// Asserts the value of header `name` (`None`: absent), naming the response's protocol.
#[track_caller]
fn assert_header(resp: &Response, name: &str, want: Option<&str>) {
    let got = header(resp, name);
    assert_eq!(got.as_deref(), want, "{name} over {:?}", resp.version());
}

fn vary(resp: &Response) -> String {
    let all: Vec<&str> = resp
        .headers()
        .get_all("vary")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    all.join(", ")
}

/// A `method` request to `url` with Origin `origin`.
async fn from(client: &reqwest::Client, method: Method, url: &str, origin: &str) -> Response {
    let req = client.request(method, url).header("origin", origin);
    req.send().await.unwrap()
}

async fn preflight(
    client: &reqwest::Client,
    url: &str,
    origin: &str,
    method: &str,
    headers: Option<&str>,
) -> Response {
    let mut req = client
        .request(Method::OPTIONS, url)
        .header("origin", origin)
        .header("access-control-request-method", method);
    if let Some(h) = headers {
        req = req.header("access-control-request-headers", h);
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn preflights_are_answered_by_the_stage() {
    let server = start(SITE, &[]).await;
    let url = server.url("/api");
    for (proto, client) in clients() {
        let resp = preflight(&client, &url, "https://app.example", "PUT", Some("x-token")).await;
        assert_eq!(resp.status(), 204, "{proto}");
        assert_header(
            &resp,
            "access-control-allow-origin",
            Some("https://app.example"),
        );
        assert_header(&resp, "access-control-allow-methods", Some("GET, PUT"));
        assert_header(&resp, "access-control-allow-headers", Some("x-token"));
        assert_header(&resp, "access-control-max-age", Some("300"));
        assert_header(&resp, "access-control-allow-credentials", None);
        assert!(vary(&resp).contains("origin"), "{proto}");
        assert_eq!(
            resp.text().await.unwrap(),
            "",
            "{proto}: the handler was not run"
        );

        // Wildcard subdomains, any depth; a safelisted method needs no listing.
        let sub = preflight(&client, &url, "https://a.b.example.com", "POST", None).await;
        assert_eq!(sub.status(), 204, "{proto}");
        assert_header(
            &sub,
            "access-control-allow-origin",
            Some("https://a.b.example.com"),
        );

        let refused = [
            ("https://example.com", "GET", None),
            ("http://a.example.com", "GET", None),
            ("https://evil.test", "GET", None),
            ("https://app.example.evil.test", "GET", None),
            ("https://app.example", "DELETE", None),
            ("https://app.example", "PUT", Some("x-token, x-other")),
        ];
        for (origin, method, headers) in refused {
            let resp = preflight(&client, &url, origin, method, headers).await;
            assert_eq!(resp.status(), 403, "{proto}: {origin} {method} {headers:?}");
            assert_header(&resp, "access-control-allow-origin", None);
            assert_header(&resp, "access-control-allow-methods", None);
        }
    }
}

#[tokio::test]
async fn actual_requests_get_the_allow_origin_of_allowed_origins_only() {
    let server = start(SITE, &[]).await;
    let url = server.url("/api");
    for (proto, client) in clients() {
        let resp = from(&client, Method::GET, &url, "https://app.example").await;
        assert_eq!(resp.status(), 200, "{proto}");
        assert_header(
            &resp,
            "access-control-allow-origin",
            Some("https://app.example"),
        );
        assert_header(&resp, "access-control-expose-headers", Some("x-total"));
        assert_header(&resp, "access-control-allow-credentials", None);
        assert!(vary(&resp).contains("origin"), "{proto}");
        assert_eq!(resp.text().await.unwrap(), "handler");

        let other = from(&client, Method::GET, &url, "https://evil.test").await;
        assert_eq!(other.status(), 200, "{proto}");
        assert_header(&other, "access-control-allow-origin", None);
        assert_header(&other, "access-control-expose-headers", None);
        // Still varies by Origin, so that a cache never hands it to an allowed origin.
        assert!(vary(&other).contains("origin"), "{proto}");

        let plain = client.get(&url).send().await.unwrap();
        assert_header(&plain, "access-control-allow-origin", None);

        // OPTIONS without Access-Control-Request-Method is not a preflight.
        let options = from(&client, Method::OPTIONS, &url, "https://app.example").await;
        assert_eq!(options.text().await.unwrap(), "handler", "{proto}");
    }
}

#[tokio::test]
async fn with_credentials_the_origin_and_headers_are_echoed_never_star() {
    let server = start(CREDENTIALS, &[]).await;
    let url = server.url("/");
    for (proto, client) in clients() {
        let resp = from(&client, Method::GET, &url, "https://any.test").await;
        assert_header(
            &resp,
            "access-control-allow-origin",
            Some("https://any.test"),
        );
        assert_header(&resp, "access-control-allow-credentials", Some("true"));
        assert!(vary(&resp).contains("origin"), "{proto}");

        let pre = preflight(&client, &url, "https://any.test", "GET", Some("X-A, x-b")).await;
        assert_eq!(pre.status(), 204, "{proto}");
        assert_header(
            &pre,
            "access-control-allow-origin",
            Some("https://any.test"),
        );
        assert_header(&pre, "access-control-allow-headers", Some("x-a, x-b"));
        assert_header(&pre, "access-control-allow-credentials", Some("true"));
        // Default max_age: 10 minutes.
        assert_header(&pre, "access-control-max-age", Some("600"));
    }
    let star = start(&CREDENTIALS.replace("allow_credentials = true", ""), &[]).await;
    let client = reqwest::Client::builder().timeout(STEP).build().unwrap();
    let resp = from(&client, Method::GET, &star.url("/"), "https://any.test").await;
    assert_header(&resp, "access-control-allow-origin", Some("*"));
    let pre = preflight(
        &client,
        &star.url("/"),
        "https://any.test",
        "GET",
        Some("x-a"),
    )
    .await;
    assert_header(&pre, "access-control-allow-headers", Some("*"));
}

#[test]
fn bad_origins_are_config_errors() {
    let dir = tempfile::tempdir().unwrap();
    let opts = harrier::config::LoadOptions {
        app_dir: dir.path().to_path_buf(),
        ..Default::default()
    };
    let toml = SITE.replace("\"https://app.example\",", "\"https://app.example/path\",");
    let err = harrier::config::load_str(&toml, &dir.path().join("h.toml"), &opts)
        .expect_err("an origin with a path must not load")
        .to_string();
    assert!(err.contains("sites[0].use[0].allowed_origins[0]"), "{err}");
    assert!(err.contains("is not an origin"), "{err}");
}

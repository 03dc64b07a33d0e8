//! Sites, routes, handlers and the headers stage, from a settings file, over real sockets
//! (HTTP/1.1 and HTTP/2: the pipeline does not know the protocol).

mod common;

use std::net::SocketAddr;

use common::*;

const TWO_SITES: &str = r#"
[[sites]]
name = "app"
hosts = ["app.test", "*.app.test"]
root = "app"
[sites.static]
fallback = "index.html"

[[sites.use]]
type = "headers"
response = { set = { "x-site" = "app" } }

[[sites.routes]]
path = "/healthz"
methods = ["GET", "HEAD"]
handler = { type = "respond", status = 200, body = "ok" }

[[sites.routes]]
path = "/old/*"
handler = { type = "redirect", status = 301, to = "/new/{1}{query}" }

[[sites.routes]]
path = "/api/*"
headers = { "x-debug" = "*" }
use = [{ type = "headers", response = { set = { "x-debug-route" = "yes" } } }]
handler = { type = "respond", status = 200, body = "debug api" }

[[sites.routes]]
path = "/api/*"
handler = { type = "respond", status = 503, body = "api down", headers = { "retry-after" = "5" } }

[[sites]]
name = "docs"
hosts = ["docs.test"]
root = "docs"

[[sites.use]]
type = "headers"
request = { set = { "x-forwarded-host" = "{host}" } }
response = { set = { "x-seen-host" = "{host}" }, remove = ["etag"] }
"#;

/// The site roots of [`TWO_SITES`].
const FILES: [(&str, &[u8]); 3] = [
    ("app/index.html", b"APP INDEX"),
    ("app/main.js", b"console.log(1)"),
    ("docs/index.html", b"DOCS"),
];

async fn get(addr: SocketAddr, host: &str, path: &str, extra: &str) -> String {
    let req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n{extra}\r\n");
    exchange(addr, req.as_bytes()).await
}

fn body(resp: &str) -> &str {
    resp.split("\r\n\r\n").nth(1).unwrap_or("")
}

#[tokio::test]
async fn sites_are_chosen_by_host() {
    let server = start(TWO_SITES, &FILES).await;
    let addr = server.addr;
    let app = get(addr, "app.test", "/", "").await;
    assert_eq!(body(&app), "APP INDEX", "{app}");
    assert_eq!(header_of(&app, "x-site"), Some("app"));
    let sub = get(addr, "www.app.test:8080", "/main.js", "").await;
    assert_eq!(body(&sub), "console.log(1)", "{sub}");
    let docs = get(addr, "DOCS.test", "/", "").await;
    assert_eq!(body(&docs), "DOCS", "{docs}");
    assert_eq!(header_of(&docs, "x-seen-host"), Some("docs.test"));
    assert_eq!(
        header_of(&docs, "etag"),
        None,
        "removed by the stage: {docs}"
    );
    assert_eq!(header_of(&docs, "x-site"), None);
    // No site for this host: 421 by default.
    assert_eq!(status_of(&get(addr, "other.test", "/", "").await), 421);
    // A wildcard covers subdomains only, not the bare parent.
    assert_eq!(status_of(&get(addr, "xapp.test", "/", "").await), 421);
}

#[tokio::test]
async fn unknown_host_can_be_404() {
    let toml = format!("[server]\nunknown_host = \"not_found\"\n{TWO_SITES}");
    let server = start(&toml, &FILES).await;
    assert_eq!(
        status_of(&get(server.addr, "other.test", "/", "").await),
        404
    );
}

#[tokio::test]
async fn routes_match_in_order_with_methods_headers_and_captures() {
    let server = start(TWO_SITES, &FILES).await;
    let addr = server.addr;
    let health = get(addr, "app.test", "/healthz", "").await;
    assert_eq!((status_of(&health), body(&health)), (200, "ok"), "{health}");
    assert_eq!(
        header_of(&health, "x-site"),
        Some("app"),
        "site stages run for routes too"
    );
    // POST is not in the route's methods: falls through to static files (405 there).
    let post = exchange(addr, b"POST /healthz HTTP/1.1\r\nHost: app.test\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").await;
    assert_eq!(status_of(&post), 405, "{post}");

    let moved = get(addr, "app.test", "/old/a/b.html?x=1", "").await;
    assert_eq!(status_of(&moved), 301, "{moved}");
    assert_eq!(header_of(&moved, "location"), Some("/new/a/b.html?x=1"));

    let debug = get(addr, "app.test", "/api/v1", "x-debug: 1\r\n").await;
    assert_eq!(body(&debug), "debug api", "{debug}");
    assert_eq!(header_of(&debug, "x-debug-route"), Some("yes"));
    let api = get(addr, "app.test", "/api/v1", "").await;
    assert_eq!((status_of(&api), body(&api)), (503, "api down"), "{api}");
    assert_eq!(header_of(&api, "retry-after"), Some("5"));
    assert_eq!(header_of(&api, "x-debug-route"), None);

    // Nothing matches: the SPA fallback of the site's static files.
    let spa = get(addr, "app.test", "/some/client/route", "").await;
    assert_eq!(body(&spa), "APP INDEX", "{spa}");
}

#[tokio::test]
async fn the_pipeline_is_the_same_over_http2() {
    let server = start(TWO_SITES, &FILES).await;
    let addr = server.addr;
    let client = reqwest::Client::builder()
        .http2_prior_knowledge()
        .timeout(STEP)
        .resolve("app.test", addr)
        .resolve("docs.test", addr)
        .build()
        .unwrap();
    let port = addr.port();
    let resp = client
        .get(format!("http://app.test:{port}/api/x"))
        .header("x-debug", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.version(), reqwest::Version::HTTP_2);
    assert_eq!(resp.headers()["x-debug-route"], "yes");
    assert_eq!(resp.headers()["x-site"], "app");
    assert_eq!(resp.text().await.unwrap(), "debug api");
    let resp = client
        .get(format!("http://docs.test:{port}/"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["x-seen-host"], "docs.test");
    assert_eq!(resp.text().await.unwrap(), "DOCS");
}

#[tokio::test]
async fn site_stages_run_before_routes_are_matched() {
    let toml = r#"
[[sites]]
root = "app"

[[sites.use]]
type = "rewrite"
[[sites.use.rules]]
match = "^/legacy/(.*)$"
action = { type = "rewrite", url = "/v2/{R:1}" }

[[sites.routes]]
path = "/v2/*"
handler = { type = "respond", status = 200, body = "v2 route" }
"#;
    let server = start(toml, &FILES).await;
    let resp = get(server.addr, "any.test", "/legacy/thing", "").await;
    assert_eq!(
        body(&resp),
        "v2 route",
        "the rewritten path chose the route: {resp}"
    );
}

#[tokio::test]
async fn sites_bound_to_endpoints_answer_only_there() {
    let toml = r#"
[[endpoints]]
name = "public"
url = "http://127.0.0.1:0"

[[endpoints]]
name = "admin"
url = "http://127.0.0.1:0"

[[sites]]
hosts = ["app.test"]
[[sites.routes]]
handler = { type = "respond", body = "app" }

[[sites]]
hosts = ["ops.test"]
endpoints = ["admin"]
[[sites.routes]]
handler = { type = "respond", body = "ops" }

[[sites]]
hosts = ["*"]
endpoints = ["admin"]
[[sites.routes]]
handler = { type = "respond", body = "admin" }

[[sites]]
hosts = ["*"]
endpoints = ["public"]
[[sites.routes]]
handler = { type = "respond", body = "public" }
"#;
    let (addrs, _stop, _dir) = start_endpoints(toml, &[]).await;
    let [public, admin] = addrs[..] else {
        panic!("two endpoints: {addrs:?}")
    };
    for (addr, host, expected) in [
        // A site on every endpoint.
        (public, "app.test", "app"),
        (admin, "app.test", "app"),
        // A host bound to one endpoint: elsewhere that endpoint's catch-all answers.
        (admin, "ops.test", "ops"),
        (public, "ops.test", "public"),
        (admin, "other.test", "admin"),
        (public, "other.test", "public"),
    ] {
        let resp = get(addr, host, "/", "").await;
        assert_eq!(body(&resp), expected, "{host} on {addr}: {resp}");
    }
}

#[tokio::test]
async fn every_answer_carries_one_server_header_unless_it_is_turned_off() {
    // `respond` and static files build `server` into their headers ahead of time; a
    // configured or added one is still replaced by the one the pipeline sends.
    let site = r#"
[[sites]]
hosts = ["*"]
[[sites.use]]
type = "headers"
response = { add = { "server" = "added" } }
[[sites.routes]]
path = "/r"
handler = { type = "respond", body = "r", headers = { "server" = "configured" } }
[[sites.routes]]
path = "/plain"
handler = { type = "respond", body = "plain" }
"#;
    let servers = |resp: &str| {
        resp.lines()
            .take_while(|l| !l.is_empty())
            .filter(|l| l.to_ascii_lowercase().starts_with("server:"))
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    let files: [(&str, &[u8]); 1] = [("f.txt", b"file")];
    let server = start(site, &files).await;
    for path in ["/r", "/plain", "/f.txt"] {
        let resp = get(server.addr, "a.test", path, "").await;
        assert_eq!(status_of(&resp), 200, "{resp}");
        assert_eq!(servers(&resp), ["server: harrier"], "{path}: {resp}");
    }
    // Turned off, nothing is replaced or added by the pipeline.
    let off = format!("[server]\nadd_server_header = false\n{site}");
    let server = start(&off, &files).await;
    for (path, expected) in [
        ("/r", &["server: configured", "server: added"][..]),
        ("/plain", &["server: added"]),
        ("/f.txt", &["server: added"]),
    ] {
        let resp = get(server.addr, "a.test", path, "").await;
        assert_eq!(status_of(&resp), 200, "{resp}");
        assert_eq!(servers(&resp), expected, "{path}: {resp}");
    }
}

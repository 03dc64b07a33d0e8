//! The `error_pages` stage over real sockets (HTTP/1.1 and HTTP/2): exact codes beat
//! classes, only GET and HEAD are answered with pages, the static handler's own 404 page is
//! replaced, and a missing page stops the startup.

mod common;

use std::io::Read;

use common::*;

const TOML: &str = r#"
[[sites]]
hosts = ["*"]
[sites.static]
not_found_page = "own404.html"

[[sites.use]]
type = "compress"
min_size = 10

[[sites.use]]
type = "error_pages"
pages = { 404 = "errors/404.html", 503 = "errors/503.html", "5xx" = "errors/5xx.json" }

[[sites.routes]]
path = "/busy"
handler = { type = "respond", status = 503, body = "busy", headers = { "retry-after" = "5" } }

[[sites.routes]]
path = "/broken"
handler = { type = "respond", status = 500, body = "broken" }

[[sites.routes]]
path = "/teapot"
handler = { type = "respond", status = 418, body = "short and stout" }
"#;

const PAGE_404: &str = "<h1>Nothing here</h1> - the site's own not-found page";

async fn server() -> TestServer {
    start(
        TOML,
        &[
            ("index.html", b"home"),
            ("own404.html", b"the static handler's page"),
            ("errors/404.html", PAGE_404.as_bytes()),
            ("errors/503.html", b"<p>back soon</p>"),
            ("errors/5xx.json", b"{\"error\":\"server\"}"),
        ],
    )
    .await
}

async fn send(req: reqwest::RequestBuilder) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let resp = req.send().await.expect("response");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    (status, headers, resp.bytes().await.expect("body").to_vec())
}

#[tokio::test]
async fn error_responses_get_the_site_pages_on_h1_and_h2() {
    let server = server().await;
    for (_, client) in clients() {
        let get = |path: &str| client.get(server.url(path));
        // The static handler's 404 (its own not_found_page included) is replaced.
        let (status, h, body) = send(get("/missing")).await;
        assert_eq!((status, body.as_slice()), (404, PAGE_404.as_bytes()));
        assert_eq!(h["content-type"], "text/html; charset=utf-8");
        assert_eq!(h["content-length"], PAGE_404.len().to_string().as_str());
        // An exact code beats its class; other headers stay.
        let (status, h, body) = send(get("/busy")).await;
        assert_eq!((status, body.as_slice()), (503, &b"<p>back soon</p>"[..]));
        assert_eq!(h["retry-after"], "5");
        // The class.
        let (status, h, body) = send(get("/broken")).await;
        assert_eq!(
            (status, body.as_slice()),
            (500, &b"{\"error\":\"server\"}"[..])
        );
        // As the static handler would send the same file.
        assert_eq!(h["content-type"], "application/json; charset=utf-8");
        // No page for this status, and successes are untouched.
        assert_eq!(send(get("/teapot")).await.2, b"short and stout");
        assert_eq!(send(get("/")).await.2, b"home");
        // Only GET and HEAD: an API client posting gets the handler's own body.
        let (status, _, body) = send(client.post(server.url("/broken"))).await;
        assert_eq!((status, body.as_slice()), (500, &b"broken"[..]));
        let (status, h, body) = send(client.head(server.url("/missing"))).await;
        assert_eq!(status, 404);
        assert!(body.is_empty());
        assert_eq!(h["content-length"], PAGE_404.len().to_string().as_str());
    }
}

/// `compress` listed before `error_pages` sees the page on its way out.
#[tokio::test]
async fn pages_are_compressed_by_an_earlier_compress_stage() {
    let server = server().await;
    for (_, client) in clients() {
        let req = client
            .get(server.url("/missing"))
            .header("accept-encoding", "gzip");
        let (status, h, body) = send(req).await;
        assert_eq!(status, 404);
        assert_eq!(h["content-encoding"], "gzip");
        let mut page = String::new();
        flate2::read::GzDecoder::new(body.as_slice())
            .read_to_string(&mut page)
            .expect("gzip");
        assert_eq!(page, PAGE_404);
    }
}

#[tokio::test]
async fn a_missing_page_stops_the_startup() {
    let dir = tempfile::tempdir().unwrap();
    let toml = "[[sites]]\nhosts = [\"*\"]\n[[sites.use]]\ntype = \"error_pages\"\npages = { 404 = \"errors/none.html\" }\n";
    let cfg = config_for(dir.path(), toml);
    let err = match harrier::Server::from_config(cfg).bind().await {
        Ok(_) => panic!("started without its error page"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("errors/none.html"), "{err}");
}

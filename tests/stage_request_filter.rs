//! The `request_filter` stage over real sockets: raw TCP for paths a client library would
//! normalise or refuse to send, and HTTP/2 to show the pipeline does not know the protocol.

mod common;

use std::net::SocketAddr;

use common::*;

const SITE: &str = r#"
[[sites]]
hosts = ["*"]
root = "."

[[sites.use]]
type = "request_filter"
max_url_length = 64
max_query_length = 16
deny_path_segments = [".git", "bin"]
deny_extensions = [".config", ".env"]

[[sites.routes]]
handler = { type = "respond", status = 200, body = "ok" }
"#;

async fn status(addr: SocketAddr, method: &str, target: &str) -> u16 {
    status_of(&request(addr, method, target, "").await)
}

#[tokio::test]
async fn raw_paths_are_filtered() {
    let server = start(SITE, &[]).await;
    let a = server.addr;
    let cases: &[(&str, &str, u16)] = &[
        ("GET", "/", 200),
        ("GET", "/docs/page.html?q=1", 200),
        ("GET", "/.gitignore", 200),
        ("GET", "/binary/x", 200),
        ("GET", "/100%25", 200),
        // Hidden segments, in any case and escaping.
        ("GET", "/.git/config", 404),
        ("GET", "/app/.GIT/HEAD", 404),
        ("GET", "/%2Egit/HEAD", 404),
        ("GET", "/a%2F.git%2FHEAD", 404),
        ("GET", "/a%5Cbin%5Capp.dll", 404),
        ("GET", "/Bin/app.dll", 404),
        // Extensions.
        ("GET", "/web.config", 404),
        ("GET", "/sub/Web.CONFIG", 404),
        ("GET", "/.env", 404),
        ("GET", "/prod%2Eenv", 404),
        // Escaped twice: %252e is "%2e" after one decoding.
        ("GET", "/%252e%252e/etc/passwd", 400),
        ("GET", "/a%25%32%65git", 400),
        // Lengths: the path and the query separately.
        ("GET", &format!("/{}", "a".repeat(64)), 414),
        ("GET", &format!("/{}", "a".repeat(63)), 200),
        ("GET", &format!("/?{}", "q".repeat(17)), 414),
        ("GET", &format!("/?{}", "q".repeat(16)), 200),
        // Methods.
        ("TRACE", "/", 405),
        ("TRACK", "/", 405),
        ("POST", "/", 200),
    ];
    for (method, target, want) in cases {
        assert_eq!(status(a, method, target).await, *want, "{method} {target}");
    }
}

#[tokio::test]
async fn defaults_apply_without_options() {
    let toml = SITE.replace(
        "max_url_length = 64\nmax_query_length = 16\ndeny_path_segments = [\".git\", \"bin\"]\n\
         deny_extensions = [\".config\", \".env\"]\n",
        "",
    );
    assert!(!toml.contains("max_url_length"));
    let server = start(&toml, &[]).await;
    let a = server.addr;
    assert_eq!(status(a, "GET", "/.git/config").await, 404);
    assert_eq!(
        status(a, "GET", "/bin/x").await,
        200,
        "bin is not denied by default"
    );
    assert_eq!(status(a, "GET", "/.env").await, 404);
    assert_eq!(status(a, "TRACE", "/").await, 405);
    assert_eq!(
        status(a, "GET", &format!("/{}", "a".repeat(4000))).await,
        200
    );
    assert_eq!(
        status(a, "GET", &format!("/{}", "a".repeat(4096))).await,
        414
    );
    assert_eq!(
        status(a, "GET", &format!("/?{}", "q".repeat(2049))).await,
        414
    );
}

#[tokio::test]
async fn the_same_over_http2() {
    let server = start(SITE, &[]).await;
    let client = h2c();
    for (path, want) in [("/ok", 200), ("/x/.Git/HEAD", 404), ("/%252e", 400)] {
        let resp = client.get(server.url(path)).send().await.unwrap();
        assert_eq!(resp.version(), reqwest::Version::HTTP_2);
        assert_eq!(resp.status(), want, "{path}");
    }
    let trace = reqwest::Method::from_bytes(b"TRACE").unwrap();
    let resp = client.request(trace, server.url("/")).send().await.unwrap();
    assert_eq!(resp.status(), 405);
}

//! The `ip_filter` stage over real sockets (HTTP/1.1 and HTTP/2): allow and deny lists on
//! the client IP, deny winning, 403 for the rest, per site or per route.

mod common;

use common::*;

const SITE: &str = r#"
[[sites]]
hosts = ["*"]
root = "."

[[sites.routes]]
path = "/open"
handler = { type = "respond", status = 200, body = "open" }

[[sites.routes]]
path = "/local"
use = [{ type = "ip_filter", allow = ["127.0.0.0/8", "::1"] }]
handler = { type = "respond", status = 200, body = "local" }

[[sites.routes]]
path = "/denied"
use = [{ type = "ip_filter", allow = ["127.0.0.0/8"], deny = ["127.0.0.1"] }]
handler = { type = "respond", status = 200, body = "never" }

[[sites.routes]]
path = "/elsewhere"
use = [{ type = "ip_filter", allow = ["10.0.0.0/8"] }]
handler = { type = "respond", status = 200, body = "never" }
"#;

async fn status(addr: std::net::SocketAddr, path: &str) -> u16 {
    status_of(&request(addr, "GET", path, "").await)
}

#[tokio::test]
async fn allow_and_deny_over_http1() {
    let server = start(SITE, &[]).await;
    assert_eq!(status(server.addr, "/open").await, 200);
    assert_eq!(status(server.addr, "/local").await, 200);
    assert_eq!(
        status(server.addr, "/denied").await,
        403,
        "deny wins over allow"
    );
    assert_eq!(status(server.addr, "/elsewhere").await, 403, "not in allow");
}

#[tokio::test]
async fn the_same_over_http2() {
    let server = start(SITE, &[]).await;
    let client = h2c();
    for (path, expected) in [("/local", 200), ("/denied", 403), ("/elsewhere", 403)] {
        let resp = client.get(server.url(path)).send().await.unwrap();
        assert_eq!(resp.version(), reqwest::Version::HTTP_2);
        assert_eq!(resp.status(), expected, "{path}");
    }
}

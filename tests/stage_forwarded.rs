//! The `forwarded_headers` stage over real sockets (HTTP/1.1 and HTTP/2): the client IP,
//! scheme and host believed only from trusted proxies, hop by hop up to `forward_limit`,
//! seen by later stages (`{client_ip}`, `ip_filter`) and by the access log.

mod common;

use common::*;

/// A site whose responses say which client it saw; `stage` is the forwarded_headers table.
fn site(stage: &str) -> String {
    format!(
        r#"
[[sites]]
hosts = ["*"]
root = "."

[[sites.use]]
type = "forwarded_headers"
{stage}

[[sites.use]]
type = "headers"
response = {{ set = {{ "x-client" = "{{client_ip}}" }} }}

[[sites.routes]]
path = "/*"
handler = {{ type = "respond", status = 200, body = "ok" }}
"#
    )
}

async fn client_seen(addr: std::net::SocketAddr, extra: &str) -> String {
    let resp = request(addr, "GET", "/", extra).await;
    assert_eq!(status_of(&resp), 200, "{resp}");
    header_of(&resp, "x-client").unwrap_or_default().to_owned()
}

#[tokio::test]
async fn a_loopback_proxy_is_trusted_by_default_for_one_hop() {
    let server = start(&site(""), &[]).await;
    let xff = "x-forwarded-for: 198.51.100.9, 203.0.113.7\r\n";
    assert_eq!(client_seen(server.addr, xff).await, "203.0.113.7");
    assert_eq!(client_seen(server.addr, "").await, "127.0.0.1");
    // Not a node address: nothing is believed.
    let junk = "x-forwarded-for: not-an-ip\r\n";
    assert_eq!(client_seen(server.addr, junk).await, "127.0.0.1");
    // RFC 7239 is opt-in.
    let fwd = "forwarded: for=192.0.2.1\r\n";
    assert_eq!(client_seen(server.addr, fwd).await, "127.0.0.1");
}

#[tokio::test]
async fn hops_are_walked_while_trusted_up_to_the_limit() {
    let stage = r#"trusted_proxies = ["127.0.0.1", "10.0.0.0/8"]
forward_limit = 3"#;
    let server = start(&site(stage), &[]).await;
    let chain = "x-forwarded-for: 198.51.100.9, 10.1.1.1\r\nx-forwarded-for: 10.2.2.2\r\n";
    assert_eq!(client_seen(server.addr, chain).await, "198.51.100.9");
    // 192.0.2.5 is not a trusted proxy: what it says about 198.51.100.9 is not believed.
    let spoofed = "x-forwarded-for: 198.51.100.9, 192.0.2.5, 10.1.1.1\r\n";
    assert_eq!(client_seen(server.addr, spoofed).await, "192.0.2.5");
    // More hops than the limit: the walk stops after three.
    let long = "x-forwarded-for: 198.51.100.9, 10.0.0.4, 10.0.0.3, 10.0.0.2\r\n";
    assert_eq!(client_seen(server.addr, long).await, "10.0.0.4");
}

#[tokio::test]
async fn an_untrusted_peer_is_not_believed() {
    let server = start(&site(r#"trusted_proxies = ["10.0.0.0/8"]"#), &[]).await;
    let xff = "x-forwarded-for: 203.0.113.7\r\n";
    assert_eq!(client_seen(server.addr, xff).await, "127.0.0.1");
}

#[tokio::test]
async fn rfc_7239_forwarded_when_enabled() {
    let stage = r#"headers = ["forwarded", "x-forwarded-for"]"#;
    let server = start(&site(stage), &[]).await;
    let fwd = "forwarded: for=\"[2001:db8::7]:4711\";proto=https;host=example.com\r\n";
    assert_eq!(client_seen(server.addr, fwd).await, "2001:db8::7");
    let xff = "x-forwarded-for: 203.0.113.7\r\n";
    assert_eq!(client_seen(server.addr, xff).await, "203.0.113.7");
}

#[tokio::test]
async fn the_same_over_http2_and_ip_filter_sees_the_resolved_client() {
    let toml = format!(
        "{}\n[[sites.routes.use]]\ntype = \"ip_filter\"\ndeny = [\"203.0.113.0/24\"]\n",
        site("")
    );
    let server = start(&toml, &[]).await;
    let client = h2c();
    let get = |ip: &'static str| {
        client
            .get(server.url("/"))
            .header("x-forwarded-for", ip)
            .send()
    };
    let ok = get("198.51.100.1").await.unwrap();
    assert_eq!(ok.version(), reqwest::Version::HTTP_2);
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.headers()["x-client"], "198.51.100.1");
    let denied = get("203.0.113.7").await.unwrap();
    assert_eq!(denied.status(), 403);
    assert_eq!(denied.headers()["x-client"], "203.0.113.7");
}

#[tokio::test]
async fn the_access_log_shows_the_resolved_client_and_keeps_the_peer() {
    let mut served = serve_binary(&format!("[log]\naccess_log = \"json\"\n{}", site(""))).await;
    let client = reqwest::Client::builder().timeout(STEP).build().unwrap();
    let resp = client
        .get(format!("{}/logged", served.url))
        .header("x-forwarded-for", "203.0.113.7")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let line = line_where(&mut served.stdout, |line| line.contains("/logged")).await;
    let json: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(json["remote_addr"], "203.0.113.7", "{line}");
    assert_eq!(json["peer_addr"], "127.0.0.1", "{line}");
}

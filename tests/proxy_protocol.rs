//! `proxy_protocol = true` on endpoints: PROXY v1 and v2 headers over raw TCP and from
//! curl (`--haproxy-protocol`), before HTTP and before TLS; the source address becomes the
//! client IP; connections without a valid header are closed.

mod common;

use std::net::SocketAddr;

use common::*;
use tokio::io::AsyncWriteExt;

/// Echoes the client IP the pipeline saw in `x-client`.
const SITE: &str = r#"
[[sites]]
hosts = ["*"]
root = "."

[[sites.use]]
type = "headers"
response = { set = { "x-client" = "{client_ip}" } }

[[sites.routes]]
path = "/*"
handler = { type = "respond", status = 200, body = "ok" }
"#;

/// Serves [`SITE`] on a plain HTTP endpoint with `proxy_protocol = true`; `extra` is added to
/// the settings. The directory must outlive the server.
async fn serve(extra: &str) -> (pki::Https, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "[[endpoints]]\nurl = \"http://127.0.0.1:0\"\nproxy_protocol = true\n{extra}\n{SITE}"
    );
    (pki::serve(dir.path(), &toml, None).await, dir)
}

const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";

fn client_of(resp: &str) -> Option<&str> {
    header_of(resp, "x-client")
}

fn v2(src: SocketAddr, dst: SocketAddr) -> Vec<u8> {
    ppp::v2::Builder::with_addresses(
        ppp::v2::Version::Two | ppp::v2::Command::Proxy,
        ppp::v2::Protocol::Stream,
        (src, dst),
    )
    .build()
    .unwrap()
}

#[tokio::test]
async fn v1_and_v2_headers_give_the_client_ip() {
    let (server, _dir) = serve("").await;
    let addr = server.addr();
    let v1 = [
        b"PROXY TCP4 1.2.3.4 5.6.7.8 1111 80\r\n".as_slice(),
        REQUEST,
    ]
    .concat();
    let resp = exchange(addr, &v1).await;
    assert_eq!(client_of(&resp), Some("1.2.3.4"), "{resp}");
    let v1_6 = [
        b"PROXY TCP6 2001:db8::5 2001:db8::1 1111 80\r\n".as_slice(),
        REQUEST,
    ]
    .concat();
    let resp = exchange(addr, &v1_6).await;
    assert_eq!(client_of(&resp), Some("2001:db8::5"), "{resp}");
    let header = v2("9.8.7.6:4000".parse().unwrap(), addr);
    let resp = exchange(addr, &[header.as_slice(), REQUEST].concat()).await;
    assert_eq!(client_of(&resp), Some("9.8.7.6"), "{resp}");
    // UNKNOWN (the proxy speaking for itself): the real peer.
    let unknown = [b"PROXY UNKNOWN\r\n".as_slice(), REQUEST].concat();
    let resp = exchange(addr, &unknown).await;
    assert_eq!(client_of(&resp), Some("127.0.0.1"), "{resp}");
}

#[tokio::test]
async fn connections_without_a_valid_header_are_closed() {
    let (server, _dir) = serve("").await;
    let addr = server.addr();
    assert_eq!(exchange(addr, REQUEST).await, "");
    let bad = [b"PROXY TCP4 1.2.3.4 nonsense\r\n".as_slice(), REQUEST].concat();
    assert_eq!(exchange(addr, &bad).await, "");
}

#[tokio::test]
async fn a_silent_connection_is_closed_after_the_header_timeout() {
    let (server, _dir) = serve("[limits]\nrequest_headers_timeout = \"200ms\"").await;
    let addr = server.addr();
    let mut s = connect(addr).await;
    s.write_all(b"PROXY TCP4 1.2.").await.unwrap();
    // read_to_close is bounded by STEP: the server must close well before, but not before
    // the timeout (the header is incomplete, not invalid).
    let started = std::time::Instant::now();
    assert_eq!(read_to_close(&mut s).await, "");
    let waited = started.elapsed();
    assert!(
        waited >= std::time::Duration::from_millis(100) && waited < STEP,
        "{waited:?}"
    );
}

#[test]
fn curl_haproxy_protocol() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (server, _dir) = rt.block_on(serve(""));
    let addr = server.addr();
    let out = std::process::Command::new("curl")
        .args(["-sS", "-D", "-", "--max-time", "10", "--haproxy-protocol"])
        .arg(format!("http://{addr}/"))
        .output()
        .expect("curl runs");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{text} {:?}", out.status);
    // curl sends its own connection's addresses: the client IP is curl's, 127.0.0.1.
    assert!(text.contains("x-client: 127.0.0.1"), "{text}");
    assert!(text.ends_with("ok"), "{text}");
}

#[test]
fn curl_over_tls_and_http2_sends_the_header_before_the_handshake() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let ca = pki::Ca::new("proxy test CA");
    let dir = pki::site(&ca, &["localhost"]);
    let ca_file = ca.write(dir.path(), "ca.pem");
    let toml = format!("{}{SITE}", pki::https_endpoint("proxy_protocol = true"));
    let server = rt.block_on(async { pki::serve(dir.path(), &toml, None).await });
    let port = server.addr().port();
    let out = std::process::Command::new("curl")
        .args([
            "-sS",
            "-D",
            "-",
            "--max-time",
            "10",
            "--haproxy-protocol",
            "--http2",
        ])
        .arg("--cacert")
        .arg(&ca_file)
        .args(["--resolve", &format!("localhost:{port}:127.0.0.1")])
        .arg(format!("https://localhost:{port}/"))
        .output()
        .expect("curl runs");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{text} {err}");
    assert!(text.starts_with("HTTP/2 200"), "{text}");
    assert!(text.contains("x-client: 127.0.0.1"), "{text}");
    drop(server);
    drop(rt);
}

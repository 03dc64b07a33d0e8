//! Each endpoint speaks only the protocols it lists; several endpoints run at once.

mod common;

use common::*;
use harrier::config::{self, LoadOptions};
use harrier::Server;

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

async fn h2_settings_received(addr: std::net::SocketAddr) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = connect(addr).await;
    s.write_all(PREFACE).await.unwrap();
    s.write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0]).await.unwrap(); // empty SETTINGS
    let mut head = [0u8; 9];
    match tokio::time::timeout(STEP, s.read_exact(&mut head))
        .await
        .expect("bounded")
    {
        Ok(_) => head[3] == 4, // the server's SETTINGS frame
        Err(_) => false,
    }
}

#[tokio::test]
async fn endpoints_serve_only_their_protocols() {
    let toml = r#"
[[endpoints]]
url = "http://127.0.0.1:0"
protocols = ["http1"]

[[endpoints]]
url = "http://127.0.0.1:0"
protocols = ["http2"]

[[endpoints]]
url = "http://127.0.0.1:0"
"#;
    let (addrs, _stop, _dir) = start_endpoints(toml, &[("index.html", b"hi")]).await;
    assert_eq!(addrs.len(), 3);
    let get = b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";

    // http1 only: HTTP/1.1 answered, the HTTP/2 preface is not.
    assert_eq!(status_of(&exchange(addrs[0], get).await), 200);
    assert!(!h2_settings_received(addrs[0]).await);
    // http2 only: the reverse.
    assert_eq!(exchange(addrs[1], get).await, "");
    assert!(h2_settings_received(addrs[1]).await);
    // both (the default).
    assert_eq!(status_of(&exchange(addrs[2], get).await), 200);
    assert!(h2_settings_received(addrs[2]).await);

    let client = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let resp = client
        .get(format!("http://{}/", addrs[1]))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.version(), reqwest::Version::HTTP_2);
    assert_eq!(resp.text().await.unwrap(), "hi");
}

#[tokio::test]
async fn ipv6_loopback_endpoint() {
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        // No IPv6 on this machine: binding must then fail with a clear startup error.
        let dir = tempfile::tempdir().unwrap();
        let opts = LoadOptions {
            app_dir: dir.path().to_path_buf(),
            ..LoadOptions::default()
        };
        let cfg = config::load_str(
            "[[endpoints]]\nurl = \"http://[::1]:0\"\n",
            &dir.path().join("h.toml"),
            &opts,
        )
        .unwrap();
        let err = Server::from_config(cfg)
            .bind()
            .await
            .err()
            .expect("bind must fail without IPv6");
        assert!(err.to_string().contains("[::1]"), "{err}");
        return;
    }
    let (addrs, _stop, _dir) = start_endpoints(
        "[[endpoints]]\nurl = \"http://[::1]:0\"\n",
        &[("index.html", b"hi")],
    )
    .await;
    assert!(addrs[0].is_ipv6());
    let resp = exchange(
        addrs[0],
        b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status_of(&resp), 200, "{resp}");
}

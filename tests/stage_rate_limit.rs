//! The `rate_limit` stage over real sockets (HTTP/1.1 and HTTP/2): a burst passes, the rest
//! gets 429 with Retry-After, other clients are unaffected, and the clients remembered stay
//! bounded.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::*;
use harrier::middleware::rate_limit::Limiter;
use tokio::io::AsyncWriteExt;

/// One token an hour: nothing refills while a test runs, so counts are exact.
fn site(options: &str) -> String {
    format!(
        r#"
[[sites]]
hosts = ["*"]
root = "."

[[sites.use]]
type = "rate_limit"
rate = "1/h"
{options}

[[sites.routes]]
handler = {{ type = "respond", status = 200, body = "ok" }}
"#
    )
}

/// A GET over HTTP/1.1 from `from` (a loopback address) with `extra` header lines.
async fn get_from(addr: SocketAddr, from: &str, extra: &str) -> String {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(format!("{from}:0").parse().unwrap()).unwrap();
    let mut s = tokio::time::timeout(STEP, socket.connect(addr))
        .await
        .expect("connect timeout")
        .expect("connect");
    let req = format!("GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n{extra}\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    read_to_close(&mut s).await
}

async fn get_key(addr: SocketAddr, key: &str) -> String {
    get_from(addr, "127.0.0.1", &format!("x-api-key: {key}\r\n")).await
}

/// Checks a 429's Retry-After: one token an hour, the bucket just emptied, so the next
/// token is about an hour off.
#[track_caller]
fn assert_retry_after(value: Option<&str>, resp: &dyn std::fmt::Debug) {
    let wait: Option<u64> = value.and_then(|v| v.parse().ok());
    assert!(
        wait.is_some_and(|w| (3500..=3600).contains(&w)),
        "Retry-After {value:?}: {resp:?}"
    );
}

/// Statuses of `n` requests with `key`, checking every 429's Retry-After.
async fn burst(addr: SocketAddr, key: &str, n: usize) -> Vec<u16> {
    let mut statuses = Vec::new();
    for _ in 0..n {
        let resp = get_key(addr, key).await;
        let status = status_of(&resp);
        if status == 429 {
            assert_retry_after(header_of(&resp, "retry-after"), &resp);
        }
        statuses.push(status);
    }
    statuses
}

#[tokio::test]
async fn a_burst_passes_then_429_and_other_keys_are_unaffected() {
    let server = start(&site("key = \"header:x-api-key\"\nburst = 3"), &[]).await;
    assert_eq!(
        burst(server.addr, "alpha", 5).await,
        [200, 200, 200, 429, 429]
    );
    assert_eq!(burst(server.addr, "beta", 4).await, [200, 200, 200, 429]);
    // No header: all such requests share one bucket.
    let anon: Vec<u16> = {
        let mut v = Vec::new();
        for _ in 0..4 {
            v.push(status_of(&get_from(server.addr, "127.0.0.1", "").await));
        }
        v
    };
    assert_eq!(anon, [200, 200, 200, 429]);
    assert_eq!(status_of(&get_key(server.addr, "alpha").await), 429);
}

#[tokio::test]
async fn client_ip_is_the_default_key() {
    let server = start(&site("burst = 2"), &[]).await;
    let mut statuses = Vec::new();
    for _ in 0..3 {
        // A different api key does not help: the address is what counts.
        let key = format!("x-api-key: {}\r\n", statuses.len());
        statuses.push(status_of(&get_from(server.addr, "127.0.0.1", &key).await));
    }
    assert_eq!(statuses, [200, 200, 429]);
    // Another loopback address is another client.
    let other = get_from(server.addr, "127.0.0.2", "").await;
    assert_eq!(status_of(&other), 200, "{other}");
}

#[tokio::test]
async fn the_same_over_http2() {
    let server = start(&site("key = \"header:x-api-key\"\nburst = 2"), &[]).await;
    let client = h2c();
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let resp = client
            .get(server.url("/"))
            .header("x-api-key", "h2")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.version(), reqwest::Version::HTTP_2);
        if resp.status() == 429 {
            let value = resp
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap());
            assert_retry_after(value, &resp);
        }
        statuses.push(resp.status().as_u16());
    }
    assert_eq!(statuses, [200, 200, 429]);
    let other = client
        .get(server.url("/"))
        .header("x-api-key", "h2-other")
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 200);
}

#[tokio::test]
async fn clients_remembered_are_bounded() {
    // Four places in all: once many other keys have come by, the first is forgotten (and
    // so gets a fresh bucket), instead of the table growing with every key.
    let server = start(
        &site("key = \"header:x-api-key\"\nburst = 1\nmax_clients = 4"),
        &[],
    )
    .await;
    assert_eq!(burst(server.addr, "first", 2).await, [200, 429]);
    for i in 0..200 {
        assert_eq!(
            status_of(&get_key(server.addr, &format!("k{i}")).await),
            200
        );
    }
    assert_eq!(status_of(&get_key(server.addr, "first").await), 200);

    // The same, counted directly.
    let limiter = Limiter::new(1, Duration::from_secs(3600), 1, 1000);
    let now = Instant::now();
    for i in 0..100_000u32 {
        let _ = limiter.check(&i.to_le_bytes(), now);
    }
    assert!(limiter.tracked() <= 1000, "{}", limiter.tracked());
    assert!(limiter.tracked() >= 900, "{}", limiter.tracked());
}

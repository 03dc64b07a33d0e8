//! Kestrel's limits and hostile HTTP/1.1 framing, over raw TCP against the real server.

mod common;

use std::time::{Duration, Instant};

use common::*;
use harrier::body::{self, Body};
use harrier::pipeline::{body_error_response, handler_fn, Handler};
use http::{Request, Response};
use http_body_util::BodyExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Echoes the request body; body errors become their status (413, 408, 400).
fn echo() -> Handler {
    handler_fn(|req: Request<Body>| async move {
        match req.into_body().collect().await {
            Ok(c) => Response::new(body::full(c.to_bytes())),
            Err(e) => body_error_response(&e),
        }
    })
}

async fn assert_refused(toml: &str, handler: Option<Handler>, request: &[u8], status: u16) {
    let server = match handler {
        Some(h) => start_with(toml, h).await,
        None => start(toml, &[("index.html", b"hi")]).await,
    };
    let resp = exchange(server.addr, request).await;
    assert_eq!(
        status_of(&resp),
        status,
        "request {:?} got {resp:?}",
        String::from_utf8_lossy(request)
    );
    assert!(
        resp.to_ascii_lowercase().contains("connection: close"),
        "{resp}"
    );
}

#[tokio::test]
async fn a_request_line_past_the_limit_gets_414() {
    let req = format!("GET /{} HTTP/1.1\r\nHost: a\r\n\r\n", "a".repeat(2000));
    assert_refused(
        "[limits]\nmax_request_line_size = \"1KiB\"\n",
        None,
        req.as_bytes(),
        414,
    )
    .await;
    // Far past hyper's own buffer as well.
    let req = format!("GET /{} HTTP/1.1\r\nHost: a\r\n\r\n", "a".repeat(100_000));
    assert_refused("", None, req.as_bytes(), 414).await;
}

#[tokio::test]
async fn too_many_or_too_large_headers_get_431() {
    let mut req = String::from("GET / HTTP/1.1\r\nHost: a\r\n");
    for i in 0..5 {
        req.push_str(&format!("x-{i}: v\r\n"));
    }
    req.push_str("\r\n");
    assert_refused(
        "[limits]\nmax_request_header_count = 5\n",
        None,
        req.as_bytes(),
        431,
    )
    .await;

    let req = format!(
        "GET / HTTP/1.1\r\nHost: a\r\nx-big: {}\r\n\r\n",
        "v".repeat(2000)
    );
    assert_refused(
        "[limits]\nmax_request_headers_total_size = \"1KiB\"\n",
        None,
        req.as_bytes(),
        431,
    )
    .await;
}

#[tokio::test]
async fn within_limits_is_served() {
    let server = start(
        "[limits]\nmax_request_header_count = 5\n",
        &[("index.html", b"hi")],
    )
    .await;
    let resp = exchange(
        server.addr,
        b"GET / HTTP/1.1\r\nHost: a\r\nx-1: v\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status_of(&resp), 200, "{resp}");
    assert!(resp.ends_with("hi"));
}

#[tokio::test]
async fn more_headers_than_hyper_parses_by_default_when_configured() {
    let server = start(
        "[limits]\nmax_request_header_count = 150\n",
        &[("index.html", b"hi")],
    )
    .await;
    let mut req = String::from("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n");
    for i in 0..140 {
        req.push_str(&format!("x-{i}: v\r\n"));
    }
    req.push_str("\r\n");
    let resp = exchange(server.addr, req.as_bytes()).await;
    assert_eq!(status_of(&resp), 200, "{resp}");
}

#[tokio::test]
async fn a_declared_body_past_the_limit_gets_413_before_it_is_sent() {
    let server = start_with("[limits]\nmax_request_body_size = 100\n", echo()).await;
    // Only the head is sent: the answer must not wait for the body.
    let resp = exchange(
        server.addr,
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\n\r\n",
    )
    .await;
    assert_eq!(status_of(&resp), 413, "{resp}");
}

#[tokio::test]
async fn a_chunked_body_growing_past_the_limit_gets_413() {
    let mut req = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..4 {
        req.extend_from_slice(b"40\r\n");
        req.extend_from_slice(&[b'x'; 64]);
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"0\r\n\r\n");
    assert_refused(
        "[limits]\nmax_request_body_size = 100\n",
        Some(echo()),
        &req,
        413,
    )
    .await;
}

#[tokio::test]
async fn a_body_within_the_limit_is_echoed() {
    let server = start_with("[limits]\nmax_request_body_size = 100\n", echo()).await;
    let resp = exchange(
        server.addr,
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    )
    .await;
    assert_eq!(status_of(&resp), 200, "{resp}");
    assert!(resp.ends_with("hello"), "{resp}");
}

#[tokio::test]
async fn hostile_framing_gets_400_and_a_closed_connection() {
    let cases: &[&[u8]] = &[
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +3\r\n\r\nabc",
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 4\r\n\r\nabc",
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabc",
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
        b"GET / HTTP/1.1\nHost: a\n\n",
        b"GET / HTTP/1.1\r\nHost: a\rX: y\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nX: y\r\n  folded\r\n\r\n",
        b"GET / HTTP/1.1\r\n Host: a\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost a\r\n\r\n",
        b"GET / HTTP/1.1\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n",
    ];
    let server = start_with("", echo()).await;
    for case in cases {
        let resp = exchange(server.addr, case).await;
        assert_eq!(
            status_of(&resp),
            400,
            "request {:?} got {resp:?}",
            String::from_utf8_lossy(case)
        );
    }
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order() {
    let server = start("", &[("a.txt", b"AAA"), ("b.txt", b"BBB")]).await;
    let resp = exchange(
        server.addr,
        b"GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\nGET /b.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    let a = resp.find("AAA").expect("first response");
    let b = resp.find("BBB").expect("second response");
    assert!(a < b, "{resp}");
    // A bad request after a good one: the good one is answered first, then 400.
    let resp = exchange(
        server.addr,
        b"GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\nGET /b.txt HTTP/1.1\nHost: x\n\n",
    )
    .await;
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    assert!(
        resp.contains("AAA") && resp.contains("HTTP/1.1 400"),
        "{resp}"
    );
}

#[tokio::test]
async fn an_incomplete_head_gets_408_after_request_headers_timeout() {
    let server = start("[limits]\nrequest_headers_timeout = \"500ms\"\n", &[]).await;
    let mut s = connect(server.addr).await;
    s.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n").await.unwrap();
    let start = Instant::now();
    let resp = read_to_close(&mut s).await;
    assert_eq!(status_of(&resp), 408, "{resp}");
    assert!(
        start.elapsed() >= Duration::from_millis(400),
        "closed too early: {:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn a_silent_connection_is_closed_after_request_headers_timeout() {
    let server = start("[limits]\nrequest_headers_timeout = \"500ms\"\n", &[]).await;
    let mut s = connect(server.addr).await;
    let start = Instant::now();
    let resp = read_to_close(&mut s).await;
    assert_eq!(resp, "");
    // Closed by the timeout, not at once.
    assert!(
        start.elapsed() >= Duration::from_millis(400),
        "closed after {:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_keep_alive_timeout() {
    let server = start(
        "[limits]\nkeep_alive_timeout = \"700ms\"\n",
        &[("index.html", b"hi")],
    )
    .await;
    let mut s = kept_alive(server.addr).await;
    let start = Instant::now();
    let rest = read_to_close(&mut s).await;
    assert_eq!(rest, "");
    let idle = start.elapsed();
    assert!(idle >= Duration::from_millis(500), "closed after {idle:?}");
}

/// Past `RELEASE_IDLE_AFTER` an idle connection gives up hyper's state and only its socket
/// waits; the same connection must go on serving as before: plain requests, a head split
/// across an idle gap, pipelined requests, a request with a body.
#[tokio::test]
async fn a_connection_idle_past_its_release_serves_on() {
    let server = start("", &[("a.txt", b"AAA"), ("b.txt", b"BBB")]).await;
    let idle = harrier::limits::RELEASE_IDLE_AFTER * 5;
    let mut s = connect(server.addr).await;
    for _ in 0..3 {
        s.write_all(b"GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let resp = read_response(&mut s).await;
        assert!(
            resp.starts_with("HTTP/1.1 200") && resp.ends_with("AAA"),
            "{resp}"
        );
        tokio::time::sleep(idle).await;
    }
    s.write_all(b"GET /b.txt HTTP/1.1\r\nHo").await.unwrap();
    tokio::time::sleep(idle).await;
    s.write_all(b"st: x\r\n\r\n").await.unwrap();
    let resp = read_response(&mut s).await;
    assert!(
        resp.starts_with("HTTP/1.1 200") && resp.ends_with("BBB"),
        "{resp}"
    );
    tokio::time::sleep(idle).await;
    s.write_all(b"POST /a.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nbody")
        .await
        .unwrap();
    assert_eq!(status_of(&read_response(&mut s).await), 405);
    tokio::time::sleep(idle).await;
    s.write_all(
        b"GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\nGET /b.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await
    .unwrap();
    let resp = read_to_close(&mut s).await;
    let (a, b) = (resp.find("AAA"), resp.find("BBB"));
    assert!(a.is_some() && a < b, "{resp}");
    assert_eq!(resp.matches("HTTP/1.1 200").count(), 2, "{resp}");
}

#[tokio::test]
async fn a_slow_upload_is_cut_off_with_408() {
    let toml = "[limits]\nmin_request_body_data_rate = { bytes_per_second = 1000, grace_period = \"500ms\" }\n";
    let server = start_with(toml, echo()).await;
    let mut s = connect(server.addr).await;
    s.write_all(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\nabc")
        .await
        .unwrap();
    let resp = read_to_close(&mut s).await;
    assert_eq!(status_of(&resp), 408, "{resp}");
}

#[tokio::test]
async fn a_client_that_does_not_read_is_cut_off() {
    let toml = "[limits]\nmin_response_data_rate = { bytes_per_second = 20_000_000, grace_period = \"500ms\" }\n";
    const TOTAL: usize = 256 * 1024 * 1024;
    let handler = handler_fn(|_req: Request<Body>| async move {
        let chunk = bytes::Bytes::from(vec![b'x'; 1024 * 1024]);
        let stream =
            futures_util::stream::iter((0..TOTAL / chunk.len()).map(move |_| {
                Ok::<_, harrier::body::BoxError>(http_body::Frame::data(chunk.clone()))
            }));
        Response::new(http_body_util::StreamBody::new(stream).boxed_unsync())
    });
    let server = start_with(toml, handler).await;
    let mut s = connect(server.addr).await;
    s.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        .await
        .unwrap();
    // Read a little, then stop reading: the server must give up on us.
    let mut buf = vec![0u8; 64 * 1024];
    let mut got = s.read(&mut buf).await.unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let drain = async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got += n,
            }
        }
    };
    tokio::time::timeout(STEP, drain)
        .await
        .expect("connection was not closed");
    assert!(
        got < TOTAL,
        "the whole response was sent to a client that did not read"
    );
}

#[tokio::test]
async fn connections_past_max_concurrent_connections_are_closed() {
    let server = start(
        "[limits]\nmax_concurrent_connections = 2\n",
        &[("index.html", b"hi")],
    )
    .await;
    let mut kept = Vec::new();
    for _ in 0..2 {
        kept.push(kept_alive(server.addr).await);
    }
    let mut third = connect(server.addr).await;
    let _ = third.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n").await;
    assert_eq!(read_to_close(&mut third).await, "");
    drop(kept.pop());
    // The permit comes back once the server notices the close.
    let deadline = Instant::now() + STEP;
    loop {
        let resp = exchange(
            server.addr,
            b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
        )
        .await;
        if status_of(&resp) == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the freed connection slot was never reused"
        );
        tokio::task::yield_now().await;
    }
}

#[tokio::test]
async fn date_and_server_headers() {
    let server = start("", &[("index.html", b"hi")]).await;
    let resp = exchange(
        server.addr,
        b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    )
    .await
    .to_ascii_lowercase();
    assert!(resp.contains("\r\nserver: harrier\r\n"), "{resp}");
    assert!(resp.contains("\r\ndate: "), "{resp}");
    let server = start(
        "[server]\nadd_server_header = false\n",
        &[("index.html", b"hi")],
    )
    .await;
    let resp = exchange(
        server.addr,
        b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    )
    .await
    .to_ascii_lowercase();
    assert!(!resp.contains("server:"), "{resp}");
    assert!(resp.contains("\r\ndate: "), "{resp}");
}

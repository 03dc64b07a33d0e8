//! Graceful shutdown: in-flight requests finish, new connections are refused, limits hold.

mod common;

use std::time::{Duration, Instant};

use common::*;
use harrier::body::{self, Body};
use harrier::pipeline::handler_fn;
use http::{Request, Response};
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

/// A handler that reports each request it starts and answers after `delay`.
fn slow(delay: Duration) -> (harrier::pipeline::Handler, mpsc::UnboundedReceiver<()>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let handler = handler_fn(move |_req: Request<Body>| {
        let tx = tx.clone();
        async move {
            let _ = tx.send(());
            tokio::time::sleep(delay).await;
            Response::new(body::full("done"))
        }
    });
    (handler, rx)
}

async fn refused(addr: std::net::SocketAddr) -> bool {
    tokio::net::TcpStream::connect(addr).await.is_err()
}

#[tokio::test]
async fn an_in_flight_request_completes_and_new_connections_are_refused() {
    let (handler, mut started) = slow(Duration::from_millis(800));
    let mut server = start_with("[server]\nshutdown_timeout = \"10s\"\n", handler).await;
    let addr = server.addr;
    let mut s = connect(addr).await;
    s.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        .await
        .unwrap();
    tokio::time::timeout(STEP, started.recv())
        .await
        .unwrap()
        .unwrap();

    let stopped = server.shutdown();
    // Listeners close promptly; the in-flight request is still running.
    let deadline = Instant::now() + STEP;
    while !refused(addr).await {
        assert!(
            Instant::now() < deadline,
            "listener still accepting after shutdown"
        );
        tokio::task::yield_now().await;
    }
    let resp = read_response(&mut s).await;
    assert_eq!(status_of(&resp), 200, "{resp}");
    assert!(resp.ends_with("done"), "{resp}");
    tokio::time::timeout(STEP, stopped)
        .await
        .expect("server did not stop")
        .unwrap();
}

#[tokio::test]
async fn shutdown_delay_keeps_serving_before_closing_listeners() {
    let (handler, _started) = slow(Duration::ZERO);
    let mut server = start_with("[server]\nshutdown_delay = \"2s\"\n", handler).await;
    let stopped = server.shutdown();
    let resp = exchange(
        server.addr,
        b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(
        status_of(&resp),
        200,
        "new requests are served during shutdown_delay: {resp}"
    );
    tokio::time::timeout(STEP, stopped)
        .await
        .expect("server did not stop")
        .unwrap();
    assert!(refused(server.addr).await);
}

#[tokio::test]
async fn shutdown_timeout_closes_what_is_left() {
    let (handler, mut started) = slow(Duration::from_secs(3600));
    let mut server = start_with("[server]\nshutdown_timeout = \"300ms\"\n", handler).await;
    let mut s = connect(server.addr).await;
    s.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        .await
        .unwrap();
    tokio::time::timeout(STEP, started.recv())
        .await
        .unwrap()
        .unwrap();
    let begin = Instant::now();
    tokio::time::timeout(STEP, server.shutdown())
        .await
        .expect("server did not stop")
        .unwrap();
    assert!(begin.elapsed() >= Duration::from_millis(250));
    assert_eq!(
        read_to_close(&mut s).await,
        "",
        "the stuck request is cut off without a response"
    );
}

#[tokio::test]
async fn idle_keep_alive_connections_are_closed_at_shutdown() {
    let mut server = start("", &[("index.html", b"hi")]).await;
    // One connection idle long enough to have released hyper's state, one just answered.
    let mut idle = Vec::new();
    for _ in 0..2 {
        idle.push(kept_alive(server.addr).await);
        if idle.len() == 1 {
            tokio::time::sleep(harrier::limits::RELEASE_IDLE_AFTER * 5).await;
        }
    }
    let stopped = server.shutdown();
    for s in &mut idle {
        assert_eq!(read_to_close(s).await, "");
    }
    tokio::time::timeout(STEP, stopped)
        .await
        .expect("server did not stop")
        .unwrap();
}

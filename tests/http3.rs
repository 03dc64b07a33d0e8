//! HTTP/3 over real QUIC sockets: an h3 + h3-quinn + quinn client trusting a CA made here,
//! reqwest for the TCP side (alt-svc), and raw QUIC streams for what a well-behaved h3 client
//! will not send (oversized header sections, a request head that never completes).

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes};
use common::pki::{self, Ca};
use common::{echo, STEP};
use harrier::pipeline::{handler_fn, ConnInfo, Handler};
use http::{Request, StatusCode};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use tokio::sync::{oneshot, Notify};
use tokio::task::JoinHandle;

/// A running server with one https:// endpoint that lists http3.
struct H3Server {
    tcp: SocketAddr,
    udp: SocketAddr,
    ca: Ca,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
    _tmp: tempfile::TempDir,
}

impl H3Server {
    /// Signals shutdown; the task completes when the server has stopped.
    fn shutdown(&mut self) -> JoinHandle<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.take().expect("already shut down")
    }
}

impl Drop for H3Server {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// Starts a server with settings `toml` (no `[[endpoints]]`: one https:// endpoint on port 0
/// is added, listing http3 when `http3` says so), files `files` in its app directory, and
/// `handler` instead of static files when given. Its certificate (localhost, 127.0.0.1) is
/// issued by a CA made here.
async fn start_server(
    toml: &str,
    files: &[(&str, &[u8])],
    handler: Option<Handler>,
    http3: bool,
) -> H3Server {
    let tmp = tempfile::tempdir().expect("tempdir");
    for (path, contents) in files {
        std::fs::write(tmp.path().join(path), contents).expect("write");
    }
    let ca = Ca::new("harrier HTTP/3 test CA");
    ca.server(&["localhost", "127.0.0.1"])
        .write(tmp.path(), "site");
    let protocols = match http3 {
        true => r#"protocols = ["http1", "http2", "http3"]"#,
        false => r#"protocols = ["http1", "http2"]"#,
    };
    let toml = format!("{toml}\n{}", pki::https_endpoint(protocols));
    let bound = pki::bind(tmp.path(), &toml, handler).await.expect("bind");
    let tcp = bound.local_addrs()[0];
    let udp = bound.quic_addrs().first().copied().unwrap_or(tcp);
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(bound.serve(async move {
        let _ = stopped.await;
    }));
    H3Server {
        tcp,
        udp,
        ca,
        stop: Some(stop),
        task: Some(task),
        _tmp: tmp,
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// A QUIC connection to `server` (ALPN h3, trusting the test CA).
async fn quic_connect(server: &H3Server) -> quinn::Connection {
    try_quic_connect(server).await.expect("handshake")
}

/// A QUIC connection attempt to `server`, bounded by `STEP`.
async fn try_quic_connect(server: &H3Server) -> Result<quinn::Connection, quinn::ConnectionError> {
    let mut roots = rustls::RootCertStore::empty();
    let ca = CertificateDer::from_pem_slice(server.ca.pem().as_bytes()).expect("CA PEM");
    roots.add(ca).expect("root");
    let mut tls = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("tls 1.3")
        .with_root_certificates(roots)
        .with_no_client_auth();
    tls.alpn_protocols = vec![b"h3".to_vec()];
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls).expect("quic tls");
    let config = quinn::ClientConfig::new(Arc::new(crypto));
    let endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().expect("addr")).expect("client");
    let connecting = endpoint
        .connect_with(config, server.udp, "localhost")
        .expect("connect");
    tokio::time::timeout(STEP, connecting)
        .await
        .expect("handshake timeout")
}

type SendRequest = h3::client::SendRequest<h3_quinn::OpenStreams, Bytes>;

/// An h3 client connection; its driver runs in a task that ends when the connection closes.
async fn h3_connect(server: &H3Server) -> (SendRequest, quinn::Connection, JoinHandle<()>) {
    let quic = quic_connect(server).await;
    let (mut driver, send) = tokio::time::timeout(
        STEP,
        h3::client::new(h3_quinn::Connection::new(quic.clone())),
    )
    .await
    .expect("h3 setup timeout")
    .expect("h3 setup");
    let driver = tokio::spawn(async move {
        let _ = std::future::poll_fn(|cx| driver.poll_close(cx)).await;
    });
    (send, quic, driver)
}

fn url(path: &str) -> String {
    format!("https://localhost{path}")
}

/// A response: head and whole body.
struct Answer {
    head: http::Response<()>,
    body: Vec<u8>,
}

/// Sends `req` with `body` (streamed in 64 KiB DATA frames from another task, errors ignored,
/// since the server may stop reading early) and reads the whole response.
async fn send(sender: &mut SendRequest, req: Request<()>, body: Bytes) -> Answer {
    let stream = sender.send_request(req).await.expect("send request");
    let (mut tx, mut rx) = stream.split();
    let upload = tokio::spawn(async move {
        let mut rest = body;
        while !rest.is_empty() {
            let chunk = rest.split_to(rest.len().min(64 * 1024));
            if tx.send_data(chunk).await.is_err() {
                return;
            }
        }
        let _ = tx.finish().await;
    });
    let read = async {
        let head = rx.recv_response().await.expect("response head");
        let mut body = Vec::new();
        while let Some(mut chunk) = rx.recv_data().await.expect("response body") {
            body.extend_from_slice(&chunk.copy_to_bytes(chunk.remaining()));
        }
        Answer { head, body }
    };
    let answer = tokio::time::timeout(STEP, read)
        .await
        .expect("response timeout");
    upload.abort();
    answer
}

async fn get(sender: &mut SendRequest, path: &str) -> Answer {
    let req = Request::get(url(path)).body(()).expect("request");
    send(sender, req, Bytes::new()).await
}

/// Deterministic pseudo-random bytes (xorshift), so that nothing in the data is regular.
fn noise(len: usize, mut seed: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        out.extend_from_slice(&seed.to_le_bytes());
    }
    out.truncate(len);
    out
}

#[tokio::test]
async fn get_a_static_file() {
    let file = noise(300_000, 1);
    let server = start_server("", &[("file.bin", &file)], None, true).await;
    assert_eq!(server.udp.port(), server.tcp.port(), "UDP on the TCP port");
    let (mut sender, _quic, _driver) = h3_connect(&server).await;
    let answer = get(&mut sender, "/file.bin").await;
    assert_eq!(answer.head.status(), StatusCode::OK);
    assert_eq!(answer.head.version(), http::Version::HTTP_3);
    let server_header = answer.head.headers().get("server");
    assert_eq!(server_header.map(|v| v.as_bytes()), Some(&b"harrier"[..]));
    assert!(answer.head.headers().contains_key("date"));
    assert!(answer.body == file, "got {} bytes", answer.body.len());
    // The same connection serves more requests, including a 404.
    let missing = get(&mut sender, "/missing").await;
    assert_eq!(missing.head.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn handlers_see_the_quic_tls_session() {
    let handler = handler_fn(|req: Request<harrier::body::Body>| async move {
        let tls = ConnInfo::of(&req)
            .and_then(|c| c.tls.clone())
            .unwrap_or_default();
        let alpn = String::from_utf8_lossy(tls.alpn.as_deref().unwrap_or_default()).into_owned();
        let text = format!("{} {alpn}", tls.sni.unwrap_or_default());
        http::Response::new(harrier::body::full(text))
    });
    let server = start_server("", &[], Some(handler), true).await;
    let (mut sender, _quic, _driver) = h3_connect(&server).await;
    let answer = get(&mut sender, "/").await;
    assert_eq!(String::from_utf8_lossy(&answer.body), "localhost h3");
}

#[tokio::test]
async fn post_a_large_body_to_an_echo_handler() {
    let server = start_server("", &[], Some(echo()), true).await;
    let (mut sender, _quic, _driver) = h3_connect(&server).await;
    let body = Bytes::from(noise(8 * 1024 * 1024, 7));
    let req = Request::post(url("/echo")).body(()).expect("request");
    let started = Instant::now();
    let answer = send(&mut sender, req, body.clone()).await;
    eprintln!("8 MiB echoed over HTTP/3 in {:?}", started.elapsed());
    assert_eq!(answer.head.status(), StatusCode::OK);
    assert!(answer.body == body, "got {} bytes", answer.body.len());
}

#[tokio::test]
async fn bodies_past_the_limit_get_413() {
    let toml = "[limits]\nmax_request_body_size = 1000\n";
    let server = start_server(toml, &[], Some(echo()), true).await;
    let (mut sender, _quic, _driver) = h3_connect(&server).await;
    // Declared length: refused before the handler runs.
    let req = Request::post(url("/"))
        .header("content-length", "5000")
        .body(())
        .expect("request");
    let answer = send(&mut sender, req, Bytes::from(vec![b'x'; 5000])).await;
    assert_eq!(answer.head.status(), StatusCode::PAYLOAD_TOO_LARGE);
    // No length: the body grows past the limit while the echo handler reads it.
    let req = Request::post(url("/")).body(()).expect("request");
    let answer = send(&mut sender, req, Bytes::from(vec![b'x'; 200_000])).await;
    assert_eq!(answer.head.status(), StatusCode::PAYLOAD_TOO_LARGE);
    // `connection: close` (HTTP/1.1 only) is not sent on HTTP/3.
    assert!(!answer.head.headers().contains_key("connection"));
    // The connection is still good.
    let req = Request::post(url("/")).body(()).expect("request");
    let answer = send(&mut sender, req, Bytes::from_static(b"small")).await;
    assert_eq!(
        (answer.head.status(), &answer.body[..]),
        (StatusCode::OK, &b"small"[..])
    );
}

#[tokio::test]
async fn slow_uploads_get_408() {
    let toml = "[limits]\nmin_request_body_data_rate = { bytes_per_second = 1000, grace_period = \"300ms\" }\n";
    let server = start_server(toml, &[], Some(echo()), true).await;
    let (mut sender, _quic, _driver) = h3_connect(&server).await;
    let req = Request::post(url("/")).body(()).expect("request");
    let mut stream = sender.send_request(req).await.expect("send request");
    stream
        .send_data(Bytes::from_static(b"0123456789"))
        .await
        .expect("send");
    // ...and nothing more: the body rate falls under the minimum after the grace period.
    let started = Instant::now();
    let head = tokio::time::timeout(STEP, stream.recv_response())
        .await
        .expect("no response in time")
        .expect("response");
    assert_eq!(head.status(), StatusCode::REQUEST_TIMEOUT);
    assert!(started.elapsed() >= Duration::from_millis(250));
}

/// QUIC variable-length integer (RFC 9000 §16).
fn put_varint(out: &mut Vec<u8>, v: u64) {
    match v {
        0..=63 => out.push(v as u8),
        64..=16_383 => out.extend_from_slice(&(0x4000 | v as u16).to_be_bytes()),
        16_384..=1_073_741_823 => out.extend_from_slice(&(0x8000_0000 | v as u32).to_be_bytes()),
        _ => out.extend_from_slice(&(0xc000_0000_0000_0000 | v).to_be_bytes()),
    }
}

/// QPACK / HPACK prefixed integer with `bits` bits in the first byte after `flags`.
fn put_prefix_int(out: &mut Vec<u8>, bits: u8, flags: u8, mut v: usize) {
    let max = (1usize << bits) - 1;
    if v < max {
        out.push(flags | v as u8);
        return;
    }
    out.push(flags | max as u8);
    v -= max;
    while v >= 128 {
        out.push((v % 128) as u8 | 0x80);
        v /= 128;
    }
    out.push(v as u8);
}

/// An HTTP/3 HEADERS frame whose QPACK block spells every field literally (no tables, no
/// Huffman).
fn headers_frame(fields: &[(&str, &str)]) -> Vec<u8> {
    let mut block = vec![0, 0]; // required insert count 0, base 0
    for (name, value) in fields {
        put_prefix_int(&mut block, 3, 0x20, name.len()); // literal field line, literal name
        block.extend_from_slice(name.as_bytes());
        put_prefix_int(&mut block, 7, 0x00, value.len());
        block.extend_from_slice(value.as_bytes());
    }
    let mut frame = Vec::new();
    put_varint(&mut frame, 0x01);
    put_varint(&mut frame, block.len() as u64);
    frame.extend_from_slice(&block);
    frame
}

#[tokio::test]
async fn header_sections_past_the_limit_are_refused() {
    let toml = "[limits.http3]\nmax_request_header_field_size = \"4KiB\"\n";
    let server = start_server(toml, &[], Some(echo()), true).await;
    let quic = quic_connect(&server).await;
    let request = |extra: usize| {
        let big = "v".repeat(extra);
        let mut fields = vec![
            (":method", "GET"),
            (":scheme", "https"),
            (":authority", "localhost"),
            (":path", "/"),
        ];
        if extra > 0 {
            fields.push(("x-big", &big));
        }
        headers_frame(&fields)
    };
    let exchange = |frame: Vec<u8>| {
        let quic = quic.clone();
        async move {
            let (mut tx, mut rx) = quic.open_bi().await.expect("open stream");
            tx.write_all(&frame).await.expect("write");
            tx.finish().expect("finish");
            rx.read_to_end(1 << 20).await.expect("read response")
        }
    };
    // A small head is answered by the handler: the raw encoding is right.
    let ok = tokio::time::timeout(STEP, exchange(request(0)))
        .await
        .expect("timeout");
    // `:status 200` is entry 25 of QPACK's static table: one indexed field line.
    let block = first_headers_block(&ok);
    assert_eq!(block.get(2), Some(&(0xc0 | 25)), "{ok:02x?}");
    let refused = tokio::time::timeout(STEP, exchange(request(8 * 1024)))
        .await
        .expect("timeout");
    // `:status` by static name reference (entry 24) with the Huffman-coded value "431".
    let block = first_headers_block(&refused);
    let status_431 = [0x50 | 0x0f, 24 - 15, 0x83, 0x69, 0x90, 0xff];
    assert_eq!(block.get(2..8), Some(&status_431[..]), "{refused:02x?}");
}

fn get_varint(buf: &mut &[u8]) -> Option<u64> {
    let first = *buf.first()?;
    let len = 1usize << (first >> 6);
    let bytes = buf.get(..len)?;
    let mut v = u64::from(first & 0x3f);
    for b in &bytes[1..] {
        v = (v << 8) | u64::from(*b);
    }
    *buf = &buf[len..];
    Some(v)
}

/// The QPACK block of the first HEADERS frame of a response stream (empty if none).
fn first_headers_block(mut stream: &[u8]) -> Vec<u8> {
    while let (Some(kind), Some(len)) = (get_varint(&mut stream), get_varint(&mut stream)) {
        let Some(payload) = stream.get(..len as usize) else {
            break;
        };
        if kind == 0x01 {
            return payload.to_vec();
        }
        stream = &stream[len as usize..];
    }
    Vec::new()
}

#[tokio::test]
async fn request_heads_must_arrive_in_time() {
    let toml = "[limits]\nrequest_headers_timeout = \"300ms\"\n";
    let server = start_server(toml, &[], Some(echo()), true).await;
    let quic = quic_connect(&server).await;
    let (mut tx, mut rx) = quic.open_bi().await.expect("open stream");
    // A HEADERS frame announcing 40 bytes, of which one is sent.
    tx.write_all(&[0x01, 40, 0x00]).await.expect("write");
    let started = Instant::now();
    let read = tokio::time::timeout(STEP, rx.read_to_end(1 << 16))
        .await
        .expect("the stream was not reset in time");
    let elapsed = started.elapsed();
    let h3_request_incomplete = quinn::VarInt::from_u32(0x10d);
    assert!(
        matches!(read, Err(quinn::ReadToEndError::Read(quinn::ReadError::Reset(code))) if code == h3_request_incomplete),
        "{read:?}"
    );
    assert!(
        elapsed >= Duration::from_millis(250),
        "reset after {elapsed:?}"
    );
    eprintln!("incomplete request head reset after {elapsed:?}");
}

/// A handler whose `/block` requests wait until released; `started` counts them in.
fn blocking_handler(started: Arc<Notify>, release: Arc<Notify>) -> Handler {
    handler_fn(move |req: Request<harrier::body::Body>| {
        let (started, release) = (Arc::clone(&started), Arc::clone(&release));
        async move {
            if req.uri().path() == "/block" {
                started.notify_one();
                release.notified().await;
            }
            http::Response::new(harrier::body::full(noise(100_000, 3)))
        }
    })
}

#[tokio::test]
async fn streams_per_connection_are_limited() {
    let toml = "[limits.http3]\nmax_streams_per_connection = 2\n";
    let (started, release) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    let handler = blocking_handler(Arc::clone(&started), Arc::clone(&release));
    let server = start_server(toml, &[], Some(handler), true).await;
    let (sender, _quic, _driver) = h3_connect(&server).await;
    let mut blocked = Vec::new();
    for _ in 0..2 {
        let mut sender = sender.clone();
        blocked.push(tokio::spawn(
            async move { get(&mut sender, "/block").await },
        ));
        tokio::time::timeout(STEP, started.notified())
            .await
            .expect("request did not start");
    }
    // Both streams are in use: a third cannot even be opened.
    let mut third = sender.clone();
    let opened = tokio::time::timeout(
        Duration::from_millis(300),
        third.send_request(Request::get(url("/")).body(()).expect("request")),
    )
    .await;
    assert!(opened.is_err(), "a third stream was opened");
    // Once one request is done, the next can go.
    release.notify_one();
    let mut next = sender.clone();
    let answer = get(&mut next, "/").await;
    assert_eq!(answer.head.status(), StatusCode::OK);
    release.notify_one();
    for task in blocked {
        let answer = tokio::time::timeout(STEP, task)
            .await
            .expect("timeout")
            .expect("task");
        assert_eq!(answer.body.len(), 100_000);
    }
}

#[tokio::test]
async fn quic_connections_count_against_the_connection_limit() {
    let toml = "[limits]\nmax_concurrent_connections = 1\n";
    let server = start_server(toml, &[("a.txt", b"a")], None, true).await;
    let (mut sender, quic, _driver) = h3_connect(&server).await;
    let second = try_quic_connect(&server).await;
    assert!(
        matches!(&second, Err(quinn::ConnectionError::ConnectionClosed(c)) if c.error_code == quinn::TransportErrorCode::CONNECTION_REFUSED),
        "{second:?}"
    );
    // The first connection is unaffected, and its slot is free again once it is closed.
    assert_eq!(get(&mut sender, "/a.txt").await.body, b"a");
    quic.close(0u32.into(), b"done");
    drop(sender);
    let refused_until_released = async {
        loop {
            match try_quic_connect(&server).await {
                Ok(_) => return,
                Err(quinn::ConnectionError::ConnectionClosed(_)) => tokio::task::yield_now().await,
                Err(e) => panic!("{e:?}"),
            }
        }
    };
    tokio::time::timeout(STEP, refused_until_released)
        .await
        .expect("the slot was not released");
}

#[tokio::test]
async fn idle_connections_are_closed_after_keep_alive_timeout() {
    let toml = "[limits]\nkeep_alive_timeout = \"500ms\"\n";
    let server = start_server(toml, &[("a.txt", b"a")], None, true).await;
    let (mut sender, quic, _driver) = h3_connect(&server).await;
    let answer = get(&mut sender, "/a.txt").await;
    assert_eq!(answer.body, b"a");
    let idle_from = Instant::now();
    let reason = tokio::time::timeout(STEP, quic.closed())
        .await
        .expect("the idle connection was not closed");
    let elapsed = idle_from.elapsed();
    eprintln!("idle connection closed after {elapsed:?}: {reason}");
    assert!(
        elapsed >= Duration::from_millis(400),
        "closed after {elapsed:?}"
    );
}

/// The `alt-svc` header of a GET over TLS (TCP) from a server whose endpoint lists http3
/// or not.
async fn alt_svc_over_tcp(http3: bool) -> (Option<String>, H3Server) {
    let server = start_server("", &[("a.txt", b"a")], None, http3).await;
    let client = reqwest::Client::builder()
        .add_root_certificate(server.ca.root())
        .resolve("localhost", server.tcp)
        .timeout(STEP)
        .build()
        .expect("client");
    let url = format!("https://localhost:{}/a.txt", server.tcp.port());
    let resp = client.get(&url).send().await.expect("request");
    assert_eq!(resp.status(), StatusCode::OK);
    let alt_svc = resp.headers().get("alt-svc");
    let alt_svc = alt_svc.map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    (alt_svc, server)
}

#[tokio::test]
async fn tcp_responses_advertise_http3() {
    let (alt_svc, server) = alt_svc_over_tcp(true).await;
    let expected = format!("h3=\":{}\"; ma=86400", server.udp.port());
    assert_eq!(alt_svc, Some(expected));
    // Without http3, nothing is advertised.
    assert_eq!(alt_svc_over_tcp(false).await.0, None);
}

#[tokio::test]
async fn graceful_shutdown_completes_in_flight_requests() {
    let (started, release) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    let handler = blocking_handler(Arc::clone(&started), Arc::clone(&release));
    let mut server = start_server("", &[], Some(handler), true).await;
    let (sender, _quic, driver) = h3_connect(&server).await;
    let mut slow_sender = sender.clone();
    let slow = tokio::spawn(async move { get(&mut slow_sender, "/block").await });
    tokio::time::timeout(STEP, started.notified())
        .await
        .expect("request did not start");

    let stopped = server.shutdown();
    // Requests are answered until the GOAWAY arrives; then they are refused.
    let mut probe = sender.clone();
    let refused = async {
        loop {
            let req = Request::get(url("/")).body(()).expect("request");
            let Ok(mut stream) = probe.send_request(req).await else {
                return;
            };
            let _ = stream.finish().await;
            if stream.recv_response().await.is_err() {
                return;
            }
        }
    };
    tokio::time::timeout(STEP, refused)
        .await
        .expect("no GOAWAY after shutdown");
    assert!(
        !stopped.is_finished(),
        "the server stopped with a request in flight"
    );

    release.notify_one();
    let answer = tokio::time::timeout(STEP, slow)
        .await
        .expect("in-flight request timeout")
        .expect("task");
    assert_eq!(answer.head.status(), StatusCode::OK);
    assert!(answer.body == noise(100_000, 3));
    tokio::time::timeout(STEP, stopped)
        .await
        .expect("server did not stop")
        .expect("server task");
    tokio::time::timeout(STEP, driver)
        .await
        .expect("the connection was not closed")
        .expect("driver task");
}

#[tokio::test]
async fn http3_requests_go_through_the_proxy_unchanged() {
    use common::upstream::{self, Kind};
    let up = upstream::start("a", Kind::Http1).await;
    let toml = upstream::proxy_site(&up.url());
    let server = start_server(&toml, &[], None, true).await;
    let (mut sender, _quic, _driver) = h3_connect(&server).await;
    let answer = get(&mut sender, "/echo?h3=1").await;
    assert_eq!(answer.head.status(), StatusCode::OK);
    let json: serde_json::Value = serde_json::from_slice(&answer.body).expect("json");
    assert_eq!(json["uri"], "/echo?h3=1");
    assert_eq!(json["headers"]["x-forwarded-proto"], "https");
    assert_eq!(json["headers"]["x-forwarded-host"], "localhost");
    assert_eq!(json["headers"]["host"], "localhost");
    let body = Bytes::from(noise(2 << 20, 5));
    let req = Request::post(url("/echo")).body(()).expect("request");
    let answer = send(&mut sender, req, body).await;
    let json: serde_json::Value = serde_json::from_slice(&answer.body).expect("json");
    assert_eq!(json["body_len"], 2 << 20);
    let answer = get(&mut sender, "/big?mib=4").await;
    assert_eq!(answer.body.len(), 4 << 20);
}

//! HTTP/2 batching over real sockets: responses to requests that arrive together leave together
//! (counted in TLS records on the wire), and streams that finish at once, later, or larger than
//! the write buffer all arrive whole on one connection.

mod common;

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use common::pki::*;
use common::STEP;
use http::{StatusCode, Version};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

/// A TCP stream that counts the TLS application-data records it reads (5-byte record headers,
/// type 23), so a test sees how many separate writes the server's TLS layer made.
struct RecordCounter {
    tcp: TcpStream,
    records: Arc<AtomicUsize>,
    header: Vec<u8>,
    skip: usize,
}

impl RecordCounter {
    fn scan(&mut self, bytes: &[u8]) {
        let mut rest = bytes;
        while !rest.is_empty() {
            if self.skip > 0 {
                let n = self.skip.min(rest.len());
                self.skip -= n;
                rest = &rest[n..];
                continue;
            }
            let n = (5 - self.header.len()).min(rest.len());
            self.header.extend_from_slice(&rest[..n]);
            rest = &rest[n..];
            if self.header.len() == 5 {
                if self.header[0] == 23 {
                    self.records.fetch_add(1, Ordering::SeqCst);
                }
                self.skip = u16::from_be_bytes([self.header[3], self.header[4]]) as usize;
                self.header.clear();
            }
        }
    }
}

impl AsyncRead for RecordCounter {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.tcp).poll_read(cx, buf);
        let fresh = buf.filled()[before..].to_vec();
        self.scan(&fresh);
        result
    }
}

impl AsyncWrite for RecordCounter {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write(cx, data)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = (payload.len() as u32).to_be_bytes()[1..].to_vec();
    out.extend_from_slice(&[kind, flags]);
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// HEADERS (END_STREAM | END_HEADERS) for `GET https://a.test{path}`, HPACK without indexing.
fn get(stream: u32, path: &str) -> Vec<u8> {
    // :method GET (static 2), :scheme https (static 7), :path and :authority as literals.
    let mut block = vec![0x82, 0x87, 0x04, path.len() as u8];
    block.extend_from_slice(path.as_bytes());
    block.extend_from_slice(&[0x01, 6]);
    block.extend_from_slice(b"a.test");
    frame(1, 0x5, stream, &block)
}

/// Reads frames until every stream in `streams` has ended; returns the DATA bytes per stream.
async fn read_until_done<S: AsyncRead + AsyncWrite + Unpin>(
    tls: &mut S,
    streams: &[u32],
) -> Vec<usize> {
    let mut data = vec![0usize; streams.len()];
    let mut open = streams.len();
    while open > 0 {
        let mut head = [0u8; 9];
        tls.read_exact(&mut head).await.expect("frame header");
        let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
        let (kind, flags) = (head[3], head[4]);
        let id = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
        let mut payload = vec![0u8; len];
        tls.read_exact(&mut payload).await.expect("frame payload");
        if kind == 4 && flags & 1 == 0 {
            tls.write_all(&frame(4, 1, 0, &[]))
                .await
                .expect("SETTINGS ack");
        }
        assert_ne!(kind, 7, "GOAWAY: {payload:?}");
        let Some(i) = streams.iter().position(|&s| s == id) else {
            continue;
        };
        if kind == 0 {
            data[i] += len;
        }
        if (kind == 0 || kind == 1) && flags & 1 == 1 {
            open -= 1;
        }
    }
    data
}

/// Ten GETs in one TLS record are answered in at most two records: the answers are written
/// together, not one `writev` (and one record) per response as when each stream was a task.
#[tokio::test]
async fn answers_to_requests_read_together_leave_together() {
    let ca = Ca::new("Batching CA");
    let dir = site(&ca, &["a.test"]);
    let kib: Vec<u8> = (0..1024u32).map(|i| (i % 253) as u8).collect();
    std::fs::write(dir.path().join("1k.bin"), &kib).unwrap();
    let server = serve(dir.path(), &https_endpoint(""), None).await;

    let roots = ca.rustls_roots();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let records = Arc::new(AtomicUsize::new(0));
    let exchange = async {
        let tcp = TcpStream::connect(server.addr()).await.unwrap();
        let counted = RecordCounter {
            tcp,
            records: Arc::clone(&records),
            header: Vec::new(),
            skip: 0,
        };
        let name = rustls_pki_types::ServerName::try_from("a.test").unwrap();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let mut tls = connector.connect(name, counted).await.expect("handshake");
        assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));

        // Warm up: preface, settings, one request (the file enters the cache).
        let mut first = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
        first.extend(frame(4, 0, 0, &[]));
        first.extend(get(1, "/1k.bin"));
        tls.write_all(&first).await.unwrap();
        assert_eq!(read_until_done(&mut tls, &[1]).await, [1024]);

        let before = records.load(Ordering::SeqCst);
        let streams: Vec<u32> = (0..10).map(|i| 3 + 2 * i).collect();
        let batch: Vec<u8> = streams.iter().flat_map(|&s| get(s, "/1k.bin")).collect();
        tls.write_all(&batch).await.unwrap();
        let bodies = read_until_done(&mut tls, &streams).await;
        (bodies, records.load(Ordering::SeqCst) - before)
    };
    let (bodies, batch_records) = tokio::time::timeout(STEP, exchange)
        .await
        .expect("exchange in time");
    assert_eq!(bodies, [1024; 10]);
    assert!(
        batch_records <= 2,
        "ten answers came in {batch_records} TLS records"
    );
}

/// On one connection at once: cached files, a file larger than the write buffer (streamed
/// while other streams finish), one too large for the cache (read from disk, so not finished
/// by its first poll), a fixed response and a 404 — every body whole.
#[tokio::test]
async fn mixed_streams_on_one_connection_all_arrive_whole() {
    let ca = Ca::new("Mixed CA");
    let dir = site(&ca, &["a.test"]);
    let pattern = |n: u32| -> Vec<u8> { (0..n).map(|i| (i % 251) as u8).collect() };
    let files = [
        ("small.bin", pattern(1024)),
        ("medium.bin", pattern(200 * 1024)),
        ("large.bin", pattern(3 * 1024 * 1024)),
    ];
    for (name, bytes) in &files {
        std::fs::write(dir.path().join(name), bytes).unwrap();
    }
    let toml = https_endpoint("")
        + "[[sites]]\nhosts = [\"*\"]\nroot = \".\"\n[[sites.routes]]\npath = \"/fixed\"\n\
           handler = { type = \"respond\", body = \"fixed answer\" }\n";
    let server = serve(dir.path(), &toml, None).await;
    let client = client(Some(&ca), server.addr(), &["a.test"])
        .http2_prior_knowledge()
        .timeout(STEP)
        .build()
        .unwrap();

    let mut expected: Vec<(String, StatusCode, Vec<u8>)> = Vec::new();
    for round in 0..4 {
        for (name, bytes) in &files {
            expected.push((format!("/{name}"), StatusCode::OK, bytes.clone()));
        }
        expected.push(("/fixed".into(), StatusCode::OK, b"fixed answer".to_vec()));
        expected.push((
            format!("/missing{round}"),
            StatusCode::NOT_FOUND,
            Vec::new(),
        ));
    }
    let requests = expected.iter().map(|(path, ..)| {
        let req = client.get(url("a.test", server.addr(), path));
        async move {
            let resp = req.send().await.expect("response");
            let (status, version) = (resp.status(), resp.version());
            (status, version, resp.bytes().await.expect("body"))
        }
    });
    let answers = futures_util::future::join_all(requests).await;
    for ((path, status, body), (got_status, version, got_body)) in expected.iter().zip(answers) {
        assert_eq!((got_status, version), (*status, Version::HTTP_2), "{path}");
        if *status == StatusCode::OK {
            assert!(
                got_body == body[..],
                "{path}: {} bytes, want {}",
                got_body.len(),
                body.len()
            );
        }
    }
}

//! A real upstream server for proxy tests, in process on 127.0.0.1:0 (HTTP/1.1 with
//! upgrades, or h2c, or over a unix socket or TLS).
//!
//! Paths: `/echo...` answers JSON with what arrived (method, path, headers, body length and
//! the upstream's name); `/slow?ms=N` answers after N ms; `/stall` sends a head and part of a
//! body, then nothing; `/sse` sends one event, waits for `release`, sends another;
//! `/big?mib=N` streams N MiB; `/status/N` answers N; `/healthz` answers the current
//! `health` status; `/ws` is a WebSocket echo; `/hop` answers with hop-by-hop headers.

use std::convert::Infallible;
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::Notify;

type Out = http_body_util::combinators::BoxBody<Bytes, Infallible>;

/// State shared by an upstream's connections, visible to the test.
pub struct Upstream {
    pub name: String,
    pub addr: std::net::SocketAddr,
    /// Requests answered.
    pub hits: AtomicUsize,
    /// Connections accepted, and those of them that have ended.
    pub connections: AtomicUsize,
    pub closed: AtomicUsize,
    /// Status `/healthz` answers.
    pub health: AtomicU16,
    /// Lets `/sse` send its second event.
    pub release: Notify,
}

impl Upstream {
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// How the upstream speaks.
#[derive(Clone, Copy, PartialEq)]
pub enum Kind {
    Http1,
    H2c,
}

/// Starts an upstream called `name` on 127.0.0.1:0.
pub async fn start(name: &str, kind: Kind) -> Arc<Upstream> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind upstream");
    let up = state(name, listener.local_addr().expect("addr"));
    let st = Arc::clone(&up);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            serve_io(stream, Arc::clone(&st), kind);
        }
    });
    up
}

/// A site whose every request goes to `handler` (an inline TOML table).
pub fn site(handler: &str) -> String {
    format!(
        r#"
[[sites]]
hosts = ["*"]
[[sites.routes]]
path = "/*"
handler = {handler}
"#
    )
}

/// A site whose every request goes to a proxy with the one upstream `url` and default
/// options.
pub fn proxy_site(url: &str) -> String {
    site(&format!(r#"{{ type = "proxy", upstreams = ["{url}"] }}"#))
}

/// Serves one connection of any byte stream (TCP, TLS, unix).
pub fn serve_io<S>(io: S, state: Arc<Upstream>, kind: Kind)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    state.connections.fetch_add(1, Ordering::SeqCst);
    tokio::spawn(async move {
        let counts = Arc::clone(&state);
        let service = hyper::service::service_fn(move |req| {
            let state = Arc::clone(&state);
            async move { Ok::<_, Infallible>(answer(req, state).await) }
        });
        let io = TokioIo::new(io);
        let _ = match kind {
            Kind::Http1 => {
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, service)
                    .with_upgrades()
                    .await
            }
            Kind::H2c => {
                hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                    .serve_connection(io, service)
                    .await
            }
        };
        counts.closed.fetch_add(1, Ordering::SeqCst);
    });
}

fn full(text: impl Into<Bytes>) -> Out {
    Full::new(text.into()).boxed()
}

fn query_number(req: &Request<Incoming>, key: &str) -> Option<u64> {
    req.uri()
        .query()?
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == key)
        .and_then(|(_, v)| v.parse().ok())
}

async fn answer(mut req: Request<Incoming>, state: Arc<Upstream>) -> Response<Out> {
    state.hits.fetch_add(1, Ordering::SeqCst);
    let path = req.uri().path().to_owned();
    let named = |resp: http::response::Builder| resp.header("x-upstream", state.name.as_str());
    match path.as_str() {
        "/slow" => {
            let ms = query_number(&req, "ms").unwrap_or(1000);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            named(Response::builder()).body(full("slow")).unwrap()
        }
        "/stall" => {
            let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, Infallible>>(1);
            tokio::spawn(async move {
                let _ = tx
                    .send(Ok(Frame::data(Bytes::from_static(b"partial"))))
                    .await;
                tokio::time::sleep(Duration::from_secs(30)).await;
                drop(tx);
            });
            let stream = tokio_stream_from(rx);
            named(Response::builder())
                .header("content-length", "100")
                .body(BodyExt::boxed(StreamBody::new(stream)))
                .unwrap()
        }
        "/sse" => {
            let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, Infallible>>(1);
            tokio::spawn(async move {
                let _ = tx
                    .send(Ok(Frame::data(Bytes::from_static(b"data: one\n\n"))))
                    .await;
                state.release.notified().await;
                let _ = tx
                    .send(Ok(Frame::data(Bytes::from_static(b"data: two\n\n"))))
                    .await;
            });
            Response::builder()
                .header("content-type", "text/event-stream")
                .header("cache-control", "no-cache")
                .body(BodyExt::boxed(StreamBody::new(tokio_stream_from(rx))))
                .unwrap()
        }
        "/big" => {
            let mib = query_number(&req, "mib").unwrap_or(1);
            let chunk = Bytes::from(vec![b'x'; 64 * 1024]);
            let stream = futures_util::stream::iter(
                (0..mib * 16).map(move |_| Ok::<_, Infallible>(Frame::data(chunk.clone()))),
            );
            named(Response::builder())
                .header("content-length", (mib * 1024 * 1024).to_string())
                .body(BodyExt::boxed(StreamBody::new(stream)))
                .unwrap()
        }
        "/healthz" => {
            let status = state.health.load(Ordering::SeqCst);
            named(Response::builder())
                .status(status)
                .body(full("health"))
                .unwrap()
        }
        "/hop" => named(Response::builder())
            .header("connection", "x-hop-named")
            .header("x-hop-named", "secret")
            .header("keep-alive", "timeout=5")
            .header("x-end-to-end", "kept")
            .body(full("hop"))
            .unwrap(),
        "/ws" => {
            let key = req.headers().get("sec-websocket-key").cloned();
            let Some(key) = key else {
                return Response::builder()
                    .status(400)
                    .body(full("no key"))
                    .unwrap();
            };
            let on_upgrade = hyper::upgrade::on(&mut req);
            tokio::spawn(async move {
                let Ok(upgraded) = on_upgrade.await else {
                    return;
                };
                let mut ws = tokio_tungstenite::WebSocketStream::from_raw_socket(
                    TokioIo::new(upgraded),
                    tokio_tungstenite::tungstenite::protocol::Role::Server,
                    None,
                )
                .await;
                while let Some(Ok(msg)) = ws.next().await {
                    if msg.is_close() {
                        break;
                    }
                    if ws.send(msg).await.is_err() {
                        break;
                    }
                }
            });
            let accept =
                tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
            Response::builder()
                .status(StatusCode::SWITCHING_PROTOCOLS)
                .header("connection", "upgrade")
                .header("upgrade", "websocket")
                .header("sec-websocket-accept", accept)
                .body(full(""))
                .unwrap()
        }
        p if p.starts_with("/status/") => {
            let code: u16 = p["/status/".len()..].parse().unwrap_or(500);
            named(Response::builder())
                .status(code)
                .body(full(format!("status {code}")))
                .unwrap()
        }
        _ => {
            let method = req.method().to_string();
            let uri = req.uri().to_string();
            let version = format!("{:?}", req.version());
            let headers: serde_json::Map<String, serde_json::Value> = req
                .headers()
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_owned(),
                        serde_json::Value::String(String::from_utf8_lossy(v.as_bytes()).into()),
                    )
                })
                .collect();
            let mut len = 0usize;
            let mut body = req.into_body();
            while let Some(frame) = body.frame().await {
                match frame {
                    Ok(f) => len += f.data_ref().map_or(0, |d| d.len()),
                    Err(_) => break,
                }
            }
            let json = serde_json::json!({
                "upstream": state.name,
                "method": method,
                "uri": uri,
                "version": version,
                "headers": headers,
                "body_len": len,
            });
            named(Response::builder())
                .header("content-type", "application/json")
                .body(full(json.to_string()))
                .unwrap()
        }
    }
}

fn tokio_stream_from<T: Send + 'static>(
    mut rx: tokio::sync::mpsc::Receiver<T>,
) -> impl futures_util::Stream<Item = T> + Send {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// A local port nothing listens on (bound, then closed).
pub fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// The state of a new upstream called `name` at `addr`.
fn state(name: &str, addr: std::net::SocketAddr) -> Arc<Upstream> {
    Arc::new(Upstream {
        name: name.to_owned(),
        addr,
        hits: AtomicUsize::new(0),
        connections: AtomicUsize::new(0),
        closed: AtomicUsize::new(0),
        health: AtomicU16::new(200),
        release: Notify::new(),
    })
}

/// An https upstream (ALPN h2 and http/1.1) that requires a client certificate from `ca`.
pub async fn start_tls(
    name: &str,
    cert: &std::path::Path,
    key: &std::path::Path,
    ca: &std::path::Path,
) -> Arc<Upstream> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .unwrap()
        .map(|c| c.unwrap())
        .collect();
    let key = PrivateKeyDer::from_pem_file(key).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        Arc::clone(&provider),
    )
    .build()
    .unwrap();
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let up = state(name, listener.local_addr().unwrap());
    let st = Arc::clone(&up);
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let st = Arc::clone(&st);
            tokio::spawn(async move {
                if let Ok(tls) = acceptor.accept(tcp).await {
                    let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
                    serve_io(tls, st, if h2 { Kind::H2c } else { Kind::Http1 });
                }
            });
        }
    });
    up
}

/// An HTTP/1.1 upstream on a unix socket at `path`.
#[cfg(unix)]
pub async fn start_unix(name: &str, path: &std::path::Path) -> Arc<Upstream> {
    let listener = tokio::net::UnixListener::bind(path).unwrap();
    let up = state(name, "127.0.0.1:0".parse().unwrap());
    let st = Arc::clone(&up);
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            serve_io(s, Arc::clone(&st), Kind::Http1);
        }
    });
    up
}

//! From a parsed request to a response: the entry checks every protocol shares, then the
//! router: the site (by Host and endpoint), its stages, the first matching route's stages
//! and its handler (or the site's static files).

mod accept_encoding;
mod chain;
mod endpoint_rules;
mod entry;
mod matcher;
mod response_body;
mod router;
pub mod template;

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use http::{Request, Response, StatusCode};

use crate::body::{self, Body};

pub use accept_encoding::AcceptEncoding;
pub use chain::{Chain, Middleware, Next};
pub use endpoint_rules::request_host;
pub use entry::{App, Entry};
/// The compiled matcher of one route, public for the micro-benchmarks in
/// `benches/hot_paths.rs`.
pub use matcher::Matcher;
pub use response_body::ResponseBody;
pub use router::{request_id, static_handler, BuildError, RouteCaptures, Router};

/// The future a handler returns.
pub type HandlerFuture = Pin<Box<dyn Future<Output = Response<Body>> + Send>>;

/// The `server` header of every response (unless `server.add_server_header = false`).
pub fn server_header() -> http::HeaderValue {
    http::HeaderValue::from_static("harrier")
}

/// Answers requests. Errors are responses; a handler never fails.
pub type Handler = Arc<dyn Fn(Request<Body>) -> HandlerFuture + Send + Sync>;

/// Wraps an async function as a [`Handler`] (for embedders and tests).
pub fn handler_fn<F, Fut>(f: F) -> Handler
where
    F: Fn(Request<Body>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Response<Body>> + Send + 'static,
{
    Arc::new(move |req| Box::pin(f(req)))
}

/// Put into a response's extensions by a handler whose work goes on after the response
/// (a WebSocket tunnel): the request stays in flight on its connection, so idle timers do
/// not close it, until the token is cancelled.
#[derive(Debug, Clone)]
pub struct Tunnel(pub tokio_util::sync::CancellationToken);

/// Where a request came from. [`ConnInfo::of`] finds it for a request.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    /// The client address (`None` on unix sockets).
    pub remote: Option<SocketAddr>,
    /// The endpoint the connection arrived on.
    pub endpoint: Arc<EndpointInfo>,
    /// The TLS session, on https:// endpoints (SNI, ALPN, client certificate).
    pub tls: Option<crate::tls::TlsInfo>,
}

tokio::task_local! {
    /// The connection of the request being handled on this task, set by [`Entry`] around
    /// the router. Carrying it in each request's extensions cost an extensions map (three
    /// allocations, ~750 instructions with the drop) per request.
    static CONN: Arc<ConnInfo>;
}

impl ConnInfo {
    /// The connection `req` arrived on: one put into its extensions (by tests, or code
    /// that calls a router directly), else the one [`Entry`] is handling on this task.
    /// `None` outside both, as on a task spawned by a handler.
    pub fn of<B>(req: &Request<B>) -> Option<Arc<ConnInfo>> {
        match req.extensions().get::<Arc<ConnInfo>>() {
            Some(conn) => Some(Arc::clone(conn)),
            None => CONN.try_with(Arc::clone).ok(),
        }
    }

    /// Runs `fut` with `conn` as the connection [`ConnInfo::of`] finds.
    pub(crate) fn scope<F: Future>(conn: Arc<ConnInfo>, fut: F) -> impl Future<Output = F::Output> {
        CONN.scope(conn, fut)
    }
}

/// The client as resolved by `forwarded_headers` from a trusted proxy's headers; inserted
/// into the request's extensions (and the response's, for the access log). Code that wants
/// the client IP asks [`client_ip`], which prefers this over the connection's peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientAddr {
    /// The client IP the proxies reported.
    pub ip: std::net::IpAddr,
    /// The scheme the client used (`http`, `https`), when a proxy said so.
    pub scheme: Option<String>,
    /// The host the client asked for, when a proxy said so.
    pub host: Option<String>,
    /// The peer of the connection (the nearest proxy), kept for logs and audits.
    pub original_peer: Option<SocketAddr>,
}

/// The client IP of `req`: the [`ClientAddr`] resolved by `forwarded_headers` when there is
/// one, else the connection's peer (`None` on unix sockets).
pub fn client_ip<B>(req: &Request<B>) -> Option<std::net::IpAddr> {
    let ext = req.extensions();
    match ext.get::<ClientAddr>() {
        Some(client) => Some(client.ip),
        None => ConnInfo::of(req).and_then(|c| c.remote).map(|a| a.ip()),
    }
}

/// What requests need to know about the endpoint they arrived on.
#[derive(Debug, Clone, Default)]
pub struct EndpointInfo {
    /// The endpoint's `name`, which sites may be bound to.
    pub name: Option<String>,
    /// The endpoint URL, as printed at startup.
    pub url: String,
    /// Redirect every request to https on this port (`https_redirect`).
    pub https_redirect_port: Option<u16>,
    /// `strict-transport-security` value, on https endpoints with HSTS on.
    pub hsts: Option<http::HeaderValue>,
    /// `alt-svc` value, on https endpoints whose HTTP/3 UDP socket is bound.
    pub alt_svc: Option<http::HeaderValue>,
    /// Answer 421 when Host and the TLS server name differ.
    pub require_sni_host_match: bool,
}

/// The response for a request body that could not be read (too large, too slow, malformed).
/// The connection is closed afterwards, since the rest of the body is never read.
pub fn body_error_response(err: &crate::body::BoxError) -> Response<Body> {
    let mut resp = error_response(crate::limits::BodyLimitError::status(err));
    resp.headers_mut().insert(
        http::header::CONNECTION,
        http::HeaderValue::from_static("close"),
    );
    resp
}

/// A short plain-text response for `status`.
pub fn error_response(status: StatusCode) -> Response<Body> {
    error_page(status, None)
}

/// A plain-text response for `status` that says why, when there is more to say than the
/// status line (the proxy names the upstream problem).
pub fn error_page(status: StatusCode, why: Option<&str>) -> Response<Body> {
    let reason = status.canonical_reason().unwrap_or("Error");
    let text = match why {
        Some(why) => format!("{} {reason}\n{why}\n", status.as_u16()),
        None => format!("{} {reason}\n", status.as_u16()),
    };
    let mut resp = Response::new(body::full(text));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

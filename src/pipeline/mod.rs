//! From a parsed request to a response: the entry checks every protocol shares, then the
//! handler that answers.
//!
//! Sites, routes and middleware stages plug in here; for now the pipeline is one terminal
//! handler (static files from the app directory, or a handler given by an embedder).

mod entry;
mod response_body;

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use http::{Request, Response, StatusCode};

use crate::body::{self, Body};

pub use entry::{App, Entry};
pub use response_body::ResponseBody;

/// The future a handler returns.
pub type HandlerFuture = Pin<Box<dyn Future<Output = Response<Body>> + Send>>;

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

/// Where a request came from; inserted into every request's extensions.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    /// The client address (`None` on unix sockets).
    pub remote: Option<SocketAddr>,
    /// The endpoint URL the connection arrived on, as printed at startup.
    pub endpoint: Arc<str>,
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
    let text = format!(
        "{} {}\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or("Error")
    );
    let mut resp = Response::new(body::full(text));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

//! `respond`: a fixed status, headers and body (health checks, maintenance pages, robots.txt).

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Response, StatusCode};

use crate::body;
use crate::pipeline::{handler_fn, Handler};

/// A handler answering every request with the same response.
/// With `server_header`, the map carries `server: harrier` already: the pipeline adds it to
/// every response, and adding it to a clone would grow the clone again.
pub fn respond(
    status: StatusCode,
    headers: &[(HeaderName, HeaderValue)],
    body: &str,
    server_header: bool,
) -> Handler {
    // The whole header map is built once; each request clones it.
    let mut map = HeaderMap::with_capacity(headers.len() + 2);
    for (name, value) in headers {
        map.append(name.clone(), value.clone());
    }
    if !body.is_empty() && !map.contains_key(http::header::CONTENT_TYPE) {
        map.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
    }
    if server_header {
        // Replaces a configured one, as the pipeline would.
        map.insert(http::header::SERVER, crate::pipeline::server_header());
    }
    let body = Bytes::copy_from_slice(body.as_bytes());
    handler_fn(move |_req| {
        let mut resp = Response::new(body::full(body.clone()));
        *resp.status_mut() = status;
        *resp.headers_mut() = map.clone();
        std::future::ready(resp)
    })
}

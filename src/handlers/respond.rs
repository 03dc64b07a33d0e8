//! `respond`: a fixed status, headers and body (health checks, maintenance pages, robots.txt).

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Response, StatusCode};

use crate::body;
use crate::pipeline::{handler_fn, Handler};

/// A handler answering every request with the same response.
pub fn respond(status: StatusCode, headers: &[(HeaderName, HeaderValue)], body: &str) -> Handler {
    let headers: Arc<[(HeaderName, HeaderValue)]> = headers.into();
    let body = Bytes::copy_from_slice(body.as_bytes());
    handler_fn(move |_req| {
        let mut resp = Response::new(body::full(body.clone()));
        *resp.status_mut() = status;
        for (name, value) in headers.iter() {
            resp.headers_mut().append(name.clone(), value.clone());
        }
        if !resp.headers().contains_key(http::header::CONTENT_TYPE) && !body.is_empty() {
            resp.headers_mut().insert(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            );
        }
        std::future::ready(resp)
    })
}

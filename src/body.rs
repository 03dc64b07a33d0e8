//! The one body type used for requests and responses on every protocol.
//!
//! Handlers never learn whether a request came over HTTP/1.1, HTTP/2 or HTTP/3: they see
//! `http::Request<Body>` and answer `http::Response<Body>`.

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};

/// Error type carried by bodies (I/O errors, limit violations, client disconnects).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A boxed, sendable HTTP body of `Bytes` frames.
pub type Body = http_body_util::combinators::UnsyncBoxBody<Bytes, BoxError>;

/// A body holding `bytes` in one frame.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// A body with no bytes.
pub fn empty() -> Body {
    Empty::new().map_err(|never| match never {}).boxed_unsync()
}

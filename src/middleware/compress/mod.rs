//! `compress`: zstd, br or gzip response bodies, negotiated from Accept-Encoding, streamed
//! frame by frame (never buffered whole, so server-sent events keep flowing).

mod body;

use std::sync::Arc;

use http::header::{
    ACCEPT_ENCODING, ACCEPT_RANGES, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_RANGE,
    CONTENT_TYPE, ETAG, VARY,
};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body::Body as _;
use http_body_util::BodyExt;

pub use body::{CompressBody, Encoder};

use crate::body::Body;
use crate::config::{CompressStage, Encoding};
use crate::pipeline::{AcceptEncoding, HandlerFuture, Middleware, Next};

/// The `compress` stage.
pub struct Compress {
    cfg: Arc<CompressStage>,
}

impl Compress {
    /// The stage for `cfg`.
    pub fn new(cfg: &CompressStage) -> Compress {
        Compress {
            cfg: Arc::new(cfg.clone()),
        }
    }
}

impl Middleware for Compress {
    fn handle(&self, req: Request<Body>, next: Next) -> HandlerFuture {
        let accept = AcceptEncoding::parse(req.headers().get_all(ACCEPT_ENCODING));
        let chosen = accept.choose(self.cfg.encodings.iter().copied());
        let head = req.method() == Method::HEAD;
        let cfg = Arc::clone(&self.cfg);
        Box::pin(async move {
            let resp = next.run(req).await;
            apply(&cfg, resp, chosen, head)
        })
    }
}

/// Compresses `resp` with `chosen` when it is worth it and allowed. Every response that
/// could have been compressed says `Vary: Accept-Encoding`, also when this client got it
/// uncompressed, so that caches keep the variants apart.
fn apply(
    cfg: &CompressStage,
    mut resp: Response<Body>,
    chosen: Option<Encoding>,
    head: bool,
) -> Response<Body> {
    if !eligible(cfg, &resp, head) {
        return resp;
    }
    add_vary(resp.headers_mut());
    // HEAD has no body to compress; its headers describe the identity representation.
    let Some(encoding) = chosen.filter(|_| !head) else {
        return resp;
    };
    let Ok(encoder) = Encoder::new(encoding, cfg.levels) else {
        return resp;
    };
    let headers = resp.headers_mut();
    headers.insert(
        CONTENT_ENCODING,
        HeaderValue::from_static(encoding.as_str()),
    );
    headers.remove(CONTENT_LENGTH);
    // Byte ranges would address the identity bytes, not what is sent.
    headers.remove(ACCEPT_RANGES);
    weaken_etag(headers);
    resp.map(|b| CompressBody::new(b, encoder).boxed_unsync())
}

/// Whether the response may and should be compressed.
fn eligible(cfg: &CompressStage, resp: &Response<Body>, head: bool) -> bool {
    let status = resp.status();
    let h = resp.headers();
    let no_body = status.is_informational()
        || matches!(
            status,
            StatusCode::NO_CONTENT | StatusCode::NOT_MODIFIED | StatusCode::PARTIAL_CONTENT
        );
    if no_body
        || h.contains_key(CONTENT_ENCODING)
        || h.contains_key(CONTENT_RANGE)
        || has_token(h, CACHE_CONTROL, "no-transform")
    {
        return false;
    }
    let length = h
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok())
        // A HEAD body is empty whatever the size of the representation.
        .or_else(|| (!head).then(|| resp.body().size_hint().exact()).flatten());
    if length.is_some_and(|n| n < cfg.min_size) {
        return false;
    }
    let Some(media) = h.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    // The configured types are lowercase; the response's is compared without a lowercase
    // copy per response.
    let media = media.split(';').next().unwrap_or("").trim();
    cfg.content_types.iter().any(|p| {
        media
            .get(..p.len())
            .is_some_and(|start| start.eq_ignore_ascii_case(p))
    })
}

/// Whether a comma-separated header lists `token` (any case).
fn has_token(h: &HeaderMap, name: http::HeaderName, token: &str) -> bool {
    h.get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| {
            t.trim()
                .split('=')
                .next()
                .unwrap_or("")
                .eq_ignore_ascii_case(token)
        })
}

/// Appends `Accept-Encoding` to Vary unless it (or `*`) is already there.
fn add_vary(h: &mut HeaderMap) {
    if !has_token(h, VARY, "accept-encoding") && !has_token(h, VARY, "*") {
        h.append(VARY, HeaderValue::from_static("Accept-Encoding"));
    }
}

/// A strong ETag names exact bytes; the compressed bytes differ, so it becomes weak.
fn weaken_etag(h: &mut HeaderMap) {
    let Some(etag) = h.get(ETAG) else { return };
    if etag.as_bytes().starts_with(b"\"") {
        let mut weak = b"W/".to_vec();
        weak.extend_from_slice(etag.as_bytes());
        if let Ok(v) = HeaderValue::from_bytes(&weak) {
            h.insert(ETAG, v);
        }
    }
}

#[cfg(test)]
mod tests;

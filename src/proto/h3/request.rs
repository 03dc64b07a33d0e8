//! One HTTP/3 request: its head within `request_headers_timeout`, then the same
//! [`Entry`] service as HTTP/1.1 and HTTP/2, then the response streamed frame by frame.

use std::time::Duration;

use bytes::Bytes;
use h3::error::Code;
use h3::server::{RequestResolver, RequestStream};
use http::header::{CONNECTION, DATE, TRANSFER_ENCODING, UPGRADE};
use http::{HeaderMap, HeaderName, HeaderValue, Response};
use http_body_util::BodyExt;
use hyper::service::Service;

use super::body::RequestBody;
use crate::pipeline::{Entry, ResponseBody};

type Resolver = RequestResolver<h3_quinn::Connection, Bytes>;
type SendHalf = RequestStream<h3_quinn::SendStream<Bytes>, Bytes>;

/// Serves the request arriving on `resolver`'s stream.
pub async fn serve(mut resolver: Resolver, entry: Entry, head_timeout: Duration) {
    let deadline =
        tokio::time::Instant::from_std(super::later(std::time::Instant::now(), head_timeout));
    let first = std::future::poll_fn(|cx| resolver.frame_stream.poll_next(cx));
    let Ok(frame) = tokio::time::timeout_at(deadline, first).await else {
        tracing::debug!("HTTP/3: no request head within request_headers_timeout");
        h3::quic::SendStream::reset(
            &mut resolver.frame_stream,
            Code::H3_REQUEST_INCOMPLETE.value(),
        );
        return;
    };
    // A header section past `max_field_section_size` is answered 431 by h3 itself here.
    let resolved = match resolver.accept_with_frame(frame) {
        Ok(resolved) => tokio::time::timeout_at(deadline, resolved.resolve()).await,
        Err(e) => Ok(Err(e)),
    };
    let (req, stream) = match resolved {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            tracing::debug!("HTTP/3: bad request head: {e}");
            return;
        }
        Err(_) => {
            tracing::debug!("HTTP/3: request head not resolved within request_headers_timeout");
            return;
        }
    };
    let (mut send, recv) = stream.split();
    let req = req.map(|()| RequestBody::new(recv));
    let resp = match entry.call(req).await {
        Ok(resp) => resp,
        Err(never) => match never {},
    };
    if let Err(e) = respond(&mut send, resp).await {
        tracing::debug!("HTTP/3: response not completed: {e}");
    }
}

/// Sends the head, then each body frame as the body yields it, then the end of the stream.
async fn respond(send: &mut SendHalf, resp: Response<ResponseBody>) -> Result<(), String> {
    let (mut parts, mut body) = resp.into_parts();
    strip_connection_fields(&mut parts.headers);
    if !parts.headers.contains_key(DATE) {
        // hyper adds it on HTTP/1.1 and HTTP/2 (RFC 9110 §6.6.1: servers with a clock must).
        parts.headers.insert(DATE, now_http_date());
    }
    send.send_response(Response::from_parts(parts, ()))
        .await
        .map_err(|e| e.to_string())?;
    while let Some(frame) = body.frame().await {
        let frame = match frame {
            Ok(frame) => frame,
            Err(e) => {
                // Reset, so that the client cannot take a truncated body for a whole one.
                send.stop_stream(Code::H3_INTERNAL_ERROR);
                return Err(format!("response body failed: {e}"));
            }
        };
        match frame.into_data() {
            Ok(data) if data.is_empty() => {}
            Ok(data) => send.send_data(data).await.map_err(|e| e.to_string())?,
            Err(frame) => {
                if let Ok(trailers) = frame.into_trailers() {
                    send.send_trailers(trailers)
                        .await
                        .map_err(|e| e.to_string())?;
                    break;
                }
            }
        }
    }
    send.finish().await.map_err(|e| e.to_string())
}

/// HTTP/3 forbids connection-specific fields (RFC 9114 §4.2); handlers written for HTTP/1.1
/// may still set them (`connection: close` after a body error, for instance).
fn strip_connection_fields(headers: &mut HeaderMap) {
    const KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
    const PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");
    for name in [
        CONNECTION,
        TRANSFER_ENCODING,
        UPGRADE,
        KEEP_ALIVE,
        PROXY_CONNECTION,
    ] {
        headers.remove(name);
    }
}

/// The `date` value for now, formatted at most once per second per thread.
fn now_http_date() -> HeaderValue {
    use std::cell::RefCell;
    use std::time::{SystemTime, UNIX_EPOCH};
    thread_local! {
        static CACHE: RefCell<Option<(u64, HeaderValue)>> = const { RefCell::new(None) };
    }
    let now = SystemTime::now();
    let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    CACHE.with(|cache| {
        let mut cache = cache.borrow_mut();
        match &*cache {
            Some((at, value)) if *at == secs => value.clone(),
            _ => {
                let value = HeaderValue::from_str(&httpdate::fmt_http_date(now))
                    .unwrap_or_else(|_| HeaderValue::from_static("Thu, 01 Jan 1970 00:00:00 GMT"));
                *cache = Some((secs, value.clone()));
                value
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_fields_are_removed() {
        let mut h = HeaderMap::new();
        h.insert(CONNECTION, "close".parse().unwrap());
        h.insert("keep-alive", "timeout=5".parse().unwrap());
        h.insert(TRANSFER_ENCODING, "chunked".parse().unwrap());
        h.insert("content-type", "text/plain".parse().unwrap());
        strip_connection_fields(&mut h);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key("content-type"));
    }

    #[test]
    fn dates_are_http_dates() {
        let date = now_http_date();
        let parsed = httpdate::parse_http_date(date.to_str().unwrap()).unwrap();
        let age = std::time::SystemTime::now().duration_since(parsed).unwrap();
        assert!(age < Duration::from_secs(2), "{date:?}");
    }
}

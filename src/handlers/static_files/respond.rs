//! Turning a decision into an HTTP response: file responses by plan, and the short ones.

use std::io;
use std::ops::Range;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{HeaderMap, Response, StatusCode};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use super::conditional::{self, Outcome};
use super::entry::{FileEntry, Variant};
use super::file_body::{self, Multipart, Source};
use super::range::{self, Ranges};
use super::request::{Method, RequestInfo};
use super::resolve::is_missing;
use crate::body::{self, Body};

/// Characters left as they are in a path segment we write into a URL; everything else is
/// percent-encoded, so a file named `a:b` or `x?y` cannot turn into a scheme or a query.
pub const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

fn allow() -> HeaderValue {
    HeaderValue::from_static("GET, HEAD, OPTIONS")
}

/// What to send for a file, once preconditions and ranges are weighed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// 304.
    NotModified,
    /// 412.
    PreconditionFailed,
    /// 200 with the whole variant.
    Full,
    /// 206 with these ranges.
    Partial(Vec<Range<u64>>),
    /// 416.
    Unsatisfiable,
}

impl Plan {
    /// Whether the response carries file bytes (on GET).
    pub fn reads_file(&self) -> bool {
        matches!(self, Plan::Full | Plan::Partial(_))
    }
}

/// Decides how to answer `req` for `variant`: preconditions first (RFC 9110 §13.2.2), then
/// ranges, which apply to GET of the original bytes only.
pub fn plan(req: &RequestInfo, variant: &Variant) -> Plan {
    let safe = matches!(req.method, Method::Get | Method::Head);
    let etag = variant.etag.as_bytes();
    match conditional::evaluate(&req.preconditions, safe, etag, variant.modified) {
        Outcome::NotModified => return Plan::NotModified,
        Outcome::Failed => return Plan::PreconditionFailed,
        Outcome::Proceed => {}
    }
    let Some(value) = req.range.as_ref() else {
        return Plan::Full;
    };
    if req.method != Method::Get
        || variant.encoding.is_some()
        || !range::if_range_allows(req.if_range.as_ref(), etag, variant.modified)
    {
        return Plan::Full;
    }
    match range::parse(value, variant.len) {
        Ranges::Full => Plan::Full,
        Ranges::Partial(ranges) => Plan::Partial(ranges),
        Ranges::Unsatisfiable => Plan::Unsatisfiable,
    }
}

/// The response for `variant` of `entry` under `plan`. `source` supplies the bytes when the
/// plan reads the file and the method is GET; otherwise it is `None`.
pub fn file(
    plan: Plan,
    entry: &FileEntry,
    variant: &Variant,
    extra: &HeaderMap,
    source: Option<Source>,
) -> Response<Body> {
    let has_sidecars = !entry.encoded.is_empty();
    // The common answer copies the headers built when the file was loaded.
    let mut headers = match (&plan, &variant.full_headers) {
        (Plan::Full, Some(full)) => full.clone(),
        (Plan::Full, None) => full_headers(&entry.content_type, variant, has_sidecars, extra),
        _ => validators(variant, has_sidecars, extra),
    };
    let (status, body) = match plan {
        Plan::NotModified => (StatusCode::NOT_MODIFIED, None),
        Plan::PreconditionFailed => {
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(0));
            (StatusCode::PRECONDITION_FAILED, None)
        }
        Plan::Unsatisfiable => {
            let star = format!("bytes */{}", variant.len);
            headers.insert(header::CONTENT_RANGE, ascii(star));
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(0));
            headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
            (StatusCode::RANGE_NOT_SATISFIABLE, None)
        }
        Plan::Full => {
            let body = source.map(|s| file_body::single(s, 0..variant.len));
            (StatusCode::OK, body)
        }
        Plan::Partial(ranges) => {
            headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
            let body = match <[Range<u64>; 1]>::try_from(ranges) {
                Ok([one]) => {
                    headers.insert(header::CONTENT_TYPE, entry.content_type.clone());
                    let len = one.end - one.start;
                    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
                    let value = range::content_range(&one, variant.len);
                    headers.insert(header::CONTENT_RANGE, ascii(value));
                    source.map(|s| file_body::single(s, one))
                }
                Err(ranges) => {
                    let multipart = Multipart::new(&ranges, variant.len, &entry.content_type);
                    headers.insert(header::CONTENT_TYPE, multipart.content_type.clone());
                    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(multipart.len));
                    source.map(|s| multipart.body(s))
                }
            };
            (StatusCode::PARTIAL_CONTENT, body)
        }
    };
    let mut response = Response::new(body.unwrap_or_else(body::empty));
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}

/// What every answer about a file carries: its validators, `Vary` when sidecars exist
/// (caches must key on Accept-Encoding for every answer about this URL, 304s included), and
/// the `extra` headers of the settings.
fn validators(variant: &Variant, has_sidecars: bool, extra: &HeaderMap) -> HeaderMap {
    let mut headers = HeaderMap::with_capacity(10);
    headers.insert(header::ETAG, variant.etag.clone());
    headers.insert(header::LAST_MODIFIED, variant.last_modified.clone());
    if has_sidecars {
        headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    }
    for (name, value) in extra {
        headers.insert(name, value.clone());
    }
    headers
}

/// The headers of a 200 with the whole of `variant` (of a file of `content_type`). Built
/// once when the file is loaded: cloning them costs a fraction of inserting them one by one
/// for every request, and nothing is added afterwards, which would grow the clone again.
pub fn full_headers(
    content_type: &HeaderValue,
    variant: &Variant,
    has_sidecars: bool,
    extra: &HeaderMap,
) -> HeaderMap {
    let mut headers = validators(variant, has_sidecars, extra);
    headers.insert(header::CONTENT_TYPE, content_type.clone());
    headers.insert(header::CONTENT_LENGTH, variant.content_length.clone());
    match variant.encoding {
        Some(encoding) => {
            let coding = HeaderValue::from_static(encoding.as_str());
            headers.insert(header::CONTENT_ENCODING, coding);
        }
        None => {
            headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
        }
    }
    headers
}

fn ascii(s: String) -> HeaderValue {
    HeaderValue::try_from(s).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// A response with `content` as body (headers only for HEAD, with the same length).
pub fn content(
    status: StatusCode,
    content_type: HeaderValue,
    content: Bytes,
    head: bool,
) -> Response<Body> {
    let len = HeaderValue::from(content.len());
    let body = if head {
        body::empty()
    } else {
        body::full(content)
    };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, content_type);
    headers.insert(header::CONTENT_LENGTH, len);
    response
}

/// A short plain-text response such as `404 Not Found`.
pub fn status(status: StatusCode, head: bool) -> Response<Body> {
    let text = format!(
        "{} {}\n",
        status.as_str(),
        status.canonical_reason().unwrap_or("")
    );
    let plain = HeaderValue::from_static("text/plain; charset=utf-8");
    content(status, plain, Bytes::from(text), head)
}

/// `OPTIONS`: what this resource supports.
pub fn options() -> Response<Body> {
    let mut response = Response::new(body::empty());
    *response.status_mut() = StatusCode::NO_CONTENT;
    response.headers_mut().insert(header::ALLOW, allow());
    response
}

/// Any method that cannot read a file.
pub fn method_not_allowed() -> Response<Body> {
    let mut response = status(StatusCode::METHOD_NOT_ALLOWED, false);
    response.headers_mut().insert(header::ALLOW, allow());
    response
}

/// 301 from a directory named without its slash to the same name with one. The location is
/// rebuilt from the checked segments, never copied from the request, so `//evil.example`
/// cannot become a protocol-relative redirect.
pub fn add_slash(decoded: &str, query: Option<&str>, head: bool) -> Response<Body> {
    let mut location = String::with_capacity(decoded.len() + 16);
    for segment in decoded.split('/').filter(|s| !s.is_empty()) {
        location.push('/');
        location.extend(utf8_percent_encode(segment, SEGMENT));
    }
    location.push('/');
    if let Some(query) = query {
        location.push('?');
        location.push_str(query);
    }
    let mut response = status(StatusCode::MOVED_PERMANENTLY, head);
    response
        .headers_mut()
        .insert(header::LOCATION, ascii(location));
    response
}

/// The response for a file-system failure: 404, 403, or a logged 500.
pub fn io_error(err: &io::Error, path: &str, head: bool) -> Response<Body> {
    if is_missing(err) {
        return status(StatusCode::NOT_FOUND, head);
    }
    if err.kind() == io::ErrorKind::PermissionDenied {
        return status(StatusCode::FORBIDDEN, head);
    }
    tracing::error!(error = %err, path, "static file error");
    status(StatusCode::INTERNAL_SERVER_ERROR, head)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_location_is_rebuilt() {
        let r = add_slash("/a b/c:d", Some("x=1&y"), false);
        assert_eq!(r.status(), StatusCode::MOVED_PERMANENTLY);
        assert_eq!(r.headers()[header::LOCATION], "/a%20b/c%3Ad/?x=1&y");
        let r = add_slash("/evil.example", None, false);
        assert_eq!(r.headers()[header::LOCATION], "/evil.example/");
    }

    #[test]
    fn io_errors_map_to_statuses() {
        let denied = io::Error::from(io::ErrorKind::PermissionDenied);
        assert_eq!(
            io_error(&denied, "/x", false).status(),
            StatusCode::FORBIDDEN
        );
        let missing = io::Error::from(io::ErrorKind::NotFound);
        assert_eq!(
            io_error(&missing, "/x", false).status(),
            StatusCode::NOT_FOUND
        );
        let other = io::Error::other("disk on fire");
        assert_eq!(
            io_error(&other, "/x", false).status(),
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }
}

//! The parts of a request the handler reads, copied out before any `.await`.
//!
//! Holding `&Request<Body>` across an await would make the handler's future `!Send`, because
//! the boxed body is not `Sync`. Header values are reference-counted, so copying them out is
//! cheap.

use http::header::{self, HeaderName};
use http::{HeaderMap, HeaderValue, Request, Uri};

use super::conditional::Preconditions;

/// The request method, as far as static files care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// GET.
    Get,
    /// HEAD: the GET response without its body.
    Head,
    /// OPTIONS.
    Options,
    /// Anything else: 405.
    Other,
}

/// What [`super::StaticFiles::serve`] needs from a request.
#[derive(Debug, Clone)]
pub struct RequestInfo {
    /// The method.
    pub method: Method,
    /// The target; only its path and query are used, so absolute-form targets work.
    pub uri: Uri,
    /// `Accept-Encoding` (all field lines joined).
    pub accept_encoding: Option<HeaderValue>,
    /// Conditional headers.
    pub preconditions: Preconditions,
    /// `Range`, if sent exactly once.
    pub range: Option<HeaderValue>,
    /// `If-Range`, if sent exactly once.
    pub if_range: Option<HeaderValue>,
}

impl RequestInfo {
    /// Copies what is needed out of `req`.
    pub fn capture<B>(req: &Request<B>) -> RequestInfo {
        let method = match *req.method() {
            http::Method::GET => Method::Get,
            http::Method::HEAD => Method::Head,
            http::Method::OPTIONS => Method::Options,
            _ => Method::Other,
        };
        let h = req.headers();
        RequestInfo {
            method,
            uri: req.uri().clone(),
            accept_encoding: list(h, header::ACCEPT_ENCODING),
            preconditions: Preconditions {
                if_match: list(h, header::IF_MATCH),
                if_none_match: list(h, header::IF_NONE_MATCH),
                if_modified_since: single(h, header::IF_MODIFIED_SINCE),
                if_unmodified_since: single(h, header::IF_UNMODIFIED_SINCE),
            },
            range: single(h, header::RANGE),
            if_range: single(h, header::IF_RANGE),
        }
    }

    /// HEAD requests get headers only.
    pub fn is_head(&self) -> bool {
        self.method == Method::Head
    }
}

/// A list-valued field: several field lines mean the same as one joined with commas.
fn list(headers: &HeaderMap, name: HeaderName) -> Option<HeaderValue> {
    let mut values = headers.get_all(&name).iter();
    let first = values.next()?;
    let Some(second) = values.next() else {
        return Some(first.clone());
    };
    let mut joined = first.as_bytes().to_vec();
    for value in std::iter::once(second).chain(values) {
        joined.extend_from_slice(b", ");
        joined.extend_from_slice(value.as_bytes());
    }
    HeaderValue::from_bytes(&joined).ok()
}

/// A singleton field: sent more than once it is invalid, and invalid means absent.
fn single(headers: &HeaderMap, name: HeaderName) -> Option<HeaderValue> {
    let mut values = headers.get_all(&name).iter();
    let first = values.next()?;
    values.next().is_none().then(|| first.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_lists_and_drops_repeated_singletons() {
        let req = Request::builder()
            .method("HEAD")
            .uri("http://example.com/a?b")
            .header("if-none-match", "\"a\"")
            .header("if-none-match", "\"b\"")
            .header("range", "bytes=0-1")
            .header("range", "bytes=2-3")
            .header("if-range", "\"a\"")
            .body(())
            .unwrap();
        let info = RequestInfo::capture(&req);
        assert!(info.is_head());
        assert_eq!(info.uri.path(), "/a");
        assert_eq!(info.preconditions.if_none_match.unwrap(), "\"a\", \"b\"");
        assert!(info.range.is_none());
        assert_eq!(info.if_range.unwrap(), "\"a\"");
        let post = Request::post("/").body(()).unwrap();
        assert_eq!(RequestInfo::capture(&post).method, Method::Other);
    }
}

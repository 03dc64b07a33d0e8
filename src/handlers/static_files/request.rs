//! The parts of a request the handler reads, copied out before any `.await`.
//!
//! Holding `&Request<Body>` across an await would make the handler's future `!Send`, because
//! the boxed body is not `Sync`. Header values are reference-counted, so copying them out is
//! cheap.

use http::header;
use http::{HeaderValue, Request, Uri};

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
        let mut info = RequestInfo {
            method,
            uri: req.uri().clone(),
            accept_encoding: None,
            preconditions: Preconditions::default(),
            range: None,
            if_range: None,
        };
        // One pass over the fields instead of a hashed lookup per header read: a request
        // carries a handful of fields, and most of these seven are usually absent.
        let mut repeated = [false; 4];
        for (name, value) in req.headers() {
            let p = &mut info.preconditions;
            match name {
                n if n == header::ACCEPT_ENCODING => add_line(&mut info.accept_encoding, value),
                n if n == header::IF_NONE_MATCH => add_line(&mut p.if_none_match, value),
                n if n == header::IF_MATCH => add_line(&mut p.if_match, value),
                n if n == header::IF_MODIFIED_SINCE => {
                    set_once(&mut p.if_modified_since, &mut repeated[0], value)
                }
                n if n == header::IF_UNMODIFIED_SINCE => {
                    set_once(&mut p.if_unmodified_since, &mut repeated[1], value)
                }
                n if n == header::RANGE => set_once(&mut info.range, &mut repeated[2], value),
                n if n == header::IF_RANGE => set_once(&mut info.if_range, &mut repeated[3], value),
                _ => {}
            }
        }
        info
    }

    /// HEAD requests get headers only.
    pub fn is_head(&self) -> bool {
        self.method == Method::Head
    }
}

/// A list-valued field: several field lines mean the same as one joined with commas.
fn add_line(slot: &mut Option<HeaderValue>, value: &HeaderValue) {
    *slot = match slot.take() {
        None => Some(value.clone()),
        Some(first) => {
            let mut joined = Vec::with_capacity(first.len() + 2 + value.len());
            joined.extend_from_slice(first.as_bytes());
            joined.extend_from_slice(b", ");
            joined.extend_from_slice(value.as_bytes());
            HeaderValue::from_bytes(&joined).ok()
        }
    };
}

/// A singleton field: sent more than once it is invalid, and invalid means absent.
fn set_once(slot: &mut Option<HeaderValue>, repeated: &mut bool, value: &HeaderValue) {
    *repeated |= slot.is_some();
    *slot = (!*repeated).then(|| value.clone());
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
        let three = Request::get("/")
            .header("accept-encoding", "gzip")
            .header("if-modified-since", "Sun, 06 Nov 1994 08:49:37 GMT")
            .header("accept-encoding", "br")
            .header("if-modified-since", "Sun, 06 Nov 1994 08:49:37 GMT")
            .header("accept-encoding", "zstd")
            .header("if-modified-since", "Sun, 06 Nov 1994 08:49:37 GMT")
            .header("if-unmodified-since", "Sun, 06 Nov 1994 08:49:37 GMT")
            .body(())
            .unwrap();
        let info = RequestInfo::capture(&three);
        assert_eq!(info.accept_encoding.unwrap(), "gzip, br, zstd");
        assert!(info.preconditions.if_modified_since.is_none());
        assert!(info.preconditions.if_unmodified_since.is_some());
        assert!(info.preconditions.if_match.is_none() && info.range.is_none());
        let post = Request::post("/").body(()).unwrap();
        assert_eq!(RequestInfo::capture(&post).method, Method::Other);
    }
}

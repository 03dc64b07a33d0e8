//! Rules that belong to the endpoint a request arrived on, not to its site: redirect plain
//! HTTP to HTTPS, refuse a Host that differs from the TLS server name, and the HSTS and
//! alt-svc response headers.

use std::borrow::Cow;

use http::header::{HeaderValue, ALT_SVC, HOST, LOCATION, STRICT_TRANSPORT_SECURITY};
use http::uri::Authority;
use http::{HeaderMap, Method, Request, Response, StatusCode};

use super::{error_response, ConnInfo};
use crate::body::{self, Body};

/// The host a request is for (authority or Host header), lowercase, without the port.
pub fn request_host<B>(req: &Request<B>) -> Option<String> {
    host_of(req).map(Cow::into_owned)
}

/// [`request_host`] borrowed from the request when it is already lowercase (as clients
/// send it): site selection and the endpoint rules run on every request, and need no copy.
pub(super) fn host_of<B>(req: &Request<B>) -> Option<Cow<'_, str>> {
    let raw = match req.uri().authority() {
        Some(a) => a.host(),
        None => host_in_header(req.headers().get(HOST)?.as_bytes())?,
    };
    let host = raw.trim_end_matches('.');
    Some(if host.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(host.to_ascii_lowercase())
    } else {
        Cow::Borrowed(host)
    })
}

/// The host part of a Host header, borrowed from it; `None` when it is not an authority.
fn host_in_header(header: &[u8]) -> Option<&str> {
    // The common form (lowercase name or IPv4 address, optional numeric port) is read
    // directly: `Authority` would copy the header into a new buffer to parse it.
    let (name, port) = match memchr::memchr(b':', header) {
        Some(colon) => (&header[..colon], &header[colon + 1..]),
        None => (header, &b""[..]),
    };
    let simple_name = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-.".contains(b);
    if !name.is_empty() && name.iter().all(simple_name) && port.iter().all(u8::is_ascii_digit) {
        return std::str::from_utf8(name).ok();
    }
    let header = std::str::from_utf8(header).ok()?;
    // Authority checks the syntax; the host is then cut out of the header itself (at the
    // same offset), so that it borrows from the request.
    let authority = Authority::try_from(header).ok()?;
    let host = authority.host();
    let start = host.as_ptr() as usize - authority.as_str().as_ptr() as usize;
    header.get(start..start + host.len())
}

/// Answers the request here when an endpoint rule applies: 301/308 to https, or 421.
pub fn answer<B>(conn: &ConnInfo, req: &Request<B>) -> Option<Response<Body>> {
    if let Some(port) = conn.endpoint.https_redirect_port {
        return Some(redirect_to_https(req, port));
    }
    if conn.endpoint.require_sni_host_match {
        let sni = conn.tls.as_ref().and_then(|t| t.sni.as_deref());
        if let (Some(sni), Some(host)) = (sni, host_of(req)) {
            if sni != host {
                return Some(error_response(StatusCode::MISDIRECTED_REQUEST));
            }
        }
    }
    None
}

fn redirect_to_https<B>(req: &Request<B>, port: u16) -> Response<Body> {
    // An IPv6 host keeps its brackets (`[::1]`), as a URL needs them.
    let Some(host) = host_of(req) else {
        return error_response(StatusCode::BAD_REQUEST);
    };
    let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
    let location = if port == 443 {
        format!("https://{host}{path}")
    } else {
        format!("https://{host}:{port}{path}")
    };
    let Ok(location) = HeaderValue::from_str(&location) else {
        return error_response(StatusCode::BAD_REQUEST);
    };
    // 308 keeps the method and body; browsers only follow 301 for GET/HEAD reliably anyway.
    let status = if req.method() == Method::GET || req.method() == Method::HEAD {
        StatusCode::MOVED_PERMANENTLY
    } else {
        StatusCode::PERMANENT_REDIRECT
    };
    let mut resp = Response::new(body::empty());
    *resp.status_mut() = status;
    resp.headers_mut().insert(LOCATION, location);
    resp
}

/// Whether the response to `req` gets the endpoint's HSTS header: never for local hosts,
/// which would pin browsers to https on every localhost port. Asked before the request is
/// handed on, so that its host need not be kept.
pub fn wants_hsts<B>(conn: &ConnInfo, req: &Request<B>) -> bool {
    conn.endpoint.hsts.is_some() && host_of(req).is_some_and(|host| !is_local(&host))
}

/// Adds the endpoint's HSTS header (when [`wants_hsts`] said so) and alt-svc header.
pub fn decorate(conn: &ConnInfo, hsts: bool, headers: &mut HeaderMap) {
    if let (true, Some(value)) = (hsts, &conn.endpoint.hsts) {
        headers.insert(STRICT_TRANSPORT_SECURITY, value.clone());
    }
    if let Some(alt_svc) = &conn.endpoint.alt_svc {
        headers.insert(ALT_SVC, alt_svc.clone());
    }
}

fn is_local(host: &str) -> bool {
    host == "localhost"
        || host.ends_with(".localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_hosts() {
        for h in [
            "localhost",
            "app.localhost",
            "127.0.0.1",
            "127.1.2.3",
            "[::1]",
            "::1",
        ] {
            assert!(is_local(h), "{h}");
        }
        for h in ["example.com", "10.0.0.1", "localhost.example.com"] {
            assert!(!is_local(h), "{h}");
        }
    }

    #[test]
    fn the_common_host_forms_read_directly_agree_with_authority() {
        let general = |h: &str| {
            let a = Authority::try_from(h).ok()?;
            Some(a.host().to_owned())
        };
        let cases = [
            "a",
            "a.example",
            "a.example:81",
            "a:",
            "a:99999",
            "127.0.0.1:8080",
            "a-b.c-d",
            ":80",
            "",
            "a:1:2",
            "a:x",
            "A.example",
            "[::1]:8",
            "u@a",
            "a b",
            "a%41",
            "1.2.3.4.5",
            "..",
        ];
        for h in cases {
            let fast = host_in_header(h.as_bytes()).map(str::to_owned);
            assert_eq!(fast, general(h), "{h:?}");
        }
        assert_eq!(host_in_header(b"a.example:81"), Some("a.example"));
        assert_eq!(host_in_header(b"\xff"), None);
    }

    #[test]
    fn hosts_come_from_the_authority_or_the_host_header() {
        let req = Request::get("http://Example.COM:8080/x").body(()).unwrap();
        assert_eq!(request_host(&req).as_deref(), Some("example.com"));
        let req = Request::get("/x")
            .header("host", "a.example:81")
            .body(())
            .unwrap();
        assert_eq!(request_host(&req).as_deref(), Some("a.example"));
        let req = Request::get("/x")
            .header("host", "[::1]:81")
            .body(())
            .unwrap();
        assert_eq!(request_host(&req).as_deref(), Some("[::1]"));
        let with = |host: &str| Request::get("/x").header("host", host).body(()).unwrap();
        // Already lowercase: borrowed from the header, no copy.
        let req = with("user@a.example.:81");
        assert!(matches!(host_of(&req), Some(Cow::Borrowed("a.example"))));
        let req = with("A.Example");
        assert!(matches!(host_of(&req), Some(Cow::Owned(h)) if h == "a.example"));
        for bad in ["a b", "", "[::1"] {
            assert_eq!(host_of(&with(bad)), None, "{bad:?}");
        }
    }

    #[test]
    fn https_redirects_keep_one_pair_of_ipv6_brackets() {
        let location = |host: &str, port| {
            let req = Request::get("/a?b").header("host", host).body(()).unwrap();
            let resp = redirect_to_https(&req, port);
            resp.headers()[LOCATION].to_str().unwrap().to_owned()
        };
        assert_eq!(location("[::1]:8080", 8443), "https://[::1]:8443/a?b");
        assert_eq!(location("Example.com", 443), "https://example.com/a?b");
    }
}

//! Rules that belong to the endpoint a request arrived on, not to its site: redirect plain
//! HTTP to HTTPS, refuse a Host that differs from the TLS server name, and the HSTS and
//! alt-svc response headers.

use http::header::{HeaderValue, ALT_SVC, LOCATION, STRICT_TRANSPORT_SECURITY};
use http::{HeaderMap, Method, Request, Response, StatusCode};

use super::{error_response, ConnInfo};
use crate::body::{self, Body};

/// The host a request is for (authority or Host header), lowercase, without the port.
pub fn request_host<B>(req: &Request<B>) -> Option<String> {
    let raw = match req.uri().authority() {
        Some(a) => a.host().to_owned(),
        None => {
            let host = req.headers().get(http::header::HOST)?.to_str().ok()?;
            let authority: http::uri::Authority = host.parse().ok()?;
            authority.host().to_owned()
        }
    };
    Some(raw.trim_end_matches('.').to_ascii_lowercase())
}

/// Answers the request here when an endpoint rule applies: 301/308 to https, or 421.
pub fn answer<B>(conn: &ConnInfo, req: &Request<B>) -> Option<Response<Body>> {
    if let Some(port) = conn.endpoint.https_redirect_port {
        return Some(redirect_to_https(req, port));
    }
    if conn.endpoint.require_sni_host_match {
        let sni = conn.tls.as_ref().and_then(|t| t.sni.as_deref());
        if let (Some(sni), Some(host)) = (sni, request_host(req)) {
            if sni != host {
                return Some(error_response(StatusCode::MISDIRECTED_REQUEST));
            }
        }
    }
    None
}

fn redirect_to_https<B>(req: &Request<B>, port: u16) -> Response<Body> {
    let Some(host) = request_host(req) else {
        return error_response(StatusCode::BAD_REQUEST);
    };
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host
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

/// Adds the endpoint's HSTS (never for local hosts, which would pin browsers to https on
/// every localhost port) and alt-svc headers.
pub fn decorate(conn: &ConnInfo, host: Option<&str>, headers: &mut HeaderMap) {
    if let Some(hsts) = &conn.endpoint.hsts {
        if !host.is_none_or(is_local) {
            headers.insert(STRICT_TRANSPORT_SECURITY, hsts.clone());
        }
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
    }
}

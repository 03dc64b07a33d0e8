//! What changes on a request on its way to an upstream and on the response on its way back:
//! hop-by-hop headers, X-Forwarded-* / Forwarded / Via, the Host header and the path.

use std::fmt::Display;
use std::io::Write as _;
use std::net::IpAddr;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Request, Version};

use crate::config::ForwardedOut;
use crate::pipeline::{ClientAddr, ConnInfo};

/// Hop-by-hop headers (RFC 9110 §7.6.1, plus the non-standard ones proxies agree on).
const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    header::PROXY_AUTHENTICATE,
];

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// The protocol a request is upgrading to (`websocket`), for an HTTP/1.1 request that asks
/// to upgrade (`Connection: upgrade` and `Upgrade`).
pub fn upgrade_protocol<B>(req: &Request<B>) -> Option<HeaderValue> {
    if req.version() != Version::HTTP_11 {
        return None;
    }
    let asks = connection_tokens(req.headers()).any(|t| t.eq_ignore_ascii_case("upgrade"));
    asks.then(|| req.headers().get(header::UPGRADE).cloned())
        .flatten()
}

/// Whether `req` is an HTTP/2 extended CONNECT for a WebSocket (RFC 8441).
pub fn is_h2_websocket<B>(req: &Request<B>) -> bool {
    req.method() == http::Method::CONNECT
        && req
            .extensions()
            .get::<hyper::ext::Protocol>()
            .is_some_and(|p| p.as_str().eq_ignore_ascii_case("websocket"))
}

/// A fresh `Sec-WebSocket-Key` for the HTTP/1.1 handshake made on behalf of an HTTP/2
/// client (which has no key of its own).
pub fn websocket_key() -> HeaderValue {
    use base64::Engine;
    let mut nonce = [0u8; 16];
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let _ = aws_lc_rs::rand::SecureRandom::fill(&rng, &mut nonce);
    let key = base64::engine::general_purpose::STANDARD.encode(nonce);
    HeaderValue::try_from(key).unwrap_or(HeaderValue::from_static("dGhlIHNhbXBsZSBub25jZQ=="))
}

fn connection_tokens(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// Removes hop-by-hop headers, including those the `Connection` header names. `TE:
/// trailers` survives (gRPC needs it end to end).
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // Most messages carry none of them (`Connection` and `TE` included): one pass over the
    // few names present instead of a hashed removal per hop-by-hop name.
    if !headers.keys().any(|name| HOP_BY_HOP.contains(name)) {
        return;
    }
    // The usual tokens name no header or one removed below anyway: nothing is collected
    // (or allocated) for them.
    let named: Vec<HeaderName> = connection_tokens(headers)
        .filter(|t| {
            !["close", "keep-alive", "upgrade"]
                .iter()
                .any(|u| t.eq_ignore_ascii_case(u))
        })
        .filter_map(|t| HeaderName::from_bytes(t.as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    let trailers_only = headers
        .get_all(header::TE)
        .iter()
        .all(|v| v.as_bytes().eq_ignore_ascii_case(b"trailers"));
    let te = headers.get(header::TE).cloned();
    for name in &HOP_BY_HOP {
        headers.remove(name);
    }
    if let (Some(te), true) = (te, trailers_only) {
        headers.insert(header::TE, te);
    }
}

/// What a request tells about its client, taken before its headers change.
pub struct Origin {
    /// The client's IP (after `forwarded_headers`, when that stage ran).
    pub client: Option<IpAddr>,
    /// The direct peer is one of `trusted_proxies`: its forwarding headers are kept.
    pub trusted: bool,
    /// `http` or `https`, as the client used it.
    pub proto: &'static str,
    /// The Host (with port) the client asked for.
    pub host: Option<HeaderValue>,
    /// `1.1`, `2` or `3`, for Via.
    pub version: &'static str,
}

impl Origin {
    /// Reads the origin of `req` as seen by `opts`.
    pub fn of<B>(req: &Request<B>, opts: &ForwardedOut) -> Origin {
        let conn = ConnInfo::of(req);
        let conn = conn.as_deref();
        let peer = conn.and_then(|c| c.remote).map(|a| a.ip());
        let trusted = peer.is_some_and(|ip| opts.trusted_proxies.iter().any(|n| n.contains(&ip)));
        let resolved = req.extensions().get::<ClientAddr>();
        let proto = match resolved.and_then(|c| c.scheme.as_deref()) {
            Some("https") => "https",
            Some(_) => "http",
            None if conn.is_some_and(|c| c.tls.is_some()) => "https",
            None if req.uri().scheme_str() == Some("https") => "https",
            None => "http",
        };
        let host = match req.uri().authority() {
            Some(a) => HeaderValue::from_str(a.as_str()).ok(),
            None => req.headers().get(header::HOST).cloned(),
        };
        let version = match req.version() {
            Version::HTTP_2 => "2",
            Version::HTTP_3 => "3",
            Version::HTTP_10 => "1.0",
            _ => "1.1",
        };
        Origin {
            client: crate::pipeline::client_ip(req),
            trusted,
            proto,
            host,
            version,
        }
    }
}

/// Sets X-Forwarded-*, Forwarded and Via on a request going upstream: appended to the
/// incoming values from a trusted peer, replacing anyone else's.
pub fn forwarding_headers(headers: &mut HeaderMap, origin: &Origin, opts: &ForwardedOut) {
    if opts.x_forwarded {
        match origin.client {
            Some(ip) => append_list(headers, X_FORWARDED_FOR, origin.trusted, |out| {
                crate::text::push_ip(out, ip)
            }),
            None if !origin.trusted => {
                headers.remove(X_FORWARDED_FOR);
            }
            None => {}
        }
        if !origin.trusted || !headers.contains_key(X_FORWARDED_PROTO) {
            headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static(origin.proto));
        }
        if !origin.trusted || !headers.contains_key(X_FORWARDED_HOST) {
            match &origin.host {
                Some(host) => {
                    headers.insert(X_FORWARDED_HOST, host.clone());
                }
                None => {
                    headers.remove(X_FORWARDED_HOST);
                }
            }
        }
    } else if !origin.trusted {
        for name in [X_FORWARDED_FOR, X_FORWARDED_PROTO, X_FORWARDED_HOST] {
            headers.remove(name);
        }
    }
    if opts.forwarded {
        append_list(headers, header::FORWARDED, origin.trusted, |out| {
            let _ = write!(out, "{}", ForwardedElement(origin));
        });
    } else if !origin.trusted {
        headers.remove(header::FORWARDED);
    }
    if opts.via {
        append_list(headers, header::VIA, true, |out| {
            out.extend_from_slice(origin.version.as_bytes());
            out.extend_from_slice(b" harrier");
        });
    }
}

/// The RFC 7239 element describing `origin`: `for=...;proto=...;host="..."`.
struct ForwardedElement<'a>(&'a Origin);

impl Display for ForwardedElement<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let origin = self.0;
        match origin.client {
            Some(IpAddr::V4(v4)) => write!(f, "for={v4};")?,
            Some(IpAddr::V6(v6)) => write!(f, "for=\"[{v6}]\";")?,
            None => {}
        }
        write!(f, "proto={}", origin.proto)?;
        if let Some(host) = origin.host.as_ref().and_then(|h| h.to_str().ok()) {
            write!(f, ";host=\"{host}\"")?;
        }
        Ok(())
    }
}

/// `name: value`, after the existing values when `keep` (one comma-joined line); `value`
/// writes itself straight into the header's one buffer.
fn append_list(
    headers: &mut HeaderMap,
    name: HeaderName,
    keep: bool,
    value: impl FnOnce(&mut Vec<u8>),
) {
    let mut joined = Vec::with_capacity(64);
    if keep {
        for v in headers.get_all(&name).iter().filter(|v| v.to_str().is_ok()) {
            joined.extend_from_slice(v.as_bytes());
            joined.extend_from_slice(b", ");
        }
    }
    value(&mut joined);
    if let Ok(v) = HeaderValue::try_from(joined) {
        headers.insert(name, v);
    }
}

/// The path and query sent upstream: `strip` removed at a segment boundary, `add` put in
/// front.
pub fn rewrite_path(path_and_query: &str, strip: Option<&str>, add: Option<&str>) -> String {
    let (path, query) = match path_and_query.find('?') {
        Some(i) => path_and_query.split_at(i),
        None => (path_and_query, ""),
    };
    let path = match strip {
        Some(prefix) if path == prefix => "/",
        Some(prefix) => match path.strip_prefix(prefix) {
            Some(rest) if rest.starts_with('/') => rest,
            _ => path,
        },
        None => path,
    };
    let mut out = String::with_capacity(path.len() + query.len() + add.map_or(0, str::len));
    if let Some(add) = add {
        out.push_str(add);
    }
    out.push_str(path);
    out.push_str(query);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_and_those_named_in_connection_go() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, x-secret"),
        );
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
        h.insert(header::TE, HeaderValue::from_static("trailers"));
        h.insert("x-kept", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut h);
        let names: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
        assert_eq!(names, ["x-kept", "te"]);
    }

    #[test]
    fn each_hop_by_hop_header_alone_goes_and_nothing_else_does() {
        for name in &HOP_BY_HOP {
            let mut h = HeaderMap::new();
            h.insert("x-kept", HeaderValue::from_static("1"));
            h.insert(name, HeaderValue::from_static("v"));
            strip_hop_by_hop(&mut h);
            let names: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
            assert_eq!(names, ["x-kept"], "{name}");
        }
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("a"));
        h.insert("x-secret", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 2);
    }

    #[test]
    fn paths_are_stripped_at_segment_boundaries() {
        let r = |p, s, a| rewrite_path(p, s, a);
        assert_eq!(r("/api/users?x=1", Some("/api"), None), "/users?x=1");
        assert_eq!(r("/api", Some("/api"), None), "/");
        assert_eq!(r("/apix/1", Some("/api"), None), "/apix/1");
        assert_eq!(r("/users", None, Some("/v1")), "/v1/users");
        assert_eq!(r("/api/u", Some("/api"), Some("/v2")), "/v2/u");
    }

    #[test]
    fn forwarded_for_is_replaced_from_strangers_and_appended_from_trusted_peers() {
        let opts = ForwardedOut {
            x_forwarded: true,
            forwarded: true,
            via: true,
            trusted_proxies: vec![],
        };
        let origin = |trusted| Origin {
            client: Some("10.0.0.9".parse().unwrap()),
            trusted,
            proto: "https",
            host: Some(HeaderValue::from_static("example.com:8443")),
            version: "2",
        };
        let mut h = HeaderMap::new();
        h.insert(X_FORWARDED_FOR, HeaderValue::from_static("6.6.6.6"));
        h.insert(X_FORWARDED_PROTO, HeaderValue::from_static("http"));
        forwarding_headers(&mut h, &origin(false), &opts);
        assert_eq!(h[&X_FORWARDED_FOR], "10.0.0.9");
        assert_eq!(h[&X_FORWARDED_PROTO], "https");
        assert_eq!(h[&X_FORWARDED_HOST], "example.com:8443");
        assert_eq!(
            h[header::FORWARDED],
            "for=10.0.0.9;proto=https;host=\"example.com:8443\""
        );
        assert_eq!(h[header::VIA], "2 harrier");

        let mut h = HeaderMap::new();
        h.insert(X_FORWARDED_FOR, HeaderValue::from_static("1.2.3.4"));
        h.insert(X_FORWARDED_PROTO, HeaderValue::from_static("http"));
        forwarding_headers(&mut h, &origin(true), &opts);
        assert_eq!(h[&X_FORWARDED_FOR], "1.2.3.4, 10.0.0.9");
        assert_eq!(h[&X_FORWARDED_PROTO], "http");
    }

    #[test]
    fn forwarded_quotes_ipv6_clients_and_leaves_out_what_is_unknown() {
        let opts = ForwardedOut {
            x_forwarded: true,
            forwarded: true,
            via: false,
            trusted_proxies: vec![],
        };
        let origin = |client: Option<&str>| Origin {
            client: client.map(|ip| ip.parse().unwrap()),
            trusted: false,
            proto: "http",
            host: None,
            version: "1.1",
        };
        let mut h = HeaderMap::new();
        h.insert(X_FORWARDED_HOST, HeaderValue::from_static("spoofed"));
        forwarding_headers(&mut h, &origin(Some("2001:db8::7")), &opts);
        assert_eq!(h[header::FORWARDED], "for=\"[2001:db8::7]\";proto=http");
        assert_eq!(h[&X_FORWARDED_FOR], "2001:db8::7");
        assert!(h.get(&X_FORWARDED_HOST).is_none());
        assert!(h.get(header::VIA).is_none());

        let mut h = HeaderMap::new();
        h.insert(X_FORWARDED_FOR, HeaderValue::from_static("6.6.6.6"));
        forwarding_headers(&mut h, &origin(None), &opts);
        assert_eq!(h[header::FORWARDED], "proto=http");
        assert!(h.get(&X_FORWARDED_FOR).is_none());
    }
}

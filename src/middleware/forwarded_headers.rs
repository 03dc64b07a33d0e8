//! `forwarded_headers`: believe a trusted proxy about the client (Kestrel's
//! ForwardedHeadersMiddleware). The resolved client goes into the request's extensions as a
//! [`ClientAddr`] for everything after this stage; the incoming headers are left as they are.

use std::net::{IpAddr, SocketAddr};

use http::{HeaderMap, Request};
use ipnet::IpNet;

use super::ip_filter::contains;
use crate::body::Body;
use crate::config::ForwardedHeadersStage;
use crate::pipeline::{client_ip, ClientAddr, ConnInfo, HandlerFuture, Middleware, Next};

/// The `forwarded_headers` stage.
pub struct ForwardedHeaders {
    x_for: bool,
    x_proto: bool,
    x_host: bool,
    forwarded: bool,
    trusted: Vec<IpNet>,
    limit: usize,
}

/// What one proxy hop said about the hop before it.
#[derive(Debug, Default, PartialEq)]
struct Hop<'a> {
    client: Option<&'a str>,
    proto: Option<&'a str>,
    host: Option<&'a str>,
}

impl ForwardedHeaders {
    /// The stage for `cfg`.
    pub fn new(cfg: &ForwardedHeadersStage) -> ForwardedHeaders {
        let has = |name: &str| cfg.headers.contains(&name);
        ForwardedHeaders {
            x_for: has("x-forwarded-for"),
            x_proto: has("x-forwarded-proto"),
            x_host: has("x-forwarded-host"),
            forwarded: has("forwarded"),
            trusted: cfg.trusted_proxies.clone(),
            limit: usize::try_from(cfg.forward_limit).unwrap_or(usize::MAX),
        }
    }

    /// The client as the trusted proxies tell it, walking hops right to left while the
    /// hop that spoke is trusted, at most `limit` hops; `None` when nothing was believed.
    fn resolve(&self, peer: IpAddr, headers: &HeaderMap) -> Option<ClientAddr> {
        // Most requests come straight from clients: nothing to walk, nothing to allocate.
        if !contains(&self.trusted, peer) {
            return None;
        }
        if self.forwarded && headers.contains_key(http::header::FORWARDED) {
            return self.walk(peer, list_rev(headers, "forwarded").map(forwarded_element));
        }
        let mut fors = self.x_for.then(|| list_rev(headers, "x-forwarded-for"));
        let mut protos = self.x_proto.then(|| list_rev(headers, "x-forwarded-proto"));
        let mut hosts = self.x_host.then(|| list_rev(headers, "x-forwarded-host"));
        let hops = std::iter::from_fn(move || {
            let hop = Hop {
                client: fors.as_mut().and_then(Iterator::next),
                proto: protos.as_mut().and_then(Iterator::next),
                host: hosts.as_mut().and_then(Iterator::next),
            };
            (hop != Hop::default()).then_some(hop)
        });
        self.walk(peer, hops)
    }

    /// Walks `hops` (nearest first) from the trusted `peer`: generic over the two header
    /// forms, so that neither is boxed per request.
    fn walk<'a>(&self, peer: IpAddr, hops: impl Iterator<Item = Hop<'a>>) -> Option<ClientAddr> {
        let mut ip = peer;
        let mut believed = false;
        // Borrowed from the headers while walking; copied once, for the hop that won.
        let (mut proto, mut host) = (None, None);
        for hop in hops.take(self.limit) {
            if !contains(&self.trusted, ip) {
                break;
            }
            let client = match hop.client {
                Some(text) => match node_ip(text) {
                    Some(client) => Some(client),
                    // "unknown", an obfuscated name or garbage: the trail ends here.
                    None => break,
                },
                None => None,
            };
            believed = true;
            if let Some(client) = client {
                ip = client;
            }
            proto = hop.proto.filter(|p| is_scheme(p)).or(proto);
            host = hop
                .host
                .filter(|h| h.parse::<http::uri::Authority>().is_ok())
                .or(host);
            if client.is_none() {
                // Without the next hop's address, its trust cannot be judged.
                break;
            }
        }
        believed.then(|| ClientAddr {
            ip,
            scheme: proto.map(str::to_ascii_lowercase),
            host: host.map(str::to_owned),
            original_peer: None,
        })
    }
}

impl Middleware for ForwardedHeaders {
    fn handle(&self, mut req: Request<Body>, next: Next) -> HandlerFuture {
        let Some(peer) = client_ip(&req) else {
            return next.run(req);
        };
        let Some(mut addr) = self.resolve(peer, req.headers()) else {
            return next.run(req);
        };
        // An earlier stage's answer (taken: it is replaced below) keeps the connection's
        // peer and fills in what this one did not learn.
        match req.extensions_mut().remove::<ClientAddr>() {
            Some(earlier) => {
                addr.original_peer = earlier.original_peer;
                addr.scheme = addr.scheme.or(earlier.scheme);
                addr.host = addr.host.or(earlier.host);
            }
            None => addr.original_peer = connection_peer(&req),
        }
        req.extensions_mut().insert(addr.clone());
        Box::pin(async move {
            let mut resp = next.run(req).await;
            // The access log is written from the response side.
            resp.extensions_mut().insert(addr);
            resp
        })
    }
}

fn connection_peer<B>(req: &Request<B>) -> Option<SocketAddr> {
    ConnInfo::of(req).and_then(|c| c.remote)
}

/// The comma-separated items of every `name` header, last first (the nearest hop first).
fn list_rev<'a>(headers: &'a HeaderMap, name: &'static str) -> impl Iterator<Item = &'a str> {
    headers
        .get_all(name)
        .iter()
        .rev()
        .flat_map(|v| v.to_str().unwrap_or("").rsplit(','))
        .map(str::trim)
        .filter(|item| !item.is_empty())
}

/// One RFC 7239 element: `for=...;proto=...;host=...` (other parameters ignored).
fn forwarded_element(element: &str) -> Hop<'_> {
    let mut hop = Hop::default();
    for pair in element.split(';') {
        let Some((key, value)) = pair.split_once('=') else {
            continue;
        };
        let value = value.trim();
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(value);
        let key = key.trim();
        let slot = if key.eq_ignore_ascii_case("for") {
            &mut hop.client
        } else if key.eq_ignore_ascii_case("proto") {
            &mut hop.proto
        } else if key.eq_ignore_ascii_case("host") {
            &mut hop.host
        } else {
            continue;
        };
        *slot = Some(value);
    }
    hop
}

/// The IP of a node: `192.0.2.60`, `192.0.2.60:4711`, `2001:db8::1` or
/// `[2001:db8::1]:4711`.
fn node_ip(text: &str) -> Option<IpAddr> {
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Some(rest) = text.strip_prefix('[') {
        return rest.split_once(']')?.0.parse().ok();
    }
    text.parse::<SocketAddr>().ok().map(|a| a.ip())
}

/// Whether `text` is a URI scheme (`http`, `https`, ...); anything else is ignored.
fn is_scheme(text: &str) -> bool {
    text.bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
        && text.len() <= 16
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stage(limit: u32, trusted: &[&str], forwarded: bool) -> ForwardedHeaders {
        let mut headers = vec!["x-forwarded-for", "x-forwarded-proto", "x-forwarded-host"];
        if forwarded {
            headers.push("forwarded");
        }
        ForwardedHeaders::new(&ForwardedHeadersStage {
            headers,
            trusted_proxies: trusted.iter().map(|s| s.parse().unwrap()).collect(),
            forward_limit: limit,
        })
    }

    fn headers(list: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (n, v) in list {
            map.append(*n, v.parse().unwrap());
        }
        map
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn walks_trusted_hops_right_to_left_up_to_the_limit() {
        let h = headers(&[
            ("x-forwarded-for", "1.1.1.1, 10.0.0.2"),
            ("x-forwarded-for", "10.0.0.3"),
            ("x-forwarded-proto", "https"),
        ]);
        let one = stage(1, &["127.0.0.0/8", "10.0.0.0/8"], false);
        let r = one.resolve(ip("127.0.0.1"), &h).unwrap();
        assert_eq!((r.ip, r.scheme.as_deref()), (ip("10.0.0.3"), Some("https")));
        let many = stage(5, &["127.0.0.0/8", "10.0.0.0/8"], false);
        assert_eq!(many.resolve(ip("127.0.0.1"), &h).unwrap().ip, ip("1.1.1.1"));
        // An untrusted hop stops the walk: 10.0.0.3 is not trusted here.
        let near = stage(5, &["127.0.0.0/8"], false);
        assert_eq!(
            near.resolve(ip("127.0.0.1"), &h).unwrap().ip,
            ip("10.0.0.3")
        );
        // An untrusted peer is not believed at all.
        assert_eq!(near.resolve(ip("192.0.2.1"), &h), None);
    }

    #[test]
    fn reads_rfc_7239() {
        let h = headers(&[(
            "forwarded",
            "for=192.0.2.43, For=\"[2001:db8:cafe::17]:4711\";PROTO=HTTPS;host=example.com",
        )]);
        let r = stage(1, &["::1/128"], true).resolve(ip("::1"), &h).unwrap();
        assert_eq!(r.ip, ip("2001:db8:cafe::17"));
        assert_eq!(r.scheme.as_deref(), Some("https"));
        assert_eq!(r.host.as_deref(), Some("example.com"));
        // Not enabled: the X- headers (absent here) are read instead.
        assert_eq!(stage(1, &["::1/128"], false).resolve(ip("::1"), &h), None);
        let unknown = headers(&[("forwarded", "for=unknown")]);
        assert_eq!(
            stage(1, &["::1/128"], true).resolve(ip("::1"), &unknown),
            None
        );
    }

    #[test]
    fn node_forms() {
        assert_eq!(node_ip("192.0.2.60:4711"), Some(ip("192.0.2.60")));
        assert_eq!(node_ip("2001:db8::1"), Some(ip("2001:db8::1")));
        assert_eq!(node_ip("_hidden"), None);
        assert!(is_scheme("HTTPS") && is_scheme("coap+tcp"));
        assert!(!is_scheme("ht tp") && !is_scheme("1http") && !is_scheme(""));
    }
}

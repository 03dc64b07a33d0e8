//! `forwarded_headers`: believe a trusted proxy about the client (Kestrel's
//! ForwardedHeadersMiddleware). The resolved client goes into the request's extensions as a
//! [`ClientAddr`] for everything after this stage; the incoming headers are left as they are.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

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
        let hops: Box<dyn Iterator<Item = Hop<'_>>> =
            if self.forwarded && headers.contains_key(http::header::FORWARDED) {
                Box::new(list_rev(headers, "forwarded").map(forwarded_element))
            } else {
                let mut fors = self.x_for.then(|| list_rev(headers, "x-forwarded-for"));
                let mut protos = self.x_proto.then(|| list_rev(headers, "x-forwarded-proto"));
                let mut hosts = self.x_host.then(|| list_rev(headers, "x-forwarded-host"));
                Box::new(std::iter::from_fn(move || {
                    let hop = Hop {
                        client: fors.as_mut().and_then(Iterator::next),
                        proto: protos.as_mut().and_then(Iterator::next),
                        host: hosts.as_mut().and_then(Iterator::next),
                    };
                    (hop != Hop::default()).then_some(hop)
                }))
            };
        let mut ip = peer;
        let mut resolved: Option<ClientAddr> = None;
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
            let addr = resolved.get_or_insert(ClientAddr {
                ip,
                scheme: None,
                host: None,
                original_peer: None,
            });
            if let Some(client) = client {
                ip = client;
                addr.ip = client;
            }
            if let Some(proto) = hop.proto.and_then(scheme) {
                addr.scheme = Some(proto);
            }
            if let Some(host) = hop
                .host
                .filter(|h| h.parse::<http::uri::Authority>().is_ok())
            {
                addr.host = Some(host.to_owned());
            }
            if client.is_none() {
                // Without the next hop's address, its trust cannot be judged.
                break;
            }
        }
        resolved
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
        let earlier = req.extensions().get::<ClientAddr>().cloned();
        addr.original_peer = match &earlier {
            Some(e) => e.original_peer,
            None => connection_peer(&req),
        };
        if let Some(e) = earlier {
            addr.scheme = addr.scheme.or(e.scheme);
            addr.host = addr.host.or(e.host);
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
    req.extensions()
        .get::<Arc<ConnInfo>>()
        .and_then(|c| c.remote)
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
        match key.trim().to_ascii_lowercase().as_str() {
            "for" => hop.client = Some(value),
            "proto" => hop.proto = Some(value),
            "host" => hop.host = Some(value),
            _ => {}
        }
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

/// A URI scheme (`http`, `https`, ...), lowercase; anything else is ignored.
fn scheme(text: &str) -> Option<String> {
    let valid = text.bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
        && text.len() <= 16
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
    valid.then(|| text.to_ascii_lowercase())
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
            "for=192.0.2.43, for=\"[2001:db8:cafe::17]:4711\";proto=https;host=example.com",
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
        assert_eq!(scheme("HTTPS").as_deref(), Some("https"));
        assert_eq!(scheme("ht tp"), None);
    }
}

//! `ip_filter`: allow or deny requests by the client IP (after `forwarded_headers`, the
//! client the trusted proxies reported), answering 403 to the rest.

use std::net::IpAddr;

use http::{Request, StatusCode};
use ipnet::IpNet;

use crate::body::Body;
use crate::config::IpFilterStage;
use crate::pipeline::{client_ip, error_response, HandlerFuture, Middleware, Next};

/// The `ip_filter` stage.
pub struct IpFilter {
    allow: Vec<IpNet>,
    deny: Vec<IpNet>,
}

impl IpFilter {
    /// The stage for `cfg`.
    pub fn new(cfg: &IpFilterStage) -> IpFilter {
        IpFilter {
            allow: cfg.allow.clone(),
            deny: cfg.deny.clone(),
        }
    }

    /// Deny wins over allow; an empty allow list lets everyone not denied through. A client
    /// without an IP (a unix socket) passes only when there is no allow list.
    fn admits(&self, ip: Option<IpAddr>) -> bool {
        match ip {
            Some(ip) => {
                !contains(&self.deny, ip) && (self.allow.is_empty() || contains(&self.allow, ip))
            }
            None => self.allow.is_empty(),
        }
    }
}

impl Middleware for IpFilter {
    fn handle(&self, req: Request<Body>, next: Next) -> HandlerFuture {
        if self.admits(client_ip(&req)) {
            next.run(req)
        } else {
            Box::pin(std::future::ready(error_response(StatusCode::FORBIDDEN)))
        }
    }
}

/// Whether `ip` is in one of `nets`. IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`, as
/// dual-stack sockets report IPv4 clients) count as their IPv4 address, so one IPv4 rule
/// covers both.
pub fn contains(nets: &[IpNet], ip: IpAddr) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    nets.iter().any(|n| n.contains(&ip))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(allow: &[&str], deny: &[&str]) -> IpFilter {
        let nets = |l: &[&str]| l.iter().map(|s| s.parse().unwrap()).collect();
        IpFilter {
            allow: nets(allow),
            deny: nets(deny),
        }
    }

    #[test]
    fn deny_wins_and_empty_allow_allows_all() {
        let ip = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        let f = filter(&["10.0.0.0/8"], &["10.1.0.0/16"]);
        assert!(f.admits(ip("10.2.3.4")));
        assert!(!f.admits(ip("10.1.3.4")));
        assert!(!f.admits(ip("192.168.0.1")));
        assert!(f.admits(ip("::ffff:10.2.3.4")));
        assert!(!f.admits(None));
        let open = filter(&[], &["::1/128"]);
        assert!(open.admits(ip("127.0.0.1")));
        assert!(!open.admits(ip("::1")));
        assert!(open.admits(None));
    }
}

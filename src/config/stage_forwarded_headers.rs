//! Reads `type = "forwarded_headers"`.

use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use super::print::{quote, strings};
use super::reader::{at_least, narrow, Section};
use super::site_model::{ForwardedHeadersStage, FORWARDED_HEADERS};
use super::stage_ip_filter::cidrs;

/// The headers read by default: the de-facto X- ones, which every load balancer sends;
/// `forwarded` (RFC 7239) is opt-in, like in Kestrel.
pub(crate) const DEFAULT_HEADERS: [&str; 3] =
    ["x-forwarded-for", "x-forwarded-proto", "x-forwarded-host"];

/// Kestrel's ForwardLimit: one proxy in front of the server.
pub(crate) const DEFAULT_FORWARD_LIMIT: u32 = 1;

/// Loopback only, like Kestrel's KnownProxies: a proxy on the same machine.
pub(crate) fn default_trusted() -> Vec<IpNet> {
    vec![
        IpNet::V4(Ipv4Net::new_assert(Ipv4Addr::new(127, 0, 0, 0), 8)),
        IpNet::V6(Ipv6Net::new_assert(Ipv6Addr::LOCALHOST, 128)),
    ]
}

/// Reads the options of a `forwarded_headers` stage.
pub(crate) fn forwarded_headers(t: &mut Section) -> ForwardedHeadersStage {
    let headers = match t.take("headers") {
        Some(f) => t
            .distinct(
                &f,
                &FORWARDED_HEADERS,
                "must list at least one header (remove the stage to read none)",
            )
            .map(|list| list.into_iter().map(|(_, name)| name).collect()),
        None => None,
    };
    let trusted_proxies = cidrs(t, "trusted_proxies").unwrap_or_else(default_trusted);
    let forward_limit = t.read("forward_limit", DEFAULT_FORWARD_LIMIT, |f| {
        at_least(f.count()?, 1).and_then(|n| narrow(n, u32::MAX))
    });
    ForwardedHeadersStage {
        headers: headers.unwrap_or_else(|| DEFAULT_HEADERS.to_vec()),
        trusted_proxies,
        forward_limit,
    }
}

impl super::print::Printer {
    /// Prints a `forwarded_headers` stage with every key, defaults included.
    pub(super) fn forwarded_headers(&mut self, f: &ForwardedHeadersStage) {
        self.key("type", quote("forwarded_headers"));
        self.key("headers", strings(&f.headers));
        self.key("trusted_proxies", strings(&nets(&f.trusted_proxies)));
        self.key("forward_limit", f.forward_limit);
    }
}

/// Address ranges as text, a range of one address as the bare address.
pub(super) fn nets(list: &[IpNet]) -> Vec<String> {
    list.iter()
        .map(|n| {
            if n.prefix_len() == n.max_prefix_len() {
                n.addr().to_string()
            } else {
                n.to_string()
            }
        })
        .collect()
}

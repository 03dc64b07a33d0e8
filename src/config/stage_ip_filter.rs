//! Reads `type = "ip_filter"`, and the CIDR lists it shares with `forwarded_headers`.

use ipnet::IpNet;

use super::print::{quote, strings};
use super::reader::{Field, Section};
use super::site_model::IpFilterStage;
use super::stage_forwarded_headers::nets;

/// How an address range is described in messages.
const CIDR: &str = "an IP address or CIDR range like \"10.0.0.0/8\" or \"::1\"";

/// Reads the options of an `ip_filter` stage.
pub(crate) fn ip_filter(t: &mut Section) -> IpFilterStage {
    let allow = cidrs(t, "allow");
    let deny = cidrs(t, "deny");
    if allow.is_none() && deny.is_none() {
        let problem =
            "missing: an ip_filter needs allow or deny (or both), e.g. deny = [\"10.0.0.0/8\"]";
        t.report(t.problem_at("allow", problem));
    }
    IpFilterStage {
        allow: allow.unwrap_or_default(),
        deny: deny.unwrap_or_default(),
    }
}

/// The list of address ranges under `key`, `None` when absent; bad items are reported and
/// left out.
pub(crate) fn cidrs(t: &mut Section, key: &'static str) -> Option<Vec<IpNet>> {
    let field = t.take(key)?;
    let items = t.check(&field, field.items()).unwrap_or_default();
    let mut nets = Vec::with_capacity(items.len());
    for item in items {
        if let Some(net) = t.check(&item, cidr(&item)) {
            nets.push(net);
        }
    }
    Some(nets)
}

/// One address range; a bare address is a range of one. Host bits are cleared, as the
/// range they name is meant ("10.1.2.3/8" is 10.0.0.0/8).
fn cidr(f: &Field) -> Result<IpNet, String> {
    let text = f.string().map_err(|_| f.expected(CIDR))?;
    let text = text.trim();
    text.parse::<IpNet>()
        .map(|net| net.trunc())
        .or_else(|_| text.parse::<std::net::IpAddr>().map(IpNet::from))
        .map_err(|_| f.expected(CIDR))
}

impl super::print::Printer {
    /// Prints an `ip_filter` stage.
    pub(super) fn ip_filter(&mut self, f: &IpFilterStage) {
        self.key("type", quote("ip_filter"));
        self.key("allow", strings(&nets(&f.allow)));
        self.key("deny", strings(&nets(&f.deny)));
    }
}

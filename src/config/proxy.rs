//! Reads the `proxy` and `app` handlers of a route: the load-balancing policy, path and
//! Host rewriting, timeouts, retries, health, forwarding headers, header changes and the
//! connection pool (`upstreams` and `tls` are read in [`super::proxy_upstreams`]).

use std::path::Path;
use std::time::Duration;

use http::StatusCode;

use super::proxy_model::*;
use super::proxy_upstreams::{upstream_tls, upstreams};
use super::reader::{in_range, narrow, suggest, timeout, Field, Section};
use super::routes::status;
use super::site_model::HandlerConfig;
use super::stage_ip_filter::cidrs;
use super::stages::{header_name, header_value, rules};
use super::units::format_duration;

/// The policies without a parameter.
const POLICIES: [&str; 6] = [
    "round_robin",
    "least_conn",
    "random",
    "ip_hash",
    "uri_hash",
    "first",
];
/// How `policy` is described in messages.
const POLICY: &str = "one of round_robin, least_conn, random, ip_hash, uri_hash, first, \
     \"header:NAME\" or \"cookie:NAME\"";
/// The shortest `cookie_secret`.
const MIN_SECRET: usize = 16;
/// How a path prefix is described in messages.
const PREFIX: &str = "a path prefix like \"/api\"";
/// How `passive_health` is described in messages.
const PASSIVE: &str =
    "a table like { max_failures = 1, fail_duration = \"10s\", unhealthy_statuses = [502, 503] }";
/// How `health_check` is described in messages.
const HEALTH: &str = "a table like { path = \"/healthz\", interval = \"10s\" }";
/// How `forwarded` is described in messages.
const FORWARDED: &str =
    "a table like { x_forwarded = true, forwarded = false, via = false, trusted_proxies = [] }";
/// `health_check` defaults, for the keys left out of its table.
const HEALTH_INTERVAL: Duration = Duration::from_secs(10);
/// See [`HEALTH_INTERVAL`].
const HEALTH_TIMEOUT: Duration = Duration::from_secs(2);
/// See [`HEALTH_INTERVAL`].
const HEALTHY_THRESHOLD: u32 = 2;
/// See [`HEALTH_INTERVAL`].
const UNHEALTHY_THRESHOLD: u32 = 3;

/// `type = "proxy"`: `upstreams` (required) and every option; `None` when the upstreams
/// are unusable (the problems are recorded).
pub(crate) fn proxy(h: &mut Section, base_dir: &Path) -> Option<HandlerConfig> {
    let upstreams = upstreams(h, base_dir);
    let proxy = options(h, |h| upstream_tls(h, base_dir, upstreams.as_deref()));
    Some(HandlerConfig::Proxy(Box::new(ProxyConfig {
        upstreams: upstreams?,
        ..proxy
    })))
}

/// `type = "app"`: `app` (required, the name of an `[[apps]]` entry among `apps`) and the
/// proxy options except `upstreams` and `tls`.
pub(crate) fn app(h: &mut Section, apps: &[String]) -> Option<HandlerConfig> {
    let name = h
        .require(
            "app",
            "an app handler names its [[apps]] entry, e.g. app = \"api\"",
        )
        .and_then(|f| h.check(&f, f.string().and_then(|name| known_app(name, apps))));
    h.reject(
        "upstreams",
        "an app handler's upstreams are its app's instances",
    );
    h.reject(
        "tls",
        "an app's instances are reached over loopback or a unix socket, without TLS",
    );
    let proxy = options(h, |_| UpstreamTls::default());
    Some(HandlerConfig::App {
        app: name?,
        proxy: Box::new(proxy),
    })
}

fn known_app(name: String, apps: &[String]) -> Result<String, String> {
    if apps.contains(&name) {
        return Ok(name);
    }
    let known: Vec<&str> = apps.iter().map(String::as_str).collect();
    let unknown = format!("no [[apps]] entry is named {name:?}");
    Err(match suggest(&name, &known) {
        Some(near) => format!("{unknown}, did you mean \"{near}\"?"),
        None if known.is_empty() => format!(
            "{unknown}, and there are none: add an [[apps]] table with name = {name:?} and \
             its command"
        ),
        None => format!("{unknown} (apps: {})", known.join(", ")),
    })
}

/// Every option but `upstreams` (left empty), in the documented order; `tls` reads the
/// `tls` key.
fn options(h: &mut Section, tls: impl FnOnce(&mut Section) -> UpstreamTls) -> ProxyConfig {
    let d = ProxyConfig::with_upstreams(Vec::new());
    let policy = policy_and_secret(h);
    let strip_prefix = h.read("strip_prefix", None, prefix);
    let add_prefix = h.read("add_prefix", None, prefix);
    let host = h.read("host", d.host, host);
    let connect_timeout = h.read("connect_timeout", d.connect_timeout, timeout);
    let response_header_timeout = h.read(
        "response_header_timeout",
        d.response_header_timeout,
        timeout,
    );
    let body_idle_timeout = h.read("body_idle_timeout", d.body_idle_timeout, timeout);
    let retries = h.read("retries", d.retries, |f| {
        narrow(in_range(f.count()?, 0, 10)?, u32::MAX)
    });
    let retry_timeout = h.read("retry_timeout", d.retry_timeout, timeout);
    let passive_health = passive_health(h);
    let health_check = health_check(h);
    let forwarded = forwarded(h, d.forwarded);
    let request_headers = rules(h, "request_headers");
    let response_headers = rules(h, "response_headers");
    let tls = tls(h);
    let max_idle_per_upstream = h.read("max_idle_per_upstream", d.max_idle_per_upstream, |f| {
        narrow(in_range(f.count()?, 0, 10_000)?, usize::MAX)
    });
    let pool_idle_timeout = h.read("pool_idle_timeout", d.pool_idle_timeout, timeout);
    ProxyConfig {
        upstreams: Vec::new(),
        policy: policy.unwrap_or(d.policy),
        strip_prefix,
        add_prefix,
        host,
        connect_timeout,
        response_header_timeout,
        body_idle_timeout,
        retries,
        retry_timeout,
        passive_health,
        health_check,
        forwarded,
        request_headers,
        response_headers,
        tls,
        max_idle_per_upstream,
        pool_idle_timeout,
    }
}

/// `policy`, and `cookie_secret`, which only goes with a cookie policy; `None` when the
/// policy is wrong (the problem is recorded).
fn policy_and_secret(h: &mut Section) -> Option<LbPolicy> {
    let mut policy = match h.take("policy") {
        None => Some(LbPolicy::RoundRobin),
        Some(f) => h.check(&f, policy(&f)),
    };
    if let Some(f) = h.take("cookie_secret") {
        let secret = f.string().and_then(|secret| match secret.chars().count() {
            n if n < MIN_SECRET => Err(format!(
                "must be at least {MIN_SECRET} characters long, found {n}: use a long random \
                 string (whoever knows it can forge the cookie and pick an upstream)"
            )),
            _ => Ok(secret),
        });
        match &mut policy {
            Some(LbPolicy::Cookie { secret: slot, .. }) => *slot = h.check(&f, secret),
            Some(other) => h.report(f.problem(format!(
                "only applies to a cookie policy, like policy = \"cookie:harrier_upstream\" (it \
                 signs the sticky-session cookie); the policy here is \"{}\"",
                show_policy(other)
            ))),
            None => {}
        }
    }
    policy
}

fn policy(f: &Field) -> Result<LbPolicy, String> {
    let text = f
        .string()
        .map_err(|_| f.expected(&format!("a string, {POLICY}")))?;
    if let Some((kind, name)) = text.split_once(':') {
        let name = name.trim();
        if kind.trim().eq_ignore_ascii_case("header") {
            if name.is_empty() {
                return Err("\"header:\" needs a header name, like \"header:x-tenant\"".to_owned());
            }
            return header_name(name).map(LbPolicy::Header);
        }
        if kind.trim().eq_ignore_ascii_case("cookie") {
            return cookie_name(name).map(|name| LbPolicy::Cookie { name, secret: None });
        }
    }
    let found = POLICIES
        .iter()
        .find(|p| p.eq_ignore_ascii_case(text.trim()));
    Ok(match found.copied() {
        Some("round_robin") => LbPolicy::RoundRobin,
        Some("least_conn") => LbPolicy::LeastConn,
        Some("random") => LbPolicy::Random,
        Some("ip_hash") => LbPolicy::IpHash,
        Some("uri_hash") => LbPolicy::UriHash,
        Some(_) => LbPolicy::First,
        None => {
            let message = f.expected(POLICY);
            return Err(
                match suggest(&text.trim().to_ascii_lowercase(), &POLICIES) {
                    Some(near) => format!("{message}, did you mean \"{near}\"?"),
                    None => message,
                },
            );
        }
    })
}

/// A cookie name: an HTTP token (RFC 6265), case kept.
fn cookie_name(name: &str) -> Result<String, String> {
    if name.is_empty() {
        return Err("\"cookie:\" needs a cookie name, like \"cookie:harrier_upstream\"".to_owned());
    }
    let token = name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if !token {
        return Err(format!(
            "{name:?} is not a valid cookie name (letters, digits and !#$%&'*+-.^_`|~ only)"
        ));
    }
    Ok(name.to_owned())
}

/// `policy` as it is written (without the cookie's secret).
pub(crate) fn show_policy(policy: &LbPolicy) -> String {
    match policy {
        LbPolicy::RoundRobin => "round_robin".to_owned(),
        LbPolicy::LeastConn => "least_conn".to_owned(),
        LbPolicy::Random => "random".to_owned(),
        LbPolicy::IpHash => "ip_hash".to_owned(),
        LbPolicy::UriHash => "uri_hash".to_owned(),
        LbPolicy::Header(name) => format!("header:{name}"),
        LbPolicy::Cookie { name, .. } => format!("cookie:{name}"),
        LbPolicy::First => "first".to_owned(),
    }
}

/// `strip_prefix` or `add_prefix`: "off", or a path that starts with "/" and does not end
/// with one.
fn prefix(f: &Field) -> Result<Option<String>, String> {
    f.or_keyword("off", |f| {
        let text = f.string().map_err(|_| f.expected(PREFIX))?;
        if !text.starts_with('/') {
            return Err(f.expected(PREFIX));
        }
        if text == "/" {
            return Err("\"/\" is no prefix (every path starts with it): leave the key out".into());
        }
        if text.ends_with('/') {
            let trimmed = text.trim_end_matches('/');
            return Err(format!(
                "{text:?}: write the prefix without the final \"/\": {trimmed:?}"
            ));
        }
        if text.contains(['?', '#']) {
            return Err(format!(
                "{text:?}: a prefix is a path, without query or fragment"
            ));
        }
        if !text.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(format!(
                "{text:?}: write spaces, control and non-ASCII characters percent-encoded, \
                 as in request paths"
            ));
        }
        Ok(text)
    })
}

/// `host`: "preserve", "upstream" or a fixed host (with an optional port).
fn host(f: &Field) -> Result<HostHeader, String> {
    let text = f.string()?;
    if text.eq_ignore_ascii_case("preserve") {
        return Ok(HostHeader::Preserve);
    }
    if text.eq_ignore_ascii_case("upstream") {
        return Ok(HostHeader::Upstream);
    }
    header_value(&text)?;
    let authority = !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_graphic() && !b"/?#@".contains(&b));
    if !authority {
        return Err(format!(
            "expected \"preserve\" (the client's Host), \"upstream\" (the upstream's host and \
             port) or a host with an optional port like \"api.internal:8080\", found {text:?}"
        ));
    }
    Ok(HostHeader::Fixed(text))
}

/// `host` as it is written.
pub(crate) fn show_host(host: &HostHeader) -> &str {
    match host {
        HostHeader::Preserve => "preserve",
        HostHeader::Upstream => "upstream",
        HostHeader::Fixed(host) => host,
    }
}

/// `passive_health`: "off" or a table over the defaults.
fn passive_health(h: &mut Section) -> Option<PassiveHealth> {
    let d = PassiveHealth::default();
    let Some(read) = h.off_or_table("passive_health", PASSIVE) else {
        return Some(d);
    };
    let mut p = read?;
    let passive = PassiveHealth {
        max_failures: p.read("max_failures", d.max_failures, |f| {
            narrow(in_range(f.count()?, 1, 1000)?, u32::MAX)
        }),
        fail_duration: p.read("fail_duration", d.fail_duration, timeout),
        unhealthy_statuses: statuses(&mut p, "unhealthy_statuses", 400)
            .unwrap_or(d.unhealthy_statuses),
    };
    p.close_into(h);
    Some(passive)
}

/// `health_check`: off when absent or "off", else a table whose `path` is required.
fn health_check(h: &mut Section) -> Option<HealthCheck> {
    let mut c = h.off_or_table("health_check", HEALTH)??;
    let path = c
        .require(
            "path",
            "a health check needs the path it requests, e.g. path = \"/healthz\"",
        )
        .and_then(|f| c.check(&f, probe_path(&f)));
    let interval = c.read("interval", HEALTH_INTERVAL, timeout);
    let probe_timeout = match c.take("timeout") {
        None => HEALTH_TIMEOUT.min(interval),
        Some(f) => {
            let value = timeout(&f).and_then(|value| {
                if value > interval {
                    Err(format!(
                        "must not be longer than interval ({}), found {}",
                        format_duration(interval).trim_matches('"'),
                        format_duration(value).trim_matches('"')
                    ))
                } else {
                    Ok(value)
                }
            });
            c.check(&f, value).unwrap_or(HEALTH_TIMEOUT.min(interval))
        }
    };
    let expect_status = statuses(&mut c, "expect_status", 100).unwrap_or_default();
    let threshold = |f: &Field| narrow(in_range(f.count()?, 1, 100)?, u32::MAX);
    let healthy_threshold = c.read("healthy_threshold", HEALTHY_THRESHOLD, threshold);
    let unhealthy_threshold = c.read("unhealthy_threshold", UNHEALTHY_THRESHOLD, threshold);
    c.close_into(h);
    Some(HealthCheck {
        path: path?,
        interval,
        timeout: probe_timeout,
        expect_status,
        healthy_threshold,
        unhealthy_threshold,
    })
}

/// The path a health check requests: starts with "/", may have a query.
fn probe_path(f: &Field) -> Result<String, String> {
    let text = f.string()?;
    if !text.starts_with('/') {
        return Err(f.expected("a path like \"/healthz\""));
    }
    if text.contains('#') || !text.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!(
            "{text:?}: write the path as it is sent, percent-encoded, without a fragment"
        ));
    }
    Ok(text)
}

/// A list of distinct statuses from `lo` to 599 under `key`; `None` when absent. Bad items
/// are reported and left out.
fn statuses(t: &mut Section, key: &'static str, lo: u64) -> Option<Vec<StatusCode>> {
    let f = t.take(key)?;
    let items = t.check(&f, f.items()).unwrap_or_default();
    let mut list: Vec<StatusCode> = Vec::new();
    for item in items {
        let status = item.count().and_then(|code| {
            let code = in_range(code, lo, 599)?;
            let status = status(code)?;
            if list.contains(&status) {
                return Err(format!("{code} is listed twice"));
            }
            Ok(status)
        });
        list.extend(t.check(&item, status));
    }
    Some(list)
}

/// `forwarded`: which forwarding headers go upstream, over the defaults `d`.
fn forwarded(h: &mut Section, d: ForwardedOut) -> ForwardedOut {
    let Some(mut t) = h.take("forwarded").and_then(|f| h.table(f, FORWARDED)) else {
        return d;
    };
    let out = ForwardedOut {
        x_forwarded: t.read("x_forwarded", d.x_forwarded, Field::bool),
        forwarded: t.read("forwarded", d.forwarded, Field::bool),
        via: t.read("via", d.via, Field::bool),
        trusted_proxies: cidrs(&mut t, "trusted_proxies").unwrap_or(d.trusted_proxies),
    };
    t.close_into(h);
    out
}

#[cfg(test)]
mod tests {
    use super::super::error::Origin;
    use super::super::tree::{Node, Value};
    use super::*;

    #[test]
    fn policies_print_as_written() {
        for text in ["round_robin", "first", "header:x-tenant", "cookie:Sticky"] {
            let f = Field {
                path: "p".into(),
                node: Node {
                    value: Value::String(text.into()),
                    origin: Origin::Env("X".into()),
                },
            };
            assert_eq!(show_policy(&policy(&f).unwrap()), text);
        }
    }
}

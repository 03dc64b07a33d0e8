//! The `proxy` and `app` handlers and `[[apps]]` in the effective configuration: every key
//! with its effective value, so that the output loads back to an equal `Config`.

use super::apps::show_time;
use super::print::{or_keyword, quote, quote_path, strings, Printer};
use super::print_sites::{header_rules, inline};
use super::proxy::{show_host, show_policy};
use super::proxy_model::*;
use super::stage_forwarded_headers::nets;
use super::units::{format_duration, format_size};

impl Printer {
    /// A `type = "proxy"` handler.
    pub(super) fn proxy(&mut self, p: &ProxyConfig) {
        self.key("type", quote("proxy"));
        let upstreams: Vec<String> = p.upstreams.iter().map(upstream).collect();
        self.key("upstreams", format!("[{}]", upstreams.join(", ")));
        self.proxy_options(p, true);
    }

    /// A `type = "app"` handler.
    pub(super) fn app_handler(&mut self, app: &str, p: &ProxyConfig) {
        self.key("type", quote("app"));
        self.key("app", quote(app));
        self.proxy_options(p, false);
    }

    /// Every option but `upstreams`; `tls` only for a proxy (`with_tls`), and only when it
    /// is set (it needs an https:// upstream).
    fn proxy_options(&mut self, p: &ProxyConfig, with_tls: bool) {
        self.key("policy", quote(&show_policy(&p.policy)));
        if let LbPolicy::Cookie {
            secret: Some(secret),
            ..
        } = &p.policy
        {
            self.key("cookie_secret", quote(secret));
        }
        let off = |value: &Option<String>| or_keyword(value.as_deref().map(quote), "off");
        self.key("strip_prefix", off(&p.strip_prefix));
        self.key("add_prefix", off(&p.add_prefix));
        self.key("host", quote(show_host(&p.host)));
        self.key("connect_timeout", format_duration(p.connect_timeout));
        self.key(
            "response_header_timeout",
            format_duration(p.response_header_timeout),
        );
        self.key("body_idle_timeout", format_duration(p.body_idle_timeout));
        self.key("retries", p.retries);
        self.key("retry_timeout", format_duration(p.retry_timeout));
        let passive = p.passive_health.as_ref().map(|h| {
            format!(
                "{{ max_failures = {}, fail_duration = {}, unhealthy_statuses = {} }}",
                h.max_failures,
                format_duration(h.fail_duration),
                statuses(&h.unhealthy_statuses)
            )
        });
        self.key("passive_health", or_keyword(passive, "off"));
        let check = p.health_check.as_ref().map(|c| {
            format!(
                "{{ path = {}, interval = {}, timeout = {}, expect_status = {}, \
                 healthy_threshold = {}, unhealthy_threshold = {} }}",
                quote(&c.path),
                format_duration(c.interval),
                format_duration(c.timeout),
                statuses(&c.expect_status),
                c.healthy_threshold,
                c.unhealthy_threshold
            )
        });
        self.key("health_check", or_keyword(check, "off"));
        let f = &p.forwarded;
        self.key(
            "forwarded",
            format!(
                "{{ x_forwarded = {}, forwarded = {}, via = {}, trusted_proxies = {} }}",
                f.x_forwarded,
                f.forwarded,
                f.via,
                strings(&nets(&f.trusted_proxies))
            ),
        );
        self.key("request_headers", header_rules(&p.request_headers, true));
        self.key("response_headers", header_rules(&p.response_headers, true));
        if with_tls && p.tls != UpstreamTls::default() {
            self.key("tls", tls(&p.tls));
        }
        self.key("max_idle_per_upstream", p.max_idle_per_upstream);
        self.key("pool_idle_timeout", format_duration(p.pool_idle_timeout));
    }

    /// One `[[apps]]` entry.
    pub(super) fn app(&mut self, a: &AppConfig) {
        self.header("[[apps]]");
        self.key("name", quote(&a.name));
        self.key("command", strings(&a.command));
        self.key("dir", quote_path(&a.dir));
        let env = a
            .env
            .iter()
            .map(|(name, value)| (name.as_str(), quote(value)));
        self.key("env", inline(env));
        self.key("instances", a.instances);
        let start = match a.start {
            AppStart::Startup => "startup",
            AppStart::FirstRequest => "first_request",
        };
        self.key("start", quote(start));
        self.key("start_timeout", format_duration(a.start_timeout));
        let listen = match a.listen {
            AppListen::Tcp => "tcp",
            AppListen::Unix => "unix",
        };
        self.key("listen", quote(listen));
        let ready = match &a.ready {
            Readiness::Tcp => "tcp",
            Readiness::Http(path) => path,
        };
        self.key("ready", quote(ready));
        self.key("restart_delay", format_duration(a.restart_delay));
        self.key("restart_delay_max", format_duration(a.restart_delay_max));
        let rapid_fail = a.rapid_fail.map(|r| {
            let window = format_duration(r.window);
            format!("{{ crashes = {}, window = {window} }}", r.crashes)
        });
        self.key("rapid_fail", or_keyword(rapid_fail, "off"));
        let r = &a.recycle;
        let off = |value: Option<String>| or_keyword(value, "off");
        let at: Vec<String> = r.at.iter().map(|m| show_time(*m)).collect();
        self.key(
            "recycle",
            format!(
                "{{ requests = {}, memory = {}, after = {}, at = {} }}",
                off(r.requests.map(|n| n.to_string())),
                off(r.memory.map(format_size)),
                off(r.after.map(format_duration)),
                strings(&at)
            ),
        );
        self.key("stop_timeout", format_duration(a.stop_timeout));
    }
}

/// An upstream: its URL, or `{ url, weight }` when the weight is not 1.
fn upstream(u: &UpstreamConfig) -> String {
    let url = quote(&u.target.to_string());
    match u.weight {
        1 => url,
        weight => format!("{{ url = {url}, weight = {weight} }}"),
    }
}

/// A TOML array of status codes.
fn statuses(list: &[http::StatusCode]) -> String {
    let codes: Vec<String> = list.iter().map(|s| s.as_u16().to_string()).collect();
    format!("[{}]", codes.join(", "))
}

/// The `tls` table, its unset keys left out.
fn tls(t: &UpstreamTls) -> String {
    let mut parts = Vec::new();
    if let Some(ca) = &t.ca {
        parts.push(format!("ca = {}", quote_path(ca)));
    }
    if let Some(files) = &t.client_certificate {
        parts.push(format!("certificate = {}", quote_path(&files.path)));
        parts.push(format!("key = {}", quote_path(&files.key)));
    }
    if let Some(name) = &t.server_name {
        parts.push(format!("server_name = {}", quote(name)));
    }
    format!("{{ {} }}", parts.join(", "))
}

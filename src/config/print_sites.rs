//! `[[sites]]` in the effective configuration: every site with all its keys, so that the
//! output loads back to an equal `Config`.

use super::print::{quote, quote_path, strings, Printer};
use super::reader::bare_or_quoted;
use super::routes::show_path;
use super::site_model::*;
use super::sites::show;

impl Printer {
    pub(super) fn site(&mut self, s: &SiteConfig) {
        self.header("[[sites]]");
        if let Some(name) = &s.name {
            self.key("name", quote(name));
        }
        let hosts: Vec<String> = s.hosts.iter().map(show).collect();
        self.key("hosts", strings(&hosts));
        if !s.endpoints.is_empty() {
            self.key("endpoints", strings(&s.endpoints));
        }
        self.key("root", quote_path(&s.static_files.root));
        self.header("[sites.static]");
        self.static_options(&s.static_files);
        for stage in &s.middleware {
            self.header("[[sites.use]]");
            self.stage(stage);
        }
        for route in &s.routes {
            self.route(route);
        }
    }

    fn route(&mut self, r: &RouteConfig) {
        self.header("[[sites.routes]]");
        let m = &r.matcher;
        if let Some(path) = &m.path {
            self.key("path", quote(&show_path(path)));
        }
        if !m.methods.is_empty() {
            let methods: Vec<&str> = m.methods.iter().map(http::Method::as_str).collect();
            self.key("methods", strings(&methods));
        }
        let any = |value: &Option<String>| quote(value.as_deref().unwrap_or("*"));
        if !m.headers.is_empty() {
            let headers = m.headers.iter().map(|(n, v)| (n.as_str(), any(v)));
            self.key("headers", inline(headers));
        }
        if !m.query.is_empty() {
            let query = m.query.iter().map(|(n, v)| (n.as_str(), any(v)));
            self.key("query", inline(query));
        }
        for stage in &r.middleware {
            self.header("[[sites.routes.use]]");
            self.stage(stage);
        }
        self.header("[sites.routes.handler]");
        self.handler(&r.handler);
    }

    fn stage(&mut self, stage: &StageConfig) {
        match stage {
            StageConfig::RateLimit(r) => self.rate_limit(r),
            StageConfig::RequestFilter(r) => self.request_filter(r),
            StageConfig::ForwardedHeaders(f) => self.forwarded_headers(f),
            StageConfig::IpFilter(f) => self.ip_filter(f),
            StageConfig::BasicAuth(b) => {
                self.key("type", quote("basic_auth"));
                self.key("realm", quote(&b.realm));
                let users = b.users.iter().map(|(u, h)| (u.as_str(), quote(h)));
                self.key("users", inline(users));
            }
            StageConfig::Cors(c) => {
                self.key("type", quote("cors"));
                self.key("allowed_origins", strings(&c.allowed_origins));
                let methods: Vec<&str> = c.allowed_methods.iter().map(|m| m.as_str()).collect();
                self.key("allowed_methods", strings(&methods));
                self.key("allowed_headers", strings(&c.allowed_headers));
                self.key("exposed_headers", strings(&c.exposed_headers));
                self.key("allow_credentials", c.allow_credentials);
                self.key("max_age", super::units::format_duration(c.max_age));
            }
            StageConfig::Rewrite(r) => {
                self.key("type", quote("rewrite"));
                self.key("rules", super::stage_rewrite::show_rules(r));
            }
            StageConfig::Headers(h) => {
                self.key("type", quote("headers"));
                for (key, rules) in [("request", &h.request), ("response", &h.response)] {
                    if *rules != HeaderRules::default() {
                        self.key(key, header_rules(rules, false));
                    }
                }
            }
            StageConfig::Compress(c) => {
                self.key("type", quote("compress"));
                let names: Vec<&str> = c.encodings.iter().map(|e| e.as_str()).collect();
                self.key("encodings", strings(&names));
                self.key("min_size", super::units::format_size(c.min_size));
                self.key("content_types", strings(&c.content_types));
                let l = c.levels;
                let levels = format!("{{ gzip = {}, br = {}, zstd = {} }}", l.gzip, l.br, l.zstd);
                self.key("levels", levels);
            }
            StageConfig::ErrorPages(e) => {
                self.key("type", quote("error_pages"));
                let pages: Vec<(String, String)> = e
                    .pages
                    .iter()
                    .map(|(status, path)| {
                        let key = match status {
                            ErrorStatus::Code(code) => code.as_u16().to_string(),
                            ErrorStatus::Class(class) => format!("{class}xx"),
                        };
                        (key, quote_path(path))
                    })
                    .collect();
                let entries = pages.iter().map(|(k, v)| (k.as_str(), v.clone()));
                self.key("pages", inline(entries));
            }
        }
    }

    fn handler(&mut self, handler: &HandlerConfig) {
        match handler {
            HandlerConfig::Static(files) => {
                self.key("type", quote("static"));
                self.key("root", quote_path(&files.root));
                self.static_options(files);
            }
            HandlerConfig::Redirect { status, to } => {
                self.key("type", quote("redirect"));
                self.key("to", quote(to));
                self.key("status", status.as_u16());
            }
            HandlerConfig::Respond {
                status,
                headers,
                body,
            } => {
                self.key("type", quote("respond"));
                self.key("status", status.as_u16());
                self.key("body", quote(body));
                let headers = headers
                    .iter()
                    .map(|(n, v)| (n.as_str(), quote(&String::from_utf8_lossy(v.as_bytes()))));
                self.key("headers", inline(headers));
            }
            HandlerConfig::Proxy(proxy) => self.proxy(proxy),
            HandlerConfig::App { app, proxy } => self.app_handler(app, proxy),
        }
    }
}

/// `{ set = {...}, add = {...}, remove = [...] }`, the empty parts left out unless `all`.
pub(super) fn header_rules(rules: &HeaderRules, all: bool) -> String {
    let mut parts = Vec::new();
    let values = |list: &[(http::HeaderName, String)]| {
        // Repeated names (an `add` array) are printed as one array, in order.
        let mut grouped: Vec<(&str, Vec<&str>)> = Vec::new();
        for (name, value) in list {
            match grouped.last_mut() {
                Some((last, values)) if *last == name.as_str() => values.push(value),
                _ => grouped.push((name.as_str(), vec![value])),
            }
        }
        inline(
            grouped
                .into_iter()
                .map(|(name, values)| match values.as_slice() {
                    [one] => (name, quote(one)),
                    several => (name, strings(several)),
                }),
        )
    };
    if all || !rules.set.is_empty() {
        parts.push(format!("set = {}", values(&rules.set)));
    }
    if all || !rules.add.is_empty() {
        parts.push(format!("add = {}", values(&rules.add)));
    }
    if all || !rules.remove.is_empty() {
        let names: Vec<&str> = rules.remove.iter().map(http::HeaderName::as_str).collect();
        parts.push(format!("remove = {}", strings(&names)));
    }
    format!("{{ {} }}", parts.join(", "))
}

/// An inline table of keys (quoted when needed) and printed values.
pub(super) fn inline<'a>(entries: impl Iterator<Item = (&'a str, String)>) -> String {
    let entries: Vec<String> = entries
        .map(|(key, value)| format!("{} = {value}", bare_or_quoted(key)))
        .collect();
    if entries.is_empty() {
        "{}".to_owned()
    } else {
        format!("{{ {} }}", entries.join(", "))
    }
}

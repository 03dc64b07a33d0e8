//! The effective configuration as a settings file (`harrier check`): every section and key,
//! in the contract's order, in human units. It loads back to an equal `Config`.

use std::fmt::Write;
use std::path::Path;

use super::model::*;
use super::site_model::UnknownHost;
use super::units::{format_duration, format_size};

impl Config {
    /// Prints the effective configuration as TOML; the settings file's name is not included.
    pub fn to_toml(&self) -> String {
        let mut out = Printer(String::new());
        out.server(&self.server);
        out.limits(&self.limits);
        for endpoint in &self.endpoints {
            out.endpoint(endpoint);
        }
        out.static_files(&self.static_files);
        out.log(&self.log);
        for site in &self.sites {
            out.site(site);
        }
        for app in &self.apps {
            out.app(app);
        }
        out.0
    }
}

/// Accumulates TOML text; writing to a `String` cannot fail, so results are discarded.
pub(super) struct Printer(pub(super) String);

impl Printer {
    pub(super) fn header(&mut self, name: &str) {
        if !self.0.is_empty() {
            self.0.push('\n');
        }
        self.0.push_str(name);
        self.0.push('\n');
    }

    pub(super) fn key(&mut self, key: &str, value: impl std::fmt::Display) {
        let _ = writeln!(self.0, "{key} = {value}");
    }

    fn server(&mut self, s: &ServerConfig) {
        self.header("[server]");
        self.key("add_server_header", s.add_server_header);
        self.key("shutdown_timeout", format_duration(s.shutdown_timeout));
        self.key("shutdown_delay", format_duration(s.shutdown_delay));
        self.key("worker_threads", s.worker_threads);
        let unknown_host = match s.unknown_host {
            UnknownHost::Misdirected => "misdirected",
            UnknownHost::NotFound => "not_found",
        };
        self.key("unknown_host", quote(unknown_host));
    }

    fn limits(&mut self, l: &Limits) {
        self.header("[limits]");
        self.key(
            "max_request_body_size",
            or_keyword(l.max_request_body_size.map(format_size), "unlimited"),
        );
        self.key("keep_alive_timeout", format_duration(l.keep_alive_timeout));
        self.key(
            "request_headers_timeout",
            format_duration(l.request_headers_timeout),
        );
        self.key(
            "max_request_line_size",
            format_size(l.max_request_line_size as u64),
        );
        self.key("max_request_header_count", l.max_request_header_count);
        self.key(
            "max_request_headers_total_size",
            format_size(l.max_request_headers_total_size as u64),
        );
        let count = |c: Option<u64>| or_keyword(c.map(|c| c.to_string()), "unlimited");
        self.key(
            "max_concurrent_connections",
            count(l.max_concurrent_connections),
        );
        self.key(
            "max_concurrent_upgraded_connections",
            count(l.max_concurrent_upgraded_connections),
        );
        self.key(
            "min_request_body_data_rate",
            data_rate(l.min_request_body_data_rate),
        );
        self.key(
            "min_response_data_rate",
            data_rate(l.min_response_data_rate),
        );

        let h2 = &l.http2;
        self.header("[limits.http2]");
        self.key("max_streams_per_connection", h2.max_streams_per_connection);
        self.key(
            "header_table_size",
            format_size(h2.header_table_size.into()),
        );
        self.key("max_frame_size", format_size(h2.max_frame_size.into()));
        self.key(
            "max_request_header_field_size",
            format_size(h2.max_request_header_field_size.into()),
        );
        self.key(
            "initial_connection_window_size",
            format_size(h2.initial_connection_window_size.into()),
        );
        self.key(
            "initial_stream_window_size",
            format_size(h2.initial_stream_window_size.into()),
        );
        self.key(
            "keep_alive_ping_delay",
            or_keyword(h2.keep_alive_ping_delay.map(format_duration), "off"),
        );
        self.key(
            "keep_alive_ping_timeout",
            format_duration(h2.keep_alive_ping_timeout),
        );

        self.header("[limits.http3]");
        self.key(
            "max_request_header_field_size",
            format_size(l.http3.max_request_header_field_size),
        );
        self.key(
            "max_streams_per_connection",
            l.http3.max_streams_per_connection,
        );
    }

    fn endpoint(&mut self, e: &EndpointConfig) {
        self.header("[[endpoints]]");
        if let Some(name) = &e.name {
            self.key("name", quote(name));
        }
        self.key("url", quote(&e.url.to_string()));
        let p = e.protocols;
        let protocols = [(p.http1, "http1"), (p.http2, "http2"), (p.http3, "http3")];
        self.key("protocols", list_of(&protocols));
        self.key("proxy_protocol", e.proxy_protocol);
        if matches!(e.url, ListenUrl::Http(_)) {
            self.key("https_redirect", e.https_redirect);
        }
        if let Some(tls) = &e.tls {
            self.tls(tls);
        }
    }

    fn tls(&mut self, t: &TlsConfig) {
        if let Some((first, more)) = t.certificates.split_first() {
            self.key("certificate", certificate(first));
            if !more.is_empty() {
                let more: Vec<String> = more.iter().map(certificate).collect();
                self.key("certificates", format!("[{}]", more.join(", ")));
            }
        }
        match &t.certificates_dir {
            Some(dir) => self.key("certificates_dir", quote_path(dir)),
            None if t.certificates.is_empty() => {
                self.0
                    .push_str("# no certificate: an in-memory development certificate\n");
            }
            None => {}
        }
        let v = t.versions;
        self.key(
            "tls_versions",
            list_of(&[(v.tls12, "1.2"), (v.tls13, "1.3")]),
        );
        let client = match t.client_certificate {
            ClientCertificate::None => "none",
            ClientCertificate::Allow => "allow",
            ClientCertificate::Require => "require",
        };
        self.key("client_certificate", quote(client));
        if let Some(ca) = &t.client_ca {
            self.key("client_ca", quote_path(ca));
        }
        let unknown_sni = match t.unknown_sni {
            UnknownSni::Default => "default",
            UnknownSni::Refuse => "refuse",
        };
        self.key("unknown_sni", quote(unknown_sni));
        self.key("require_sni_host_match", t.require_sni_host_match);
        self.key("handshake_timeout", format_duration(t.handshake_timeout));
        self.key("hsts", or_keyword(t.hsts.map(hsts), "off"));
    }

    fn static_files(&mut self, s: &StaticConfig) {
        self.header("[static]");
        self.key("root", quote_path(&s.root));
        self.static_options(s);

        self.header("[static.cache]");
        self.key("max_file_size", format_size(s.cache.max_file_size));
        self.key("max_total_size", format_size(s.cache.max_total_size));
        self.key(
            "revalidate_after",
            format_duration(s.cache.revalidate_after),
        );
    }

    /// The `[static]` keys other than `root` and `cache`, every one (a site's or a
    /// handler's would otherwise inherit what the top level sets).
    pub(super) fn static_options(&mut self, s: &StaticConfig) {
        self.key("index_files", strings(&s.index_files));
        let off = |value: &Option<String>| or_keyword(value.as_deref().map(quote), "off");
        self.key("fallback", off(&s.fallback));
        self.key("not_found_page", off(&s.not_found_page));
        self.key("directory_listing", s.directory_listing);
        self.key("serve_hidden_files", s.serve_hidden_files);
        self.key("follow_symlinks", s.follow_symlinks);
        self.key("precompressed", s.precompressed);
        self.key("cache_control", off(&s.cache_control));
    }

    fn log(&mut self, l: &LogConfig) {
        self.header("[log]");
        self.key("level", quote(&l.level));
        let access = match l.access_log {
            AccessLogFormat::Combined => "combined",
            AccessLogFormat::Json => "json",
            AccessLogFormat::Off => "off",
        };
        self.key("access_log", quote(access));
    }
}

/// A TOML array of quoted strings.
pub(super) fn strings<S: AsRef<str>>(items: &[S]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| quote(s.as_ref())).collect();
    format!("[{}]", quoted.join(", "))
}

/// The value, or the quoted keyword that stands for `None`.
pub(super) fn or_keyword(value: Option<String>, keyword: &str) -> String {
    value.unwrap_or_else(|| quote(keyword))
}

/// A TOML array of the quoted names that are switched on.
fn list_of(flags: &[(bool, &str)]) -> String {
    let on: Vec<&str> = flags
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, name)| *name)
        .collect();
    strings(&on)
}

fn certificate(files: &CertificateFiles) -> String {
    let (path, key) = (quote_path(&files.path), quote_path(&files.key));
    format!("{{ path = {path}, key = {key} }}")
}

/// The HSTS table; max_age in whole days when it is (it usually is: "365d", not humantime's
/// "11months 30days 3h 50m 24s").
fn hsts(h: Hsts) -> String {
    const DAY: u64 = 24 * 60 * 60;
    let secs = h.max_age.as_secs();
    let max_age = if secs % DAY == 0 && h.max_age.subsec_nanos() == 0 {
        format!("\"{}d\"", secs / DAY)
    } else {
        format_duration(h.max_age)
    };
    format!(
        "{{ max_age = {max_age}, include_subdomains = {}, preload = {} }}",
        h.include_subdomains, h.preload
    )
}

fn data_rate(rate: Option<DataRate>) -> String {
    let table = |r: DataRate| {
        let grace = format_duration(r.grace_period);
        format!(
            "{{ bytes_per_second = {}, grace_period = {grace} }}",
            r.bytes_per_second
        )
    };
    or_keyword(rate.map(table), "off")
}

/// A TOML string literal, escaped by the toml crate (so backslashes in Windows paths and
/// control characters come out right).
pub(super) fn quote(text: &str) -> String {
    toml::Value::String(text.to_owned()).to_string()
}

pub(super) fn quote_path(path: &Path) -> String {
    quote(&path.to_string_lossy())
}

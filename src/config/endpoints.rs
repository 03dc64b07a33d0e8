//! `[[endpoints]]`: listen URLs, protocols, the https redirect, and the `--port` override;
//! the TLS keys of https:// endpoints are read in [`super::tls`].

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;

use super::error::{Diagnostic, Origin};
use super::model::{EndpointConfig, ListenUrl, Protocols};
use super::reader::{Field, Section};
use super::tls;

/// What the protocols list may hold.
const PROTOCOLS: [&str; 3] = ["http1", "http2", "http3"];

/// Why http3 is refused on http:// and unix: endpoints.
const HTTP3_NEEDS_HTTPS: &str = "http3 needs an https:// endpoint (QUIC is always encrypted)";

/// An endpoint read from the tree, with where its name, URL and (when true) https_redirect
/// were written, for the checks across endpoints.
struct Read {
    endpoint: EndpointConfig,
    name_at: Option<Field>,
    url_at: Field,
    redirect_at: Option<Field>,
}

/// Reads `[[endpoints]]` (a default one when none are configured), applies `--port`, and
/// rejects duplicate names and addresses. Relative unix socket paths resolve against
/// `base_dir`, or the current directory when given on the command line.
pub(crate) fn endpoints(
    root: &mut Section,
    base_dir: &Path,
    port: Option<u16>,
) -> Vec<EndpointConfig> {
    let mut read: Vec<Read> = root
        .tables("endpoints", "[[endpoints]]", |t| endpoint(t, base_dir))
        .into_iter()
        .flatten()
        .collect();
    let mut default = Vec::new();
    if read.is_empty() {
        default.push(EndpointConfig::default());
    }
    if let Some(port) = port {
        let all = read.iter_mut().map(|r| &mut r.endpoint).chain(&mut default);
        apply_port(all, port, root);
    }
    check_duplicates(&read, root);
    check_redirects(&read, root);
    read.into_iter()
        .map(|r| r.endpoint)
        .chain(default)
        .collect()
}

/// One `[[endpoints]]` table; `None` when its URL is unusable (the problem is recorded).
fn endpoint(t: &mut Section, base_dir: &Path) -> Option<Read> {
    let name_at = t.take("name");
    let name = name_at.as_ref().and_then(|f| {
        let result = f.string().and_then(|name| {
            if name.trim().is_empty() {
                Err("must not be empty".to_owned())
            } else {
                Ok(name)
            }
        });
        t.check(f, result)
    });
    let url_at = t.require(
        "url",
        "every endpoint needs a url such as \"http://127.0.0.1:8080\"",
    );
    let url = url_at.as_ref().and_then(|f| {
        let url = f
            .string()
            .and_then(|text| parse_url(&text, &url_base(f, base_dir)));
        t.check(f, url)
    });
    let protocols = protocols(t, url.as_ref());
    let proxy_protocol = t.read("proxy_protocol", false, |f| match f.bool()? {
        // QUIC carries no PROXY header: HTTP/3 clients would bypass the load balancer's word.
        true if protocols.http3 => {
            Err("cannot be used with http3 (QUIC connections carry no PROXY header)".to_owned())
        }
        on => Ok(on),
    });
    let redirect_at = https_redirect(t, url.as_ref());
    let tls = match (&url, &url_at) {
        (Some(ListenUrl::Https(addr)), Some(at)) => {
            Some(tls::tls(t, base_dir, at, *addr, protocols.http3))
        }
        _ => {
            tls::refuse(t, url.is_some());
            None
        }
    };
    Some(Read {
        endpoint: EndpointConfig {
            name,
            url: url?,
            protocols,
            proxy_protocol,
            tls,
            https_redirect: redirect_at.is_some(),
        },
        name_at,
        url_at: url_at?,
        redirect_at,
    })
}

/// `https_redirect` of an http:// endpoint; its field when it is true (whether an https://
/// endpoint exists to redirect to is checked across endpoints).
fn https_redirect(t: &mut Section, url: Option<&ListenUrl>) -> Option<Field> {
    let f = t.take("https_redirect")?;
    match url {
        Some(ListenUrl::Http(_)) => t.check(&f, f.bool()).unwrap_or(false).then_some(f),
        Some(_) => {
            let problem = "only applies to http:// endpoints (it redirects them to https://)";
            t.report(f.problem(problem));
            None
        }
        None => None,
    }
}

/// Relative socket paths from the command line resolve against the current directory, as a
/// shell user expects; from settings, against the settings file's directory.
fn url_base(f: &Field, base_dir: &Path) -> std::path::PathBuf {
    match f.node.origin {
        Origin::Cli(_) => super::defaults::absolute(Path::new(".")),
        _ => base_dir.to_path_buf(),
    }
}

/// `protocols`: a non-empty list of distinct known protocols; http3 only on https:// (on
/// an unusable URL, whose problem is already reported, it is let through).
fn protocols(t: &mut Section, url: Option<&ListenUrl>) -> Protocols {
    let Some(field) = t.take("protocols") else {
        return Protocols::default();
    };
    let secure = matches!(url, Some(ListenUrl::Https(_)) | None);
    let empty = if secure {
        "must list at least one protocol: http1, http2, http3"
    } else {
        "must list at least one protocol: http1, http2"
    };
    let Some(listed) = t.distinct(&field, &PROTOCOLS, empty) else {
        return Protocols::default();
    };
    let mut set = Protocols {
        http1: false,
        http2: false,
        http3: false,
    };
    for (item, protocol) in listed {
        match protocol {
            "http1" => set.http1 = true,
            "http2" => set.http2 = true,
            _ if secure => set.http3 = true,
            _ => t.report(item.problem(HTTP3_NEEDS_HTTPS)),
        }
    }
    set
}

/// Parses `http://HOST:PORT`, `https://HOST:PORT` or `unix:PATH`; what else a user might
/// write gets a message that says what to write instead.
pub(crate) fn parse_url(text: &str, base_dir: &Path) -> Result<ListenUrl, String> {
    let scheme_end = text.find(':').map_or(0, |i| i + 1);
    let (scheme, rest) = text.split_at(scheme_end);
    let tcp: fn(SocketAddr) -> ListenUrl = match scheme.to_ascii_lowercase().as_str() {
        "unix:" => return unix_socket(rest, base_dir),
        "http:" => ListenUrl::Http,
        "https:" => ListenUrl::Https,
        _ => return Err(bad_url(text)),
    };
    let authority = rest.strip_prefix("//").ok_or_else(|| bad_url(text))?;
    host_port(authority.strip_suffix('/').unwrap_or(authority)).map(tcp)
}

fn bad_url(text: &str) -> String {
    format!(
        "expected a URL like \"http://127.0.0.1:8080\", \"https://0.0.0.0:8443\" or \
         \"unix:/run/harrier.sock\", found {text:?}"
    )
}

/// `HOST:PORT` where HOST is an IPv4 literal, `[IPv6]`, `localhost` or `*`/`+` (all
/// interfaces); names other than localhost are refused because binding needs an address.
fn host_port(authority: &str) -> Result<SocketAddr, String> {
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6
            .split_once(']')
            .ok_or_else(|| format!("unclosed [ in {authority:?}"))?;
        (host, after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    let port = port.ok_or_else(|| {
        format!("missing port in {authority:?}: write HOST:PORT, e.g. \"127.0.0.1:8080\"")
    })?;
    let port: u16 = port
        .parse()
        .map_err(|_| format!("the port must be a number from 0 to 65535, found {port:?}"))?;
    let ip = match host.to_ascii_lowercase().as_str() {
        "*" | "+" => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        "localhost" => IpAddr::V4(Ipv4Addr::LOCALHOST),
        _ if authority.starts_with('[') => host
            .parse()
            .map_err(|_| format!("not an IPv6 address: {host:?}"))?,
        _ => host.parse::<Ipv4Addr>().map(IpAddr::V4).map_err(|_| {
            format!("the host must be an IP address, localhost or *, found {host:?}")
        })?,
    };
    Ok(SocketAddr::new(ip, port))
}

#[cfg(unix)]
fn unix_socket(path: &str, base_dir: &Path) -> Result<ListenUrl, String> {
    if path.is_empty() {
        return Err(
            "a unix: endpoint needs a socket path, e.g. \"unix:/run/harrier.sock\"".to_owned(),
        );
    }
    Ok(ListenUrl::Unix(base_dir.join(path)))
}

#[cfg(not(unix))]
fn unix_socket(_path: &str, _base_dir: &Path) -> Result<ListenUrl, String> {
    Err("unix: endpoints are only available on Unix-like systems".to_owned())
}

/// `--port N`: sets the port of the one http:// or https:// endpoint; with several, which
/// one is meant is a guess, so it is refused.
fn apply_port<'a>(
    endpoints: impl Iterator<Item = &'a mut EndpointConfig>,
    port: u16,
    root: &mut Section,
) {
    let mut tcp: Vec<&mut SocketAddr> = endpoints
        .filter_map(|e| match &mut e.url {
            ListenUrl::Http(addr) | ListenUrl::Https(addr) => Some(addr),
            ListenUrl::Unix(_) => None,
        })
        .collect();
    let problem = match tcp.as_mut_slice() {
        [addr] => return addr.set_port(port),
        [] => "needs an http:// or https:// endpoint, but only unix: endpoints are configured"
            .to_owned(),
        several => format!(
            "needs exactly one http:// or https:// endpoint, but {} are configured: use \
             --listen instead",
            several.len()
        ),
    };
    root.report(Diagnostic::new(
        Origin::Cli("option --port".to_owned()),
        "endpoints",
        problem,
    ));
}

/// Two endpoints with one name would make sites' references ambiguous; two with one
/// address would fail to bind, whether http:// or https:// (port 0 is exempt: each gets its
/// own free port).
fn check_duplicates(read: &[Read], root: &mut Section) {
    let mut names: HashMap<&str, &str> = HashMap::new();
    let mut binds: HashMap<ListenUrl, (&str, &ListenUrl)> = HashMap::new();
    for r in read {
        let table = r.url_at.path.trim_end_matches(".url");
        if let (Some(name), Some(at)) = (&r.endpoint.name, &r.name_at) {
            if let Some(first) = names.insert(name, table) {
                root.report(at.problem(format!("the name {name:?} is already used by {first}")));
            }
        }
        let url = &r.endpoint.url;
        let bind = match url {
            ListenUrl::Http(addr) | ListenUrl::Https(addr) if addr.port() == 0 => continue,
            ListenUrl::Http(addr) | ListenUrl::Https(addr) => ListenUrl::Http(*addr),
            ListenUrl::Unix(_) => url.clone(),
        };
        let Some((first, first_url)) = binds.insert(bind, (table, url)) else {
            continue;
        };
        let problem = match url {
            _ if url == first_url => format!("{url} is already used by {first}"),
            ListenUrl::Http(addr) | ListenUrl::Https(addr) => {
                format!("{addr} is already used by {first} ({first_url})")
            }
            ListenUrl::Unix(_) => format!("{url} is already used by {first}"),
        };
        root.report(r.url_at.problem(problem));
    }
}

/// `https_redirect = true` needs an https:// endpoint to send the requests to.
fn check_redirects(read: &[Read], root: &mut Section) {
    let has_https = read
        .iter()
        .any(|r| matches!(r.endpoint.url, ListenUrl::Https(_)));
    if has_https {
        return;
    }
    for at in read.iter().filter_map(|r| r.redirect_at.as_ref()) {
        root.report(
            at.problem("needs an https:// endpoint to redirect to, but none is configured"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> Result<String, String> {
        parse_url(text, Path::new("/base")).map(|u| u.to_string())
    }

    #[test]
    fn url_forms() {
        assert_eq!(
            url("http://127.0.0.1:8080"),
            Ok("http://127.0.0.1:8080".into())
        );
        assert_eq!(
            url("HTTP://localhost:80/"),
            Ok("http://127.0.0.1:80".into())
        );
        assert_eq!(url("http://*:0"), Ok("http://0.0.0.0:0".into()));
        assert_eq!(url("http://[::1]:8443"), Ok("http://[::1]:8443".into()));
        assert_eq!(url("https://*:443/"), Ok("https://0.0.0.0:443".into()));
        assert_eq!(url("HTTPS://[::1]:8443"), Ok("https://[::1]:8443".into()));
        #[cfg(unix)]
        {
            assert_eq!(url("unix:/run/h.sock"), Ok("unix:/run/h.sock".into()));
            assert_eq!(url("unix:h.sock"), Ok("unix:/base/h.sock".into()));
        }
    }

    #[test]
    fn bad_urls() {
        for text in [
            "http://example.com:80",
            "http://127.0.0.1",
            "http://127.0.0.1:99999",
            "http://[::1:80",
            "ftp://x:1",
            "127.0.0.1:8080",
            "https://example.com:443",
            "https:0.0.0.0:443",
            "unix:",
        ] {
            assert!(url(text).is_err(), "{text}");
        }
    }
}

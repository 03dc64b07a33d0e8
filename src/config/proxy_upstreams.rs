//! `upstreams` and `tls` of a `proxy` handler: where requests go, and how https://
//! upstreams are verified.

use std::net::Ipv6Addr;
use std::path::{Path, PathBuf};

use super::model::CertificateFiles;
use super::proxy_model::*;
use super::reader::{in_range, narrow, Field, Section};
use super::tls::file_path;
use super::tree::Value;

/// How upstream URLs are described in messages.
const UPSTREAM_URL: &str = "an upstream URL like \"http://127.0.0.1:5000\", \
     \"https://api.internal\", \"h2c://127.0.0.1:5001\" or \"unix:/run/app.sock\"";
/// How an item of `upstreams` is described in messages.
const UPSTREAM_ITEM: &str =
    "an upstream URL like \"http://127.0.0.1:5000\" or a table like { url = \"...\", weight = 2 }";
/// How `tls` is described in messages.
const TLS: &str =
    "a table like { ca = \"ca.pem\", certificate = \"client.pem\", key = \"client.key\" }";

/// `upstreams`: a non-empty list of distinct upstreams; `None` when it is missing or any
/// item is wrong (the problems are recorded).
pub(crate) fn upstreams(h: &mut Section, base_dir: &Path) -> Option<Vec<UpstreamConfig>> {
    let f = h.require(
        "upstreams",
        "a proxy needs upstreams, e.g. upstreams = [\"http://127.0.0.1:5000\"]",
    )?;
    let items = f
        .items()
        .map_err(|_| f.expected("a list like [\"http://127.0.0.1:5000\"]"));
    let items = h.check(&f, items)?;
    if items.is_empty() {
        h.report(f.problem("must list at least one upstream"));
        return None;
    }
    let mut list: Vec<UpstreamConfig> = Vec::new();
    let mut ok = true;
    for item in items {
        let Some((upstream, at)) = upstream(h, item, base_dir) else {
            ok = false;
            continue;
        };
        if list.iter().any(|u| u.target == upstream.target) {
            let shown = upstream.target.to_string();
            h.report(at.problem(format!("{shown:?} is listed twice")));
            ok = false;
            continue;
        }
        list.push(upstream);
    }
    ok.then_some(list)
}

/// One item of `upstreams`, with the field its URL was written in.
fn upstream(h: &mut Section, item: Field, base_dir: &Path) -> Option<(UpstreamConfig, Field)> {
    if !matches!(item.node.value, Value::Table(_)) {
        let target = item
            .string()
            .map_err(|_| item.expected(UPSTREAM_ITEM))
            .and_then(|text| target(&text, base_dir));
        let target = h.check(&item, target)?;
        return Some((UpstreamConfig { target, weight: 1 }, item));
    }
    let mut u = Section::new(item.path, item.node);
    let url = u
        .require(
            "url",
            "an upstream table needs its url, e.g. { url = \"http://127.0.0.1:5000\", weight = 2 }",
        )
        .and_then(|f| {
            let target = f.string().and_then(|text| target(&text, base_dir));
            u.check(&f, target).map(|target| (target, f))
        });
    let weight = u.read("weight", 1, |f| {
        narrow(in_range(f.count()?, 1, 100)?, u32::MAX)
    });
    u.close_into(h);
    let (target, at) = url?;
    Some((UpstreamConfig { target, weight }, at))
}

/// Parses `http://HOST[:PORT]`, `https://...`, `h2c://...` or `unix:PATH` (relative to
/// `base_dir`).
fn target(text: &str, base_dir: &Path) -> Result<UpstreamTarget, String> {
    if let Some(path) = strip_prefix_ignore_case(text, "unix:") {
        return unix_target(text, path, base_dir);
    }
    let Some((scheme, rest)) = text.split_once("://") else {
        let looks_like_address = !text.is_empty()
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".:-_[]".contains(&b));
        return Err(if looks_like_address {
            format!("{text:?} needs a scheme, e.g. \"http://{text}\"")
        } else {
            format!("expected {UPSTREAM_URL}, found {text:?}")
        });
    };
    let scheme = match scheme.to_ascii_lowercase().as_str() {
        "http" => UpstreamScheme::Http,
        "https" => UpstreamScheme::Https,
        "h2c" => UpstreamScheme::H2c,
        "ws" | "wss" => {
            let plain = if scheme.eq_ignore_ascii_case("ws") {
                "http"
            } else {
                "https"
            };
            return Err(format!(
                "{text:?}: write \"{plain}://\": WebSocket upgrades are forwarded over HTTP"
            ));
        }
        _ => {
            return Err(format!(
                "{text:?}: unknown scheme {scheme:?} (http://, https://, h2c:// or unix:)"
            ))
        }
    };
    let split = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(split);
    if path.contains(['?', '#']) {
        return Err(format!(
            "{text:?} has a query or fragment: an upstream URL is only a scheme, host and port"
        ));
    }
    if !path.is_empty() && path != "/" {
        let prefix = path.trim_end_matches('/');
        return Err(format!(
            "{text:?} has a path: an upstream URL is only a scheme, host and port (to put \
             {prefix:?} in front of forwarded paths, use add_prefix = {prefix:?})"
        ));
    }
    if authority.contains('@') {
        return Err(format!(
            "{text:?} has user info (\"user@\"): an upstream URL is only a scheme, host and \
             port (send credentials with request_headers)"
        ));
    }
    let (host, port) = host_port(text, authority)?;
    let port = port.unwrap_or(match scheme {
        UpstreamScheme::Https => 443,
        UpstreamScheme::Http | UpstreamScheme::H2c => 80,
    });
    Ok(UpstreamTarget::Tcp { scheme, host, port })
}

/// `text` without `prefix`, compared case-insensitively.
fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

/// The host (lowercase; an IPv6 address without brackets) and port of `authority`.
fn host_port(text: &str, authority: &str) -> Result<(String, Option<u16>), String> {
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (v6, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("{text:?}: an IPv6 address needs its closing \"]\""))?;
        let addr: Ipv6Addr = v6
            .parse()
            .map_err(|_| format!("{text:?}: {v6:?} is not an IPv6 address"))?;
        let port = match after {
            "" => None,
            after => Some(after.strip_prefix(':').ok_or_else(|| {
                format!("{text:?}: expected \":PORT\" after the IPv6 address, found {after:?}")
            })?),
        };
        (addr.to_string(), port)
    } else {
        if authority.matches(':').count() > 1 {
            return Err(format!(
                "{text:?}: write an IPv6 address in brackets, as in \"http://[::1]:5000\""
            ));
        }
        let (host, port) = match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        };
        if host.is_empty() {
            return Err(format!("{text:?} has no host"));
        }
        if !super::sites::is_host_name(host) {
            return Err(format!(
                "{text:?}: {host:?} is not a host name or IP address"
            ));
        }
        (host.to_ascii_lowercase(), port)
    };
    let port = port
        .map(|p| {
            p.parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| format!("{text:?}: the port must be 1 to 65535, found {p:?}"))
        })
        .transpose()?;
    Ok((host, port))
}

#[cfg(unix)]
fn unix_target(text: &str, path: &str, base_dir: &Path) -> Result<UpstreamTarget, String> {
    // "unix:///run/app.sock", as curl and Docker write it, is "unix:/run/app.sock".
    let path = match path.strip_prefix("//") {
        Some(absolute) if absolute.starts_with('/') => absolute,
        Some(_) => {
            return Err(format!(
                "{text:?}: write \"unix:\" and the socket's path, e.g. \"unix:/run/app.sock\""
            ))
        }
        None => path,
    };
    if path.is_empty() {
        return Err("a unix: upstream needs a socket path, e.g. \"unix:/run/app.sock\"".to_owned());
    }
    Ok(UpstreamTarget::Unix(base_dir.join(path)))
}

#[cfg(not(unix))]
fn unix_target(_text: &str, _path: &str, _base_dir: &Path) -> Result<UpstreamTarget, String> {
    Err("unix: upstreams are only available on Unix-like systems".to_owned())
}

/// `tls`, which only applies when some upstream is https:// (`upstreams` is `None` when
/// they are wrong, and then that is not judged).
pub(crate) fn upstream_tls(
    h: &mut Section,
    base_dir: &Path,
    upstreams: Option<&[UpstreamConfig]>,
) -> UpstreamTls {
    let Some(f) = h.take("tls") else {
        return UpstreamTls::default();
    };
    if upstreams.is_some_and(|list| !list.iter().any(is_https)) {
        h.report(f.problem(
            "only applies to https:// upstreams, and none of this proxy's upstreams is https://",
        ));
        return UpstreamTls::default();
    }
    let Some(mut t) = h.table(f, TLS) else {
        return UpstreamTls::default();
    };
    let mut file = |key| {
        let f = t.take(key)?;
        let path = t.check(&f, existing_file(&f, base_dir));
        Some((f, path))
    };
    let ca = file("ca").and_then(|(_, path)| path);
    let certificate = file("certificate");
    let key = file("key");
    let client_certificate = match (certificate, key) {
        (Some((_, Some(path))), Some((_, Some(key)))) => Some(CertificateFiles { path, key }),
        (Some((f, _)), None) => {
            t.report(f.problem(
                "needs key, the client certificate's private key (PEM), e.g. key = \"client.key\"",
            ));
            None
        }
        (None, Some((f, _))) => {
            t.report(f.problem(
                "needs certificate, the client certificate chain (PEM) this key belongs to",
            ));
            None
        }
        _ => None,
    };
    let server_name = t.take("server_name").and_then(|f| {
        let name = f.string().and_then(|name| {
            rustls_pki_types::ServerName::try_from(name.as_str())
                .map(drop)
                .map_err(|_| format!("{name:?} is not a DNS name or IP address"))
                .map(|()| name)
        });
        t.check(&f, name)
    });
    t.close_into(h);
    UpstreamTls {
        ca,
        client_certificate,
        server_name,
    }
}

fn is_https(upstream: &UpstreamConfig) -> bool {
    matches!(
        upstream.target,
        UpstreamTarget::Tcp {
            scheme: UpstreamScheme::Https,
            ..
        }
    )
}

/// A file that must exist, named by a non-empty string relative to `base_dir`.
fn existing_file(f: &Field, base_dir: &Path) -> Result<PathBuf, String> {
    let path = file_path(f, base_dir)?;
    match std::fs::metadata(&path) {
        Ok(meta) if meta.is_file() => Ok(path),
        Ok(_) => Err(format!("{} is not a file", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(format!("file {} does not exist", path.display()))
        }
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_urls() {
        let base = Path::new("/etc/h");
        let ok = |text: &str| target(text, base).unwrap().to_string();
        assert_eq!(ok("http://127.0.0.1:5000"), "http://127.0.0.1:5000");
        assert_eq!(ok("HTTP://API.Internal/"), "http://api.internal:80");
        assert_eq!(ok("https://api.internal"), "https://api.internal:443");
        assert_eq!(ok("h2c://[::1]"), "h2c://[::1]:80");
        assert_eq!(
            ok("https://[2001:db8::1]:8443"),
            "https://[2001:db8::1]:8443"
        );
        #[cfg(unix)]
        {
            assert_eq!(ok("unix:/run/a.sock"), "unix:/run/a.sock");
            assert_eq!(ok("unix:///run/a.sock"), "unix:/run/a.sock");
            assert_eq!(ok("unix:a.sock"), "unix:/etc/h/a.sock");
        }
        for bad in [
            "127.0.0.1:5000",
            "ftp://x",
            "ws://x",
            "http://x/api",
            "http://x?a=1",
            "http://u:p@x",
            "http://::1",
            "http://[::1",
            "http://[zz]",
            "http://x:0",
            "http://x:99999",
            "http://x:",
            "http://:80",
            "http://a b",
            "unix:",
            "unix://a.sock",
        ] {
            assert!(target(bad, base).is_err(), "{bad}");
        }
    }
}

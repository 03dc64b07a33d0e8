//! `[[sites]]`: virtual hosts with their host patterns, endpoints, static files, stages and
//! routes (read in [`super::routes`]), and the checks across sites.

use std::net::Ipv6Addr;
use std::path::Path;

use super::error::{Diagnostic, Origin};
use super::model::{EndpointConfig, StaticConfig};
use super::reader::{suggest, Field, Section};
use super::routes;
use super::sections::{check_dir, static_options};
use super::site_model::{HostPattern, SiteConfig};
use super::stages::stages;

/// What sites are read against.
pub(crate) struct Context<'a> {
    /// The settings file's directory, for relative roots.
    pub base_dir: &'a Path,
    /// `[static]`, which a site's static files start from.
    pub static_files: &'a StaticConfig,
    /// The endpoints that sites may name.
    pub endpoints: &'a [EndpointConfig],
    /// Whether `--listen` replaced the configured endpoints (and their names).
    pub listen: bool,
    /// The names of the `[[apps]]` entries, which `app` handlers refer to.
    pub apps: &'a [String],
}

/// Why `[sites.static]` has no `cache`.
pub(crate) const CACHE_IS_GLOBAL: &str =
    "the file cache is shared by every site: set it in [static.cache]";

/// A site as read, with where its name and hosts were written, for the checks across sites.
struct Read {
    path: String,
    site: SiteConfig,
    name_at: Option<Field>,
    hosts_at: Vec<(Origin, String)>,
}

/// Reads every `[[sites]]` table and checks that names are unique and that no two sites
/// on a common endpoint claim the same host.
pub(crate) fn sites(root: &mut Section, cx: &Context) -> Vec<SiteConfig> {
    let read = root.tables("sites", "[[sites]]", |t| site(t, cx));
    for (i, later) in read.iter().enumerate() {
        check_name(&read[..i], later, root);
        check_hosts(&read[..i], later, root);
    }
    read.into_iter().map(|r| r.site).collect()
}

fn site(t: &mut Section, cx: &Context) -> Read {
    let name_at = t.take("name");
    let name = name_at.as_ref().and_then(|f| {
        let name = f.string().and_then(|name| match name.trim() {
            "" => Err("must not be empty".to_owned()),
            _ => Ok(name),
        });
        t.check(f, name)
    });
    let (hosts, hosts_at) = hosts(t);
    let endpoints = endpoint_names(t, cx);
    let root = match t.take("root") {
        None => cx.static_files.root.clone(),
        Some(f) => {
            let dir = f
                .string()
                .and_then(|s| check_dir(&cx.base_dir.join(s), "a site's root"));
            t.check(&f, dir)
                .unwrap_or_else(|| cx.static_files.root.clone())
        }
    };
    let base = StaticConfig {
        root,
        ..cx.static_files.clone()
    };
    let static_files = site_static(t, base);
    let middleware = stages(t, "[[sites.use]]");
    let routes = t.tables("routes", "[[sites.routes]]", |r| {
        routes::route(r, cx.base_dir, &static_files, cx.apps)
    });
    Read {
        path: t.path().to_owned(),
        site: SiteConfig {
            name,
            hosts,
            endpoints,
            static_files,
            middleware,
            routes: routes.into_iter().flatten().collect(),
        },
        name_at,
        hosts_at,
    }
}

/// `[sites.static]`: the `[static]` options of the site, over `base`.
fn site_static(t: &mut Section, base: StaticConfig) -> StaticConfig {
    let root_is = format!("a site's root is set by {}.root", t.path());
    let mut s = t.section("static");
    s.reject("root", &root_is);
    let files = static_options(&mut s, base);
    s.reject("cache", CACHE_IS_GLOBAL);
    s.close_into(t);
    files
}

/// `hosts`, default `["*"]`, with where each was written; a bad or repeated one is
/// reported and left out.
fn hosts(t: &mut Section) -> (Vec<HostPattern>, Vec<(Origin, String)>) {
    let Some(f) = t.take("hosts") else {
        let at = t.problem_at("hosts", "");
        return (vec![HostPattern::Any], vec![(at.origin, at.key)]);
    };
    let items = t.list(&f, "must list at least one host (\"*\" for any host)");
    let (mut hosts, mut at) = (Vec::new(), Vec::new());
    for item in items {
        let Some(host) = t.check(&item, item.string().and_then(|h| host_pattern(&h))) else {
            continue;
        };
        if hosts.contains(&host) {
            t.report(item.problem(format!("{:?} is listed twice", show(&host))));
            continue;
        }
        hosts.push(host);
        at.push((item.node.origin, item.path));
    }
    (hosts, at)
}

/// A host pattern: `*`, `*.example.com`, `example.com`, an IPv4 address or `[IPv6]`, as
/// the Host header carries it (ASCII, lowercase, no port).
fn host_pattern(text: &str) -> Result<HostPattern, String> {
    if text == "*" {
        return Ok(HostPattern::Any);
    }
    if !text.is_ascii() {
        return Err(format!(
            "{text:?} is not ASCII: write an internationalized name in its punycode form \
             (\"xn--...\"), as clients send it"
        ));
    }
    if let Some(v6) = text.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
        let addr: Ipv6Addr = v6
            .parse()
            .map_err(|_| format!("{text:?} is not an IPv6 address"))?;
        return Ok(HostPattern::Exact(format!("[{addr}]")));
    }
    let (wildcard, name) = match text.strip_prefix("*.") {
        Some(name) => (true, name),
        None => (false, text),
    };
    if name.contains('*') {
        return Err(format!(
            "{text:?}: \"*\" may only be the whole host (any host) or its first label, as in \
             \"*.example.com\""
        ));
    }
    if name.parse::<Ipv6Addr>().is_ok() {
        return Err(format!("write an IPv6 address in brackets: \"[{name}]\""));
    }
    if name.contains(':') {
        return Err(format!(
            "{text:?} has a port: hosts are matched without one (a site's endpoints choose \
             its ports)"
        ));
    }
    if name.bytes().any(|b| b.is_ascii_uppercase()) {
        let lower = text.to_ascii_lowercase();
        return Err(format!(
            "write host names in lowercase: \"{lower}\", found {text:?}"
        ));
    }
    if name.ends_with('.') {
        let trimmed = text.trim_end_matches('.');
        return Err(format!(
            "write host names without the final dot: \"{trimmed}\""
        ));
    }
    if !is_host_name(name) {
        return Err(format!(
            "{text:?} is not a host name (labels of letters, digits, \"-\" and \"_\", \
             separated by dots)"
        ));
    }
    Ok(if wildcard {
        HostPattern::Wildcard(format!(".{name}"))
    } else {
        HostPattern::Exact(name.to_owned())
    })
}

/// A DNS name as hosts and upstreams write it: at most 253 bytes, in dot-separated labels
/// of 1 to 63 letters, digits, `-` and `_` (the underscore for service names).
pub(crate) fn is_host_name(name: &str) -> bool {
    let label_ok = |label: &str| {
        (1..=63).contains(&label.len())
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    name.len() <= 253 && name.split('.').all(label_ok)
}

/// A host pattern as it is written.
pub(crate) fn show(host: &HostPattern) -> String {
    match host {
        HostPattern::Any => "*".to_owned(),
        HostPattern::Exact(name) => name.clone(),
        HostPattern::Wildcard(suffix) => format!("*{suffix}"),
    }
}

/// `endpoints`: names of `[[endpoints]]`, each existing and listed once; absent = all.
fn endpoint_names(t: &mut Section, cx: &Context) -> Vec<String> {
    let Some(f) = t.take("endpoints") else {
        return Vec::new();
    };
    let empty = "must name at least one endpoint (leave endpoints out to serve on all)";
    let items = t.list(&f, empty);
    let known: Vec<&str> = cx
        .endpoints
        .iter()
        .filter_map(|e| e.name.as_deref())
        .collect();
    t.distinct_strings(items, |name| {
        if known.contains(&name) {
            Ok(name.to_owned())
        } else {
            Err(unknown_endpoint(name, &known, cx.listen))
        }
    })
}

fn unknown_endpoint(name: &str, known: &[&str], listen: bool) -> String {
    let unknown = format!("no endpoint is named {name:?}");
    if listen {
        return format!("{unknown}: --listen replaced the configured endpoints");
    }
    match suggest(name, known) {
        Some(near) => format!("{unknown}, did you mean \"{near}\"?"),
        None if known.is_empty() => format!("{unknown} (no [[endpoints]] has a name)"),
        None => format!("{unknown} (endpoint names: {})", known.join(", ")),
    }
}

/// `sites[0] ("main")`, or `sites[0]` for a site without a name.
fn label(r: &Read) -> String {
    match &r.site.name {
        Some(name) => format!("{} ({name:?})", r.path),
        None => r.path.clone(),
    }
}

fn check_name(earlier: &[Read], later: &Read, root: &mut Section) {
    let (Some(name), Some(at)) = (&later.site.name, &later.name_at) else {
        return;
    };
    if let Some(first) = earlier.iter().find(|r| r.site.name.as_ref() == Some(name)) {
        root.report(at.problem(format!(
            "the name {name:?} is already used by {}",
            first.path
        )));
    }
}

/// The endpoint two sites both serve, described for messages; `None` when they share none.
fn shared_endpoint(a: &SiteConfig, b: &SiteConfig) -> Option<String> {
    match (a.endpoints.as_slice(), b.endpoints.as_slice()) {
        ([], []) => Some("every endpoint".to_owned()),
        ([], names) | (names, []) => Some(format!("endpoint {:?}", names[0])),
        (names, other) => names
            .iter()
            .find(|n| other.contains(n))
            .map(|n| format!("endpoint {n:?}")),
    }
}

/// A host of `later` that an earlier site on a common endpoint also claims could never
/// reach one of them.
fn check_hosts(earlier: &[Read], later: &Read, root: &mut Section) {
    for (host, (origin, path)) in later.site.hosts.iter().zip(&later.hosts_at) {
        let clash = earlier.iter().find_map(|first| {
            let shared = shared_endpoint(&first.site, &later.site)?;
            first.site.hosts.contains(host).then_some((first, shared))
        });
        if let Some((first, shared)) = clash {
            let message = format!(
                "{:?} is served by both {} and {} on {shared}",
                show(host),
                label(first),
                label(later)
            );
            root.report(Diagnostic::new(origin.clone(), path.clone(), message));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_patterns() {
        let ok = |text: &str| host_pattern(text).unwrap();
        assert_eq!(ok("*"), HostPattern::Any);
        assert_eq!(ok("example.com"), HostPattern::Exact("example.com".into()));
        assert_eq!(
            ok("*.example.com"),
            HostPattern::Wildcard(".example.com".into())
        );
        assert_eq!(ok("127.0.0.1"), HostPattern::Exact("127.0.0.1".into()));
        assert_eq!(ok("[::1]"), HostPattern::Exact("[::1]".into()));
        assert_eq!(ok("localhost"), HostPattern::Exact("localhost".into()));
        for bad in [
            "Example.com",
            "example.com:8080",
            "bücher.example",
            "a.*.com",
            "*example.com",
            "example.com.",
            "a..b",
            "::1",
            "[nope]",
            "",
            "a b",
        ] {
            assert!(host_pattern(bad).is_err(), "{bad}");
        }
    }
}

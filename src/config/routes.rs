//! `[[sites.routes]]`: the matcher (path pattern, methods, headers, query), the route's
//! stages and its terminal handler.

use std::path::Path;

use http::{Method, StatusCode};

use super::model::StaticConfig;
use super::reader::{in_range, Field, Section};
use super::sections::{check_dir, static_options};
use super::site_model::{HandlerConfig, PathPattern, RouteConfig, RouteMatch};
use super::sites::CACHE_IS_GLOBAL;
use super::stages::{check_placeholders, header_map, header_value, key_problem, stages, Kinds};

/// Handler types.
const HANDLERS: Kinds = Kinds {
    what: "handler",
    available: &["static", "redirect", "respond", "proxy", "app"],
    later: &[],
    missing: "every handler needs a type: static, redirect, respond, proxy or app",
};

/// One route; `None` when its handler is unusable (the problems are recorded). `apps` are
/// the names of the `[[apps]]` entries, which `app` handlers refer to.
pub(crate) fn route(
    t: &mut Section,
    base_dir: &Path,
    site_static: &StaticConfig,
    apps: &[String],
) -> Option<RouteConfig> {
    let path_at = t.take("path");
    let path = path_at
        .as_ref()
        .and_then(|f| t.check(f, f.string().and_then(|p| path_pattern(&p))));
    let matcher = RouteMatch {
        methods: methods(t),
        headers: header_map(t, "headers")
            .into_iter()
            .filter_map(|(name, value)| {
                let wanted = value.string().and_then(|v| match v.as_str() {
                    "*" => Ok(None),
                    _ => header_value(&v).map(|_| Some(v)),
                });
                t.check(&value, wanted).map(|wanted| (name, wanted))
            })
            .collect(),
        query: query(t),
        path,
    };
    let middleware = stages(t, "[[sites.routes.use]]");
    let handler_at = t.require(
        "handler",
        "every route needs a handler, e.g. handler = { type = \"static\" }",
    )?;
    let mut h = t.table(handler_at, "a table like { type = \"static\" }")?;
    let pattern = path_at.and_then(|f| f.string().ok());
    let captures = matcher.path.as_ref().map_or(0, captures);
    let handler = HANDLERS.read(&mut h).and_then(|kind| match kind {
        "static" => static_handler(&mut h, base_dir, site_static),
        "redirect" => redirect(&mut h, pattern.as_deref(), captures),
        "respond" => respond(&mut h),
        "proxy" => super::proxy::proxy(&mut h, base_dir),
        "app" => super::proxy::app(&mut h, apps),
        other => unreachable!("handler {other} is listed but not read"),
    });
    h.close_into(t);
    Some(RouteConfig {
        matcher,
        middleware,
        handler: handler?,
    })
}

/// A path pattern: starts with `/`; ending in `/*` with no other `*` is a prefix, any other
/// `*` (one segment) or `**` (any depth) makes a glob, otherwise it is exact. Written as
/// the request path arrives: percent-encoded, without query.
fn path_pattern(text: &str) -> Result<PathPattern, String> {
    if !text.starts_with('/') {
        return Err(format!(
            "a path pattern must start with \"/\", found {text:?}"
        ));
    }
    if text.contains(['?', '#']) {
        return Err(format!(
            "{text:?}: a path pattern has no query or fragment (match the query with `query`)"
        ));
    }
    if text.bytes().any(|b| !b.is_ascii_graphic()) {
        return Err(format!(
            "{text:?}: write spaces, control and non-ASCII characters percent-encoded, as \
             they arrive in the request"
        ));
    }
    if text.contains("***") {
        return Err(format!(
            "{text:?}: \"*\" matches within one segment and \"**\" across segments; \"***\" \
             means nothing"
        ));
    }
    Ok(match text.strip_suffix("/*") {
        Some(prefix) if !prefix.contains('*') => PathPattern::Prefix(prefix.to_owned()),
        _ if text.contains('*') => PathPattern::Glob(text.to_owned()),
        _ => PathPattern::Exact(text.to_owned()),
    })
}

/// How many captures (`{1}`...) a path pattern makes: one per `*` or `**`.
fn captures(pattern: &PathPattern) -> usize {
    match pattern {
        PathPattern::Exact(_) => 0,
        PathPattern::Prefix(_) => 1,
        // Runs of stars: split on everything else.
        PathPattern::Glob(glob) => glob.split(|c| c != '*').filter(|s| !s.is_empty()).count(),
    }
}

/// The methods everyone writes in uppercase; other tokens (WebDAV's) are taken as written.
const STANDARD_METHODS: [&str; 9] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
];

/// `methods`: distinct method tokens, case-sensitive; absent = any method.
fn methods(t: &mut Section) -> Vec<Method> {
    let Some(f) = t.take("methods") else {
        return Vec::new();
    };
    let items = t.list(
        &f,
        "must list at least one method (leave methods out to match any)",
    );
    t.distinct_strings(items, method)
}

/// A method token, as written (methods are case-sensitive; "get" is not GET).
pub(super) fn method(text: &str) -> Result<Method, String> {
    if let Some(standard) = STANDARD_METHODS
        .iter()
        .find(|m| m.eq_ignore_ascii_case(text) && **m != text)
    {
        return Err(format!(
            "methods are case-sensitive: write \"{standard}\", found {text:?}"
        ));
    }
    Method::from_bytes(text.as_bytes())
        .map_err(|_| format!("{text:?} is not an HTTP method (a token such as \"GET\")"))
}

/// `query`: parameter names and required values (`"*"`: present with any value).
fn query(t: &mut Section) -> Vec<(String, Option<String>)> {
    let Some(f) = t.take("query") else {
        return Vec::new();
    };
    let example = "a table of query parameters and values, like { v = \"2\" }";
    let mut query = Vec::new();
    for (name, name_at, value) in t.check(&f, f.entries(example)).unwrap_or_default() {
        if name.is_empty() {
            let message = "a query parameter needs a name".to_owned();
            t.report(key_problem(&value, name_at, message));
            continue;
        }
        let wanted = value.string().map(|v| (v != "*").then_some(v));
        query.extend(t.check(&value, wanted).map(|wanted| (name, wanted)));
    }
    query
}

/// `type = "static"`: an optional root and `[static]` options over the site's.
fn static_handler(h: &mut Section, base_dir: &Path, site: &StaticConfig) -> Option<HandlerConfig> {
    let root = match h.take("root") {
        None => Some(site.root.clone()),
        Some(f) => {
            let role = "a static handler's root";
            let dir = f.string().and_then(|s| check_dir(&base_dir.join(s), role));
            h.check(&f, dir)
        }
    };
    let base = StaticConfig {
        root: root.clone().unwrap_or_else(|| site.root.clone()),
        ..site.clone()
    };
    let files = static_options(h, base);
    h.reject("cache", CACHE_IS_GLOBAL);
    root.map(|_| HandlerConfig::Static(files))
}

/// The statuses a redirect may have.
const REDIRECTS: [u64; 5] = [301, 302, 303, 307, 308];

/// What a redirect target may use.
const REDIRECT_PLACEHOLDERS: &str = "a redirect target may use {path}, {query}, {host} and \
     {1}..{9} (what each \"*\" of the route's path matched)";

/// `type = "redirect"`: `to` (required) and `status` (308 by default: keeps the method).
fn redirect(h: &mut Section, path: Option<&str>, captures: usize) -> Option<HandlerConfig> {
    let help = |index: usize| match (index, path) {
        (0, _) => REDIRECT_PLACEHOLDERS.to_owned(),
        (i, None) => format!("{{{i}}} refers to a \"*\" of the route's path, but it has none"),
        (i, Some(p)) if captures == 0 => {
            format!("{{{i}}} refers to a \"*\" of the route's path, but {p:?} has none")
        }
        (i, Some(p)) => {
            let s = if captures == 1 { "" } else { "s" };
            format!("{{{i}}} is beyond the {captures} capture{s} of the path {p:?}")
        }
    };
    let to = h
        .require(
            "to",
            "a redirect needs a target, e.g. to = \"https://example.com{path}\"",
        )
        .and_then(|f| {
            let to = f.string().and_then(|to| {
                if to.trim().is_empty() {
                    return Err("must not be empty".to_owned());
                }
                check_placeholders(&to, &["path", "query", "host"], Some(captures), &help)?;
                header_value(&to).map(|_| to)
            });
            h.check(&f, to)
        });
    let status = h.read("status", StatusCode::PERMANENT_REDIRECT, redirect_status);
    Some(HandlerConfig::Redirect { status, to: to? })
}

/// A redirect's `status`: 301, 302, 303, 307 or 308 (a route's redirect handler, a rewrite
/// rule's redirect action).
pub(super) fn redirect_status(f: &Field) -> Result<StatusCode, String> {
    let code = f.count()?;
    if !REDIRECTS.contains(&code) {
        return Err(format!(
            "a redirect's status must be 301, 302, 303, 307 or 308, found {code}"
        ));
    }
    status(code)
}

/// `type = "respond"`: `status` (200), `body` (empty) and `headers`.
fn respond(h: &mut Section) -> Option<HandlerConfig> {
    let status = h.read("status", StatusCode::OK, |f| {
        status(in_range(f.count()?, 100, 599)?)
    });
    let body_at = h.take("body");
    let body = body_at
        .as_ref()
        .and_then(|f| h.check(f, f.string()))
        .unwrap_or_default();
    let no_body = status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED;
    if let (Some(f), true) = (&body_at, no_body && !body.is_empty()) {
        h.report(f.problem(format!("a {} response has no body", status.as_u16())));
    }
    let headers = header_map(h, "headers")
        .into_iter()
        .filter_map(|(name, value)| {
            let checked = value.string().and_then(|v| header_value(&v));
            h.check(&value, checked).map(|v| (name, v))
        })
        .collect();
    Some(HandlerConfig::Respond {
        status,
        headers,
        body,
    })
}

/// `code` as an HTTP status (the caller checks the range it allows).
pub(super) fn status(code: u64) -> Result<StatusCode, String> {
    u16::try_from(code)
        .ok()
        .and_then(|code| StatusCode::from_u16(code).ok())
        .ok_or_else(|| format!("not an HTTP status: {code}"))
}

/// A path pattern as it is written.
pub(crate) fn show_path(pattern: &PathPattern) -> String {
    match pattern {
        PathPattern::Exact(path) | PathPattern::Glob(path) => path.clone(),
        PathPattern::Prefix(prefix) => format!("{prefix}/*"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_patterns_and_their_captures() {
        let p = |text: &str| path_pattern(text).unwrap();
        assert_eq!(p("/"), PathPattern::Exact("/".into()));
        assert_eq!(p("/api/*"), PathPattern::Prefix("/api".into()));
        assert_eq!(p("/*"), PathPattern::Prefix(String::new()));
        assert_eq!(p("/a/*/b/*"), PathPattern::Glob("/a/*/b/*".into()));
        for (text, n) in [("/x", 0), ("/api/*", 1), ("/*.js", 1), ("/docs/**/*.md", 2)] {
            assert_eq!(captures(&p(text)), n, "{text}");
            assert_eq!(show_path(&p(text)), text);
        }
        assert_eq!(captures(&p("/a/*/b/**")), 2);
        for bad in ["api", "/a?b=1", "/a b", "/***", "/é"] {
            assert!(path_pattern(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn methods_are_case_sensitive_tokens() {
        assert_eq!(method("GET"), Ok(Method::GET));
        assert_eq!(method("PROPFIND").unwrap().as_str(), "PROPFIND");
        assert!(method("get").unwrap_err().contains("write \"GET\""));
        assert!(method("GE T").is_err());
    }
}

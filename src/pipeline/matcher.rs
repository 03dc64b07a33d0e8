//! Route matching: path (exact, prefix, glob with captures), methods, headers, query.

use http::{HeaderName, Method, Request};

use crate::config::{PathPattern, RouteMatch};

/// A compiled route matcher.
#[derive(Debug)]
pub struct Matcher {
    path: Option<PathMatcher>,
    methods: Vec<Method>,
    headers: Vec<(HeaderName, Option<String>)>,
    query: Vec<(String, Option<String>)>,
}

#[derive(Debug)]
enum PathMatcher {
    Exact(String),
    /// Matches the prefix itself and anything below it; captures what follows `prefix/`.
    Prefix(String),
    Glob(Vec<Glob>),
}

#[derive(Debug, PartialEq)]
enum Glob {
    Lit(String),
    /// `*`: any characters but `/`.
    Star,
    /// `**`: any characters.
    DoubleStar,
}

impl Matcher {
    /// Compiles the matcher of a route.
    pub fn new(m: &RouteMatch) -> Self {
        Matcher {
            path: m.path.as_ref().map(|p| match p {
                PathPattern::Exact(s) => PathMatcher::Exact(s.clone()),
                PathPattern::Prefix(s) => PathMatcher::Prefix(s.trim_end_matches('/').to_owned()),
                PathPattern::Glob(s) => PathMatcher::Glob(compile(s)),
            }),
            methods: m.methods.clone(),
            headers: m.headers.clone(),
            query: m.query.clone(),
        }
    }

    /// The captures (`{1}`...) when `req` matches, `None` otherwise.
    pub fn matches<B>(&self, req: &Request<B>) -> Option<Vec<String>> {
        if !self.methods.is_empty() && !self.methods.contains(req.method()) {
            return None;
        }
        for (name, want) in &self.headers {
            let mut values = req.headers().get_all(name).iter();
            let ok = match want {
                None => values.next().is_some(),
                Some(want) => values.any(|v| v.as_bytes() == want.as_bytes()),
            };
            if !ok {
                return None;
            }
        }
        if !self.query.is_empty() {
            let query = req.uri().query().unwrap_or("");
            for (name, want) in &self.query {
                let found = query.split('&').any(|pair| {
                    let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                    k == name && want.as_deref().is_none_or(|w| w == v)
                });
                if !found {
                    return None;
                }
            }
        }
        let path = req.uri().path();
        match &self.path {
            None => Some(Vec::new()),
            Some(PathMatcher::Exact(p)) => (path == p).then(Vec::new),
            Some(PathMatcher::Prefix(p)) => {
                let rest = path.strip_prefix(p.as_str())?;
                if rest.is_empty() {
                    Some(vec![String::new()])
                } else {
                    rest.strip_prefix('/').map(|r| vec![r.to_owned()])
                }
            }
            Some(PathMatcher::Glob(parts)) => {
                // Captures are borrowed while backtracking; owned only once it matched.
                let mut caps: Vec<&str> = Vec::new();
                glob(parts, path, &mut caps).then(|| caps.into_iter().map(str::to_owned).collect())
            }
        }
    }
}

fn compile(pattern: &str) -> Vec<Glob> {
    let mut parts = Vec::new();
    let mut lit = String::new();
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '*' {
            if !lit.is_empty() {
                parts.push(Glob::Lit(std::mem::take(&mut lit)));
            }
            if chars.peek() == Some(&'*') {
                chars.next();
                parts.push(Glob::DoubleStar);
            } else {
                parts.push(Glob::Star);
            }
        } else {
            lit.push(c);
        }
    }
    if !lit.is_empty() {
        parts.push(Glob::Lit(lit));
    }
    parts
}

/// Backtracking glob match; patterns are short and fixed at startup, so this stays cheap.
fn glob<'t>(parts: &[Glob], text: &'t str, caps: &mut Vec<&'t str>) -> bool {
    match parts.split_first() {
        None => text.is_empty(),
        Some((Glob::Lit(l), rest)) => text
            .strip_prefix(l.as_str())
            .is_some_and(|t| glob(rest, t, caps)),
        Some((wild, rest)) => {
            let limit = match wild {
                Glob::Star => text.find('/').unwrap_or(text.len()),
                _ => text.len(),
            };
            // Prefer the longest match, as shells do.
            for end in (0..=limit).rev() {
                if !text.is_char_boundary(end) {
                    continue;
                }
                caps.push(&text[..end]);
                if glob(rest, &text[end..], caps) {
                    return true;
                }
                caps.pop();
            }
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(path: PathPattern) -> Matcher {
        Matcher::new(&RouteMatch {
            path: Some(path),
            ..RouteMatch::default()
        })
    }

    fn caps(m: &Matcher, uri: &str) -> Option<Vec<String>> {
        m.matches(&Request::get(uri).body(()).unwrap())
    }

    #[test]
    fn paths() {
        let exact = m(PathPattern::Exact("/health".into()));
        assert_eq!(caps(&exact, "/health"), Some(vec![]));
        assert_eq!(caps(&exact, "/health/x"), None);
        let prefix = m(PathPattern::Prefix("/api".into()));
        assert_eq!(caps(&prefix, "/api"), Some(vec!["".into()]));
        assert_eq!(caps(&prefix, "/api/v1/x?q=1"), Some(vec!["v1/x".into()]));
        assert_eq!(caps(&prefix, "/apix"), None);
        let glob = m(PathPattern::Glob("/assets/*.js".into()));
        assert_eq!(caps(&glob, "/assets/app.js"), Some(vec!["app".into()]));
        assert_eq!(caps(&glob, "/assets/a/b.js"), None);
        let deep = m(PathPattern::Glob("/docs/**/*.md".into()));
        assert_eq!(
            caps(&deep, "/docs/a/b/c.md"),
            Some(vec!["a/b".into(), "c".into()])
        );
    }

    #[test]
    fn methods_headers_query() {
        let m = Matcher::new(&RouteMatch {
            path: None,
            methods: vec![Method::POST],
            headers: vec![(HeaderName::from_static("x-debug"), Some("1".into()))],
            query: vec![("v".into(), Some("2".into())), ("flag".into(), None)],
        });
        let req = |method: Method, h: &str, uri: &str| {
            Request::builder()
                .method(method)
                .uri(uri)
                .header("x-debug", h)
                .body(())
                .unwrap()
        };
        assert!(m.matches(&req(Method::POST, "1", "/?v=2&flag")).is_some());
        assert!(m.matches(&req(Method::GET, "1", "/?v=2&flag")).is_none());
        assert!(m.matches(&req(Method::POST, "0", "/?v=2&flag")).is_none());
        assert!(m.matches(&req(Method::POST, "1", "/?v=3&flag")).is_none());
        assert!(m.matches(&req(Method::POST, "1", "/?v=2")).is_none());
    }
}

//! Values with placeholders (`{client_ip}`, `{host}`, `{path}`, `{1}`...), parsed once at
//! startup and filled per request without re-parsing.

/// Splits `text` into literal runs and `{name}` placeholders, mapping each name with
/// `placeholder`; a `{` without a closing `}` is literal text. The one scanner for every
/// template syntax (header values, redirect targets, rewrite rules).
pub fn scan<P>(
    text: &str,
    literal: impl Fn(String) -> P,
    mut placeholder: impl FnMut(&str) -> Result<P, String>,
) -> Result<Vec<P>, String> {
    let mut parts = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}') else {
            break;
        };
        if open > 0 {
            parts.push(literal(rest[..open].to_owned()));
        }
        parts.push(placeholder(&rest[open + 1..open + close])?);
        rest = &rest[open + close + 1..];
    }
    if !rest.is_empty() {
        parts.push(literal(rest.to_owned()));
    }
    Ok(parts)
}

/// One piece of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    ClientIp,
    Host,
    RequestId,
    Path,
    Query,
    Capture(usize),
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

/// What a template can refer to for one request.
pub struct Vars<'a> {
    /// The client address, as text.
    pub client_ip: Option<&'a str>,
    /// The request host (lowercase, no port).
    pub host: Option<&'a str>,
    /// The request id.
    pub request_id: &'a str,
    /// The request path (as received).
    pub path: &'a str,
    /// The query string, without `?`.
    pub query: Option<&'a str>,
    /// Route captures, `{1}` first.
    pub captures: &'a [String],
}

impl Template {
    /// Parses `text`; unknown placeholders are an error naming them. The loader validated
    /// the config already, so an error here means a programming mistake, not user input.
    pub fn parse(text: &str) -> Result<Template, String> {
        let parts = scan(text, Part::Literal, |name| {
            Ok(match name {
                "client_ip" => Part::ClientIp,
                "host" => Part::Host,
                "request_id" => Part::RequestId,
                "path" => Part::Path,
                "query" => Part::Query,
                n => match n.parse::<usize>() {
                    Ok(i) if (1..=9).contains(&i) => Part::Capture(i),
                    _ => return Err(format!("unknown placeholder {{{n}}}")),
                },
            })
        })?;
        Ok(Template { parts })
    }

    /// True when the template needs no per-request data.
    pub fn is_literal(&self) -> bool {
        self.parts.iter().all(|p| matches!(p, Part::Literal(_)))
    }

    /// True when the template uses `{request_id}`.
    pub fn uses_request_id(&self) -> bool {
        self.parts.contains(&Part::RequestId)
    }

    /// True when the template uses `{host}`.
    pub fn uses_host(&self) -> bool {
        self.parts.contains(&Part::Host)
    }

    /// True when the template uses `{client_ip}`.
    pub fn uses_client_ip(&self) -> bool {
        self.parts.contains(&Part::ClientIp)
    }

    /// Fills the template. `{query}` becomes `?q` or nothing.
    pub fn render(&self, vars: &Vars<'_>) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Literal(s) => out.push_str(s),
                Part::ClientIp => out.push_str(vars.client_ip.unwrap_or("-")),
                Part::Host => out.push_str(vars.host.unwrap_or("")),
                Part::RequestId => out.push_str(vars.request_id),
                Part::Path => out.push_str(vars.path),
                Part::Query => {
                    if let Some(q) = vars.query.filter(|q| !q.is_empty()) {
                        out.push('?');
                        out.push_str(q);
                    }
                }
                Part::Capture(i) => {
                    out.push_str(vars.captures.get(i - 1).map_or("", String::as_str))
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_placeholder() {
        let t =
            Template::parse("https://{host}/new/{1}/{2}{query}#{request_id}-{client_ip}").unwrap();
        let caps = vec!["a".to_owned(), "b/c".to_owned()];
        let vars = Vars {
            client_ip: Some("10.0.0.1"),
            host: Some("example.com"),
            request_id: "r1",
            path: "/old/a/b/c",
            query: Some("x=1"),
            captures: &caps,
        };
        assert_eq!(
            t.render(&vars),
            "https://example.com/new/a/b/c?x=1#r1-10.0.0.1"
        );
        assert!(t.uses_host() && t.uses_client_ip() && t.uses_request_id());
        let plain = Template::parse("/new/{1}{query}").unwrap();
        assert!(!plain.uses_host() && !plain.uses_client_ip() && !plain.uses_request_id());
        assert!(Template::parse("{nope}").is_err());
        assert!(Template::parse("plain").unwrap().is_literal());
    }
}

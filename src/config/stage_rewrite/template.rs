//! Rewrite templates: `{R:n}`, `{C:n}` and server variables, parsed by one parser for the
//! loader and the stage.

/// One piece of a rewrite template (`url`, a condition's `input`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplatePart {
    /// Text copied as is.
    Literal(String),
    /// `{R:n}`: a group of the rule's match.
    Rule(usize),
    /// `{C:n}`: a group of the last pattern condition that matched.
    Cond(usize),
    /// `{HTTP_HOST}`: the host, lowercase, without port.
    Host,
    /// `{REQUEST_URI}`: the original path and query.
    RequestUri,
    /// `{URL}`: the current path (after earlier rewrites).
    Url,
    /// `{QUERY_STRING}`: the current query, without `?`.
    Query,
    /// `{REQUEST_FILENAME}`: the current path mapped under the site root.
    Filename,
    /// `{HTTPS}`: "on" or "off".
    Https,
    /// `{REMOTE_ADDR}`: the client IP.
    RemoteAddr,
    /// `{HTTP_<NAME>}`: a request header (`_` stands for `-`).
    Header(http::HeaderName),
}

const HELP: &str = "use {R:0}..{R:9}, {C:0}..{C:9}, {HTTP_HOST}, {REQUEST_URI}, {URL}, \
    {QUERY_STRING}, {REQUEST_FILENAME}, {HTTPS}, {REMOTE_ADDR} or {HTTP_<HEADER>}";

/// Parses a template; the one parser for the loader (which reports its errors) and the
/// stage (which then cannot fail). A `{` without a closing `}` is literal text.
pub fn parse_template(text: &str) -> Result<Vec<TemplatePart>, String> {
    crate::pipeline::template::scan(text, TemplatePart::Literal, |name| {
        let backref = |n: &str| {
            n.parse::<usize>()
                .ok()
                .filter(|n| *n <= 9)
                .ok_or_else(|| format!("{{{name}}}: back-references are 0 to 9"))
        };
        Ok(match name {
            "HTTP_HOST" => TemplatePart::Host,
            "REQUEST_URI" => TemplatePart::RequestUri,
            "URL" => TemplatePart::Url,
            "QUERY_STRING" => TemplatePart::Query,
            "REQUEST_FILENAME" => TemplatePart::Filename,
            "HTTPS" => TemplatePart::Https,
            "REMOTE_ADDR" => TemplatePart::RemoteAddr,
            _ => match (name.strip_prefix("R:"), name.strip_prefix("C:")) {
                (Some(n), _) => TemplatePart::Rule(backref(n)?),
                (_, Some(n)) => TemplatePart::Cond(backref(n)?),
                _ => name
                    .strip_prefix("HTTP_")
                    .filter(|h| !h.is_empty())
                    .map(|h| h.replace('_', "-").to_ascii_lowercase())
                    .and_then(|h| http::HeaderName::from_bytes(h.as_bytes()).ok())
                    .map(TemplatePart::Header)
                    .ok_or_else(|| format!("unknown server variable {{{name}}}: {HELP}"))?,
            },
        })
    })
}

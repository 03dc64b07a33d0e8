//! Middleware stages (`[[sites.use]]`, a route's `use`), the `type` key shared with
//! handlers, header names and values, and the placeholders values may use.

use http::{HeaderName, HeaderValue};

use super::error::{Diagnostic, Origin};
use super::reader::{suggest, Field, Section};
use super::site_model::{HeaderRules, HeadersStage, StageConfig};
use super::tree::Value;

/// The kinds a `type` key may name: those built, and those of DESIGN §1.3 still to come.
pub(crate) struct Kinds {
    /// "stage" or "handler", in messages.
    pub what: &'static str,
    /// Names that can be used.
    pub available: &'static [&'static str],
    /// Names that are planned but not built yet.
    pub later: &'static [&'static str],
    /// Said when `type` is missing.
    pub missing: &'static str,
}

/// Stage types.
pub(crate) const STAGES: Kinds = Kinds {
    what: "stage",
    available: &[
        "headers",
        "forwarded_headers",
        "ip_filter",
        "basic_auth",
        "cors",
        "rewrite",
        "compress",
        "error_pages",
        "rate_limit",
        "request_filter",
    ],
    later: &["cache"],
    missing: "every stage needs a type, e.g. type = \"headers\"",
};

impl Kinds {
    /// Reads the table's `type`: the name when it is available; otherwise the problem is
    /// recorded and the table's other keys are dropped unread.
    pub fn read(&self, t: &mut Section) -> Option<&'static str> {
        let kind = t
            .require("type", self.missing)
            .and_then(|f| t.check(&f, self.parse(&f)));
        if kind.is_none() {
            t.skip_rest();
        }
        kind
    }

    fn parse(&self, f: &Field) -> Result<&'static str, String> {
        let name = f.string()?;
        let known = |list: &'static [&'static str]| {
            list.iter().copied().find(|k| k.eq_ignore_ascii_case(&name))
        };
        if let Some(kind) = known(self.available) {
            return Ok(kind);
        }
        let what = self.what;
        if let Some(later) = known(self.later) {
            return Err(format!("{what} \"{later}\" is not available yet"));
        }
        let all: Vec<&str> = self.available.iter().chain(self.later).copied().collect();
        Err(match suggest(&name.to_ascii_lowercase(), &all) {
            Some(near) => format!("unknown {what} {name:?}, did you mean \"{near}\"?"),
            None => format!(
                "unknown {what} {name:?} (available: {})",
                self.available.join(", ")
            ),
        })
    }
}

/// The stages listed under `key` (`use`) of a site or route, in order; `example` shows the
/// array in messages.
pub(crate) fn stages(t: &mut Section, example: &str) -> Vec<StageConfig> {
    t.tables("use", example, stage)
        .into_iter()
        .flatten()
        .collect()
}

fn stage(t: &mut Section) -> Option<StageConfig> {
    match STAGES.read(t)? {
        "headers" => Some(StageConfig::Headers(HeadersStage {
            request: rules(t, "request"),
            response: rules(t, "response"),
        })),
        "forwarded_headers" => Some(StageConfig::ForwardedHeaders(
            super::stage_forwarded_headers::forwarded_headers(t),
        )),
        "ip_filter" => Some(StageConfig::IpFilter(super::stage_ip_filter::ip_filter(t))),
        "basic_auth" => Some(StageConfig::BasicAuth(super::stage_basic_auth::read(t))),
        "cors" => Some(StageConfig::Cors(super::stage_cors::read(t))),
        "rewrite" => Some(StageConfig::Rewrite(super::stage_rewrite::rewrite(t))),
        "compress" => Some(StageConfig::Compress(super::stage_compress::compress(t))),
        "error_pages" => Some(StageConfig::ErrorPages(
            super::stage_error_pages::error_pages(t),
        )),
        "rate_limit" => Some(StageConfig::RateLimit(super::stage_rate_limit::rate_limit(
            t,
        ))),
        "request_filter" => Some(StageConfig::RequestFilter(
            super::stage_request_filter::request_filter(t),
        )),
        other => unreachable!("stage {other} is listed but not read"),
    }
}

/// How header rules are described in messages.
const RULES: &str =
    "a table like { set = { \"x-frame-options\" = \"DENY\" }, remove = [\"server\"] }";
/// How a header map is described in messages.
const HEADER_MAP: &str = "a table of header names and values, like { \"x-a\" = \"1\" }";

/// `request` or `response` of a headers stage (or a proxy's `request_headers` and
/// `response_headers`): `set`, `add` and `remove`.
pub(crate) fn rules(t: &mut Section, key: &'static str) -> HeaderRules {
    let Some(mut r) = t.take(key).and_then(|f| t.table(f, RULES)) else {
        return HeaderRules::default();
    };
    let rules = HeaderRules {
        set: header_templates(&mut r, "set", false),
        add: header_templates(&mut r, "add", true),
        remove: r.read("remove", Vec::new(), |f| {
            let mut names: Vec<HeaderName> = Vec::new();
            for item in f.items()? {
                let name = header_name(&item.string()?)?;
                if names.contains(&name) {
                    return Err(format!("{:?} is listed twice", name.as_str()));
                }
                names.push(name);
            }
            Ok(names)
        }),
    };
    r.close_into(t);
    rules
}

/// The placeholders header values may use.
const HEADER_PLACEHOLDERS: [&str; 3] = ["client_ip", "host", "request_id"];

/// `set` or `add`: header names and value templates; with `several`, a value may also be an
/// array of values (each added).
fn header_templates(
    t: &mut Section,
    key: &'static str,
    several: bool,
) -> Vec<(HeaderName, String)> {
    let mut pairs = Vec::new();
    for (name, value) in header_map(t, key) {
        let values = match &value.node.value {
            Value::Array(_) if several => value.items().unwrap_or_default(),
            _ => vec![value],
        };
        for v in values {
            let checked = v.string().and_then(|text| {
                check_placeholders(&text, &HEADER_PLACEHOLDERS, None, &header_placeholder_help)?;
                header_value(&text).map(|_| text)
            });
            pairs.extend(t.check(&v, checked).map(|text| (name.clone(), text)));
        }
    }
    pairs
}

fn header_placeholder_help(_: usize) -> String {
    "header values may use {client_ip}, {host} and {request_id}".to_owned()
}

/// A table of header names to values under `key`, the names checked; the values are left
/// to the caller. A bad name is reported and its entry left out.
pub(crate) fn header_map(t: &mut Section, key: &'static str) -> Vec<(HeaderName, Field)> {
    let Some(f) = t.take(key) else {
        return Vec::new();
    };
    let mut map = Vec::new();
    for (key, key_at, value) in t.check(&f, f.entries(HEADER_MAP)).unwrap_or_default() {
        match header_name(&key) {
            Ok(name) => map.push((name, value)),
            Err(message) => t.report(key_problem(&value, key_at, message)),
        }
    }
    map
}

/// A problem with the key of an entry, placed where the key was written.
pub(crate) fn key_problem(value: &Field, key_at: Origin, message: String) -> Diagnostic {
    Diagnostic::new(key_at, value.path.clone(), message)
}

/// A header name (any case; stored lowercase).
pub(crate) fn header_name(text: &str) -> Result<HeaderName, String> {
    HeaderName::from_bytes(text.as_bytes()).map_err(|_| {
        format!("{text:?} is not a valid header name (letters, digits and !#$%&'*+-.^_`|~ only)")
    })
}

/// A header value: visible ASCII, spaces and tabs (no line breaks or other controls).
pub(crate) fn header_value(text: &str) -> Result<HeaderValue, String> {
    HeaderValue::from_str(text).map_err(|_| {
        format!("{text:?} is not a valid header value (no line breaks or control characters)")
    })
}

/// Checks every `{name}` of a template: one of `names`, or `{1}`..`{n}` with `captures` =
/// `Some(n)`. `help` says what may be used, given the index of a capture out of range (0
/// for an unknown name). A `{` without a closing `}` is literal text.
pub(crate) fn check_placeholders(
    text: &str,
    names: &[&str],
    captures: Option<usize>,
    help: &dyn Fn(usize) -> String,
) -> Result<(), String> {
    crate::pipeline::template::scan(
        text,
        |_| (),
        |name| {
            if names.contains(&name) {
                return Ok(());
            }
            match (name.parse::<usize>(), captures) {
                (Ok(index @ 1..=9), Some(captures)) if index > captures => Err(help(index)),
                (Ok(1..=9), Some(_)) => Ok(()),
                _ => Err(format!("unknown placeholder {{{name}}}: {}", help(0))),
            }
        },
    )
    .map(drop)
}

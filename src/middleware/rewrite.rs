//! `rewrite`: IIS URL Rewrite style rules. Each rule matches a regex on the path, checks its
//! conditions on server variables, then rewrites the request internally, redirects, answers
//! with a status, or aborts. Rewrites chain into later rules until one stops processing.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::fs::FileType;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use http::uri::PathAndQuery;
use http::{HeaderValue, Request, Response, StatusCode, Uri};
use regex::Regex;

use crate::body::{self, Body};
use crate::config::{
    parse_template, rewrite_regex, ConditionTest, RewriteAction, RewriteCondition, RewriteRule,
    RewriteStage, TemplatePart as Part,
};
use crate::pipeline::{
    client_ip, error_response, request_host, ConnInfo, HandlerFuture, Middleware, Next,
};

/// Rewritten URLs longer than this are refused (rules that repeat `{R:0}` could otherwise
/// grow a URL exponentially as they chain).
const MAX_URL: usize = 16 * 1024;

/// A template parsed once (the loader checked it already).
struct Template(Vec<Part>);

impl Template {
    fn parse(text: &str) -> Result<Template, String> {
        parse_template(text).map(Template)
    }

    fn render(&self, st: &State<'_>, rule: &[String], cond: &[String]) -> String {
        let mut out = String::new();
        fn group(list: &[String], n: usize) -> &str {
            list.get(n).map_or("", String::as_str)
        }
        for part in &self.0 {
            match part {
                Part::Literal(s) => out.push_str(s),
                Part::Rule(n) => out.push_str(group(rule, *n)),
                Part::Cond(n) => out.push_str(group(cond, *n)),
                Part::Host => out.push_str(st.host.as_deref().unwrap_or("")),
                Part::RequestUri => out.push_str(st.request_uri),
                Part::Url => out.push_str(st.path()),
                Part::Query => out.push_str(st.query().unwrap_or("")),
                Part::Filename => {
                    if let Some(f) = filename(st.root, st.path()) {
                        out.push_str(&f.to_string_lossy());
                    }
                }
                Part::Https => out.push_str(if st.https { "on" } else { "off" }),
                Part::RemoteAddr => {
                    if let Some(ip) = st.remote {
                        let _ = write!(out, "{ip}");
                    }
                }
                Part::Header(name) => {
                    let values = st.headers.get_all(name).iter();
                    for (i, v) in values.filter_map(|v| v.to_str().ok()).enumerate() {
                        if i > 0 {
                            out.push(',');
                        }
                        out.push_str(v);
                    }
                }
            }
        }
        out
    }
}

/// The path mapped under the site root: percent-decoded, with `.`, `..`, backslashes and
/// NULs refused (`None`), so a file check never looks outside the root.
fn filename(root: &Path, path: &str) -> Option<PathBuf> {
    let decoded = percent_encoding::percent_decode_str(path)
        .decode_utf8()
        .ok()?;
    let mut out = root.to_path_buf();
    for seg in decoded.split('/').filter(|s| !s.is_empty()) {
        if seg == "." || seg == ".." || seg.contains(['\\', '\0']) || seg.contains(':') {
            return None;
        }
        out.push(seg);
    }
    Some(out)
}

/// `input` when it names something under `root` without `..`: file checks never probe
/// paths elsewhere, whatever a header or a refused `{REQUEST_FILENAME}` (empty) says.
fn inside<'a>(root: &Path, input: &'a str) -> Option<&'a Path> {
    let path = Path::new(input);
    let parent = path
        .components()
        .any(|c| matches!(c, std::path::Component::ParentDir));
    (!parent && path.starts_with(root)).then_some(path)
}

/// The request as the rules see it, updated by each rewrite.
struct State<'a> {
    root: &'a Path,
    /// Only copied out of the request when some template uses `{HTTP_HOST}`.
    host: Option<String>,
    request_uri: &'a str,
    /// The current path and query: borrowed from the request until a rule rewrites it, so
    /// requests no rule rewrites copy nothing, and `Owned` means the request was rewritten.
    url: Cow<'a, str>,
    https: bool,
    /// The client IP (after `forwarded_headers`, the one the trusted proxies reported).
    remote: Option<IpAddr>,
    headers: &'a http::HeaderMap,
}

impl State<'_> {
    fn path(&self) -> &str {
        self.url.split_once('?').map_or(&self.url, |(path, _)| path)
    }

    fn query(&self) -> Option<&str> {
        self.url.split_once('?').map(|(_, query)| query)
    }
}

enum Test {
    Pattern(Regex),
    IsFile(bool),
    IsDirectory(bool),
}

struct Condition {
    input: Template,
    test: Test,
    negate: bool,
}

enum Action {
    Rewrite(Template, bool),
    Redirect(Template, StatusCode, bool),
    Custom(StatusCode),
    Abort,
    None,
}

struct Rule {
    name: String,
    regex: Regex,
    negate: bool,
    conditions: Vec<Condition>,
    match_any: bool,
    action: Action,
    stop: bool,
}

/// The `rewrite` stage.
pub struct Rewrite {
    rules: Arc<[Rule]>,
    root: Arc<Path>,
    /// Some template uses `{HTTP_HOST}`.
    needs_host: bool,
}

impl Rewrite {
    /// Compiles the rules; `root` is the site's static root, for `{REQUEST_FILENAME}`.
    pub fn new(cfg: &RewriteStage, root: &Path) -> Result<Rewrite, String> {
        let rules = cfg
            .rules
            .iter()
            .enumerate()
            .map(|(i, r)| compile(i, r))
            .collect::<Result<Vec<_>, _>>()?;
        let needs_host = rules.iter().any(|r| {
            let url = match &r.action {
                Action::Rewrite(url, _) | Action::Redirect(url, ..) => Some(url),
                _ => None,
            };
            let inputs = r.conditions.iter().map(|c| &c.input);
            inputs.chain(url).any(|t| t.0.contains(&Part::Host))
        });
        Ok(Rewrite {
            rules: rules.into(),
            root: root.into(),
            needs_host,
        })
    }
}

fn compile(i: usize, r: &RewriteRule) -> Result<Rule, String> {
    let condition = |c: &RewriteCondition| {
        Ok::<_, String>(Condition {
            input: Template::parse(&c.input)?,
            test: match &c.test {
                ConditionTest::Pattern(p) => Test::Pattern(rewrite_regex(p, r.ignore_case)?),
                ConditionTest::IsFile(b) => Test::IsFile(*b),
                ConditionTest::IsDirectory(b) => Test::IsDirectory(*b),
            },
            negate: c.negate,
        })
    };
    let action = match &r.action {
        RewriteAction::Rewrite {
            url,
            append_query_string,
        } => Action::Rewrite(Template::parse(url)?, *append_query_string),
        RewriteAction::Redirect {
            url,
            status,
            append_query_string,
        } => Action::Redirect(Template::parse(url)?, *status, *append_query_string),
        RewriteAction::CustomResponse { status } => Action::Custom(*status),
        RewriteAction::Abort => Action::Abort,
        RewriteAction::None => Action::None,
    };
    Ok(Rule {
        name: r.name.clone().unwrap_or_else(|| format!("rules[{i}]")),
        regex: rewrite_regex(&r.pattern, r.ignore_case)?,
        negate: r.negate,
        conditions: r
            .conditions
            .iter()
            .map(condition)
            .collect::<Result<_, _>>()?,
        match_any: r.match_any,
        action,
        stop: r.stop_processing,
    })
}

/// The groups of a match, `{R:0}`/`{C:0}` first (unmatched groups are empty).
fn groups(regex: &Regex, text: &str) -> Option<Vec<String>> {
    let caps = regex.captures(text)?;
    Some(
        caps.iter()
            .map(|m| m.map_or_else(String::new, |m| m.as_str().to_owned()))
            .collect(),
    )
}

/// The last file check of a request and its answer (`None`: nothing there). Rules often
/// check one `{REQUEST_FILENAME}` several times (not a directory, not a file, in one rule
/// or in several), and each check is a trip to the blocking pool.
type LastStat = Option<(String, Option<FileType>)>;

/// What `input` names under the site root, asking the file system only when the previous
/// check was not for the same input.
async fn file_type(root: &Path, input: String, last: &mut LastStat) -> Option<FileType> {
    if let Some((_, kind)) = last.as_ref().filter(|(seen, _)| *seen == input) {
        return *kind;
    }
    let kind = match inside(root, &input) {
        Some(path) => tokio::fs::metadata(path).await.ok().map(|m| m.file_type()),
        None => None,
    };
    *last = Some((input, kind));
    kind
}

/// Evaluates the conditions of `rule`: whether they hold, and the groups of the last
/// pattern condition that matched (`{C:n}`).
async fn conditions(
    rule: &Rule,
    st: &State<'_>,
    r: &[String],
    last_stat: &mut LastStat,
) -> (bool, Vec<String>) {
    let mut c_groups = Vec::new();
    for cond in &rule.conditions {
        let input = cond.input.render(st, r, &c_groups);
        let hit = match &cond.test {
            Test::Pattern(re) => match groups(re, &input) {
                Some(g) if !cond.negate => {
                    c_groups = g;
                    true
                }
                found => found.is_some() != cond.negate,
            },
            Test::IsFile(want) | Test::IsDirectory(want) => {
                let is_dir = matches!(cond.test, Test::IsDirectory(_));
                let kind = file_type(st.root, input, last_stat).await;
                let found = kind.is_some_and(|t| if is_dir { t.is_dir() } else { t.is_file() });
                (found == *want) != cond.negate
            }
        };
        if hit && rule.match_any {
            return (true, c_groups);
        }
        if !hit && !rule.match_any {
            return (false, c_groups);
        }
    }
    (rule.conditions.is_empty() || !rule.match_any, c_groups)
}

/// `url` with the original query appended when asked: `target?their&ours`.
fn with_query(url: String, query: Option<&str>, append: bool) -> String {
    match query.filter(|q| append && !q.is_empty()) {
        Some(q) if url.contains('?') => format!("{url}&{q}"),
        Some(q) => format!("{url}?{q}"),
        None => url,
    }
}

/// A response whose body fails at once: the protocol layer then closes the connection
/// (HTTP/1.1) or resets the stream (HTTP/2) instead of completing a response.
fn abort() -> Response<Body> {
    use http_body_util::BodyExt;
    let failing = futures_util::stream::once(async {
        Err::<http_body::Frame<bytes::Bytes>, body::BoxError>("aborted by a rewrite rule".into())
    });
    let mut resp = Response::new(http_body_util::StreamBody::new(failing).boxed_unsync());
    resp.headers_mut()
        .insert(http::header::CONNECTION, HeaderValue::from_static("close"));
    resp
}

impl Middleware for Rewrite {
    fn handle(&self, req: Request<Body>, next: Next) -> HandlerFuture {
        let rules = Arc::clone(&self.rules);
        let root = Arc::clone(&self.root);
        let needs_host = self.needs_host;
        Box::pin(async move {
            let https = ConnInfo::of(&req).is_some_and(|c| c.tls.is_some());
            let request_uri = req.uri().path_and_query().map_or("/", PathAndQuery::as_str);
            let mut st = State {
                root: &root,
                host: needs_host.then(|| request_host(&req)).flatten(),
                request_uri,
                url: Cow::Borrowed(request_uri),
                https,
                remote: client_ip(&req),
                headers: req.headers(),
            };
            let mut last_stat = None;
            for rule in rules.iter() {
                let r = match (groups(&rule.regex, st.path()), rule.negate) {
                    (Some(g), false) => g,
                    (None, true) => vec![st.path().to_owned()],
                    _ => continue,
                };
                let (ok, c) = conditions(rule, &st, &r, &mut last_stat).await;
                if !ok {
                    continue;
                }
                tracing::debug!(rule = %rule.name, path = %st.path(), "rewrite rule applies");
                match &rule.action {
                    Action::Rewrite(url, append) => {
                        let url = with_query(url.render(&st, &r, &c), st.query(), *append);
                        let url = if url.starts_with('/') {
                            url
                        } else {
                            format!("/{url}")
                        };
                        if url.len() > MAX_URL {
                            return error_response(StatusCode::URI_TOO_LONG);
                        }
                        st.url = Cow::Owned(url);
                    }
                    Action::Redirect(url, status, append) => {
                        let query = req.uri().query();
                        let url = with_query(url.render(&st, &r, &c), query, *append);
                        let Ok(location) = HeaderValue::from_str(&url) else {
                            return error_response(StatusCode::BAD_REQUEST);
                        };
                        let mut resp = Response::new(body::empty());
                        *resp.status_mut() = *status;
                        resp.headers_mut().insert(http::header::LOCATION, location);
                        return resp;
                    }
                    Action::Custom(status) => return error_response(*status),
                    Action::Abort => return abort(),
                    Action::None => {}
                }
                if rule.stop {
                    break;
                }
            }
            let Cow::Owned(target) = st.url else {
                return next.run(req).await;
            };
            let (mut parts, body) = req.into_parts();
            let mut uri = parts.uri.into_parts();
            uri.path_and_query = match PathAndQuery::try_from(target) {
                Ok(pq) => Some(pq),
                Err(_) => return error_response(StatusCode::BAD_REQUEST),
            };
            parts.uri = match Uri::from_parts(uri) {
                Ok(u) => u,
                Err(_) => return error_response(StatusCode::BAD_REQUEST),
            };
            next.run(Request::from_parts(parts, body)).await
        })
    }
}

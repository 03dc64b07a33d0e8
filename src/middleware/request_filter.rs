//! `request_filter`: IIS request filtering. Refuses, before any handler runs, requests whose
//! URL is too long, whose method is denied, whose path is escaped twice (a common way to
//! slip a `..` or a hidden name past a filter that decodes once), or whose path names a
//! hidden segment (`.git`) or extension (`.env`).
//!
//! Everything is judged from the path as sent: lengths on the raw text, names on the path
//! decoded once and split on `/` and `\` (so `/%2Egit/`, `/a%2F.git` and `/.GIT` are all
//! `.git`), compared case-insensitively (Windows and macOS file systems are).

use http::{Request, StatusCode};
use percent_encoding::percent_decode_str;

use crate::body::Body;
use crate::config::RequestFilterStage;
use crate::pipeline::{error_response, HandlerFuture, Middleware, Next};

/// The `request_filter` stage: its options as loaded; names and extensions are compared
/// ignoring ASCII case, so nothing needs preparing.
pub struct RequestFilter {
    cfg: RequestFilterStage,
}

impl RequestFilter {
    /// The stage for `cfg`.
    pub fn new(cfg: &RequestFilterStage) -> RequestFilter {
        RequestFilter { cfg: cfg.clone() }
    }

    /// Why `req` is refused, as a status, or `None` to let it through.
    fn verdict<B>(&self, req: &Request<B>) -> Option<StatusCode> {
        if self.cfg.deny_methods.contains(req.method()) {
            return Some(StatusCode::METHOD_NOT_ALLOWED);
        }
        let path = req.uri().path();
        let query = req.uri().query().unwrap_or("");
        if path.len() > self.cfg.max_url_length || query.len() > self.cfg.max_query_length {
            return Some(StatusCode::URI_TOO_LONG);
        }
        let decoded = percent_decode_str(path).decode_utf8_lossy();
        if self.cfg.reject_double_escaping && has_escape(&decoded) {
            return Some(StatusCode::BAD_REQUEST);
        }
        self.hidden(&decoded).then_some(StatusCode::NOT_FOUND)
    }

    /// Whether a segment of the decoded path is denied, or the last one has a denied
    /// extension.
    fn hidden(&self, decoded: &str) -> bool {
        let mut segments = decoded.split(['/', '\\']).filter(|s| !s.is_empty());
        let denied = |s: &str| {
            self.cfg
                .deny_path_segments
                .iter()
                .any(|d| d.eq_ignore_ascii_case(s))
        };
        if segments.clone().any(denied) {
            return true;
        }
        segments.next_back().is_some_and(|last| {
            self.cfg.deny_extensions.iter().any(|e| {
                last.len() >= e.len()
                    && last.as_bytes()[last.len() - e.len()..].eq_ignore_ascii_case(e.as_bytes())
            })
        })
    }
}

/// Whether `text` still holds a `%XX` escape.
fn has_escape(text: &str) -> bool {
    text.as_bytes()
        .windows(3)
        .any(|w| w[0] == b'%' && w[1].is_ascii_hexdigit() && w[2].is_ascii_hexdigit())
}

impl Middleware for RequestFilter {
    fn handle(&self, req: Request<Body>, next: Next) -> HandlerFuture {
        match self.verdict(&req) {
            None => next.run(req),
            Some(status) => Box::pin(std::future::ready(error_response(status))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(path: &str, method: &str) -> Option<u16> {
        let cfg = RequestFilterStage {
            max_url_length: 32,
            max_query_length: 8,
            ..RequestFilterStage::default()
        };
        let req = Request::builder()
            .method(method)
            .uri(path)
            .body(())
            .unwrap();
        RequestFilter::new(&cfg).verdict(&req).map(|s| s.as_u16())
    }

    #[test]
    fn verdicts() {
        assert_eq!(status("/a/b.txt", "GET"), None);
        assert_eq!(status("/a/b.txt?x=1", "GET"), None);
        assert_eq!(status("/a", "TRACE"), Some(405));
        assert_eq!(status(&format!("/{}", "a".repeat(40)), "GET"), Some(414));
        assert_eq!(status("/a?0123456789", "GET"), Some(414));
        assert_eq!(status("/.git/config", "GET"), Some(404));
        assert_eq!(status("/x/.GIT", "GET"), Some(404));
        assert_eq!(status("/%2egit/HEAD", "GET"), Some(404));
        assert_eq!(status("/a%5c.git%5cHEAD", "GET"), Some(404));
        assert_eq!(status("/.gitignore", "GET"), None);
        assert_eq!(status("/site/.env", "GET"), Some(404));
        assert_eq!(status("/Web.Config", "GET"), Some(404));
        assert_eq!(status("/%252e%252e/x", "GET"), Some(400));
        assert_eq!(status("/100%25", "GET"), None);
    }

    #[test]
    fn options_in_any_case_match_paths_in_any_case() {
        let cfg = RequestFilterStage {
            deny_path_segments: vec!["Bin".into()],
            deny_extensions: vec![".ENV".into()],
            ..RequestFilterStage::default()
        };
        let filter = RequestFilter::new(&cfg);
        let verdict = |path: &str| {
            let req = Request::builder().uri(path).body(()).unwrap();
            filter.verdict(&req).map(|s| s.as_u16())
        };
        assert_eq!(verdict("/bIN/x"), Some(404));
        assert_eq!(verdict("/a/prod.Env"), Some(404));
        assert_eq!(verdict("/binary/prod.envy"), None);
    }
}

//! Conditional requests (RFC 9110 §13): revalidation answered with 304, lost updates with 412.
//!
//! The order of evaluation is the one in §13.2.2; getting it wrong makes caches keep stale
//! copies or refetch fresh ones.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::HeaderValue;

/// The precondition headers of one request, captured before the request is let go.
#[derive(Debug, Default, Clone)]
pub struct Preconditions {
    /// `If-Match` (all field lines joined).
    pub if_match: Option<HeaderValue>,
    /// `If-None-Match` (all field lines joined).
    pub if_none_match: Option<HeaderValue>,
    /// `If-Modified-Since`.
    pub if_modified_since: Option<HeaderValue>,
    /// `If-Unmodified-Since`.
    pub if_unmodified_since: Option<HeaderValue>,
}

/// What the preconditions say about answering normally.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Serve the representation (possibly a range of it).
    Proceed,
    /// 304: the client's copy is current.
    NotModified,
    /// 412: a precondition the client asked for does not hold.
    Failed,
}

/// Evaluates `pre` against the selected representation's strong `etag` (with quotes) and
/// modification time. `safe` is true for GET and HEAD.
pub fn evaluate(pre: &Preconditions, safe: bool, etag: &[u8], modified: SystemTime) -> Outcome {
    let modified = whole_seconds(modified);
    if let Some(value) = &pre.if_match {
        if !matches_list(value.as_bytes(), etag, Compare::Strong) {
            return Outcome::Failed;
        }
    } else if let Some(since) = pre.if_unmodified_since.as_ref().and_then(date) {
        if modified > since {
            return Outcome::Failed;
        }
    }
    if let Some(value) = &pre.if_none_match {
        if matches_list(value.as_bytes(), etag, Compare::Weak) {
            return if safe {
                Outcome::NotModified
            } else {
                Outcome::Failed
            };
        }
    } else if let Some(since) = pre.if_modified_since.as_ref().and_then(date) {
        if safe && modified <= since {
            return Outcome::NotModified;
        }
    }
    Outcome::Proceed
}

/// How two entity tags are compared (RFC 9110 §8.8.3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compare {
    /// Both must be strong and identical.
    Strong,
    /// Opaque parts identical, `W/` ignored.
    Weak,
}

/// Whether a field value (`*` or a list of entity tags) matches our strong `etag`.
/// A malformed list matches nothing, which is the safe reading for both If-Match (412) and
/// If-None-Match (serve normally).
pub fn matches_list(value: &[u8], etag: &[u8], compare: Compare) -> bool {
    if value.trim_ascii() == b"*" {
        return true;
    }
    let mut rest = value;
    loop {
        rest = rest.trim_ascii_start();
        while let Some(r) = rest.strip_prefix(b",") {
            rest = r.trim_ascii_start();
        }
        if rest.is_empty() {
            return false;
        }
        let Some((weak, tag, after)) = next_tag(rest) else {
            return false;
        };
        if tag == etag && (compare == Compare::Weak || !weak) {
            return true;
        }
        rest = after;
    }
}

/// Splits `W/"x"` or `"x"` off the front: (weak, tag with quotes, rest).
fn next_tag(s: &[u8]) -> Option<(bool, &[u8], &[u8])> {
    let (weak, s) = match s.strip_prefix(b"W/") {
        Some(r) => (true, r),
        None => (false, s),
    };
    if s.first() != Some(&b'"') {
        return None;
    }
    let close = s.iter().skip(1).position(|&b| b == b'"')? + 2;
    Some((weak, &s[..close], &s[close..]))
}

/// An HTTP-date; invalid dates make the header count as absent, as RFC 9110 requires.
pub fn date(value: &HeaderValue) -> Option<SystemTime> {
    httpdate::parse_http_date(value.to_str().ok()?).ok()
}

/// HTTP dates have one-second resolution; file times must be cut to match before comparing.
pub fn whole_seconds(t: SystemTime) -> SystemTime {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    UNIX_EPOCH + Duration::from_secs(secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ETAG: &[u8] = b"\"1f-abc\"";

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    /// A header value; a number stands for that many seconds after the epoch, as a date.
    fn hv(s: &str) -> Option<HeaderValue> {
        let text = match s.parse::<u64>() {
            Ok(secs) => httpdate::fmt_http_date(at(secs)),
            Err(_) => s.to_owned(),
        };
        Some(HeaderValue::from_str(&text).unwrap())
    }

    /// The outcome for a file last modified at 1_000_000.7 s with tag `ETAG`, given
    /// If-Match, If-Unmodified-Since, If-None-Match, If-Modified-Since ("" = absent).
    fn eval(headers: [&str; 4], safe: bool) -> Outcome {
        let [im, ius, inm, ims] = headers.map(|h| if h.is_empty() { None } else { hv(h) });
        let pre = Preconditions {
            if_match: im,
            if_unmodified_since: ius,
            if_none_match: inm,
            if_modified_since: ims,
        };
        // The sub-second part of the file time must not matter.
        evaluate(&pre, safe, ETAG, at(1_000_000) + Duration::from_millis(700))
    }

    #[test]
    fn tag_lists() {
        use Compare::*;
        assert!(matches_list(b"\"1f-abc\"", ETAG, Strong));
        assert!(matches_list(b"\"x\", \"1f-abc\"", ETAG, Strong));
        assert!(matches_list(b" ,\"x\",,W/\"1f-abc\"", ETAG, Weak));
        assert!(!matches_list(b"W/\"1f-abc\"", ETAG, Strong));
        assert!(matches_list(b"*", ETAG, Strong));
        assert!(matches_list(b" * ", ETAG, Weak));
        assert!(!matches_list(b"\"1f-ab\"", ETAG, Weak));
        assert!(!matches_list(b"1f-abc", ETAG, Weak));
        assert!(!matches_list(b"\"unterminated", ETAG, Weak));
        assert!(!matches_list(b"", ETAG, Weak));
        // A comma inside a tag belongs to the tag.
        assert!(!matches_list(b"\"a,\"1f-abc\"\"", ETAG, Weak));
    }

    #[test]
    fn evaluation_order_of_rfc_9110() {
        use Outcome::*;
        let cases: [([&str; 4], bool, Outcome); 22] = [
            (["", "", "", ""], true, Proceed),
            // If-Match: strong comparison, `*`, checked first.
            (["\"other\"", "", "", ""], true, Failed),
            (["W/\"1f-abc\"", "", "", ""], true, Failed),
            (["\"x\", \"1f-abc\"", "", "", ""], true, Proceed),
            (["*", "", "", ""], true, Proceed),
            (["\"other\"", "", "\"1f-abc\"", ""], true, Failed),
            // If-Unmodified-Since only without If-Match; invalid dates are ignored.
            (["\"1f-abc\"", "1", "", ""], true, Proceed),
            (["", "999999", "", ""], true, Failed),
            (["", "1000000", "", ""], true, Proceed),
            (["", "yesterday", "", ""], true, Proceed),
            // If-None-Match: weak comparison, lists, `*`; 412 for unsafe methods.
            (["", "", "W/\"1f-abc\", \"z\"", ""], true, NotModified),
            (["", "", "W/\"1f-abc\"", ""], false, Failed),
            (["", "", "*", ""], true, NotModified),
            (["", "", "\"nope\"", ""], true, Proceed),
            // If-Modified-Since only without If-None-Match, and only for GET/HEAD.
            (["", "", "\"nope\"", "2000000"], true, Proceed),
            (["", "", "", "1000000"], true, NotModified),
            (["", "", "", "2000000"], true, NotModified),
            (["", "", "", "1000000"], false, Proceed),
            (["", "", "", "999999"], true, Proceed),
            (["", "", "", "not a date"], true, Proceed),
            // A passing If-Match still lets If-None-Match answer 304.
            (["\"1f-abc\"", "", "\"1f-abc\"", ""], true, NotModified),
            (["", "1000000", "", "1000000"], true, NotModified),
        ];
        for (headers, safe, want) in cases {
            assert_eq!(eval(headers, safe), want, "{headers:?} safe={safe}");
        }
    }
}

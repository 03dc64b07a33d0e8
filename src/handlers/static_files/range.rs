//! Byte ranges (RFC 9110 §14): resumed downloads, media seeking, and their abuse.

use std::ops::Range;
use std::time::SystemTime;

use http::HeaderValue;

use super::conditional::{date, whole_seconds};

/// More ranges than this in one request are answered with the whole file: legitimate clients
/// ask for a few, and each range costs a seek and a part header.
pub const MAX_RANGES: usize = 16;

/// How to answer a request that carried a `Range` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ranges {
    /// Ignore the header and send the whole representation (200).
    Full,
    /// Send these half-open byte ranges (206), in the order asked for.
    Partial(Vec<Range<u64>>),
    /// No range overlaps the representation (416).
    Unsatisfiable,
}

/// Parses a `Range` value for a representation of `len` bytes.
///
/// A malformed header is ignored (RFC 9110 §14.2 lets us). Abuse is answered with the whole
/// file rather than 416: more than [`MAX_RANGES`] ranges, or ranges whose sizes add up to more
/// than the file (overlapping or repeated ranges, the "Apache killer" pattern), would make us
/// send more than the file itself; a 200 costs at most one copy and keeps honest but sloppy
/// clients working.
pub fn parse(value: &HeaderValue, len: u64) -> Ranges {
    let Some(specs) = value.to_str().ok().and_then(|s| strip_unit(s.trim_start())) else {
        return Ranges::Full;
    };
    let mut ranges = Vec::new();
    let mut total: u64 = 0;
    let mut count = 0;
    for spec in specs.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        count += 1;
        if count > MAX_RANGES {
            return Ranges::Full;
        }
        let Some(spec) = Spec::parse(spec) else {
            return Ranges::Full;
        };
        if let Some(range) = spec.resolve(len) {
            total = total.saturating_add(range.end - range.start);
            ranges.push(range);
        }
    }
    if count == 0 {
        return Ranges::Full;
    }
    if ranges.is_empty() {
        return Ranges::Unsatisfiable;
    }
    if total > len {
        return Ranges::Full;
    }
    Ranges::Partial(ranges)
}

fn strip_unit(s: &str) -> Option<&str> {
    let (unit, specs) = s.split_once('=')?;
    unit.trim().eq_ignore_ascii_case("bytes").then_some(specs)
}

/// One `range-spec`, before the representation length is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Spec {
    /// `first-last` (inclusive) or `first-`.
    From { first: u64, last: Option<u64> },
    /// `-n`: the last n bytes.
    Suffix(u64),
}

impl Spec {
    fn parse(s: &str) -> Option<Spec> {
        let (first, last) = s.split_once('-')?;
        let (first, last) = (first.trim(), last.trim());
        if first.is_empty() {
            return Some(Spec::Suffix(number(last)?));
        }
        let first = number(first)?;
        let last = if last.is_empty() {
            None
        } else {
            Some(number(last)?)
        };
        if last.is_some_and(|l| l < first) {
            return None;
        }
        Some(Spec::From { first, last })
    }

    /// The half-open range this spec selects, or `None` if it is unsatisfiable.
    fn resolve(self, len: u64) -> Option<Range<u64>> {
        match self {
            Spec::From { first, last } if first < len => {
                let end = last.map_or(len, |l| l.saturating_add(1).min(len));
                Some(first..end)
            }
            Spec::From { .. } => None,
            Spec::Suffix(0) => None,
            Spec::Suffix(n) if len > 0 => Some(len.saturating_sub(n)..len),
            Spec::Suffix(_) => None,
        }
    }
}

/// Digits only: `u64::from_str` would also take a `+` sign. Overflow is malformed.
fn number(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Whether `If-Range` lets the range request go ahead (RFC 9110 §13.1.5): it must name the
/// current representation exactly, by strong entity tag or by its exact modification date.
/// Otherwise the client's partial copy is stale and it gets the whole new file.
pub fn if_range_allows(if_range: Option<&HeaderValue>, etag: &[u8], modified: SystemTime) -> bool {
    let Some(value) = if_range else {
        return true;
    };
    let bytes = value.as_bytes().trim_ascii();
    if bytes.starts_with(b"\"") {
        return bytes == etag;
    }
    if bytes.starts_with(b"W/") {
        return false;
    }
    date(value).is_some_and(|d| d == whole_seconds(modified))
}

/// The `content-range` value for `range` of a `len`-byte representation.
pub fn content_range(range: &Range<u64>, len: u64) -> String {
    format!(
        "bytes {}-{}/{}",
        range.start,
        range.end.saturating_sub(1),
        len
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn p(s: &str, len: u64) -> Ranges {
        parse(&HeaderValue::from_str(s).unwrap(), len)
    }

    /// Half-open `(start, end)` pairs; arrays of one `Range` read like a mistake to clippy.
    fn part(r: &[(u64, u64)]) -> Ranges {
        Ranges::Partial(r.iter().map(|&(a, b)| a..b).collect())
    }

    #[test]
    fn single_ranges() {
        assert_eq!(p("bytes=0-499", 1000), part(&[(0, 500)]));
        assert_eq!(p("bytes=500-", 1000), part(&[(500, 1000)]));
        assert_eq!(p("bytes=-200", 1000), part(&[(800, 1000)]));
        assert_eq!(p("bytes=-2000", 1000), part(&[(0, 1000)]));
        assert_eq!(p("bytes=900-5000", 1000), part(&[(900, 1000)]));
        assert_eq!(p("bytes=999-999", 1000), part(&[(999, 1000)]));
        assert_eq!(p("Bytes = 1-2", 10), part(&[(1, 3)]));
        assert_eq!(p("bytes=0-18446744073709551615", 10), part(&[(0, 10)]));
    }

    #[test]
    fn lists() {
        assert_eq!(p("bytes=0-1, 5-6,-1", 10), part(&[(0, 2), (5, 7), (9, 10)]));
        assert_eq!(p("bytes=0-1,,", 10), part(&[(0, 2)]));
        // Unsatisfiable members of a list are dropped.
        assert_eq!(p("bytes=0-1,50-60", 10), part(&[(0, 2)]));
        assert_eq!(p("bytes=5-6,0-1", 10), part(&[(5, 7), (0, 2)]));
    }

    #[test]
    fn unsatisfiable() {
        assert_eq!(p("bytes=1000-", 1000), Ranges::Unsatisfiable);
        assert_eq!(p("bytes=1000-2000,3000-", 1000), Ranges::Unsatisfiable);
        assert_eq!(p("bytes=-0", 1000), Ranges::Unsatisfiable);
        assert_eq!(p("bytes=0-", 0), Ranges::Unsatisfiable);
        assert_eq!(p("bytes=-5", 0), Ranges::Unsatisfiable);
    }

    #[test]
    fn malformed_is_ignored() {
        for s in [
            "bytes=",
            "bytes=,",
            "bytes=abc",
            "bytes=5-1",
            "bytes=1-2-3",
            "bytes=+1-2",
            "bytes=1-+2",
            "bytes=--1",
            "items=0-1",
            "bytes 0-1",
            "0-1",
            "bytes=18446744073709551616-",
            "bytes=0-1,x",
            "bytes=-",
        ] {
            assert_eq!(p(s, 1000), Ranges::Full, "{s}");
        }
    }

    #[test]
    fn abuse_gets_the_whole_file() {
        let many = format!("bytes={}", vec!["0-0"; MAX_RANGES + 1].join(","));
        assert_eq!(p(&many, 1000), Ranges::Full);
        let ok = format!(
            "bytes={}",
            (0..MAX_RANGES)
                .map(|i| format!("{i}-{i}"))
                .collect::<Vec<_>>()
                .join(",")
        );
        assert!(matches!(p(&ok, 1000), Ranges::Partial(v) if v.len() == MAX_RANGES));
        assert_eq!(p("bytes=0-,0-,0-", 1000), Ranges::Full);
        assert_eq!(p("bytes=0-599,400-999", 1000), Ranges::Full);
        // Overlap that stays within the file's size is served as asked.
        assert_eq!(p("bytes=0-5,3-8", 1000), part(&[(0, 6), (3, 9)]));
    }

    #[test]
    fn if_range() {
        let t = UNIX_EPOCH + Duration::from_secs(1_000_000) + Duration::from_millis(300);
        let etag = b"\"a-b\"";
        let hv = |s: &str| HeaderValue::from_str(s).unwrap();
        assert!(if_range_allows(None, etag, t));
        assert!(if_range_allows(Some(&hv("\"a-b\"")), etag, t));
        assert!(!if_range_allows(Some(&hv("\"a-c\"")), etag, t));
        assert!(!if_range_allows(Some(&hv("W/\"a-b\"")), etag, t));
        let exact = httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(1_000_000));
        assert!(if_range_allows(Some(&hv(&exact)), etag, t));
        let later = httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(1_000_001));
        assert!(!if_range_allows(Some(&hv(&later)), etag, t));
        assert!(!if_range_allows(Some(&hv("garbage")), etag, t));
    }

    #[test]
    fn content_range_header() {
        assert_eq!(content_range(&(0..500), 1000), "bytes 0-499/1000");
        assert_eq!(content_range(&(999..1000), 1000), "bytes 999-999/1000");
    }
}

//! The combined format written byte by byte: through `write!` a line cost about 5,000
//! instructions, as much as a third of serving the request.

use std::cell::Cell;
use std::time::{SystemTime, UNIX_EPOCH};

use http::{Uri, Version};

use super::Clf;

/// Appends a quoted field's text with `"` escaped as `\"` (the quotes themselves are the
/// caller's).
pub fn push_quoted(out: &mut Vec<u8>, text: &str) {
    let mut parts = text.split('"');
    out.extend_from_slice(parts.next().unwrap_or("").as_bytes());
    for part in parts {
        out.extend_from_slice(b"\\\"");
        out.extend_from_slice(part.as_bytes());
    }
}

/// Appends the request target as `Uri`'s `Display` writes it.
pub fn push_uri(out: &mut Vec<u8>, uri: &Uri) {
    match (uri.scheme(), uri.authority(), uri.path_and_query()) {
        (None, None, Some(target)) => out.extend_from_slice(target.as_str().as_bytes()),
        _ => {
            use std::io::Write as _;
            let _ = write!(out, "{uri}");
        }
    }
}

/// `HTTP/1.1`, as `Version`'s `Debug` writes it.
pub fn version(version: Version) -> &'static str {
    match version {
        Version::HTTP_09 => "HTTP/0.9",
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_11 => "HTTP/1.1",
        Version::HTTP_2 => "HTTP/2.0",
        Version::HTTP_3 => "HTTP/3.0",
        _ => "HTTP/?",
    }
}

/// The length of `24/Nov/2026:22:10:26 +0000`.
const CLF_LEN: usize = 26;

thread_local! {
    /// The last second formatted on this thread and its text: lines of the same second
    /// share it.
    static LAST_SECOND: Cell<(u64, [u8; CLF_LEN])> = const { Cell::new((u64::MAX, [0; CLF_LEN])) };
}

/// Appends `time` in the Common Log Format, formatting each second once per thread.
pub fn push_clf(out: &mut Vec<u8>, time: SystemTime) {
    let secs = time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (cached, mut text) = LAST_SECOND.get();
    if cached != secs {
        let formatted = Clf(time).to_string();
        match <[u8; CLF_LEN]>::try_from(formatted.as_bytes()) {
            Ok(fixed) => text = fixed,
            // A year past 9999 is longer: written as it is, not cached.
            Err(_) => return out.extend_from_slice(formatted.as_bytes()),
        }
        LAST_SECOND.set((secs, text));
    }
    out.extend_from_slice(&text);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn text(write: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut out = Vec::new();
        write(&mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn each_second_is_written_as_clf_writes_it_from_the_cache_or_not() {
        let t = UNIX_EPOCH + Duration::from_secs(1_795_558_226);
        for time in [
            t,
            t + Duration::from_millis(400),
            t + Duration::from_secs(1),
            t,
            UNIX_EPOCH,
            // Year 10000: one character longer, never cached.
            UNIX_EPOCH + Duration::from_secs(253_402_300_800),
            t,
        ] {
            assert_eq!(text(|o| push_clf(o, time)), Clf(time).to_string());
        }
    }

    #[test]
    fn targets_versions_and_quotes_read_as_display_and_debug_write_them() {
        for uri in [
            "/a?b=1",
            "*",
            "/",
            "http://example.com:8080/x?y",
            "example.com:443",
        ] {
            let uri: Uri = uri.parse().unwrap();
            assert_eq!(text(|o| push_uri(o, &uri)), uri.to_string());
        }
        for v in [
            Version::HTTP_09,
            Version::HTTP_10,
            Version::HTTP_11,
            Version::HTTP_2,
            Version::HTTP_3,
        ] {
            assert_eq!(version(v), format!("{v:?}"));
        }
        assert_eq!(text(|o| push_quoted(o, "a\"b\"")), "a\\\"b\\\"");
    }
}

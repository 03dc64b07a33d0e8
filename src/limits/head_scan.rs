//! Byte-level checks on HTTP/1.1 request heads, before hyper parses them.
//!
//! hyper is lenient where a front-door server must not be: it accepts bare LF line endings,
//! silently drops `Content-Length` when `Transfer-Encoding` is also present, and its size
//! limits only produce 431. This scanner sees every byte of each request head as it is read
//! and decides, with Kestrel's precision, whether the head must be refused and with which
//! status. It is a pure state machine so that it can be tested byte by byte.

use http::StatusCode;

/// Limits the scanner enforces, copied from `[limits]`.
#[derive(Debug, Clone, Copy)]
pub struct HeadLimits {
    /// Longest request line (method, target, version) in bytes: 414 past it.
    pub max_request_line_size: usize,
    /// Most header fields: 431 past it.
    pub max_header_count: usize,
    /// Largest sum of header lines (each counted with its CRLF): 431 past it.
    pub max_headers_total_size: usize,
}

/// Longest header line kept for inspection; framing headers longer than this are refused.
const KEPT_LINE: usize = 128;
/// Empty lines tolerated before a request line (RFC 9112 §2.2 allows ignoring "at least one").
const MAX_LEADING_EMPTY_LINES: usize = 4;

/// What the scanner knows about the bytes that follow the current head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Inside a request head (or waiting for the next one).
    Head,
    /// Skipping this many bytes of a `Content-Length` body.
    Body(u64),
    /// A chunked body follows: its end is hyper's business, so scanning stops for good.
    Off,
}

/// Result of feeding bytes to the scanner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// All bytes are acceptable so far.
    Ok,
    /// Refuse the head: answer with this status and close the connection. `at` is the index
    /// in the fed slice of the first byte of the offending head (or 0 if it began earlier).
    Reject { status: StatusCode, at: usize },
}

/// Incremental scanner of request heads on one HTTP/1.1 connection.
#[derive(Debug)]
pub struct HeadScanner {
    limits: HeadLimits,
    phase: Phase,
    /// Index (within the head) of the current line; 0 = request line.
    line_no: usize,
    line_len: usize,
    leading_empty: usize,
    headers_total: usize,
    header_count: usize,
    prev_cr: bool,
    line: [u8; KEPT_LINE],
    content_length: Option<u64>,
    transfer_encoding: bool,
    /// True while at least one byte of the current head has been seen.
    in_head: bool,
}

impl HeadScanner {
    /// A scanner waiting for the first request head of a connection.
    pub fn new(limits: HeadLimits) -> Self {
        HeadScanner {
            limits,
            phase: Phase::Head,
            line_no: 0,
            line_len: 0,
            leading_empty: 0,
            headers_total: 0,
            header_count: 0,
            prev_cr: false,
            line: [0; KEPT_LINE],
            content_length: None,
            transfer_encoding: false,
            in_head: false,
        }
    }

    /// True while part of a request head has arrived but not its end.
    pub fn in_head(&self) -> bool {
        self.in_head && self.phase == Phase::Head
    }

    /// True between requests: every byte seen so far belongs to complete heads and bodies, so
    /// a fresh scanner would judge what comes next the same way.
    pub fn at_boundary(&self) -> bool {
        !self.in_head && self.phase == Phase::Head
    }

    /// Feeds the next bytes read from the client.
    pub fn feed(&mut self, bytes: &[u8]) -> Verdict {
        let mut i = 0;
        let mut head_start = 0;
        while i < bytes.len() {
            match self.phase {
                Phase::Off => return Verdict::Ok,
                Phase::Body(left) => {
                    let take = left.min((bytes.len() - i) as u64);
                    i += take as usize;
                    self.phase = if take == left {
                        head_start = i;
                        Phase::Head
                    } else {
                        Phase::Body(left - take)
                    };
                }
                Phase::Head => {
                    if !self.in_head {
                        head_start = i;
                    }
                    // Most bytes are ordinary: find the next CR, LF or NUL at SIMD speed and
                    // account for the run in one step; only those three need a closer look.
                    let rest = &bytes[i..];
                    let run = if self.prev_cr {
                        0
                    } else {
                        memchr::memchr3(b'\r', b'\n', 0, rest).unwrap_or(rest.len())
                    };
                    let step = if run > 0 {
                        self.run(&rest[..run])
                    } else {
                        self.byte(rest[0])
                    };
                    i += run.max(1);
                    if let Err(status) = step {
                        return Verdict::Reject {
                            status,
                            at: head_start,
                        };
                    }
                }
            }
        }
        Verdict::Ok
    }

    /// A run of bytes that holds no CR, LF or NUL, inside one line.
    fn run(&mut self, run: &[u8]) -> Result<(), StatusCode> {
        self.in_head = true;
        if self.line_len == 0 && self.line_no > 0 && matches!(run[0], b' ' | b'\t') {
            return Err(StatusCode::BAD_REQUEST); // obs-fold, or whitespace before a field name
        }
        if self.line_len < KEPT_LINE {
            let keep = run.len().min(KEPT_LINE - self.line_len);
            self.line[self.line_len..self.line_len + keep].copy_from_slice(&run[..keep]);
        }
        self.line_len += run.len();
        if self.line_no == 0 {
            if self.line_len > self.limits.max_request_line_size {
                return Err(StatusCode::URI_TOO_LONG);
            }
        } else {
            self.headers_total += run.len();
            if self.headers_total > self.limits.max_headers_total_size {
                return Err(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
            }
        }
        Ok(())
    }

    /// One CR, LF or NUL (or the byte after a CR).
    fn byte(&mut self, b: u8) -> Result<(), StatusCode> {
        self.in_head = true;
        if self.prev_cr {
            self.prev_cr = false;
            if b != b'\n' {
                return Err(StatusCode::BAD_REQUEST); // bare CR
            }
            return self.end_of_line();
        }
        match b {
            b'\r' => {
                self.prev_cr = true;
                Ok(())
            }
            b'\n' => Err(StatusCode::BAD_REQUEST), // bare LF
            0 => Err(StatusCode::BAD_REQUEST),
            _ => self.run(&[b]),
        }
    }

    fn end_of_line(&mut self) -> Result<(), StatusCode> {
        if self.line_len == 0 {
            if self.line_no == 0 {
                // Empty lines before the request line are tolerated, a few of them.
                self.leading_empty += 1;
                if self.leading_empty > MAX_LEADING_EMPTY_LINES {
                    return Err(StatusCode::BAD_REQUEST);
                }
                self.in_head = false;
                return Ok(());
            }
            return self.end_of_head();
        }
        if self.line_no > 0 {
            self.headers_total += 2;
            if self.headers_total > self.limits.max_headers_total_size {
                return Err(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
            }
            self.header_count += 1;
            if self.header_count > self.limits.max_header_count {
                return Err(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
            }
            self.header_line()?;
        }
        self.line_no += 1;
        self.line_len = 0;
        Ok(())
    }

    /// Inspects a complete header line for the framing headers that decide where the body ends.
    fn header_line(&mut self) -> Result<(), StatusCode> {
        let kept = &self.line[..self.line_len.min(KEPT_LINE)];
        let Some(colon) = kept.iter().position(|&c| c == b':') else {
            if self.line_len > KEPT_LINE {
                return Ok(()); // a long line; hyper validates its name
            }
            return Err(StatusCode::BAD_REQUEST);
        };
        let name = &kept[..colon];
        let is_cl = name.eq_ignore_ascii_case(b"content-length");
        let is_te = name.eq_ignore_ascii_case(b"transfer-encoding");
        if !is_cl && !is_te {
            return Ok(());
        }
        if self.line_len > KEPT_LINE {
            return Err(StatusCode::BAD_REQUEST);
        }
        let value = trim_ows(&kept[colon + 1..]);
        if is_cl {
            // One Content-Length field of plain digits; lists, signs and repeats are refused.
            if self.content_length.is_some() || value.is_empty() || value.len() > 19 {
                return Err(StatusCode::BAD_REQUEST);
            }
            let mut n: u64 = 0;
            for &d in value {
                if !d.is_ascii_digit() {
                    return Err(StatusCode::BAD_REQUEST);
                }
                n = n * 10 + u64::from(d - b'0');
            }
            self.content_length = Some(n);
        } else {
            // Only a single, plain "chunked" is interpreted; anything else is a smuggling vector.
            if self.transfer_encoding || !value.eq_ignore_ascii_case(b"chunked") {
                return Err(StatusCode::BAD_REQUEST);
            }
            self.transfer_encoding = true;
        }
        Ok(())
    }

    fn end_of_head(&mut self) -> Result<(), StatusCode> {
        let phase = match (self.content_length, self.transfer_encoding) {
            (Some(_), true) => return Err(StatusCode::BAD_REQUEST),
            (None, true) => Phase::Off,
            (Some(n), false) if n > 0 => Phase::Body(n),
            _ => Phase::Head,
        };
        *self = HeadScanner::new(self.limits);
        self.phase = phase;
        Ok(())
    }
}

fn trim_ows(mut v: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = v {
        v = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = v {
        v = rest;
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scanner() -> HeadScanner {
        HeadScanner::new(HeadLimits {
            max_request_line_size: 32,
            max_header_count: 3,
            max_headers_total_size: 64,
        })
    }

    fn verdict(bytes: &[u8]) -> Verdict {
        scanner().feed(bytes)
    }

    fn rejected(bytes: &[u8]) -> Option<StatusCode> {
        match verdict(bytes) {
            Verdict::Ok => None,
            Verdict::Reject { status, .. } => Some(status),
        }
    }

    #[test]
    fn plain_requests_pass_including_pipelined_and_split() {
        assert_eq!(
            rejected(b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /b HTTP/1.1\r\nHost: a\r\n\r\n"),
            None
        );
        let mut s = scanner();
        for b in b"GET / HTTP/1.1\r\nHost: a\r\n\r\n" {
            assert_eq!(s.feed(&[*b]), Verdict::Ok);
        }
        assert!(!s.in_head());
    }

    #[test]
    fn the_boundary_between_requests_is_known() {
        let mut s = scanner();
        assert!(s.at_boundary());
        s.feed(b"POST / HTTP/1.1\r\nContent-Length: 3\r");
        assert!(!s.at_boundary(), "inside a head");
        s.feed(b"\n\r\nab");
        assert!(!s.at_boundary(), "inside a body");
        s.feed(b"c");
        assert!(s.at_boundary());
        s.feed(b"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
        assert!(
            !s.at_boundary(),
            "chunked bodies end where only hyper knows"
        );
    }

    #[test]
    fn content_length_bodies_are_skipped() {
        let req = b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\n\n\n\r\r\0GET / HTTP/1.1\r\n\r\n";
        assert_eq!(rejected(req), None);
    }

    #[test]
    fn chunked_bodies_stop_scanning() {
        let req = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\n\n";
        assert_eq!(rejected(req), None);
    }

    #[test]
    fn line_ending_errors() {
        assert_eq!(
            rejected(b"GET / HTTP/1.1\nHost: a\n\n"),
            Some(StatusCode::BAD_REQUEST)
        );
        assert_eq!(
            rejected(b"GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n"),
            Some(StatusCode::BAD_REQUEST)
        );
        assert_eq!(
            rejected(b"GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n"),
            Some(StatusCode::BAD_REQUEST)
        );
        assert_eq!(
            rejected(b"GET / HTTP/1.1\r\nHost: a\0\r\n\r\n"),
            Some(StatusCode::BAD_REQUEST)
        );
    }

    #[test]
    fn size_limits() {
        let long_line = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(40));
        assert_eq!(
            rejected(long_line.as_bytes()),
            Some(StatusCode::URI_TOO_LONG)
        );
        let many = b"GET / HTTP/1.1\r\na: 1\r\nb: 2\r\nc: 3\r\nd: 4\r\n\r\n";
        assert_eq!(
            rejected(many),
            Some(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE)
        );
        let big = format!("GET / HTTP/1.1\r\nx: {}\r\n\r\n", "v".repeat(70));
        assert_eq!(
            rejected(big.as_bytes()),
            Some(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE)
        );
    }

    #[test]
    fn framing_conflicts() {
        let both = b"POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert_eq!(rejected(both), Some(StatusCode::BAD_REQUEST));
        for te in ["xchunked", "chunked, identity", "gzip, chunked", "identity"] {
            let req = format!("POST / HTTP/1.1\r\nTransfer-Encoding: {te}\r\n\r\n");
            assert_eq!(
                rejected(req.as_bytes()),
                Some(StatusCode::BAD_REQUEST),
                "{te}"
            );
        }
        for cl in ["+5", "5, 5", "0x5", "-1", "", "99999999999999999999"] {
            let req = format!("POST / HTTP/1.1\r\nContent-Length: {cl}\r\n\r\n");
            assert_eq!(
                rejected(req.as_bytes()),
                Some(StatusCode::BAD_REQUEST),
                "{cl}"
            );
        }
        let twice = b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx";
        assert_eq!(rejected(twice), Some(StatusCode::BAD_REQUEST));
        let ok = b"POST / HTTP/1.1\r\ntransfer-encoding:  Chunked \r\n\r\n";
        assert_eq!(rejected(ok), None);
    }

    #[test]
    fn reject_points_at_the_offending_head() {
        let req = b"GET / HTTP/1.1\r\n\r\nGET /x HTTP/1.1\nx";
        assert_eq!(
            verdict(req),
            Verdict::Reject {
                status: StatusCode::BAD_REQUEST,
                at: 18
            }
        );
    }
}

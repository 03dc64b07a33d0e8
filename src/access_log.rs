//! One line per request on standard output, in the Apache/nginx combined format or as JSON.

mod combined;
pub mod output;

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use http::{HeaderMap, Method, StatusCode, Uri, Version};

use crate::config::AccessLogFormat;

/// What is known about a request when its response starts; completed by the bytes sent.
#[derive(Debug)]
pub struct Record {
    format: AccessLogFormat,
    remote: Option<SocketAddr>,
    /// The client resolved by `forwarded_headers`, when it differs from the peer.
    client: Option<IpAddr>,
    /// The user authenticated by `basic_auth`: the remote-user field.
    user: Option<String>,
    /// The subject of a verified TLS client certificate (JSON format only: it has spaces).
    client_cert: Option<String>,
    time: SystemTime,
    start: Instant,
    method: Method,
    uri: Uri,
    version: Version,
    status: StatusCode,
    /// Kept as header values (a reference count, no copy) until the line is written.
    referer: Option<http::HeaderValue>,
    user_agent: Option<http::HeaderValue>,
}

impl Record {
    /// Captures the request side of the line; `None` when the access log is off.
    pub fn start(
        format: AccessLogFormat,
        remote: Option<SocketAddr>,
        method: &Method,
        uri: &Uri,
        version: Version,
        headers: &HeaderMap,
    ) -> Option<Box<Record>> {
        if format == AccessLogFormat::Off {
            return None;
        }
        let header = |name| headers.get(name).cloned();
        Some(Box::new(Record {
            format,
            remote,
            client: None,
            user: None,
            client_cert: None,
            time: SystemTime::now(),
            start: Instant::now(),
            method: method.clone(),
            uri: uri.clone(),
            version,
            status: StatusCode::OK,
            referer: header(http::header::REFERER),
            user_agent: header(http::header::USER_AGENT),
        }))
    }

    /// Sets the response status.
    pub fn set_status(&mut self, status: StatusCode) {
        self.status = status;
    }

    /// Sets the verified TLS client certificate's subject (mutual TLS).
    pub fn set_client_cert(&mut self, subject: String) {
        self.client_cert = Some(subject);
    }

    /// Sets the authenticated user (the remote-user field).
    pub fn set_user(&mut self, user: String) {
        self.user = Some(user);
    }

    /// Records the client that `forwarded_headers` resolved: logged as the remote address,
    /// the connection's peer kept in the JSON format's `peer_addr`.
    pub fn set_client(&mut self, client: IpAddr) {
        self.client = Some(client);
    }

    /// Emits the line, now that `sent` body bytes have gone out.
    pub fn write(&self, sent: u64) {
        match self.format {
            AccessLogFormat::Off => {}
            AccessLogFormat::Combined => output::line(|out| self.combined(out, sent)),
            AccessLogFormat::Json => output::line(|out| self.json(out, sent)),
        }
    }

    /// The client shown in the line: the one `forwarded_headers` resolved, else the peer.
    fn remote(&self) -> Addr {
        Addr(self.client.or(self.remote.map(|a| a.ip())))
    }

    /// The line: every field is written straight into `out`.
    fn combined(&self, out: &mut Vec<u8>, sent: u64) {
        match self.remote().0 {
            Some(ip) => crate::text::push_ip(out, ip),
            None => out.push(b'-'),
        }
        out.extend_from_slice(b" - ");
        out.extend_from_slice(self.user.as_deref().unwrap_or("-").as_bytes());
        out.extend_from_slice(b" [");
        combined::push_clf(out, self.time);
        out.extend_from_slice(b"] \"");
        out.extend_from_slice(self.method.as_str().as_bytes());
        out.push(b' ');
        combined::push_uri(out, &self.uri);
        out.push(b' ');
        out.extend_from_slice(combined::version(self.version).as_bytes());
        out.extend_from_slice(b"\" ");
        out.extend_from_slice(self.status.as_str().as_bytes());
        out.push(b' ');
        crate::text::push_u64(out, sent);
        out.extend_from_slice(b" \"");
        combined::push_quoted(out, text(&self.referer));
        out.extend_from_slice(b"\" \"");
        combined::push_quoted(out, text(&self.user_agent));
        out.push(b'"');
    }

    fn json(&self, out: &mut Vec<u8>, sent: u64) {
        let line = JsonLine {
            bytes_sent: sent,
            client_cert: self.client_cert.as_deref(),
            duration_ms: self.start.elapsed().as_secs_f64() * 1000.0,
            method: self.method.as_str(),
            peer_addr: Addr(self.remote.map(|a| a.ip())),
            protocol: self.version,
            referer: text(&self.referer),
            remote_addr: self.remote(),
            status: self.status.as_u16(),
            time: humantime::format_rfc3339_millis(self.time),
            uri: &self.uri,
            user: self.user.as_deref(),
            user_agent: text(&self.user_agent),
        };
        // Serializing these fields cannot fail; a failure would only shorten the line.
        let _ = serde_json::to_writer(out, &line);
    }
}

/// The JSON format's fields, serialized without building a `Value` first. Alphabetical, the
/// order the line has always had.
#[derive(serde::Serialize)]
struct JsonLine<'a> {
    bytes_sent: u64,
    client_cert: Option<&'a str>,
    duration_ms: f64,
    method: &'a str,
    #[serde(serialize_with = "display")]
    peer_addr: Addr,
    #[serde(serialize_with = "debug")]
    protocol: Version,
    referer: &'a str,
    #[serde(serialize_with = "display")]
    remote_addr: Addr,
    status: u16,
    #[serde(serialize_with = "display")]
    time: humantime::Rfc3339Timestamp,
    #[serde(serialize_with = "display")]
    uri: &'a Uri,
    user: Option<&'a str>,
    user_agent: &'a str,
}

/// A field as the string its `Display` writes, streamed into the JSON (no `String` first).
fn display<T: fmt::Display, S: serde::Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

/// A field as the string its `Debug` writes (`HTTP/1.1`).
fn debug<T: fmt::Debug, S: serde::Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&format_args!("{v:?}"))
}

/// An IP address, or `-` for none (unix sockets).
struct Addr(Option<IpAddr>);

impl fmt::Display for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(ip) => ip.fmt(f),
            None => f.write_str("-"),
        }
    }
}

/// A logged header's text, `-` when absent or not visible ASCII.
fn text(value: &Option<http::HeaderValue>) -> &str {
    value.as_ref().and_then(|v| v.to_str().ok()).unwrap_or("-")
}

/// Common Log Format time, in UTC: `24/Nov/2026:22:10:26 +0000`.
struct Clf(SystemTime);

impl fmt::Display for Clf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const MONTHS: [&str; 12] = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        let secs = self.0.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
        // Howard Hinnant's civil_from_days.
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + i64::from(month <= 2);
        write!(
            f,
            "{:02}/{}/{}:{:02}:{:02}:{:02} +0000",
            day,
            MONTHS[(month - 1) as usize % 12],
            year,
            rem / 3600,
            rem % 3600 / 60,
            rem % 60
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;
    use std::time::Duration;

    #[test]
    fn clf_matches_known_dates() {
        let t = UNIX_EPOCH + Duration::from_secs(1_795_558_226); // 2026-11-24T22:10:26Z
        assert_eq!(Clf(t).to_string(), "24/Nov/2026:22:10:26 +0000");
        assert_eq!(Clf(UNIX_EPOCH).to_string(), "01/Jan/1970:00:00:00 +0000");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(Clf(leap).to_string(), "29/Feb/2000:00:00:00 +0000");
    }

    /// The combined line of `r` with `sent` bytes.
    fn combined(r: &Record, sent: u64) -> String {
        let mut out = Vec::new();
        r.combined(&mut out, sent);
        String::from_utf8(out).unwrap()
    }

    /// The JSON line of `r` with `sent` bytes.
    fn json(r: &Record, sent: u64) -> String {
        let mut out = Vec::new();
        r.json(&mut out, sent);
        String::from_utf8(out).unwrap()
    }

    /// A record of `GET /a?b=1` from 192.0.2.1, at 2026-11-24T22:10:26Z, answered 404.
    fn record(format: AccessLogFormat, headers: &HeaderMap) -> Box<Record> {
        let uri = "/a?b=1".parse().unwrap();
        let peer = Some("192.0.2.1:4711".parse().unwrap());
        let mut r = Record::start(format, peer, &Method::GET, &uri, Version::HTTP_11, headers)
            .expect("the log is on");
        r.time = UNIX_EPOCH + Duration::from_millis(1_795_558_226_042);
        r.set_status(StatusCode::NOT_FOUND);
        r
    }

    #[test]
    fn combined_lines() {
        let mut headers = HeaderMap::new();
        headers.insert("referer", "https://r.test/\"x\"".parse().unwrap());
        headers.insert("user-agent", "ua/1 \"q\"".parse().unwrap());
        let mut r = record(AccessLogFormat::Combined, &headers);
        assert_eq!(
            combined(&r, 12),
            "192.0.2.1 - - [24/Nov/2026:22:10:26 +0000] \"GET /a?b=1 HTTP/1.1\" 404 12 \
             \"https://r.test/\\\"x\\\"\" \"ua/1 \\\"q\\\"\""
        );
        r.set_user("alice".into());
        r.set_client("2001:db8::1".parse().unwrap());
        let mut headers = HeaderMap::new();
        headers.insert(
            "user-agent",
            HeaderValue::from_bytes(b"caf\xc3\xa9").unwrap(),
        );
        r.user_agent = headers.get("user-agent").cloned();
        r.referer = None;
        assert_eq!(
            combined(&r, 0),
            "2001:db8::1 - alice [24/Nov/2026:22:10:26 +0000] \"GET /a?b=1 HTTP/1.1\" 404 0 \
             \"-\" \"-\""
        );
    }

    #[test]
    fn json_lines() {
        let mut headers = HeaderMap::new();
        headers.insert("user-agent", "ua \"1\"".parse().unwrap());
        let mut r = record(AccessLogFormat::Json, &headers);
        let line = json(&r, 7);
        let (head, tail) = line.split_once(",\"duration_ms\":").expect(&line);
        assert_eq!(head, "{\"bytes_sent\":7,\"client_cert\":null");
        let (ms, tail) = tail.split_once(',').expect(&line);
        assert!(ms.parse::<f64>().is_ok_and(|ms| ms >= 0.0), "{line}");
        assert_eq!(
            tail,
            "\"method\":\"GET\",\"peer_addr\":\"192.0.2.1\",\"protocol\":\"HTTP/1.1\",\
             \"referer\":\"-\",\"remote_addr\":\"192.0.2.1\",\"status\":404,\
             \"time\":\"2026-11-24T22:10:26.042Z\",\"uri\":\"/a?b=1\",\"user\":null,\
             \"user_agent\":\"ua \\\"1\\\"\"}"
        );
        r.set_user("bob \"b\"".into());
        r.set_client_cert("CN=x, O=y".into());
        r.set_client("203.0.113.7".parse().unwrap());
        let v: serde_json::Value = serde_json::from_str(&json(&r, 0)).unwrap();
        assert_eq!(v["user"], "bob \"b\"");
        assert_eq!(v["client_cert"], "CN=x, O=y");
        assert_eq!(v["remote_addr"], "203.0.113.7");
        assert_eq!(v["peer_addr"], "192.0.2.1");
    }
}

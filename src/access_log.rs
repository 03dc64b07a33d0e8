//! One line per request, through `tracing` (target `harrier::access`), in the Apache/nginx
//! combined format or as JSON.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use http::{HeaderMap, Method, StatusCode, Uri, Version};

use crate::config::AccessLogFormat;

/// The `tracing` target of access-log events, so subscribers can route them separately.
pub const TARGET: &str = "harrier::access";

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
        let line = match self.format {
            AccessLogFormat::Off => return,
            AccessLogFormat::Combined => self.combined(sent),
            AccessLogFormat::Json => self.json(sent),
        };
        tracing::info!(target: TARGET, "{line}");
    }

    fn remote(&self) -> String {
        self.client
            .or(self.remote.map(|a| a.ip()))
            .map_or_else(|| "-".to_owned(), |ip| ip.to_string())
    }

    fn combined(&self, sent: u64) -> String {
        let mut line = String::with_capacity(160);
        let _ = write!(
            line,
            "{} - {} [{}] \"{} {} {:?}\" {} {} \"{}\" \"{}\"",
            self.remote(),
            self.user.as_deref().unwrap_or("-"),
            clf_time(self.time),
            self.method,
            self.uri,
            self.version,
            self.status.as_u16(),
            sent,
            text(&self.referer).replace('"', "\\\""),
            text(&self.user_agent).replace('"', "\\\""),
        );
        line
    }

    fn json(&self, sent: u64) -> String {
        serde_json::json!({
            "time": humantime::format_rfc3339_millis(self.time).to_string(),
            "remote_addr": self.remote(),
            "peer_addr": self.remote.map_or_else(|| "-".to_owned(), |a| a.ip().to_string()),
            "user": self.user,
            "client_cert": self.client_cert,
            "method": self.method.as_str(),
            "uri": self.uri.to_string(),
            "protocol": format!("{:?}", self.version),
            "status": self.status.as_u16(),
            "bytes_sent": sent,
            "duration_ms": self.start.elapsed().as_secs_f64() * 1000.0,
            "referer": text(&self.referer),
            "user_agent": text(&self.user_agent),
        })
        .to_string()
    }
}

/// A logged header's text, `-` when absent or not visible ASCII.
fn text(value: &Option<http::HeaderValue>) -> &str {
    value.as_ref().and_then(|v| v.to_str().ok()).unwrap_or("-")
}

/// Common Log Format time, in UTC: `24/Nov/2026:22:10:26 +0000`.
fn clf_time(t: SystemTime) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
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
    format!(
        "{:02}/{}/{}:{:02}:{:02}:{:02} +0000",
        day,
        MONTHS[(month - 1) as usize % 12],
        year,
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn clf_time_matches_known_dates() {
        let t = UNIX_EPOCH + Duration::from_secs(1_795_558_226); // 2026-11-24T22:10:26Z
        assert_eq!(clf_time(t), "24/Nov/2026:22:10:26 +0000");
        assert_eq!(clf_time(UNIX_EPOCH), "01/Jan/1970:00:00:00 +0000");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(clf_time(leap), "29/Feb/2000:00:00:00 +0000");
    }
}

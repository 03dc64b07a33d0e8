//! Reads a `rate_limit` stage table: key, rate, burst, max_clients.

use super::print::{quote, Printer};
use super::reader::{in_range, narrow, Field, Section};
use super::site_model::{Rate, RateKey, RateLimitStage, RateUnit};
use super::stages::header_name;

/// 10 requests a second sustained, 20 at once: a page load with its assets passes, a
/// script hammering an endpoint does not.
pub const DEFAULT_RATE: Rate = Rate {
    count: 10,
    unit: RateUnit::Second,
};
/// See [`DEFAULT_RATE`].
pub const DEFAULT_BURST: u64 = 20;
/// About 2 MB of buckets at most (16 bytes each, plus the map's overhead).
pub const DEFAULT_MAX_CLIENTS: usize = 100_000;

const KEY_HELP: &str = "\"client_ip\" or \"header:NAME\", like \"header:x-api-key\"";

/// The options of a `type = "rate_limit"` table.
pub(super) fn rate_limit(t: &mut Section) -> RateLimitStage {
    RateLimitStage {
        key: t.read("key", RateKey::ClientIp, key),
        rate: t.read("rate", DEFAULT_RATE, rate),
        burst: t.read("burst", DEFAULT_BURST, |f| {
            in_range(f.count()?, 1, 1_000_000)
        }),
        max_clients: t.read("max_clients", DEFAULT_MAX_CLIENTS, |f| {
            narrow(in_range(f.count()?, 1, 100_000_000)?, usize::MAX)
        }),
    }
}

fn key(f: &Field) -> Result<RateKey, String> {
    let text = f.string()?;
    if text.eq_ignore_ascii_case("client_ip") {
        return Ok(RateKey::ClientIp);
    }
    match text.split_once(':') {
        Some((kind, name)) if kind.eq_ignore_ascii_case("header") => {
            header_name(name.trim()).map(RateKey::Header)
        }
        _ => Err(f.expected(KEY_HELP)),
    }
}

fn rate(f: &Field) -> Result<Rate, String> {
    let text = f.string()?;
    let expected = || f.expected("a rate like \"10/s\", \"100/m\" or \"1000/h\"");
    let (count, unit) = text.split_once('/').ok_or_else(expected)?;
    let count: u64 = count.trim().parse().map_err(|_| expected())?;
    let unit = match unit.trim() {
        "s" => RateUnit::Second,
        "m" => RateUnit::Minute,
        "h" => RateUnit::Hour,
        _ => return Err(expected()),
    };
    // One token per nanosecond is past anything a limiter can tell apart.
    let count = in_range(count, 1, 1_000_000_000)?;
    Ok(Rate { count, unit })
}

impl Printer {
    /// A `rate_limit` stage, every key shown.
    pub(super) fn rate_limit(&mut self, r: &RateLimitStage) {
        self.key("type", quote("rate_limit"));
        self.key("key", quote(&show_key(&r.key)));
        self.key("rate", quote(&show_rate(&r.rate)));
        self.key("burst", r.burst);
        self.key("max_clients", r.max_clients);
    }
}

/// `rate` as written in the file.
fn show_rate(rate: &Rate) -> String {
    let unit = match rate.unit {
        RateUnit::Second => "s",
        RateUnit::Minute => "m",
        RateUnit::Hour => "h",
    };
    format!("{}/{unit}", rate.count)
}

/// `key` as written in the file.
fn show_key(key: &RateKey) -> String {
    match key {
        RateKey::ClientIp => "client_ip".to_owned(),
        RateKey::Header(name) => format!("header:{name}"),
    }
}

//! Reads a `cors` stage: which origins, methods and headers are allowed, what scripts may
//! read, credentials, and how long browsers may cache a preflight.

use std::time::Duration;

use http::Method;

use super::reader::{Field, Section};
use super::routes::method;
use super::site_model::CorsStage;
use super::stages::header_name;

/// The `cors` stage of table `t`.
pub(crate) fn read(t: &mut Section) -> CorsStage {
    let allowed_origins = match t.require("allowed_origins", ORIGINS) {
        Some(f) => strings(t, &f, "list at least one origin, or \"*\"", origin),
        None => Vec::new(),
    };
    let allowed_methods = t
        .take("allowed_methods")
        .map(|f| strings(t, &f, "list at least one method", method))
        .unwrap_or_else(|| vec![Method::GET, Method::HEAD, Method::POST]);
    let allowed_headers = names(t, "allowed_headers");
    let exposed_headers = names(t, "exposed_headers");
    let allow_credentials = t.read("allow_credentials", false, Field::bool);
    let max_age = t.read("max_age", Duration::from_secs(600), Field::duration);
    if allow_credentials && exposed_headers.iter().any(|h| h == "*") {
        // With credentials the Fetch spec reads "*" as a header literally named "*".
        let message = "\"*\" means no header when allow_credentials = true: list the names";
        t.report(t.problem_at("exposed_headers", message));
    }
    CorsStage {
        allowed_origins,
        allowed_methods,
        allowed_headers,
        exposed_headers,
        allow_credentials,
        max_age,
    }
}

/// How `allowed_origins` is described in messages.
const ORIGINS: &str =
    "allowed_origins = [\"https://app.example\", \"https://*.example.com\"] (or [\"*\"])";

/// The items of `f`, each read by `parse`; bad and repeated items are reported.
fn strings<T: PartialEq + std::fmt::Display>(
    t: &mut Section,
    f: &Field,
    empty: &str,
    parse: fn(&str) -> Result<T, String>,
) -> Vec<T> {
    let items = t.list(f, empty);
    t.distinct_strings(items, parse)
}

/// `allowed_headers` or `exposed_headers`: header names (lowercase) or `"*"`; none when absent.
fn names(t: &mut Section, key: &'static str) -> Vec<String> {
    let Some(f) = t.take(key) else {
        return Vec::new();
    };
    let name = |s: &str| match s {
        "*" => Ok("*".to_owned()),
        _ => header_name(s).map(|n| n.as_str().to_owned()),
    };
    let mut list = Vec::new();
    for item in t.check(&f, f.items()).unwrap_or_default() {
        if let Some(n) = t.check(&item, item.string().and_then(|s| name(&s))) {
            if !list.contains(&n) {
                list.push(n);
            }
        }
    }
    list
}

/// `"*"`, `scheme://host[:port]`, or `scheme://*.domain[:port]`; stored lowercase, since
/// browsers send origins lowercase.
fn origin(text: &str) -> Result<String, String> {
    let lower = text.to_ascii_lowercase();
    if lower == "*" || lower == "null" {
        return Ok(lower);
    }
    let bad = || {
        format!(
            "{text:?} is not an origin: expected \"scheme://host\" with an optional port and no \
             path, e.g. \"https://app.example\" or \"https://*.example.com\""
        )
    };
    let (scheme, host) = lower.split_once("://").ok_or_else(bad)?;
    let host = host.strip_prefix("*.").unwrap_or(host);
    let scheme_ok = !scheme.is_empty() && scheme.bytes().all(|b| b.is_ascii_alphanumeric());
    let host_ok = !host.is_empty()
        && !host.starts_with('.')
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b));
    if scheme_ok && host_ok {
        Ok(lower)
    } else {
        Err(bad())
    }
}

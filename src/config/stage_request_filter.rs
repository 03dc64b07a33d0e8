//! Reads a `request_filter` stage table (IIS request filtering).

use http::Method;

use super::print::{strings, Printer};
use super::reader::{in_range, narrow, Field, Section};
use super::routes::method;
use super::site_model::RequestFilterStage;

/// The options of a `type = "request_filter"` table; absent keys keep IIS's defaults.
pub(super) fn request_filter(t: &mut Section) -> RequestFilterStage {
    let d = RequestFilterStage::default();
    let length = |f: &Field| narrow(in_range(f.count()?, 1, 1 << 20)?, usize::MAX);
    RequestFilterStage {
        max_url_length: t.read("max_url_length", d.max_url_length, length),
        max_query_length: t.read("max_query_length", d.max_query_length, length),
        deny_path_segments: list(t, "deny_path_segments", d.deny_path_segments, segment),
        deny_extensions: list(t, "deny_extensions", d.deny_extensions, extension),
        deny_methods: list(t, "deny_methods", d.deny_methods, method),
        reject_double_escaping: t.read("reject_double_escaping", true, Field::bool),
    }
}

/// A list of distinct values under `key`, each read by `parse`; an empty list is allowed
/// (it turns that check off). A bad item is reported and left out.
fn list<T: PartialEq + std::fmt::Display>(
    t: &mut Section,
    key: &'static str,
    default: Vec<T>,
    parse: fn(&str) -> Result<T, String>,
) -> Vec<T> {
    let Some(f) = t.take(key) else {
        return default;
    };
    let items = t.check(&f, f.items()).unwrap_or_default();
    t.distinct_strings(items, parse)
}

/// A path segment, stored lowercase (segments are compared case-insensitively).
fn segment(s: &str) -> Result<String, String> {
    if s.is_empty() || s.contains(['/', '\\']) {
        return Err(format!(
            "{s:?} is not a path segment (a name without / or \\)"
        ));
    }
    Ok(s.to_ascii_lowercase())
}

/// An extension with its dot, stored lowercase.
fn extension(s: &str) -> Result<String, String> {
    if s.len() < 2 || !s.starts_with('.') || s.contains(['/', '\\']) {
        return Err(format!(
            "{s:?} is not an extension (a dot and a name, like \".env\")"
        ));
    }
    Ok(s.to_ascii_lowercase())
}

impl Printer {
    /// A `request_filter` stage, every key shown.
    pub(super) fn request_filter(&mut self, r: &RequestFilterStage) {
        self.key("type", "\"request_filter\"");
        self.key("max_url_length", r.max_url_length);
        self.key("max_query_length", r.max_query_length);
        self.key("deny_path_segments", strings(&r.deny_path_segments));
        self.key("deny_extensions", strings(&r.deny_extensions));
        let methods: Vec<&str> = r.deny_methods.iter().map(Method::as_str).collect();
        self.key("deny_methods", strings(&methods));
        self.key("reject_double_escaping", r.reject_double_escaping);
    }
}

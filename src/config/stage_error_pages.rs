//! Reads an `error_pages` stage table: statuses (or classes) and the files that answer them.

use std::path::{Component, Path, PathBuf};

use http::StatusCode;

use super::reader::Section;
use super::site_model::{ErrorPagesStage, ErrorStatus};
use super::stages::key_problem;

const EXAMPLE: &str = "a table like { 404 = \"errors/404.html\", \"5xx\" = \"errors/5xx.html\" }";

/// The options of a `type = "error_pages"` table.
pub(super) fn error_pages(t: &mut Section) -> ErrorPagesStage {
    let mut pages: Vec<(ErrorStatus, PathBuf)> = Vec::new();
    let why = format!("error_pages needs pages, {EXAMPLE}");
    let Some(f) = t.require("pages", &why) else {
        return ErrorPagesStage { pages };
    };
    let entries = t.check(&f, f.entries(EXAMPLE)).unwrap_or_default();
    if entries.is_empty() && matches!(f.node.value, super::tree::Value::Table(_)) {
        t.report(f.problem(format!("list at least one status, {EXAMPLE}")));
    }
    for (key, key_at, value) in entries {
        let status = match status(&key) {
            Ok(s) if pages.iter().any(|(p, _)| *p == s) => {
                t.report(key_problem(
                    &value,
                    key_at,
                    format!("{key:?} is listed twice"),
                ));
                continue;
            }
            Ok(s) => s,
            Err(message) => {
                t.report(key_problem(&value, key_at, message));
                continue;
            }
        };
        let path = value.string().and_then(|s| relative(&s));
        if let Some(path) = t.check(&value, path) {
            pages.push((status, path));
        }
    }
    ErrorPagesStage { pages }
}

/// `404` (400-599) or `"4xx"` / `"5xx"`.
fn status(key: &str) -> Result<ErrorStatus, String> {
    let bad = || format!("{key:?} is not an error status: use 400-599, \"4xx\" or \"5xx\"");
    let lower = key.trim().to_ascii_lowercase();
    if let Some(class) = lower.strip_suffix("xx") {
        return match class {
            "4" => Ok(ErrorStatus::Class(4)),
            "5" => Ok(ErrorStatus::Class(5)),
            _ => Err(bad()),
        };
    }
    match lower.parse::<u16>() {
        Ok(code @ 400..=599) => StatusCode::from_u16(code)
            .map(ErrorStatus::Code)
            .map_err(|_| bad()),
        _ => Err(bad()),
    }
}

/// A path inside the site root: relative, with no `..`.
fn relative(text: &str) -> Result<PathBuf, String> {
    let path = Path::new(text);
    let inside = !text.is_empty()
        && path
            .components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
    if inside {
        Ok(path.to_path_buf())
    } else {
        Err(format!(
            "{text:?} must be a path relative to the site root, without \"..\""
        ))
    }
}

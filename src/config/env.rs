//! Environment overrides, ASP.NET style: `HARRIER__LIMITS__MAX_REQUEST_BODY_SIZE=10MB` sets
//! `limits.max_request_body_size`, `HARRIER__ENDPOINTS__0__URL` the first endpoint's url.
//!
//! Values are written into the settings tree as strings with the variable as their origin;
//! the typed reader accepts strings for bools, numbers and lists when they come from here.

use super::error::{Diagnostic, Origin};
use super::tree::{Entry, Node, Value};

/// Variables that override settings start with this (case-insensitively, as Windows
/// compares names).
const PREFIX: &str = "HARRIER__";

/// One step of a key path: a table key, or an index into an array.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Step {
    Key(String),
    Index(usize),
}

/// Writes every `HARRIER__...` variable of `env` into `root`, in key order so that array
/// entries are created index by index; returns the variables that could not be applied.
pub(crate) fn apply(root: &mut Node, env: &[(String, String)]) -> Vec<Diagnostic> {
    let mut problems = Vec::new();
    let mut overrides = Vec::new();
    for (name, value) in env {
        let Some(rest) = name.get(PREFIX.len()..).filter(|_| has_prefix(name)) else {
            continue;
        };
        match steps(rest) {
            Ok(steps) => overrides.push((steps, name, value)),
            Err(message) => problems.push(Diagnostic::new(Origin::Env(name.clone()), "", message)),
        }
    }
    overrides.sort();
    for (steps, name, value) in overrides {
        let origin = Origin::Env(name.clone());
        if let Err(problem) = set(root, &steps, String::new(), value, &origin) {
            problems.push(problem);
        }
    }
    problems
}

fn has_prefix(name: &str) -> bool {
    name.get(..PREFIX.len())
        .is_some_and(|p| p.eq_ignore_ascii_case(PREFIX))
}

/// Splits `LIMITS__MAX_REQUEST_BODY_SIZE` into key steps (numbers are indices).
fn steps(rest: &str) -> Result<Vec<Step>, String> {
    rest.split("__")
        .map(|part| {
            if part.is_empty() {
                Err("empty key between double underscores".to_owned())
            } else if part.bytes().all(|b| b.is_ascii_digit()) {
                part.parse()
                    .map(Step::Index)
                    .map_err(|_| format!("index {part} is too large"))
            } else {
                Ok(Step::Key(snake_case(part)))
            }
        })
        .collect()
}

/// `MAX_REQUEST_BODY_SIZE` and `MaxRequestBodySize` both become `max_request_body_size`.
fn snake_case(part: &str) -> String {
    let mut out = String::with_capacity(part.len() + 4);
    let mut previous_lower = false;
    for c in part.chars() {
        if c.is_ascii_uppercase() && previous_lower {
            out.push('_');
        }
        previous_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// Sets the value at `steps` below `node`, creating tables and array entries on the way; a
/// scalar in the way is replaced (the environment wins over the file).
fn set(
    node: &mut Node,
    steps: &[Step],
    path: String,
    value: &str,
    origin: &Origin,
) -> Result<(), Diagnostic> {
    let Some((step, rest)) = steps.split_first() else {
        *node = Node {
            value: Value::String(value.to_owned()),
            origin: origin.clone(),
        };
        return Ok(());
    };
    match step {
        Step::Key(key) => {
            let mut entries = match std::mem::replace(&mut node.value, Value::Table(Vec::new())) {
                Value::Table(entries) => entries,
                Value::Array(items) => {
                    node.value = Value::Array(items);
                    let example = indexed_example(origin, rest.len() + 1);
                    let message =
                        format!("{path} is a list: name an entry by its index, e.g. {example}");
                    return Err(Diagnostic::new(origin.clone(), path, message));
                }
                _ => {
                    node.origin = origin.clone();
                    Vec::new()
                }
            };
            let index = entries
                .iter()
                .position(|e| e.key == *key)
                .unwrap_or_else(|| {
                    entries.push(Entry {
                        key: key.clone(),
                        key_origin: origin.clone(),
                        node: Node::empty_table(origin.clone()),
                    });
                    entries.len() - 1
                });
            let child = if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            };
            let result = set(&mut entries[index].node, rest, child, value, origin);
            node.value = Value::Table(entries);
            result
        }
        Step::Index(index) => {
            let mut items = match std::mem::replace(&mut node.value, Value::Array(Vec::new())) {
                Value::Array(items) => items,
                _ => {
                    node.origin = origin.clone();
                    Vec::new()
                }
            };
            let child = format!("{path}[{index}]");
            let result = match index.cmp(&items.len()) {
                std::cmp::Ordering::Greater => {
                    let message = format!(
                        "{path} has {} entries, so the next index is {}",
                        items.len(),
                        items.len()
                    );
                    Err(Diagnostic::new(origin.clone(), child, message))
                }
                std::cmp::Ordering::Equal => {
                    items.push(Node::empty_table(origin.clone()));
                    set(&mut items[*index], rest, child, value, origin)
                }
                std::cmp::Ordering::Less => set(&mut items[*index], rest, child, value, origin),
            };
            node.value = Value::Array(items);
            result
        }
    }
}

/// The variable name with an index inserted before its last `steps` steps, to show how a
/// list entry is named.
fn indexed_example(origin: &Origin, steps: usize) -> String {
    let Origin::Env(name) = origin else {
        return String::new();
    };
    let parts: Vec<&str> = name.split("__").collect();
    let (list, rest) = parts.split_at(parts.len().saturating_sub(steps));
    format!("{}__0__{}", list.join("__"), rest.join("__"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn lookup<'n>(node: &'n Node, key: &str) -> &'n Node {
        match &node.value {
            Value::Table(entries) => &entries.iter().find(|e| e.key == key).unwrap().node,
            _ => panic!("not a table"),
        }
    }

    #[test]
    fn keys_are_case_insensitive_snake_case() {
        assert_eq!(snake_case("MAX_REQUEST_BODY_SIZE"), "max_request_body_size");
        assert_eq!(snake_case("MaxRequestBodySize"), "max_request_body_size");
        assert_eq!(snake_case("Http2"), "http2");
    }

    #[test]
    fn creates_nested_tables_and_array_entries() {
        let mut root = Node::empty_table(Origin::Cli("x".into()));
        let problems = apply(
            &mut root,
            &env(&[
                ("HARRIER__ENDPOINTS__1__URL", "http://127.0.0.1:2"),
                ("HARRIER__ENDPOINTS__0__URL", "http://127.0.0.1:1"),
                ("harrier__Limits__Http2__MaxFrameSize", "20000"),
                ("HARRIER_CONFIG", "ignored"),
                ("PATH", "/bin"),
            ]),
        );
        assert!(problems.is_empty(), "{problems:?}");
        let Value::Array(items) = &lookup(&root, "endpoints").value else {
            panic!("endpoints is an array")
        };
        assert_eq!(items.len(), 2);
        let frame = lookup(lookup(lookup(&root, "limits"), "http2"), "max_frame_size");
        assert!(matches!(&frame.value, Value::String(s) if s == "20000"));
    }

    #[test]
    fn gaps_and_keys_into_lists_are_refused() {
        let mut root = Node::empty_table(Origin::Cli("x".into()));
        let problems = apply(&mut root, &env(&[("HARRIER__ENDPOINTS__2__URL", "x")]));
        assert_eq!(
            problems[0].message,
            "endpoints has 0 entries, so the next index is 0"
        );
        let problems = apply(
            &mut root,
            &env(&[
                ("HARRIER__ENDPOINTS__0__URL", "x"),
                ("HARRIER__ENDPOINTS__URL", "y"),
            ]),
        );
        assert_eq!(
            problems[0].message,
            "endpoints is a list: name an entry by its index, e.g. HARRIER__ENDPOINTS__0__URL"
        );
    }
}

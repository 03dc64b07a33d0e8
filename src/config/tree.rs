//! A small, neutral settings tree in which every node remembers where it was written.
//!
//! The TOML file, the environment and the command line all become this one tree, so that the
//! typed reader has a single input and every error can name its origin, whichever layer the
//! value came from.

use std::sync::Arc;

use toml::de::{DeTable, DeValue};
use toml::Spanned;

use super::error::{Diagnostic, Origin};

/// A value with the place it came from.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    /// The value itself.
    pub value: Value,
    /// Where the value was written.
    pub origin: Origin,
}

/// The value kinds TOML has; integers are wide so that range errors can show what was written.
#[derive(Debug, Clone)]
pub(crate) enum Value {
    String(String),
    Integer(i128),
    Float(f64),
    Bool(bool),
    /// Kept only to say what was found; no setting takes a date.
    Datetime(String),
    Array(Vec<Node>),
    Table(Vec<Entry>),
}

/// A key of a table, with the place the key (not its value) was written, for unknown-key
/// errors.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub key: String,
    pub key_origin: Origin,
    pub node: Node,
}

impl Node {
    /// An empty table, the root when there is no settings file.
    pub fn empty_table(origin: Origin) -> Node {
        Node {
            value: Value::Table(Vec::new()),
            origin,
        }
    }

    /// How the value is described in "found ..." messages: scalars as written, containers
    /// by kind.
    pub fn found(&self) -> String {
        match &self.value {
            Value::String(s) => format!("{s:?}"),
            Value::Integer(i) => i.to_string(),
            Value::Float(x) => x.to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Datetime(d) => d.clone(),
            Value::Array(_) => "an array".to_owned(),
            Value::Table(_) => "a table".to_owned(),
        }
    }
}

/// Parses TOML text into a tree whose origins are `name:line:column`.
pub(crate) fn parse(text: &str, name: &str) -> Result<Node, Diagnostic> {
    let lines = Lines::new(text, name);
    let table = DeTable::parse(text).map_err(|e| {
        let offset = e.span().map_or(0, |span| span.start);
        Diagnostic::new(
            lines.origin(offset),
            "",
            format!("invalid TOML: {}", e.message()),
        )
    })?;
    let span = table.span();
    convert(
        Spanned::new(span, DeValue::Table(table.into_inner())),
        &lines,
    )
}

/// Turns the parser's spanned values into nodes, tables in the order they were written.
fn convert(value: Spanned<DeValue<'_>>, lines: &Lines) -> Result<Node, Diagnostic> {
    let origin = lines.origin(value.span().start);
    let value = match value.into_inner() {
        DeValue::String(s) => Value::String(s.into_owned()),
        DeValue::Integer(i) => match i128::from_str_radix(i.as_str(), i.radix()) {
            Ok(i) => Value::Integer(i),
            Err(_) => return Err(Diagnostic::new(origin, "", "integer too large")),
        },
        DeValue::Float(x) => Value::Float(x.as_str().parse().unwrap_or(f64::NAN)),
        DeValue::Boolean(b) => Value::Bool(b),
        DeValue::Datetime(d) => Value::Datetime(d.to_string()),
        DeValue::Array(items) => Value::Array(
            items
                .into_iter()
                .map(|item| convert(item, lines))
                .collect::<Result<_, _>>()?,
        ),
        DeValue::Table(table) => {
            // The parser keeps keys sorted; reading order is nicer for messages.
            let mut entries = table.into_iter().collect::<Vec<_>>();
            entries.sort_by_key(|(key, _)| key.span().start);
            Value::Table(
                entries
                    .into_iter()
                    .map(|(key, node)| {
                        Ok(Entry {
                            key_origin: lines.origin(key.span().start),
                            key: key.into_inner().into_owned(),
                            node: convert(node, lines)?,
                        })
                    })
                    .collect::<Result<_, Diagnostic>>()?,
            )
        }
    };
    Ok(Node { value, origin })
}

/// Turns byte offsets into 1-based line and character column.
struct Lines<'t> {
    text: &'t str,
    name: Arc<str>,
    starts: Vec<usize>,
}

impl<'t> Lines<'t> {
    fn new(text: &'t str, name: &str) -> Self {
        let starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Lines {
            text,
            name: name.into(),
            starts,
        }
    }

    fn origin(&self, offset: usize) -> Origin {
        let offset = offset.min(self.text.len());
        let line = self.starts.partition_point(|&start| start <= offset);
        let start = self.starts[line - 1];
        let column = self
            .text
            .get(start..offset)
            .map_or(0, |s| s.chars().count())
            + 1;
        Origin::File {
            file: self.name.clone(),
            line,
            column,
            offset,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn position(origin: &Origin) -> (usize, usize) {
        match origin {
            Origin::File { line, column, .. } => (*line, *column),
            other => panic!("not a file origin: {other:?}"),
        }
    }

    #[test]
    fn origins_are_one_based_line_and_character_column() {
        let root = parse("a = 1\n[t]\nx = { a = \"é\", b = 1 }\n", "f.toml").unwrap();
        let Value::Table(entries) = root.value else {
            panic!("root is a table")
        };
        assert_eq!(entries[0].key, "a");
        assert_eq!(position(&entries[0].key_origin), (1, 1));
        assert_eq!(position(&entries[0].node.origin), (1, 5));
        let Value::Table(inner) = &entries[1].node.value else {
            panic!("t is a table")
        };
        let Value::Table(x) = &inner[0].node.value else {
            panic!("x is a table")
        };
        assert_eq!(position(&x[1].node.origin), (3, 20));
    }

    #[test]
    fn syntax_errors_have_a_position() {
        let err = parse("a = 1\nb = \"x\n", "f.toml").unwrap_err();
        assert_eq!(position(&err.origin), (2, 7));
        assert!(err.message.starts_with("invalid TOML: "), "{}", err.message);
    }
}

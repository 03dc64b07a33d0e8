//! Reads typed values out of the settings tree, remembering which keys were asked for so that
//! every other key is reported as unknown, with a suggestion when one is close.
//!
//! Errors are collected, not returned: a reader falls back to the default and carries on, so
//! one run reports every problem in the file.

use std::time::Duration;

use super::error::{Diagnostic, Origin};
use super::tree::{Entry, Node, Value};
use super::units;

/// One table of the tree being read: the keys not read yet, and the problems found so far.
pub(crate) struct Section {
    path: String,
    origin: Origin,
    entries: Vec<Entry>,
    known: Vec<&'static str>,
    problems: Vec<Diagnostic>,
}

/// A value taken out of a section, with its full key path for messages.
pub(crate) struct Field {
    pub path: String,
    pub node: Node,
}

impl Section {
    /// Reads `node` as the table at `path`; a non-table is reported and read as empty.
    pub fn new(path: String, node: Node) -> Section {
        let mut section = Section {
            path,
            origin: node.origin.clone(),
            entries: Vec::new(),
            known: Vec::new(),
            problems: Vec::new(),
        };
        match node.value {
            Value::Table(entries) => section.entries = entries,
            _ => {
                let field = Field {
                    path: section.path.clone(),
                    node,
                };
                section
                    .problems
                    .push(field.problem(field.expected("a table")));
            }
        }
        section
    }

    /// The table's key path, such as `sites[0]`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// A problem with `key` of this table (which may be absent), placed at the table.
    pub fn problem_at(&self, key: &str, message: impl Into<String>) -> Diagnostic {
        Diagnostic::new(self.origin.clone(), join(&self.path, key), message)
    }

    /// Takes `key` out of the section, marking it as a known key.
    pub fn take(&mut self, key: &'static str) -> Option<Field> {
        self.known.push(key);
        let index = self.entries.iter().position(|entry| entry.key == key)?;
        let entry = self.entries.remove(index);
        Some(Field {
            path: join(&self.path, key),
            node: entry.node,
        })
    }

    /// Reads `key` with `parse`, or gives `default` when it is absent or wrong (the problem
    /// is recorded).
    pub fn read<T>(
        &mut self,
        key: &'static str,
        default: T,
        parse: impl FnOnce(&Field) -> Result<T, String>,
    ) -> T {
        match self.take(key) {
            Some(field) => self.check(&field, parse(&field)).unwrap_or(default),
            None => default,
        }
    }

    /// Takes `key`, which must be present: when it is absent, "missing: `why`" is reported
    /// at the table.
    pub fn require(&mut self, key: &'static str, why: &str) -> Option<Field> {
        let field = self.take(key);
        if field.is_none() {
            self.report(self.problem_at(key, format!("missing: {why}")));
        }
        field
    }

    /// A key that is either "off" or a table: `None` when it is absent or wrong (the
    /// problem is recorded; `example` describes the table in it), `Some(None)` for "off",
    /// and the table to read otherwise. Close the table into `self` when done.
    pub fn off_or_table(&mut self, key: &'static str, example: &str) -> Option<Option<Section>> {
        let field = self.take(key)?;
        if matches!(field.node.value, Value::Table(_)) {
            return Some(Some(Section::new(field.path, field.node)));
        }
        let result = field.or_keyword::<()>("off", |f| Err(f.expected(example)));
        self.check(&field, result).map(|_| None)
    }

    /// A non-empty list of distinct values out of `allowed`, each with its item (for
    /// problems about one item); a bad item is reported and left out, an empty list is
    /// reported with `empty` and gives `None`, as does a value that is not a list.
    pub fn distinct(
        &mut self,
        field: &Field,
        allowed: &[&'static str],
        empty: &str,
    ) -> Option<Vec<(Field, &'static str)>> {
        let items = self.list(field, empty);
        if items.is_empty() {
            return None;
        }
        let mut seen: Vec<(Field, &'static str)> = Vec::new();
        for item in items {
            let Some(value) = self.check(&item, item.choice(allowed)) else {
                continue;
            };
            if seen.iter().any(|(_, v)| *v == value) {
                self.report(item.problem(format!("{value} is listed twice")));
            } else {
                seen.push((item, value));
            }
        }
        Some(seen)
    }

    /// Each string of `items` read by `parse`; an item that is bad, or equal to an earlier
    /// one, is reported and left out.
    pub fn distinct_strings<T: PartialEq + std::fmt::Display>(
        &mut self,
        items: Vec<Field>,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Vec<T> {
        let mut values: Vec<T> = Vec::new();
        for item in items {
            let value = item.string().and_then(|s| parse(&s)).and_then(|v| {
                if values.contains(&v) {
                    Err(format!("\"{v}\" is listed twice"))
                } else {
                    Ok(v)
                }
            });
            values.extend(self.check(&item, value));
        }
        values
    }

    /// The items of the list `field`; an empty list is reported with `empty` (such a list
    /// would match or name nothing), a value that is not a list as such.
    pub fn list(&mut self, field: &Field, empty: &str) -> Vec<Field> {
        let items = self.check(field, field.items());
        if items.as_ref().is_some_and(Vec::is_empty) {
            self.report(field.problem(empty));
        }
        items.unwrap_or_default()
    }

    /// Turns a parse result into a value, recording the problem under the field's name.
    pub fn check<T>(&mut self, field: &Field, result: Result<T, String>) -> Option<T> {
        result
            .map_err(|message| self.report(field.problem(message)))
            .ok()
    }

    /// Records a problem found by the caller.
    pub fn report(&mut self, problem: Diagnostic) {
        self.problems.push(problem);
    }

    /// Takes `key` without listing it among the keys known here, reporting `message` when
    /// it is present: for keys that belong elsewhere (such as a site's `static.root`).
    pub fn reject(&mut self, key: &str, message: &str) {
        if let Some(index) = self.entries.iter().position(|entry| entry.key == key) {
            let entry = self.entries.remove(index);
            let path = join(&self.path, key);
            self.report(Diagnostic::new(entry.key_origin, path, message));
        }
    }

    /// Drops the keys not read yet without reporting them: once a table's `type` is wrong,
    /// its other keys cannot be judged, and one mistake should give one message.
    pub fn skip_rest(&mut self) {
        self.entries.clear();
    }

    /// Reads each table of the array `key` (`[[key]]`, or an array of inline tables) with
    /// `read`; `example` shows the array in "expected ..." messages, e.g. "[[sites]]". An
    /// item that is not a table is reported and left out.
    pub fn tables<T>(
        &mut self,
        key: &'static str,
        example: &str,
        mut read: impl FnMut(&mut Section) -> T,
    ) -> Vec<T> {
        let Some(field) = self.take(key) else {
            return Vec::new();
        };
        let expected = |_| field.expected(&format!("an array of tables ({example})"));
        let items = field.items().map_err(expected);
        let mut read_all = Vec::new();
        for item in self.check(&field, items).unwrap_or_default() {
            let Some(mut t) = self.table(item, "a table") else {
                continue;
            };
            read_all.push(read(&mut t));
            t.close_into(self);
        }
        read_all
    }

    /// The sub-table `key`, empty when absent.
    pub fn section(&mut self, key: &'static str) -> Section {
        let origin = self.origin.clone();
        let path = join(&self.path, key);
        let node = self
            .take(key)
            .map_or_else(|| Node::empty_table(origin), |f| f.node);
        Section::new(path, node)
    }

    /// `field` as a table to read (close it into `self` when done), or `None` when it is
    /// something else, recorded as "expected `example`".
    pub fn table(&mut self, field: Field, example: &str) -> Option<Section> {
        if matches!(field.node.value, Value::Table(_)) {
            Some(Section::new(field.path, field.node))
        } else {
            self.report(field.problem(field.expected(example)));
            None
        }
    }

    /// Ends reading a sub-section: its problems, and its unknown keys, go to `parent`.
    pub fn close_into(self, parent: &mut Section) {
        parent.problems.extend(self.finish());
    }

    /// Ends reading: every key that was not asked for is unknown.
    pub fn finish(mut self) -> Vec<Diagnostic> {
        for entry in std::mem::take(&mut self.entries) {
            let message = match suggest(&entry.key, &self.known) {
                Some(near) => format!("unknown key, did you mean \"{near}\"?"),
                None => format!("unknown key (known here: {})", self.known.join(", ")),
            };
            self.problems.push(Diagnostic::new(
                entry.key_origin,
                join(&self.path, &entry.key),
                message,
            ));
        }
        self.problems
    }
}

/// `parent.key`, or just `key` at the top.
fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_owned()
    } else {
        format!("{parent}.{key}")
    }
}

/// A key as TOML writes it: bare when it can be (letters, digits, `-`, `_`), else quoted.
pub(crate) fn bare_or_quoted(key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if bare {
        key.to_owned()
    } else {
        toml::Value::String(key.to_owned()).to_string()
    }
}

/// The closest candidate to a misspelt `word`, if one is close enough to be a likely typo:
/// similar by Jaro-Winkler, or (for short names, where Jaro-Winkler misses swapped letters
/// such as "wbe" for "web") one edit away. Numbers such as "1.1" are not typos of "1.3".
pub(crate) fn suggest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let name = word.len() >= 3 && word.bytes().any(|b| b.is_ascii_alphabetic());
    candidates
        .iter()
        .map(|c| (strsim::jaro_winkler(word, c), *c))
        .filter(|(score, c)| *score >= 0.85 || (name && strsim::osa_distance(word, c) <= 1))
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// How each kind of value is described in "expected ..." messages.
pub(crate) const SIZE: &str = "a size like \"30MB\", \"64KiB\" or a number of bytes";
pub(crate) const DURATION: &str = "a duration like \"130s\", \"5m\" or \"250ms\"";
pub(crate) const COUNT: &str = "a whole number";
pub(crate) const BOOL: &str = "true or false";
pub(crate) const STRING: &str = "a string";

impl Field {
    /// A problem with this field, placed at its value.
    pub fn problem(&self, message: impl Into<String>) -> Diagnostic {
        Diagnostic::new(self.node.origin.clone(), self.path.clone(), message)
    }

    /// "expected WHAT, found VALUE".
    pub fn expected(&self, what: &str) -> String {
        format!("expected {what}, found {}", self.node.found())
    }

    /// Environment variables only carry strings, so there a string may stand for a bool, a
    /// number or a list.
    fn env_text(&self) -> Option<&str> {
        match (&self.node.value, &self.node.origin) {
            (Value::String(s), Origin::Env(_)) => Some(s.trim()),
            _ => None,
        }
    }

    /// `true` / `false`.
    pub fn bool(&self) -> Result<bool, String> {
        match (&self.node.value, self.env_text()) {
            (Value::Bool(b), _) => Ok(*b),
            (_, Some(text)) if text.eq_ignore_ascii_case("true") => Ok(true),
            (_, Some(text)) if text.eq_ignore_ascii_case("false") => Ok(false),
            _ => Err(self.expected(BOOL)),
        }
    }

    /// Any string.
    pub fn string(&self) -> Result<String, String> {
        match &self.node.value {
            Value::String(s) => Ok(s.clone()),
            _ => Err(self.expected(STRING)),
        }
    }

    /// A non-negative whole number.
    pub fn count(&self) -> Result<u64, String> {
        let parsed = match (&self.node.value, self.env_text()) {
            (Value::Integer(i), _) => u64::try_from(*i).ok(),
            (_, Some(text)) => units::parse_integer(text),
            _ => None,
        };
        parsed.ok_or_else(|| self.expected(COUNT))
    }

    /// Bytes, as an integer or a string with a unit.
    pub fn size(&self) -> Result<u64, String> {
        let parsed = match &self.node.value {
            Value::Integer(i) => u64::try_from(*i).ok(),
            Value::String(s) => units::parse_size(s),
            _ => None,
        };
        parsed.ok_or_else(|| self.expected(SIZE))
    }

    /// A humantime duration string.
    pub fn duration(&self) -> Result<Duration, String> {
        let parsed = match &self.node.value {
            Value::String(s) => units::parse_duration(s),
            _ => None,
        };
        parsed.ok_or_else(|| self.expected(DURATION))
    }

    /// `keyword` (such as "unlimited" or "off") as `None`, else what `parse` reads; the
    /// keyword is added to the "expected" part of the message.
    pub fn or_keyword<T>(
        &self,
        keyword: &str,
        parse: impl FnOnce(&Field) -> Result<T, String>,
    ) -> Result<Option<T>, String> {
        if matches!(&self.node.value, Value::String(s) if s.trim().eq_ignore_ascii_case(keyword)) {
            return Ok(None);
        }
        parse(self)
            .map(Some)
            .map_err(|message| match message.split_once(", found ") {
                Some((expected, found)) => {
                    format!("{expected}, or \"{keyword}\", found {found}")
                }
                None => message,
            })
    }

    /// One of `allowed` (case-insensitive), suggesting the closest on a typo.
    pub fn choice(&self, allowed: &[&'static str]) -> Result<&'static str, String> {
        let list = allowed.join(", ");
        let Value::String(text) = &self.node.value else {
            // A bare 1.3 or true: say that it has to be written as a string.
            return Err(self.expected(&format!("a string, one of {list}")));
        };
        let text = text.trim();
        if let Some(found) = allowed.iter().find(|a| a.eq_ignore_ascii_case(text)) {
            return Ok(found);
        }
        let mut message = self.expected(&format!("one of {list}"));
        if let Some(near) = suggest(&text.to_ascii_lowercase(), allowed) {
            message = format!("{message}, did you mean \"{near}\"?");
        }
        Err(message)
    }

    /// The entries of a table whose keys are names chosen by the user (header names, query
    /// parameters), each a field `path.key` (the key quoted when it is not bare), with the
    /// place its key was written.
    pub fn entries(&self, example: &str) -> Result<Vec<(String, Origin, Field)>, String> {
        let Value::Table(entries) = &self.node.value else {
            return Err(self.expected(example));
        };
        Ok(entries
            .iter()
            .map(|entry| {
                let field = Field {
                    path: format!("{}.{}", self.path, bare_or_quoted(&entry.key)),
                    node: entry.node.clone(),
                };
                (entry.key.clone(), entry.key_origin.clone(), field)
            })
            .collect())
    }

    /// The items of an array, each a field `path[i]`; from the environment, a
    /// comma-separated string.
    pub fn items(&self) -> Result<Vec<Field>, String> {
        let nodes = match (&self.node.value, self.env_text()) {
            (Value::Array(nodes), _) => nodes.clone(),
            (_, Some(text)) => text
                .split(',')
                .map(str::trim)
                .filter(|item| !item.is_empty())
                .map(|item| Node {
                    value: Value::String(item.to_owned()),
                    origin: self.node.origin.clone(),
                })
                .collect(),
            _ => return Err(self.expected("an array")),
        };
        Ok(nodes
            .into_iter()
            .enumerate()
            .map(|(i, node)| Field {
                path: format!("{}[{i}]", self.path),
                node,
            })
            .collect())
    }
}

/// Checks `lo <= value <= hi`.
pub(crate) fn in_range<T>(value: T, lo: T, hi: T) -> Result<T, String>
where
    T: PartialOrd + std::fmt::Display,
{
    if value < lo || value > hi {
        Err(format!("must be between {lo} and {hi}, found {value}"))
    } else {
        Ok(value)
    }
}

/// Checks `value >= lo`.
pub(crate) fn at_least<T>(value: T, lo: T) -> Result<T, String>
where
    T: PartialOrd + std::fmt::Display,
{
    if value < lo {
        Err(format!("must be at least {lo}, found {value}"))
    } else {
        Ok(value)
    }
}

/// A timeout: a duration longer than zero (zero would close everything at once).
pub(crate) fn timeout(f: &Field) -> Result<Duration, String> {
    f.duration().and_then(positive)
}

/// Checks that a duration is not zero (a zero timeout would close everything at once).
pub(crate) fn positive(value: Duration) -> Result<Duration, String> {
    if value.is_zero() {
        Err("must be longer than 0s".to_owned())
    } else {
        Ok(value)
    }
}

/// Narrows a number to the model's type (`max` is that type's largest value), saying the
/// limit when it does not fit.
pub(crate) fn narrow<T>(value: u64, max: T) -> Result<T, String>
where
    T: TryFrom<u64> + std::fmt::Display,
{
    T::try_from(value).map_err(|_| format!("must be at most {max}, found {value}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(value: Value, origin: Origin) -> Field {
        Field {
            path: "a.b".to_owned(),
            node: Node { value, origin },
        }
    }

    fn file() -> Origin {
        Origin::File {
            file: "f".into(),
            line: 1,
            column: 1,
            offset: 0,
        }
    }

    #[test]
    fn env_strings_stand_for_bools_numbers_and_lists() {
        let env = |s: &str| field(Value::String(s.to_owned()), Origin::Env("X".to_owned()));
        assert_eq!(env("true").bool(), Ok(true));
        assert_eq!(env("FALSE").bool(), Ok(false));
        assert_eq!(env("1_000").count(), Ok(1000));
        let items = env("http1, http2").items().unwrap();
        assert_eq!(items[1].string(), Ok("http2".to_owned()));
        assert_eq!(items[1].path, "a.b[1]");
        let from_file = field(Value::String("true".to_owned()), file());
        assert_eq!(
            from_file.bool(),
            Err("expected true or false, found \"true\"".into())
        );
    }

    #[test]
    fn keywords_extend_the_expected_message() {
        let lots = field(Value::String("lots".to_owned()), file());
        assert_eq!(
            lots.or_keyword("unlimited", Field::size),
            Err(format!("expected {SIZE}, or \"unlimited\", found \"lots\""))
        );
        let off = field(Value::String("Unlimited".to_owned()), file());
        assert_eq!(off.or_keyword("unlimited", Field::size), Ok(None));
    }

    #[test]
    fn suggestions_only_when_close() {
        let keys = ["max_request_body_size", "keep_alive_timeout"];
        assert_eq!(
            suggest("max_reqest_body_size", &keys),
            Some("max_request_body_size")
        );
        assert_eq!(suggest("colour", &keys), None);
        assert_eq!(suggest("wbe", &["web", "admin"]), Some("web"));
        assert_eq!(suggest("1.1", &["1.2", "1.3"]), None);
    }
}

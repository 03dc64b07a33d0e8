//! Where a setting came from, and the errors that name it.
//!
//! Every message has the form `ORIGIN: KEY: what is wrong`, where ORIGIN is `file:line:column`,
//! `environment variable NAME` or `command-line option --flag`, so a user can go straight to
//! the place to fix.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

/// Where a value (or a key) was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A position in a settings file; `line` and `column` are 1-based, `column` in characters.
    File {
        /// The file's name as it was given (relative names stay relative, for short messages).
        file: Arc<str>,
        /// 1-based line.
        line: usize,
        /// 1-based column, counted in characters.
        column: usize,
        /// Byte offset, to order messages as they appear in the file.
        offset: usize,
    },
    /// An `HARRIER__...` environment variable, by name.
    Env(String),
    /// A command-line option or argument, e.g. `option --port` or `argument APP_DIR`.
    Cli(String),
}

impl Origin {
    /// Orders origins the way a user reads them: the file top to bottom, then the
    /// environment by variable name, then the command line as it was read (sorting is
    /// stable).
    fn sort_key(&self) -> (u8, usize, &str) {
        match self {
            Origin::File { offset, .. } => (0, *offset, ""),
            Origin::Env(name) => (1, 0, name),
            Origin::Cli(_) => (2, 0, ""),
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File {
                file, line, column, ..
            } => write!(f, "{file}:{line}:{column}"),
            Origin::Env(name) => write!(f, "environment variable {name}"),
            Origin::Cli(what) => write!(f, "command-line {what}"),
        }
    }
}

/// One problem found in the settings, with the place and the full key path it concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Where the offending key or value was written.
    pub origin: Origin,
    /// Full key path such as `limits.http2.max_frame_size` or `endpoints[1].url`; empty for
    /// problems with the document as a whole (TOML syntax).
    pub key: String,
    /// What is wrong, and what would be right.
    pub message: String,
}

impl Diagnostic {
    /// A problem with `key`, found at `origin`.
    pub(crate) fn new(origin: Origin, key: impl Into<String>, message: impl Into<String>) -> Self {
        Diagnostic {
            origin,
            key: key.into(),
            message: message.into(),
        }
    }

    /// Whether the problem is in a command-line value, which makes it a usage error.
    pub fn is_usage(&self) -> bool {
        matches!(self.origin, Origin::Cli(_))
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(f, "{}: {}", self.origin, self.message)
        } else {
            write!(f, "{}: {}: {}", self.origin, self.key, self.message)
        }
    }
}

/// Every problem found while loading, in reading order, shown one per line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostics(Vec<Diagnostic>);

impl Diagnostics {
    /// Sorts `list` into reading order (file, environment, command line); `None` when empty.
    pub(crate) fn from_list(mut list: Vec<Diagnostic>) -> Option<Diagnostics> {
        list.sort_by(|a, b| a.origin.sort_key().cmp(&b.origin.sort_key()));
        (!list.is_empty()).then_some(Diagnostics(list))
    }

    /// A single problem, such as a TOML syntax error that stops reading.
    pub(crate) fn one(problem: Diagnostic) -> Diagnostics {
        Diagnostics(vec![problem])
    }

    /// The problems, in reading order.
    pub fn list(&self) -> &[Diagnostic] {
        &self.0
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, diagnostic) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{diagnostic}")?;
        }
        Ok(())
    }
}

/// Why the settings could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The settings file named by `-c`, `HARRIER_CONFIG` or discovery could not be read.
    #[error("{}: cannot read settings file: {error}", path.display())]
    Read {
        /// The file as named.
        path: PathBuf,
        /// What the operating system said.
        error: std::io::Error,
    },
    /// The settings were read but are invalid; every problem is listed, one per line.
    #[error("{0}")]
    Invalid(Diagnostics),
}

impl ConfigError {
    /// True when a command-line value is at fault (exit code 2 rather than 1): the command
    /// has to be fixed before anything in the settings file matters.
    pub fn is_usage(&self) -> bool {
        match self {
            ConfigError::Read { .. } => false,
            ConfigError::Invalid(list) => list.list().iter().any(Diagnostic::is_usage),
        }
    }
}

//! Reads a `basic_auth` stage: `realm` and `users` (names to password hashes). Plain
//! passwords are refused here, at load time, so that a settings file never holds one.

use super::reader::{Field, Section};
use super::site_model::BasicAuthStage;
use super::stages::key_problem;

/// How `users` is described in messages.
const USERS: &str = "a table of user names and password hashes, like { alice = \"$argon2id$...\" }";

/// The `basic_auth` stage of table `t`.
pub(crate) fn read(t: &mut Section) -> BasicAuthStage {
    let realm = t.read("realm", "harrier".to_owned(), |f| realm(&f.string()?));
    let mut users = Vec::new();
    if let Some(f) = t.require("users", USERS) {
        let entries = t.check(&f, f.entries(USERS)).unwrap_or_default();
        if entries.is_empty() && matches!(f.node.value, super::tree::Value::Table(_)) {
            t.report(f.problem("at least one user is needed: no one could log in"));
        }
        for (name, name_at, value) in entries {
            if name.is_empty() || name.contains(':') || name.chars().any(char::is_control) {
                let message = "a user name cannot be empty or contain ':'".to_owned();
                t.report(key_problem(&value, name_at, message));
                continue;
            }
            if let Some(hash) = t.check(&value, password_hash(&value)) {
                users.push((name, hash));
            }
        }
    }
    BasicAuthStage { realm, users }
}

/// A realm: printable text without quotes or backslashes (it is sent inside quotes).
fn realm(text: &str) -> Result<String, String> {
    if text.is_empty()
        || text
            .chars()
            .any(|c| c.is_control() || c == '"' || c == '\\')
    {
        return Err(format!(
            "{text:?} is not a usable realm (non-empty, no quotes, backslashes or controls)"
        ));
    }
    Ok(text.to_owned())
}

/// A bcrypt (`$2b$...`) or argon2 PHC (`$argon2id$...`) hash; anything else is taken to be
/// a plain password and refused.
fn password_hash(f: &Field) -> Result<String, String> {
    let text = f.string()?;
    let ok = if text.starts_with("$argon2") {
        argon2::PasswordHash::new(&text).is_ok_and(|h| {
            matches!(h.algorithm.as_str(), "argon2id" | "argon2i" | "argon2d") && h.hash.is_some()
        })
    } else {
        is_bcrypt(&text)
    };
    if ok {
        Ok(text)
    } else if text.starts_with('$') {
        Err("not a valid bcrypt or argon2 hash: run `harrier hash-password` to make one".into())
    } else {
        Err("a plain password is not allowed: store a hash: run `harrier hash-password`".into())
    }
}

/// `$2a$`, `$2b$`, `$2x$` or `$2y$`, a two-digit cost, `$`, then 53 characters of salt and
/// hash in bcrypt's base64 alphabet.
fn is_bcrypt(text: &str) -> bool {
    let b = text.as_bytes();
    b.len() == 60
        && text.starts_with("$2")
        && matches!(b[2], b'a' | b'b' | b'x' | b'y')
        && b[3] == b'$'
        && b[4].is_ascii_digit()
        && b[5].is_ascii_digit()
        && b[6] == b'$'
        && b[7..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'.' || *c == b'/')
}

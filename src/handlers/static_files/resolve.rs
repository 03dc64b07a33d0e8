//! Path safety: turning a request path into a file below the root, and nothing else.
//!
//! Two layers, because either alone has known holes. [`decode_path`] works on the URL: it
//! decodes exactly once, segment by segment, and rejects every form that could climb out of
//! the root or mean different things to us and to the file system (encoded separators, dot
//! segments, double encoding, overlong UTF-8, NUL, Windows device names and streams).
//! [`Root::locate`] works on the file system: it canonicalises the joined path and checks
//! that the result is still below the canonical root, which catches symlinks and, on Windows,
//! 8.3 short names that dodge the hidden-file rule.

use std::borrow::Cow;
use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};

use percent_encoding::percent_decode_str;

/// Why a request path is refused before the file system is asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// Malformed or dangerous: answered with 400.
    BadRequest,
    /// A hidden file or directory: answered as if it did not exist.
    Hidden,
}

/// Which checks [`decode_path`] applies beyond the ones that are always on.
#[derive(Debug, Clone, Copy)]
pub struct Rules {
    /// Segments starting with `.` are allowed.
    pub hidden_ok: bool,
    /// Apply Windows file-name rules (on by default only on Windows; tests turn it on anywhere).
    pub windows: bool,
}

/// The first segment that is exempt from the hidden-file rule (ACME, security.txt, ...).
const WELL_KNOWN: &str = ".well-known";

/// Decodes `raw` (the path part of the request target) once and checks every segment.
///
/// The result is the decoded path, starting with `/`, with empty segments merged and a
/// trailing `/` kept. It borrows `raw` when nothing had to change, so a cache lookup with it
/// costs no allocation. Because a decoded segment can never contain `/`, splitting the result
/// on `/` gives back exactly the checked segments.
pub fn decode_path(raw: &str, rules: Rules) -> Result<Cow<'_, str>, Rejection> {
    let rest = raw.strip_prefix('/').ok_or(Rejection::BadRequest)?;
    if is_plain(raw) {
        return plain_path(raw, rest, rules);
    }
    decode_general(raw, rest, rules)
}

/// Whether `raw` needs neither decoding nor the per-byte checks: only ASCII letters, digits
/// and `-._~/`, and no empty segment but a trailing one. Most request paths are like this.
fn is_plain(raw: &str) -> bool {
    let mut prev = 0u8;
    raw.bytes().all(|b| {
        let ok = b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'.' | b'_' | b'~')
            || (b == b'/' && prev != b'/');
        prev = b;
        ok
    })
}

/// [`decode_general`] for a path that [`is_plain`]: only dot segments, hidden names and
/// Windows names are left to check, and the result is always `raw` itself.
fn plain_path<'a>(raw: &'a str, rest: &str, rules: Rules) -> Result<Cow<'a, str>, Rejection> {
    let mut hidden = false;
    for (i, seg) in rest.split('/').filter(|s| !s.is_empty()).enumerate() {
        if seg == "." || seg == ".." || (rules.windows && !windows_safe(seg)) {
            return Err(Rejection::BadRequest);
        }
        hidden |= seg.starts_with('.') && !rules.hidden_ok && !(i == 0 && seg == WELL_KNOWN);
    }
    if hidden {
        return Err(Rejection::Hidden);
    }
    Ok(Cow::Borrowed(raw))
}

/// [`decode_path`] for any path: each segment decoded once and checked.
fn decode_general<'a>(raw: &'a str, rest: &str, rules: Rules) -> Result<Cow<'a, str>, Rejection> {
    let borrow = !raw.contains('%') && !raw.contains("//");
    let mut out = String::new();
    let mut hidden = false;
    for (i, raw_seg) in rest.split('/').filter(|s| !s.is_empty()).enumerate() {
        if raw_seg.contains('\\') {
            return Err(Rejection::BadRequest);
        }
        let seg = decode_segment(raw_seg)?;
        check_segment(&seg, rules.windows)?;
        // Keep checking after a hidden segment: a later malformed one must still give 400.
        hidden |= seg.starts_with('.') && !rules.hidden_ok && !(i == 0 && seg == WELL_KNOWN);
        if !borrow {
            out.push('/');
            out.push_str(&seg);
        }
    }
    if hidden {
        return Err(Rejection::Hidden);
    }
    if borrow {
        return Ok(Cow::Borrowed(raw));
    }
    if out.is_empty() || raw.ends_with('/') {
        out.push('/');
    }
    Ok(Cow::Owned(out))
}

/// Percent-decodes one segment after checking that every `%` starts a valid escape.
fn decode_segment(raw: &str) -> Result<Cow<'_, str>, Rejection> {
    let bytes = raw.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'%' && !is_escape(bytes.get(i + 1..i + 3)) {
            return Err(Rejection::BadRequest);
        }
    }
    // `decode_utf8` fails on any invalid sequence, overlong forms like %c0%ae included.
    percent_decode_str(raw)
        .decode_utf8()
        .map_err(|_| Rejection::BadRequest)
}

fn is_escape(pair: Option<&[u8]>) -> bool {
    matches!(pair, Some([a, b]) if a.is_ascii_hexdigit() && b.is_ascii_hexdigit())
}

/// Rejects a decoded segment that the file system could read as something else.
fn check_segment(seg: &str, windows: bool) -> Result<(), Rejection> {
    let bad = seg == "."
        || seg == ".."
        || seg.contains(['/', '\\'])
        // NUL truncates C paths; CR/LF would end up in a Location header.
        || seg.chars().any(char::is_control)
        // What is left of a double encoding (`%252e` → `%2e`) would be decoded by someone else.
        || seg
            .as_bytes()
            .iter()
            .enumerate()
            .any(|(i, &b)| b == b'%' && is_escape(seg.as_bytes().get(i + 1..i + 3)))
        || (windows && !windows_safe(seg));
    if bad {
        Err(Rejection::BadRequest)
    } else {
        Ok(())
    }
}

/// Windows reads `a:b` as a stream or drive, drops trailing dots and spaces (so `x.` is `x`),
/// and opens devices for names like `CON` or `nul.txt` in any folder.
fn windows_safe(seg: &str) -> bool {
    if seg.contains([':', '<', '>', '"', '|', '?', '*']) || seg.ends_with(['.', ' ']) {
        return false;
    }
    let stem = seg.split('.').next().unwrap_or(seg).trim_end_matches(' ');
    let upper = stem.to_ascii_uppercase();
    let device = matches!(
        upper.as_str(),
        "CON" | "PRN" | "AUX" | "NUL" | "CONIN$" | "CONOUT$"
    ) || ["COM", "LPT"].iter().any(|p| {
        upper.strip_prefix(p).is_some_and(|n| {
            matches!(n, "0" | "1" | "2" | "3" | "4" | "5" | "6" | "7" | "8" | "9")
                || matches!(n, "¹" | "²" | "³")
        })
    });
    !device
}

/// Checks a path from the settings file (fallback, 404 page, index name), relative to the
/// root with `/` separators, and returns it in decoded form (`/a/b`). Settings are trusted not
/// to be malicious but not to be well-formed: `../x` would leave the root, `a\b` differs by OS.
pub fn config_path(value: &str, windows: bool) -> Option<String> {
    let mut out = String::with_capacity(value.len() + 1);
    for segment in value.split('/').filter(|s| !s.is_empty()) {
        check_segment(segment, windows).ok()?;
        out.push('/');
        out.push_str(segment);
    }
    (!out.is_empty()).then_some(out)
}

/// A file found below the root, by its canonical path.
#[derive(Debug)]
pub struct Located {
    /// Canonical path: symlinks resolved, so opening it cannot be redirected by a link.
    pub path: PathBuf,
    /// Metadata of the target.
    pub meta: fs::Metadata,
}

/// The canonical root directory and the file-system side of the safety rules.
#[derive(Debug)]
pub struct Root {
    canonical: PathBuf,
    follow_symlinks: bool,
}

impl Root {
    /// Canonicalises `root` once, so every later containment check compares like with like.
    pub fn new(root: &Path, follow_symlinks: bool) -> io::Result<Root> {
        let canonical = fs::canonicalize(root)?;
        if !fs::metadata(&canonical)?.is_dir() {
            return Err(io::Error::other("not a directory"));
        }
        Ok(Root {
            canonical,
            follow_symlinks,
        })
    }

    /// The canonical root.
    #[cfg(test)]
    pub fn path(&self) -> &Path {
        &self.canonical
    }

    /// The path named by a checked, decoded request path (see [`decode_path`]).
    pub fn join(&self, decoded: &str) -> PathBuf {
        let mut path = self.canonical.clone();
        path.extend(decoded.split('/').filter(|s| !s.is_empty()));
        path
    }

    /// Finds `path` on disk. Anything that escapes the root through a symlink (unless
    /// `follow_symlinks`), or whose real name is hidden (unless `hidden_ok`), is reported as
    /// `NotFound`, so callers cannot tell it from a missing file.
    pub fn locate(&self, path: &Path, hidden_ok: bool) -> io::Result<Located> {
        let canonical = fs::canonicalize(path)?;
        match canonical.strip_prefix(&self.canonical) {
            Ok(rel) if !hidden_ok && has_hidden(rel) => return Err(not_found()),
            Ok(_) => {}
            Err(_) if !self.follow_symlinks => return Err(not_found()),
            Err(_) => {}
        }
        let meta = fs::metadata(&canonical)?;
        Ok(Located {
            path: canonical,
            meta,
        })
    }

    /// Opens a located regular file for reading and returns the metadata of the open handle.
    ///
    /// The handle's own metadata is what the response describes, so a file replaced between
    /// lookup and open is noticed. The path is canonical, so no symlink is followed unless
    /// someone who can write below the root swaps one in during that window; such a writer
    /// could publish the file's contents anyway.
    pub fn open(&self, path: &Path) -> io::Result<(fs::File, fs::Metadata)> {
        let file = fs::File::open(path)?;
        let meta = file.metadata()?;
        if !meta.is_file() {
            return Err(not_found());
        }
        Ok((file, meta))
    }
}

/// Whether a path relative to the root has a hidden component (`.well-known` first is fine).
fn has_hidden(rel: &Path) -> bool {
    rel.components().enumerate().any(|(i, c)| match c {
        Component::Normal(name) => {
            let name = name.to_string_lossy();
            name.starts_with('.') && !(i == 0 && name == WELL_KNOWN)
        }
        _ => true,
    })
}

fn not_found() -> io::Error {
    io::Error::from(io::ErrorKind::NotFound)
}

/// Whether an I/O error means "there is no such file here" (404) rather than a fault.
///
/// A file used as a directory, a name too long, or a symlink loop all mean the URL names
/// nothing. Their `ErrorKind`s are newer than this crate's minimum Rust version (or still
/// unstable) but std already maps the OS codes to them, and their names are stable in `Debug`.
pub fn is_missing(err: &io::Error) -> bool {
    match err.kind() {
        io::ErrorKind::NotFound => true,
        kind => matches!(
            format!("{kind:?}").as_str(),
            "NotADirectory" | "InvalidFilename" | "FilesystemLoop"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UNIX: Rules = Rules {
        hidden_ok: false,
        windows: false,
    };
    const WINDOWS: Rules = Rules {
        hidden_ok: false,
        windows: true,
    };

    fn ok(raw: &str) -> String {
        decode_path(raw, UNIX).unwrap().into_owned()
    }

    fn bad(raw: &str, rules: Rules) {
        assert_eq!(decode_path(raw, rules), Err(Rejection::BadRequest), "{raw}");
    }

    #[test]
    fn plain_paths_are_borrowed() {
        assert!(matches!(
            decode_path("/a/b.txt", UNIX),
            Ok(Cow::Borrowed("/a/b.txt"))
        ));
        assert!(matches!(decode_path("/", UNIX), Ok(Cow::Borrowed("/"))));
        assert!(matches!(
            decode_path("/dir/", UNIX),
            Ok(Cow::Borrowed("/dir/"))
        ));
    }

    #[test]
    fn the_plain_path_shortcut_agrees_with_the_general_decoder() {
        let segs = [
            "a",
            ".",
            "..",
            ".h",
            ".well-known",
            "CON",
            "nul.txt",
            "x.",
            "~u",
            "a-b_c.d",
            "",
        ];
        let mut checked = 0;
        for a in segs {
            for b in segs {
                for tail in ["", "/"] {
                    let raw = format!("/{a}/{b}{tail}");
                    for hidden_ok in [false, true] {
                        for windows in [false, true] {
                            let rules = Rules { hidden_ok, windows };
                            let general = decode_general(&raw, &raw[1..], rules);
                            assert_eq!(decode_path(&raw, rules), general, "{raw} {rules:?}");
                            checked += usize::from(is_plain(&raw));
                        }
                    }
                }
            }
        }
        // Paths with an empty inner segment ("//") take the general path; the rest do not.
        assert!(checked > 400, "{checked}");
    }

    #[test]
    fn decodes_once_and_merges_slashes() {
        assert_eq!(ok("/a%20b/c%C3%A9.txt"), "/a b/cé.txt");
        assert_eq!(ok("//a///b"), "/a/b");
        assert_eq!(ok("/a//b/"), "/a/b/");
        assert_eq!(ok("//"), "/");
        assert_eq!(ok("/x/%41/"), "/x/A/");
        assert_eq!(ok("/100%25.txt"), "/100%.txt");
    }

    #[test]
    fn rejects_dot_segments_raw_and_encoded() {
        for raw in [
            "/..",
            "/../etc/passwd",
            "/a/../b",
            "/a/./b",
            "/.",
            "/%2e%2e/x",
            "/%2E%2E",
            "/%2e",
            "/a/.%2e/b",
            "/a/%2e./b",
        ] {
            bad(raw, UNIX);
        }
    }

    #[test]
    fn rejects_encoded_slash_and_backslash() {
        for raw in [
            "/a%2fb",
            "/a%2F..%2Fb",
            "/..%2fetc",
            "/a\\b",
            "/..\\x",
            "/a%5cb",
            "/%5C..",
        ] {
            bad(raw, UNIX);
        }
    }

    #[test]
    fn rejects_bad_escapes_and_utf8() {
        for raw in [
            "/a%",
            "/a%2",
            "/a%zz",
            "/%%41",
            "/a%ff",
            "/%c0%ae%c0%ae/x",
            "/%c0%af",
            "/%e0%80%ae",
        ] {
            bad(raw, UNIX);
        }
    }

    #[test]
    fn rejects_nul_controls_and_double_encoding() {
        for raw in [
            "/a%00.txt",
            "/a%0d%0aset-cookie:x",
            "/a%7f",
            "/%252e%252e/x",
            "/a%252fb",
            "/%2541",
        ] {
            bad(raw, UNIX);
        }
    }

    #[test]
    fn rejects_relative_and_asterisk_targets() {
        bad("", UNIX);
        bad("*", UNIX);
        bad("a/b", UNIX);
    }

    #[test]
    fn hidden_segments_are_hidden_unless_allowed() {
        assert_eq!(decode_path("/.git/config", UNIX), Err(Rejection::Hidden));
        assert_eq!(decode_path("/a/.env", UNIX), Err(Rejection::Hidden));
        assert_eq!(decode_path("/%2egit/HEAD", UNIX), Err(Rejection::Hidden));
        assert_eq!(
            decode_path("/a/.well-known/x", UNIX),
            Err(Rejection::Hidden)
        );
        assert_eq!(decode_path("/.well-known/.x", UNIX), Err(Rejection::Hidden));
        assert_eq!(
            ok("/.well-known/acme-challenge/t"),
            "/.well-known/acme-challenge/t"
        );
        let open = Rules {
            hidden_ok: true,
            windows: false,
        };
        assert_eq!(decode_path("/.env", open).unwrap(), "/.env");
        // A malformed segment after a hidden one is still a bad request.
        bad("/.git/%zz", UNIX);
    }

    #[test]
    fn windows_rules() {
        for raw in [
            "/a:b",
            "/file.txt::$DATA",
            "/c:",
            "/CON",
            "/con.txt",
            "/x/Nul",
            "/aux .txt",
            "/COM1",
            "/lpt9.log",
            "/COM%C2%B9",
            "/conin$",
            "/x.",
            "/x%20",
            "/a%3cb",
            "/a|b",
        ] {
            bad(raw, WINDOWS);
        }
        for raw in ["/console", "/com10", "/lpt", "/a.b.c", "/connect.txt"] {
            assert!(decode_path(raw, WINDOWS).is_ok(), "{raw}");
        }
        // Unix file names may contain these.
        assert_eq!(ok("/a:b"), "/a:b");
        assert_eq!(ok("/con"), "/con");
    }

    #[test]
    fn config_paths() {
        assert_eq!(config_path("index.html", false).unwrap(), "/index.html");
        assert_eq!(
            config_path("/errors//404.html", false).unwrap(),
            "/errors/404.html"
        );
        assert_eq!(config_path("100%.html", false).unwrap(), "/100%.html");
        for bad in ["", "/", "../x", "a/./b", "a\\b", "a\u{0}b"] {
            assert_eq!(config_path(bad, false), None, "{bad:?}");
        }
        assert_eq!(config_path("c:x", true), None);
    }

    #[test]
    fn root_join_and_locate() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("sub")).unwrap();
        fs::write(dir.path().join("sub/f.txt"), "x").unwrap();
        fs::create_dir(dir.path().join(".hidden")).unwrap();
        fs::write(dir.path().join(".hidden/f"), "x").unwrap();
        let root = Root::new(dir.path(), false).unwrap();
        let p = root.join("/sub/f.txt");
        assert!(root.locate(&p, false).unwrap().meta.is_file());
        let hidden = root.join("/.hidden/f");
        assert!(is_missing(&root.locate(&hidden, false).unwrap_err()));
        assert!(root.locate(&hidden, true).is_ok());
        let e = root.locate(&root.join("/sub/f.txt/x"), false).unwrap_err();
        assert!(is_missing(&e), "{e}");
        assert!(Root::new(&dir.path().join("sub/f.txt"), false).is_err());
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_must_stay_inside_unless_followed() {
        let outside = tempfile::tempdir().unwrap();
        fs::write(outside.path().join("secret"), "s").unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret"), dir.path().join("link")).unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("dirlink")).unwrap();
        fs::write(dir.path().join(".env"), "k").unwrap();
        std::os::unix::fs::symlink(dir.path().join(".env"), dir.path().join("env")).unwrap();
        let strict = Root::new(dir.path(), false).unwrap();
        for p in ["/link", "/dirlink/secret", "/env"] {
            assert!(
                is_missing(&strict.locate(&strict.join(p), false).unwrap_err()),
                "{p}"
            );
        }
        let loose = Root::new(dir.path(), true).unwrap();
        assert!(loose.locate(&loose.join("/link"), false).is_ok());
        assert!(loose.locate(&loose.join("/dirlink/secret"), false).is_ok());
        let (_, meta) = loose.open(&outside.path().join("secret")).unwrap();
        assert_eq!(meta.len(), 1);
    }
}

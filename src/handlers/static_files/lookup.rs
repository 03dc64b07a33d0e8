//! What a checked request path names on disk: a file, a directory, or nothing.
//!
//! This is the slow path that the cache saves: several syscalls per request. It runs as one
//! blocking task, which is cheaper than a thread hop per `tokio::fs` call.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::entry::{FileEntry, LoadOptions};
use super::resolve::{is_missing, Root};

/// The answer for one decoded path, as cached.
#[derive(Debug, Clone)]
pub enum Resolved {
    /// A regular file (possibly a directory's index file).
    File(Arc<FileEntry>),
    /// A directory named without its trailing slash: redirect, so relative links work.
    AddSlash,
    /// A directory without index file, to be listed.
    Listing(Arc<Path>),
    /// Nothing servable here.
    NotFound,
}

impl Resolved {
    /// Bytes of file content this answer keeps in memory.
    pub fn memory(&self) -> u64 {
        match self {
            Resolved::File(entry) => entry.memory(),
            _ => 0,
        }
    }
}

/// Everything [`resolve`] needs besides the path; shared by all requests.
#[derive(Debug)]
pub struct Settings {
    /// The root and its safety rules.
    pub root: Root,
    /// Index file names, tried in order.
    pub index_files: Vec<String>,
    /// List directories without an index file.
    pub directory_listing: bool,
    /// Look for sidecars.
    pub precompressed: bool,
    /// Files up to this size are kept in memory.
    pub keep_in_memory: u64,
    /// Headers every answer about a file carries (`cache-control`, `server`), built into
    /// each loaded file's response headers.
    pub file_headers: http::HeaderMap,
}

/// Resolves `decoded` (from [`super::resolve::decode_path`]) below the root. A trailing `/`
/// means the client expects a directory. `prev` is the stale cached answer, whose file
/// contents are reused when unchanged. Missing files are `Ok(NotFound)`; `Err` is a real
/// fault (permissions, I/O) that must not be cached.
pub fn resolve(
    settings: &Settings,
    decoded: &str,
    hidden_ok: bool,
    prev: Option<&Resolved>,
) -> io::Result<Resolved> {
    let requested = settings.root.join(decoded);
    match resolve_path(
        settings,
        &requested,
        decoded.ends_with('/'),
        hidden_ok,
        prev,
    ) {
        Err(e) if is_missing(&e) => Ok(Resolved::NotFound),
        other => other,
    }
}

fn resolve_path(
    settings: &Settings,
    requested: &Path,
    wants_dir: bool,
    hidden_ok: bool,
    prev: Option<&Resolved>,
) -> io::Result<Resolved> {
    let prev_file = match prev {
        Some(Resolved::File(entry)) => Some(&**entry),
        _ => None,
    };
    let options = LoadOptions {
        keep_in_memory: settings.keep_in_memory,
        precompressed: settings.precompressed,
        hidden_ok,
        file_headers: &settings.file_headers,
    };
    let located = settings.root.locate(requested, hidden_ok)?;
    if located.meta.is_file() {
        // `/file.txt/` names a directory that does not exist.
        if wants_dir {
            return Ok(Resolved::NotFound);
        }
        let entry = FileEntry::load(&settings.root, requested, located, options, prev_file)?;
        return Ok(Resolved::File(Arc::new(entry)));
    }
    if !located.meta.is_dir() {
        // FIFOs, sockets and devices are never served: reading them can block or never end.
        return Ok(Resolved::NotFound);
    }
    if !wants_dir {
        return Ok(Resolved::AddSlash);
    }
    for name in &settings.index_files {
        let index: PathBuf = requested.join(name);
        match settings.root.locate(&index, hidden_ok) {
            Ok(found) if found.meta.is_file() => {
                let entry = FileEntry::load(&settings.root, &index, found, options, prev_file)?;
                return Ok(Resolved::File(Arc::new(entry)));
            }
            Ok(_) => {}
            Err(e) if is_missing(&e) => {}
            Err(e) => return Err(e),
        }
    }
    if settings.directory_listing {
        return Ok(Resolved::Listing(Arc::from(located.path)));
    }
    Ok(Resolved::NotFound)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn settings(dir: &Path, listing: bool) -> Settings {
        Settings {
            root: Root::new(dir, false).unwrap(),
            index_files: vec!["index.htm".into(), "index.html".into()],
            directory_listing: listing,
            precompressed: true,
            keep_in_memory: 1024,
            file_headers: http::HeaderMap::new(),
        }
    }

    #[test]
    fn files_directories_and_indexes() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("a/b")).unwrap();
        fs::write(dir.path().join("a/index.html"), "i").unwrap();
        fs::write(dir.path().join("f.txt"), "f").unwrap();
        fs::write(dir.path().join("f.txt.gz"), "g").unwrap();
        let s = settings(dir.path(), false);
        let r = |p: &str| resolve(&s, p, false, None).unwrap();
        let Resolved::File(f) = r("/f.txt") else {
            panic!()
        };
        assert_eq!(f.encoded.len(), 1);
        assert!(matches!(r("/f.txt/"), Resolved::NotFound));
        assert!(matches!(r("/f.txt/x"), Resolved::NotFound));
        assert!(matches!(r("/a"), Resolved::AddSlash));
        assert!(matches!(r("/a/"), Resolved::File(e) if e.identity.path.ends_with("a/index.html")));
        assert!(matches!(r("/a/b/"), Resolved::NotFound));
        assert!(matches!(r("/nope"), Resolved::NotFound));
        let listing = settings(dir.path(), true);
        assert!(matches!(
            resolve(&listing, "/a/b/", false, None).unwrap(),
            Resolved::Listing(_)
        ));
    }
}

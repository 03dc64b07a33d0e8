//! One servable file with its sidecars, and every header value it needs, computed once.
//!
//! Formatting dates, ETags and lengths is the bulk of a static response's CPU cost after the
//! syscalls; doing it when the file is loaded makes a cache hit cost only the response.

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue};

use super::encoding::{self, Encoding};
use super::resolve::{Located, Root};

/// What identifies one version of a file on disk; any change means a cached copy is stale.
/// The inode is included so an atomic rename-over with the same size and time is noticed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    len: u64,
    mtime_nanos: u128,
    inode: u64,
}

impl Stamp {
    /// The stamp of a file's current metadata.
    pub fn of(meta: &fs::Metadata) -> Stamp {
        #[cfg(unix)]
        let inode = std::os::unix::fs::MetadataExt::ino(meta);
        #[cfg(not(unix))]
        let inode = 0;
        Stamp {
            len: meta.len(),
            mtime_nanos: modified(meta)
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
            inode,
        }
    }
}

fn modified(meta: &fs::Metadata) -> SystemTime {
    meta.modified().unwrap_or(UNIX_EPOCH)
}

/// One representation of a file: the original or one precompressed sidecar.
#[derive(Debug, Clone)]
pub struct Variant {
    /// `None` for the original bytes.
    pub encoding: Option<Encoding>,
    /// Canonical path to open.
    pub path: PathBuf,
    /// Size and time as loaded.
    pub stamp: Stamp,
    /// Length in bytes.
    pub len: u64,
    /// Modification time, for date preconditions.
    pub modified: SystemTime,
    /// Strong validator. Built from length and nanosecond mtime, not the inode, so that
    /// servers behind one load balancer agree on it; encoded variants carry a suffix so a
    /// cache never confuses them with the original.
    pub etag: HeaderValue,
    /// `last-modified` value.
    pub last_modified: HeaderValue,
    /// `content-length` value for the whole variant.
    pub content_length: HeaderValue,
    /// The bytes, when the file is small enough to keep in memory.
    pub content: Option<Bytes>,
    /// The headers of a 200 with the whole variant ([`super::respond::full_headers`]), once
    /// it belongs to a loaded [`FileEntry`].
    pub full_headers: Option<HeaderMap>,
}

impl Variant {
    /// Describes a variant from metadata, without reading it.
    pub fn describe(path: PathBuf, meta: &fs::Metadata, encoding: Option<Encoding>) -> Variant {
        let stamp = Stamp::of(meta);
        let etag = match encoding {
            None => format!("\"{:x}-{:x}\"", stamp.len, stamp.mtime_nanos),
            Some(e) => format!("\"{:x}-{:x}-{}\"", stamp.len, stamp.mtime_nanos, e.as_str()),
        };
        let modified = modified(meta);
        Variant {
            encoding,
            path,
            stamp,
            len: stamp.len,
            modified,
            etag: header(&etag),
            last_modified: header(&httpdate::fmt_http_date(modified)),
            content_length: HeaderValue::from(stamp.len),
            content: None,
            full_headers: None,
        }
    }

    /// Loads a located file, reading it into memory if it is at most `keep` bytes. When
    /// `prev` describes the same file version, it is reused as is and nothing is read.
    fn load(
        root: &Root,
        located: Located,
        encoding: Option<Encoding>,
        keep: u64,
        prev: Option<&Variant>,
    ) -> io::Result<Variant> {
        let stamp = Stamp::of(&located.meta);
        if let Some(prev) = prev.filter(|p| p.path == located.path && p.stamp == stamp) {
            return Ok(prev.clone());
        }
        // Opening also proves the file is readable, so a 403 shows up at lookup time.
        let (file, meta) = root.open(&located.path)?;
        let mut variant = Variant::describe(located.path, &meta, encoding);
        if variant.len <= keep {
            let mut buf = Vec::with_capacity(usize::try_from(variant.len).unwrap_or(0));
            file.take(variant.len).read_to_end(&mut buf)?;
            // A file that shrank while we read it is left on disk; the next check reloads it.
            if buf.len() as u64 == variant.len {
                variant.content = Some(Bytes::from(buf));
            }
        }
        Ok(variant)
    }
}

fn header(ascii: &str) -> HeaderValue {
    HeaderValue::from_str(ascii).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// A servable file: its original, its sidecars, and its media type.
#[derive(Debug)]
pub struct FileEntry {
    /// `content-type` of the original, also sent with every encoded variant.
    pub content_type: HeaderValue,
    /// The original file.
    pub identity: Variant,
    /// Sidecars that exist, in [`encoding::SIDECARS`] order.
    pub encoded: Vec<Variant>,
}

impl FileEntry {
    /// Loads the file at `requested` (already located as `located`) and, if `precompressed`,
    /// its sidecars, reusing whatever `prev` already holds for unchanged files.
    pub fn load(
        root: &Root,
        requested: &Path,
        located: Located,
        options: LoadOptions<'_>,
        prev: Option<&FileEntry>,
    ) -> io::Result<FileEntry> {
        let keep = options.keep_in_memory;
        let identity = Variant::load(root, located, None, keep, prev.map(|p| &p.identity))?;
        let mut encoded = Vec::new();
        for coding in encoding::SIDECARS
            .into_iter()
            .filter(|_| options.precompressed)
        {
            // Sidecars sit next to the name that was asked for, not next to a symlink target.
            let sidecar = match root
                .locate(&encoding::sidecar(coding, requested), options.hidden_ok)
            {
                Ok(located) if located.meta.is_file() => located,
                Ok(_) => continue,
                Err(e) => {
                    if !super::resolve::is_missing(&e) {
                        tracing::debug!(error = %e, "ignoring unreadable sidecar of {}", requested.display());
                    }
                    continue;
                }
            };
            let prev = prev.and_then(|p| p.variant_of(coding));
            match Variant::load(root, sidecar, Some(coding), keep, prev) {
                Ok(variant) => encoded.push(variant),
                Err(e) => {
                    tracing::debug!(error = %e, "ignoring sidecar of {}", requested.display())
                }
            }
        }
        let mut entry = FileEntry {
            content_type: content_type(requested),
            identity,
            encoded,
        };
        let has_sidecars = !entry.encoded.is_empty();
        for variant in std::iter::once(&mut entry.identity).chain(&mut entry.encoded) {
            let (content_type, extra) = (&entry.content_type, options.file_headers);
            let full = super::respond::full_headers(content_type, variant, has_sidecars, extra);
            variant.full_headers = Some(full);
        }
        Ok(entry)
    }

    /// The variant for `encoding` (`None` = the original) if it exists.
    pub fn variant_of(&self, encoding: Encoding) -> Option<&Variant> {
        self.encoded.iter().find(|v| v.encoding == Some(encoding))
    }

    /// Bytes of file content held in memory, for the cache's budget.
    pub fn memory(&self) -> u64 {
        std::iter::once(&self.identity)
            .chain(&self.encoded)
            .filter_map(|v| v.content.as_ref())
            .map(|c| c.len() as u64)
            .sum()
    }
}

/// Settings that shape how a [`FileEntry`] is loaded.
#[derive(Debug, Clone, Copy)]
pub struct LoadOptions<'a> {
    /// Files up to this size are read into memory (0 = never).
    pub keep_in_memory: u64,
    /// Look for `.br`, `.zst`, `.gz` sidecars.
    pub precompressed: bool,
    /// Hidden files may be served (for sidecars of internal pages).
    pub hidden_ok: bool,
    /// Headers added to every answer about the file.
    pub file_headers: &'a HeaderMap,
}

/// The media type for a file name. Text-like types get `charset=utf-8` because that is what
/// modern sites are written in and browsers otherwise guess (Windows-1252 for `text/plain`).
pub fn content_type(path: &Path) -> HeaderValue {
    let Some(mime) = mime_guess::from_path(path).first_raw() else {
        return HeaderValue::from_static("application/octet-stream");
    };
    let texty = mime.starts_with("text/")
        || mime.ends_with("+xml")
        || mime.ends_with("+json")
        || matches!(
            mime,
            "application/javascript" | "application/json" | "application/xml" | "image/svg+xml"
        );
    if texty {
        header(&format!("{mime}; charset=utf-8"))
    } else {
        HeaderValue::from_static(mime)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ct(name: &str) -> String {
        content_type(Path::new(name)).to_str().unwrap().to_owned()
    }

    #[test]
    fn content_types() {
        assert_eq!(ct("a.html"), "text/html; charset=utf-8");
        assert_eq!(ct("a.css"), "text/css; charset=utf-8");
        assert!(
            ct("a.js").ends_with("javascript; charset=utf-8"),
            "{}",
            ct("a.js")
        );
        assert_eq!(ct("a.json"), "application/json; charset=utf-8");
        assert_eq!(ct("a.svg"), "image/svg+xml; charset=utf-8");
        assert_eq!(ct("a.xml"), "text/xml; charset=utf-8");
        assert_eq!(ct("a.png"), "image/png");
        assert_eq!(ct("a.unknownext"), "application/octet-stream");
        assert_eq!(ct("noext"), "application/octet-stream");
    }

    #[test]
    fn load_reads_small_files_and_reuses_unchanged_ones() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.txt");
        fs::write(&path, "hello").unwrap();
        let root = Root::new(dir.path(), false).unwrap();
        let loc = || root.locate(&path, false).unwrap();
        let small = Variant::load(&root, loc(), None, 5, None).unwrap();
        assert_eq!(small.content.as_deref(), Some(&b"hello"[..]));
        assert_eq!(small.content_length, "5");
        assert!(small.etag.to_str().unwrap().starts_with("\"5-"));
        let big = Variant::load(&root, loc(), None, 4, None).unwrap();
        assert!(big.content.is_none());
        let again = Variant::load(&root, loc(), None, 5, Some(&small)).unwrap();
        assert!(
            again.content.as_ref().unwrap().as_ptr() == small.content.as_ref().unwrap().as_ptr()
        );
        let br = Variant::describe(
            path.clone(),
            &fs::metadata(&path).unwrap(),
            Some(Encoding::Br),
        );
        assert!(br.etag.to_str().unwrap().ends_with("-br\""));
        assert_ne!(br.etag, small.etag);
    }
}

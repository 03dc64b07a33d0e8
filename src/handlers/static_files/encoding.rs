//! Precompressed sidecars: which encodings exist for a file, and which one a client gets.
//!
//! Build tools emit `app.js.br`, `app.js.zst` and `app.js.gz` next to `app.js`; serving them
//! costs nothing at request time, unlike compressing on the fly. The choice follows the
//! client's `Accept-Encoding` q-values (RFC 9110 §12.5.3).

use std::path::{Path, PathBuf};

pub use crate::config::Encoding;

/// The sidecar encodings, in the order that breaks q-value ties (smallest output first).
pub const SIDECARS: [Encoding; 3] = [Encoding::Br, Encoding::Zstd, Encoding::Gzip];

/// Where the sidecar of `original` in `encoding` would be.
pub fn sidecar(encoding: Encoding, original: &Path) -> PathBuf {
    let ext = match encoding {
        Encoding::Br => ".br",
        Encoding::Zstd => ".zst",
        Encoding::Gzip => ".gz",
    };
    let mut name = original.as_os_str().to_owned();
    name.push(ext);
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use Encoding::*;

    #[test]
    fn ties_between_sidecars_prefer_the_smallest() {
        use crate::pipeline::AcceptEncoding;
        let header = http::HeaderValue::from_static("gzip, br, zstd");
        let accept = AcceptEncoding::parse([&header]);
        assert_eq!(accept.choose(SIDECARS), Some(Br));
        assert_eq!(accept.choose([Zstd, Gzip]), Some(Zstd));
        assert_eq!(AcceptEncoding::parse(None).choose(SIDECARS), None);
    }

    #[test]
    fn sidecar_paths() {
        let p = Path::new("/srv/app.js");
        assert_eq!(sidecar(Br, p), Path::new("/srv/app.js.br"));
        assert_eq!(sidecar(Zstd, p), Path::new("/srv/app.js.zst"));
        assert_eq!(sidecar(Gzip, p), Path::new("/srv/app.js.gz"));
    }
}

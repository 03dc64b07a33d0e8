//! Precompressed sidecars: which encodings exist for a file, and which one a client gets.
//!
//! Build tools emit `app.js.br`, `app.js.zst` and `app.js.gz` next to `app.js`; serving them
//! costs nothing at request time, unlike compressing on the fly. The choice follows the
//! client's `Accept-Encoding` q-values (RFC 9110 §12.5.3).

use std::path::{Path, PathBuf};

use http::HeaderValue;

pub use crate::config::Encoding;
use crate::pipeline::AcceptEncoding;

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

/// Picks the encoding to send among `available` sidecars (in [`SIDECARS`] order); `None`
/// means the original file. Without `Accept-Encoding`, or when even identity is refused and
/// nothing else fits, the original is sent (RFC 9110 allows that instead of 406, and it is
/// what browsers cope with best).
pub fn choose(
    accept_encoding: Option<&HeaderValue>,
    available: impl Iterator<Item = Encoding>,
) -> Option<Encoding> {
    AcceptEncoding::parse(accept_encoding).choose(available)
}

#[cfg(test)]
mod tests {
    use super::*;
    use Encoding::*;

    #[test]
    fn ties_between_sidecars_prefer_the_smallest() {
        let header = HeaderValue::from_static("gzip, br, zstd");
        assert_eq!(choose(Some(&header), SIDECARS.into_iter()), Some(Br));
        assert_eq!(choose(Some(&header), [Zstd, Gzip].into_iter()), Some(Zstd));
        assert_eq!(choose(None, SIDECARS.into_iter()), None);
    }

    #[test]
    fn sidecar_paths() {
        let p = Path::new("/srv/app.js");
        assert_eq!(sidecar(Br, p), Path::new("/srv/app.js.br"));
        assert_eq!(sidecar(Zstd, p), Path::new("/srv/app.js.zst"));
        assert_eq!(sidecar(Gzip, p), Path::new("/srv/app.js.gz"));
    }
}

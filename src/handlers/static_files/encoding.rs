//! Precompressed sidecars: which encodings exist for a file, and which one a client gets.
//!
//! Build tools emit `app.js.br`, `app.js.zst` and `app.js.gz` next to `app.js`; serving them
//! costs nothing at request time, unlike compressing on the fly. The choice follows the
//! client's `Accept-Encoding` q-values (RFC 9110 §12.5.3).

use std::path::{Path, PathBuf};

use http::HeaderValue;

/// A content coding that may exist as a sidecar file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// Brotli, `file.br`.
    Br,
    /// Zstandard, `file.zst`.
    Zstd,
    /// Gzip, `file.gz`.
    Gzip,
}

impl Encoding {
    /// Every sidecar encoding, in the order that breaks q-value ties (smallest output first).
    pub const ALL: [Encoding; 3] = [Encoding::Br, Encoding::Zstd, Encoding::Gzip];

    /// The `content-encoding` token.
    pub fn token(self) -> &'static str {
        match self {
            Encoding::Br => "br",
            Encoding::Zstd => "zstd",
            Encoding::Gzip => "gzip",
        }
    }

    /// The `content-encoding` header value.
    pub fn header_value(self) -> HeaderValue {
        HeaderValue::from_static(self.token())
    }

    /// Where the sidecar for `original` would be.
    pub fn sidecar(self, original: &Path) -> PathBuf {
        let ext = match self {
            Encoding::Br => ".br",
            Encoding::Zstd => ".zst",
            Encoding::Gzip => ".gz",
        };
        let mut name = original.as_os_str().to_owned();
        name.push(ext);
        PathBuf::from(name)
    }
}

/// q-values in thousandths (0 = refused, 1000 = q=1), `None` when the coding is not listed.
#[derive(Debug, Default, PartialEq)]
struct Accept {
    br: Option<u16>,
    zstd: Option<u16>,
    gzip: Option<u16>,
    identity: Option<u16>,
    any: Option<u16>,
}

impl Accept {
    fn parse(value: &[u8]) -> Accept {
        let mut accept = Accept::default();
        let text = String::from_utf8_lossy(value);
        for element in text.split(',') {
            let mut params = element.split(';');
            let coding = params.next().unwrap_or("").trim();
            let mut q = Some(1000);
            for param in params {
                if let Some((name, value)) = param.split_once('=') {
                    if name.trim().eq_ignore_ascii_case("q") {
                        q = parse_q(value.trim());
                    }
                }
            }
            // A malformed element is skipped rather than guessed at.
            let Some(q) = q else { continue };
            let is = |name: &str| coding.eq_ignore_ascii_case(name);
            let slot = if is("br") {
                &mut accept.br
            } else if is("zstd") {
                &mut accept.zstd
            } else if is("gzip") || is("x-gzip") {
                &mut accept.gzip
            } else if is("identity") {
                &mut accept.identity
            } else if coding == "*" {
                &mut accept.any
            } else {
                continue;
            };
            // The first mention of a coding wins; repeating one is a client bug.
            slot.get_or_insert(q);
        }
        accept
    }

    fn q(&self, encoding: Encoding) -> u16 {
        let listed = match encoding {
            Encoding::Br => self.br,
            Encoding::Zstd => self.zstd,
            Encoding::Gzip => self.gzip,
        };
        listed.or(self.any).unwrap_or(0)
    }

    /// Identity is acceptable unless refused by `identity;q=0` or by `*;q=0` without a
    /// specific entry for it.
    fn identity_q(&self) -> u16 {
        self.identity.or(self.any).unwrap_or(1)
    }
}

/// `qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )`, in thousandths.
fn parse_q(s: &str) -> Option<u16> {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let thousandths = frac.bytes().chain(std::iter::repeat(b'0')).take(3);
    let frac = thousandths.fold(0u16, |acc, d| acc * 10 + u16::from(d - b'0'));
    match int {
        "0" => Some(frac),
        "1" if frac == 0 => Some(1000),
        _ => None,
    }
}

/// Picks the encoding to send among `available` sidecars; `None` means the original file.
///
/// Highest q wins; ties go br > zstd > gzip > identity, since a client that lists an encoding
/// as high as identity would rather save the bytes. Without `Accept-Encoding`, or when even
/// identity is refused and nothing else fits, the original is sent (RFC 9110 allows that
/// instead of 406, and it is what browsers cope with best).
pub fn choose(
    accept_encoding: Option<&HeaderValue>,
    available: impl Iterator<Item = Encoding>,
) -> Option<Encoding> {
    let accept = Accept::parse(accept_encoding?.as_bytes());
    let mut best: Option<(u16, Encoding)> = None;
    for encoding in available {
        let q = accept.q(encoding);
        let rank = |e: Encoding| Encoding::ALL.iter().position(|&x| x == e);
        let better = match best {
            None => true,
            Some((bq, be)) => q > bq || (q == bq && rank(encoding) < rank(be)),
        };
        if q > 0 && better {
            best = Some((q, encoding));
        }
    }
    best.filter(|&(q, _)| q >= accept.identity_q())
        .map(|(_, e)| e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use Encoding::*;

    fn pick(header: &str, available: &[Encoding]) -> Option<Encoding> {
        choose(
            Some(&HeaderValue::from_str(header).unwrap()),
            available.iter().copied(),
        )
    }

    #[test]
    fn q_values() {
        assert_eq!(parse_q("1"), Some(1000));
        assert_eq!(parse_q("1.000"), Some(1000));
        assert_eq!(parse_q("0"), Some(0));
        assert_eq!(parse_q("0.5"), Some(500));
        assert_eq!(parse_q("0.05"), Some(50));
        assert_eq!(parse_q("0.001"), Some(1));
        assert_eq!(parse_q("1.5"), None);
        assert_eq!(parse_q("0.0001"), None);
        assert_eq!(parse_q("2"), None);
        assert_eq!(parse_q("-0"), None);
        assert_eq!(parse_q("abc"), None);
    }

    #[test]
    fn parses_lists_with_params_and_case() {
        let a = Accept::parse(b"GZip;Q=0.8 , br ; q=1, x-custom, *;q=0.1, identity;q=0");
        assert_eq!(
            a,
            Accept {
                br: Some(1000),
                zstd: None,
                gzip: Some(800),
                identity: Some(0),
                any: Some(100),
            }
        );
        assert_eq!(Accept::parse(b"br;q=bogus").br, None);
    }

    #[test]
    fn highest_q_wins_and_ties_prefer_br() {
        assert_eq!(pick("gzip, br, zstd", &[Gzip, Zstd, Br]), Some(Br));
        assert_eq!(pick("gzip, zstd", &[Gzip, Zstd, Br]), Some(Zstd));
        assert_eq!(pick("br;q=0.5, gzip", &[Br, Gzip]), Some(Gzip));
        assert_eq!(pick("gzip", &[Br]), None);
        assert_eq!(pick("gzip", &[]), None);
    }

    #[test]
    fn zero_refuses_and_star_counts() {
        assert_eq!(pick("br;q=0, gzip", &[Br, Gzip]), Some(Gzip));
        assert_eq!(pick("*", &[Zstd]), Some(Zstd));
        assert_eq!(pick("*;q=0.5, br;q=0", &[Br, Gzip]), Some(Gzip));
        assert_eq!(pick("*;q=0", &[Br]), None);
    }

    #[test]
    fn identity_competes() {
        assert_eq!(pick("identity, gzip;q=0.5", &[Gzip]), None);
        assert_eq!(pick("identity;q=0.5, gzip;q=0.5", &[Gzip]), Some(Gzip));
        assert_eq!(pick("identity;q=0, gzip;q=0.1", &[Gzip]), Some(Gzip));
        assert_eq!(pick("", &[Gzip]), None);
        assert_eq!(choose(None, [Br].into_iter()), None);
    }

    #[test]
    fn sidecar_paths() {
        let p = Path::new("/srv/app.js");
        assert_eq!(Br.sidecar(p), Path::new("/srv/app.js.br"));
        assert_eq!(Zstd.sidecar(p), Path::new("/srv/app.js.zst"));
        assert_eq!(Gzip.sidecar(p), Path::new("/srv/app.js.gz"));
    }
}

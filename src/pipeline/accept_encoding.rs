//! Accept-Encoding (RFC 9110 §12.5.3), read the same way wherever a content coding is chosen:
//! the static handler's precompressed sidecars and the `compress` stage.

use http::HeaderValue;

use crate::config::Encoding;

/// One request's Accept-Encoding as q-values in thousandths (0 = refused, 1000 = q=1);
/// `None` where the coding is not listed.
#[derive(Debug, Default, PartialEq)]
pub struct AcceptEncoding {
    /// Indexed like [`Encoding::ALL`].
    codings: [Option<u16>; Encoding::ALL.len()],
    identity: Option<u16>,
    any: Option<u16>,
}

impl AcceptEncoding {
    /// Reads every Accept-Encoding field line. An element with a malformed q-value is
    /// skipped rather than guessed at; when a coding is listed twice the first mention wins.
    /// No field at all lists nothing, so no coding is acceptable.
    pub fn parse<'a>(values: impl IntoIterator<Item = &'a HeaderValue>) -> Self {
        let mut accept = AcceptEncoding::default();
        for value in values {
            let Ok(text) = value.to_str() else {
                continue;
            };
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
                let Some(q) = q else { continue };
                let slot = if coding == "*" {
                    &mut accept.any
                } else if coding.eq_ignore_ascii_case("identity") {
                    &mut accept.identity
                } else if let Some(i) = Encoding::ALL.iter().position(|e| names(*e, coding)) {
                    &mut accept.codings[i]
                } else {
                    continue;
                };
                slot.get_or_insert(q);
            }
        }
        accept
    }

    /// How much the client wants `encoding` (an explicit entry, else `*`, else 0).
    pub fn q(&self, encoding: Encoding) -> u16 {
        let i = Encoding::ALL.iter().position(|e| *e == encoding);
        i.and_then(|i| self.codings[i]).or(self.any).unwrap_or(0)
    }

    /// Identity is acceptable unless refused by `identity;q=0`, or by `*;q=0` without an
    /// entry of its own.
    fn identity_q(&self) -> u16 {
        self.identity.or(self.any).unwrap_or(1)
    }

    /// The coding among `candidates` (in the server's order of preference) to send: the
    /// highest q above 0, ties to the earlier candidate; `None` (send the body as it is) when
    /// none is acceptable or the client prefers identity to all of them. A coding the client
    /// wants as much as identity wins: it saves the bytes.
    pub fn choose(&self, candidates: impl IntoIterator<Item = Encoding>) -> Option<Encoding> {
        let mut best: Option<(u16, Encoding)> = None;
        for encoding in candidates {
            let q = self.q(encoding);
            if q > 0 && best.is_none_or(|(bq, _)| q > bq) {
                best = Some((q, encoding));
            }
        }
        best.filter(|&(q, _)| q >= self.identity_q())
            .map(|(_, e)| e)
    }
}

/// Whether `token` names `encoding` (`x-gzip` is gzip's old alias).
fn names(encoding: Encoding, token: &str) -> bool {
    token.eq_ignore_ascii_case(encoding.as_str())
        || (encoding == Encoding::Gzip && token.eq_ignore_ascii_case("x-gzip"))
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

#[cfg(test)]
mod tests {
    use super::*;
    use Encoding::*;

    fn parse(header: &str) -> AcceptEncoding {
        AcceptEncoding::parse([&HeaderValue::from_str(header).unwrap()])
    }

    fn pick(header: &str, candidates: &[Encoding]) -> Option<Encoding> {
        parse(header).choose(candidates.iter().copied())
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
        assert_eq!(parse_q("nan"), None);
    }

    #[test]
    fn parses_lists_with_params_case_aliases_and_several_lines() {
        let a = parse("GZip;Q=0.8 , br ; q=1, x-custom, *;q=0.1, identity;q=0");
        assert_eq!((a.q(Br), a.q(Zstd), a.q(Gzip)), (1000, 100, 800));
        assert_eq!((a.identity, a.any), (Some(0), Some(100)));
        assert_eq!(parse("br;q=bogus").q(Br), 0);
        assert_eq!(parse("x-gzip").q(Gzip), 1000);
        assert_eq!(parse("br, br;q=0").q(Br), 1000, "the first mention wins");
        let lines = [
            HeaderValue::from_static("gzip;q=0.2"),
            HeaderValue::from_static("zstd"),
        ];
        let a = AcceptEncoding::parse(&lines);
        assert_eq!((a.q(Gzip), a.q(Zstd), a.q(Br)), (200, 1000, 0));
    }

    #[test]
    fn highest_q_wins_and_ties_go_to_the_earlier_candidate() {
        assert_eq!(pick("gzip, br, zstd", &[Br, Zstd, Gzip]), Some(Br));
        assert_eq!(pick("gzip, br, zstd", &[Zstd, Br, Gzip]), Some(Zstd));
        assert_eq!(pick("gzip, zstd", &[Gzip, Zstd, Br]), Some(Gzip));
        assert_eq!(pick("br;q=0.5, gzip", &[Br, Gzip]), Some(Gzip));
        assert_eq!(pick("gzip;q=1, br;q=0.5", &[Zstd, Br, Gzip]), Some(Gzip));
        assert_eq!(pick("gzip", &[Br]), None);
        assert_eq!(pick("gzip", &[]), None);
        assert_eq!(pick("gzip;q=2, br;q=nan", &[Br, Gzip]), None);
        assert_eq!(pick(" , ;q=1", &[Br, Gzip]), None);
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
        assert_eq!(pick("identity", &[Gzip]), None);
        assert_eq!(pick("identity, gzip;q=0.5", &[Gzip]), None);
        assert_eq!(pick("identity;q=0.5, gzip;q=0.5", &[Gzip]), Some(Gzip));
        assert_eq!(pick("identity;q=0, gzip;q=0.1", &[Gzip]), Some(Gzip));
        assert_eq!(pick("", &[Gzip]), None);
        let none: [&HeaderValue; 0] = [];
        assert_eq!(AcceptEncoding::parse(none).choose([Br]), None);
    }
}

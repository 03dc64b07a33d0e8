//! Choosing a content coding from Accept-Encoding (RFC 9110 §12.5.3).

use http::HeaderValue;

use crate::config::Encoding;

/// The offered coding the client prefers: the highest q-value above 0, an explicit entry
/// beating `*`; ties go to the earlier coding in `offered` (the server's preference).
/// `None` when nothing offered is acceptable, or the header is absent.
pub fn negotiate<'a>(
    values: impl Iterator<Item = &'a HeaderValue>,
    offered: &[Encoding],
) -> Option<Encoding> {
    // q-values in thousandths, as the grammar allows at most three decimals; one slot per
    // coding of `Encoding::ALL` (no allocation per request).
    let mut explicit = [None::<u16>; Encoding::ALL.len()];
    let slot = |e: Encoding| Encoding::ALL.iter().position(|a| *a == e);
    let mut star: Option<u16> = None;
    for item in values
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
    {
        let mut parts = item.split(';');
        let token = parts.next().unwrap_or("").trim();
        if token.is_empty() {
            continue;
        }
        let Some(q) = q_value(parts) else {
            continue;
        };
        if token == "*" {
            star = Some(q);
        } else if let Some(i) = Encoding::ALL.iter().position(|e| names(*e, token)) {
            explicit[i] = Some(q);
        }
    }
    offered
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let q = slot(*e).and_then(|s| explicit[s]);
            (q.or(star).unwrap_or(0), i, *e)
        })
        .filter(|(q, _, _)| *q > 0)
        .max_by_key(|(q, i, _)| (*q, std::cmp::Reverse(*i)))
        .map(|(_, _, e)| e)
}

/// Whether `token` names `encoding` (`x-gzip` is gzip's old alias).
fn names(encoding: Encoding, token: &str) -> bool {
    token.eq_ignore_ascii_case(encoding.as_str())
        || (encoding == Encoding::Gzip && token.eq_ignore_ascii_case("x-gzip"))
}

/// The `q` parameter among `params` (1 when absent); `None` when it is malformed, so the
/// entry is ignored rather than guessed at.
fn q_value<'a>(params: impl Iterator<Item = &'a str>) -> Option<u16> {
    for param in params {
        let Some((name, value)) = param.split_once('=') else {
            continue;
        };
        if name.trim().eq_ignore_ascii_case("q") {
            let q = value.trim().parse::<f32>().ok()?;
            return (0.0..=1.0)
                .contains(&q)
                .then(|| (q * 1000.0).round() as u16);
        }
    }
    Some(1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Encoding; 3] = Encoding::ALL;

    fn pick(header: &str) -> Option<&'static str> {
        let v = HeaderValue::from_str(header).unwrap();
        negotiate(std::iter::once(&v), &ALL).map(Encoding::as_str)
    }

    #[test]
    fn q_values_and_preference() {
        assert_eq!(pick("gzip, br, zstd"), Some("zstd"));
        assert_eq!(pick("gzip, br"), Some("br"));
        assert_eq!(pick("gzip;q=1, br;q=0.5"), Some("gzip"));
        assert_eq!(pick("br;q=0, gzip;q=0.1"), Some("gzip"));
        assert_eq!(pick("*"), Some("zstd"));
        assert_eq!(pick("*;q=0.5, zstd;q=0"), Some("br"));
        assert_eq!(pick("*;q=0"), None);
        assert_eq!(pick("identity"), None);
        assert_eq!(pick("GZIP"), Some("gzip"));
        assert_eq!(pick("x-gzip"), Some("gzip"));
        assert_eq!(pick("gzip;q=2, br;q=nan"), None);
        assert_eq!(pick(" , ;q=1"), None);
    }

    #[test]
    fn server_order_breaks_ties() {
        let v = HeaderValue::from_static("gzip, zstd");
        let offered = [Encoding::Gzip, Encoding::Zstd];
        assert_eq!(
            negotiate(std::iter::once(&v), &offered),
            Some(Encoding::Gzip)
        );
        assert_eq!(negotiate(std::iter::empty(), &offered), None);
    }
}

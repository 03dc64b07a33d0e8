//! Sizes and durations in human units, both ways: parsed from settings, printed in the
//! effective config.

use std::time::Duration;

/// Size units, largest first; decimal units are powers of 1000 (as disks and networks count),
/// binary ones powers of 1024 (as memory and buffers do).
const SIZE_UNITS: [(&str, u64); 9] = [
    ("TiB", 1 << 40),
    ("TB", 1_000_000_000_000),
    ("GiB", 1 << 30),
    ("GB", 1_000_000_000),
    ("MiB", 1 << 20),
    ("MB", 1_000_000),
    ("KiB", 1 << 10),
    ("KB", 1_000),
    ("B", 1),
];

/// Parses `"30MB"`, `"64KiB"`, `"512 b"`, `"30_000_000"`: a whole number, an optional space
/// and an optional case-insensitive unit. `None` for anything else, or on overflow.
pub(crate) fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let digits_end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '_'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits_end);
    let number = parse_integer(number)?;
    let unit = unit.trim_start();
    let factor = if unit.is_empty() {
        1
    } else {
        SIZE_UNITS
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(unit))?
            .1
    };
    number.checked_mul(factor)
}

/// Parses a non-negative integer written with optional `_` separators between digits, the
/// way TOML allows them in integer literals.
pub(crate) fn parse_integer(text: &str) -> Option<u64> {
    let well_placed = !text.starts_with('_') && !text.ends_with('_') && !text.contains("__");
    if !well_placed || !text.bytes().any(|b| b.is_ascii_digit()) {
        return None;
    }
    text.replace('_', "").parse().ok()
}

/// How a size is printed: a quoted string in the largest unit that divides it evenly (the
/// shortest exact form, e.g. `"30MB"`, `"768KiB"`), or bare bytes when none does.
pub(crate) fn format_size(bytes: u64) -> String {
    SIZE_UNITS
        .iter()
        .filter(|(name, factor)| *name != "B" && bytes != 0 && bytes % factor == 0)
        .min_by_key(|(_, factor)| bytes / factor)
        .map_or_else(
            || bytes.to_string(),
            |(name, factor)| format!("\"{}{name}\"", bytes / factor),
        )
}

/// Parses humantime durations: `"130s"`, `"5m"`, `"250ms"`, `"1h 30m"`.
pub(crate) fn parse_duration(text: &str) -> Option<Duration> {
    humantime::parse_duration(text.trim()).ok()
}

/// How a duration is printed: humantime's form, e.g. `"2m 10s"`, quoted.
pub(crate) fn format_duration(duration: Duration) -> String {
    format!("\"{}\"", humantime::format_duration(duration))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_in_every_unit() {
        assert_eq!(parse_size("512"), Some(512));
        assert_eq!(parse_size("512B"), Some(512));
        assert_eq!(parse_size("30MB"), Some(30_000_000));
        assert_eq!(parse_size("30 mb"), Some(30_000_000));
        assert_eq!(parse_size("64KiB"), Some(65_536));
        assert_eq!(parse_size("64kib"), Some(65_536));
        assert_eq!(parse_size("2KB"), Some(2_000));
        assert_eq!(parse_size("1GB"), Some(1_000_000_000));
        assert_eq!(parse_size("1GiB"), Some(1 << 30));
        assert_eq!(parse_size("3MiB"), Some(3 << 20));
        assert_eq!(parse_size("1TB"), Some(1_000_000_000_000));
        assert_eq!(parse_size("1TiB"), Some(1 << 40));
        assert_eq!(parse_size("30_000_000"), Some(30_000_000));
    }

    #[test]
    fn bad_sizes() {
        for text in [
            "",
            "lots",
            "MB",
            "1.5MB",
            "-1",
            "30 XB",
            "1_",
            "_1",
            "1__0",
            "99999999999TiB",
            "30MBs",
        ] {
            assert_eq!(parse_size(text), None, "{text:?}");
        }
    }

    #[test]
    fn sizes_print_in_the_shortest_exact_unit() {
        assert_eq!(format_size(0), "0");
        assert_eq!(format_size(100), "100");
        assert_eq!(format_size(65_535), "65535");
        assert_eq!(format_size(30_000_000), "\"30MB\"");
        assert_eq!(format_size(8_192), "\"8KiB\"");
        assert_eq!(format_size(786_432), "\"768KiB\"");
        assert_eq!(format_size(1 << 20), "\"1MiB\"");
        assert_eq!(format_size(1_024_000), "\"1000KiB\"");
        assert_eq!(format_size(3_000), "\"3KB\"");
    }

    #[test]
    fn sizes_round_trip() {
        for bytes in [0, 1, 999, 1000, 1024, 65_535, 30_000_000, 1 << 40, u64::MAX] {
            let printed = format_size(bytes);
            assert_eq!(
                parse_size(printed.trim_matches('"')),
                Some(bytes),
                "{printed}"
            );
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("130s"), Some(Duration::from_secs(130)));
        assert_eq!(parse_duration("5m"), Some(Duration::from_secs(300)));
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("1h 30m"), Some(Duration::from_secs(5_400)));
        assert_eq!(parse_duration("0s"), Some(Duration::ZERO));
        assert_eq!(parse_duration("ten seconds"), None);
        assert_eq!(parse_duration("130"), None);
        assert_eq!(format_duration(Duration::from_secs(130)), "\"2m 10s\"");
        assert_eq!(format_duration(Duration::from_millis(250)), "\"250ms\"");
        assert_eq!(format_duration(Duration::ZERO), "\"0s\"");
    }
}

//! Reads a `compress` stage table: codings offered, size threshold, media types, levels.

use super::reader::{in_range, Field, Section};
use super::site_model::{CompressLevels, CompressStage, Encoding};

/// Media types compressed when `content_types` is not set: text formats and the binary
/// ones that are not compressed already (images, audio, video and archives are).
pub const DEFAULT_CONTENT_TYPES: &[&str] = &[
    "text/",
    "application/json",
    "application/javascript",
    "application/xml",
    "application/xhtml+xml",
    "application/rss+xml",
    "application/atom+xml",
    "application/ld+json",
    "application/manifest+json",
    "application/wasm",
    "image/svg+xml",
    "image/x-icon",
    "font/ttf",
    "font/otf",
];

/// Levels that favour speed: on-the-fly compression runs on every request.
pub const DEFAULT_LEVELS: CompressLevels = CompressLevels {
    gzip: 6,
    br: 4,
    zstd: 3,
};

/// 1 KiB: below this, headers and framing cost more than compression saves.
pub const DEFAULT_MIN_SIZE: u64 = 1024;

const NAMES: [&str; 3] = ["zstd", "br", "gzip"];

/// The options of a `type = "compress"` table.
pub(super) fn compress(t: &mut Section) -> CompressStage {
    let encodings = t
        .take("encodings")
        .and_then(|f| t.distinct(&f, &NAMES, "list at least one of zstd, br, gzip"))
        .map_or_else(
            || Encoding::ALL.to_vec(),
            |list| list.into_iter().map(|(_, name)| encoding(name)).collect(),
        );
    let min_size = t.read("min_size", DEFAULT_MIN_SIZE, Field::size);
    let defaults = || {
        DEFAULT_CONTENT_TYPES
            .iter()
            .map(|s| (*s).to_owned())
            .collect()
    };
    let content_types = match t.take("content_types") {
        None => defaults(),
        Some(f) => {
            let items = t.list(&f, "list at least one media type, like \"text/\"");
            let types: Vec<String> = items
                .iter()
                .filter_map(|item| t.check(item, media_type(item)))
                .collect();
            if types.is_empty() {
                defaults()
            } else {
                types
            }
        }
    };
    CompressStage {
        encodings,
        min_size,
        content_types,
        levels: levels(t),
    }
}

fn encoding(name: &str) -> Encoding {
    match name {
        "zstd" => Encoding::Zstd,
        "br" => Encoding::Br,
        _ => Encoding::Gzip,
    }
}

/// A media type or a prefix of one (`text/`), stored lowercase.
fn media_type(f: &Field) -> Result<String, String> {
    let text = f.string()?.trim().to_ascii_lowercase();
    let valid = text.contains('/')
        && !text.starts_with('/')
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/+-.!#$&^_".contains(&b));
    if valid {
        Ok(text)
    } else {
        Err(format!(
            "{text:?} is not a media type or prefix, like \"text/\" or \"application/json\""
        ))
    }
}

const LEVELS: &str = "a table like { gzip = 6, br = 4, zstd = 3 }";

/// `levels`: the keys not given keep their defaults.
fn levels(t: &mut Section) -> CompressLevels {
    let Some(mut l) = t.take("levels").and_then(|f| t.table(f, LEVELS)) else {
        return DEFAULT_LEVELS;
    };
    let d = DEFAULT_LEVELS;
    let level = |lo: u64, hi: u64| move |f: &Field| in_range(f.count()?, lo, hi);
    let levels = CompressLevels {
        gzip: l.read("gzip", u64::from(d.gzip), level(0, 9)) as u32,
        br: l.read("br", u64::from(d.br), level(0, 11)) as u32,
        zstd: l.read("zstd", d.zstd as u64, level(1, 22)) as i32,
    };
    l.close_into(t);
    levels
}

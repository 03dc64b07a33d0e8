//! Reading the sections other than `[[endpoints]]` from the tree into the typed model, in
//! the contract's order, with their range checks.

use std::path::{Component, Path, PathBuf};

use super::error::{Diagnostic, Origin};
use super::model::*;
use super::reader::{at_least, in_range, narrow, timeout, Field, Section};
use super::site_model::UnknownHost;

/// "unlimited" where a limit may be lifted.
const UNLIMITED: &str = "unlimited";
/// "off" where a feature may be disabled.
const OFF: &str = "off";

/// `[server]`.
pub(crate) fn server(root: &mut Section) -> ServerConfig {
    let d = ServerConfig::default();
    let mut t = root.section("server");
    let server = ServerConfig {
        add_server_header: t.read("add_server_header", d.add_server_header, Field::bool),
        shutdown_timeout: t.read("shutdown_timeout", d.shutdown_timeout, timeout),
        shutdown_delay: t.read("shutdown_delay", d.shutdown_delay, Field::duration),
        worker_threads: t.read("worker_threads", d.worker_threads, |f| {
            narrow(in_range(f.count()?, 0, 1024)?, usize::MAX)
        }),
        unknown_host: t.read("unknown_host", d.unknown_host, |f| {
            Ok(match f.choice(&["misdirected", "not_found"])? {
                "not_found" => UnknownHost::NotFound,
                _ => UnknownHost::Misdirected,
            })
        }),
    };
    t.close_into(root);
    server
}

/// `[limits]`, `[limits.http2]` and `[limits.http3]`.
pub(crate) fn limits(root: &mut Section) -> Limits {
    let d = Limits::default();
    let mut t = root.section("limits");
    let limits = Limits {
        max_request_body_size: t.read("max_request_body_size", d.max_request_body_size, |f| {
            f.or_keyword(UNLIMITED, Field::size)
        }),
        keep_alive_timeout: t.read("keep_alive_timeout", d.keep_alive_timeout, timeout),
        request_headers_timeout: t.read(
            "request_headers_timeout",
            d.request_headers_timeout,
            timeout,
        ),
        max_request_line_size: t.read("max_request_line_size", d.max_request_line_size, |f| {
            narrow(at_least(f.size()?, 64)?, usize::MAX)
        }),
        max_request_header_count: t.read(
            "max_request_header_count",
            d.max_request_header_count,
            |f| narrow(at_least(f.count()?, 1)?, usize::MAX),
        ),
        max_request_headers_total_size: t.read(
            "max_request_headers_total_size",
            d.max_request_headers_total_size,
            |f| narrow(at_least(f.size()?, 64)?, usize::MAX),
        ),
        max_concurrent_connections: t.read(
            "max_concurrent_connections",
            d.max_concurrent_connections,
            |f| f.or_keyword(UNLIMITED, Field::count),
        ),
        max_concurrent_upgraded_connections: t.read(
            "max_concurrent_upgraded_connections",
            d.max_concurrent_upgraded_connections,
            |f| f.or_keyword(UNLIMITED, Field::count),
        ),
        min_request_body_data_rate: data_rate(&mut t, "min_request_body_data_rate"),
        min_response_data_rate: data_rate(&mut t, "min_response_data_rate"),
        http2: http2(&mut t),
        http3: http3(&mut t),
    };
    t.close_into(root);
    limits
}

/// `{ bytes_per_second = 240, grace_period = "5s" }` or "off"; keys left out of the table
/// keep their defaults.
fn data_rate(t: &mut Section, key: &'static str) -> Option<DataRate> {
    let d = DataRate::default();
    let mut rate = match t.off_or_table(key, RATE) {
        None => return Some(d),
        Some(None) => return None,
        Some(Some(rate)) => rate,
    };
    let value = DataRate {
        bytes_per_second: rate.read("bytes_per_second", d.bytes_per_second, |f| {
            at_least(f.count()?, 1)
        }),
        grace_period: rate.read("grace_period", d.grace_period, Field::duration),
    };
    rate.close_into(t);
    Some(value)
}

/// How a data rate is described in "expected ..." messages.
const RATE: &str = "a table like { bytes_per_second = 240, grace_period = \"5s\" }";

/// `[limits.http2]`; ranges are those RFC 9113 allows for the matching SETTINGS.
fn http2(limits: &mut Section) -> Http2Limits {
    let d = Http2Limits::default();
    let mut t = limits.section("http2");
    let window = |f: &Field| narrow(in_range(f.size()?, 65_535, 2_147_483_647)?, u32::MAX);
    let http2 = Http2Limits {
        max_streams_per_connection: t.read(
            "max_streams_per_connection",
            d.max_streams_per_connection,
            |f| narrow(at_least(f.count()?, 1)?, u32::MAX),
        ),
        header_table_size: t.read("header_table_size", d.header_table_size, |f| {
            narrow(f.size()?, u32::MAX)
        }),
        max_frame_size: t.read("max_frame_size", d.max_frame_size, |f| {
            narrow(in_range(f.size()?, 16_384, 16_777_215)?, u32::MAX)
        }),
        max_request_header_field_size: t.read(
            "max_request_header_field_size",
            d.max_request_header_field_size,
            |f| narrow(at_least(f.size()?, 64)?, u32::MAX),
        ),
        initial_connection_window_size: t.read(
            "initial_connection_window_size",
            d.initial_connection_window_size,
            window,
        ),
        initial_stream_window_size: t.read(
            "initial_stream_window_size",
            d.initial_stream_window_size,
            window,
        ),
        keep_alive_ping_delay: t.read("keep_alive_ping_delay", d.keep_alive_ping_delay, |f| {
            f.or_keyword(OFF, timeout)
        }),
        keep_alive_ping_timeout: t.read(
            "keep_alive_ping_timeout",
            d.keep_alive_ping_timeout,
            timeout,
        ),
    };
    t.close_into(limits);
    http2
}

/// `[limits.http3]`.
fn http3(limits: &mut Section) -> Http3Limits {
    let d = Http3Limits::default();
    let mut t = limits.section("http3");
    let http3 = Http3Limits {
        max_request_header_field_size: t.read(
            "max_request_header_field_size",
            d.max_request_header_field_size,
            |f| at_least(f.size()?, 64),
        ),
        max_streams_per_connection: t.read(
            "max_streams_per_connection",
            d.max_streams_per_connection,
            |f| at_least(f.count()?, 1),
        ),
    };
    t.close_into(limits);
    http3
}

/// `[static]` and `[static.cache]`. `base_dir` resolves a relative `root`; `app_dir` is the
/// default root.
pub(crate) fn static_files(root: &mut Section, base_dir: &Path, app_dir: &Path) -> StaticConfig {
    let d = StaticConfig::serving(app_dir.to_path_buf());
    let mut t = root.section("static");
    let checked = match t.take("root") {
        Some(field) => {
            let dir = field
                .string()
                .and_then(|s| check_dir(&base_dir.join(s), ROOT));
            t.check(&field, dir)
        }
        None => check_dir(app_dir, ROOT)
            .map_err(|problem| {
                let origin = Origin::Cli("argument APP_DIR".to_owned());
                t.report(Diagnostic::new(origin, "static.root", problem))
            })
            .ok(),
    };
    let root_dir = checked.unwrap_or_else(|| d.root.clone());
    let options = static_options(
        &mut t,
        StaticConfig {
            root: root_dir,
            ..d
        },
    );
    let files = StaticConfig {
        cache: file_cache(&mut t),
        ..options
    };
    t.close_into(root);
    files
}

/// The `[static]` keys other than `root` and `cache`, over `d` (whose root and cache are
/// kept): the top-level section, a site's `[sites.static]`, a static handler.
pub(crate) fn static_options(t: &mut Section, d: StaticConfig) -> StaticConfig {
    StaticConfig {
        index_files: t.read("index_files", d.index_files, |f| {
            f.items()?
                .iter()
                .map(|item| file_name(item, false))
                .collect()
        }),
        fallback: t.read("fallback", d.fallback, |f| {
            f.or_keyword(OFF, |f| file_name(f, true))
        }),
        not_found_page: t.read("not_found_page", d.not_found_page, |f| {
            f.or_keyword(OFF, |f| file_name(f, true))
        }),
        directory_listing: t.read("directory_listing", d.directory_listing, Field::bool),
        serve_hidden_files: t.read("serve_hidden_files", d.serve_hidden_files, Field::bool),
        follow_symlinks: t.read("follow_symlinks", d.follow_symlinks, Field::bool),
        precompressed: t.read("precompressed", d.precompressed, Field::bool),
        cache_control: t.read("cache_control", d.cache_control, |f| {
            f.or_keyword(OFF, Field::string)
        }),
        ..d
    }
}

/// What the static root is called in messages.
const ROOT: &str = "the static root";

/// A directory that must exist (the static root: better to fail at startup than to answer
/// every request with 404), made absolute; `role` names it in messages.
pub(crate) fn check_dir(dir: &Path, role: &str) -> Result<PathBuf, String> {
    let dir = super::defaults::absolute(dir);
    match std::fs::metadata(&dir) {
        Ok(meta) if meta.is_dir() => Ok(dir),
        Ok(_) => Err(format!("{} is not a directory", dir.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(format!("directory {} does not exist", dir.display()))
        }
        Err(e) => Err(format!("cannot use {} as {role}: {e}", dir.display())),
    }
}

/// A file inside the root: relative, without `..`; with `nested` it may name a
/// subdirectory, otherwise it is a bare file name (index files are looked up per directory).
fn file_name(f: &Field, nested: bool) -> Result<String, String> {
    let name = f.string()?;
    let path = Path::new(&name);
    let inside = path.components().all(|c| matches!(c, Component::Normal(_)));
    let bare = path.components().count() == 1;
    if name.is_empty() || !inside || (!nested && !bare) {
        let what = if nested {
            "a relative path inside the root"
        } else {
            "a file name"
        };
        return Err(format!("must be {what}, found {name:?}"));
    }
    Ok(name)
}

/// `[static.cache]`.
fn file_cache(static_files: &mut Section) -> FileCacheConfig {
    let d = FileCacheConfig::default();
    let mut t = static_files.section("cache");
    let cache = FileCacheConfig {
        max_file_size: t.read("max_file_size", d.max_file_size, Field::size),
        max_total_size: t.read("max_total_size", d.max_total_size, Field::size),
        revalidate_after: t.read("revalidate_after", d.revalidate_after, Field::duration),
    };
    t.close_into(static_files);
    cache
}

/// The diagnostics levels `tracing` knows.
const LEVELS: [&str; 5] = ["error", "warn", "info", "debug", "trace"];

/// `[log]`.
pub(crate) fn log(root: &mut Section) -> LogConfig {
    let d = LogConfig::default();
    let mut t = root.section("log");
    let log = LogConfig {
        level: t.read("level", d.level, |f| f.choice(&LEVELS).map(str::to_owned)),
        access_log: t.read("access_log", d.access_log, |f| {
            Ok(match f.choice(&["combined", "json", "off"])? {
                "json" => AccessLogFormat::Json,
                "off" => AccessLogFormat::Off,
                _ => AccessLogFormat::Combined,
            })
        }),
    };
    t.close_into(root);
    log
}

//! The `static` handler: files below one root directory, served safely and cacheably.
//!
//! A request flows: method check → `resolve::decode_path` (URL-level safety) → cache or
//! `lookup::resolve` (file-system-level safety, index files, sidecars) → sidecar choice
//! (`encoding`) → preconditions (`conditional`) and ranges (`range`) → response
//! (`respond`), with bytes from memory or streamed from disk (`file_body`).
//!
//! Everything that can be computed per file rather than per request (resolved paths, sidecar
//! existence, header values, small files' bytes) lives in the `cache`.

mod cache;
mod conditional;
mod encoding;
mod entry;
mod file_body;
mod file_read;
mod listing;
mod lookup;
mod misses;
mod range;
mod request;
mod resolve;
mod respond;
#[cfg(test)]
mod tests;

use std::borrow::Cow;
use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Request, Response, StatusCode};

use self::cache::{FileCache, Hit};
/// A file's media type as the static handler sends it, for other stages that send files
/// (error pages) so the same file gets the same header.
pub use self::entry::content_type;
use self::entry::{FileEntry, Stamp, Variant};
use self::file_body::Source;
use self::lookup::{Resolved, Settings};
use self::request::{Method, RequestInfo};
use self::resolve::{config_path, is_missing, Root};
/// Request-path normalisation (decode once, refuse unsafe segments), public for the
/// micro-benchmarks in `benches/hot_paths.rs`.
pub use self::resolve::{decode_path, Rejection, Rules};
use crate::body::Body;
use crate::config::StaticConfig;
use crate::pipeline::AcceptEncoding;

/// Why a [`StaticFiles`] could not be built from its settings.
#[derive(Debug, thiserror::Error)]
pub enum StaticError {
    /// The root does not exist, is not a directory, or cannot be read.
    #[error("cannot use {path} as the static root: {source}")]
    Root {
        /// The configured root.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: io::Error,
    },
    /// A configured file name would not stay inside the root.
    #[error("static.{key} = {value:?} is not a plain relative path inside the root")]
    Path {
        /// The settings key.
        key: &'static str,
        /// Its value.
        value: String,
    },
    /// `cache_control` cannot be sent as a header.
    #[error("static.cache_control = {0:?} is not a valid header value")]
    CacheControl(String),
}

/// Serves files below one root directory, safely and with HTTP caching semantics.
#[derive(Debug)]
pub struct StaticFiles {
    settings: Arc<Settings>,
    cache: FileCache,
    rules: Rules,
    fallback: Option<Internal>,
    not_found_page: Option<Internal>,
    misses: misses::Misses,
}

/// A file named by the settings rather than by a request. Its cache key starts with NUL,
/// which no decoded request path can contain, so the two never share an entry (internal
/// files may be hidden; requests for them must still be refused).
#[derive(Debug)]
struct Internal {
    key: Box<str>,
}

impl Internal {
    fn new(key: &'static str, value: Option<&str>) -> Result<Option<Internal>, StaticError> {
        let Some(value) = value else {
            return Ok(None);
        };
        let path = config_path(value, cfg!(windows)).ok_or_else(|| StaticError::Path {
            key,
            value: value.to_owned(),
        })?;
        Ok(Some(Internal {
            key: format!("\0{path}").into(),
        }))
    }

    fn path(&self) -> &str {
        self.key.get(1..).unwrap_or("/")
    }
}

impl StaticFiles {
    /// Checks the settings and canonicalises the root once; every request is confined to it.
    /// With `server_header`, file answers carry `server: harrier` from the start (the
    /// pipeline would add it anyway; built in, it costs nothing per request).
    pub fn new(cfg: &StaticConfig, server_header: bool) -> Result<Self, StaticError> {
        let root =
            Root::new(&cfg.root, cfg.follow_symlinks).map_err(|source| StaticError::Root {
                path: cfg.root.clone(),
                source,
            })?;
        for name in &cfg.index_files {
            if config_path(name, cfg!(windows)).is_none() || name.contains('/') {
                return Err(StaticError::Path {
                    key: "index_files",
                    value: name.clone(),
                });
            }
        }
        let mut file_headers = HeaderMap::new();
        if let Some(value) = &cfg.cache_control {
            let value = HeaderValue::from_str(value)
                .map_err(|_| StaticError::CacheControl(value.clone()))?;
            file_headers.insert(http::header::CACHE_CONTROL, value);
        }
        if server_header {
            file_headers.insert(http::header::SERVER, crate::pipeline::server_header());
        }
        let limits = &cfg.cache;
        let enabled = limits.max_file_size > 0;
        let keep_in_memory = if enabled {
            // A file larger than the whole budget would evict everything, itself included.
            limits.max_file_size.min(limits.max_total_size)
        } else {
            0
        };
        Ok(StaticFiles {
            settings: Arc::new(Settings {
                root,
                index_files: cfg.index_files.clone(),
                directory_listing: cfg.directory_listing,
                precompressed: cfg.precompressed,
                keep_in_memory,
                file_headers,
            }),
            cache: FileCache::new(enabled, limits.max_total_size, limits.revalidate_after),
            rules: Rules {
                hidden_ok: cfg.serve_hidden_files,
                windows: cfg!(windows),
            },
            fallback: Internal::new("fallback", cfg.fallback.as_deref())?,
            not_found_page: Internal::new("not_found_page", cfg.not_found_page.as_deref())?,
            misses: misses::Misses::default(),
        })
    }

    /// Lookups that went to the disk (not answered by the cache): how well the cache works,
    /// for diagnostics and tests.
    pub fn disk_lookups(&self) -> u64 {
        self.misses.lookups()
    }

    /// Answers one request. Never panics, never returns an error: every failure is a response.
    ///
    /// Only the method, target and a few headers are read; they are copied out first so the
    /// returned future does not borrow `req` and stays `Send` even though request bodies are
    /// not `Sync`.
    pub fn serve<B>(&self, req: &Request<B>) -> impl Future<Output = Response<Body>> + Send + '_ {
        let info = RequestInfo::capture(req);
        let ready = self.answer_from_memory(&info);
        async move {
            match ready {
                Ok(response) => response,
                // Boxed: the disk path's future is large, and carrying it inline made every
                // request's future (moved several times on its way to hyper) that large.
                Err(hit) => Box::pin(self.handle(info, hit)).await,
            }
        }
    }

    /// The answer when all it needs is in memory (a fresh cache entry of a file whose
    /// bytes are cached, or no body at all), without a future. Otherwise what the cache
    /// said, for the full path to go on from: a stale answer's revalidation is claimed by
    /// the lookup that saw it, so asking again would find it "fresh".
    fn answer_from_memory(&self, req: &RequestInfo) -> Result<Response<Body>, Option<Hit>> {
        if !matches!(req.method, Method::Get | Method::Head) {
            return Err(None);
        }
        let Ok(decoded) = decode_path(req.uri.path(), self.rules) else {
            return Err(None);
        };
        let hit = self.cache.get(&decoded);
        let Some(Hit::Fresh(Resolved::File(entry))) = &hit else {
            return Err(hit);
        };
        let variant = self.variant_for(req, entry);
        let plan = respond::plan(req, variant);
        let source = match (plan.reads_file() && !req.is_head(), &variant.content) {
            (false, _) => None,
            (true, Some(bytes)) => Some(Source::Memory(bytes.clone())),
            (true, None) => return Err(hit),
        };
        let extra = &self.settings.file_headers;
        Ok(respond::file(plan, entry, variant, extra, source))
    }

    /// The encoding of `entry` to send `req`: sidecars come in `encoding::SIDECARS` order,
    /// so ties go to the smallest output. Without Accept-Encoding, or when even identity is
    /// refused and nothing else fits, the original is sent (RFC 9110 allows that instead of
    /// 406; browsers cope best).
    fn variant_for<'e>(&self, req: &RequestInfo, entry: &'e FileEntry) -> &'e Variant {
        let available = entry.encoded.iter().filter_map(|v| v.encoding);
        let chosen = AcceptEncoding::parse(req.accept_encoding.as_ref()).choose(available);
        chosen
            .and_then(|e| entry.variant_of(e))
            .unwrap_or(&entry.identity)
    }

    /// The full path; `hit` is what the cache said for the request's path, if asked.
    async fn handle(&self, req: RequestInfo, hit: Option<Hit>) -> Response<Body> {
        let head = req.is_head();
        match req.method {
            Method::Get | Method::Head => {}
            Method::Options => return respond::options(),
            Method::Other => return respond::method_not_allowed(),
        }
        let decoded = match decode_path(req.uri.path(), self.rules) {
            Ok(decoded) => decoded,
            Err(Rejection::BadRequest) => return respond::status(StatusCode::BAD_REQUEST, head),
            Err(Rejection::Hidden) => return self.not_found(&req).await,
        };
        let found = self.lookup_after(hit, &decoded, &decoded, self.rules.hidden_ok);
        match found.await {
            Ok(Resolved::File(entry)) => match self.send_file(&req, &decoded, &entry).await {
                Ok(response) => response,
                Err(e) if is_missing(&e) => self.not_found(&req).await,
                Err(e) => respond::io_error(&e, &decoded, head),
            },
            Ok(Resolved::AddSlash) => respond::add_slash(&decoded, req.uri.query(), head),
            Ok(Resolved::Listing(dir)) => self.listing(&req, dir, &decoded).await,
            Ok(Resolved::NotFound) => self.not_found(&req).await,
            Err(e) => respond::io_error(&e, &decoded, head),
        }
    }

    /// The answer for `decoded`, from the cache when fresh, else from disk (and cached).
    async fn lookup(&self, key: &str, decoded: &str, hidden_ok: bool) -> io::Result<Resolved> {
        self.lookup_after(self.cache.get(key), key, decoded, hidden_ok)
            .await
    }

    /// [`Self::lookup`] once the cache has answered `hit` for `key`.
    async fn lookup_after(
        &self,
        hit: Option<Hit>,
        key: &str,
        decoded: &str,
        hidden_ok: bool,
    ) -> io::Result<Resolved> {
        let mut prev = match hit {
            Some(Hit::Fresh(value)) => return Ok(value),
            Some(Hit::Stale(value)) => Some(value),
            None => None,
        };
        // Concurrent misses of one key wait for the first (`misses.rs`); without a cache
        // there is nothing to wait for.
        let gate = (prev.is_none() && self.cache.is_enabled()).then(|| self.misses.gate(key));
        let _turn = match &gate {
            Some(gate) => Some(gate.lock().await),
            None => None,
        };
        if gate.is_some() {
            match self.cache.get(key) {
                Some(Hit::Fresh(value)) => return Ok(value),
                Some(Hit::Stale(value)) => prev = Some(value),
                None => {}
            }
        }
        self.misses.count();
        let settings = Arc::clone(&self.settings);
        let decoded = decoded.to_owned();
        let result =
            blocking(move || lookup::resolve(&settings, &decoded, hidden_ok, prev.as_ref())).await;
        match &result {
            Ok(value) => self.cache.insert(key, value.clone()),
            Err(_) => self.cache.remove(key),
        }
        result
    }

    /// Serves a file: picks the sidecar, weighs preconditions and ranges, sends the bytes.
    async fn send_file(
        &self,
        req: &RequestInfo,
        key: &str,
        entry: &FileEntry,
    ) -> io::Result<Response<Body>> {
        let mut variant = Cow::Borrowed(self.variant_for(req, entry));
        let mut plan = respond::plan(req, &variant);
        let mut source = None;
        if plan.reads_file() && !req.is_head() {
            let (bytes, changed) = self.source(key, &variant).await?;
            if let Some(current) = changed {
                variant = Cow::Owned(current);
                plan = respond::plan(req, &variant);
            }
            source = Some(bytes);
        }
        let extra = &self.settings.file_headers;
        Ok(respond::file(plan, entry, &variant, extra, source))
    }

    /// The bytes of `variant`: from memory, or an open handle. If the file on disk is no
    /// longer the one cached under `key`, the entry is dropped and the returned variant
    /// describes what was actually opened, so headers and body always agree.
    async fn source(&self, key: &str, variant: &Variant) -> io::Result<(Source, Option<Variant>)> {
        if let Some(bytes) = &variant.content {
            return Ok((Source::Memory(bytes.clone()), None));
        }
        let settings = Arc::clone(&self.settings);
        let path = variant.path.clone();
        let opened = blocking(move || settings.root.open(&path)).await;
        let (file, meta) = opened.inspect_err(|_| self.cache.remove(key))?;
        let changed = (Stamp::of(&meta) != variant.stamp).then(|| {
            self.cache.remove(key);
            Variant::describe(variant.path.clone(), &meta, variant.encoding)
        });
        Ok((Source::Disk(Arc::new(file)), changed))
    }

    /// Not found: the SPA fallback if configured, else 404 with the configured page or text.
    async fn not_found(&self, req: &RequestInfo) -> Response<Body> {
        let head = req.is_head();
        if let Some(fallback) = &self.fallback {
            let found = self.lookup(&fallback.key, fallback.path(), true).await;
            let result = match found {
                Ok(Resolved::File(entry)) => self.send_file(req, &fallback.key, &entry).await,
                Ok(_) => Err(io::ErrorKind::NotFound.into()),
                Err(e) => Err(e),
            };
            match result {
                Ok(response) => return response,
                Err(e) if is_missing(&e) => {}
                Err(e) => return respond::io_error(&e, fallback.path(), head),
            }
        }
        if let Some(page) = &self.not_found_page {
            if let Ok(Resolved::File(entry)) = self.lookup(&page.key, page.path(), true).await {
                match self.error_page(&page.key, &entry.identity, head).await {
                    Ok(response) => return response,
                    Err(e) => tracing::warn!(error = %e, page = page.path(), "404 page unreadable"),
                }
            }
        }
        respond::status(StatusCode::NOT_FOUND, head)
    }

    async fn error_page(
        &self,
        key: &str,
        variant: &Variant,
        head: bool,
    ) -> io::Result<Response<Body>> {
        let html = HeaderValue::from_static("text/html; charset=utf-8");
        let (source, len) = if head {
            (None, variant.len)
        } else {
            let (source, changed) = self.source(key, variant).await?;
            (Some(source), changed.map_or(variant.len, |v| v.len))
        };
        let body = source.map_or_else(crate::body::empty, |s| file_body::single(s, 0..len));
        let mut response = Response::new(body);
        *response.status_mut() = StatusCode::NOT_FOUND;
        response.headers_mut().insert(header::CONTENT_TYPE, html);
        response
            .headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from(len));
        Ok(response)
    }

    async fn listing(&self, req: &RequestInfo, dir: Arc<Path>, decoded: &str) -> Response<Body> {
        let settings = Arc::clone(&self.settings);
        let url_path = decoded.to_owned();
        let hidden_ok = self.rules.hidden_ok;
        let page =
            blocking(move || listing::render(&settings.root, &dir, &url_path, hidden_ok)).await;
        match page {
            Ok(html) => {
                let content_type = HeaderValue::from_static("text/html; charset=utf-8");
                let mut response = respond::content(
                    StatusCode::OK,
                    content_type,
                    Bytes::from(html),
                    req.is_head(),
                );
                // Listings change with every upload; never let a cache keep one.
                let no_cache = HeaderValue::from_static("no-cache");
                response
                    .headers_mut()
                    .insert(header::CACHE_CONTROL, no_cache);
                response
            }
            Err(e) => respond::io_error(&e, decoded, req.is_head()),
        }
    }
}

/// Runs file-system work off the async threads; a panic in it becomes an I/O error.
async fn blocking<T, F>(work: F) -> io::Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> io::Result<T> + Send + 'static,
{
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(|e| Err(io::Error::other(e)))
}

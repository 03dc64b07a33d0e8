//! The validated, typed configuration that the rest of harrier uses.
//!
//! Raw TOML (plus environment and command-line overrides) is read and checked once by
//! [`crate::config::load`]; everything downstream works with these plain values and never
//! sees strings that still need parsing.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::site_model::{SiteConfig, UnknownHost};

/// The whole effective configuration of one harrier process.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// `[server]`: process-wide behaviour.
    pub server: ServerConfig,
    /// `[limits]`: Kestrel's server limits.
    pub limits: Limits,
    /// `[[endpoints]]`: where to listen; never empty after loading (a default is filled in).
    pub endpoints: Vec<EndpointConfig>,
    /// `[static]`: how the app directory is served as static files.
    pub static_files: StaticConfig,
    /// `[log]`: diagnostics and access log.
    pub log: LogConfig,
    /// `[[sites]]`: virtual hosts; empty = one site for any host serving `[static]`.
    pub sites: Vec<SiteConfig>,
    /// `[[apps]]`: backend processes harrier supervises.
    pub apps: Vec<super::proxy_model::AppConfig>,
    /// The settings file that was read, if any (for messages; not part of the printed config).
    pub source: Option<PathBuf>,
}

/// `[server]` section.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerConfig {
    /// Send `server: harrier` on every response.
    pub add_server_header: bool,
    /// How long in-flight requests may take to finish after a shutdown signal.
    pub shutdown_timeout: Duration,
    /// How long to keep serving normally after a shutdown signal before closing listeners.
    pub shutdown_delay: Duration,
    /// Runtime worker threads; 0 = one per CPU core.
    pub worker_threads: usize,
    /// What requests for a host no site serves get (only with `[[sites]]`).
    pub unknown_host: UnknownHost,
}

/// `[limits]` section; `None` means "unlimited" / "off" where the key allows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Largest request body in bytes (413 past it); `None` = unlimited.
    pub max_request_body_size: Option<u64>,
    /// Idle time after which a keep-alive connection is closed.
    pub keep_alive_timeout: Duration,
    /// Time allowed for a whole request head to arrive.
    pub request_headers_timeout: Duration,
    /// Longest request line in bytes (414 past it).
    pub max_request_line_size: usize,
    /// Most request header fields (431 past it).
    pub max_request_header_count: usize,
    /// Largest total size of the request header fields in bytes (431 past it).
    pub max_request_headers_total_size: usize,
    /// Most open connections; `None` = unlimited.
    pub max_concurrent_connections: Option<u64>,
    /// Most upgraded (WebSocket, CONNECT) connections; `None` = unlimited.
    pub max_concurrent_upgraded_connections: Option<u64>,
    /// Slowest accepted request-body upload; `None` = off.
    pub min_request_body_data_rate: Option<DataRate>,
    /// Slowest accepted response download; `None` = off.
    pub min_response_data_rate: Option<DataRate>,
    /// `[limits.http2]`.
    pub http2: Http2Limits,
    /// `[limits.http3]`.
    pub http3: Http3Limits,
}

/// A minimum data rate with a grace period, as Kestrel's `MinDataRate`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DataRate {
    /// Bytes per second the peer must sustain.
    pub bytes_per_second: u64,
    /// Time at the start during which the rate is not enforced.
    pub grace_period: Duration,
}

/// `[limits.http2]` section.
#[derive(Debug, Clone, PartialEq)]
pub struct Http2Limits {
    /// SETTINGS_MAX_CONCURRENT_STREAMS.
    pub max_streams_per_connection: u32,
    /// SETTINGS_HEADER_TABLE_SIZE (HPACK dynamic table).
    pub header_table_size: u32,
    /// SETTINGS_MAX_FRAME_SIZE.
    pub max_frame_size: u32,
    /// SETTINGS_MAX_HEADER_LIST_SIZE.
    pub max_request_header_field_size: u32,
    /// Connection-level flow-control window.
    pub initial_connection_window_size: u32,
    /// Stream-level flow-control window.
    pub initial_stream_window_size: u32,
    /// Send a PING after this much silence; `None` = off.
    pub keep_alive_ping_delay: Option<Duration>,
    /// Close the connection when a PING is not answered within this.
    pub keep_alive_ping_timeout: Duration,
}

/// `[limits.http3]` section (applies once HTTP/3 endpoints exist).
#[derive(Debug, Clone, PartialEq)]
pub struct Http3Limits {
    /// Largest request header section in bytes.
    pub max_request_header_field_size: u64,
    /// Most concurrent request streams per QUIC connection.
    pub max_streams_per_connection: u64,
}

/// One `[[endpoints]]` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct EndpointConfig {
    /// Optional name that sites may refer to.
    pub name: Option<String>,
    /// Where to listen.
    pub url: ListenUrl,
    /// Which protocols to speak on it.
    pub protocols: Protocols,
    /// Expect a PROXY protocol header before anything else.
    pub proxy_protocol: bool,
    /// TLS settings; `Some` exactly for `https://` endpoints.
    pub tls: Option<TlsConfig>,
    /// On an `http://` endpoint: answer every request with a redirect to the first
    /// `https://` endpoint (301 for GET/HEAD, 308 otherwise).
    pub https_redirect: bool,
}

/// TLS settings of one `https://` endpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct TlsConfig {
    /// Certificate files: `certificate`, then each of `certificates`; the first is the
    /// default for clients whose SNI matches none. Empty on a loopback endpoint means an
    /// in-memory development certificate.
    pub certificates: Vec<CertificateFiles>,
    /// IIS-style central store: `<host>.pem` + `<host>.key`, `_wildcard.<domain>.pem`.
    pub certificates_dir: Option<PathBuf>,
    /// Allowed TLS versions.
    pub versions: TlsVersions,
    /// Whether clients must, may or need not present a certificate.
    pub client_certificate: ClientCertificate,
    /// Trust roots for client certificates (required unless `client_certificate = "none"`).
    pub client_ca: Option<PathBuf>,
    /// What a ClientHello whose server name matches no certificate gets.
    pub unknown_sni: UnknownSni,
    /// Answer 421 when a request's Host differs from the TLS server name.
    pub require_sni_host_match: bool,
    /// Time allowed for the TLS handshake.
    pub handshake_timeout: Duration,
    /// `Strict-Transport-Security` sent on responses (never for localhost); `None` = off.
    pub hsts: Option<Hsts>,
}

/// A PEM certificate chain and its private key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateFiles {
    /// Certificate chain, leaf first.
    pub path: PathBuf,
    /// Private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// Which TLS versions an endpoint accepts (at least one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TlsVersions {
    /// TLS 1.2.
    pub tls12: bool,
    /// TLS 1.3.
    pub tls13: bool,
}

/// Client certificate (mutual TLS) policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientCertificate {
    /// Not asked for.
    None,
    /// Asked for and verified if sent; clients without one are still served.
    Allow,
    /// Required: the handshake fails without a valid one.
    Require,
}

/// Handshakes whose server name (SNI) matches no certificate, or that send none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnknownSni {
    /// Present the default certificate.
    Default,
    /// Refuse the handshake.
    Refuse,
}

/// HTTP Strict Transport Security.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hsts {
    /// `max-age`.
    pub max_age: Duration,
    /// `includeSubDomains`.
    pub include_subdomains: bool,
    /// `preload`.
    pub preload: bool,
}

/// A parsed endpoint URL.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ListenUrl {
    /// `http://HOST:PORT`; HOST is an IP literal, `localhost` (127.0.0.1) or `*` (all interfaces).
    Http(SocketAddr),
    /// `https://HOST:PORT`, same HOST forms.
    Https(SocketAddr),
    /// `unix:/path.sock` (Unix only).
    Unix(PathBuf),
}

impl std::fmt::Display for ListenUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ListenUrl::Http(addr) => write!(f, "http://{addr}"),
            ListenUrl::Https(addr) => write!(f, "https://{addr}"),
            ListenUrl::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}

/// The protocol set of an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Protocols {
    /// HTTP/1.1.
    pub http1: bool,
    /// HTTP/2 (h2c by prior knowledge on http://).
    pub http2: bool,
    /// HTTP/3 (https:// only).
    pub http3: bool,
}

/// `[static]` section: serving the app directory.
#[derive(Debug, Clone, PartialEq)]
pub struct StaticConfig {
    /// Directory served; absolute after loading (APP_DIR unless `root` is set).
    pub root: PathBuf,
    /// Files tried, in order, when a directory is requested.
    pub index_files: Vec<String>,
    /// File (relative to root) served for paths that match nothing, for single-page apps.
    pub fallback: Option<String>,
    /// File (relative to root) used as the body of 404 responses, if it exists.
    pub not_found_page: Option<String>,
    /// Render an HTML listing for directories without an index file.
    pub directory_listing: bool,
    /// Serve files and directories whose name starts with a dot.
    pub serve_hidden_files: bool,
    /// Follow symbolic links that resolve outside the root.
    pub follow_symlinks: bool,
    /// Serve `.br`, `.zst`, `.gz` sidecar files when the client accepts the encoding.
    pub precompressed: bool,
    /// `cache-control` value sent with files; `None` = no header.
    pub cache_control: Option<String>,
    /// In-memory cache of small hot files.
    pub cache: FileCacheConfig,
}

/// `[static.cache]`: the in-memory cache of small files.
#[derive(Debug, Clone, PartialEq)]
pub struct FileCacheConfig {
    /// Files larger than this are streamed from disk, never cached; 0 disables the cache.
    pub max_file_size: u64,
    /// Total bytes of file content kept in memory.
    pub max_total_size: u64,
    /// How long a cached entry is trusted before its metadata is checked again.
    pub revalidate_after: Duration,
}

/// `[log]` section.
#[derive(Debug, Clone, PartialEq)]
pub struct LogConfig {
    /// Diagnostics level: error, warn, info, debug, trace (`RUST_LOG` overrides).
    pub level: String,
    /// Access log format.
    pub access_log: AccessLogFormat,
}

/// How each request is logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessLogFormat {
    /// Apache/nginx combined log format.
    Combined,
    /// One JSON object per line.
    Json,
    /// No access log.
    Off,
}

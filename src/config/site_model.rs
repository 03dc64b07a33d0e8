//! The typed model of `[[sites]]`: virtual hosts, their routes, middleware stages and
//! terminal handlers (DESIGN §1.3).

use http::{HeaderName, HeaderValue, Method, StatusCode};

use super::model::StaticConfig;

/// What a request whose Host matches no site gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnknownHost {
    /// 421 Misdirected Request (Kestrel's host filtering answers 400; 421 tells a client
    /// that reused a connection for another name to open a new one).
    Misdirected,
    /// 404 Not Found.
    NotFound,
}

/// One `[[sites]]` entry: a virtual host.
#[derive(Debug, Clone, PartialEq)]
pub struct SiteConfig {
    /// Optional name, for messages and logs.
    pub name: Option<String>,
    /// Host names served (`example.com`, `*.example.com`, `*` for any).
    pub hosts: Vec<HostPattern>,
    /// Names of the endpoints the site is bound to; empty = every endpoint.
    pub endpoints: Vec<String>,
    /// Static files of the site (its `root` and `[sites.static]` options over `[static]`).
    pub static_files: StaticConfig,
    /// `[[sites.use]]`: stages every request of the site runs through, in order.
    pub middleware: Vec<StageConfig>,
    /// `[[sites.routes]]`: first match wins; no match → the site's static files.
    pub routes: Vec<RouteConfig>,
}

/// A host name pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostPattern {
    /// `*`: any host.
    Any,
    /// An exact name, lowercase.
    Exact(String),
    /// `*.example.com`: any name ending in `.example.com` (stored as `.example.com`).
    Wildcard(String),
}

/// One route: a matcher, stages, and the terminal handler.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteConfig {
    /// When the route applies.
    pub matcher: RouteMatch,
    /// `use`: stages for this route, after the site's.
    pub middleware: Vec<StageConfig>,
    /// The handler that answers.
    pub handler: HandlerConfig,
}

/// Conditions that must all hold for a route to match.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RouteMatch {
    /// Path pattern; `None` = any path.
    pub path: Option<PathPattern>,
    /// Methods; empty = any method.
    pub methods: Vec<Method>,
    /// Header name and required value (`None` = present with any value).
    pub headers: Vec<(HeaderName, Option<String>)>,
    /// Query parameter name and required value (`None` = present with any value).
    pub query: Vec<(String, Option<String>)>,
}

/// A path pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathPattern {
    /// `/exact`.
    Exact(String),
    /// `/prefix/*`: the prefix itself and everything below it (stored without the `*`).
    Prefix(String),
    /// Any other pattern with `*` (one segment) or `**` (any depth), e.g. `/assets/*.js`.
    Glob(String),
}

/// A terminal handler.
#[derive(Debug, Clone, PartialEq)]
pub enum HandlerConfig {
    /// Static files (the site's, or a root and options of the route's own).
    Static(StaticConfig),
    /// A redirect; `to` may use `{path}`, `{query}`, `{host}` and `{1}`.. (the `*` captures).
    Redirect {
        /// 301, 302, 303, 307 or 308.
        status: StatusCode,
        /// The target template.
        to: String,
    },
    /// A fixed response.
    Respond {
        /// The status.
        status: StatusCode,
        /// Extra headers.
        headers: Vec<(HeaderName, HeaderValue)>,
        /// The body.
        body: String,
    },
    /// A reverse proxy to upstream servers.
    Proxy(Box<super::proxy_model::ProxyConfig>),
    /// A reverse proxy to the instances of a supervised `[[apps]]` process.
    App {
        /// The app's `name`.
        app: String,
        /// The proxy options (their `upstreams` are the app's instances).
        proxy: Box<super::proxy_model::ProxyConfig>,
    },
}

/// A middleware stage (`type = "..."`).
#[derive(Debug, Clone, PartialEq)]
pub enum StageConfig {
    /// `rate_limit`: requests per client over time, 429 past it.
    RateLimit(RateLimitStage),
    /// `request_filter`: IIS request filtering (URL lengths, hidden segments, methods).
    RequestFilter(RequestFilterStage),
    /// `headers`: set, add or remove request and response headers.
    Headers(HeadersStage),
    /// `forwarded_headers`: the client IP, scheme and host from a trusted proxy's headers.
    ForwardedHeaders(ForwardedHeadersStage),
    /// `ip_filter`: allow or deny requests by client IP (403).
    IpFilter(IpFilterStage),
    /// `compress`: zstd, br or gzip response bodies, negotiated from Accept-Encoding.
    Compress(CompressStage),
    /// `error_pages`: the body of error responses replaced by files of the site.
    ErrorPages(ErrorPagesStage),
    /// `basic_auth`: HTTP Basic authentication against bcrypt or argon2 password hashes.
    BasicAuth(BasicAuthStage),
    /// `cors`: cross-origin resource sharing (preflights answered, allow headers added).
    Cors(CorsStage),
    /// `rewrite`: IIS URL Rewrite style rules on the path (see `stage_rewrite`).
    Rewrite(super::stage_rewrite::RewriteStage),
}

/// `type = "forwarded_headers"` (Kestrel's ForwardedHeadersMiddleware).
#[derive(Debug, Clone, PartialEq)]
pub struct ForwardedHeadersStage {
    /// `headers`: which headers are read, out of [`FORWARDED_HEADERS`].
    pub headers: Vec<&'static str>,
    /// `trusted_proxies`: peers whose headers are believed (Kestrel's KnownProxies).
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// `forward_limit`: how many proxy hops are walked back at most (Kestrel's ForwardLimit).
    pub forward_limit: u32,
}

/// The headers `forwarded_headers` can read; `forwarded` is RFC 7239.
pub const FORWARDED_HEADERS: [&str; 4] = [
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
    "forwarded",
];

/// `type = "ip_filter"`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct IpFilterStage {
    /// `allow`: when not empty, only these clients get through.
    pub allow: Vec<ipnet::IpNet>,
    /// `deny`: these clients get 403, even when `allow` lists them.
    pub deny: Vec<ipnet::IpNet>,
}

/// `type = "headers"`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HeadersStage {
    /// Changes to the request, before the handler sees it.
    pub request: HeaderRules,
    /// Changes to the response, on its way out.
    pub response: HeaderRules,
}

/// Header changes, applied in the order remove, set, add.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HeaderRules {
    /// Replace (or create) these headers; values may use `{client_ip}`, `{host}`, `{request_id}`.
    pub set: Vec<(HeaderName, String)>,
    /// Append these headers (same placeholders).
    pub add: Vec<(HeaderName, String)>,
    /// Remove these headers.
    pub remove: Vec<HeaderName>,
}

/// `type = "basic_auth"`.
#[derive(Debug, Clone, PartialEq)]
pub struct BasicAuthStage {
    /// `realm`: shown by browsers in the login prompt.
    pub realm: String,
    /// `users`: user names and their password hashes (PHC argon2 or bcrypt), in file order.
    pub users: Vec<(String, String)>,
}

/// `type = "cors"`.
#[derive(Debug, Clone, PartialEq)]
pub struct CorsStage {
    /// `allowed_origins`: `"*"`, exact origins, or `scheme://*.domain` wildcards (lowercase).
    pub allowed_origins: Vec<String>,
    /// `allowed_methods`: methods a preflight may ask for.
    pub allowed_methods: Vec<Method>,
    /// `allowed_headers`: request header names a preflight may ask for (lowercase; `"*"` any).
    pub allowed_headers: Vec<String>,
    /// `exposed_headers`: response headers scripts may read (lowercase; `"*"` any).
    pub exposed_headers: Vec<String>,
    /// `allow_credentials`: cookies and HTTP auth allowed on cross-origin requests.
    pub allow_credentials: bool,
    /// `max_age`: how long browsers may cache a preflight answer.
    pub max_age: std::time::Duration,
}

/// `type = "compress"`.
#[derive(Debug, Clone, PartialEq)]
pub struct CompressStage {
    /// `encodings`: the codings offered, most preferred first (breaks ties between equal
    /// q-values of the client).
    pub encodings: Vec<Encoding>,
    /// `min_size`: responses whose known length is below this are sent as they are.
    pub min_size: u64,
    /// `content_types`: media-type prefixes that are compressed (lowercase).
    pub content_types: Vec<String>,
    /// `levels`: the compression level of each coding.
    pub levels: CompressLevels,
}

/// A content coding the `compress` stage can produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// `zstd` (RFC 8878).
    Zstd,
    /// `br`: Brotli (RFC 7932).
    Br,
    /// `gzip` (RFC 1952).
    Gzip,
}

impl Encoding {
    /// Every coding, in the default order of preference.
    pub const ALL: [Encoding; 3] = [Encoding::Zstd, Encoding::Br, Encoding::Gzip];

    /// The coding's token in Accept-Encoding and Content-Encoding.
    pub fn as_str(self) -> &'static str {
        match self {
            Encoding::Zstd => "zstd",
            Encoding::Br => "br",
            Encoding::Gzip => "gzip",
        }
    }
}

/// Compression levels, one per coding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompressLevels {
    /// gzip, 0-9.
    pub gzip: u32,
    /// br, 0-11.
    pub br: u32,
    /// zstd, 1-22.
    pub zstd: i32,
}

/// `type = "error_pages"`.
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorPagesStage {
    /// `pages`: which statuses get which file, relative to the site root.
    pub pages: Vec<(ErrorStatus, std::path::PathBuf)>,
}

/// A key of `pages`: one status, or a class of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorStatus {
    /// `404`: exactly this status.
    Code(StatusCode),
    /// `"5xx"`: any status of the class (4 or 5).
    Class(u16),
}

/// `type = "rate_limit"`.
#[derive(Debug, Clone, PartialEq)]
pub struct RateLimitStage {
    /// Whose bucket a request draws from.
    pub key: RateKey,
    /// The sustained rate.
    pub rate: Rate,
    /// Requests a client may send at once, above the sustained rate.
    pub burst: u64,
    /// Clients remembered at most: the memory bound.
    pub max_clients: usize,
}

/// What `rate_limit` counts by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RateKey {
    /// `client_ip`: the client's address.
    ClientIp,
    /// `header:NAME`: the value of a request header (an API key).
    Header(HeaderName),
}

/// `COUNT/UNIT`, such as `10/s`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Requests per unit (at least 1).
    pub count: u64,
    /// The unit of time.
    pub unit: RateUnit,
}

/// The unit of a [`Rate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateUnit {
    /// `s`.
    Second,
    /// `m`.
    Minute,
    /// `h`.
    Hour,
}

impl RateUnit {
    /// The unit as a duration.
    pub fn period(self) -> std::time::Duration {
        std::time::Duration::from_secs(match self {
            RateUnit::Second => 1,
            RateUnit::Minute => 60,
            RateUnit::Hour => 3600,
        })
    }
}

/// `type = "request_filter"`.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestFilterStage {
    /// Longest path (query not included), in bytes; 414 past it.
    pub max_url_length: usize,
    /// Longest query string, in bytes; 414 past it.
    pub max_query_length: usize,
    /// Path segments that answer 404 wherever they appear (case-insensitive).
    pub deny_path_segments: Vec<String>,
    /// File name endings that answer 404 (case-insensitive, with the dot).
    pub deny_extensions: Vec<String>,
    /// Methods that answer 405.
    pub deny_methods: Vec<Method>,
    /// 400 for a path that still holds `%XX` once decoded.
    pub reject_double_escaping: bool,
}

impl Default for RequestFilterStage {
    /// IIS's limits, and the names that leak secrets when a site root holds a checkout.
    fn default() -> Self {
        let strings = |list: &[&str]| list.iter().map(|s| (*s).to_owned()).collect();
        RequestFilterStage {
            max_url_length: 4096,
            max_query_length: 2048,
            deny_path_segments: strings(&[".git", ".svn", ".hg"]),
            deny_extensions: strings(&[".env", ".config"]),
            deny_methods: vec![
                Method::TRACE,
                Method::from_bytes(b"TRACK").unwrap_or(Method::TRACE),
            ],
            reject_double_escaping: true,
        }
    }
}

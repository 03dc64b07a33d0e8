//! The typed model of the `proxy` and `app` handlers and of `[[apps]]`: upstreams, load
//! balancing, health, retries, timeouts, forwarded headers, and supervised processes.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use http::{HeaderName, StatusCode};

use super::model::CertificateFiles;
use super::site_model::HeaderRules;

/// Options of a `type = "proxy"` handler; an `app` handler has the same options with the
/// upstreams supplied by its app's running instances.
#[derive(Debug, Clone, PartialEq)]
pub struct ProxyConfig {
    /// `upstreams`: where requests go (empty for an `app` handler).
    pub upstreams: Vec<UpstreamConfig>,
    /// `policy`: how an upstream is chosen for each request.
    pub policy: LbPolicy,
    /// `strip_prefix`: removed from the start of the path before forwarding.
    pub strip_prefix: Option<String>,
    /// `add_prefix`: put in front of the path (after `strip_prefix`).
    pub add_prefix: Option<String>,
    /// `host`: the Host header the upstream sees.
    pub host: HostHeader,
    /// `connect_timeout`: opening a connection to an upstream (502 past it, or a retry).
    pub connect_timeout: Duration,
    /// `response_header_timeout`: from the request sent to the response head (504 past it).
    pub response_header_timeout: Duration,
    /// `body_idle_timeout`: longest pause between two pieces of a response body; the
    /// response is cut (the client sees a truncated body) past it.
    pub body_idle_timeout: Duration,
    /// `retries`: further attempts, each on another upstream, after a connection failure
    /// of a request that is safe to retry (idempotent method, body not yet sent).
    pub retries: u32,
    /// `retry_timeout`: no new attempt starts later than this after the first.
    pub retry_timeout: Duration,
    /// `passive_health`: an upstream is marked down after failures seen on real traffic;
    /// `None` = off.
    pub passive_health: Option<PassiveHealth>,
    /// `health_check`: probes sent on a timer; `None` = off.
    pub health_check: Option<HealthCheck>,
    /// Which forwarding headers are sent, and whose incoming ones are kept.
    pub forwarded: ForwardedOut,
    /// `request_headers`: changes to the request before it goes upstream (same rules and
    /// placeholders as the `headers` stage).
    pub request_headers: HeaderRules,
    /// `response_headers`: changes to the upstream's response.
    pub response_headers: HeaderRules,
    /// `tls`: how https:// upstreams are verified and whom harrier says it is.
    pub tls: UpstreamTls,
    /// `max_idle_per_upstream`: idle keep-alive connections kept per upstream.
    pub max_idle_per_upstream: usize,
    /// `pool_idle_timeout`: an idle pooled connection is closed after this long.
    pub pool_idle_timeout: Duration,
}

/// One entry of `upstreams` (`"http://127.0.0.1:5000"` or `{ url = "...", weight = 2 }`).
#[derive(Debug, Clone, PartialEq)]
pub struct UpstreamConfig {
    /// Where it is.
    pub target: UpstreamTarget,
    /// `weight`: its share of requests relative to the others (1..=100).
    pub weight: u32,
}

/// The address and protocol of an upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpstreamTarget {
    /// `http://`, `https://` or `h2c://` host and port.
    Tcp {
        /// The scheme.
        scheme: UpstreamScheme,
        /// Host name or IP literal (IPv6 without brackets).
        host: String,
        /// Port (the scheme's default when the URL has none).
        port: u16,
    },
    /// `unix:/path/to.sock`: HTTP/1.1 over a unix socket.
    Unix(PathBuf),
}

/// How harrier talks to a TCP upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamScheme {
    /// HTTP/1.1 over TCP.
    Http,
    /// HTTP/1.1 or HTTP/2 (ALPN) over TLS.
    Https,
    /// HTTP/2 over TCP without TLS (prior knowledge).
    H2c,
}

impl UpstreamScheme {
    /// The scheme as written in upstream URLs.
    pub fn as_str(self) -> &'static str {
        match self {
            UpstreamScheme::Http => "http",
            UpstreamScheme::Https => "https",
            UpstreamScheme::H2c => "h2c",
        }
    }
}

/// The upstream as written in settings (with its port, IPv6 in brackets, `unix:` with an
/// absolute path): the effective configuration prints it, and logs and pages name
/// upstreams by it.
impl fmt::Display for UpstreamTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UpstreamTarget::Tcp { scheme, host, port } if host.contains(':') => {
                write!(f, "{}://[{host}]:{port}", scheme.as_str())
            }
            UpstreamTarget::Tcp { scheme, host, port } => {
                write!(f, "{}://{host}:{port}", scheme.as_str())
            }
            UpstreamTarget::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}

/// `policy`: how the upstream of each request is chosen among those that are up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LbPolicy {
    /// `round_robin`: in turn, by weight.
    RoundRobin,
    /// `least_conn`: the one with the fewest requests in flight (relative to its weight).
    LeastConn,
    /// `random`: two picked at random (by weight), the less busy one wins.
    Random,
    /// `ip_hash`: by the client IP, so a client keeps its upstream.
    IpHash,
    /// `uri_hash`: by the path and query, so a URL keeps its upstream (cache locality).
    UriHash,
    /// `header`: by the value of a request header (round robin when it is absent).
    Header(HeaderName),
    /// `cookie`: sticky sessions; a signed cookie names the upstream of a client's first
    /// request, later requests go there while it is up.
    Cookie {
        /// The cookie's name.
        name: String,
        /// The key that signs it (a random one per process when not configured, so
        /// stickiness then lasts until a restart).
        secret: Option<String>,
    },
    /// `first`: the first upstream that is up (failover).
    First,
}

/// The Host header the upstream sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostHeader {
    /// `"preserve"`: the client's.
    Preserve,
    /// `"upstream"`: the upstream's own host and port.
    Upstream,
    /// Any other value: this one.
    Fixed(String),
}

/// `passive_health`: failures on real traffic mark an upstream down for a while.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PassiveHealth {
    /// `max_failures`: consecutive failures (connection errors, timeouts, and the
    /// `unhealthy_statuses`) that mark it down.
    pub max_failures: u32,
    /// `fail_duration`: how long it stays down before it gets traffic again.
    pub fail_duration: Duration,
    /// `unhealthy_statuses`: response statuses counted as failures (e.g. 502, 503).
    pub unhealthy_statuses: Vec<StatusCode>,
}

/// nginx's `max_fails=1 fail_timeout=10s`: the default of `passive_health`, and of the keys
/// its table leaves out.
impl Default for PassiveHealth {
    fn default() -> Self {
        PassiveHealth {
            max_failures: 1,
            fail_duration: Duration::from_secs(10),
            unhealthy_statuses: Vec::new(),
        }
    }
}

/// `health_check`: an HTTP probe of every upstream on a timer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheck {
    /// `path`: what is requested (GET).
    pub path: String,
    /// `interval`: time between probes of one upstream.
    pub interval: Duration,
    /// `timeout`: a probe without a response head within this is a failure.
    pub timeout: Duration,
    /// `expect_status`: statuses that count as healthy; empty = any 2xx or 3xx.
    pub expect_status: Vec<StatusCode>,
    /// `healthy_threshold`: consecutive successes that bring a down upstream back.
    pub healthy_threshold: u32,
    /// `unhealthy_threshold`: consecutive failures that take an upstream down.
    pub unhealthy_threshold: u32,
}

/// Which forwarding headers go upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardedOut {
    /// `x_forwarded`: X-Forwarded-For, -Proto and -Host.
    pub x_forwarded: bool,
    /// `forwarded`: the RFC 7239 Forwarded header.
    pub forwarded: bool,
    /// `via`: a Via header naming harrier.
    pub via: bool,
    /// `trusted_proxies`: peers whose incoming forwarding headers are appended to; from
    /// anyone else they are replaced.
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

/// `tls` of a proxy handler, for https:// upstreams.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UpstreamTls {
    /// `ca`: PEM file of the CAs trusted for upstream certificates (instead of the
    /// system's roots).
    pub ca: Option<PathBuf>,
    /// `certificate` and `key`: a client certificate presented to upstreams (mTLS).
    pub client_certificate: Option<CertificateFiles>,
    /// `server_name`: the SNI name sent and verified instead of the upstream's host.
    pub server_name: Option<String>,
}

/// One `[[apps]]` entry: a backend process harrier starts, watches and restarts.
#[derive(Debug, Clone, PartialEq)]
pub struct AppConfig {
    /// `name`: how routes (`{ type = "app", app = "name" }`) and logs refer to it.
    pub name: String,
    /// `command`: the program and its arguments.
    pub command: Vec<String>,
    /// `dir`: working directory (relative paths from the settings file's folder).
    pub dir: PathBuf,
    /// `env`: extra environment variables, over harrier's own environment.
    pub env: Vec<(String, String)>,
    /// `instances`: processes run side by side (a web garden), balanced by the route's
    /// policy.
    pub instances: u32,
    /// `start`: at startup, or on the first request for it.
    pub start: AppStart,
    /// `start_timeout`: how long an instance may take to become ready.
    pub start_timeout: Duration,
    /// `listen`: a loopback TCP port or a unix socket, handed over in the environment.
    pub listen: AppListen,
    /// `ready`: how harrier knows an instance accepts requests.
    pub ready: Readiness,
    /// `restart_delay`: the first wait before restarting an instance that exited; doubles
    /// on each further crash up to `restart_delay_max`.
    pub restart_delay: Duration,
    /// See `restart_delay`.
    pub restart_delay_max: Duration,
    /// `rapid_fail`: too many crashes too fast stop the app (IIS rapid-fail protection);
    /// `None` = keep restarting.
    pub rapid_fail: Option<RapidFail>,
    /// When an instance is replaced by a fresh one (overlapped).
    pub recycle: Recycle,
    /// `stop_timeout`: after the polite stop signal, how long before it is killed.
    pub stop_timeout: Duration,
}

/// `start` of an app.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppStart {
    /// `"startup"`: when harrier starts.
    Startup,
    /// `"first_request"`: when the first request for it arrives.
    FirstRequest,
}

/// `listen` of an app: how it is told where to listen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppListen {
    /// `"tcp"`: a free loopback port in `PORT`, `HARRIER_PORT`, `ASPNETCORE_PORT` and
    /// `ASPNETCORE_URLS`.
    Tcp,
    /// `"unix"`: a socket path in `HARRIER_SOCKET` (and `PORT` unset).
    Unix,
}

/// `ready` of an app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    /// `"tcp"`: the port (or socket) accepts a connection.
    Tcp,
    /// A path such as `"/healthz"`: a GET answers 2xx or 3xx.
    Http(String),
}

/// `rapid_fail`: `crashes` exits within `window` stop the app until a reload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RapidFail {
    /// Exits counted.
    pub crashes: u32,
    /// Within this long.
    pub window: Duration,
}

/// IIS's 5 crashes in 5 minutes: the default of `rapid_fail`, and of the keys its table
/// leaves out.
impl Default for RapidFail {
    fn default() -> Self {
        RapidFail {
            crashes: 5,
            window: Duration::from_secs(300),
        }
    }
}

/// `[apps.recycle]`: when an instance is replaced (IIS app pool recycling); every limit
/// `None` = off.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Recycle {
    /// `requests`: after this many requests.
    pub requests: Option<u64>,
    /// `memory`: when its resident memory passes this many bytes (checked every few
    /// seconds; Linux only).
    pub memory: Option<u64>,
    /// `after`: when it has run this long.
    pub after: Option<Duration>,
    /// `at`: at these times of day, UTC, as minutes after midnight (`"03:30"` = 210).
    pub at: Vec<u16>,
}

impl ProxyConfig {
    /// The defaults of every option, in front of `upstreams`.
    pub fn with_upstreams(upstreams: Vec<UpstreamConfig>) -> Self {
        ProxyConfig {
            upstreams,
            policy: LbPolicy::RoundRobin,
            strip_prefix: None,
            add_prefix: None,
            host: HostHeader::Preserve,
            // nginx's proxy_connect_timeout is 60 s; a loopback or LAN upstream that has
            // not accepted in 5 s is not going to, and the next one should be tried.
            connect_timeout: Duration::from_secs(5),
            // nginx's proxy_read_timeout.
            response_header_timeout: Duration::from_secs(60),
            body_idle_timeout: Duration::from_secs(60),
            retries: 1,
            retry_timeout: Duration::from_secs(5),
            passive_health: Some(PassiveHealth::default()),
            health_check: None,
            forwarded: ForwardedOut {
                x_forwarded: true,
                forwarded: false,
                via: false,
                trusted_proxies: Vec::new(),
            },
            request_headers: HeaderRules::default(),
            response_headers: HeaderRules::default(),
            tls: UpstreamTls::default(),
            max_idle_per_upstream: 32,
            pool_idle_timeout: Duration::from_secs(90),
        }
    }
}

impl AppConfig {
    /// An app running `command` with every other option at its default.
    pub fn new(name: impl Into<String>, command: Vec<String>, dir: PathBuf) -> Self {
        AppConfig {
            name: name.into(),
            command,
            dir,
            env: Vec::new(),
            instances: 1,
            start: AppStart::Startup,
            start_timeout: Duration::from_secs(30),
            listen: AppListen::Tcp,
            ready: Readiness::Tcp,
            restart_delay: Duration::from_secs(1),
            restart_delay_max: Duration::from_secs(30),
            rapid_fail: Some(RapidFail::default()),
            recycle: Recycle::default(),
            stop_timeout: Duration::from_secs(10),
        }
    }
}

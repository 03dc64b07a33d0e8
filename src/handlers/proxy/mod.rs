//! The `proxy` and `app` handlers: forward requests to upstream servers and stream their
//! responses back.
//!
//! The proxy does not know the client's protocol: HTTP/1.1, HTTP/2 and HTTP/3 requests all
//! arrive as `Request<Body>`. Each plain HTTP/1.1 upstream gets a pool of connections
//! driven by the requests themselves (`pool`); upgrades, h2c and https upstreams go through
//! a pooled hyper-util client. The upstream of a request is chosen by the handler's policy
//! among those that are up; connection failures of requests that are safe to repeat are
//! retried on another upstream.

mod balance;
pub mod connect;
mod forward;
mod health;
mod pool;
mod streamed;
pub mod upgrade;
pub mod upstream;

use std::collections::HashMap;
use std::sync::{Arc, RwLock, Weak};
use std::time::{Duration, Instant};

use http::{header, HeaderValue, Method, Request, Response, StatusCode, Uri, Version};
use http_body::Body as _;
use http_body_util::BodyExt;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use crate::body::{self, Body};
use crate::config::{HostHeader, ProxyConfig, UpstreamScheme, UpstreamTarget};
use crate::limits::BodyLimitError;
use crate::pipeline::Tunnel;
use balance::{Balancer, Tried};
use connect::{ConnectError, Connector, TlsClient, TlsSetupError};
use forward::Origin;
use upgrade::UpgradeLimit;
use upstream::{SetStatus, Upstream, UpstreamSet};

type UpstreamClient = Client<Connector, Body>;

/// The `Dest` of each upstream seen, keyed by the `Upstream`'s address.
type Dests = HashMap<usize, (Weak<Upstream>, Arc<Dest>)>;

/// What a request needs to reach one upstream, derived once from its target and shared
/// by its requests (one reference count per request, not a copy of the client).
struct Dest {
    client: UpstreamClient,
    scheme: http::uri::Scheme,
    /// `host:port` (`localhost` for unix sockets): the `:authority` of HTTP/2 requests
    /// without a usable Host, and the Host header under `host = "upstream"`.
    authority: http::uri::Authority,
    authority_value: HeaderValue,
    /// h2c: HTTP/2 from the first byte, the host in `:authority`.
    h2: bool,
    /// Plain HTTP/1.1 upstreams (http://, unix sockets): their request-driven pool.
    h1: Option<Arc<pool::H1Pool>>,
}

impl Dest {
    /// The URI authority of a request to this upstream whose Host is `host`. HTTP/2 sends
    /// it as `:authority`. Over HTTP/1.1 it only names the pool inside this upstream's own
    /// client (the connector dials the upstream; the Host header is set apart), and the
    /// pool hashes it byte by byte with SipHash at every checkout and return: one letter
    /// instead of `127.0.0.1:5000` saves ~2.5k instructions per request. Requests and
    /// health probes must use the same one, or they keep separate idle connections.
    fn uri_authority(&self, host: Option<&HeaderValue>) -> http::uri::Authority {
        if !self.h2 {
            return http::uri::Authority::from_static("u");
        }
        host.and_then(|h| http::uri::Authority::try_from(h.as_bytes()).ok())
            .unwrap_or_else(|| self.authority.clone())
    }
}

/// A proxy handler: its options, its upstreams and a client per upstream.
pub struct Proxy {
    cfg: ProxyConfig,
    set: Arc<UpstreamSet>,
    balancer: Balancer,
    tls: Option<TlsClient>,
    /// Keyed by the `Upstream`'s address; the `Weak` tells a live entry from a reused
    /// address. Written only when an upstream is first seen.
    dests: RwLock<Dests>,
    upgrades: Arc<UpgradeLimit>,
    /// `host` when it names a fixed value.
    fixed_host: Option<HeaderValue>,
    /// How long a request waits for an app with no ready instance.
    wait: Duration,
    /// What the 503 page calls the upstreams ("app dashboard", "upstreams").
    name: String,
}

impl Proxy {
    /// A proxy over the fixed `upstreams` of `cfg`.
    pub fn fixed(
        cfg: &ProxyConfig,
        upgrades: Arc<UpgradeLimit>,
    ) -> Result<Arc<Self>, TlsSetupError> {
        let list = cfg
            .upstreams
            .iter()
            .map(|u| Upstream::new(u.target.clone(), u.weight, u.target.to_string()))
            .collect();
        let set = UpstreamSet::fixed(list);
        Self::new(cfg, set, upgrades, Duration::ZERO, "upstreams".to_owned())
    }

    /// A proxy over an app's instances; requests wait up to `wait` for one to be ready.
    pub fn app(
        cfg: &ProxyConfig,
        set: Arc<UpstreamSet>,
        upgrades: Arc<UpgradeLimit>,
        wait: Duration,
        app: &str,
    ) -> Result<Arc<Self>, TlsSetupError> {
        Self::new(cfg, set, upgrades, wait, format!("app {app}"))
    }

    fn new(
        cfg: &ProxyConfig,
        set: Arc<UpstreamSet>,
        upgrades: Arc<UpgradeLimit>,
        wait: Duration,
        name: String,
    ) -> Result<Arc<Self>, TlsSetupError> {
        let https = cfg
            .upstreams
            .iter()
            .any(|u| scheme_of(&u.target) == Some(UpstreamScheme::Https));
        let tls = if https {
            Some(TlsClient::new(&cfg.tls)?)
        } else {
            None
        };
        let fixed_host = match &cfg.host {
            HostHeader::Fixed(host) => HeaderValue::from_str(host).ok(),
            _ => None,
        };
        let proxy = Arc::new(Proxy {
            cfg: cfg.clone(),
            set,
            balancer: Balancer::new(&cfg.policy),
            tls,
            dests: RwLock::new(HashMap::new()),
            upgrades,
            fixed_host,
            wait,
            name,
        });
        if let Some(check) = &cfg.health_check {
            health::spawn(Arc::downgrade(&proxy), check.clone());
        }
        Ok(proxy)
    }

    /// How to reach `upstream`: its pooled client and URI parts, made on first use.
    fn dest(&self, upstream: &Arc<Upstream>) -> Arc<Dest> {
        let key = Arc::as_ptr(upstream) as usize;
        let live = |(weak, dest): &(Weak<Upstream>, Arc<Dest>)| {
            (weak.as_ptr() == Arc::as_ptr(upstream) && weak.strong_count() > 0)
                .then(|| Arc::clone(dest))
        };
        if let Some(dest) = self.read_dests().get(&key).and_then(live) {
            return dest;
        }
        let mut dests = self.dests.write().unwrap_or_else(|e| e.into_inner());
        dests.retain(|_, (weak, _)| weak.strong_count() > 0);
        let connector = Connector::new(
            upstream.target.clone(),
            self.tls.clone(),
            self.cfg.connect_timeout,
        );
        let h2 = scheme_of(&upstream.target) == Some(UpstreamScheme::H2c);
        let h1 = matches!(
            scheme_of(&upstream.target),
            None | Some(UpstreamScheme::Http)
        )
        .then(|| {
            pool::H1Pool::new(
                connector.clone(),
                self.cfg.max_idle_per_upstream,
                self.cfg.pool_idle_timeout,
            )
        });
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(self.cfg.pool_idle_timeout)
            .pool_max_idle_per_host(self.cfg.max_idle_per_upstream)
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .http2_only(h2)
            .build(connector);
        let text = authority(&upstream.target);
        let dest = Arc::new(Dest {
            client,
            scheme: match scheme_of(&upstream.target) {
                Some(UpstreamScheme::Https) => http::uri::Scheme::HTTPS,
                _ => http::uri::Scheme::HTTP,
            },
            // Built from a host the config checked and a port: always valid.
            authority: http::uri::Authority::try_from(text.as_str())
                .unwrap_or(http::uri::Authority::from_static("localhost")),
            authority_value: HeaderValue::try_from(text)
                .unwrap_or(HeaderValue::from_static("localhost")),
            h2,
            h1,
        });
        dests.insert(key, (Arc::downgrade(upstream), Arc::clone(&dest)));
        dest
    }

    fn read_dests(&self) -> std::sync::RwLockReadGuard<'_, Dests> {
        self.dests.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Forwards `req` and answers with the upstream's response or an error page.
    pub async fn serve(self: Arc<Self>, mut req: Request<Body>) -> Response<Body> {
        let mut list = self.set.current();
        if list.is_empty() {
            list = match self.wait_for_upstreams().await {
                Ok(list) => list,
                Err(resp) => return resp,
            };
        }
        let origin = Origin::of(&req, &self.cfg.forwarded);
        let client_ip = origin.client;
        // An HTTP/2 WebSocket (extended CONNECT) goes upstream as an HTTP/1.1 upgrade.
        let h2_websocket = forward::is_h2_websocket(&req);
        let upgrade = match h2_websocket {
            true => Some(HeaderValue::from_static("websocket")),
            false => forward::upgrade_protocol(&req),
        };
        let on_upgrade = upgrade
            .as_ref()
            .and_then(|_| req.extensions_mut().remove::<hyper::upgrade::OnUpgrade>());
        let permit = match (&upgrade, &on_upgrade) {
            (Some(_), Some(_)) => match self.upgrades.acquire() {
                Some(permit) => Some(permit),
                None => {
                    return error(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "too many upgraded (WebSocket) connections are open",
                    )
                }
            },
            _ => None,
        };
        let path = match self.path(req.uri()) {
            Some(path) => path,
            None => {
                let why = "the rewritten path is not a valid request target";
                return error(StatusCode::BAD_REQUEST, why);
            }
        };
        let (parts, body) = req.into_parts();
        let mut headers = parts.headers;
        forward::strip_hop_by_hop(&mut headers);
        headers.remove(header::HOST);
        forward::forwarding_headers(&mut headers, &origin, &self.cfg.forwarded);
        if let Some(protocol) = &upgrade {
            headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
            headers.insert(header::UPGRADE, protocol.clone());
        }
        let method = match h2_websocket {
            true => {
                headers.insert(header::SEC_WEBSOCKET_KEY, forward::websocket_key());
                Method::GET
            }
            false => parts.method,
        };
        let mut upgrade = on_upgrade.zip(permit).map(|(client_side, permit)| Upgrade {
            client_side,
            permit,
            h2: h2_websocket,
        });
        let retryable = is_idempotent(&method) && body.is_end_stream() && self.cfg.retries > 0;
        let mut body = Some(body);
        let started = Instant::now();
        let mut tried = Tried::default();
        // A failed attempt's answer, given when no upstream is left to retry on.
        let mut failed_page: Option<Response<Body>> = None;
        loop {
            let pick = self
                .balancer
                .pick(&list, &parts.uri, &headers, client_ip, &tried);
            let Some(pick) = pick else {
                return failed_page.unwrap_or_else(|| self.all_down(list.len()));
            };
            tried.insert(pick.index);
            let upstream = Arc::clone(&list[pick.index]);
            let dest = self.dest(&upstream);
            let host = match &self.cfg.host {
                HostHeader::Preserve => origin.host.clone(),
                HostHeader::Upstream => None,
                HostHeader::Fixed(_) => self.fixed_host.clone(),
            }
            .unwrap_or_else(|| dest.authority_value.clone());
            // Plain HTTP/1.1 exchanges use the pool driven by this request; upgrades,
            // CONNECT (authority-form target), HTTP/2 and https upstreams hyper-util's client.
            let pooled = dest
                .h1
                .as_ref()
                .filter(|_| upgrade.is_none() && method != Method::CONNECT);
            let uri = match pooled {
                Some(_) => Ok(Uri::from(path.clone())),
                None => Uri::builder()
                    .scheme(dest.scheme.clone())
                    .authority(dest.uri_authority(Some(&host)))
                    .path_and_query(path.clone())
                    .build(),
            };
            let Ok(uri) = uri else {
                return error(
                    StatusCode::BAD_REQUEST,
                    "the request target cannot be forwarded",
                );
            };
            let mut out = Request::new(body.take().unwrap_or_else(body::empty));
            *out.method_mut() = method.clone();
            *out.uri_mut() = uri;
            *out.version_mut() = if dest.h2 {
                Version::HTTP_2
            } else {
                Version::HTTP_11
            };
            // The headers are kept for another attempt only when there can be one: a
            // request that may be retried and an upstream not tried yet (never with a
            // single upstream).
            let may_retry =
                retryable && tried.len() <= self.cfg.retries as usize && tried.len() < list.len();
            *out.headers_mut() = match may_retry {
                true => headers.clone(),
                false => std::mem::take(&mut headers),
            };
            if !dest.h2 {
                out.headers_mut().insert(header::HOST, host);
            }
            let guard = upstream.start_request();
            let wait = self.cfg.response_header_timeout;
            let sent = match pooled {
                Some(pool) => match tokio::time::timeout(wait, pool.send(out)).await {
                    Ok(Ok(resp)) => Ok(Ok(Answer::Pooled(resp))),
                    Ok(Err(e)) => Ok(Err(Failed::of(&e, e.is_connect()))),
                    Err(elapsed) => Err(elapsed),
                },
                None => match tokio::time::timeout(wait, dest.client.request(out)).await {
                    Ok(Ok(resp)) => Ok(Ok(Answer::Direct(resp))),
                    Ok(Err(e)) => Ok(Err(Failed::of(&e, e.is_connect()))),
                    Err(elapsed) => Err(elapsed),
                },
            };
            let (status, why) = match sent {
                Ok(Ok(Answer::Pooled(resp))) => {
                    self.passive_result(&upstream, Some(resp.status()));
                    return self.response(resp, guard, pick.set_cookie, None);
                }
                Ok(Ok(Answer::Direct(mut resp))) => {
                    self.passive_result(&upstream, Some(resp.status()));
                    let tunnel = match (resp.status(), upgrade.take()) {
                        (StatusCode::SWITCHING_PROTOCOLS, Some(up)) => {
                            let upstream_side = hyper::upgrade::on(&mut resp);
                            let done = tokio_util::sync::CancellationToken::new();
                            let label = upstream.label.clone();
                            let (client_side, permit) = (up.client_side, up.permit);
                            upgrade::tunnel(
                                client_side,
                                upstream_side,
                                permit,
                                label,
                                done.clone(),
                            );
                            Some((Tunnel(done), up.h2))
                        }
                        _ => None,
                    };
                    return self.response(resp, guard, pick.set_cookie, tunnel);
                }
                Ok(Err(failed)) => {
                    self.passive_result(&upstream, None);
                    tracing::warn!(upstream = %upstream.label, "proxy: {}", failed.why);
                    if failed.connect && may_retry && started.elapsed() < self.cfg.retry_timeout {
                        failed_page = Some(failure_page(failed.status, failed.why));
                        continue;
                    }
                    (failed.status, failed.why)
                }
                Err(_) => {
                    self.passive_result(&upstream, None);
                    let why = format!(
                        "no response head within {:?}",
                        self.cfg.response_header_timeout
                    );
                    tracing::warn!(upstream = %upstream.label, "proxy: {why}");
                    (StatusCode::GATEWAY_TIMEOUT, why)
                }
            };
            return failure_page(status, why);
        }
    }

    /// An app's upstreams once one is ready (asking it to start if it starts on demand), or
    /// the 503 to answer when it is stopped or still starting after `wait`.
    async fn wait_for_upstreams(&self) -> Result<Arc<[Arc<Upstream>]>, Response<Body>> {
        self.set.demand();
        match self.set.wait_for_upstreams(self.wait).await {
            Ok(list) => Ok(list),
            Err(SetStatus::Stopped(why)) => Err(error(StatusCode::SERVICE_UNAVAILABLE, &why)),
            Err(_) => {
                let why = format!("{} is starting; try again shortly", self.name);
                let mut resp = error(StatusCode::SERVICE_UNAVAILABLE, &why);
                resp.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                Err(resp)
            }
        }
    }

    /// The path and query sent upstream: the request's own (shared, not copied) unless
    /// `strip_prefix` / `add_prefix` change it; `None` if the result is not a valid target.
    fn path(&self, uri: &Uri) -> Option<http::uri::PathAndQuery> {
        let original = uri.path_and_query();
        if self.cfg.strip_prefix.is_none() && self.cfg.add_prefix.is_none() {
            return Some(
                original
                    .cloned()
                    .unwrap_or_else(|| http::uri::PathAndQuery::from_static("/")),
            );
        }
        let path = forward::rewrite_path(
            original.map_or("/", |p| p.as_str()),
            self.cfg.strip_prefix.as_deref(),
            self.cfg.add_prefix.as_deref(),
        );
        http::uri::PathAndQuery::try_from(path).ok()
    }

    /// The upstream's response, on its way back: hop-by-hop headers removed, the body
    /// streamed with the idle timeout.
    /// With a `tunnel`, the 101 keeps its `Upgrade` for an HTTP/1.1 client, and becomes a
    /// 200 for an HTTP/2 one (RFC 8441).
    fn response<B>(
        &self,
        resp: Response<B>,
        guard: upstream::InFlight,
        set_cookie: Option<HeaderValue>,
        tunnel: Option<(Tunnel, bool)>,
    ) -> Response<Body>
    where
        B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
        B::Error: Into<crate::body::BoxError>,
    {
        let (mut parts, incoming) = resp.into_parts();
        let upgrade = parts.headers.get(header::UPGRADE).cloned();
        forward::strip_hop_by_hop(&mut parts.headers);
        match (&tunnel, upgrade) {
            (Some((_, true)), _) => {
                parts.status = StatusCode::OK;
                parts.headers.remove(header::SEC_WEBSOCKET_ACCEPT);
            }
            (Some((_, false)), Some(protocol)) => {
                parts
                    .headers
                    .insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
                parts.headers.insert(header::UPGRADE, protocol);
            }
            _ => {}
        }
        if let Some((tunnel, _)) = tunnel {
            parts.extensions.insert(tunnel);
        }
        if let Some(cookie) = set_cookie {
            parts.headers.append(header::SET_COOKIE, cookie);
        }
        if self.cfg.forwarded.via {
            parts
                .headers
                .append(header::VIA, HeaderValue::from_static("1.1 harrier"));
        }
        let body = streamed::UpstreamBody::new(incoming, self.cfg.body_idle_timeout, guard);
        Response::from_parts(parts, body.boxed_unsync())
    }

    /// Passive health: a connection error or timeout (`None`) or an unhealthy status is a
    /// failure; anything else a success.
    fn passive_result(&self, upstream: &Upstream, status: Option<StatusCode>) {
        let Some(passive) = &self.cfg.passive_health else {
            return;
        };
        let failed = status.is_none_or(|s| passive.unhealthy_statuses.contains(&s));
        if !failed {
            upstream.record_success();
        } else if upstream.record_failure(passive.max_failures, passive.fail_duration) {
            tracing::warn!(
                upstream = %upstream.label,
                "upstream marked down for {:?} after {} failure(s)",
                passive.fail_duration,
                passive.max_failures
            );
        }
    }

    fn all_down(&self, count: usize) -> Response<Body> {
        let why = match count {
            0 => format!("{} has no upstream", self.name),
            1 => format!("the one upstream of this route ({}) is down", self.name),
            n => format!("all {n} upstreams of this route ({}) are down", self.name),
        };
        error(StatusCode::SERVICE_UNAVAILABLE, &why)
    }

    /// The upstreams right now (for health checks).
    fn upstreams(&self) -> Arc<[Arc<Upstream>]> {
        self.set.current()
    }
}

/// An upstream's response head, from the pool or from hyper-util's client.
enum Answer {
    Pooled(Response<pool::PooledBody>),
    Direct(Response<hyper::body::Incoming>),
}

/// An attempt that got no response head.
struct Failed {
    status: StatusCode,
    why: String,
    /// Nothing reached the upstream: another one may be tried.
    connect: bool,
}

impl Failed {
    fn of(e: &(dyn std::error::Error + 'static), connect: bool) -> Self {
        Failed {
            status: client_error_status(e),
            why: error_chain(e),
            connect,
        }
    }
}

/// A client's pending upgrade, with its permit, until the upstream accepts it.
struct Upgrade {
    client_side: hyper::upgrade::OnUpgrade,
    permit: upgrade::UpgradePermit,
    /// The client asked over HTTP/2 (extended CONNECT), not with an HTTP/1.1 Upgrade.
    h2: bool,
}

/// The scheme of a TCP upstream (`None` for unix sockets).
fn scheme_of(target: &UpstreamTarget) -> Option<UpstreamScheme> {
    match target {
        UpstreamTarget::Tcp { scheme, .. } => Some(*scheme),
        UpstreamTarget::Unix(_) => None,
    }
}

/// `host:port` of a TCP upstream (IPv6 in brackets); `localhost` for unix sockets: the
/// authority of requests to it (the app readiness probe uses it too).
pub(crate) fn authority(target: &UpstreamTarget) -> String {
    match target {
        UpstreamTarget::Tcp { host, port, .. } if host.contains(':') => format!("[{host}]:{port}"),
        UpstreamTarget::Tcp { host, port, .. } => format!("{host}:{port}"),
        UpstreamTarget::Unix(_) => "localhost".to_owned(),
    }
}

fn is_idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    )
}

/// 504 for a connect timeout, the body's own status when the client's request body broke a
/// limit, 502 otherwise.
fn client_error_status(e: &(dyn std::error::Error + 'static)) -> StatusCode {
    let mut source = Some(e);
    while let Some(err) = source {
        if let Some(ConnectError::Timeout(_)) = err.downcast_ref::<ConnectError>() {
            return StatusCode::GATEWAY_TIMEOUT;
        }
        if let Some(limit) = err.downcast_ref::<BodyLimitError>() {
            return match limit {
                BodyLimitError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
                BodyLimitError::TooSlow(_) => StatusCode::REQUEST_TIMEOUT,
            };
        }
        source = err.source();
    }
    StatusCode::BAD_GATEWAY
}

/// `outer: inner: innermost`, for logs and error pages.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(err) = source {
        let next = err.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = err.source();
    }
    text
}

/// The answer to a failed attempt: 504 or 502 saying what happened upstream.
fn failure_page(status: StatusCode, why: String) -> Response<Body> {
    let message = match status {
        StatusCode::GATEWAY_TIMEOUT => format!("the upstream timed out ({why})"),
        StatusCode::BAD_GATEWAY => format!("the upstream could not be reached ({why})"),
        _ => why,
    };
    error(status, &message)
}

/// A plain-text error page that says what went wrong.
fn error(status: StatusCode, why: &str) -> Response<Body> {
    crate::pipeline::error_page(status, Some(why))
}

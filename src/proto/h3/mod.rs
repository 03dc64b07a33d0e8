//! HTTP/3: QUIC connections (quinn) on the UDP side of https:// endpoints, h3 on top, and
//! every request sent through the same [`Entry`] service as HTTP/1.1 and HTTP/2.
//!
//! The accept loop never waits for a handshake: each connection attempt is counted against
//! `max_concurrent_connections` and spawned on the server's task tracker, where the QUIC and
//! h3 handshakes run under the endpoint's `handshake_timeout`. Each request is spawned too.
//! On drain a connection sends GOAWAY and closes once its requests are done; it also closes
//! that way after `keep_alive_timeout` without requests (QUIC's own idle timeout, set to the
//! same value, closes it silently when no packet at all arrives).

mod body;
mod request;
mod transport;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::ConnContext;
use crate::config::Config;
use crate::limits::ConnShared;
use crate::listen::{BoundEndpoint, ConnectionLimiter, ConnectionPermit, EndpointError};
use crate::pipeline::{ConnInfo, EndpointInfo, Entry};
use crate::tls::{ClientIdentity, TlsInfo};

/// How long a GOAWAY may take to be written before the connection is closed without it.
const GOAWAY_WRITE: Duration = Duration::from_secs(2);

/// The QUIC side of one https:// endpoint.
pub struct QuicListener {
    endpoint: quinn::Endpoint,
    info: Arc<EndpointInfo>,
    handshake_timeout: Duration,
    max_field_section_size: u64,
}

impl QuicListener {
    /// Makes a QUIC endpoint of `ep`'s UDP socket, when it has one (the endpoint lists
    /// `http3`); the socket is taken out of `ep`.
    pub fn from_bound(
        ep: &mut BoundEndpoint,
        config: &Config,
    ) -> Result<Option<Self>, EndpointError> {
        let (Some(udp), Some(tls)) = (ep.udp.take(), ep.tls.as_ref()) else {
            return Ok(None);
        };
        let Some(quic_tls) = tls.quic.clone() else {
            return Ok(None);
        };
        let endpoint =
            transport::endpoint(udp, quic_tls, config).map_err(|source| EndpointError::Bind {
                url: format!("{} (UDP, for http3)", ep.info.url),
                source,
            })?;
        Ok(Some(QuicListener {
            endpoint,
            info: Arc::clone(&ep.info),
            handshake_timeout: tls.config().handshake_timeout,
            max_field_section_size: config.limits.http3.max_request_header_field_size,
        }))
    }

    /// The quinn endpoint (a handle: clones share it), to close or wait on at shutdown.
    pub fn endpoint(&self) -> &quinn::Endpoint {
        &self.endpoint
    }

    /// The bound UDP address.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.endpoint.local_addr().ok()
    }
}

/// Accepts QUIC connections until `stop` is cancelled, spawning each on `tracker`. Then new
/// connection attempts are ignored; established connections go on until drained.
pub async fn accept_loop(
    listener: QuicListener,
    limiter: Arc<ConnectionLimiter>,
    tracker: TaskTracker,
    stop: CancellationToken,
    ctx: Arc<ConnContext>,
) {
    let listener = Arc::new(listener);
    loop {
        let incoming = tokio::select! {
            _ = stop.cancelled() => break,
            i = listener.endpoint.accept() => i,
        };
        // `None` only once the endpoint is closed.
        let Some(incoming) = incoming else { break };
        let Some(permit) = limiter.try_acquire() else {
            tracing::debug!("max_concurrent_connections reached: refusing a QUIC connection");
            incoming.refuse();
            continue;
        };
        tracker.spawn(serve_connection(
            incoming,
            permit,
            Arc::clone(&listener),
            Arc::clone(&ctx),
            tracker.clone(),
        ));
    }
    listener.endpoint.set_server_config(None);
}

/// A QUIC connection after both handshakes.
struct Established {
    quic: quinn::Connection,
    h3: h3::server::Connection<h3_quinn::Connection, bytes::Bytes>,
    tls: TlsInfo,
}

async fn handshake(
    incoming: quinn::Incoming,
    listener: &QuicListener,
) -> Result<Established, String> {
    let quic = incoming.await.map_err(|e| e.to_string())?;
    let tls = tls_info(&quic);
    let h3 = h3::server::builder()
        .max_field_section_size(listener.max_field_section_size)
        .build(h3_quinn::Connection::new(quic.clone()))
        .await
        .map_err(|e| e.to_string())?;
    Ok(Established { quic, h3, tls })
}

fn tls_info(quic: &quinn::Connection) -> TlsInfo {
    // The name is lowercase already, like on TCP: it is rustls' normalized SNI.
    let (sni, alpn) = quic
        .handshake_data()
        .and_then(|d| d.downcast::<quinn::crypto::rustls::HandshakeData>().ok())
        .map_or((None, None), |d| (d.server_name, d.protocol));
    let client = quic
        .peer_identity()
        .and_then(|p| {
            p.downcast::<Vec<rustls::pki_types::CertificateDer<'static>>>()
                .ok()
        })
        .and_then(|chain| ClientIdentity::from_chain(&chain));
    TlsInfo { sni, alpn, client }
}

async fn serve_connection(
    incoming: quinn::Incoming,
    _permit: ConnectionPermit,
    listener: Arc<QuicListener>,
    ctx: Arc<ConnContext>,
    tracker: TaskTracker,
) {
    let remote = incoming.remote_address();
    let timeout = listener.handshake_timeout;
    let established = tokio::select! {
        r = tokio::time::timeout(timeout, handshake(incoming, &listener)) => r,
        _ = ctx.drain.cancelled() => return,
    };
    let Established { quic, mut h3, tls } = match established {
        Ok(Ok(e)) => e,
        Ok(Err(e)) => {
            tracing::debug!("QUIC handshake with {remote} failed: {e}");
            return;
        }
        Err(_) => {
            tracing::debug!("QUIC handshake with {remote} timed out after {timeout:?}");
            return;
        }
    };
    let state = ConnShared::new();
    let info = ConnInfo {
        remote: Some(remote),
        endpoint: Arc::clone(&listener.info),
        tls: Some(tls),
    };
    let entry = Entry::new(Arc::clone(&ctx.app), Arc::clone(&state), Arc::new(info));
    let head_timeout = ctx.io_limits.request_headers_timeout;
    let keep_alive = ctx.io_limits.keep_alive_timeout;
    // This connection's requests (each also on the server's tracker).
    let requests = TaskTracker::new();
    let mut closing = Closing::No;
    loop {
        let idle_check = idle_at(&state, &requests, keep_alive)
            .unwrap_or_else(|| later(std::time::Instant::now(), keep_alive));
        tokio::select! {
            accepted = h3.accept() => match accepted {
                Ok(Some(resolver)) => {
                    let serve = request::serve(resolver, entry.clone(), head_timeout);
                    let abort = ctx.abort.clone();
                    let mut request = Box::pin(requests.track_future(async move {
                        tokio::select! {
                            _ = serve => {}
                            _ = abort.cancelled() => {}
                        }
                    }));
                    // Polled here first: the answers to the requests accepted in a row are
                    // then sent by the QUIC driver together, in fewer packets.
                    if super::poll_inline(request.as_mut()).is_pending() {
                        tracker.spawn(request);
                    }
                }
                // The client sent GOAWAY and its requests are done.
                Ok(None) => break,
                Err(e) => {
                    tracing::debug!("HTTP/3 connection with {remote} ended: {e}");
                    break;
                }
            },
            _ = tokio::time::sleep_until(Instant::from_std(idle_check)), if closing == Closing::No => {
                let idle_at = idle_at(&state, &requests, keep_alive);
                if idle_at.is_some_and(|at| at <= std::time::Instant::now()) {
                    tracing::trace!("HTTP/3 keep-alive timeout: closing connection");
                    closing = Closing::Idle;
                    goaway(&mut h3, &requests).await;
                }
            }
            _ = ctx.drain.cancelled(), if closing == Closing::No => {
                closing = Closing::Drain;
                goaway(&mut h3, &requests).await;
            }
            _ = requests.wait(), if closing != Closing::No => break,
            _ = ctx.abort.cancelled() => {
                quic.close(0u32.into(), b"shutdown");
                return;
            }
        }
    }
    if closing == Closing::Drain {
        // Closing a QUIC connection discards what the peer has not acknowledged yet, and h3
        // does not tell when a finished response is: give the peer up to CLOSE_GRACE after
        // the last response to receive it and close the connection itself, as clients do
        // after GOAWAY (RFC 9114 §5.2 lets the server wait for that).
        let linger = later(state.idle_since(), super::CLOSE_GRACE);
        tokio::select! {
            _ = quic.closed() => {}
            _ = tokio::time::sleep_until(Instant::from_std(linger)) => {}
            _ = ctx.abort.cancelled() => {}
        }
    }
    // Dropping the h3 connection closes the QUIC connection with H3_NO_ERROR.
}

/// Why a connection is closing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Closing {
    /// It is not.
    No,
    /// Idle past `keep_alive_timeout`: nothing is left in flight.
    Idle,
    /// The server is draining: the last responses may still be on their way.
    Drain,
}

/// When the keep-alive timeout closes the connection, if it has no request now.
fn idle_at(
    state: &ConnShared,
    requests: &TaskTracker,
    keep_alive: Duration,
) -> Option<std::time::Instant> {
    (state.in_flight() == 0 && requests.is_empty()).then(|| later(state.idle_since(), keep_alive))
}

/// `at + d`, or a year after `at` when that is past what an `Instant` holds.
fn later(at: std::time::Instant, d: Duration) -> std::time::Instant {
    at.checked_add(d)
        .or_else(|| at.checked_add(Duration::from_secs(365 * 86_400)))
        .unwrap_or(at)
}

/// Sends GOAWAY (no request past those already accepted) and lets the requests finish.
async fn goaway(
    h3: &mut h3::server::Connection<h3_quinn::Connection, bytes::Bytes>,
    requests: &TaskTracker,
) {
    requests.close();
    match tokio::time::timeout(GOAWAY_WRITE, h3.shutdown(0)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::debug!("HTTP/3 GOAWAY not sent: {e}"),
        Err(_) => tracing::debug!("HTTP/3 GOAWAY not written in time"),
    }
}

//! One configured endpoint made real: its sockets (TCP, and UDP for HTTP/3 on the same port),
//! its TLS, and what its requests need to know.

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;

use http::HeaderValue;

use super::{bind, Listener};
use crate::config::{Config, EndpointConfig, Hsts, ListenUrl, Protocols};
use crate::pipeline::EndpointInfo;
use crate::tls::{EndpointTls, TlsError};

/// Why an endpoint could not be started.
#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    /// The socket could not be bound.
    #[error("cannot listen on {url}: {source}")]
    Bind {
        /// The endpoint URL from the config.
        url: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// TLS could not be set up.
    #[error("{url}: {source}")]
    Tls {
        /// The endpoint URL from the config.
        url: String,
        /// What went wrong.
        source: TlsError,
    },
}

/// A bound endpoint, ready to accept.
pub struct BoundEndpoint {
    /// The listening socket.
    pub listener: Listener,
    /// Protocols spoken.
    pub protocols: Protocols,
    /// Shared with every request of the endpoint.
    pub info: Arc<EndpointInfo>,
    /// TLS, on https:// endpoints.
    pub tls: Option<Arc<EndpointTls>>,
    /// The UDP socket for HTTP/3 (QUIC), bound on the TCP listener's port, when the endpoint
    /// lists `http3`. `info.alt_svc` advertises it.
    pub udp: Option<UdpSocket>,
    /// With `proxy_protocol = true`: the time allowed for the PROXY header (the TLS
    /// handshake timeout on https, `request_headers_timeout` otherwise).
    pub proxy_protocol: Option<std::time::Duration>,
}

impl BoundEndpoint {
    /// Binds `ep` (`config` supplies the server-wide limits it applies).
    pub fn bind(ep: &EndpointConfig, config: &Config) -> Result<Self, EndpointError> {
        let url = ep.url.to_string();
        let tls = match (&ep.url, &ep.tls) {
            (ListenUrl::Https(addr), Some(tls)) => Some(Arc::new(
                EndpointTls::new(tls, *addr, ep.protocols).map_err(|source| {
                    EndpointError::Tls {
                        url: url.clone(),
                        source,
                    }
                })?,
            )),
            _ => None,
        };
        let quic_addr = match &ep.url {
            ListenUrl::Https(addr) if tls.as_ref().is_some_and(|t| t.quic.is_some()) => Some(*addr),
            _ => None,
        };
        let (listener, udp) = match quic_addr {
            Some(addr) => bind_with_udp(&ep.url, addr, &url)?,
            None => {
                let l = bind(&ep.url).map_err(|source| EndpointError::Bind { url, source })?;
                (l, None)
            }
        };
        let alt_svc = udp
            .as_ref()
            .and_then(|u| u.local_addr().ok())
            .and_then(|a| HeaderValue::from_str(&format!("h3=\":{}\"; ma=86400", a.port())).ok());
        let info = EndpointInfo {
            name: ep.name.clone(),
            url: listener.url(),
            // Set by the server once every endpoint is bound (the https port may be 0 here).
            https_redirect_port: None,
            hsts: ep.tls.as_ref().and_then(|t| t.hsts).map(hsts_value),
            alt_svc,
            require_sni_host_match: ep.tls.as_ref().is_some_and(|t| t.require_sni_host_match),
        };
        Ok(BoundEndpoint {
            listener,
            protocols: ep.protocols,
            info: Arc::new(info),
            tls,
            udp,
            proxy_protocol: ep.proxy_protocol.then(|| {
                ep.tls
                    .as_ref()
                    .map_or(config.limits.request_headers_timeout, |t| {
                        t.handshake_timeout
                    })
            }),
        })
    }
}

/// Fresh ports tried when port 0 was asked and the UDP side of the TCP port is taken.
const PORT_ATTEMPTS: usize = 8;

/// Binds the TCP listener of `url`, then UDP on the same address and port. With port 0 the
/// TCP port is taken for UDP too, and a new pair is tried when that UDP port is in use.
fn bind_with_udp(
    url: &ListenUrl,
    addr: SocketAddr,
    url_text: &str,
) -> Result<(Listener, Option<UdpSocket>), EndpointError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let listener = bind(url).map_err(|source| EndpointError::Bind {
            url: url_text.to_owned(),
            source,
        })?;
        let port = listener.local_addr().map_or(addr.port(), |a| a.port());
        match bind_udp(SocketAddr::new(addr.ip(), port)) {
            Ok(udp) => return Ok((listener, Some(udp))),
            Err(e) if addr.port() == 0 && attempt < PORT_ATTEMPTS => {
                tracing::debug!("UDP port {port} is taken ({e}): trying another port pair");
            }
            Err(source) => {
                return Err(EndpointError::Bind {
                    url: format!("{url_text} (UDP, for http3)"),
                    source,
                })
            }
        }
    }
}

/// Socket buffer size asked for on QUIC sockets, as quic-go recommends: at high throughput
/// the kernel default (about 200 KiB on Linux) drops datagrams before they are read.
const UDP_BUFFER_SIZE: usize = 7_500_000;

fn bind_udp(addr: SocketAddr) -> std::io::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    // Capped by the OS (net.core.rmem_max / wmem_max on Linux); see `warn_if_small_udp_buffers`.
    let _ = socket.set_recv_buffer_size(UDP_BUFFER_SIZE);
    let _ = socket.set_send_buffer_size(UDP_BUFFER_SIZE);
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    warn_if_small_udp_buffers();
    Ok(socket.into())
}

/// Warns once per process when the OS caps UDP socket buffers below [`UDP_BUFFER_SIZE`].
fn warn_if_small_udp_buffers() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        #[cfg(target_os = "linux")]
        {
            let read = |name: &str| {
                std::fs::read_to_string(format!("/proc/sys/net/core/{name}"))
                    .ok()
                    .and_then(|s| s.trim().parse::<usize>().ok())
            };
            let (rmem, wmem) = (read("rmem_max"), read("wmem_max"));
            if rmem.is_some_and(|v| v < UDP_BUFFER_SIZE)
                || wmem.is_some_and(|v| v < UDP_BUFFER_SIZE)
            {
                tracing::warn!(
                    "UDP socket buffers are capped at {} / {} bytes (net.core.rmem_max / \
                     wmem_max), below the {UDP_BUFFER_SIZE} HTTP/3 needs for good throughput; \
                     raise them with `sysctl -w net.core.rmem_max={UDP_BUFFER_SIZE} \
                     net.core.wmem_max={UDP_BUFFER_SIZE}` (under Docker or Kubernetes, on the \
                     host or node: these sysctls are not per container)",
                    rmem.unwrap_or(0),
                    wmem.unwrap_or(0),
                );
            }
        }
    });
}

fn hsts_value(h: Hsts) -> HeaderValue {
    let mut v = format!("max-age={}", h.max_age.as_secs());
    if h.include_subdomains {
        v.push_str("; includeSubDomains");
    }
    if h.preload {
        v.push_str("; preload");
    }
    HeaderValue::from_str(&v).unwrap_or_else(|_| HeaderValue::from_static("max-age=0"))
}

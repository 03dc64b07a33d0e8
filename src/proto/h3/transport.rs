//! The QUIC endpoint of an https:// endpoint that lists `http3`: quinn over the endpoint's UDP
//! socket, with the endpoint's TLS (TLS 1.3, ALPN `h3`, same SNI resolver) and transport
//! limits taken from `[limits]`.

use std::net::UdpSocket;
use std::sync::Arc;
use std::time::Duration;

use quinn::crypto::rustls::QuicServerConfig;
use quinn::{IdleTimeout, TransportConfig, VarInt};

use crate::config::Config;

/// Unidirectional streams a client may have open at once. HTTP/3 needs three per side
/// (control, QPACK encoder and decoder), clients may add grease streams, and there is no
/// server push; Kestrel allows 10, quinn's default of 100 is more than any client needs.
const MAX_UNI_STREAMS: u32 = 16;

/// A quinn endpoint over `udp`, serving with the rustls settings `tls` (built by
/// [`crate::tls::EndpointTls`] for QUIC).
pub fn endpoint(
    udp: UdpSocket,
    tls: Arc<rustls::ServerConfig>,
    config: &Config,
) -> std::io::Result<quinn::Endpoint> {
    let crypto = QuicServerConfig::try_from(tls).map_err(std::io::Error::other)?;
    let mut server = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    server.transport_config(Arc::new(transport(config)));
    let runtime = Arc::new(quinn::TokioRuntime);
    quinn::Endpoint::new(quinn::EndpointConfig::default(), Some(server), udp, runtime)
}

fn transport(config: &Config) -> TransportConfig {
    let limits = &config.limits;
    let mut t = TransportConfig::default();
    t.max_concurrent_bidi_streams(varint(limits.http3.max_streams_per_connection))
        .max_concurrent_uni_streams(VarInt::from_u32(MAX_UNI_STREAMS))
        .max_idle_timeout(Some(IdleTimeout::from(idle_ms(limits.keep_alive_timeout))));
    t
}

fn varint(n: u64) -> VarInt {
    VarInt::from_u64(n).unwrap_or(VarInt::MAX)
}

/// QUIC counts the idle timeout in milliseconds in a varint; 0 would mean "none", so the
/// shortest is 1 ms and the longest what a varint holds.
fn idle_ms(d: Duration) -> VarInt {
    varint(u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_timeouts_fit_a_varint() {
        let ms = |d| idle_ms(d).into_inner();
        assert_eq!(ms(Duration::from_secs(130)), 130_000);
        assert_eq!(ms(Duration::ZERO), 1);
        assert_eq!(ms(Duration::MAX), VarInt::MAX.into_inner());
    }
}

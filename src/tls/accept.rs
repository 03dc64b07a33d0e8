//! The TLS handshake of one accepted connection, bounded in time, run in the connection's own
//! task (never in the accept loop).

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use super::ClientIdentity;

/// What the handshake established, for the pipeline and the logs.
#[derive(Debug, Clone, Default)]
pub struct TlsInfo {
    /// The server name the client asked for (SNI), lowercase.
    pub sni: Option<String>,
    /// The negotiated application protocol (`h2`, `http/1.1`).
    pub alpn: Option<Vec<u8>>,
    /// The verified client certificate, with mutual TLS.
    pub client: Option<ClientIdentity>,
}

/// Runs the handshake on `stream` with `config`; `None` (logged) on failure or timeout.
pub async fn accept<S>(
    stream: S,
    config: Arc<rustls::ServerConfig>,
    timeout: Duration,
) -> Option<(TlsStream<S>, TlsInfo)>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let handshake = TlsAcceptor::from(config).accept(stream);
    let tls = match tokio::time::timeout(timeout, handshake).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            tracing::debug!("TLS handshake failed: {e}");
            return None;
        }
        Err(_) => {
            tracing::debug!("TLS handshake timed out after {timeout:?}");
            return None;
        }
    };
    let conn = tls.get_ref().1;
    let info = TlsInfo {
        // Lowercase already: rustls normalizes the name it receives.
        sni: conn.server_name().map(str::to_owned),
        alpn: conn.alpn_protocol().map(<[u8]>::to_vec),
        client: conn
            .peer_certificates()
            .and_then(ClientIdentity::from_chain),
    };
    Some((tls, info))
}

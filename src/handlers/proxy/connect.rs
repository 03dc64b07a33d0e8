//! Opening connections to one upstream: TCP, TLS (with ALPN h2/http1.1) or a unix socket,
//! bounded by `connect_timeout`, as a connector for hyper-util's pooled client.
//!
//! Each upstream has its own client and connector, so the connector ignores the request
//! URI's authority (which may carry the Host the upstream should see) and always dials its
//! own target.

use std::future::Future;
use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;

use crate::config::{UpstreamScheme, UpstreamTarget, UpstreamTls};

/// Why a connection to an upstream could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// Nothing answered within `connect_timeout`.
    #[error("no connection within {0:?}")]
    Timeout(Duration),
    /// Refused, unreachable, DNS failure, TLS handshake failure...
    #[error("{0}")]
    Io(#[from] io::Error),
}

/// The TLS settings of https:// upstreams, built once per proxy handler.
#[derive(Clone)]
pub struct TlsClient {
    config: Arc<rustls::ClientConfig>,
    server_name: Option<ServerName<'static>>,
}

/// Why the TLS settings of a proxy handler could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    /// The CA file could not be read or holds no certificate.
    #[error("tls.ca {path}: {message}")]
    Ca {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The client certificate or key could not be loaded.
    #[error(transparent)]
    ClientCert(#[from] crate::tls::certs::CertError),
    /// `server_name` is not a DNS name or IP address.
    #[error("tls.server_name {0:?} is not a DNS name or IP address")]
    ServerName(String),
    /// rustls refused the combination.
    #[error("upstream TLS: {0}")]
    Rustls(#[from] rustls::Error),
}

impl TlsClient {
    /// Builds the client side of TLS from the handler's `tls` options: its CA file or the
    /// system's roots, an optional client certificate, ALPN h2 and http/1.1.
    pub fn new(cfg: &UpstreamTls) -> Result<Self, TlsSetupError> {
        let provider = crate::tls::provider();
        let mut roots = rustls::RootCertStore::empty();
        match &cfg.ca {
            Some(path) => {
                let err = |message: String| TlsSetupError::Ca {
                    path: path.clone(),
                    message,
                };
                use rustls_pki_types::pem::PemObject;
                let certs = rustls_pki_types::CertificateDer::pem_file_iter(path)
                    .map_err(|e| err(crate::tls::certs::pem_message(e)))?;
                for cert in certs {
                    let cert = cert.map_err(|e| err(crate::tls::certs::pem_message(e)))?;
                    roots.add(cert).map_err(|e| err(e.to_string()))?;
                }
                if roots.is_empty() {
                    return Err(err("no CERTIFICATE in the file".to_owned()));
                }
            }
            None => {
                let found = rustls_native_certs::load_native_certs();
                for e in &found.errors {
                    tracing::debug!("system certificate store: {e}");
                }
                let (added, _) = roots.add_parsable_certificates(found.certs);
                if added == 0 {
                    tracing::warn!(
                        "no system root certificates found: https:// upstreams will fail to \
                         verify (set tls.ca on the proxy handler)"
                    );
                }
            }
        }
        let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots);
        let mut config = match &cfg.client_certificate {
            Some(files) => {
                let loaded = crate::tls::certs::load_pair(&files.path, &files.key, &provider)?;
                let chain = loaded.key.cert.clone();
                // load_pair checked that the key parses and matches.
                use rustls_pki_types::pem::PemObject;
                let key =
                    rustls_pki_types::PrivateKeyDer::from_pem_file(&files.key).map_err(|e| {
                        crate::tls::certs::CertError::File {
                            path: files.key.clone(),
                            message: crate::tls::certs::pem_message(e),
                        }
                    })?;
                builder.with_client_auth_cert(chain, key)?
            }
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let server_name = match &cfg.server_name {
            Some(name) => Some(
                ServerName::try_from(name.clone())
                    .map_err(|_| TlsSetupError::ServerName(name.clone()))?,
            ),
            None => None,
        };
        Ok(TlsClient {
            config: Arc::new(config),
            server_name,
        })
    }
}

/// Dials one upstream; a `tower::Service<Uri>` as hyper-util's client wants.
#[derive(Clone)]
pub struct Connector {
    target: Arc<UpstreamTarget>,
    tls: Option<TlsClient>,
    timeout: Duration,
}

impl Connector {
    /// A connector for `target`; `tls` is required for https:// targets.
    pub fn new(target: UpstreamTarget, tls: Option<TlsClient>, timeout: Duration) -> Self {
        Connector {
            target: Arc::new(target),
            tls,
            timeout,
        }
    }

    /// Opens a connection to the target, within the connect timeout.
    pub async fn dial(&self) -> Result<UpstreamIo, ConnectError> {
        self.clone().connect().await
    }

    async fn connect(self) -> Result<UpstreamIo, ConnectError> {
        let dial = async {
            match &*self.target {
                UpstreamTarget::Tcp { scheme, host, port } => {
                    let tcp = TcpStream::connect((host.as_str(), *port)).await?;
                    let _ = tcp.set_nodelay(true);
                    match (scheme, &self.tls) {
                        (UpstreamScheme::Https, Some(tls)) => {
                            let name = match &tls.server_name {
                                Some(name) => name.clone(),
                                None => ServerName::try_from(host.clone()).map_err(|_| {
                                    io::Error::new(
                                        io::ErrorKind::InvalidInput,
                                        format!("{host:?} is not a valid TLS server name"),
                                    )
                                })?,
                            };
                            let connector =
                                tokio_rustls::TlsConnector::from(Arc::clone(&tls.config));
                            let stream = connector.connect(name, tcp).await?;
                            let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
                            Ok(UpstreamIo::new(Stream::Tls(Box::new(stream)), h2))
                        }
                        (UpstreamScheme::Https, None) => {
                            Err(io::Error::other("https:// upstream without TLS settings"))
                        }
                        (UpstreamScheme::H2c, _) => Ok(UpstreamIo::new(Stream::Tcp(tcp), true)),
                        (UpstreamScheme::Http, _) => Ok(UpstreamIo::new(Stream::Tcp(tcp), false)),
                    }
                }
                #[cfg(unix)]
                UpstreamTarget::Unix(path) => {
                    let stream = tokio::net::UnixStream::connect(path).await?;
                    Ok(UpstreamIo::new(Stream::Unix(stream), false))
                }
                #[cfg(not(unix))]
                UpstreamTarget::Unix(path) => Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    format!("unix socket {} on a system without them", path.display()),
                )),
            }
        };
        match tokio::time::timeout(self.timeout, dial).await {
            Ok(result) => result.map_err(ConnectError::Io),
            Err(_) => Err(ConnectError::Timeout(self.timeout)),
        }
    }
}

impl tower_service::Service<http::Uri> for Connector {
    type Response = UpstreamIo;
    type Error = ConnectError;
    type Future = Pin<Box<dyn Future<Output = Result<UpstreamIo, ConnectError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _uri: http::Uri) -> Self::Future {
        Box::pin(self.clone().connect())
    }
}

/// The byte streams an upstream connection can be.
enum Stream {
    Tcp(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
    #[cfg(unix)]
    Unix(tokio::net::UnixStream),
}

/// A connection to an upstream, as hyper's client reads and writes it.
pub struct UpstreamIo {
    inner: TokioIo<Stream>,
    h2: bool,
}

impl UpstreamIo {
    fn new(stream: Stream, h2: bool) -> Self {
        UpstreamIo {
            inner: TokioIo::new(stream),
            h2,
        }
    }
}

impl Connection for UpstreamIo {
    fn connected(&self) -> Connected {
        let connected = Connected::new();
        if self.h2 {
            connected.negotiated_h2()
        } else {
            connected
        }
    }
}

macro_rules! each_stream {
    ($self:expr, $s:ident => $body:expr) => {
        match $self {
            Stream::Tcp($s) => $body,
            Stream::Tls($s) => $body,
            #[cfg(unix)]
            Stream::Unix($s) => $body,
        }
    };
}

impl tokio::io::AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        each_stream!(self.get_mut(), s => Pin::new(s).poll_read(cx, buf))
    }
}

impl tokio::io::AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        each_stream!(self.get_mut(), s => Pin::new(s).poll_write(cx, buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        each_stream!(self.get_mut(), s => Pin::new(s).poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        each_stream!(self, s => s.is_write_vectored())
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        each_stream!(self.get_mut(), s => Pin::new(s).poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        each_stream!(self.get_mut(), s => Pin::new(s).poll_shutdown(cx))
    }
}

impl Read for UpstreamIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl Write for UpstreamIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

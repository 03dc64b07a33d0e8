//! TLS for `https://` endpoints: certificates chosen by SNI, hot reload, development
//! certificates, client certificates, and the rustls configurations for TCP and QUIC.

mod accept;
pub mod certs;
pub mod dev_cert;
mod resolver;
pub mod watch;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;

use crate::config::{self, ClientCertificate, Protocols, TlsConfig};
pub use accept::{accept, TlsInfo};
pub use certs::{CertError, LoadedCert};
pub use resolver::{CertStore, DirStore, SniResolver, UnknownSni};

/// Why an endpoint's TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A certificate or key file is missing, unreadable or inconsistent.
    #[error(transparent)]
    Cert(#[from] CertError),
    /// The client CA file is unusable.
    #[error("client_ca {path}: {message}")]
    ClientCa {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    /// A development certificate could not be made.
    #[error(transparent)]
    DevCert(#[from] dev_cert::DevCertError),
    /// A non-loopback endpoint has no certificate.
    #[error("https://{0} needs a certificate (or certificates_dir); only loopback endpoints get a development certificate")]
    NoCertificate(SocketAddr),
}

/// The crypto provider harrier uses everywhere (aws-lc-rs: fast handshakes, no cmake needed),
/// with AES-128-GCM suites first.
///
/// rustls lists AES-256-GCM-SHA384 first, and OpenSSL clients ask for it first. Its SHA-384
/// key schedule has no hardware help on x86 (SHA-256 has SHA-NI), and made up a quarter of a
/// full TLS 1.3 handshake's CPU here; AES-128 is also the faster bulk cipher. Both are TLS
/// 1.3's standard suites, so the server's order decides (`ignore_client_order`).
pub fn provider() -> Arc<CryptoProvider> {
    let mut provider = rustls::crypto::aws_lc_rs::default_provider();
    provider
        .cipher_suites
        .sort_by_key(|suite| suite_rank(suite.suite()));
    Arc::new(provider)
}

/// Preference of a cipher suite (lower first); the sort is stable, so rustls's own order
/// holds within a rank.
fn suite_rank(suite: rustls::CipherSuite) -> u8 {
    use rustls::CipherSuite as S;
    match suite {
        S::TLS13_AES_128_GCM_SHA256
        | S::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
        | S::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 => 0,
        S::TLS13_AES_256_GCM_SHA384
        | S::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384
        | S::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 => 1,
        _ => 2,
    }
}

/// Everything TLS for one endpoint, shared by its TCP and QUIC listeners.
pub struct EndpointTls {
    /// The SNI certificate resolver (swapped on reload).
    pub resolver: Arc<SniResolver>,
    /// rustls settings for TCP (ALPN `h2`, `http/1.1` per the endpoint's protocols).
    pub tcp: Arc<ServerConfig>,
    /// rustls settings for QUIC (TLS 1.3, ALPN `h3`), when the endpoint speaks HTTP/3.
    pub quic: Option<Arc<ServerConfig>>,
    cfg: TlsConfig,
    provider: Arc<CryptoProvider>,
    /// Modification stamps of the configured files at the last (re)load.
    stamps: Mutex<Vec<Option<SystemTime>>>,
}

impl EndpointTls {
    /// Loads certificates and builds the rustls configurations for an endpoint on `addr`.
    pub fn new(cfg: &TlsConfig, addr: SocketAddr, protocols: Protocols) -> Result<Self, TlsError> {
        let provider = provider();
        let loaded = load_all(cfg, addr, &provider)?;
        let dir = cfg
            .certificates_dir
            .clone()
            .map(|d| DirStore::new(d, Arc::clone(&provider)));
        let unknown = match cfg.unknown_sni {
            config::UnknownSni::Default => UnknownSni::Default,
            config::UnknownSni::Refuse => UnknownSni::Refuse,
        };
        let resolver = Arc::new(SniResolver::new(CertStore::new(&loaded), dir, unknown));
        let mut alpn = Vec::new();
        if protocols.http2 {
            alpn.push(b"h2".to_vec());
        }
        if protocols.http1 {
            alpn.push(b"http/1.1".to_vec());
        }
        let tcp = server_config(cfg, &provider, &resolver, alpn, false)?;
        let quic = if protocols.http3 {
            Some(server_config(
                cfg,
                &provider,
                &resolver,
                vec![b"h3".to_vec()],
                true,
            )?)
        } else {
            None
        };
        Ok(EndpointTls {
            resolver,
            tcp,
            quic,
            stamps: Mutex::new(stamps(cfg)),
            cfg: cfg.clone(),
            provider,
        })
    }

    /// The TLS settings this was built from.
    pub fn config(&self) -> &TlsConfig {
        &self.cfg
    }

    /// Reloads the certificates if any configured file changed (or always, with `force`).
    /// On error the old certificates stay in use. Returns whether a reload happened.
    pub fn reload_if_changed(&self, force: bool) -> Result<bool, TlsError> {
        let now = stamps(&self.cfg);
        let Ok(mut last) = self.stamps.lock() else {
            return Ok(false);
        };
        if !force && *last == now {
            return Ok(false);
        }
        *last = now;
        if self.cfg.certificates.is_empty() {
            // Development certificate or directory store only: the directory is re-read.
            if let Some(dir) = self.resolver.dir() {
                dir.clear();
            }
            return Ok(true);
        }
        self.resolver
            .swap(CertStore::new(&load_configured(&self.cfg, &self.provider)?));
        Ok(true)
    }
}

/// Modification times of every configured certificate and key file (None when unreadable,
/// so a file that disappears and comes back counts as a change).
fn stamps(cfg: &TlsConfig) -> Vec<Option<SystemTime>> {
    configured_paths(cfg)
        .map(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
        .collect()
}

/// Every configured certificate and key file, then the certificates directory.
fn configured_paths(cfg: &TlsConfig) -> impl Iterator<Item = &PathBuf> {
    cfg.certificates
        .iter()
        .flat_map(|f| [&f.path, &f.key])
        .chain(&cfg.certificates_dir)
}

fn load_all(
    cfg: &TlsConfig,
    addr: SocketAddr,
    provider: &CryptoProvider,
) -> Result<Vec<LoadedCert>, TlsError> {
    if cfg.certificates.is_empty() {
        if cfg.certificates_dir.is_some() {
            return Ok(Vec::new());
        }
        if !addr.ip().is_loopback() {
            return Err(TlsError::NoCertificate(addr));
        }
        tracing::warn!(
            "https://{addr} has no certificate: using an in-memory self-signed DEVELOPMENT certificate \
             for localhost, 127.0.0.1 and ::1 (browsers will warn; `harrier dev-cert` writes one you can trust)"
        );
        let dev = dev_cert::generate(&[])?;
        let loaded = certs::from_der(vec![dev.cert_der], dev.key_der, provider)
            .map_err(|m| TlsError::Rustls(rustls::Error::General(m)))?;
        return Ok(vec![loaded]);
    }
    load_configured(cfg, provider)
}

/// Loads the configured certificate files (warning about expiring ones).
fn load_configured(
    cfg: &TlsConfig,
    provider: &CryptoProvider,
) -> Result<Vec<LoadedCert>, TlsError> {
    let mut loaded = Vec::with_capacity(cfg.certificates.len());
    for files in &cfg.certificates {
        let cert = certs::load_pair(&files.path, &files.key, provider)?;
        certs::warn_if_expiring(&files.path.display().to_string(), &cert);
        loaded.push(cert);
    }
    Ok(loaded)
}

fn server_config(
    cfg: &TlsConfig,
    provider: &Arc<CryptoProvider>,
    resolver: &Arc<SniResolver>,
    alpn: Vec<Vec<u8>>,
    quic: bool,
) -> Result<Arc<ServerConfig>, TlsError> {
    let mut versions: Vec<&'static rustls::SupportedProtocolVersion> = Vec::new();
    if cfg.versions.tls13 || quic {
        versions.push(&rustls::version::TLS13);
    }
    if cfg.versions.tls12 && !quic {
        versions.push(&rustls::version::TLS12);
    }
    let builder = ServerConfig::builder_with_provider(Arc::clone(provider))
        .with_protocol_versions(&versions)?;
    let builder = match (cfg.client_certificate, &cfg.client_ca) {
        (ClientCertificate::None, _) | (_, None) => builder.with_no_client_auth(),
        (mode, Some(ca)) => {
            let roots = client_roots(ca)?;
            let verifier =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::clone(provider));
            let verifier = if mode == ClientCertificate::Allow {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            let verifier = verifier.build().map_err(|e| TlsError::ClientCa {
                path: ca.clone(),
                message: e.to_string(),
            })?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder
        .with_cert_resolver(Arc::clone(resolver) as Arc<dyn rustls::server::ResolvesServerCert>);
    config.alpn_protocols = alpn;
    config.ignore_client_order = true;
    // No 0-RTT on QUIC (early data can be replayed); session tickets on TCP so that resumed
    // handshakes skip the expensive signature.
    if !quic {
        if let Ok(ticketer) = rustls::crypto::aws_lc_rs::Ticketer::new() {
            config.ticketer = ticketer;
        }
        // rustls sends 4 TLS 1.3 tickets per handshake by default; one is enough for a
        // client to resume, and each costs an encryption here and a decryption there.
        config.send_tls13_tickets = 1;
    }
    Ok(Arc::new(config))
}

fn client_roots(ca: &PathBuf) -> Result<RootCertStore, TlsError> {
    let err = |message: String| TlsError::ClientCa {
        path: ca.clone(),
        message,
    };
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).map_err(|e| err(certs::pem_message(e)))? {
        let cert = cert.map_err(|e| err(certs::pem_message(e)))?;
        roots.add(cert).map_err(|e| err(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(err("no CERTIFICATE in the file".to_owned()));
    }
    Ok(roots)
}

/// The verified client certificate of a connection, for the pipeline and the logs.
#[derive(Debug, Clone)]
pub struct ClientIdentity {
    /// The subject distinguished name, e.g. `CN=alice, O=Example`.
    pub subject: String,
}

impl ClientIdentity {
    /// Describes the leaf of a verified client chain.
    pub fn from_chain(chain: &[CertificateDer<'_>]) -> Option<Self> {
        let leaf = chain.first()?;
        let (_, cert) = x509_parser::parse_x509_certificate(leaf.as_ref()).ok()?;
        Some(ClientIdentity {
            subject: cert.subject().to_string(),
        })
    }
}

impl EndpointTls {
    /// The files and directories whose changes should trigger a reload check.
    pub fn watched_paths(&self) -> Vec<PathBuf> {
        configured_paths(&self.cfg).cloned().collect()
    }
}

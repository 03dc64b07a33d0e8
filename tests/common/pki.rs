//! A test PKI (CAs, intermediates, server and client certificates as PEM files) and the https
//! test harness: an in-process server whose endpoints come from its TOML, reqwest clients that
//! trust only a test CA, and capture of the server's log lines.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use harrier::config::{self, Config, LoadOptions};
use harrier::pipeline::{ConnInfo, Handler};
use harrier::{BoundServer, Server, ServerError};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use tokio::sync::{oneshot, Notify};
use tokio::task::JoinHandle;

use super::STEP;

// ---------------------------------------------------------------------------------------------
// Certificates

/// The key algorithm of a certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alg {
    P256,
    P384,
    Ed25519,
    Rsa,
}

impl Alg {
    fn key(self) -> KeyPair {
        let alg = match self {
            Alg::P256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            Alg::P384 => &rcgen::PKCS_ECDSA_P384_SHA384,
            Alg::Ed25519 => &rcgen::PKCS_ED25519,
            Alg::Rsa => &rcgen::PKCS_RSA_SHA256,
        };
        KeyPair::generate_for(alg).expect("key generation")
    }
}

/// A certificate authority: a self-signed root, or an intermediate signed by another CA.
pub struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
    /// What a leaf issued here sends after itself: the intermediates up to (not including)
    /// the root.
    chain: Vec<String>,
}

impl Ca {
    /// A new root CA named `name` (ECDSA P-256).
    pub fn new(name: &str) -> Ca {
        let issuer = CertifiedIssuer::self_signed(ca_params(name), Alg::P256.key()).expect("CA");
        Ca {
            issuer,
            chain: Vec::new(),
        }
    }

    /// An intermediate CA signed by this one.
    pub fn intermediate(&self, name: &str) -> Ca {
        let issuer = CertifiedIssuer::signed_by(ca_params(name), Alg::P256.key(), &*self.issuer)
            .expect("intermediate CA");
        let mut chain = vec![issuer.pem()];
        chain.extend(self.chain.iter().cloned());
        Ca { issuer, chain }
    }

    /// The CA certificate, PEM.
    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// The CA certificate as a rustls trust store, for tests that drive TLS themselves.
    pub fn rustls_roots(&self) -> rustls::RootCertStore {
        use rustls_pki_types::pem::PemObject;
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_pki_types::CertificateDer::pem_slice_iter(self.pem().as_bytes()) {
            roots.add(cert.expect("CA PEM")).expect("CA certificate");
        }
        roots
    }

    /// The CA certificate as a reqwest trust root.
    pub fn root(&self) -> reqwest::Certificate {
        reqwest::Certificate::from_pem(self.pem().as_bytes()).expect("CA certificate")
    }

    /// Writes the CA certificate to `dir/file`.
    pub fn write(&self, dir: &Path, file: &str) -> PathBuf {
        let path = dir.join(file);
        std::fs::write(&path, self.pem()).expect("write CA certificate");
        path
    }

    /// A server certificate (ECDSA P-256) for `names` (DNS names, wildcards or IP addresses).
    pub fn server(&self, names: &[&str]) -> Leaf {
        self.server_with(names, Alg::P256)
    }

    /// A server certificate with a key of `alg`.
    pub fn server_with(&self, names: &[&str], alg: Alg) -> Leaf {
        self.issue(leaf_params(names, ExtendedKeyUsagePurpose::ServerAuth), alg)
    }

    /// A server certificate for `names` that expired in 2021.
    pub fn expired_server(&self, names: &[&str]) -> Leaf {
        let mut params = leaf_params(names, ExtendedKeyUsagePurpose::ServerAuth);
        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        params.not_after = rcgen::date_time_ymd(2021, 1, 1);
        self.issue(params, Alg::P256)
    }

    /// A client certificate whose subject is `CN=<cn>`.
    pub fn client(&self, cn: &str) -> Leaf {
        let mut params = leaf_params(&[], ExtendedKeyUsagePurpose::ClientAuth);
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, cn);
        self.issue(params, Alg::P256)
    }

    fn issue(&self, params: CertificateParams, alg: Alg) -> Leaf {
        let key = alg.key();
        let cert = params.signed_by(&key, &self.issuer).expect("sign leaf");
        let mut chain = cert.pem();
        for pem in &self.chain {
            chain.push_str(pem);
        }
        Leaf {
            cert: cert.pem(),
            chain,
            key: key.serialize_pem(),
        }
    }
}

fn ca_params(name: &str) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
}

fn leaf_params(names: &[&str], purpose: ExtendedKeyUsagePurpose) -> CertificateParams {
    let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    let mut params = CertificateParams::new(names.clone()).expect("certificate names");
    params.distinguished_name = rcgen::DistinguishedName::new();
    if let Some(first) = names.first() {
        params.distinguished_name.push(DnType::CommonName, first);
    }
    params.extended_key_usages = vec![purpose];
    params.use_authority_key_identifier_extension = true;
    params
}

/// An issued certificate with its key.
pub struct Leaf {
    /// The certificate alone, PEM.
    pub cert: String,
    /// The certificate followed by the intermediates of its issuer, PEM.
    pub chain: String,
    /// The private key, PKCS#8 PEM (as rcgen writes it).
    pub key: String,
}

impl Leaf {
    /// Writes `dir/<stem>.pem` (the chain) and `dir/<stem>.key`.
    pub fn write(&self, dir: &Path, stem: &str) -> (PathBuf, PathBuf) {
        let (cert, key) = (
            dir.join(format!("{stem}.pem")),
            dir.join(format!("{stem}.key")),
        );
        std::fs::write(&cert, &self.chain).expect("write certificate");
        std::fs::write(&key, &self.key).expect("write key");
        (cert, key)
    }

    /// The certificate and key as a reqwest client identity.
    pub fn identity(&self) -> reqwest::Identity {
        reqwest::Identity::from_pem(format!("{}{}", self.chain, self.key).as_bytes())
            .expect("client identity")
    }
}

/// `{ path = "<stem>.pem", key = "<stem>.key" }`, the files [`Leaf::write`] makes.
pub fn cert_toml(stem: &str) -> String {
    format!("{{ path = \"{stem}.pem\", key = \"{stem}.key\" }}")
}

/// The DNS names and IP addresses a DER certificate is valid for (its SAN extension).
pub fn cert_names(der: &[u8]) -> Vec<String> {
    use x509_parser::extensions::GeneralName;
    let (_, cert) = x509_parser::parse_x509_certificate(der).expect("parse certificate");
    let san = cert.subject_alternative_name().expect("SAN extension");
    let mut names = Vec::new();
    for name in san.map(|s| &s.value.general_names).into_iter().flatten() {
        match name {
            GeneralName::DNSName(dns) => names.push((*dns).to_owned()),
            GeneralName::IPAddress(ip) => {
                let ip: Option<std::net::IpAddr> = match ip.len() {
                    4 => <[u8; 4]>::try_from(*ip).ok().map(Into::into),
                    _ => <[u8; 16]>::try_from(*ip).ok().map(Into::into),
                };
                names.extend(ip.map(|ip| ip.to_string()));
            }
            _ => {}
        }
    }
    names
}

/// The names of the first certificate in a PEM file.
pub fn pem_names(pem: &str) -> Vec<String> {
    let (_, item) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).expect("PEM");
    cert_names(&item.contents)
}

// ---------------------------------------------------------------------------------------------
// Server

/// The body of `index.html` in [`site`] directories.
pub const INDEX: &str = "<h1>hello over TLS</h1>";

/// A temporary app directory holding `index.html` and `site.pem`/`site.key`: a certificate
/// for `names` issued by `ca`.
pub fn site(ca: &Ca, names: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("index.html"), INDEX).expect("write index.html");
    ca.server(names).write(dir.path(), "site");
    dir
}

/// An `[[endpoints]]` table on `https://127.0.0.1:0` with the [`site`] certificate, then
/// `extra` (more keys of the same table).
pub fn https_endpoint(extra: &str) -> String {
    format!(
        "[[endpoints]]\nurl = \"https://127.0.0.1:0\"\ncertificate = {}\n{extra}\n",
        cert_toml("site")
    )
}

/// Loads `toml` as `dir/harrier.toml`, with `dir` as the app directory and no overrides: the
/// endpoints are the ones the TOML lists.
pub fn load(dir: &Path, toml: &str) -> Config {
    let opts = LoadOptions {
        app_dir: dir.to_path_buf(),
        ..LoadOptions::default()
    };
    config::load_str(toml, &dir.join("harrier.toml"), &opts)
        .unwrap_or_else(|e| panic!("test config must load:\n{e}\n{toml}"))
}

/// Binds the server `toml` describes (static files of `dir`, or `handler`).
pub async fn bind(
    dir: &Path,
    toml: &str,
    handler: Option<Handler>,
) -> Result<BoundServer, ServerError> {
    let mut server = Server::from_config(load(dir, toml));
    if let Some(h) = handler {
        server = server.with_handler(h);
    }
    tokio::time::timeout(STEP, server.bind())
        .await
        .expect("bind in time")
}

/// The startup error of the server `toml` describes (it must not start).
pub async fn bind_error(dir: &Path, toml: &str) -> String {
    match bind(dir, toml, None).await {
        Ok(bound) => panic!("the server started: {:?}", bound.urls()),
        Err(e) => e.to_string(),
    }
}

/// A running in-process server; stopped when dropped.
pub struct Https {
    /// Bound addresses, in endpoint order.
    pub addrs: Vec<SocketAddr>,
    /// The endpoints' URLs as the server prints them.
    pub urls: Vec<String>,
    /// Notifying it reloads certificates at once (like SIGHUP).
    pub reload: Arc<Notify>,
    task: JoinHandle<()>,
    _stop: oneshot::Sender<()>,
}

impl Https {
    /// The address of the first endpoint.
    pub fn addr(&self) -> SocketAddr {
        self.addrs[0]
    }
}

impl Drop for Https {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts the server `toml` describes, serving the files of `dir` (or `handler`).
pub async fn serve(dir: &Path, toml: &str, handler: Option<Handler>) -> Https {
    let bound = bind(dir, toml, handler)
        .await
        .unwrap_or_else(|e| panic!("server must start: {e}"));
    let (addrs, urls, reload) = (bound.local_addrs(), bound.urls(), bound.reload_handle());
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(bound.serve(async move {
        let _ = stopped.await;
    }));
    Https {
        addrs,
        urls,
        reload,
        task,
        _stop: stop,
    }
}

/// A handler answering what the connection's TLS established:
/// `sni=<name> alpn=<protocol> client=<subject>` (`-` for none).
pub fn whoami() -> Handler {
    harrier::pipeline::handler_fn(|req: http::Request<harrier::body::Body>| async move {
        let tls = ConnInfo::of(&req)
            .and_then(|c| c.tls.clone())
            .unwrap_or_default();
        let text = format!(
            "sni={} alpn={} client={}",
            tls.sni.as_deref().unwrap_or("-"),
            tls.alpn
                .map_or("-".to_owned(), |a| String::from_utf8_lossy(&a).into_owned()),
            tls.client.map_or("-".to_owned(), |c| c.subject),
        );
        http::Response::new(harrier::body::full(bytes::Bytes::from(text)))
    })
}

// ---------------------------------------------------------------------------------------------
// Clients

/// A reqwest client builder that trusts only `ca` (or, without one, accepts any certificate),
/// connects every name of `names` to `addr`, reports the server certificate (`tls_info`),
/// follows no redirect and is bounded by [`STEP`].
pub fn client(ca: Option<&Ca>, addr: SocketAddr, names: &[&str]) -> reqwest::ClientBuilder {
    client_trusting(ca.map(Ca::root), addr, names)
}

/// [`client`] with any trust root (`None`: accept any certificate).
pub fn client_trusting(
    root: Option<reqwest::Certificate>,
    addr: SocketAddr,
    names: &[&str],
) -> reqwest::ClientBuilder {
    let mut b = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .tls_info(true)
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(STEP);
    b = match root {
        Some(root) => b.add_root_certificate(root),
        None => b.danger_accept_invalid_certs(true),
    };
    for name in names {
        b = b.resolve(name, addr);
    }
    b
}

/// `https://<host>:<port of addr><path>`.
pub fn url(host: &str, addr: SocketAddr, path: &str) -> String {
    format!("https://{host}:{}{path}", addr.port())
}

/// The names of the certificate the server presented on the response's connection.
pub fn peer_names(resp: &reqwest::Response) -> Vec<String> {
    let info = resp
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .expect("tls_info(true) on the client");
    cert_names(info.peer_certificate().expect("a server certificate"))
}

/// A new connection to `host` (resolved to `addr`): the names of the certificate presented.
pub async fn presented(
    ca: Option<&Ca>,
    addr: SocketAddr,
    host: &str,
) -> Result<Vec<String>, reqwest::Error> {
    let client = client(ca, addr, &[host]).build().expect("client");
    let resp = client.get(url(host, addr, "/")).send().await?;
    Ok(peer_names(&resp))
}

/// The names of the certificate a new connection to `host` gets.
pub async fn names_for(ca: Option<&Ca>, addr: SocketAddr, host: &str) -> Vec<String> {
    presented(ca, addr, host)
        .await
        .unwrap_or_else(|e| panic!("{host} on {addr}: {}", error_chain(&e)))
}

/// Asserts that a new connection to `host` is refused during the handshake.
pub async fn assert_refused(ca: Option<&Ca>, addr: SocketAddr, host: &str) {
    match presented(ca, addr, host).await {
        Ok(names) => panic!("{host} on {addr} got a certificate for {names:?}"),
        Err(e) => assert!(
            e.is_connect() && !e.is_timeout(),
            "{host}: not a refused handshake: {}",
            error_chain(&e)
        ),
    }
}

/// An error with all its sources, for assertion messages.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

// ---------------------------------------------------------------------------------------------
// Logs

/// The log lines of this thread's tracing events: with `#[tokio::test]` (a current-thread
/// runtime) that is every line the in-process server logs from its tasks.
#[derive(Clone, Default)]
pub struct Logs {
    text: Arc<Mutex<Vec<u8>>>,
    grew: Arc<Notify>,
}

impl Logs {
    /// Starts capturing; capture ends when the guard is dropped.
    pub fn capture() -> (Logs, tracing::subscriber::DefaultGuard) {
        // With a single dispatcher registered, tracing caches each callsite's interest from
        // the default of whichever thread hits it first: a parallel test's thread (no
        // subscriber) would silence that log line here for good. A second, never-dropped
        // dispatcher makes tracing ask every live dispatcher instead.
        static SECOND: std::sync::OnceLock<tracing::Dispatch> = std::sync::OnceLock::new();
        SECOND.get_or_init(|| tracing::Dispatch::new(tracing::subscriber::NoSubscriber::default()));
        let logs = Logs::default();
        let writer = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .with_writer(move || writer.clone())
            .finish();
        (logs, tracing::subscriber::set_default(subscriber))
    }

    /// Everything logged so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.text.lock().unwrap()).into_owned()
    }

    /// How many times `needle` was logged so far.
    pub fn count(&self, needle: &str) -> usize {
        self.text().matches(needle).count()
    }

    /// Waits (bounded by [`STEP`]) until `needle` has been logged more than `seen` times.
    pub async fn wait_for(&self, needle: &str, seen: usize) {
        let wait = async {
            while self.count(needle) <= seen {
                self.grew.notified().await;
            }
        };
        if tokio::time::timeout(STEP, wait).await.is_err() {
            panic!("{needle:?} was not logged in time; logs:\n{}", self.text());
        }
    }
}

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.text.lock().unwrap().extend_from_slice(buf);
        self.grew.notify_one();
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

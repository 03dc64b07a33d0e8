//! Self-signed development certificates: `harrier dev-cert`, and zero-config HTTPS on
//! loopback endpoints.

use std::path::{Path, PathBuf};

use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// Names every development certificate covers, before the ones asked for.
pub const LOOPBACK_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// Why a development certificate could not be made or written.
#[derive(Debug, thiserror::Error)]
pub enum DevCertError {
    /// rcgen refused the names or failed to generate a key.
    #[error("cannot generate a certificate: {0}")]
    Generate(#[from] rcgen::Error),
    /// Writing the files failed.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

/// A generated certificate and key, in PEM and DER.
pub struct DevCert {
    /// The names it is valid for (the loopback names, then the others asked for).
    pub names: Vec<String>,
    /// The certificate, PEM.
    pub cert_pem: String,
    /// The PKCS#8 private key, PEM.
    pub key_pem: String,
    /// The certificate, DER.
    pub cert_der: CertificateDer<'static>,
    /// The private key, DER.
    pub key_der: PrivateKeyDer<'static>,
}

/// Generates a self-signed certificate for the loopback names and `extra` names.
pub fn generate(extra: &[String]) -> Result<DevCert, DevCertError> {
    let mut names: Vec<String> = LOOPBACK_NAMES.iter().map(|s| (*s).to_owned()).collect();
    for name in extra {
        if !names.contains(name) {
            names.push(name.clone());
        }
    }
    let mut params = rcgen::CertificateParams::new(names.clone())?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "harrier development certificate");
    let key = rcgen::KeyPair::generate()?;
    let cert = params.self_signed(&key)?;
    Ok(DevCert {
        names,
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        cert_der: cert.der().clone(),
        key_der: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
    })
}

/// Writes `cert.pem` and `key.pem` into `dir` (created if needed); returns their paths.
/// The key file is readable by its owner only on Unix.
pub fn write(cert: &DevCert, dir: &Path) -> Result<(PathBuf, PathBuf), DevCertError> {
    let werr = |path: &Path| {
        let path = path.to_path_buf();
        move |source| DevCertError::Write { path, source }
    };
    std::fs::create_dir_all(dir).map_err(werr(dir))?;
    let cert_path = dir.join("cert.pem");
    let key_path = dir.join("key.pem");
    std::fs::write(&cert_path, &cert.cert_pem).map_err(werr(&cert_path))?;
    write_private(&key_path, cert.key_pem.as_bytes()).map_err(werr(&key_path))?;
    Ok((cert_path, key_path))
}

#[cfg(unix)]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)
}

#[cfg(not(unix))]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, bytes)
}

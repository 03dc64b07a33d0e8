//! Loading a certificate chain and its private key from PEM files, with the checks that turn
//! a broken deployment into a clear startup error instead of failed handshakes.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rustls::crypto::CryptoProvider;
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// Why a certificate could not be used.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// A file could not be read or held no usable PEM item.
    #[error("{path}: {message}")]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// The key does not belong to the certificate, or is of an unsupported kind.
    #[error("{key} does not fit {cert}: {message}")]
    Mismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// rustls' explanation.
        message: String,
    },
}

/// A certificate chain with its signing key, and what harrier needs to know about it.
#[derive(Debug, Clone)]
pub struct LoadedCert {
    /// What rustls presents in handshakes.
    pub key: Arc<CertifiedKey>,
    /// DNS names (lowercase, wildcards kept as `*.example.com`) and IP addresses it is valid for.
    pub names: Vec<String>,
    /// When the leaf certificate expires (None if it could not be parsed).
    pub not_after: Option<SystemTime>,
}

/// Loads `cert` (a PEM chain, leaf first) and `key` (PKCS#8, PKCS#1 or SEC1 PEM).
pub fn load_pair(
    cert: &Path,
    key: &Path,
    provider: &CryptoProvider,
) -> Result<LoadedCert, CertError> {
    let file_err = |path: &Path, message: String| CertError::File {
        path: path.to_path_buf(),
        message,
    };
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(|e| file_err(cert, pem_message(e)))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_err(cert, pem_message(e)))?;
    if chain.is_empty() {
        return Err(file_err(cert, "no CERTIFICATE in the file".to_owned()));
    }
    let der = PrivateKeyDer::from_pem_file(key).map_err(|e| file_err(key, pem_message(e)))?;
    from_der(chain, der, provider).map_err(|message| CertError::Mismatch {
        cert: cert.to_path_buf(),
        key: key.to_path_buf(),
        message,
    })
}

/// Builds a [`LoadedCert`] from DER items (also used for in-memory development certificates).
pub fn from_der(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    provider: &CryptoProvider,
) -> Result<LoadedCert, String> {
    let (names, not_after) = describe(&chain[0]);
    let certified = CertifiedKey::from_der(chain, key, provider).map_err(|e| match e {
        rustls::Error::InconsistentKeys(_) => {
            "the private key does not belong to the certificate".to_owned()
        }
        other => other.to_string(),
    })?;
    Ok(LoadedCert {
        key: Arc::new(certified),
        names,
        not_after,
    })
}

/// A reader's message for a PEM problem (the crate's Display shows byte arrays).
pub(crate) fn pem_message(e: rustls_pki_types::pem::Error) -> String {
    use rustls_pki_types::pem::Error;
    match e {
        Error::Io(io) => io.to_string(),
        Error::NoItemsFound => "no PEM item of the expected kind in the file".to_owned(),
        Error::MissingSectionEnd { end_marker } => format!(
            "invalid PEM: a section has no \"{}\" line",
            String::from_utf8_lossy(&end_marker)
        ),
        Error::IllegalSectionStart { line } => format!(
            "invalid PEM: bad section start \"{}\"",
            String::from_utf8_lossy(&line)
        ),
        Error::Base64Decode(_) => "invalid PEM: the base64 content is corrupt".to_owned(),
        Error::SectionTooLarge => "invalid PEM: a section is larger than 256 MB".to_owned(),
        other => format!("invalid PEM: {other}"),
    }
}

/// The names and expiry of a leaf certificate.
fn describe(leaf: &CertificateDer<'_>) -> (Vec<String>, Option<SystemTime>) {
    use x509_parser::extensions::GeneralName;
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(leaf.as_ref()) else {
        return (Vec::new(), None);
    };
    let mut names = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(dns) => names.push(dns.to_ascii_lowercase()),
                GeneralName::IPAddress(bytes) => {
                    if let Some(ip) = ip_from_bytes(bytes) {
                        names.push(ip.to_string());
                    }
                }
                _ => {}
            }
        }
    }
    if names.is_empty() {
        // Old certificates name their host only in the subject's common name.
        for cn in cert.subject().iter_common_name() {
            if let Ok(cn) = cn.as_str() {
                names.push(cn.to_ascii_lowercase());
            }
        }
    }
    let ts = cert.validity().not_after.timestamp();
    let not_after = u64::try_from(ts)
        .ok()
        .map(|s| SystemTime::UNIX_EPOCH + Duration::from_secs(s));
    (names, not_after)
}

fn ip_from_bytes(bytes: &[u8]) -> Option<std::net::IpAddr> {
    match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes).ok().map(std::net::IpAddr::from),
        16 => <[u8; 16]>::try_from(bytes).ok().map(std::net::IpAddr::from),
        _ => None,
    }
}

/// Logs a loud warning for an expired (or soon expiring) certificate; still served, since
/// refusing to start would turn an expired certificate into a full outage.
pub fn warn_if_expiring(what: &str, cert: &LoadedCert) {
    let Some(not_after) = cert.not_after else {
        return;
    };
    match not_after.duration_since(SystemTime::now()) {
        Err(_) => tracing::warn!(
            "certificate {what} EXPIRED on {}: clients will refuse it; renew it now",
            httpdate::fmt_http_date(not_after)
        ),
        Ok(left) if left < Duration::from_secs(7 * 86_400) => tracing::warn!(
            "certificate {what} expires on {} (in {} hours)",
            httpdate::fmt_http_date(not_after),
            left.as_secs() / 3600
        ),
        Ok(_) => {}
    }
}

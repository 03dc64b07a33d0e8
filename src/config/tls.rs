//! The TLS keys of an `https://` `[[endpoints]]` table: certificates (chosen by SNI), TLS
//! versions, client certificates (mutual TLS), and HSTS.
//!
//! Certificate and key files are only named here; whether they exist and parse is checked
//! when the endpoint starts, so that `harrier check` works on a machine without the keys.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::model::*;
use super::reader::{timeout, Field, Section};
use super::sections::check_dir;

/// The keys that only mean something on an https:// endpoint.
const TLS_KEYS: [&str; 10] = [
    "certificate",
    "certificates",
    "certificates_dir",
    "tls_versions",
    "client_certificate",
    "client_ca",
    "unknown_sni",
    "require_sni_host_match",
    "handshake_timeout",
    "hsts",
];

/// `tls_versions` values, as written.
const VERSIONS: [&str; 2] = ["1.2", "1.3"];
/// `client_certificate` values.
const CLIENT_CERTIFICATE: [&str; 3] = ["none", "allow", "require"];
/// `unknown_sni` values.
const UNKNOWN_SNI: [&str; 2] = ["default", "refuse"];

/// How a certificate is described in messages.
const CERTIFICATE: &str = "a table like { path = \"certs/site.pem\", key = \"certs/site.key\" }";
const CERTIFICATE_PARTS: &str =
    "a certificate needs path (the PEM certificate chain) and key (its private key)";
/// How the HSTS table is described in messages.
const HSTS: &str =
    "a table like { max_age = \"365d\", include_subdomains = false, preload = false }";
/// The shortest max-age hstspreload.org accepts: one year of 365 days.
const PRELOAD_MAX_AGE: Duration = Duration::from_secs(365 * 24 * 60 * 60);

/// Takes the TLS keys out of a table that is not https://. With `refuse` (an http:// or
/// unix: endpoint) each one is reported; without (the URL itself is wrong and already
/// reported) they are dropped, so that one mistake gives one message.
pub(crate) fn refuse(t: &mut Section, refuse: bool) {
    for key in TLS_KEYS {
        if let Some(f) = t.take(key) {
            if refuse {
                t.report(f.problem("only applies to https:// endpoints"));
            }
        }
    }
}

/// Reads the TLS keys of the https:// endpoint on `addr`, whose URL was written at `url`;
/// `http3` tells whether it speaks HTTP/3, which needs TLS 1.3.
pub(crate) fn tls(
    t: &mut Section,
    base_dir: &Path,
    url: &Field,
    addr: SocketAddr,
    http3: bool,
) -> TlsConfig {
    let d = TlsConfig::default();
    let mut written = false;
    let mut certificates = Vec::new();
    if let Some(f) = t.take("certificate") {
        written = true;
        certificates.extend(certificate(t, f, base_dir));
    }
    if let Some(f) = t.take("certificates") {
        written = true;
        for item in t.check(&f, f.items()).unwrap_or_default() {
            certificates.extend(certificate(t, item, base_dir));
        }
    }
    let dir_at = t.take("certificates_dir");
    written |= dir_at.is_some();
    let certificates_dir = dir_at.and_then(|f| {
        let dir = f
            .string()
            .and_then(|s| check_dir(&base_dir.join(s), "a certificates directory"));
        t.check(&f, dir)
    });
    if !written && !addr.ip().is_loopback() {
        t.report(url.problem(
            "needs a certificate (or certificates_dir); only loopback endpoints get a \
             development certificate",
        ));
    }
    let versions = versions(t, http3).unwrap_or(d.versions);
    let (client_certificate, client_ca) = client_certificate(t, base_dir);
    TlsConfig {
        certificates,
        certificates_dir,
        versions,
        client_certificate,
        client_ca,
        unknown_sni: t.read("unknown_sni", d.unknown_sni, |f| {
            Ok(match f.choice(&UNKNOWN_SNI)? {
                "refuse" => UnknownSni::Refuse,
                _ => UnknownSni::Default,
            })
        }),
        require_sni_host_match: t.read(
            "require_sni_host_match",
            d.require_sni_host_match,
            Field::bool,
        ),
        handshake_timeout: t.read("handshake_timeout", d.handshake_timeout, timeout),
        hsts: hsts(t),
    }
}

/// One `{ path, key }` table, of `certificate` or `certificates`; `None` when it is wrong
/// (the problem is recorded).
fn certificate(t: &mut Section, f: Field, base_dir: &Path) -> Option<CertificateFiles> {
    let mut c = t.table(f, CERTIFICATE)?;
    let mut file = |key| {
        let f = c.require(key, CERTIFICATE_PARTS)?;
        c.check(&f, file_path(&f, base_dir))
    };
    let files = (file("path"), file("key"));
    c.close_into(t);
    Some(CertificateFiles {
        path: files.0?,
        key: files.1?,
    })
}

/// A file named by a non-empty string, relative to `base_dir`; it need not exist yet.
pub(crate) fn file_path(f: &Field, base_dir: &Path) -> Result<PathBuf, String> {
    let name = f.string()?;
    if name.trim().is_empty() {
        return Err("must name a file, found \"\"".to_owned());
    }
    Ok(base_dir.join(name))
}

/// `tls_versions`: a non-empty list of distinct versions; `None` when absent or wrong.
fn versions(t: &mut Section, http3: bool) -> Option<TlsVersions> {
    let f = t.take("tls_versions")?;
    let empty = "must list at least one TLS version: \"1.2\", \"1.3\"";
    let listed = t.distinct(&f, &VERSIONS, empty)?;
    let has = |version| listed.iter().any(|(_, v)| *v == version);
    let versions = TlsVersions {
        tls12: has("1.2"),
        tls13: has("1.3"),
    };
    if http3 && versions.tls12 && !versions.tls13 {
        t.report(f.problem(
            "http3 needs TLS 1.3 (QUIC always uses it): add \"1.3\" or remove http3 from protocols",
        ));
    }
    (!listed.is_empty()).then_some(versions)
}

/// `client_certificate` and `client_ca`, which only make sense together.
fn client_certificate(t: &mut Section, base_dir: &Path) -> (ClientCertificate, Option<PathBuf>) {
    let mode_at = t.take("client_certificate");
    let mode = match &mode_at {
        None => Some("none"),
        Some(f) => t.check(f, f.choice(&CLIENT_CERTIFICATE)),
    };
    let ca_at = t.take("client_ca");
    let ca = ca_at
        .as_ref()
        .and_then(|f| t.check(f, file_path(f, base_dir)));
    match (mode, &mode_at, &ca_at) {
        (Some("none"), _, Some(f)) => t.report(f.problem(
            "does nothing with client_certificate = \"none\" (the default): set \
             client_certificate to \"allow\" or \"require\", or remove client_ca",
        )),
        (Some(mode), Some(f), None) if mode != "none" => t.report(f.problem(format!(
            "client_certificate = \"{mode}\" needs client_ca, the trust roots for client \
             certificates"
        ))),
        _ => {}
    }
    let mode = match mode {
        Some("allow") => ClientCertificate::Allow,
        Some("require") => ClientCertificate::Require,
        _ => ClientCertificate::None,
    };
    (mode, ca)
}

/// `hsts`: "off" or a table whose max_age is required; preload follows hstspreload.org's
/// rules, since the list refuses anything else.
fn hsts(t: &mut Section) -> Option<Hsts> {
    let mut h = t.off_or_table("hsts", HSTS)??;
    let max_age = h
        .require("max_age", "HSTS needs a max_age such as \"365d\"")
        .and_then(|f| h.check(&f, timeout(&f)));
    let include_subdomains = h.read("include_subdomains", false, Field::bool);
    let preload_at = h.take("preload");
    let preload = preload_at
        .as_ref()
        .and_then(|f| h.check(f, f.bool()))
        .unwrap_or(false);
    if let (true, Some(f)) = (preload, &preload_at) {
        if !include_subdomains {
            h.report(f.problem(
                "needs include_subdomains = true: hstspreload.org only accepts a policy that \
                 covers every subdomain",
            ));
        }
        if max_age.is_some_and(|age| age < PRELOAD_MAX_AGE) {
            h.report(
                f.problem("needs a max_age of at least 365d: hstspreload.org requires one year"),
            );
        }
    }
    h.close_into(t);
    Some(Hsts {
        max_age: max_age?,
        include_subdomains,
        preload,
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::{load_str, LoadOptions};

    use super::*;

    #[test]
    fn every_key_reaches_the_model() {
        let text = r#"
            [[endpoints]]
            url = "https://127.0.0.1:8443"
            protocols = ["http1", "http3"]
            certificate = { path = "a.pem", key = "a.key" }
            certificates = [{ path = "/b.pem", key = "b.key" }]
            tls_versions = ["1.3"]
            client_certificate = "Require"
            client_ca = "ca.pem"
            unknown_sni = "refuse"
            require_sni_host_match = true
            handshake_timeout = "2s"
            hsts = { max_age = "365d", include_subdomains = true, preload = true }
        "#;
        let config = load_str(
            text,
            Path::new("/etc/h/harrier.toml"),
            &LoadOptions::default(),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let endpoint = &config.endpoints[0];
        assert!(endpoint.protocols.http3 && !endpoint.protocols.http2);
        let files = |path: &str, key: &str| CertificateFiles {
            path: path.into(),
            key: key.into(),
        };
        let expected = TlsConfig {
            certificates: vec![
                files("/etc/h/a.pem", "/etc/h/a.key"),
                files("/b.pem", "/etc/h/b.key"),
            ],
            certificates_dir: None,
            versions: TlsVersions {
                tls12: false,
                tls13: true,
            },
            client_certificate: ClientCertificate::Require,
            client_ca: Some("/etc/h/ca.pem".into()),
            unknown_sni: UnknownSni::Refuse,
            require_sni_host_match: true,
            handshake_timeout: Duration::from_secs(2),
            hsts: Some(Hsts {
                max_age: PRELOAD_MAX_AGE,
                include_subdomains: true,
                preload: true,
            }),
        };
        assert_eq!(endpoint.tls.as_ref(), Some(&expected));
    }

    #[test]
    fn https_defaults() {
        let text = "[[endpoints]]\nurl = \"https://localhost:0\"\n";
        let config = load_str(text, Path::new("/h.toml"), &LoadOptions::default()).unwrap();
        assert_eq!(config.endpoints[0].tls, Some(TlsConfig::default()));
        assert_eq!(config.endpoints[0].protocols, Protocols::default());
    }
}

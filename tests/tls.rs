//! HTTPS over real sockets: ALPN (HTTP/1.1 and HTTP/2), TLS versions, every key kind and
//! format, certificate chains, development certificates (and `harrier dev-cert`), startup
//! errors, and curl as an outside client. SNI, redirects and HSTS are in tls_sni.rs, reload in
//! tls_reload.rs, client certificates in tls_mtls.rs.

mod common;

use std::path::Path;
use std::process::Command;

use common::pki::*;
use common::STEP;
use reqwest::tls::Version as TlsVersion;
use reqwest::{StatusCode, Version};

/// A file whose bytes take every value, larger than any single TLS record or HTTP/2 frame.
fn page() -> Vec<u8> {
    (0..300_000u32).map(|i| (i * 7 % 256) as u8).collect()
}

/// GET `url`: status, version and body; panics with the whole error chain on failure.
async fn fetch(client: &reqwest::Client, url: &str) -> (StatusCode, Version, Vec<u8>) {
    let resp = client
        .get(url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {}", error_chain(&e)));
    let (status, version) = (resp.status(), resp.version());
    let body = resp.bytes().await.expect("body");
    (status, version, body.to_vec())
}

/// GET `url`, which must fail without any HTTP response (a refused handshake).
async fn refused(client: reqwest::ClientBuilder, url: &str) -> reqwest::Error {
    let client = client.build().expect("client");
    match client.get(url).send().await {
        Ok(resp) => panic!(
            "GET {url} was answered: {} {:?}",
            resp.status(),
            resp.version()
        ),
        Err(e) => {
            assert!(
                !e.is_timeout(),
                "GET {url} timed out instead of failing: {e}"
            );
            e
        }
    }
}

#[tokio::test]
async fn serves_exact_bytes_over_http1_and_http2_chosen_by_alpn() {
    let ca = Ca::new("ALPN CA");
    let dir = site(&ca, &["a.test"]);
    std::fs::write(dir.path().join("page.bin"), page()).unwrap();
    let server = serve(dir.path(), &https_endpoint(""), None).await;
    assert_eq!(server.urls, [format!("https://{}", server.addr())]);
    let target = url("a.test", server.addr(), "/page.bin");

    // A client offering h2 and http/1.1 gets h2; one offering http/1.1 only gets HTTP/1.1.
    let h2 = client(Some(&ca), server.addr(), &["a.test"])
        .build()
        .unwrap();
    let h1 = client(Some(&ca), server.addr(), &["a.test"]);
    let h1 = h1.http1_only().build().unwrap();
    for (client, version) in [(&h2, Version::HTTP_2), (&h1, Version::HTTP_11)] {
        let (status, got, body) = fetch(client, &target).await;
        assert_eq!((status, got), (StatusCode::OK, version));
        assert!(body == page(), "{version:?}: {} bytes differ", body.len());
    }
    let resp = h2
        .get(url("a.test", server.addr(), "/"))
        .send()
        .await
        .unwrap();
    assert_eq!(peer_names(&resp), ["a.test"]);
    assert_eq!(resp.text().await.unwrap(), INDEX);
}

#[tokio::test]
async fn an_http1_only_https_endpoint_offers_no_h2() {
    let ca = Ca::new("ALPN CA");
    let dir = site(&ca, &["a.test"]);
    let toml = https_endpoint("protocols = [\"http1\"]");
    let server = serve(dir.path(), &toml, None).await;
    let target = url("a.test", server.addr(), "/");
    let both = client(Some(&ca), server.addr(), &["a.test"])
        .build()
        .unwrap();
    let (status, version, body) = fetch(&both, &target).await;
    assert_eq!((status, version), (StatusCode::OK, Version::HTTP_11));
    assert_eq!(body, INDEX.as_bytes());
    // A client that only speaks h2 (ALPN "h2" alone) finds no protocol in common.
    let h2_only = client(Some(&ca), server.addr(), &["a.test"]).http2_prior_knowledge();
    refused(h2_only, &target).await;
}

#[tokio::test]
async fn tls_versions_are_enforced() {
    let ca = Ca::new("Versions CA");
    let dir = site(&ca, &["a.test"]);
    let toml =
        https_endpoint("tls_versions = [\"1.3\"]") + &https_endpoint("tls_versions = [\"1.2\"]");
    let server = serve(dir.path(), &toml, None).await;
    let (only13, only12) = (server.addrs[0], server.addrs[1]);
    let tls12 = |addr| {
        let b = client(Some(&ca), addr, &["a.test"]);
        b.max_tls_version(TlsVersion::TLS_1_2)
    };
    let tls13 = |addr| {
        let b = client(Some(&ca), addr, &["a.test"]);
        b.min_tls_version(TlsVersion::TLS_1_3)
    };

    // "1.3" only: a TLS 1.2 client is refused, a TLS 1.3 client served.
    let e = refused(tls12(only13), &url("a.test", only13, "/")).await;
    assert!(
        e.is_connect(),
        "not a handshake failure: {}",
        error_chain(&e)
    );
    let (status, ..) = fetch(&tls13(only13).build().unwrap(), &url("a.test", only13, "/")).await;
    assert_eq!(status, StatusCode::OK);

    // "1.2" only: the other way round.
    let (status, ..) = fetch(&tls12(only12).build().unwrap(), &url("a.test", only12, "/")).await;
    assert_eq!(status, StatusCode::OK);
    let e = refused(tls13(only12), &url("a.test", only12, "/")).await;
    assert!(
        e.is_connect(),
        "not a handshake failure: {}",
        error_chain(&e)
    );
}

/// The server's order decides the cipher suite: AES-128-GCM first (SHA-256 key schedule with
/// hardware help, faster bulk cipher) even when the client asks for AES-256 or ChaCha20 first;
/// a client offering only AES-256 still gets it. TLS 1.2 follows the same order.
/// A raw TLS connection to `addr` as "a.test", handshake bounded by `STEP`.
async fn tls_connect(
    addr: std::net::SocketAddr,
    config: rustls::ClientConfig,
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    let handshake = async {
        let tcp = tokio::net::TcpStream::connect(addr).await?;
        let name = rustls_pki_types::ServerName::try_from("a.test").unwrap();
        connector.connect(name, tcp).await
    };
    tokio::time::timeout(STEP, handshake)
        .await
        .expect("handshake in time")
        .expect("handshake")
}

#[tokio::test]
async fn the_server_prefers_aes_128_gcm_whatever_the_client_order() {
    use rustls::crypto::aws_lc_rs::cipher_suite as cs;
    use rustls::CipherSuite as S;
    let ca = Ca::new("Suites CA");
    let dir = site(&ca, &["a.test"]);
    let server = serve(dir.path(), &https_endpoint(""), None).await;
    let roots = ca.rustls_roots();
    let cases = [
        (
            vec![cs::TLS13_AES_256_GCM_SHA384, cs::TLS13_AES_128_GCM_SHA256],
            S::TLS13_AES_128_GCM_SHA256,
        ),
        (
            vec![
                cs::TLS13_CHACHA20_POLY1305_SHA256,
                cs::TLS13_AES_128_GCM_SHA256,
            ],
            S::TLS13_AES_128_GCM_SHA256,
        ),
        (
            vec![cs::TLS13_AES_256_GCM_SHA384],
            S::TLS13_AES_256_GCM_SHA384,
        ),
        (
            vec![
                cs::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
                cs::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
            ],
            S::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        ),
    ];
    for (offered, expected) in cases {
        let provider = rustls::crypto::CryptoProvider {
            cipher_suites: offered.clone(),
            ..rustls::crypto::aws_lc_rs::default_provider()
        };
        let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(provider))
            .with_protocol_versions(rustls::ALL_VERSIONS)
            .unwrap()
            .with_root_certificates(roots.clone())
            .with_no_client_auth();
        let tls = tls_connect(server.addr(), config).await;
        let suite = tls.get_ref().1.negotiated_cipher_suite().expect("a suite");
        assert_eq!(suite.suite(), expected, "client offered {offered:?}");
    }
}

/// A TLS connection idle past `RELEASE_IDLE_AFTER` keeps its TLS session while hyper's state
/// is released: the next requests on it are decrypted and answered, and the keep-alive
/// timeout still ends it with TLS's close_notify (a clean end of stream, not a reset).
#[tokio::test]
async fn an_idle_https_connection_serves_on_after_its_release() {
    use tokio::io::AsyncWriteExt;
    let ca = Ca::new("Idle CA");
    let dir = site(&ca, &["a.test"]);
    let toml = "[limits]\nkeep_alive_timeout = \"600ms\"\n".to_string()
        + &https_endpoint("protocols = [\"http1\"]");
    let server = serve(dir.path(), &toml, None).await;
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(ca.rustls_roots())
        .with_no_client_auth();
    let mut tls = tls_connect(server.addr(), config).await;
    for _ in 0..3 {
        tls.write_all(b"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n")
            .await
            .unwrap();
        let resp = common::read_response(&mut tls).await;
        assert!(
            resp.starts_with("HTTP/1.1 200") && resp.ends_with(INDEX),
            "{resp}"
        );
        tokio::time::sleep(harrier::limits::RELEASE_IDLE_AFTER * 5).await;
    }
    let idle = std::time::Instant::now();
    let mut rest = Vec::new();
    let end = tokio::time::timeout(
        STEP,
        tokio::io::AsyncReadExt::read_to_end(&mut tls, &mut rest),
    )
    .await
    .expect("closed in time");
    assert!(end.is_ok(), "not a clean close: {end:?}");
    assert!(rest.is_empty());
    let waited = idle.elapsed();
    assert!(
        waited >= std::time::Duration::from_millis(300),
        "closed after {waited:?}"
    );
}

/// Rewrites the PKCS#8 key `path` in its traditional form (PKCS#1 for RSA, SEC1 for EC) with
/// the openssl command, and checks that it now carries `label`.
fn to_traditional(path: &Path, label: &str) {
    let converted = path.with_extension("traditional");
    let out = Command::new("openssl")
        .args(["pkey", "-traditional", "-in"])
        .arg(path)
        .arg("-out")
        .arg(&converted)
        .output()
        .expect("the openssl command must be installed (.ci/run installs it)");
    assert!(
        out.status.success(),
        "openssl pkey: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::rename(&converted, path).unwrap();
    let pem = std::fs::read_to_string(path).unwrap();
    assert!(
        pem.starts_with(&format!("-----BEGIN {label}-----")),
        "{pem}"
    );
}

#[tokio::test]
async fn every_key_kind_and_format_is_served() {
    // (name, algorithm, key format: None = PKCS#8 as rcgen writes it, or the PEM label of the
    // traditional format openssl converts it to)
    let kinds: [(&str, Alg, Option<&str>); 7] = [
        ("p256.test", Alg::P256, None),
        ("p384.test", Alg::P384, None),
        ("ed25519.test", Alg::Ed25519, None),
        ("rsa.test", Alg::Rsa, None),
        ("p256-sec1.test", Alg::P256, Some("EC PRIVATE KEY")),
        ("p384-sec1.test", Alg::P384, Some("EC PRIVATE KEY")),
        ("rsa-pkcs1.test", Alg::Rsa, Some("RSA PRIVATE KEY")),
    ];
    let ca = Ca::new("Keys CA");
    let dir = tempfile::tempdir().unwrap();
    let mut tables = Vec::new();
    for (name, alg, traditional) in kinds {
        let (_, key) = ca.server_with(&[name], alg).write(dir.path(), name);
        let pem = std::fs::read_to_string(&key).unwrap();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"), "{pem}");
        if let Some(label) = traditional {
            to_traditional(&key, label);
        }
        tables.push(cert_toml(name));
    }
    // A chain: the leaf is signed by an intermediate that only the file carries; the client
    // trusts the root alone. The same leaf without its intermediate cannot be verified.
    let intermediate = ca.intermediate("Keys Intermediate CA");
    let chained = intermediate.server(&["chain.test"]);
    chained.write(dir.path(), "chain.test");
    tables.push(cert_toml("chain.test"));
    std::fs::write(dir.path().join("nochain.test.pem"), &chained.cert).unwrap();
    std::fs::write(dir.path().join("nochain.test.key"), &chained.key).unwrap();

    let toml = format!(
        "[[endpoints]]\nurl = \"https://127.0.0.1:0\"\ncertificates = [{}]\n\n\
         [[endpoints]]\nurl = \"https://127.0.0.1:0\"\ncertificate = {}\n",
        tables.join(", "),
        cert_toml("nochain.test")
    );
    let server = serve(dir.path(), &toml, Some(whoami())).await;
    let addr = server.addr();
    for name in kinds.map(|k| k.0).into_iter().chain(["chain.test"]) {
        for h1 in [false, true] {
            let b = client(Some(&ca), addr, &[name]);
            let b = if h1 { b.http1_only() } else { b };
            let resp = b.build().unwrap().get(url(name, addr, "/")).send().await;
            let resp = resp.unwrap_or_else(|e| panic!("{name}: {}", error_chain(&e)));
            assert_eq!(resp.status(), StatusCode::OK, "{name}");
            assert_eq!(peer_names(&resp), [name]);
            assert!(resp
                .text()
                .await
                .unwrap()
                .starts_with(&format!("sni={name} ")));
        }
    }
    let leaf_only = server.addrs[1];
    let e = refused(
        client(Some(&ca), leaf_only, &["chain.test"]),
        &url("chain.test", leaf_only, "/"),
    )
    .await;
    assert!(
        error_chain(&e).contains("UnknownIssuer"),
        "{}",
        error_chain(&e)
    );
}

#[tokio::test]
async fn loopback_https_without_a_certificate_gets_a_development_certificate() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("index.html"), INDEX).unwrap();
    let (logs, _guard) = Logs::capture();
    let toml = "[[endpoints]]\nurl = \"https://127.0.0.1:0\"\n";
    let server = serve(dir.path(), toml, None).await;
    assert!(
        logs.text().contains("DEVELOPMENT certificate"),
        "{}",
        logs.text()
    );
    for host in ["127.0.0.1", "localhost"] {
        let b = client(None, server.addr(), &[host]);
        let resp = b
            .build()
            .unwrap()
            .get(url(host, server.addr(), "/"))
            .send()
            .await;
        let resp = resp.unwrap_or_else(|e| panic!("{host}: {}", error_chain(&e)));
        let names = peer_names(&resp);
        assert!(
            names.iter().any(|n| n == "localhost") && names.iter().any(|n| n == "127.0.0.1"),
            "{names:?}"
        );
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.text().await.unwrap(), INDEX);
    }
    // Not signed by anything a client trusts.
    let other = Ca::new("Unrelated CA");
    refused(
        client(Some(&other), server.addr(), &["localhost"]),
        &url("localhost", server.addr(), "/"),
    )
    .await;
}

#[tokio::test]
async fn dev_cert_command_writes_a_certificate_the_server_serves() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("index.html"), INDEX).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_harrier"))
        .args(["dev-cert", "--out"])
        .arg(dir.path().join("certs"))
        .args(["--host", "example.test"])
        .output()
        .expect("run harrier dev-cert");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cert_pem = std::fs::read_to_string(dir.path().join("certs/cert.pem")).unwrap();
    let key = dir.path().join("certs/key.pem");
    assert!(std::fs::read_to_string(&key)
        .unwrap()
        .contains("PRIVATE KEY"));
    let names = pem_names(&cert_pem);
    for name in ["localhost", "127.0.0.1", "example.test"] {
        assert!(names.iter().any(|n| n == name), "{name} not in {names:?}");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "key.pem is readable by others: {mode:o}");
    }

    let toml = "[[endpoints]]\nurl = \"https://127.0.0.1:0\"\n\
                certificate = { path = \"certs/cert.pem\", key = \"certs/key.pem\" }\n";
    let server = serve(dir.path(), toml, None).await;
    let root = reqwest::Certificate::from_pem(cert_pem.as_bytes()).unwrap();
    let b = client_trusting(Some(root), server.addr(), &["example.test"]);
    let (status, version, body) = fetch(
        &b.build().unwrap(),
        &url("example.test", server.addr(), "/"),
    )
    .await;
    assert_eq!((status, version), (StatusCode::OK, Version::HTTP_2));
    assert_eq!(body, INDEX.as_bytes());
}

#[tokio::test]
async fn broken_certificate_files_stop_the_server_naming_the_file() {
    let ca = Ca::new("Errors CA");
    let dir = site(&ca, &["a.test"]);
    let d = dir.path();
    ca.server(&["b.test"]).write(d, "other");
    std::fs::write(
        d.join("garbage.pem"),
        "-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    std::fs::write(d.join("noise.txt"), "just some text\n").unwrap();
    // (certificate, key, the file the message must name)
    let cases = [
        ("missing.pem", "site.key", "missing.pem"),
        ("site.pem", "missing.key", "missing.key"),
        ("site.pem", "other.key", "other.key"),
        ("garbage.pem", "site.key", "garbage.pem"),
        ("noise.txt", "site.key", "noise.txt"),
        ("site.pem", "noise.txt", "noise.txt"),
        ("site.pem", "site.pem", "site.pem"),
    ];
    for (cert, key, named) in cases {
        let toml = format!(
            "[[endpoints]]\nurl = \"https://127.0.0.1:0\"\n\
             certificate = {{ path = \"{cert}\", key = \"{key}\" }}\n"
        );
        let message = bind_error(d, &toml).await;
        let full = d.join(named).display().to_string();
        assert!(
            message.contains(&full),
            "{cert} + {key}: {message:?} does not name {full}"
        );
    }
    // A key that belongs to another certificate: both files are named.
    let toml = https_endpoint("").replace("site.key", "other.key");
    let message = bind_error(d, &toml).await;
    assert!(message.contains("site.pem"), "{message}");
}

#[tokio::test]
async fn an_expired_certificate_starts_with_a_loud_warning() {
    let ca = Ca::new("Expired CA");
    let dir = site(&ca, &["a.test"]);
    ca.expired_server(&["a.test"]).write(dir.path(), "site");
    let (logs, _guard) = Logs::capture();
    let server = serve(dir.path(), &https_endpoint(""), None).await;
    let warned = logs.text();
    assert!(
        warned.contains("WARN") && warned.contains("EXPIRED") && warned.contains("site.pem"),
        "{warned}"
    );
    // Served (a client that checks nothing gets it) ...
    let (status, _, body) = fetch(
        &client(None, server.addr(), &["a.test"]).build().unwrap(),
        &url("a.test", server.addr(), "/"),
    )
    .await;
    assert_eq!(
        (status, body.as_slice()),
        (StatusCode::OK, INDEX.as_bytes())
    );
    // ... and really expired: a client trusting its CA refuses it.
    let e = refused(
        client(Some(&ca), server.addr(), &["a.test"]),
        &url("a.test", server.addr(), "/"),
    )
    .await;
    assert!(
        error_chain(&e).to_ascii_lowercase().contains("expired"),
        "{}",
        error_chain(&e)
    );
}

/// Runs curl (bounded) against the in-process server without blocking its runtime.
async fn curl(args: &[&str]) -> String {
    let run = tokio::process::Command::new("curl")
        .args(["--silent", "--show-error", "--max-time", "10", "-i"])
        .args(args)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(STEP, run)
        .await
        .expect("curl finished in time")
        .expect("curl must be installed (.ci/run installs it)");
    assert!(
        out.status.success(),
        "curl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn curl_gets_a_page_over_http1_and_http2() {
    let ca = Ca::new("curl CA");
    let dir = site(&ca, &["a.test"]);
    let ca_file = ca.write(dir.path(), "ca.pem");
    let server = serve(dir.path(), &https_endpoint(""), None).await;
    let port = server.addr().port();
    let resolve = format!("a.test:{port}:127.0.0.1");
    let target = format!("https://a.test:{port}/index.html");
    let ca_file = ca_file.to_str().unwrap();
    for (flag, status_line) in [("--http1.1", "HTTP/1.1 200"), ("--http2", "HTTP/2 200")] {
        let out = curl(&[flag, "--cacert", ca_file, "--resolve", &resolve, &target]).await;
        assert!(out.starts_with(status_line), "{flag}: {out}");
        let (head, body) = out.split_once("\r\n\r\n").expect("a head and a body");
        assert!(
            head.to_ascii_lowercase().contains("\r\nserver: harrier"),
            "{head}"
        );
        assert_eq!(body, INDEX, "{flag}");
    }
}

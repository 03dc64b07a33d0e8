//! A real browser: Debian's headless Chromium loads a page from harrier over HTTP/2 (TLS,
//! ALPN) and then over HTTP/3 (QUIC on the same port), and the page itself reports which
//! protocol the browser used (`nextHopProtocol` of its navigation timing entry).
//!
//! Chromium must be installed (`.ci/run` installs the `chromium` package): without it the
//! test fails rather than skips.

mod common;

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::pki::{self, Ca};

/// One browser run (start, load, dump, exit); a cold start on a slow machine takes seconds.
const BROWSER_RUN: Duration = Duration::from_secs(60);

/// The page: an inline script writes the protocol of its own navigation into `#protocol`.
const PAGE: &str = r#"<!doctype html>
<html><head><meta charset="utf-8"><title>harrier browser test</title></head>
<body><p id="protocol">script did not run</p>
<script>
  const nav = performance.getEntriesByType("navigation")[0];
  document.getElementById("protocol").textContent =
    "next-hop:" + (nav ? nav.nextHopProtocol || "(empty)" : "(no navigation entry)");
</script>
</body></html>
"#;

/// The base64 of the SHA-256 of the leaf certificate's SubjectPublicKeyInfo: what
/// `--ignore-certificate-errors-spki-list` takes (it trusts that key for TLS and QUIC alike).
fn spki_hash(cert_pem: &str) -> String {
    let (_, pem) = x509_parser::pem::parse_x509_pem(cert_pem.as_bytes()).expect("leaf PEM");
    let (_, cert) = x509_parser::parse_x509_certificate(&pem.contents).expect("leaf certificate");
    let spki = cert.tbs_certificate.subject_pki.raw;
    // SHA-256 from the crypto provider harrier already uses, rather than another crate.
    let suite = rustls::crypto::aws_lc_rs::cipher_suite::TLS13_AES_128_GCM_SHA256
        .tls13()
        .expect("a TLS 1.3 suite");
    base64(suite.common.hash_provider.hash(spki).as_ref())
}

/// Standard base64 with padding.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            out.push(match i <= chunk.len() {
                true => char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]),
                false => '=',
            });
        }
    }
    out
}

/// Runs headless Chromium with a fresh profile on `url` plus `extra` flags, and returns the
/// DOM it dumps after the page has loaded. Bounded by [`BROWSER_RUN`]: on timeout the
/// browser's whole process group is killed.
async fn dump_dom(spki: &str, url: &str, extra: &[String]) -> String {
    let profile = tempfile::tempdir().expect("tempdir");
    let mut cmd = tokio::process::Command::new("chromium");
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        "--no-proxy-server",
        // Shared memory in /tmp: a container's /dev/shm is often too small for Chromium.
        "--disable-dev-shm-usage",
    ])
    .arg(format!("--user-data-dir={}", profile.path().display()))
    .arg(format!("--ignore-certificate-errors-spki-list={spki}"))
    .args(extra)
    .args(["--dump-dom", url])
    // Whatever Chromium writes outside its profile (~/.pki, caches) stays in the temp dir.
    .env("HOME", profile.path())
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .kill_on_drop(true);
    // Its own process group, so the whole browser (renderers, GPU process) can be killed.
    #[cfg(unix)]
    cmd.process_group(0);
    let child = match cmd.spawn() {
        Ok(child) => child,
        Err(e) => panic!(
            "cannot run chromium ({e}): this test needs Debian's chromium package \
             (apt-get install chromium; .ci/run installs it)"
        ),
    };
    let pid = child.id().expect("chromium pid");
    let started = Instant::now();
    let output = match tokio::time::timeout(BROWSER_RUN, child.wait_with_output()).await {
        Ok(output) => output.expect("wait for chromium"),
        Err(_) => {
            kill_group(pid);
            panic!("chromium did not finish loading {url} within {BROWSER_RUN:?}");
        }
    };
    let dom = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success() && !dom.is_empty(),
        "chromium on {url} ({:?}, {:?}):\nstdout:\n{dom}\nstderr:\n{}",
        output.status,
        started.elapsed(),
        tail(&String::from_utf8_lossy(&output.stderr), 40),
    );
    dom
}

/// Kills the process group `pgid` (the browser and its helpers), ignoring a group already
/// gone.
fn kill_group(pgid: u32) {
    let _ = std::process::Command::new("kill")
        .args(["-KILL", "--", &format!("-{pgid}")])
        .stderr(Stdio::null())
        .status();
}

/// The last `n` lines of `text`, without Chromium's complaints about a missing D-Bus.
fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.contains("dbus")).collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// What the page wrote into `#protocol`, from a dumped DOM.
fn reported_protocol(dom: &str) -> &str {
    const START: &str = r#"<p id="protocol">"#;
    let at = dom
        .find(START)
        .unwrap_or_else(|| panic!("no #protocol element in the DOM:\n{dom}"));
    let text = &dom[at + START.len()..];
    let text = &text[..text.find('<').unwrap_or(text.len())];
    text.strip_prefix("next-hop:")
        .unwrap_or_else(|| panic!("the page did not report its protocol: {text:?}\n{dom}"))
}

#[tokio::test]
async fn chromium_loads_a_page_over_h2_and_h3() {
    let site = tempfile::tempdir().expect("tempdir");
    std::fs::write(site.path().join("index.html"), PAGE).expect("write index.html");
    let leaf = Ca::new("harrier browser test CA").server(&["localhost", "127.0.0.1"]);
    leaf.write(site.path(), "site");
    let spki = spki_hash(&leaf.cert);

    let toml = pki::https_endpoint(r#"protocols = ["http1", "http2", "http3"]"#);
    let bound = pki::bind(site.path(), &toml, None).await.expect("bind");
    let tcp: SocketAddr = bound.local_addrs()[0];
    let udp: SocketAddr = bound.quic_addrs()[0];
    assert_eq!(
        tcp.port(),
        udp.port(),
        "HTTP/3 listens on the TCP port's number"
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(bound.serve(async move {
        let _ = stopped.await;
    }));
    let url = format!("https://127.0.0.1:{}/", tcp.port());

    // HTTP/2: TCP + TLS, the protocol picked by ALPN. QUIC is off, so that an alt-svc
    // learned along the way cannot move the navigation to HTTP/3.
    let t = Instant::now();
    let dom = dump_dom(&spki, &url, &["--disable-quic".to_owned()]).await;
    assert_eq!(reported_protocol(&dom), "h2", "over TCP; DOM:\n{dom}");
    let h2_time = t.elapsed();

    // HTTP/3: a fresh profile, with QUIC forced for this origin (UDP to the same port).
    let t = Instant::now();
    let force = format!("--origin-to-force-quic-on=127.0.0.1:{}", udp.port());
    let dom = dump_dom(&spki, &url, &["--enable-quic".to_owned(), force]).await;
    assert_eq!(reported_protocol(&dom), "h3", "over QUIC; DOM:\n{dom}");
    let h3_time = t.elapsed();
    eprintln!("chromium runs: h2 {h2_time:?}, h3 {h3_time:?}");

    drop(stop);
    tokio::time::timeout(common::STEP, server)
        .await
        .expect("server stops in time")
        .expect("server task");
}

#[test]
fn base64_is_rfc4648() {
    let cases = [
        ("", ""),
        ("f", "Zg=="),
        ("fo", "Zm8="),
        ("foo", "Zm9v"),
        ("foob", "Zm9vYg=="),
    ];
    for (plain, encoded) in cases {
        assert_eq!(base64(plain.as_bytes()), encoded, "{plain:?}");
    }
}

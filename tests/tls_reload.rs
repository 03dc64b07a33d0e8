//! Certificates reloaded while serving, over real sockets: files replaced on disk are picked
//! up by new handshakes (polling, or at once on the reload handle), open connections keep
//! theirs, and a broken file keeps the old certificate until a valid one arrives.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use common::pki::*;
use reqwest::{StatusCode, Version};

/// How long a reload may take to show: two 2 s polls, a transient mismatch, and slack.
const RELOAD: Duration = Duration::from_secs(20);

/// Replaces `dir/<stem>.pem` and `.key` the way deploy tools do: write aside, then rename.
fn replace(leaf: &Leaf, dir: &Path, stem: &str) {
    let staging = tempfile::tempdir_in(dir).unwrap();
    let (cert, key) = leaf.write(staging.path(), stem);
    std::fs::rename(key, dir.join(format!("{stem}.key"))).unwrap();
    std::fs::rename(cert, dir.join(format!("{stem}.pem"))).unwrap();
}

/// Polls new handshakes to `host` (bounded by [`RELOAD`]) until one presents `names`.
async fn wait_for_certificate(ca: &Ca, addr: SocketAddr, host: &str, names: &[&str]) {
    let start = Instant::now();
    let mut last = None;
    while start.elapsed() < RELOAD {
        match presented(Some(ca), addr, host).await {
            Ok(got) if got == names => return,
            other => last = Some(other.map_err(|e| error_chain(&e))),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{host} never presented {names:?} within {RELOAD:?}; last: {last:?}");
}

/// A GET on `client`'s pooled connection: the names of that connection's certificate.
async fn names_on(client: &reqwest::Client, target: &str, version: Version) -> Vec<String> {
    let resp = client.get(target).send().await;
    let resp = resp.unwrap_or_else(|e| panic!("{target}: {}", error_chain(&e)));
    assert_eq!((resp.status(), resp.version()), (StatusCode::OK, version));
    let names = peer_names(&resp);
    assert_eq!(resp.text().await.unwrap(), INDEX);
    names
}

#[tokio::test]
async fn replaced_files_reach_new_handshakes_while_open_connections_keep_theirs() {
    let ca = Ca::new("Reload CA");
    let dir = site(&ca, &["a.test", "v1.a.test"]);
    let server = serve(dir.path(), &https_endpoint(""), None).await;
    let addr = server.addr();
    let target = url("a.test", addr, "/");
    // One HTTP/2 and one kept-alive HTTP/1.1 connection, opened before the change.
    let h2 = client(Some(&ca), addr, &["a.test"]).build().unwrap();
    let h1 = client(Some(&ca), addr, &["a.test"]).http1_only();
    let h1 = h1.build().unwrap();
    for (c, version) in [(&h2, Version::HTTP_2), (&h1, Version::HTTP_11)] {
        assert_eq!(names_on(c, &target, version).await, ["a.test", "v1.a.test"]);
    }

    replace(&ca.server(&["a.test", "v2.a.test"]), dir.path(), "site");
    wait_for_certificate(&ca, addr, "a.test", &["a.test", "v2.a.test"]).await;

    // The connections opened before still answer, on their original handshake.
    for (c, version) in [(&h2, Version::HTTP_2), (&h1, Version::HTTP_11)] {
        assert_eq!(names_on(c, &target, version).await, ["a.test", "v1.a.test"]);
    }
}

#[tokio::test]
async fn a_broken_file_keeps_the_old_certificate_until_a_valid_one_arrives() {
    let ca = Ca::new("Reload CA");
    let dir = site(&ca, &["a.test", "v1.a.test"]);
    let (logs, _guard) = Logs::capture();
    let server = serve(dir.path(), &https_endpoint(""), None).await;
    let addr = server.addr();
    let v1 = ["a.test", "v1.a.test"];
    assert_eq!(names_for(Some(&ca), addr, "a.test").await, v1);

    // Garbage in place of the certificate; a forced reload must fail and change nothing.
    let failed = "certificate reload failed, keeping the old certificate";
    let staging = dir.path().join("garbage.tmp");
    std::fs::write(&staging, "-----BEGIN CERTIFICATE-----\ngarbage\n").unwrap();
    std::fs::rename(&staging, dir.path().join("site.pem")).unwrap();
    for _ in 0..2 {
        let seen = logs.count(failed);
        server.reload.notify_one();
        logs.wait_for(failed, seen).await;
        for _ in 0..3 {
            assert_eq!(names_for(Some(&ca), addr, "a.test").await, v1);
        }
    }
    assert!(logs.text().contains("site.pem"), "{}", logs.text());

    // A valid pair afterwards is picked up by polling alone.
    replace(&ca.server(&["a.test", "v2.a.test"]), dir.path(), "site");
    wait_for_certificate(&ca, addr, "a.test", &["a.test", "v2.a.test"]).await;
    // And a forced reload of the same files keeps serving it.
    let reloaded = logs.count("certificates reloaded");
    server.reload.notify_one();
    logs.wait_for("certificates reloaded", reloaded).await;
    let names = names_for(Some(&ca), addr, "a.test").await;
    assert_eq!(names, ["a.test", "v2.a.test"]);
}

#[tokio::test]
async fn the_certificates_directory_is_read_again_when_it_changes() {
    let ca = Ca::new("Directory reload CA");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("index.html"), INDEX).unwrap();
    let certs = dir.path().join("certs");
    std::fs::create_dir(&certs).unwrap();
    ca.server(&["a.dir.test", "v1.a.dir.test"])
        .write(&certs, "a.dir.test");
    let toml = "[[endpoints]]\nurl = \"https://127.0.0.1:0\"\ncertificates_dir = \"certs\"\n";
    let server = serve(dir.path(), toml, None).await;
    let addr = server.addr();
    let v1 = ["a.dir.test", "v1.a.dir.test"];
    assert_eq!(names_for(Some(&ca), addr, "a.dir.test").await, v1);
    // b.dir.test is unknown (and that answer is cached) ...
    assert_refused(Some(&ca), addr, "b.dir.test").await;

    // ... until its files appear; a replaced file is read again too.
    replace(&ca.server(&["b.dir.test"]), &certs, "b.dir.test");
    replace(
        &ca.server(&["a.dir.test", "v2.a.dir.test"]),
        &certs,
        "a.dir.test",
    );
    wait_for_certificate(&ca, addr, "b.dir.test", &["b.dir.test"]).await;
    let v2 = ["a.dir.test", "v2.a.dir.test"];
    wait_for_certificate(&ca, addr, "a.dir.test", &v2).await;
}

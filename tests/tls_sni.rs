//! Names over TLS, on real sockets: certificates chosen by SNI (configured, wildcard, unknown
//! names, the certificates directory), plain HTTP redirected to https, HSTS, and 421 when the
//! Host differs from the TLS server name.

mod common;

use common::pki::*;
use reqwest::header::{LOCATION, STRICT_TRANSPORT_SECURITY};
use reqwest::{StatusCode, Version};

#[tokio::test]
async fn certificates_are_chosen_by_sni() {
    let ca = Ca::new("SNI CA");
    let dir = tempfile::tempdir().unwrap();
    ca.server(&["a.test"]).write(dir.path(), "a");
    ca.server(&["b.test"]).write(dir.path(), "b");
    ca.server(&["*.wild.test"]).write(dir.path(), "wild");
    let certs = format!(
        "certificate = {}\ncertificates = [{}, {}]\n",
        cert_toml("a"),
        cert_toml("b"),
        cert_toml("wild")
    );
    let toml = format!(
        "[[endpoints]]\nurl = \"https://127.0.0.1:0\"\n{certs}\n\
         [[endpoints]]\nurl = \"https://127.0.0.1:0\"\n{certs}unknown_sni = \"refuse\"\n"
    );
    let server = serve(dir.path(), &toml, None).await;
    let (default, refuse) = (server.addrs[0], server.addrs[1]);

    for addr in [default, refuse] {
        for (host, cert) in [
            ("a.test", "a.test"),
            ("b.test", "b.test"),
            ("x.wild.test", "*.wild.test"),
            ("other-label.wild.test", "*.wild.test"),
        ] {
            assert_eq!(names_for(Some(&ca), addr, host).await, [cert], "{host}");
        }
    }
    // Unknown names (a wildcard covers exactly one label) and no SNI at all (an IP address):
    // the first certificate with unknown_sni = "default", no handshake with "refuse".
    for host in ["unknown.test", "wild.test", "a.b.wild.test", "127.0.0.1"] {
        assert_eq!(names_for(None, default, host).await, ["a.test"], "{host}");
        assert_refused(None, refuse, host).await;
    }
}

#[tokio::test]
async fn the_certificates_directory_is_searched_by_name_then_wildcard() {
    let ca = Ca::new("Directory CA");
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    std::fs::create_dir(&certs).unwrap();
    ca.server(&["a.dir.test"]).write(&certs, "a.dir.test");
    ca.server(&["*.dir.test"])
        .write(&certs, "_wildcard.dir.test");
    let toml = "[[endpoints]]\nurl = \"https://127.0.0.1:0\"\ncertificates_dir = \"certs\"\n";
    let server = serve(dir.path(), toml, None).await;
    let addr = server.addr();
    for _ in 0..2 {
        // The second round is answered from the store's cache.
        assert_eq!(
            names_for(Some(&ca), addr, "a.dir.test").await,
            ["a.dir.test"]
        );
        assert_eq!(
            names_for(Some(&ca), addr, "x.dir.test").await,
            ["*.dir.test"]
        );
    }
    // No file and no configured certificate to fall back on.
    assert_refused(None, addr, "other.test").await;
    assert_refused(None, addr, "x.y.dir.test").await;
}

#[tokio::test]
async fn plain_http_is_redirected_to_the_https_endpoint() {
    let ca = Ca::new("Redirect CA");
    let dir = site(&ca, &["example.test", "localhost", "127.0.0.1"]);
    std::fs::create_dir_all(dir.path().join("path")).unwrap();
    std::fs::write(dir.path().join("path/x"), "the page").unwrap();
    let toml = format!(
        "[[endpoints]]\nurl = \"http://127.0.0.1:0\"\nhttps_redirect = true\n\n{}",
        https_endpoint("")
    );
    let server = serve(dir.path(), &toml, None).await;
    let (http, https) = (server.addrs[0], server.addrs[1]);
    let client = client(Some(&ca), http, &["example.test"]).build().unwrap();
    let from = format!("http://example.test:{}/path/x?q=1&r=a%20b", http.port());
    let to = format!("https://example.test:{}/path/x?q=1&r=a%20b", https.port());
    for (method, status) in [
        (reqwest::Method::GET, StatusCode::MOVED_PERMANENTLY),
        (reqwest::Method::HEAD, StatusCode::MOVED_PERMANENTLY),
        (reqwest::Method::POST, StatusCode::PERMANENT_REDIRECT),
        (reqwest::Method::PUT, StatusCode::PERMANENT_REDIRECT),
    ] {
        let resp = client.request(method.clone(), &from).body("x").send().await;
        let resp = resp.unwrap_or_else(|e| panic!("{method}: {}", error_chain(&e)));
        assert_eq!(resp.status(), status, "{method}");
        assert_eq!(resp.headers()[LOCATION], to.as_str(), "{method}");
        assert!(!resp.headers().contains_key(STRICT_TRANSPORT_SECURITY));
    }
    // A client that follows the redirect ends on the https endpoint with the page.
    let follow = client_trusting(Some(ca.root()), https, &["example.test"]);
    let follow = follow.redirect(reqwest::redirect::Policy::limited(2));
    let resp = follow.build().unwrap().get(&from).send().await;
    let resp = resp.unwrap_or_else(|e| panic!("following the redirect: {}", error_chain(&e)));
    assert_eq!(resp.url().as_str(), to);
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.text().await.unwrap(), "the page");
}

#[tokio::test]
async fn hsts_is_sent_for_real_hosts_but_never_for_localhost() {
    let ca = Ca::new("HSTS CA");
    let dir = site(&ca, &["example.test", "localhost", "127.0.0.1"]);
    let toml = https_endpoint("hsts = { max_age = \"365d\", include_subdomains = true }");
    let server = serve(dir.path(), &toml, None).await;
    let addr = server.addr();
    for h1 in [false, true] {
        for (host, expected) in [
            ("example.test", Some("max-age=31536000; includeSubDomains")),
            ("localhost", None),
            ("127.0.0.1", None),
        ] {
            let b = client(Some(&ca), addr, &[host]);
            let b = if h1 { b.http1_only() } else { b };
            let resp = b.build().unwrap().get(url(host, addr, "/")).send().await;
            let resp = resp.unwrap_or_else(|e| panic!("{host}: {}", error_chain(&e)));
            let version = if h1 {
                Version::HTTP_11
            } else {
                Version::HTTP_2
            };
            assert_eq!((resp.status(), resp.version()), (StatusCode::OK, version));
            let hsts = resp.headers().get(STRICT_TRANSPORT_SECURITY);
            let hsts = hsts.map(|v| v.to_str().unwrap());
            assert_eq!(hsts, expected, "{host} over {version:?}");
        }
    }
}

#[tokio::test]
async fn a_host_that_differs_from_the_sni_gets_421_when_required() {
    let ca = Ca::new("421 CA");
    let dir = site(&ca, &["a.test", "b.test"]);
    let toml = https_endpoint("require_sni_host_match = true") + &https_endpoint("");
    let server = serve(dir.path(), &toml, None).await;
    let (strict, lenient) = (server.addrs[0], server.addrs[1]);
    for (addr, mismatch) in [
        (strict, StatusCode::MISDIRECTED_REQUEST),
        (lenient, StatusCode::OK),
    ] {
        let b = client(Some(&ca), addr, &["a.test", "b.test"]).http1_only();
        let client = b.build().unwrap();
        let target = url("a.test", addr, "/");
        // reqwest sends `Host: a.test:PORT`: the port does not count.
        let resp = client.get(&target).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        for host in ["b.test".to_owned(), format!("b.test:{}", addr.port())] {
            let resp = client.get(&target).header("host", &host).send().await;
            let resp = resp.unwrap_or_else(|e| panic!("{host}: {}", error_chain(&e)));
            assert_eq!(resp.version(), Version::HTTP_11);
            assert_eq!(resp.status(), mismatch, "Host: {host}");
        }
        let resp = client.get(&target).header("host", "A.TEST").send().await;
        assert_eq!(resp.unwrap().status(), StatusCode::OK, "Host: A.TEST");
    }
}

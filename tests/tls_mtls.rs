//! Client certificates (mutual TLS) over real sockets: `client_certificate = "require"` and
//! `"allow"` with `client_ca`, with certificates from the trusted CA (directly or through an
//! intermediate), from another CA, and none. The subject in the access log is checked
//! through the binary, in tests/cli.rs.

mod common;

use std::net::SocketAddr;

use common::pki::*;
use reqwest::StatusCode;

/// Three client CAs and what they issue: trusted, trusted through an intermediate, unknown.
struct Clients {
    trusted: Ca,
    other: Ca,
}

impl Clients {
    fn new() -> Clients {
        Clients {
            trusted: Ca::new("Trusted Clients CA"),
            other: Ca::new("Other Clients CA"),
        }
    }

    /// (who, identity, what the server must report: `Some(subject)`, or `None` = refused)
    fn cases(
        &self,
    ) -> Vec<(
        &'static str,
        Option<reqwest::Identity>,
        Option<&'static str>,
    )> {
        let issuing = self.trusted.intermediate("Trusted Clients Issuing CA");
        vec![
            (
                "alice (trusted CA)",
                Some(self.trusted.client("alice").identity()),
                Some("CN=alice"),
            ),
            (
                "bob (trusted CA, via an intermediate he sends)",
                Some(issuing.client("bob").identity()),
                Some("CN=bob"),
            ),
            (
                "mallory (another CA)",
                Some(self.other.client("mallory").identity()),
                None,
            ),
        ]
    }
}

/// GET / on `addr` as `identity`: the `client=` part of the whoami answer, or the error.
async fn whoami_as(
    server_ca: &Ca,
    addr: SocketAddr,
    identity: Option<reqwest::Identity>,
    h1: bool,
) -> Result<String, String> {
    let mut b = client(Some(server_ca), addr, &["a.test"]);
    if let Some(identity) = identity {
        b = b.identity(identity);
    }
    if h1 {
        b = b.http1_only();
    }
    let client = b.build().expect("client");
    let resp = client.get(url("a.test", addr, "/")).send().await;
    let resp = resp.map_err(|e| {
        assert!(!e.is_timeout(), "timed out instead of refused: {e}");
        error_chain(&e)
    })?;
    assert_eq!(resp.status(), StatusCode::OK);
    let text = resp.text().await.map_err(|e| error_chain(&e))?;
    let client = text.split_once(" client=").expect("whoami answer").1;
    Ok(client.to_owned())
}

/// Starts a server with a `require` endpoint and an `allow` endpoint, both trusting
/// `clients.trusted`, answering with [`whoami`].
async fn start(server_ca: &Ca, clients: &Clients) -> (tempfile::TempDir, Https) {
    let dir = site(server_ca, &["a.test"]);
    clients.trusted.write(dir.path(), "clients-ca.pem");
    let mtls = |mode: &str| {
        https_endpoint(&format!(
            "client_certificate = \"{mode}\"\nclient_ca = \"clients-ca.pem\""
        ))
    };
    let toml = mtls("require") + &mtls("allow");
    let server = serve(dir.path(), &toml, Some(whoami())).await;
    (dir, server)
}

/// Checks, over HTTP/2 and HTTP/1.1, what each of [`Clients::cases`] gets from `addr` and
/// that a client without a certificate gets `anonymous` (`None`: refused).
async fn check(server_ca: &Ca, clients: &Clients, addr: SocketAddr, anonymous: Option<&str>) {
    for h1 in [false, true] {
        let none = whoami_as(server_ca, addr, None, h1).await;
        match anonymous {
            Some(answer) => assert_eq!(none.as_deref(), Ok(answer), "no certificate"),
            None => assert!(none.is_err(), "no certificate was let in: {none:?}"),
        }
        for (who, identity, expected) in clients.cases() {
            let got = whoami_as(server_ca, addr, identity, h1).await;
            match expected {
                Some(subject) => assert_eq!(got.as_deref(), Ok(subject), "{who}"),
                None => assert!(got.is_err(), "{who} was let in: {got:?}"),
            }
        }
    }
}

#[tokio::test]
async fn require_refuses_a_missing_or_untrusted_client_certificate() {
    let (server_ca, clients) = (Ca::new("Server CA"), Clients::new());
    let (_dir, server) = start(&server_ca, &clients).await;
    check(&server_ca, &clients, server.addrs[0], None).await;
}

#[tokio::test]
async fn allow_serves_clients_without_a_certificate_and_verifies_those_who_send_one() {
    let (server_ca, clients) = (Ca::new("Server CA"), Clients::new());
    let (_dir, server) = start(&server_ca, &clients).await;
    // A certificate that is sent must verify, even when it is optional.
    check(&server_ca, &clients, server.addrs[1], Some("-")).await;
}

#[tokio::test]
async fn an_unusable_client_ca_stops_the_server_naming_the_file() {
    let server_ca = Ca::new("Server CA");
    let dir = site(&server_ca, &["a.test"]);
    std::fs::write(dir.path().join("garbage-ca.pem"), "not a certificate\n").unwrap();
    for file in ["missing-ca.pem", "garbage-ca.pem"] {
        let toml = https_endpoint(&format!(
            "client_certificate = \"require\"\nclient_ca = \"{file}\""
        ));
        let message = bind_error(dir.path(), &toml).await;
        assert!(message.contains(file), "{file}: {message}");
    }
}

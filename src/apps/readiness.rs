//! Whether a starting instance accepts requests: repeated connection attempts (`ready =
//! "tcp"`) or GET requests (`ready = "/path"`, 2xx or 3xx) until one succeeds. The caller
//! bounds the wait by `start_timeout` and by the process exiting.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::Empty;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tower_service::Service;

use crate::config::{Readiness, UpstreamTarget};
use crate::handlers::proxy::connect::Connector;

/// The pause after the first failed attempt; it grows by half each time, up to
/// [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(50);
const MAX_PAUSE: Duration = Duration::from_millis(250);
/// One connection attempt or probe request that takes longer than this has failed.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);

/// Resolves once `target` passes the `ready` check; never gives up by itself.
pub(super) async fn wait_ready(target: &UpstreamTarget, ready: &Readiness) {
    let mut pause = FIRST_PAUSE;
    loop {
        let ok = tokio::time::timeout(ATTEMPT_TIMEOUT, probe(target, ready)).await;
        if ok == Ok(true) {
            return;
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 3 / 2).min(MAX_PAUSE);
    }
}

/// One attempt, dialled like the proxy dials its upstreams: a connection, or for
/// `ready = "/path"` a `GET path` answered 2xx or 3xx.
async fn probe(target: &UpstreamTarget, ready: &Readiness) -> bool {
    let mut connector = Connector::new(target.clone(), None, ATTEMPT_TIMEOUT);
    let Readiness::Http(path) = ready else {
        // The connector dials its own target whatever the URI.
        return connector.call(http::Uri::default()).await.is_ok();
    };
    let authority = crate::handlers::proxy::authority(target);
    let Ok(request) = http::Request::get(format!("http://{authority}{path}"))
        .header(http::header::USER_AGENT, "harrier-readiness")
        .body(Empty::<Bytes>::new())
    else {
        return false;
    };
    let client = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(0)
        .build(connector);
    client
        .request(request)
        .await
        .is_ok_and(|r| r.status().is_success() || r.status().is_redirection())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::UpstreamScheme;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn tcp(port: u16) -> UpstreamTarget {
        UpstreamTarget::Tcp {
            scheme: UpstreamScheme::Http,
            host: "127.0.0.1".into(),
            port,
        }
    }

    /// Answers each connection's request with `status`.
    async fn server(status: &'static str) -> u16 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            loop {
                let (mut s, _) = listener.accept().await.unwrap();
                tokio::spawn(async move {
                    let mut buf = [0u8; 1024];
                    let _ = s.read(&mut buf).await;
                    let answer = format!(
                        "HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                    );
                    let _ = s.write_all(answer.as_bytes()).await;
                });
            }
        });
        port
    }

    #[tokio::test]
    async fn http_readiness_wants_2xx_or_3xx() {
        let http = |p: &str| Readiness::Http(p.to_string());
        let ok = server("200 OK").await;
        assert!(probe(&tcp(ok), &http("/healthz")).await);
        let redirect = server("302 Found").await;
        assert!(probe(&tcp(redirect), &http("/")).await);
        let unavailable = server("503 Service Unavailable").await;
        assert!(!probe(&tcp(unavailable), &http("/")).await);
        assert!(probe(&tcp(unavailable), &Readiness::Tcp).await);
    }

    #[tokio::test]
    async fn nothing_listening_is_not_ready() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        assert!(!probe(&tcp(port), &Readiness::Tcp).await);
        let target = tcp(port);
        let waited = tokio::time::timeout(
            Duration::from_millis(200),
            wait_ready(&target, &Readiness::Tcp),
        );
        assert!(waited.await.is_err());
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn http_readiness_over_a_unix_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.sock");
        let target = UpstreamTarget::Unix(path.clone());
        assert!(!probe(&target, &Readiness::Tcp).await, "no socket yet");
        let listener = tokio::net::UnixListener::bind(&path).unwrap();
        let request = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 1024];
            let n = s.read(&mut buf).await.unwrap();
            let answer = "HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n";
            s.write_all(answer.as_bytes()).await.unwrap();
            String::from_utf8_lossy(&buf[..n]).to_ascii_lowercase()
        });
        assert!(probe(&target, &Readiness::Http("/healthz".into())).await);
        let request = request.await.unwrap();
        assert!(
            request.starts_with("get /healthz http/1.1\r\n"),
            "{request}"
        );
        assert!(request.contains("host: localhost\r\n"), "{request}");
    }
}

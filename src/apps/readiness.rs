//! Whether a starting instance accepts requests: repeated connection attempts (`ready =
//! "tcp"`) or GET requests (`ready = "/path"`, 2xx or 3xx) until one succeeds. The caller
//! bounds the wait by `start_timeout` and by the process exiting.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::Empty;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::config::{Readiness, UpstreamTarget};

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

/// One attempt.
async fn probe(target: &UpstreamTarget, ready: &Readiness) -> bool {
    match (target, ready) {
        (UpstreamTarget::Tcp { host, port, .. }, ready) => {
            let Ok(stream) = tokio::net::TcpStream::connect((host.as_str(), *port)).await else {
                return false;
            };
            match ready {
                Readiness::Tcp => true,
                Readiness::Http(path) => http_ok(stream, &format!("{host}:{port}"), path).await,
            }
        }
        #[cfg(unix)]
        (UpstreamTarget::Unix(path), ready) => {
            let Ok(stream) = tokio::net::UnixStream::connect(path).await else {
                return false;
            };
            match ready {
                Readiness::Tcp => true,
                Readiness::Http(path) => http_ok(stream, "localhost", path).await,
            }
        }
        #[cfg(not(unix))]
        (UpstreamTarget::Unix(_), _) => false,
    }
}

/// Whether `GET path` over `stream` answers 2xx or 3xx.
async fn http_ok<S>(stream: S, host: &str, path: &str) -> bool
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let Ok((mut sender, conn)) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await
    else {
        return false;
    };
    let Ok(request) = http::Request::get(path)
        .header(http::header::HOST, host)
        .header(http::header::USER_AGENT, "harrier-readiness")
        .body(Empty::<Bytes>::new())
    else {
        return false;
    };
    let good = |r: hyper::Result<http::Response<hyper::body::Incoming>>| {
        r.is_ok_and(|r| r.status().is_success() || r.status().is_redirection())
    };
    let response = sender.send_request(request);
    tokio::pin!(conn, response);
    tokio::select! {
        r = &mut response => return good(r),
        _ = &mut conn => {}
    }
    // The connection ended (the server closed it after answering, say): the answer, if
    // any, is waiting.
    good(response.await)
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
}

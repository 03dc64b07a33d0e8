//! The accept loop: never dies on an accept error, enforces `max_concurrent_connections`.

use std::future::Future;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::Listener;
use crate::pipeline::{ConnInfo, EndpointInfo};

/// Counts open connections against an optional maximum, across all endpoints.
#[derive(Debug)]
pub struct ConnectionLimiter {
    max: Option<u64>,
    open: AtomicU64,
}

/// One open connection; released when dropped.
#[derive(Debug)]
pub struct ConnectionPermit(Arc<ConnectionLimiter>);

impl Drop for ConnectionPermit {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::AcqRel);
    }
}

impl ConnectionLimiter {
    /// A limiter allowing `max` connections (`None` = unlimited).
    pub fn new(max: Option<u64>) -> Arc<Self> {
        Arc::new(ConnectionLimiter {
            max,
            open: AtomicU64::new(0),
        })
    }

    /// A permit for one more connection, or `None` at the limit.
    pub fn try_acquire(self: &Arc<Self>) -> Option<ConnectionPermit> {
        let prev = self.open.fetch_add(1, Ordering::AcqRel);
        if self.max.is_some_and(|max| prev >= max) {
            self.open.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(ConnectionPermit(Arc::clone(self)))
    }

    /// Connections open now.
    pub fn open(&self) -> u64 {
        self.open.load(Ordering::Acquire)
    }
}

/// Accepts until `stop` is cancelled, spawning `serve` for each connection on `tracker`.
/// The listener is dropped (and its port closed) when this returns.
pub async fn accept_loop<F, Fut>(
    listener: Listener,
    endpoint: Arc<EndpointInfo>,
    limiter: Arc<ConnectionLimiter>,
    tracker: TaskTracker,
    stop: CancellationToken,
    serve: F,
) where
    F: Fn(AcceptedStream, ConnInfo) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut backoff = Duration::from_millis(10);
    loop {
        let accepted = tokio::select! {
            _ = stop.cancelled() => break,
            a = accept(&listener) => a,
        };
        match accepted {
            Ok((stream, remote)) => {
                backoff = Duration::from_millis(10);
                let Some(permit) = limiter.try_acquire() else {
                    tracing::debug!("max_concurrent_connections reached: refusing a connection");
                    drop(stream);
                    continue;
                };
                let info = ConnInfo {
                    remote,
                    endpoint: Arc::clone(&endpoint),
                    tls: None,
                };
                let fut = serve(stream, info);
                tracker.spawn(async move {
                    fut.await;
                    drop(permit);
                });
            }
            Err(e) if is_per_connection(&e) => continue,
            Err(e) => {
                // Out of descriptors or memory: wait for connections to close instead of
                // spinning or dying (the listener stays open, the kernel keeps queueing).
                tracing::error!(
                    "accept failed on {}: {e}; retrying in {backoff:?}",
                    endpoint.url
                );
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
        }
    }
}

/// An accepted connection of either kind.
pub enum AcceptedStream {
    /// TCP.
    Tcp(tokio::net::TcpStream),
    /// Unix domain socket.
    #[cfg(unix)]
    Unix(tokio::net::UnixStream),
}

async fn accept(listener: &Listener) -> io::Result<(AcceptedStream, Option<std::net::SocketAddr>)> {
    match listener {
        Listener::Tcp(l, _) => {
            let (s, addr) = l.accept().await?;
            // Inherited from the listener on Linux but not everywhere.
            let _ = s.set_nodelay(true);
            Ok((AcceptedStream::Tcp(s), Some(addr)))
        }
        #[cfg(unix)]
        Listener::Unix(l, _) => {
            let (s, _) = l.accept().await?;
            Ok((AcceptedStream::Unix(s), None))
        }
    }
}

/// Errors that concern one connection only; the next accept may succeed at once.
fn is_per_connection(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
    )
}

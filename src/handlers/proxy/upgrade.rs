//! Upgraded connections (WebSocket) tunnelled between the client and an upstream, counted
//! against `max_concurrent_upgraded_connections`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;

/// The server-wide count of upgraded connections and its limit.
#[derive(Debug)]
pub struct UpgradeLimit {
    open: AtomicU64,
    max: Option<u64>,
}

/// One upgraded connection counted until dropped.
#[derive(Debug)]
pub struct UpgradePermit(Arc<UpgradeLimit>);

impl UpgradeLimit {
    /// A limit of `max` (`None` = unlimited).
    pub fn new(max: Option<u64>) -> Arc<Self> {
        Arc::new(UpgradeLimit {
            open: AtomicU64::new(0),
            max,
        })
    }

    /// A permit, or `None` when `max` connections are already upgraded.
    pub fn acquire(self: &Arc<Self>) -> Option<UpgradePermit> {
        let max = self.max.unwrap_or(u64::MAX);
        self.open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()
            .map(|_| UpgradePermit(Arc::clone(self)))
    }

    /// Upgraded connections open now.
    pub fn open(&self) -> u64 {
        self.open.load(Ordering::Acquire)
    }
}

impl Drop for UpgradePermit {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Copies bytes both ways between the client's and the upstream's upgraded connections
/// until either side closes; runs in its own task.
/// `done` is cancelled when the tunnel closes.
pub fn tunnel(
    client: OnUpgrade,
    upstream: OnUpgrade,
    permit: UpgradePermit,
    label: String,
    done: tokio_util::sync::CancellationToken,
) {
    tokio::spawn(async move {
        let _done = done.drop_guard();
        let _permit = permit;
        let (client, upstream) = match tokio::try_join!(client, upstream) {
            Ok(pair) => pair,
            Err(e) => {
                tracing::debug!(upstream = %label, "upgrade did not complete: {e}");
                return;
            }
        };
        let mut client = TokioIo::new(client);
        let mut upstream = TokioIo::new(upstream);
        match tokio::io::copy_bidirectional(&mut client, &mut upstream).await {
            Ok((up, down)) => {
                tracing::debug!(upstream = %label, up, down, "upgraded connection closed")
            }
            Err(e) => tracing::debug!(upstream = %label, "upgraded connection ended: {e}"),
        }
    });
}

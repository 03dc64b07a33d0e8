//! State shared between one connection's I/O wrapper, its request service and its driver.
//!
//! The I/O wrapper enforces idle and head timeouts, and it needs to know whether a request is
//! being processed; the service knows that. Atomics keep the request path free of locks.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::task::AtomicWaker;
use tokio::sync::Notify;

/// Per-connection counters and signals.
#[derive(Debug)]
pub struct ConnShared {
    in_flight: AtomicUsize,
    /// Milliseconds after `epoch` at which the connection last became idle.
    idle_since_ms: AtomicU64,
    epoch: Instant,
    /// The task reading the connection, woken when the last request finishes.
    pub(crate) read_waker: AtomicWaker,
    /// Asks the connection driver for a graceful close (keep-alive timeout, GOAWAY on HTTP/2).
    pub(crate) close: Notify,
    /// The connection was handed to an upgraded protocol (WebSocket): its bytes are no
    /// longer HTTP, so head checks, idle and rate timers stop.
    upgraded: AtomicBool,
}

impl ConnShared {
    /// State for a connection accepted now.
    pub fn new() -> Arc<Self> {
        Arc::new(ConnShared {
            in_flight: AtomicUsize::new(0),
            idle_since_ms: AtomicU64::new(0),
            epoch: Instant::now(),
            read_waker: AtomicWaker::new(),
            close: Notify::new(),
            upgraded: AtomicBool::new(false),
        })
    }

    /// Requests being processed right now (more than one only on HTTP/2).
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }

    /// When the connection last had no request in flight.
    pub fn idle_since(&self) -> Instant {
        self.epoch + Duration::from_millis(self.idle_since_ms.load(Ordering::Acquire))
    }

    /// Marks the connection as upgraded (a 101 response is on its way out).
    pub fn mark_upgraded(&self) {
        self.upgraded.store(true, Ordering::Release);
    }

    /// Whether the connection carries an upgraded protocol now.
    pub fn is_upgraded(&self) -> bool {
        self.upgraded.load(Ordering::Acquire)
    }

    /// Marks a request as started; the guard marks it finished when dropped.
    pub fn start_request(self: &Arc<Self>) -> RequestGuard {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        RequestGuard(Arc::clone(self))
    }

    fn finish_request(&self) {
        if self.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            let ms = self.epoch.elapsed().as_millis() as u64;
            self.idle_since_ms.store(ms, Ordering::Release);
            self.read_waker.wake();
        }
    }
}

/// Counts one request as in flight until its response has been sent (or abandoned).
#[derive(Debug)]
pub struct RequestGuard(Arc<ConnShared>);

impl RequestGuard {
    /// The connection the request arrived on.
    pub fn conn(&self) -> &ConnShared {
        &self.0
    }
}

impl Drop for RequestGuard {
    fn drop(&mut self) {
        self.0.finish_request();
    }
}

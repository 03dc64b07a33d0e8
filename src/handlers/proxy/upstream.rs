//! Upstream servers and the set a proxy handler balances over.
//!
//! A `proxy` handler's set is fixed by the settings file; an `app` handler's set belongs to
//! the app's supervisor, which swaps instances in and out as they start, become ready, are
//! recycled or crash. Requests hold an `Arc<Upstream>` while in flight, so an instance
//! taken out of the set is drained by watching [`Upstream::in_flight`] fall to zero.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use tokio::sync::{watch, Notify};

use crate::config::UpstreamTarget;

/// One upstream server with its live counters and health.
#[derive(Debug)]
pub struct Upstream {
    /// Where it is.
    pub target: UpstreamTarget,
    /// Its share of traffic relative to the others.
    pub weight: u32,
    /// How logs and error pages name it (`http://127.0.0.1:5000`, `dashboard#1`).
    pub label: String,
    in_flight: AtomicUsize,
    requests: AtomicU64,
    failures: AtomicU32,
    /// Milliseconds after [`epoch`] until which passive health keeps it out; 0 = not down.
    down_until: AtomicU64,
    /// Set by active health checks.
    probe_down: AtomicBool,
    /// Someone waits in [`Upstream::drained`]: the last request to finish must notify.
    draining: AtomicBool,
    drained: Notify,
}

/// A fixed instant that atomics can count milliseconds from.
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn now_ms() -> u64 {
    epoch().elapsed().as_millis() as u64
}

impl Upstream {
    /// An upstream that is up, with no traffic yet.
    pub fn new(target: UpstreamTarget, weight: u32, label: impl Into<String>) -> Arc<Self> {
        Arc::new(Upstream {
            target,
            weight: weight.max(1),
            label: label.into(),
            in_flight: AtomicUsize::new(0),
            requests: AtomicU64::new(0),
            failures: AtomicU32::new(0),
            down_until: AtomicU64::new(0),
            probe_down: AtomicBool::new(false),
            draining: AtomicBool::new(false),
            drained: Notify::new(),
        })
    }

    /// Requests being answered by it right now.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Requests sent to it since it was created (for recycling after N requests).
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Whether it may get traffic: neither marked down by failures nor by probes.
    pub fn is_up(&self) -> bool {
        if self.probe_down.load(Ordering::Relaxed) {
            return false;
        }
        let until = self.down_until.load(Ordering::Relaxed);
        until == 0 || now_ms() >= until
    }

    /// Counts a request as started; the guard counts it finished when dropped.
    pub fn start_request(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.requests.fetch_add(1, Ordering::Relaxed);
        InFlight(Arc::clone(self))
    }

    /// A request failed (connection error, timeout, unhealthy status): after `max_failures`
    /// in a row it is kept out for `fail_duration`. Returns whether this marked it down.
    pub fn record_failure(&self, max_failures: u32, fail_duration: Duration) -> bool {
        let failures = self.failures.fetch_add(1, Ordering::Relaxed) + 1;
        if failures >= max_failures.max(1) {
            self.failures.store(0, Ordering::Relaxed);
            let until = now_ms() + fail_duration.as_millis() as u64;
            self.down_until.store(until.max(1), Ordering::Relaxed);
            return true;
        }
        false
    }

    /// A request succeeded: the failure count starts over.
    pub fn record_success(&self) {
        if self.failures.load(Ordering::Relaxed) != 0 {
            self.failures.store(0, Ordering::Relaxed);
        }
    }

    /// Resolves once no request is in flight on it: an app instance taken out of the set is
    /// stopped when its last request has been answered. Only while someone waits here does
    /// finishing a request cost more than an atomic decrement.
    pub async fn drained(&self) {
        // SeqCst pairs with `InFlight::drop`: either it sees `draining` and notifies, or
        // this sees its decrement.
        self.draining.store(true, Ordering::SeqCst);
        loop {
            let notified = self.drained.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.in_flight.load(Ordering::SeqCst) == 0 {
                return;
            }
            notified.await;
        }
    }

    /// Active health checks mark it up or down.
    pub fn set_probe_down(&self, down: bool) {
        self.probe_down.store(down, Ordering::Relaxed);
    }
}

/// Counts one request in flight on an upstream until dropped.
#[derive(Debug)]
pub struct InFlight(Arc<Upstream>);

impl InFlight {
    /// The upstream the request went to.
    pub fn upstream(&self) -> &Arc<Upstream> {
        &self.0
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let before = self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
        if before == 1 && self.0.draining.load(Ordering::SeqCst) {
            self.0.drained.notify_waiters();
        }
    }
}

/// Whether an app's upstreams can be expected to appear.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetStatus {
    /// Fixed upstreams, or an app with at least one ready instance.
    Ready,
    /// An app that has not started yet or whose instances are (re)starting.
    Starting,
    /// An app that was stopped (rapid-fail protection, or shutdown); the text says why
    /// and is shown to clients in the 503 page.
    Stopped(String),
}

/// The upstreams of one proxy or app handler.
#[derive(Debug)]
pub struct UpstreamSet {
    list: watch::Sender<Arc<[Arc<Upstream>]>>,
    status: watch::Sender<SetStatus>,
    demand: Notify,
}

impl UpstreamSet {
    /// A set that never changes (a `proxy` handler's `upstreams`).
    pub fn fixed(list: Vec<Arc<Upstream>>) -> Arc<Self> {
        let set = Self::empty(SetStatus::Ready);
        set.replace(list);
        set
    }

    /// An empty set with `status` (an app's, before its instances run).
    pub fn empty(status: SetStatus) -> Arc<Self> {
        Arc::new(UpstreamSet {
            list: watch::Sender::new(Arc::from(Vec::new())),
            status: watch::Sender::new(status),
            demand: Notify::new(),
        })
    }

    /// The upstreams right now.
    pub fn current(&self) -> Arc<[Arc<Upstream>]> {
        Arc::clone(&self.list.borrow())
    }

    /// Replaces the upstreams (an app instance became ready, was recycled or exited).
    pub fn replace(&self, list: Vec<Arc<Upstream>>) {
        self.list.send_replace(Arc::from(list));
    }

    /// The set's status.
    pub fn status(&self) -> SetStatus {
        self.status.borrow().clone()
    }

    /// Changes the status (by the app's supervisor).
    pub fn set_status(&self, status: SetStatus) {
        self.status.send_replace(status);
    }

    /// Called by the proxy when a request arrives while the set is empty: an app started
    /// on first request starts now.
    pub fn demand(&self) {
        self.demand.notify_one();
    }

    /// Resolves when a request has called [`UpstreamSet::demand`].
    pub async fn demanded(&self) {
        self.demand.notified().await
    }

    /// Waits up to `timeout` for the set to have upstreams; `Err` with the status when it
    /// stays empty (stopped, or still starting at the deadline).
    pub async fn wait_for_upstreams(
        &self,
        timeout: Duration,
    ) -> Result<Arc<[Arc<Upstream>]>, SetStatus> {
        let mut list = self.list.subscribe();
        let mut status = self.status.subscribe();
        let wait = async {
            loop {
                {
                    let current = list.borrow_and_update();
                    if !current.is_empty() {
                        return Ok(Arc::clone(&current));
                    }
                }
                if let SetStatus::Stopped(why) = &*status.borrow_and_update() {
                    return Err(SetStatus::Stopped(why.clone()));
                }
                tokio::select! {
                    changed = list.changed() => if changed.is_err() { break },
                    changed = status.changed() => if changed.is_err() { break },
                }
            }
            Err(SetStatus::Starting)
        };
        tokio::time::timeout(timeout, wait)
            .await
            .unwrap_or(Err(SetStatus::Starting))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upstream() -> Arc<Upstream> {
        Upstream::new(UpstreamTarget::Unix("/x".into()), 1, "u")
    }

    #[tokio::test]
    async fn drained_resolves_when_the_last_request_finishes() {
        let u = upstream();
        let bound = Duration::from_secs(5);
        tokio::time::timeout(bound, u.drained())
            .await
            .expect("nothing in flight: drained at once");
        let (first, second) = (u.start_request(), u.start_request());
        let waiter = tokio::spawn({
            let u = Arc::clone(&u);
            async move { u.drained().await }
        });
        drop(first);
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished(), "one request is still in flight");
        drop(second);
        tokio::time::timeout(bound, waiter)
            .await
            .expect("woken by the last request")
            .unwrap();
    }

    #[test]
    fn passive_failures_mark_down_after_max() {
        let u = upstream();
        assert!(!u.record_failure(2, Duration::from_secs(60)));
        assert!(u.is_up());
        assert!(u.record_failure(2, Duration::from_secs(60)));
        assert!(!u.is_up());
    }

    #[test]
    fn in_flight_counts_until_dropped() {
        let u = upstream();
        let guard = u.start_request();
        assert_eq!((u.in_flight(), u.requests()), (1, 1));
        drop(guard);
        assert_eq!((u.in_flight(), u.requests()), (0, 1));
    }

    #[tokio::test]
    async fn waiting_ends_when_upstreams_appear_or_the_set_stops() {
        let set = UpstreamSet::empty(SetStatus::Starting);
        let waiter = {
            let set = Arc::clone(&set);
            tokio::spawn(async move { set.wait_for_upstreams(Duration::from_secs(10)).await })
        };
        set.replace(vec![upstream()]);
        assert_eq!(waiter.await.unwrap().unwrap().len(), 1);

        let set = UpstreamSet::empty(SetStatus::Starting);
        let waiter = {
            let set = Arc::clone(&set);
            tokio::spawn(async move { set.wait_for_upstreams(Duration::from_secs(10)).await })
        };
        set.set_status(SetStatus::Stopped("crashed".into()));
        assert_eq!(
            waiter.await.unwrap().unwrap_err(),
            SetStatus::Stopped("crashed".into())
        );
        let started = Instant::now();
        let empty = UpstreamSet::empty(SetStatus::Starting);
        assert_eq!(
            empty
                .wait_for_upstreams(Duration::from_millis(50))
                .await
                .unwrap_err(),
            SetStatus::Starting
        );
        assert!(started.elapsed() >= Duration::from_millis(50));
    }
}

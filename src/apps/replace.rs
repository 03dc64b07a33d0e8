//! Overlapped recycling: a replacement instance starts while the old one still serves,
//! takes its place in the set once ready, and the old one is drained and stopped in the
//! background, so no request is lost.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use super::instance::{describe, Instance};
use super::supervisor::{AppCtx, Start};
use super::{process, recycle};

/// After a recycled instance left the set, requests that picked it just before still get
/// this long to register before an idle instance is stopped.
const DRAIN_GRACE: Duration = Duration::from_millis(100);

/// How replacing an instance went.
pub(super) enum Replace {
    /// The replacement serves; the old instance is draining.
    Done,
    /// The replacement failed; the old instance still runs.
    Failed,
    /// The old instance exited and the replacement failed: start anew.
    Lost,
    /// The app is stopping.
    Stop,
}

impl AppCtx {
    /// The recycling limit `inst` has reached, if any.
    pub(super) fn recycle_due(&self, inst: &Instance) -> Option<recycle::Reason> {
        let pid = inst.pid;
        let sample = recycle::Sample {
            requests: inst.upstream.requests(),
            rss: &|| process::rss_bytes(pid),
            age: inst.spawned.elapsed(),
            scheduled: inst.scheduled,
            now: SystemTime::now(),
        };
        recycle::due(&self.cfg.recycle, sample)
    }

    /// Overlapped recycling: starts a replacement, swaps it into the set in place of
    /// `old` once ready, and drains and stops the old one in the background.
    pub(super) async fn replace(self: &Arc<Self>, current: &mut Instance) -> Replace {
        let index = current.index;
        let since = Instant::now();
        let start = self.start_instance(index);
        tokio::pin!(start);
        let mut old_alive = true;
        let started = loop {
            if !old_alive {
                break (&mut start).await;
            }
            tokio::select! {
                started = &mut start => break started,
                status = current.wait() => {
                    old_alive = false;
                    self.publish(index, None);
                    log!(warn, self, index, pid = current.pid,
                        "exited ({}) while its replacement was starting", describe(status.ok()));
                    // When this trips rapid-fail protection, the replacement is stopped.
                    self.crashed();
                }
            }
        };
        match started {
            Start::Ready(new) => {
                let old = std::mem::replace(current, *new);
                self.publish(index, Some(&current.upstream));
                log!(
                    info,
                    self,
                    index,
                    pid = old.pid,
                    "recycled: replaced by pid {} in {} ms",
                    current.pid,
                    since.elapsed().as_millis()
                );
                self.drain(old);
                Replace::Done
            }
            Start::Failed => {
                if !self.crashed() {
                    Replace::Stop
                } else if old_alive {
                    Replace::Failed
                } else {
                    Replace::Lost
                }
            }
            Start::Stopped => Replace::Stop,
        }
    }

    /// Drains `old` (until nothing is in flight on it, up to `stop_timeout`) and stops it.
    fn drain(self: &Arc<Self>, mut old: Instance) {
        let ctx = Arc::clone(self);
        self.drains.spawn(async move {
            let kill = ctx.kill.clone();
            let stop_timeout = ctx.cfg.stop_timeout;
            let drain_and_stop = async {
                let deadline = tokio::time::Instant::now() + stop_timeout;
                tokio::time::sleep(DRAIN_GRACE).await;
                let upstream = Arc::clone(&old.upstream);
                tokio::select! {
                    _ = upstream.drained() => {}
                    _ = old.wait() => {}
                    _ = ctx.stop.cancelled() => {}
                    _ = tokio::time::sleep_until(deadline) => {}
                }
                let left = old.upstream.in_flight();
                if left > 0 {
                    log!(
                        warn,
                        ctx,
                        old.index,
                        pid = old.pid,
                        "stopping with {left} requests still in flight"
                    );
                }
                old.stop(&ctx.cfg.name, stop_timeout).await;
            };
            tokio::select! {
                _ = kill.cancelled() => {}
                _ = drain_and_stop => {}
            }
        });
    }
}

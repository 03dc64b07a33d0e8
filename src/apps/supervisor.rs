//! One app's supervision: a task per instance slot starts its process, puts it into the
//! app's upstream set once ready, restarts it with back-off when it exits, recycles it
//! (overlapped: the replacement is ready before the old one leaves the set), and stops it
//! on shutdown. Crashes of all slots count towards rapid-fail protection.

use std::collections::VecDeque;
use std::io;
use std::process::ExitStatus;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::instance::{describe, Instance};
use super::replace::Replace;
use super::{process, readiness, recycle};
use crate::config::{AppConfig, AppStart, Recycle};
use crate::handlers::proxy::upstream::{SetStatus, Upstream, UpstreamSet};

/// How often the recycling limits of a ready instance are checked.
const CHECK_EVERY: Duration = Duration::from_secs(1);
/// An instance that was ready this long before it exited restarts after `restart_delay`
/// again instead of the doubled delay.
const STABLE_AFTER: Duration = Duration::from_secs(30);

/// The shared state of one app's supervision.
pub(super) struct AppCtx {
    pub cfg: AppConfig,
    pub set: Arc<UpstreamSet>,
    state: Mutex<State>,
    /// Cancelled (under the state lock) by shutdown and by rapid-fail protection: nothing
    /// goes into the set any more, and instances are stopped politely.
    pub(super) stop: CancellationToken,
    /// Cancelled when the supervisors are dropped or the shutdown bound passes: every
    /// instance is dropped at once, which kills its process group.
    pub kill: CancellationToken,
    generation: AtomicU64,
    /// Recycled instances being drained and stopped.
    pub(super) drains: TaskTracker,
}

struct State {
    /// The ready instance of each slot.
    slots: Vec<Option<Arc<Upstream>>>,
    /// When recent crashes happened (within the rapid-fail window).
    crashes: VecDeque<Instant>,
}

pub(super) enum Start {
    Ready(Box<Instance>),
    /// Exited, timed out or could not be spawned (already logged).
    Failed,
    /// The app is stopping.
    Stopped,
}

enum Outcome {
    /// The instance exited by itself.
    Exited(io::Result<ExitStatus>),
    /// The app is stopping: stop the instance.
    Stop,
    /// The instance and its replacement are both gone, crashes counted: start anew.
    Lost,
}

/// `restart_delay`, doubling up to `restart_delay_max`.
pub(super) struct Backoff {
    first: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    fn new(cfg: &AppConfig) -> Self {
        let first = cfg.restart_delay;
        Backoff {
            first,
            max: cfg.restart_delay_max.max(first),
            next: first,
        }
    }

    pub(super) fn next(&mut self) -> Duration {
        let delay = self.next;
        self.next = (delay * 2).min(self.max);
        delay
    }

    fn reset(&mut self) {
        self.next = self.first;
    }
}

impl AppCtx {
    pub fn new(cfg: AppConfig, set: Arc<UpstreamSet>) -> Arc<Self> {
        let slots = vec![None; cfg.instances.max(1) as usize];
        Arc::new(AppCtx {
            cfg,
            set,
            state: Mutex::new(State {
                slots,
                crashes: VecDeque::new(),
            }),
            stop: CancellationToken::new(),
            kill: CancellationToken::new(),
            generation: AtomicU64::new(0),
            drains: TaskTracker::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The app's task: runs until stopped; dropping everything when `kill` is cancelled.
    pub async fn run(self: Arc<Self>) {
        let kill = self.kill.clone();
        tokio::select! {
            _ = kill.cancelled() => {}
            _ = self.supervise_app() => {}
        }
    }

    /// Shutdown: the set empties with status `Stopped("shutting down")` and every slot
    /// stops its instance.
    pub fn begin_shutdown(&self) {
        self.stop_all(SetStatus::Stopped("shutting down".into()));
    }

    fn stop_all(&self, status: SetStatus) {
        let mut state = self.lock();
        state.slots.iter_mut().for_each(|s| *s = None);
        self.set.replace(Vec::new());
        self.set.set_status(status);
        self.stop.cancel();
    }

    async fn supervise_app(self: &Arc<Self>) {
        let name = &self.cfg.name;
        if self.cfg.recycle.memory.is_some() && !process::MEMORY_SUPPORTED {
            tracing::warn!(app = %name, "recycling on memory is only supported on Linux; ignored");
        }
        if self.cfg.start == AppStart::FirstRequest {
            tracing::info!(app = %name, "waiting for the first request");
            tokio::select! {
                _ = self.set.demanded() => tracing::info!(app = %name, "first request: starting"),
                _ = self.stop.cancelled() => return,
            }
        }
        let slots = (0..self.cfg.instances.max(1)).map(|i| self.run_slot(i));
        futures_util::future::join_all(slots).await;
        self.drains.close();
        self.drains.wait().await;
    }

    /// Keeps instance `index` running until the app stops.
    async fn run_slot(self: &Arc<Self>, index: u32) {
        let mut backoff = Backoff::new(&self.cfg);
        loop {
            let restart = match self.start_instance(index).await {
                Start::Ready(inst) => self.run_ready(*inst, &mut backoff).await,
                Start::Failed => self.crashed(),
                Start::Stopped => false,
            };
            if !restart {
                return;
            }
            let delay = backoff.next();
            log!(warn, self, index, "restarting in {}", fmt(delay));
            if !self.pause(delay).await {
                return;
            }
        }
    }

    /// Serves a ready instance until it is gone; whether its slot starts another (a crash
    /// counted that did not trip rapid-fail protection).
    async fn run_ready(self: &Arc<Self>, mut inst: Instance, backoff: &mut Backoff) -> bool {
        let index = inst.index;
        self.publish(index, Some(&inst.upstream));
        match self.supervise(&mut inst, backoff).await {
            Outcome::Stop => {
                self.publish(index, None);
                inst.stop(&self.cfg.name, self.cfg.stop_timeout).await;
                false
            }
            Outcome::Exited(status) => {
                let ran = inst.ready_for();
                if ran >= STABLE_AFTER {
                    backoff.reset();
                }
                let status = describe(status.ok());
                log!(
                    warn,
                    self,
                    index,
                    pid = inst.pid,
                    "exited ({status}) after {} ready",
                    fmt(ran)
                );
                drop(inst);
                self.crashed()
            }
            // Its crashes are counted already.
            Outcome::Lost => true,
        }
    }

    /// Spawns an instance for slot `index` and waits until it is ready.
    pub(super) async fn start_instance(&self, index: u32) -> Start {
        let generation = self.generation.fetch_add(1, Ordering::Relaxed);
        let mut inst = match Instance::spawn(&self.cfg, index, generation) {
            Ok(inst) => inst,
            Err(e) => {
                log!(
                    warn,
                    self,
                    index,
                    "cannot start {:?}: {e}",
                    self.cfg.command
                );
                return Start::Failed;
            }
        };
        let target = inst.upstream.target.clone();
        log!(info, self, index, pid = inst.pid, "starting on {target}");
        enum Waited {
            Ready,
            TimedOut,
            Exited(io::Result<ExitStatus>),
            Stopped,
        }
        let ready = readiness::wait_ready(&target, &self.cfg.ready);
        let waited = tokio::select! {
            r = tokio::time::timeout(self.cfg.start_timeout, ready) => match r {
                Ok(()) => Waited::Ready,
                Err(_) => Waited::TimedOut,
            },
            status = inst.wait() => Waited::Exited(status),
            _ = self.stop.cancelled() => Waited::Stopped,
        };
        match waited {
            Waited::Ready => {}
            Waited::TimedOut => {
                log!(
                    warn,
                    self,
                    index,
                    pid = inst.pid,
                    "not ready after {}; stopping it",
                    fmt(self.cfg.start_timeout)
                );
                inst.stop(&self.cfg.name, self.cfg.stop_timeout).await;
                return Start::Failed;
            }
            Waited::Exited(status) => {
                log!(
                    warn,
                    self,
                    index,
                    pid = inst.pid,
                    "exited while starting ({})",
                    describe(status.ok())
                );
                return Start::Failed;
            }
            Waited::Stopped => {
                inst.stop(&self.cfg.name, self.cfg.stop_timeout).await;
                return Start::Stopped;
            }
        }
        inst.ready_at = Some(Instant::now());
        inst.scheduled = recycle::next_time_of_day(SystemTime::now(), &self.cfg.recycle.at);
        log!(
            info,
            self,
            index,
            pid = inst.pid,
            "ready in {} ms",
            inst.spawned.elapsed().as_millis()
        );
        Start::Ready(Box::new(inst))
    }

    /// Watches a ready instance until it exits or the app stops; recycles it when due.
    async fn supervise(self: &Arc<Self>, inst: &mut Instance, backoff: &mut Backoff) -> Outcome {
        let mut tick = tokio::time::interval_at((Instant::now() + CHECK_EVERY).into(), CHECK_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut not_before = Instant::now();
        // Without recycling limits there is nothing to check: no wake-up every second.
        let recycles = self.cfg.recycle != Recycle::default();
        loop {
            tokio::select! {
                status = inst.wait() => {
                    self.publish(inst.index, None);
                    return Outcome::Exited(status);
                }
                _ = self.stop.cancelled() => return Outcome::Stop,
                _ = tick.tick(), if recycles => {}
            }
            if Instant::now() < not_before {
                continue;
            }
            let Some(reason) = self.recycle_due(inst) else {
                continue;
            };
            log!(
                info,
                self,
                inst.index,
                pid = inst.pid,
                "recycling: {reason}"
            );
            match self.replace(inst).await {
                Replace::Done => {}
                Replace::Failed => {
                    let delay = backoff.next();
                    not_before = Instant::now() + delay;
                    log!(
                        warn,
                        self,
                        inst.index,
                        pid = inst.pid,
                        "recycling failed; it keeps running; next attempt in {}",
                        fmt(delay)
                    );
                }
                Replace::Lost => return Outcome::Lost,
                Replace::Stop => return Outcome::Stop,
            }
        }
    }

    /// Puts slot `index`'s ready instance into the set (or takes it out with `None`).
    pub(super) fn publish(&self, index: u32, upstream: Option<&Arc<Upstream>>) {
        let mut state = self.lock();
        let stopped = self.stop.is_cancelled();
        state.slots[index as usize] = upstream.filter(|_| !stopped).cloned();
        let list: Vec<_> = state.slots.iter().flatten().cloned().collect();
        let status = if list.is_empty() {
            SetStatus::Starting
        } else {
            SetStatus::Ready
        };
        self.set.replace(list);
        if !stopped && self.set.status() != status {
            self.set.set_status(status);
        }
    }

    /// Counts a crash; `false` when that tripped rapid-fail protection (or the app is
    /// stopping anyway): no restart.
    pub(super) fn crashed(&self) -> bool {
        let mut state = self.lock();
        if self.stop.is_cancelled() {
            return false;
        }
        let Some(limit) = self.cfg.rapid_fail else {
            return true;
        };
        let now = Instant::now();
        state.crashes.push_back(now);
        while let Some(&first) = state.crashes.front() {
            if now.duration_since(first) <= limit.window {
                break;
            }
            state.crashes.pop_front();
        }
        let crashes = state.crashes.len();
        if crashes < limit.crashes.max(1) as usize {
            return true;
        }
        drop(state);
        let why = format!(
            "app {} stopped after {crashes} crashes within {}; fix it and restart harrier",
            self.cfg.name,
            fmt(limit.window)
        );
        tracing::error!(app = %self.cfg.name, "rapid-fail protection: {why}");
        self.stop_all(SetStatus::Stopped(why));
        false
    }

    /// Waits `delay`; `false` when the app stops meanwhile.
    async fn pause(&self, delay: Duration) -> bool {
        tokio::select! {
            _ = tokio::time::sleep(delay) => true,
            _ = self.stop.cancelled() => false,
        }
    }
}

/// A duration for the log, without sub-millisecond noise.
pub(super) fn fmt(d: Duration) -> humantime::FormattedDuration {
    humantime::format_duration(Duration::from_millis(d.as_millis() as u64))
}

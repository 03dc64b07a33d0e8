//! `[[apps]]`: backend processes harrier starts, watches, restarts and recycles (IIS app
//! pools / the ASP.NET Core Module's out-of-process hosting, cross-platform).
//!
//! Each app owns an [`UpstreamSet`] that its `app` routes balance over; the supervisor puts
//! an instance into the set once it is ready and takes it out before stopping it.
//!
//! * `instance`: one process: port or socket, environment, output to the log, stop.
//! * `process`: the OS-specific part (process groups, signals, memory).
//! * `readiness`: the `ready` check of a starting instance.
//! * `recycle`: when a ready instance is due to be replaced.
//! * `replace`: overlapped replacement: the new instance is ready before the old one leaves.
//! * `supervisor`: the per-app task: start, restart with back-off, rapid-fail protection,
//!   overlapped recycling, stop.

/// A log event with the app's name and the instance's index.
macro_rules! log {
    ($level:ident, $ctx:expr, $index:expr, $($rest:tt)+) => {
        tracing::$level!(app = %$ctx.cfg.name, instance = $index, $($rest)+)
    };
}

mod instance;
mod process;
mod readiness;
mod recycle;
mod replace;
mod supervisor;

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

pub use instance::OUTPUT_TARGET;

use crate::config::AppConfig;
use crate::handlers::proxy::upstream::{SetStatus, UpstreamSet};
use supervisor::AppCtx;

/// Beyond an app's `stop_timeout`, how long its shutdown may take before what is left is
/// killed (killing and reaping, a recycled instance still draining).
const SHUTDOWN_SLACK: Duration = Duration::from_secs(2);

/// Every app of a configuration, with the upstream set its routes use.
pub struct Apps {
    apps: Vec<(AppConfig, Arc<UpstreamSet>)>,
}

impl Apps {
    /// The apps of `configs`, not started yet.
    pub fn new(configs: &[AppConfig]) -> Self {
        Apps {
            apps: configs
                .iter()
                .map(|c| (c.clone(), UpstreamSet::empty(SetStatus::Starting)))
                .collect(),
        }
    }

    /// The upstream set of the app called `name`.
    pub fn upstreams(&self, name: &str) -> Option<Arc<UpstreamSet>> {
        self.apps
            .iter()
            .find(|(c, _)| c.name == name)
            .map(|(_, set)| Arc::clone(set))
    }

    /// Starts supervising every app (those with `start = "first_request"` wait for one).
    /// Must be called inside a tokio runtime.
    pub fn start(&self) -> Supervisors {
        Supervisors {
            running: self
                .apps
                .iter()
                .map(|(config, set)| {
                    let ctx = AppCtx::new(config.clone(), Arc::clone(set));
                    let task = tokio::spawn(Arc::clone(&ctx).run());
                    (ctx, task)
                })
                .collect(),
        }
    }
}

/// The running supervisors; [`Supervisors::shutdown`] stops every app's processes.
/// Dropping them instead kills every process group at once.
pub struct Supervisors {
    running: Vec<(Arc<AppCtx>, JoinHandle<()>)>,
}

impl Supervisors {
    /// Stops every instance of every app in parallel (polite signal to its process group,
    /// kill after `stop_timeout`) and waits until they are gone; the sets are left empty
    /// with status `Stopped("shutting down")`.
    pub async fn shutdown(mut self) {
        let running = std::mem::take(&mut self.running);
        for (ctx, _) in &running {
            ctx.begin_shutdown();
        }
        let stops = running.into_iter().map(|(ctx, mut task)| async move {
            let bound = ctx.cfg.stop_timeout + SHUTDOWN_SLACK;
            if tokio::time::timeout(bound, &mut task).await.is_err() {
                tracing::warn!(app = %ctx.cfg.name, "still stopping after {}: killing",
                    humantime::format_duration(bound));
                ctx.kill.cancel();
                let _ = task.await;
            }
        });
        futures_util::future::join_all(stops).await;
    }
}

impl Drop for Supervisors {
    fn drop(&mut self) {
        for (ctx, task) in &self.running {
            ctx.kill.cancel();
            task.abort();
        }
    }
}

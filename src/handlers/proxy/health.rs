//! Active health checks: every upstream of a handler is probed with a GET on a timer;
//! `unhealthy_threshold` failures in a row take it out, `healthy_threshold` successes bring
//! it back.

use std::collections::HashMap;
use std::sync::{Arc, Weak};

use http::{header, Request, Uri};

use super::Proxy;
use crate::body;
use crate::config::HealthCheck;

/// Probes the upstreams of `proxy` until it is dropped (a task per handler).
pub fn spawn(proxy: Weak<Proxy>, check: HealthCheck) {
    if tokio::runtime::Handle::try_current().is_err() {
        return;
    }
    tokio::spawn(async move {
        // Consecutive results per upstream (keyed by address; entries for upstreams that
        // left the set are dropped each round).
        let mut streaks: HashMap<usize, (u32, u32)> = HashMap::new();
        let mut tick = tokio::time::interval(check.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(proxy) = proxy.upgrade() else {
                return;
            };
            let list = proxy.upstreams();
            let probes = list.iter().map(|u| probe(&proxy, u, &check));
            let results = futures_util::future::join_all(probes).await;
            streaks.retain(|key, _| list.iter().any(|u| Arc::as_ptr(u) as usize == *key));
            for (upstream, healthy) in list.iter().zip(results) {
                let (ok, bad) = streaks.entry(Arc::as_ptr(upstream) as usize).or_default();
                if healthy {
                    *ok += 1;
                    *bad = 0;
                } else {
                    *bad += 1;
                    *ok = 0;
                }
                let was_down = !upstream.is_up();
                if healthy && *ok >= check.healthy_threshold && was_down {
                    upstream.set_probe_down(false);
                    if upstream.is_up() {
                        tracing::info!(upstream = %upstream.label, "health check: upstream is up again");
                    }
                } else if !healthy && *bad >= check.unhealthy_threshold && !was_down {
                    upstream.set_probe_down(true);
                    tracing::warn!(
                        upstream = %upstream.label,
                        "health check: upstream is down after {} failed probe(s) of {}",
                        bad,
                        check.path
                    );
                }
            }
        }
    });
}

/// One probe: GET `path` answered within `timeout` with an expected status.
async fn probe(proxy: &Proxy, upstream: &Arc<super::Upstream>, check: &HealthCheck) -> bool {
    let dest = proxy.dest(upstream);
    let uri = Uri::builder()
        .scheme(dest.scheme.clone())
        .authority(dest.uri_authority(None))
        .path_and_query(check.path.as_str())
        .build();
    let Ok(uri) = uri else {
        return false;
    };
    let mut req = Request::new(body::empty());
    *req.uri_mut() = uri;
    req.headers_mut()
        .insert(header::HOST, dest.authority_value.clone());
    match tokio::time::timeout(check.timeout, dest.client.request(req)).await {
        Ok(Ok(resp)) => {
            let status = resp.status();
            if check.expect_status.is_empty() {
                status.is_success() || status.is_redirection()
            } else {
                check.expect_status.contains(&status)
            }
        }
        _ => false,
    }
}

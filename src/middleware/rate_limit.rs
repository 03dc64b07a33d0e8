//! `rate_limit`: a token bucket per client (GCRA), answering 429 with `Retry-After` past it.
//!
//! GCRA keeps one timestamp per client (the "theoretical arrival time"), so a bucket is two
//! words. Keys are hashed with a per-limiter random seed, so a client sending huge or
//! crafted key values costs the same 16 bytes as any other and cannot aim for collisions.
//! The table is sharded (less lock contention) and capped at `max_clients`: a full shard
//! first drops the buckets that have refilled (forgetting them changes nothing), then the
//! one closest to full.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use http::{HeaderValue, Request, StatusCode};

use crate::body::Body;
use crate::config::{RateKey, RateLimitStage};
use crate::pipeline::{client_ip, error_response, HandlerFuture, Middleware, Next};

/// Shards of the bucket table; fewer when `max_clients` is tiny, so every shard holds one.
const SHARDS: usize = 16;

/// Per-key GCRA state with a bounded number of keys; usable on its own (and by tests).
pub struct Limiter {
    /// Time between two tokens, in nanoseconds (at least 1).
    interval: u64,
    /// How far ahead of now a bucket's arrival time may run: `interval * burst`.
    tolerance: u64,
    /// Keys each shard may hold.
    per_shard: usize,
    shards: Box<[Mutex<HashMap<u64, u64>>]>,
    hasher: RandomState,
    start: Instant,
}

impl Limiter {
    /// `count` requests per `per`, `burst` at once, at most `max_clients` keys remembered.
    pub fn new(count: u64, per: Duration, burst: u64, max_clients: usize) -> Limiter {
        let per = u64::try_from(per.as_nanos()).unwrap_or(u64::MAX);
        let interval = (per / count.max(1)).max(1);
        let max_clients = max_clients.max(1);
        let shards = SHARDS.min(max_clients);
        Limiter {
            interval,
            tolerance: interval.saturating_mul(burst.max(1)),
            // Rounded down, so the shards together never exceed `max_clients`.
            per_shard: max_clients / shards,
            shards: (0..shards).map(|_| Mutex::new(HashMap::new())).collect(),
            hasher: RandomState::new(),
            start: Instant::now(),
        }
    }

    /// Takes a token for `key` at `now`: `Ok(())`, or `Err(wait)` until one is available.
    pub fn check(&self, key: &[u8], now: Instant) -> Result<(), Duration> {
        let hash = self.hasher.hash_one(key);
        let now =
            u64::try_from(now.saturating_duration_since(self.start).as_nanos()).unwrap_or(u64::MAX);
        let mut shard = self.shard(hash);
        let tat = shard.get(&hash).copied().unwrap_or(now).max(now);
        let next = tat.saturating_add(self.interval);
        let ahead = next - now;
        if ahead > self.tolerance {
            return Err(Duration::from_nanos(ahead - self.tolerance));
        }
        if shard.len() >= self.per_shard && !shard.contains_key(&hash) {
            make_room(&mut shard, now);
        }
        shard.insert(hash, next);
        Ok(())
    }

    /// How many keys are remembered now (never more than `max_clients`).
    pub fn tracked(&self) -> usize {
        self.shards.iter().map(|s| lock(s).len()).sum()
    }

    fn shard(&self, hash: u64) -> MutexGuard<'_, HashMap<u64, u64>> {
        // The high bits pick the shard; the map itself uses the low ones.
        let index = (hash >> 48) as usize % self.shards.len();
        lock(&self.shards[index])
    }
}

/// A poisoned lock only means another request panicked mid-update of two integers; the
/// data is still usable, and a request path must not panic.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Frees one place in a full shard: buckets that have refilled go first (remembering them
/// changes nothing); if none has, the bucket nearest to full is forgotten.
fn make_room(shard: &mut HashMap<u64, u64>, now: u64) {
    let before = shard.len();
    shard.retain(|_, tat| *tat > now);
    if shard.len() < before {
        return;
    }
    if let Some(oldest) = shard.iter().min_by_key(|(_, tat)| **tat).map(|(k, _)| *k) {
        shard.remove(&oldest);
    }
}

/// The `rate_limit` stage.
pub struct RateLimit {
    key: RateKey,
    limiter: Arc<Limiter>,
}

impl RateLimit {
    /// Builds the stage's limiter from its options.
    pub fn new(cfg: &RateLimitStage) -> RateLimit {
        RateLimit {
            key: cfg.key.clone(),
            limiter: Arc::new(Limiter::new(
                cfg.rate.count,
                cfg.rate.unit.period(),
                cfg.burst,
                cfg.max_clients,
            )),
        }
    }
}

/// The key of a request: the client IP is the one `forwarded_headers` resolved from
/// trusted proxies, when that stage runs first. A missing key (no header, or a unix socket
/// without an address) is the empty key: such requests share one bucket, so leaving the
/// header out never buys a client more than one key's rate.
enum Key<'a> {
    /// The client IP as 16 bytes (IPv4 as its IPv4-mapped IPv6 form, so both spellings of
    /// one client share a bucket); no allocation on the request path.
    Ip([u8; 16]),
    Bytes(&'a [u8]),
}

impl Key<'_> {
    fn of<'a>(key: &RateKey, req: &'a Request<Body>) -> Key<'a> {
        match key {
            RateKey::ClientIp => match client_ip(req) {
                Some(IpAddr::V4(v4)) => Key::Ip(v4.to_ipv6_mapped().octets()),
                Some(IpAddr::V6(v6)) => Key::Ip(v6.octets()),
                None => Key::Bytes(&[]),
            },
            RateKey::Header(name) => {
                Key::Bytes(req.headers().get(name).map_or(&[], HeaderValue::as_bytes))
            }
        }
    }

    fn as_bytes(&self) -> &[u8] {
        match self {
            Key::Ip(octets) => octets,
            Key::Bytes(bytes) => bytes,
        }
    }
}

impl Middleware for RateLimit {
    fn handle(&self, req: Request<Body>, next: Next) -> HandlerFuture {
        let key = Key::of(&self.key, &req);
        match self.limiter.check(key.as_bytes(), Instant::now()) {
            Ok(()) => next.run(req),
            Err(wait) => {
                // Whole seconds, rounded up and at least 1, so a client that waits this long
                // finds a token.
                let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
                let mut resp = error_response(StatusCode::TOO_MANY_REQUESTS);
                resp.headers_mut()
                    .insert(http::header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
                Box::pin(std::future::ready(resp))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_one_per_interval() {
        let l = Limiter::new(10, Duration::from_secs(1), 3, 100);
        let t = Instant::now();
        for _ in 0..3 {
            assert!(l.check(b"a", t).is_ok());
        }
        let wait = l.check(b"a", t).unwrap_err();
        assert_eq!(wait, Duration::from_millis(100));
        assert!(l.check(b"b", t).is_ok(), "other keys are unaffected");
        assert!(l.check(b"a", t + wait).is_ok());
        assert!(l.check(b"a", t + wait).is_err());
    }

    #[test]
    fn keys_are_bounded() {
        let l = Limiter::new(1, Duration::from_secs(3600), 1, 50);
        let t = Instant::now();
        for i in 0..10_000u32 {
            let _ = l.check(&i.to_be_bytes(), t);
        }
        assert!(l.tracked() <= 50, "{}", l.tracked());
    }
}

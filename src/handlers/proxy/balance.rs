//! Choosing the upstream of a request: the `policy` of a proxy or app handler, over the
//! upstreams that are up and not already tried for this request.

use std::hash::{Hash, Hasher};
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use aws_lc_rs::hmac;
use base64::Engine;
use http::{HeaderMap, HeaderValue, Uri};

use super::upstream::Upstream;
use crate::config::LbPolicy;

/// A chosen upstream: its index in the list, and a sticky-session cookie to set when the
/// `cookie` policy picked it afresh.
#[derive(Debug)]
pub struct Pick {
    /// Index into the upstream list.
    pub index: usize,
    /// `Set-Cookie` value for the response.
    pub set_cookie: Option<HeaderValue>,
}

/// One handler's policy and the state it keeps (the round-robin counter, the cookie key).
pub struct Balancer {
    policy: LbPolicy,
    counter: AtomicUsize,
    cookie_key: Option<hmac::Key>,
}

impl Balancer {
    /// The balancer for `policy`; a cookie policy without a secret gets a random key.
    pub fn new(policy: &LbPolicy) -> Self {
        let cookie_key = match policy {
            LbPolicy::Cookie { secret, .. } => Some(match secret {
                Some(secret) => hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes()),
                None => {
                    let rng = aws_lc_rs::rand::SystemRandom::new();
                    hmac::Key::generate(hmac::HMAC_SHA256, &rng).unwrap_or_else(|_| {
                        // Never seen in practice; a per-process key from the hasher seed
                        // still signs (cookies just stop verifying after a restart).
                        let seed = random_u64().to_le_bytes();
                        hmac::Key::new(hmac::HMAC_SHA256, &seed)
                    })
                }
            }),
            _ => None,
        };
        Balancer {
            policy: policy.clone(),
            counter: AtomicUsize::new(0),
            cookie_key,
        }
    }

    /// Picks among `list` the upstreams that are up and whose index is not in `tried`;
    /// `None` when there is none.
    pub fn pick(
        &self,
        list: &[Arc<Upstream>],
        uri: &Uri,
        headers: &HeaderMap,
        client: Option<IpAddr>,
        tried: &[usize],
    ) -> Option<Pick> {
        let candidates: Vec<usize> = (0..list.len())
            .filter(|i| !tried.contains(i) && list[*i].is_up())
            .collect();
        if candidates.is_empty() {
            return None;
        }
        let plain = |index| {
            Some(Pick {
                index,
                set_cookie: None,
            })
        };
        match &self.policy {
            LbPolicy::RoundRobin => plain(self.round_robin(list, &candidates)),
            LbPolicy::First => plain(candidates[0]),
            LbPolicy::LeastConn => plain(self.least_conn(list, &candidates)),
            LbPolicy::Random => plain(power_of_two(list, &candidates)),
            LbPolicy::IpHash => match client {
                Some(ip) => plain(rendezvous(list, &candidates, &ip)),
                None => plain(self.round_robin(list, &candidates)),
            },
            LbPolicy::UriHash => {
                let uri = uri.path_and_query().map_or("/", |p| p.as_str());
                plain(rendezvous(list, &candidates, &uri))
            }
            LbPolicy::Header(name) => match headers.get(name) {
                Some(value) => plain(rendezvous(list, &candidates, &value.as_bytes())),
                None => plain(self.round_robin(list, &candidates)),
            },
            LbPolicy::Cookie { name, .. } => {
                let sticky = cookie_value(headers, name)
                    .and_then(|value| self.verify(value))
                    .and_then(|id| {
                        candidates
                            .iter()
                            .copied()
                            .find(|i| label_id(&list[*i].label) == id)
                    });
                match sticky {
                    Some(index) => plain(index),
                    None => {
                        let index = self.round_robin(list, &candidates);
                        Some(Pick {
                            index,
                            set_cookie: self.cookie(name, &list[index].label),
                        })
                    }
                }
            }
        }
    }

    /// Weighted round robin: the counter walks the candidates' total weight.
    fn round_robin(&self, list: &[Arc<Upstream>], candidates: &[usize]) -> usize {
        let slot = self.counter.fetch_add(1, Ordering::Relaxed) as u64;
        by_weight(list, candidates, slot)
    }

    /// Fewest requests in flight per unit of weight; ties rotate.
    fn least_conn(&self, list: &[Arc<Upstream>], candidates: &[usize]) -> usize {
        let start = self.counter.fetch_add(1, Ordering::Relaxed) % candidates.len();
        let load = |i: usize| list[i].in_flight() as u64 * 1_000_000 / list[i].weight as u64;
        (0..candidates.len())
            .map(|k| candidates[(start + k) % candidates.len()])
            .min_by_key(|i| load(*i))
            .unwrap_or(candidates[0])
    }

    /// `name=ID.SIGNATURE` for the upstream labelled `label`.
    fn cookie(&self, name: &str, label: &str) -> Option<HeaderValue> {
        let key = self.cookie_key.as_ref()?;
        let id = label_id(label);
        let tag = hmac::sign(key, id.as_bytes());
        let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(tag.as_ref());
        HeaderValue::try_from(format!("{name}={id}.{sig}; Path=/; HttpOnly; SameSite=Lax")).ok()
    }

    /// The upstream id in a cookie value whose signature holds.
    fn verify<'a>(&self, value: &'a str) -> Option<&'a str> {
        let key = self.cookie_key.as_ref()?;
        let (id, sig) = value.split_once('.')?;
        let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(sig)
            .ok()?;
        hmac::verify(key, id.as_bytes(), &sig).ok().map(|_| id)
    }
}

/// A short stable id of an upstream for cookies (its label is not for clients to read).
fn label_id(label: &str) -> String {
    format!("{:016x}", stable_hash(&label))
}

/// The value of cookie `name` in the request, if any.
fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// SipHash with fixed keys: the same key maps to the same upstream across restarts.
fn stable_hash<T: Hash + ?Sized>(value: &T) -> u64 {
    #[allow(deprecated)]
    let mut h = std::hash::SipHasher::new();
    value.hash(&mut h);
    h.finish()
}

/// Weighted rendezvous hashing: each upstream scores the key; the best score wins, so an
/// upstream going down only moves the keys that were on it.
fn rendezvous<K: Hash + ?Sized>(list: &[Arc<Upstream>], candidates: &[usize], key: &K) -> usize {
    let key = stable_hash(key);
    let score = |i: usize| {
        let h = stable_hash(&(key, list[i].label.as_str()));
        // u in (0, 1]; -ln(u) / weight is exponentially distributed with rate = weight.
        let u = (h >> 11) as f64 / (1u64 << 53) as f64;
        -(u.max(f64::MIN_POSITIVE)).ln() / list[i].weight as f64
    };
    candidates
        .iter()
        .copied()
        .min_by(|a, b| score(*a).total_cmp(&score(*b)))
        .unwrap_or(candidates[0])
}

/// The candidate whose share of the total weight holds `slot` (taken modulo the total).
fn by_weight(list: &[Arc<Upstream>], candidates: &[usize], slot: u64) -> usize {
    let total: u64 = candidates.iter().map(|i| list[*i].weight as u64).sum();
    let mut slot = slot % total.max(1);
    for &i in candidates {
        let w = list[i].weight as u64;
        if slot < w {
            return i;
        }
        slot -= w;
    }
    candidates[0]
}

/// The power of two choices: two weighted random picks, the less loaded one wins (the
/// first on a tie, so idle upstreams share by weight).
fn power_of_two(list: &[Arc<Upstream>], candidates: &[usize]) -> usize {
    let draw = || by_weight(list, candidates, random_u64());
    let (a, b) = (draw(), draw());
    let load = |i: usize| list[i].in_flight() as u64 * 1_000_000 / list[i].weight as u64;
    if load(b) < load(a) {
        b
    } else {
        a
    }
}

/// A fast per-thread pseudo-random number (xorshift64*), seeded from the std hasher's
/// random keys; balancing needs spread, not secrecy.
fn random_u64() -> u64 {
    use std::cell::Cell;
    use std::hash::BuildHasher;
    thread_local! {
        static STATE: Cell<u64> = Cell::new(
            std::collections::hash_map::RandomState::new().hash_one(0u64) | 1
        );
    }
    STATE.with(|s| {
        let mut x = s.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        s.set(x);
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{UpstreamScheme, UpstreamTarget};

    fn list(weights: &[u32]) -> Vec<Arc<Upstream>> {
        weights
            .iter()
            .enumerate()
            .map(|(i, w)| {
                let target = UpstreamTarget::Tcp {
                    scheme: UpstreamScheme::Http,
                    host: "127.0.0.1".into(),
                    port: 1000 + i as u16,
                };
                Upstream::new(target, *w, format!("u{i}"))
            })
            .collect()
    }

    fn pick(
        b: &Balancer,
        l: &[Arc<Upstream>],
        uri: &str,
        h: &HeaderMap,
        tried: &[usize],
    ) -> Option<Pick> {
        b.pick(l, &uri.parse().unwrap(), h, None, tried)
    }

    #[test]
    fn round_robin_follows_weights_and_skips_tried() {
        let l = list(&[1, 2]);
        let b = Balancer::new(&LbPolicy::RoundRobin);
        let picks: Vec<usize> = (0..6)
            .map(|_| pick(&b, &l, "/", &HeaderMap::new(), &[]).unwrap().index)
            .collect();
        assert_eq!(picks.iter().filter(|i| **i == 1).count(), 4);
        assert_eq!(pick(&b, &l, "/", &HeaderMap::new(), &[1]).unwrap().index, 0);
        assert!(pick(&b, &l, "/", &HeaderMap::new(), &[0, 1]).is_none());
    }

    #[test]
    fn hashes_are_stable_and_move_only_the_keys_of_a_down_upstream() {
        let l = list(&[1, 1, 1]);
        let b = Balancer::new(&LbPolicy::UriHash);
        let before: Vec<usize> = (0..60)
            .map(|k| {
                pick(&b, &l, &format!("/{k}"), &HeaderMap::new(), &[])
                    .unwrap()
                    .index
            })
            .collect();
        assert!((0..3).all(|i| before.contains(&i)), "{before:?}");
        let after: Vec<usize> = (0..60)
            .map(|k| {
                pick(&b, &l, &format!("/{k}"), &HeaderMap::new(), &[1])
                    .unwrap()
                    .index
            })
            .collect();
        for (b, a) in before.iter().zip(&after) {
            if *b != 1 {
                assert_eq!(a, b);
            }
        }
    }

    #[test]
    fn cookies_are_signed_and_stick() {
        let l = list(&[1, 1]);
        let policy = LbPolicy::Cookie {
            name: "s".into(),
            secret: Some("0123456789abcdef".into()),
        };
        let b = Balancer::new(&policy);
        let first = pick(&b, &l, "/", &HeaderMap::new(), &[]).unwrap();
        let cookie = first.set_cookie.unwrap();
        let pair = cookie
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned();
        for _ in 0..4 {
            let mut h = HeaderMap::new();
            h.insert("cookie", pair.parse().unwrap());
            let again = pick(&b, &l, "/", &h, &[]).unwrap();
            assert_eq!(again.index, first.index);
            assert!(again.set_cookie.is_none());
        }
        let forged = format!("{}x", pair);
        let mut h = HeaderMap::new();
        h.insert("cookie", forged.parse().unwrap());
        assert!(pick(&b, &l, "/", &h, &[]).unwrap().set_cookie.is_some());
    }

    #[test]
    fn least_conn_prefers_the_idle_one() {
        let l = list(&[1, 1]);
        let _busy = l[0].start_request();
        let b = Balancer::new(&LbPolicy::LeastConn);
        for _ in 0..4 {
            assert_eq!(pick(&b, &l, "/", &HeaderMap::new(), &[]).unwrap().index, 1);
        }
    }
}

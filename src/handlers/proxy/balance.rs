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

    /// Picks among `list` the upstreams that are up and not in `tried`; `None` when there
    /// is none. Allocates nothing: the eligible ones are walked, not collected.
    pub fn pick(
        &self,
        list: &[Arc<Upstream>],
        uri: &Uri,
        headers: &HeaderMap,
        client: Option<IpAddr>,
        tried: &Tried,
    ) -> Option<Pick> {
        let eligible = Eligible { list, tried };
        let first = eligible.iter().next()?;
        let plain = |index| {
            Some(Pick {
                index,
                set_cookie: None,
            })
        };
        match &self.policy {
            LbPolicy::RoundRobin => plain(self.round_robin(&eligible)),
            LbPolicy::First => plain(first),
            LbPolicy::LeastConn => plain(self.least_conn(&eligible)),
            LbPolicy::Random => plain(power_of_two(&eligible)),
            LbPolicy::IpHash => match client {
                Some(ip) => plain(rendezvous(&eligible, &ip)),
                None => plain(self.round_robin(&eligible)),
            },
            LbPolicy::UriHash => {
                let uri = uri.path_and_query().map_or("/", |p| p.as_str());
                plain(rendezvous(&eligible, &uri))
            }
            LbPolicy::Header(name) => match headers.get(name) {
                Some(value) => plain(rendezvous(&eligible, &value.as_bytes())),
                None => plain(self.round_robin(&eligible)),
            },
            LbPolicy::Cookie { name, .. } => {
                // The id is compared as the number it spells: no id is formatted per
                // upstream.
                let sticky = cookie_value(headers, name)
                    .and_then(|value| self.verify(value))
                    .and_then(|id| u64::from_str_radix(id, 16).ok())
                    .and_then(|id| {
                        eligible
                            .iter()
                            .find(|i| stable_hash(list[*i].label.as_str()) == id)
                    });
                match sticky {
                    Some(index) => plain(index),
                    None => {
                        let index = self.round_robin(&eligible);
                        Some(Pick {
                            index,
                            set_cookie: self.cookie(name, &list[index].label),
                        })
                    }
                }
            }
        }
    }

    /// Weighted round robin: the counter walks the eligible ones' total weight.
    fn round_robin(&self, eligible: &Eligible<'_>) -> usize {
        let slot = self.counter.fetch_add(1, Ordering::Relaxed) as u64;
        by_weight(eligible, slot)
    }

    /// Fewest requests in flight per unit of weight; ties rotate.
    fn least_conn(&self, eligible: &Eligible<'_>) -> usize {
        let list = eligible.list;
        let start = self.counter.fetch_add(1, Ordering::Relaxed) % list.len();
        // Walk from `start` around the list so that ties do not always favour the first.
        (start..list.len())
            .chain(0..start)
            .filter(|i| eligible.contains(*i))
            .min_by_key(|i| load(&list[*i]))
            .unwrap_or(0)
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
    format!("{:016x}", stable_hash(label))
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

/// The upstreams a request may still go to: up, and not tried yet.
struct Eligible<'a> {
    list: &'a [Arc<Upstream>],
    tried: &'a Tried,
}

impl Eligible<'_> {
    fn contains(&self, i: usize) -> bool {
        !self.tried.contains(i) && self.list[i].is_up()
    }

    fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.list.len()).filter(|i| self.contains(*i))
    }
}

/// The indices already tried for a request: a bit mask, with a list beyond 64 upstreams.
#[derive(Debug, Default)]
pub struct Tried {
    mask: u64,
    more: Vec<usize>,
}

impl Tried {
    /// Records `i` as tried.
    pub fn insert(&mut self, i: usize) {
        match i {
            0..64 => self.mask |= 1 << i,
            _ => self.more.push(i),
        }
    }

    /// Whether `i` was tried.
    pub fn contains(&self, i: usize) -> bool {
        match i {
            0..64 => self.mask & (1 << i) != 0,
            _ => self.more.contains(&i),
        }
    }

    /// How many were tried.
    pub fn len(&self) -> usize {
        self.mask.count_ones() as usize + self.more.len()
    }
}

/// Requests in flight per unit of weight.
fn load(upstream: &Upstream) -> u64 {
    upstream.in_flight() as u64 * 1_000_000 / upstream.weight as u64
}

/// Weighted rendezvous hashing: each upstream scores the key; the best score wins, so an
/// upstream going down only moves the keys that were on it.
fn rendezvous<K: Hash + ?Sized>(eligible: &Eligible<'_>, key: &K) -> usize {
    let key = stable_hash(key);
    let score = |i: usize| {
        let upstream = &eligible.list[i];
        let h = stable_hash(&(key, upstream.label.as_str()));
        // u in (0, 1]; -ln(u) / weight is exponentially distributed with rate = weight.
        let u = (h >> 11) as f64 / (1u64 << 53) as f64;
        -(u.max(f64::MIN_POSITIVE)).ln() / upstream.weight as f64
    };
    eligible
        .iter()
        .min_by(|a, b| score(*a).total_cmp(&score(*b)))
        .unwrap_or(0)
}

/// The eligible upstream whose share of the total weight holds `slot` (modulo the total).
fn by_weight(eligible: &Eligible<'_>, slot: u64) -> usize {
    let weight = |i: usize| eligible.list[i].weight as u64;
    let total: u64 = eligible.iter().map(weight).sum();
    let mut slot = slot % total.max(1);
    for i in eligible.iter() {
        if slot < weight(i) {
            return i;
        }
        slot -= weight(i);
    }
    0
}

/// The power of two choices: two weighted random picks, the less loaded one wins (the
/// first on a tie, so idle upstreams share by weight).
fn power_of_two(eligible: &Eligible<'_>) -> usize {
    let a = by_weight(eligible, random_u64());
    let b = by_weight(eligible, random_u64());
    if load(&eligible.list[b]) < load(&eligible.list[a]) {
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
        let mut t = Tried::default();
        tried.iter().for_each(|i| t.insert(*i));
        b.pick(l, &uri.parse().unwrap(), h, None, &t)
    }

    #[test]
    fn tried_holds_indices_past_the_mask() {
        let mut t = Tried::default();
        for i in [0, 63, 64, 200] {
            assert!(!t.contains(i));
            t.insert(i);
            assert!(t.contains(i));
        }
        assert_eq!(t.len(), 4);
        assert!(!t.contains(1) && !t.contains(65));
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

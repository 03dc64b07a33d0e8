//! `basic_auth`: HTTP Basic authentication (RFC 7617) against bcrypt or argon2 hashes.
//!
//! Hashing is slow on purpose, so verification runs on the blocking pool, a few at a time
//! (argon2 needs ~19 MiB each), and a successful (user, password) pair is remembered for a
//! short while under a keyed hash of the two (never the password), because a browser sends
//! the same credentials with every request of a page.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use base64::Engine as _;
use http::{HeaderValue, Request, StatusCode};
use tokio::sync::Semaphore;

use crate::body::Body;
use crate::config::BasicAuthStage;
use crate::pipeline::{client_ip, error_response, HandlerFuture, Middleware, Next};

/// The authenticated user, in the request's extensions for later stages and handlers (and
/// in the response's, for the access log's remote-user field).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthUser(pub String);

/// How long a successful verification is remembered.
const CACHE_TTL: Duration = Duration::from_secs(60);
/// At most this many remembered verifications (memory stays bounded under any load).
const CACHE_CAPACITY: usize = 1024;

/// The `basic_auth` stage.
pub struct BasicAuth {
    inner: Arc<Inner>,
}

struct Inner {
    challenge: HeaderValue,
    users: HashMap<String, String>,
    /// Verified against when the user is unknown, so that unknown and known users cost the
    /// same time (one of the configured hashes: same algorithm and cost).
    dummy: String,
    /// Verifications running at once, at most one per CPU.
    slots: Semaphore,
    cache: Mutex<HashMap<u128, Instant>>,
    keys: (std::hash::RandomState, std::hash::RandomState),
}

impl BasicAuth {
    /// Builds the stage from its options.
    pub fn new(cfg: &BasicAuthStage) -> Result<BasicAuth, String> {
        let challenge = format!("Basic realm=\"{}\", charset=\"UTF-8\"", cfg.realm);
        let dummy = cfg
            .users
            .first()
            .map(|(_, hash)| hash.clone())
            .ok_or("basic_auth needs at least one user")?;
        let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
        Ok(BasicAuth {
            inner: Arc::new(Inner {
                challenge: HeaderValue::from_str(&challenge).map_err(|e| e.to_string())?,
                users: cfg.users.iter().cloned().collect(),
                dummy,
                slots: Semaphore::new(cpus),
                cache: Mutex::new(HashMap::new()),
                keys: Default::default(),
            }),
        })
    }
}

impl Middleware for BasicAuth {
    fn handle(&self, mut req: Request<Body>, next: Next) -> HandlerFuture {
        let inner = Arc::clone(&self.inner);
        let credentials = req
            .headers()
            .get(http::header::AUTHORIZATION)
            .and_then(|v| credentials(v.as_bytes()));
        Box::pin(async move {
            let Some((user, password)) = credentials else {
                return inner.challenge();
            };
            if !inner.check(&user, password).await {
                let client = client_ip(&req).map_or_else(|| "-".to_owned(), |ip| ip.to_string());
                tracing::warn!(user = %user.escape_debug(), client = %client, "basic auth failed");
                return inner.challenge();
            }
            req.extensions_mut().insert(AuthUser(user.clone()));
            let mut resp = next.run(req).await;
            resp.extensions_mut().insert(AuthUser(user));
            resp
        })
    }
}

impl Inner {
    /// 401 with the challenge that makes browsers ask for a user name and password.
    fn challenge(&self) -> http::Response<Body> {
        let mut resp = error_response(StatusCode::UNAUTHORIZED);
        resp.headers_mut()
            .insert(http::header::WWW_AUTHENTICATE, self.challenge.clone());
        resp
    }

    /// Whether `password` is `user`'s: from the cache, else by a full verification.
    async fn check(self: &Arc<Self>, user: &str, password: String) -> bool {
        let key = self.key(user, &password);
        let now = Instant::now();
        {
            let cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
            if cache.get(&key).is_some_and(|until| *until > now) {
                return true;
            }
        }
        let Ok(_slot) = self.slots.acquire().await else {
            return false;
        };
        let (known, hash) = match self.users.get(user) {
            Some(hash) => (true, hash.clone()),
            None => (false, self.dummy.clone()),
        };
        let verified = tokio::task::spawn_blocking(move || verify(&hash, password.as_bytes()))
            .await
            .unwrap_or(false);
        let ok = known && verified;
        if ok {
            self.remember(key);
        }
        ok
    }

    fn remember(&self, key: u128) {
        let now = Instant::now();
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        if cache.len() >= CACHE_CAPACITY {
            cache.retain(|_, until| *until > now);
            if cache.len() >= CACHE_CAPACITY {
                cache.clear();
            }
        }
        cache.insert(key, now + CACHE_TTL);
    }

    /// A 128-bit hash of the pair under keys random to this process (two SipHash keys):
    /// the cache never holds the password, and its keys cannot be precomputed.
    fn key(&self, user: &str, password: &str) -> u128 {
        let half = |state: &std::hash::RandomState| {
            let mut h = state.build_hasher();
            h.write(user.as_bytes());
            h.write_u8(0xff);
            h.write(password.as_bytes());
            h.finish()
        };
        (u128::from(half(&self.keys.0)) << 64) | u128::from(half(&self.keys.1))
    }
}

/// The user name and password of an `Authorization: Basic ...` value.
fn credentials(value: &[u8]) -> Option<(String, String)> {
    let (scheme, rest) = value.split_at_checked(6)?;
    if !scheme.eq_ignore_ascii_case(b"basic ") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(rest.trim_ascii())
        .ok()?;
    // The decoded text becomes the user name: one copy (the password's) instead of two.
    let mut user = String::from_utf8(decoded).ok()?;
    let colon = user.find(':')?;
    let password = user[colon + 1..].to_owned();
    user.truncate(colon);
    Some((user, password))
}

/// Checks `password` against a PHC argon2 or a bcrypt hash.
fn verify(hash: &str, password: &[u8]) -> bool {
    if hash.starts_with("$argon2") {
        use argon2::PasswordVerifier as _;
        argon2::PasswordHash::new(hash).is_ok_and(|h| {
            argon2::Argon2::default()
                .verify_password(password, &h)
                .is_ok()
        })
    } else {
        bcrypt::verify(password, hash).unwrap_or(false)
    }
}

/// A new hash of `password` for the settings file: argon2id with the crate's defaults (OWASP's
/// recommended parameters), or bcrypt at cost 12. Used by `harrier hash-password`.
pub fn hash_password(password: &str, use_bcrypt: bool) -> Result<String, String> {
    if use_bcrypt {
        return bcrypt::hash(password, 12).map_err(|e| e.to_string());
    }
    use argon2::PasswordHasher as _;
    let salt = password_hash::SaltString::generate(&mut password_hash::rand_core::OsRng);
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_decoded() {
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let value = format!("basic {}", b64("alice:pa:ss"));
        let got = credentials(value.as_bytes());
        assert_eq!(got, Some(("alice".into(), "pa:ss".into())));
        assert_eq!(
            credentials(format!("Bearer {}", b64("a:b")).as_bytes()),
            None
        );
        assert_eq!(
            credentials(format!("Basic {}", b64("nocolon")).as_bytes()),
            None
        );
        assert_eq!(credentials(b"Basic !!!"), None);
        assert_eq!(credentials(b"Basic"), None);
    }

    #[test]
    fn hashes_verify() {
        let argon = hash_password("s3cret", false).unwrap();
        assert!(argon.starts_with("$argon2id$"), "{argon}");
        assert!(verify(&argon, b"s3cret"));
        assert!(!verify(&argon, b"s3cret "));
        let bc = bcrypt::hash("s3cret", 4).unwrap();
        assert!(verify(&bc, b"s3cret"));
        assert!(!verify(&bc, b"other"));
    }
}

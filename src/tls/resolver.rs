//! Choosing the certificate for a TLS handshake by SNI: exact name, then wildcard, then the
//! certificates directory (IIS Centralized Certificate Store style), then the default.
//!
//! The configured set lives behind an `ArcSwap` so that reloads swap it atomically: new
//! handshakes see the new certificates, open connections keep theirs.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use arc_swap::ArcSwap;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use super::certs::{self, LoadedCert};

/// Certificates indexed by the names they are valid for.
#[derive(Debug, Default)]
pub struct CertStore {
    exact: HashMap<String, Arc<CertifiedKey>>,
    /// Keyed by the parent domain: `*.example.com` is stored under `example.com`.
    wildcard: HashMap<String, Arc<CertifiedKey>>,
    default: Option<Arc<CertifiedKey>>,
}

impl CertStore {
    /// A store of `certs`; the first one is the default for unknown or absent SNI.
    pub fn new(certs: &[LoadedCert]) -> Self {
        let mut store = CertStore::default();
        for cert in certs {
            for name in &cert.names {
                let map = match name.strip_prefix("*.") {
                    Some(parent) => store.wildcard.entry(parent.to_owned()),
                    None => store.exact.entry(name.clone()),
                };
                // Earlier certificates win for a name listed twice.
                map.or_insert_with(|| Arc::clone(&cert.key));
            }
        }
        store.default = certs.first().map(|c| Arc::clone(&c.key));
        store
    }

    fn find(&self, name: &str) -> Option<Arc<CertifiedKey>> {
        if let Some(k) = self.exact.get(name) {
            return Some(Arc::clone(k));
        }
        // A wildcard covers exactly one label.
        let parent = name.split_once('.')?.1;
        self.wildcard.get(parent).cloned()
    }
}

/// What to do with a ClientHello whose SNI matches no certificate (or that has no SNI).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnknownSni {
    /// Present the default certificate (the client will likely warn about the name).
    Default,
    /// Abort the handshake.
    Refuse,
}

/// `<host>.pem` / `<host>.key` files in a directory, loaded on first use and cached.
#[derive(Debug)]
pub struct DirStore {
    dir: PathBuf,
    cache: RwLock<HashMap<String, Option<Arc<CertifiedKey>>>>,
    provider: Arc<CryptoProvider>,
}

/// Names cached (including misses) before the cache is cleared, to bound memory under SNI scans.
const DIR_CACHE_MAX: usize = 4096;

impl DirStore {
    /// A store over `dir`.
    pub fn new(dir: PathBuf, provider: Arc<CryptoProvider>) -> Self {
        DirStore {
            dir,
            cache: RwLock::new(HashMap::new()),
            provider,
        }
    }

    /// Forgets cached results, so that changed files are read again.
    pub fn clear(&self) {
        if let Ok(mut cache) = self.cache.write() {
            cache.clear();
        }
    }

    fn find(&self, name: &str) -> Option<Arc<CertifiedKey>> {
        if let Some(hit) = self.cache.read().ok()?.get(name) {
            return hit.clone();
        }
        let found = self.load(name).or_else(|| {
            let parent = name.split_once('.')?.1;
            self.load(&format!("_wildcard.{parent}"))
        });
        if let Ok(mut cache) = self.cache.write() {
            if cache.len() >= DIR_CACHE_MAX {
                cache.clear();
            }
            cache.insert(name.to_owned(), found.clone());
        }
        found
    }

    fn load(&self, stem: &str) -> Option<Arc<CertifiedKey>> {
        let cert = self.dir.join(format!("{stem}.pem"));
        let key = self.dir.join(format!("{stem}.key"));
        if !cert.is_file() {
            return None;
        }
        match certs::load_pair(&cert, &key, &self.provider) {
            Ok(loaded) => {
                certs::warn_if_expiring(&cert.display().to_string(), &loaded);
                Some(loaded.key)
            }
            Err(e) => {
                tracing::warn!("certificates_dir: {e}");
                None
            }
        }
    }
}

/// The rustls certificate resolver of one endpoint.
#[derive(Debug)]
pub struct SniResolver {
    store: ArcSwap<CertStore>,
    dir: Option<DirStore>,
    unknown: UnknownSni,
}

impl SniResolver {
    /// A resolver over `store`, then `dir`, with `unknown` for names nothing matches.
    pub fn new(store: CertStore, dir: Option<DirStore>, unknown: UnknownSni) -> Self {
        SniResolver {
            store: ArcSwap::from_pointee(store),
            dir,
            unknown,
        }
    }

    /// Replaces the configured certificates (new handshakes only).
    pub fn swap(&self, store: CertStore) {
        self.store.store(Arc::new(store));
        if let Some(dir) = &self.dir {
            dir.clear();
        }
    }

    /// The directory store, if any.
    pub fn dir(&self) -> Option<&DirStore> {
        self.dir.as_ref()
    }

    /// The certificate for `sni` (already lowercase), following the endpoint's rules.
    pub fn pick(&self, sni: Option<&str>) -> Option<Arc<CertifiedKey>> {
        let store = self.store.load();
        if let Some(name) = sni {
            if let Some(found) = store.find(name) {
                return Some(found);
            }
            if let Some(found) = self
                .dir
                .as_ref()
                .and_then(|d| valid_name(name).then(|| d.find(name)).flatten())
            {
                return Some(found);
            }
        }
        match self.unknown {
            UnknownSni::Default => store.default.clone(),
            UnknownSni::Refuse => None,
        }
    }
}

/// Only plain host names may become file names in the certificates directory.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && !name.starts_with('.')
        && !name.contains("..")
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        // rustls has lowercased the name already; a trailing dot it keeps.
        let sni = hello.server_name().map(|n| n.trim_end_matches('.'));
        let picked = self.pick(sni);
        if picked.is_none() {
            tracing::debug!(sni = ?sni, "no certificate for this server name: handshake refused");
        }
        picked
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_for_the_directory_store_are_plain_host_names() {
        assert!(valid_name("example.com"));
        assert!(valid_name("a-b.example.com"));
        for bad in [
            "",
            "../etc",
            "a/b",
            "a\\b",
            ".hidden",
            "a..b",
            "UPPER.com",
            "x y",
        ] {
            assert!(!valid_name(bad), "{bad}");
        }
    }
}

//! In-memory cache of lookups and small files, in the spirit of nginx's `open_file_cache`.
//!
//! A fresh hit takes a shared read lock, clones an `Arc` and stores one atomic: no syscall and
//! no allocation. Entries are trusted for `revalidate_after`; after that the caller resolves
//! the path again (reusing unchanged contents) and replaces the entry. Memory is bounded by
//! the content budget and by entry counts; eviction is approximately LRU, done in batches so
//! its O(n log n) cost is paid rarely.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{PoisonError, RwLock};
use std::time::{Duration, Instant};

use super::lookup::Resolved;

/// Most entries of any kind; metadata-only entries (large files, redirects) cost a few
/// hundred bytes each, so this bounds memory when the content budget does not.
const MAX_ENTRIES: usize = 16_384;
/// Most cached "not found" answers: a scan of random URLs must not push out real files.
const MAX_NEGATIVE: usize = 1_024;

/// The cache; cheap to share behind the handler.
#[derive(Debug)]
pub struct FileCache {
    enabled: bool,
    max_bytes: u64,
    revalidate_after: Duration,
    epoch: Instant,
    inner: RwLock<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    map: HashMap<Box<str>, Slot>,
    bytes: u64,
    negative: usize,
}

#[derive(Debug)]
struct Slot {
    value: Resolved,
    checked: Instant,
    /// Nanoseconds since `epoch` of the last hit, for eviction.
    used: AtomicU64,
    /// Nanoseconds since `epoch` (plus one, 0 = none) when a caller took on revalidating this
    /// stale entry; until it answers, or `revalidate_after` passes, others use the entry as
    /// fresh. Without it every request arriving during one check checked too: hundreds of
    /// `canonicalize` calls per second under load, each on the blocking pool.
    claimed: AtomicU64,
}

/// A cache answer.
#[derive(Debug)]
pub enum Hit {
    /// Checked within `revalidate_after`: use as is.
    Fresh(Resolved),
    /// Older: check the disk again, reusing this where unchanged.
    Stale(Resolved),
}

impl FileCache {
    /// A cache holding at most `max_bytes` of file content. `enabled = false` turns every
    /// call into a no-op, so the handler has one code path.
    pub fn new(enabled: bool, max_bytes: u64, revalidate_after: Duration) -> FileCache {
        FileCache {
            enabled,
            max_bytes,
            revalidate_after,
            epoch: Instant::now(),
            inner: RwLock::new(Inner::default()),
        }
    }

    /// Whether answers are kept at all.
    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// Looks `key` up.
    pub fn get(&self, key: &str) -> Option<Hit> {
        if !self.enabled {
            return None;
        }
        let now = Instant::now();
        let inner = self.inner.read().unwrap_or_else(PoisonError::into_inner);
        let slot = inner.map.get(key)?;
        slot.used.store(self.tick(now), Ordering::Relaxed);
        let value = slot.value.clone();
        if now.saturating_duration_since(slot.checked) < self.revalidate_after
            || !self.claim(slot, now)
        {
            Some(Hit::Fresh(value))
        } else {
            Some(Hit::Stale(value))
        }
    }

    /// Takes on revalidating a stale `slot`: false if another caller did within
    /// `revalidate_after`.
    fn claim(&self, slot: &Slot, now: Instant) -> bool {
        let tick = self.tick(now) + 1;
        let window = u64::try_from(self.revalidate_after.as_nanos()).unwrap_or(u64::MAX);
        let claimed = slot.claimed.load(Ordering::Relaxed);
        if claimed != 0 && tick.saturating_sub(claimed) < window {
            return false;
        }
        slot.claimed
            .compare_exchange(claimed, tick, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    }

    /// Stores the answer for `key`, checked just now, and evicts if over budget.
    pub fn insert(&self, key: &str, value: Resolved) {
        self.insert_checked_at(key, value, Instant::now());
    }

    fn insert_checked_at(&self, key: &str, value: Resolved, now: Instant) {
        if !self.enabled {
            return;
        }
        let negative = matches!(value, Resolved::NotFound);
        let slot = Slot {
            value,
            checked: now,
            used: AtomicU64::new(self.tick(now)),
            claimed: AtomicU64::new(0),
        };
        let mut inner = self.inner.write().unwrap_or_else(PoisonError::into_inner);
        if negative && inner.negative >= MAX_NEGATIVE && !inner.map.contains_key(key) {
            // Dropping all negatives at once is cheap and keeps the flood from mattering.
            inner
                .map
                .retain(|_, s| !matches!(s.value, Resolved::NotFound));
            inner.negative = 0;
        }
        inner.account(&slot, 1);
        if let Some(old) = inner.map.insert(key.into(), slot) {
            inner.account(&old, -1);
        }
        if inner.bytes > self.max_bytes || inner.map.len() > MAX_ENTRIES {
            self.evict(&mut inner);
        }
    }

    /// Forgets `key` (after finding the disk disagrees with the entry).
    pub fn remove(&self, key: &str) {
        if !self.enabled {
            return;
        }
        let mut inner = self.inner.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(old) = inner.map.remove(key) {
            inner.account(&old, -1);
        }
    }

    /// Evicts least recently used entries down to 7/8 of each budget, so the next few
    /// inserts do not evict again.
    fn evict(&self, inner: &mut Inner) {
        let target_bytes = self.max_bytes - self.max_bytes / 8;
        let target_len = MAX_ENTRIES - MAX_ENTRIES / 8;
        let mut by_age: Vec<(u64, Box<str>)> = inner
            .map
            .iter()
            .map(|(k, s)| (s.used.load(Ordering::Relaxed), k.clone()))
            .collect();
        by_age.sort_unstable_by_key(|(used, _)| *used);
        for (_, key) in by_age {
            if inner.bytes <= target_bytes && inner.map.len() <= target_len {
                break;
            }
            if let Some(old) = inner.map.remove(&key) {
                inner.account(&old, -1);
            }
        }
    }

    fn tick(&self, now: Instant) -> u64 {
        u64::try_from(now.saturating_duration_since(self.epoch).as_nanos()).unwrap_or(u64::MAX)
    }

    #[cfg(test)]
    pub fn stats(&self) -> (usize, u64) {
        let inner = self.inner.read().unwrap_or_else(PoisonError::into_inner);
        (inner.map.len(), inner.bytes)
    }
}

impl Inner {
    /// Adds (`sign = 1`) or removes (`-1`) a slot's share of the budgets.
    fn account(&mut self, slot: &Slot, sign: i8) {
        let bytes = slot.value.memory();
        let negative = usize::from(matches!(slot.value, Resolved::NotFound));
        if sign > 0 {
            self.bytes += bytes;
            self.negative += negative;
        } else {
            self.bytes = self.bytes.saturating_sub(bytes);
            self.negative = self.negative.saturating_sub(negative);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handlers::static_files::entry::{FileEntry, Variant};
    use bytes::Bytes;
    use std::sync::Arc;

    fn file(len: usize) -> Resolved {
        let dir = std::env::temp_dir();
        let meta = std::fs::metadata(&dir).unwrap();
        let mut identity = Variant::describe(dir, &meta, None);
        identity.content = Some(Bytes::from(vec![0; len]));
        Resolved::File(Arc::new(FileEntry {
            content_type: http::HeaderValue::from_static("text/plain"),
            identity,
            encoded: vec![],
        }))
    }

    #[test]
    fn fresh_then_stale() {
        let cache = FileCache::new(true, 1000, Duration::from_secs(60));
        assert!(cache.get("/a").is_none());
        cache.insert("/a", file(10));
        assert!(matches!(
            cache.get("/a"),
            Some(Hit::Fresh(Resolved::File(_)))
        ));
        let always_check = FileCache::new(true, 1000, Duration::ZERO);
        always_check.insert("/a", file(10));
        assert!(matches!(always_check.get("/a"), Some(Hit::Stale(_))));
        assert!(matches!(always_check.get("/a"), Some(Hit::Stale(_))));
        cache.remove("/a");
        assert!(cache.get("/a").is_none());
        assert_eq!(cache.stats(), (0, 0));
    }

    #[test]
    fn one_caller_revalidates_a_stale_entry_while_others_use_it() {
        let cache = FileCache::new(true, 1000, Duration::from_secs(60));
        let long_ago = Instant::now() - Duration::from_secs(120);
        cache.insert_checked_at("/a", file(10), long_ago);
        assert!(matches!(cache.get("/a"), Some(Hit::Stale(_))));
        for _ in 0..3 {
            assert!(matches!(cache.get("/a"), Some(Hit::Fresh(_))));
        }
        // The check answered: a fresh entry, and the next stale one is claimed anew.
        cache.insert("/a", file(10));
        assert!(matches!(cache.get("/a"), Some(Hit::Fresh(_))));
        cache.insert_checked_at("/a", file(10), long_ago);
        assert!(matches!(cache.get("/a"), Some(Hit::Stale(_))));
    }

    #[test]
    fn disabled_cache_holds_nothing() {
        let cache = FileCache::new(false, 1000, Duration::from_secs(60));
        cache.insert("/a", file(10));
        assert!(cache.get("/a").is_none());
    }

    #[test]
    fn evicts_least_recently_used_within_budget() {
        let cache = FileCache::new(true, 100, Duration::from_secs(60));
        cache.insert("/a", file(40));
        cache.insert("/b", file(40));
        cache.get("/a");
        cache.insert("/c", file(40));
        assert!(cache.get("/a").is_some());
        assert!(cache.get("/b").is_none());
        assert!(cache.get("/c").is_some());
        assert_eq!(cache.stats(), (2, 80));
        // Replacing an entry replaces its share of the budget.
        cache.insert("/a", file(10));
        assert_eq!(cache.stats(), (2, 50));
    }

    #[test]
    fn negative_entries_are_bounded() {
        let cache = FileCache::new(true, 100, Duration::from_secs(60));
        cache.insert("/real", file(1));
        for i in 0..MAX_NEGATIVE * 3 {
            cache.insert(&format!("/missing/{i}"), Resolved::NotFound);
        }
        let (len, _) = cache.stats();
        assert!(len <= MAX_NEGATIVE + 1, "{len}");
        assert!(matches!(
            cache.get("/real"),
            Some(Hit::Fresh(Resolved::File(_)))
        ));
    }
}

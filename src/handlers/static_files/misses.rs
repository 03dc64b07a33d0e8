//! One disk lookup per missing key at a time.
//!
//! A cold cache meets its first burst with many requests for the same few files; each miss
//! took a blocking thread of its own for the same `stat`, `open` and read (fifty concurrent
//! clients left fifty blocking threads behind). Requests that miss the same key now queue
//! behind one gate, and all but the first find the answer in the cache when they get through.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};

/// Past this many gates the map drops those nobody holds any more.
const SWEEP_AT: usize = 256;

/// The gates of the keys being looked up now.
#[derive(Debug, Default)]
pub struct Misses {
    gates: Mutex<HashMap<Box<str>, Weak<tokio::sync::Mutex<()>>>>,
    /// Lookups that went to the disk, for tests and diagnostics.
    lookups: AtomicU64,
}

impl Misses {
    /// The gate of `key`, shared with every caller that holds it now.
    pub fn gate(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut gates = self.gates.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(gate) = gates.get(key).and_then(Weak::upgrade) {
            return gate;
        }
        if gates.len() >= SWEEP_AT {
            gates.retain(|_, gate| gate.strong_count() > 0);
        }
        let gate = Arc::new(tokio::sync::Mutex::new(()));
        gates.insert(key.into(), Arc::downgrade(&gate));
        gate
    }

    /// Counts a lookup that goes to the disk.
    pub fn count(&self) {
        self.lookups.fetch_add(1, Ordering::Relaxed);
    }

    /// Lookups that went to the disk so far.
    pub fn lookups(&self) -> u64 {
        self.lookups.load(Ordering::Relaxed)
    }
}

//! Where access-log lines go: standard output, batched per worker thread.
//!
//! One `write` per request cost about as much CPU as the rest of a small request's
//! bookkeeping, so a worker thread collects its lines and writes them together when it runs
//! out of work (tokio's `on_thread_park`, see [`flush_on_park`]) or when [`FLUSH_AT`] bytes
//! are waiting. A line therefore waits at most for the end of the batch of ready events its
//! thread is handling: under light load every line is written at once, as before.
//! Threads that never park (the blocking pool, tests' own runtimes) write each line at once.

use std::cell::RefCell;
use std::io::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};

/// Lines are dropped until the binary asks for them ([`to_stdout`]): a library embedder or a
/// test server has no access log of its own.
static ENABLED: AtomicBool = AtomicBool::new(false);

/// A batch is written once it holds this much, even if its thread never runs out of work.
pub const FLUSH_AT: usize = 32 * 1024;

/// The lines of one thread not yet written.
#[derive(Default)]
struct Batch {
    bytes: Vec<u8>,
    /// This thread parks through [`flush_on_park`], which writes the batch: only then may
    /// lines wait.
    parks: bool,
}

thread_local! {
    static BATCH: RefCell<Batch> = RefCell::new(Batch::default());
}

/// Sends access-log lines to standard output from now on.
pub fn to_stdout() {
    ENABLED.store(true, Ordering::Relaxed);
}

/// Adds one line, written by `fill` (without its newline), to this thread's batch.
pub fn line(fill: impl FnOnce(&mut Vec<u8>)) {
    if !ENABLED.load(Ordering::Relaxed) {
        return;
    }
    let mut fill = Some(fill);
    let batched = BATCH.try_with(|batch| {
        let Ok(mut batch) = batch.try_borrow_mut() else {
            return false;
        };
        if let Some(fill) = fill.take() {
            fill(&mut batch.bytes);
        }
        batch.bytes.push(b'\n');
        if !batch.parks || batch.bytes.len() >= FLUSH_AT {
            write_out(&mut batch.bytes);
        }
        true
    });
    // The thread is ending (its batch is gone) or a line is being written from inside a
    // flush: write this one alone.
    if batched != Ok(true) {
        if let Some(fill) = fill {
            let mut bytes = Vec::with_capacity(256);
            fill(&mut bytes);
            bytes.push(b'\n');
            write_out(&mut bytes);
        }
    }
}

/// For tokio's `on_thread_park`: the thread has no work left, so its lines go out now;
/// from then on its lines may wait for its next park.
pub fn flush_on_park() {
    flush(true);
}

/// For tokio's `on_thread_stop`: nothing is left behind when a thread ends.
pub fn flush_on_stop() {
    flush(false);
}

/// Writes this thread's batch; `parks` says whether its later lines may wait.
fn flush(parks: bool) {
    let _ = BATCH.try_with(|batch| {
        if let Ok(mut batch) = batch.try_borrow_mut() {
            batch.parks = parks;
            write_out(&mut batch.bytes);
        }
    });
}

/// Writes `bytes` in one go and empties it. A closed or full stdout loses the lines rather
/// than failing requests.
fn write_out(bytes: &mut Vec<u8>) {
    if bytes.is_empty() {
        return;
    }
    let _ = std::io::stdout().lock().write_all(bytes);
    bytes.clear();
    // A burst of long lines (long URIs) should not keep its memory for good.
    if bytes.capacity() > 4 * FLUSH_AT {
        bytes.shrink_to(FLUSH_AT);
    }
}

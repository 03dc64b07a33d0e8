//! File-change notifications for certificate files (inotify, FSEvents, ReadDirectoryChanges
//! through `notify`); the server also polls, so a platform without notifications still
//! reloads.

use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;

/// How long to wait after a change before reading, so that a certificate and its key written
/// one after the other are read as a pair.
pub const SETTLE: Duration = Duration::from_millis(200);

/// Watches the directories holding `paths`; each change sends `()`. The watcher stops when
/// the returned handle is dropped. `None` when the platform offers no notifications (the
/// polling fallback then does the work alone).
pub fn watch(
    paths: &[PathBuf],
) -> (
    Option<notify::RecommendedWatcher>,
    mpsc::UnboundedReceiver<()>,
) {
    let (tx, rx) = mpsc::unbounded_channel();
    let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if event.is_ok_and(|e| !e.kind.is_access()) {
            let _ = tx.send(());
        }
    });
    let mut watcher = match watcher {
        Ok(w) => w,
        Err(e) => {
            tracing::debug!("no file-change notifications ({e}); polling certificates only");
            return (None, rx);
        }
    };
    // Watch directories, not files: renames over a file (how tools replace certificates
    // atomically) are seen on the directory.
    let mut dirs: Vec<&Path> = paths
        .iter()
        .map(|p| {
            if p.is_dir() {
                p.as_path()
            } else {
                p.parent().unwrap_or(p)
            }
        })
        .collect();
    dirs.sort();
    dirs.dedup();
    for dir in dirs {
        if let Err(e) = watcher.watch(dir, RecursiveMode::NonRecursive) {
            tracing::debug!("cannot watch {}: {e}; polling it", dir.display());
        }
    }
    (Some(watcher), rx)
}

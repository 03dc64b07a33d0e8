//! Kestrel's limits, enforced the same way on every connection: sizes, timeouts, data rates.

mod body;
mod conn_io;
mod conn_state;
mod head_scan;

pub use body::{BodyLimitError, LimitedBody};
pub use conn_io::{ConnIo, IoLimits, ReleaseSlot, RELEASE_IDLE_AFTER};
pub use conn_state::{ConnShared, RequestGuard};
pub use head_scan::{HeadLimits, HeadScanner, Verdict};

//! When a ready instance is due to be replaced (`[apps.recycle]`): after a number of
//! requests, above a resident memory, past an age, or at times of day (UTC).

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::config::Recycle;

const DAY: u64 = 24 * 60 * 60;

/// Why an instance is recycled (for the log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Reason {
    /// It has answered this many requests.
    Requests(u64),
    /// Its resident memory reached this many bytes.
    Memory(u64),
    /// It has run this long.
    Age(Duration),
    /// The scheduled time of day (minutes after midnight UTC) has come.
    Schedule(u16),
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Requests(n) => write!(f, "{n} requests served"),
            Reason::Memory(bytes) => write!(f, "resident memory {} MiB", bytes / (1024 * 1024)),
            Reason::Age(age) => write!(
                f,
                "running for {}",
                humantime::format_duration(Duration::from_secs(age.as_secs()))
            ),
            Reason::Schedule(m) => write!(f, "scheduled at {:02}:{:02} UTC", m / 60, m % 60),
        }
    }
}

/// What is known about a ready instance when the limits are checked.
pub(super) struct Sample<'a> {
    /// Requests sent to it so far.
    pub requests: u64,
    /// Reads its resident memory (only called when `memory` is set).
    pub rss: &'a dyn Fn() -> Option<u64>,
    /// How long it has been running.
    pub age: Duration,
    /// Its next scheduled recycle, from [`next_time_of_day`] when it became ready.
    pub scheduled: Option<(SystemTime, u16)>,
    /// The wall clock now.
    pub now: SystemTime,
}

/// The first limit of `limits` that `sample` has reached, if any.
pub(super) fn due(limits: &Recycle, sample: Sample<'_>) -> Option<Reason> {
    if let Some(max) = limits.requests {
        if sample.requests >= max {
            return Some(Reason::Requests(sample.requests));
        }
    }
    if let Some(max) = limits.after {
        if sample.age >= max {
            return Some(Reason::Age(sample.age));
        }
    }
    if let Some((when, minute)) = sample.scheduled {
        if sample.now >= when {
            return Some(Reason::Schedule(minute));
        }
    }
    if let Some(max) = limits.memory {
        if let Some(rss) = (sample.rss)() {
            if rss >= max {
                return Some(Reason::Memory(rss));
            }
        }
    }
    None
}

/// The first of the times of day `at` (minutes after midnight UTC) strictly after `now`,
/// with its minute; `None` when `at` is empty.
pub(super) fn next_time_of_day(now: SystemTime, at: &[u16]) -> Option<(SystemTime, u16)> {
    let secs = now.duration_since(UNIX_EPOCH).ok()?.as_secs();
    let midnight = secs - secs % DAY;
    at.iter()
        .map(|&minute| {
            let mut t = midnight + u64::from(minute % (24 * 60)) * 60;
            if t <= secs {
                t += DAY;
            }
            (t, minute)
        })
        .min()
        .map(|(t, minute)| (UNIX_EPOCH + Duration::from_secs(t), minute))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2024-01-02 10:15:30 UTC.
    fn ten_fifteen() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_704_190_530)
    }

    fn sample(requests: u64, age: Duration) -> Sample<'static> {
        Sample {
            requests,
            rss: &|| Some(100 * 1024 * 1024),
            age,
            scheduled: None,
            now: ten_fifteen(),
        }
    }

    #[test]
    fn limits_are_checked_in_turn() {
        let none = Recycle::default();
        assert_eq!(
            due(&none, sample(1_000_000, Duration::from_secs(1 << 30))),
            None
        );

        let limits = Recycle {
            requests: Some(10),
            memory: Some(200 * 1024 * 1024),
            after: Some(Duration::from_secs(3600)),
            at: Vec::new(),
        };
        assert_eq!(due(&limits, sample(9, Duration::from_secs(10))), None);
        assert_eq!(
            due(&limits, sample(10, Duration::from_secs(10))),
            Some(Reason::Requests(10))
        );
        assert_eq!(
            due(&limits, sample(0, Duration::from_secs(3600))),
            Some(Reason::Age(Duration::from_secs(3600)))
        );
        let big = Sample {
            rss: &|| Some(300 * 1024 * 1024),
            ..sample(0, Duration::ZERO)
        };
        assert_eq!(due(&limits, big), Some(Reason::Memory(300 * 1024 * 1024)));
        let unknown = Sample {
            rss: &|| None,
            ..sample(0, Duration::ZERO)
        };
        assert_eq!(due(&limits, unknown), None);
        let scheduled = Sample {
            scheduled: Some((ten_fifteen(), 615)),
            ..sample(0, Duration::ZERO)
        };
        assert_eq!(due(&limits, scheduled), Some(Reason::Schedule(615)));

        // Several limits reached at once: requests, then age, then schedule, then memory
        // (the one that reads /proc comes last).
        let all = |requests, age| Sample {
            rss: &|| Some(300 * 1024 * 1024),
            scheduled: Some((ten_fifteen(), 615)),
            ..sample(requests, age)
        };
        let hour = Duration::from_secs(3600);
        assert_eq!(due(&limits, all(10, hour)), Some(Reason::Requests(10)));
        assert_eq!(due(&limits, all(0, hour)), Some(Reason::Age(hour)));
        assert_eq!(
            due(&limits, all(0, Duration::ZERO)),
            Some(Reason::Schedule(615))
        );
    }

    #[test]
    fn memory_is_only_read_when_limited() {
        let limits = Recycle {
            requests: Some(10),
            ..Recycle::default()
        };
        let s = Sample {
            rss: &|| -> Option<u64> { panic!("read") },
            ..sample(0, Duration::ZERO)
        };
        assert_eq!(due(&limits, s), None);
    }

    #[test]
    fn next_time_of_day_is_today_or_tomorrow() {
        let at = |t: u64| UNIX_EPOCH + Duration::from_secs(t);
        let midnight = 1_704_153_600; // 2024-01-02 00:00 UTC
        assert_eq!(next_time_of_day(ten_fifteen(), &[]), None);
        // 03:30 has passed: tomorrow; 22:00 is still to come today.
        assert_eq!(
            next_time_of_day(ten_fifteen(), &[210]),
            Some((at(midnight + DAY + 210 * 60), 210))
        );
        assert_eq!(
            next_time_of_day(ten_fifteen(), &[210, 1320]),
            Some((at(midnight + 1320 * 60), 1320))
        );
        // Exactly now counts as passed.
        let exactly = at(midnight + 615 * 60);
        assert_eq!(
            next_time_of_day(exactly, &[615]),
            Some((at(midnight + DAY + 615 * 60), 615))
        );
        assert_eq!(
            Reason::Schedule(210).to_string(),
            "scheduled at 03:30 UTC".to_string()
        );
    }
}

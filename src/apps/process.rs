//! Everything about app processes that depends on the operating system: spawning an app
//! into its own process group, stopping the group, and reading a process's memory.
//!
//! Unix: the app leads a new process group (`process_group(0)`), so it and every child it
//! starts can be signalled at once; on Linux it also gets `PR_SET_PDEATHSIG = SIGKILL`, so
//! it dies with harrier even when harrier is killed without a chance to clean up. Windows:
//! the app gets its own console process group (`CREATE_NEW_PROCESS_GROUP`, so a Ctrl-C in
//! harrier's console is harrier's to handle) and is stopped with `TerminateProcess`; its
//! own children are not reached (that would need a job object).

use std::process::ExitStatus;
use std::time::Duration;

use tokio::process::{Child, Command};

/// Whether [`rss_bytes`] works here (recycling on `memory`).
pub(super) const MEMORY_SUPPORTED: bool = cfg!(target_os = "linux");

/// Makes the command start in its own process group (and, on Linux, die with harrier).
pub(super) fn isolate(cmd: &mut Command) {
    #[cfg(unix)]
    {
        cmd.process_group(0);
    }
    #[cfg(target_os = "linux")]
    {
        // SAFETY: the closure runs between fork and exec and only calls async-signal-safe
        // functions (prctl, getppid) on values copied before the fork.
        let parent = std::process::id() as libc::pid_t;
        unsafe {
            cmd.pre_exec(move || {
                if libc::prctl(
                    libc::PR_SET_PDEATHSIG,
                    libc::SIGKILL as libc::c_ulong,
                    0,
                    0,
                    0,
                ) != 0
                {
                    return Err(std::io::Error::last_os_error());
                }
                // harrier died between fork and prctl: the signal will never come.
                if libc::getppid() != parent {
                    return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
                }
                Ok(())
            });
        }
    }
    #[cfg(windows)]
    {
        const CREATE_NEW_PROCESS_GROUP: u32 = 0x0000_0200;
        cmd.creation_flags(CREATE_NEW_PROCESS_GROUP);
    }
}

/// Sends `signal` to the process group led by `pid`; a group that is gone is not an error.
#[cfg(unix)]
fn signal_group(pid: u32, signal: libc::c_int) {
    if pid == 0 || pid > i32::MAX as u32 {
        return;
    }
    // SAFETY: kill has no memory-safety preconditions; a negative pid names a group.
    unsafe {
        libc::kill(-(pid as libc::pid_t), signal);
    }
}

/// Kills whatever is left of the process group led by `pid` (after the leader exited, or
/// when an instance is dropped without being stopped). Elsewhere a no-op: `kill_on_drop`
/// covers the process itself.
pub(super) fn kill_group(pid: u32) {
    #[cfg(unix)]
    signal_group(pid, libc::SIGKILL);
    #[cfg(not(unix))]
    let _ = pid;
}

/// How a stop went.
pub(super) struct Stopped {
    /// The exit status, when it could be read.
    pub status: Option<ExitStatus>,
    /// Whether it had to be killed because it ignored the polite signal for `timeout`.
    pub killed: bool,
}

/// Stops the process `child` (whose pid is `pid`) and its group: SIGTERM to the group,
/// up to `timeout` for the process to exit, then SIGKILL to the group; SIGKILL again
/// afterwards for any member still left. On Windows the process is terminated at once.
pub(super) async fn stop(child: &mut Child, pid: u32, timeout: Duration) -> Stopped {
    #[cfg(unix)]
    {
        signal_group(pid, libc::SIGTERM);
        let stopped = match tokio::time::timeout(timeout, child.wait()).await {
            Ok(status) => Stopped {
                status: status.ok(),
                killed: false,
            },
            Err(_) => {
                signal_group(pid, libc::SIGKILL);
                Stopped {
                    status: child.wait().await.ok(),
                    killed: true,
                }
            }
        };
        signal_group(pid, libc::SIGKILL);
        stopped
    }
    #[cfg(not(unix))]
    {
        let _ = (pid, timeout);
        let _ = child.start_kill();
        Stopped {
            status: child.wait().await.ok(),
            killed: true,
        }
    }
}

/// The resident memory of process `pid` in bytes (Linux: `VmRSS` of `/proc/PID/status`).
#[cfg(target_os = "linux")]
pub(super) fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_vm_rss(&status)
}

/// The resident memory of process `pid`: not available on this platform.
#[cfg(not(target_os = "linux"))]
pub(super) fn rss_bytes(pid: u32) -> Option<u64> {
    let _ = pid;
    None
}

/// `VmRSS:   1234 kB` → bytes.
#[cfg_attr(not(any(target_os = "linux", test)), allow(dead_code))]
fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?;
    let kb: u64 = line.trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kb * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vm_rss_is_read_in_bytes() {
        let status = "Name:\tpython3\nVmPeak:\t  20000 kB\nVmRSS:\t   12345 kB\nThreads:\t1\n";
        assert_eq!(parse_vm_rss(status), Some(12345 * 1024));
        assert_eq!(parse_vm_rss("Name:\tx\n"), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn own_rss_is_readable() {
        assert!(rss_bytes(std::process::id()).unwrap() > 0);
    }
}

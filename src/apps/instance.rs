//! One process of an app: where it listens, its environment, its output forwarded to the
//! log, waiting for it to exit, and stopping it. Dropping an instance that was not stopped
//! kills its process group.

use std::io;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};

use super::process;
use crate::config::{AppConfig, AppListen, UpstreamScheme, UpstreamTarget};
use crate::handlers::proxy::upstream::Upstream;

/// The log target of the apps' own output.
pub const OUTPUT_TARGET: &str = "harrier::app";
/// Longer output lines are cut to this many bytes.
const MAX_LINE: usize = 16 * 1024;

/// A running (starting or ready) process of an app.
pub(super) struct Instance {
    /// Its slot, 0..instances.
    pub index: u32,
    /// The process id (also its process group id on unix).
    pub pid: u32,
    /// What the proxy sees of it; in the app's set only while it is ready.
    pub upstream: Arc<Upstream>,
    /// When it was spawned.
    pub spawned: Instant,
    /// When it passed its readiness check.
    pub ready_at: Option<Instant>,
    /// Its next scheduled recycle (`recycle.at`) and the minute that set it.
    pub scheduled: Option<(SystemTime, u16)>,
    child: Child,
    /// Keeps the socket path (removed with it).
    _socket: Option<SocketLease>,
    exited: bool,
}

impl Instance {
    /// Spawns instance `index` of `app`; `generation` makes its socket name unique.
    pub fn spawn(app: &AppConfig, index: u32, generation: u64) -> io::Result<Instance> {
        let (program, args) = app
            .command
            .split_first()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "empty command"))?;
        // A relative program path (`./bin/app`) is taken from `dir`, on every platform.
        let program = Path::new(program);
        let program = if program.components().count() > 1 && program.is_relative() {
            app.dir.join(program)
        } else {
            program.to_path_buf()
        };
        let mut cmd = Command::new(program);
        cmd.args(args)
            .current_dir(&app.dir)
            .envs(app.env.iter().map(|(k, v)| (k, v)))
            .env("HARRIER_APP", &app.name)
            .env("HARRIER_INSTANCE", index.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let (target, socket) = match app.listen {
            AppListen::Tcp => {
                let port = free_port()?;
                cmd.env("PORT", port.to_string())
                    .env("HARRIER_PORT", port.to_string())
                    .env("ASPNETCORE_PORT", port.to_string())
                    .env("ASPNETCORE_URLS", format!("http://127.0.0.1:{port}"))
                    .env_remove("HARRIER_SOCKET");
                let target = UpstreamTarget::Tcp {
                    scheme: UpstreamScheme::Http,
                    host: "127.0.0.1".into(),
                    port,
                };
                (target, None)
            }
            AppListen::Unix => {
                let lease = SocketLease::new(&app.name, index, generation)?;
                let path = lease.0.clone();
                cmd.env("HARRIER_SOCKET", &path)
                    .env("ASPNETCORE_URLS", format!("http://unix:{}", path.display()))
                    .env_remove("PORT")
                    .env_remove("HARRIER_PORT")
                    .env_remove("ASPNETCORE_PORT");
                (UpstreamTarget::Unix(path), Some(lease))
            }
        };
        process::isolate(&mut cmd);
        let mut child = cmd.spawn()?;
        let pid = child.id().unwrap_or(0);
        if let Some(out) = child.stdout.take() {
            tokio::spawn(forward(out, app.name.clone(), index, false));
        }
        if let Some(err) = child.stderr.take() {
            tokio::spawn(forward(err, app.name.clone(), index, true));
        }
        Ok(Instance {
            index,
            pid,
            upstream: Upstream::new(target, 1, format!("{}#{index}", app.name)),
            spawned: Instant::now(),
            ready_at: None,
            scheduled: None,
            child,
            _socket: socket,
            exited: false,
        })
    }

    /// Resolves when the process exits (cancel-safe); what is left of its group is killed.
    pub async fn wait(&mut self) -> io::Result<ExitStatus> {
        let status = self.child.wait().await;
        if !self.exited {
            self.exited = true;
            process::kill_group(self.pid);
        }
        status
    }

    /// How long it has been ready (zero while starting).
    pub fn ready_for(&self) -> Duration {
        self.ready_at.map(|t| t.elapsed()).unwrap_or_default()
    }

    /// Stops it (polite signal, kill after `timeout`) and logs how it went.
    pub async fn stop(mut self, app: &str, timeout: Duration) {
        if self.exited {
            return;
        }
        let stopped = process::stop(&mut self.child, self.pid, timeout).await;
        self.exited = true;
        let status = describe(stopped.status);
        if stopped.killed {
            tracing::warn!(
                app = %app,
                instance = self.index,
                pid = self.pid,
                "killed: still running {} after the stop signal ({status})",
                humantime::format_duration(timeout)
            );
        } else {
            tracing::info!(
                app = %app,
                instance = self.index,
                pid = self.pid,
                "stopped ({status})"
            );
        }
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        if !self.exited {
            // kill_on_drop kills the process itself; its children go with the group.
            process::kill_group(self.pid);
        }
    }
}

/// An exit status for the log.
pub(super) fn describe(status: Option<ExitStatus>) -> String {
    match status {
        Some(s) => s.to_string(),
        None => "exit status unknown".into(),
    }
}

/// A loopback port nothing listens on right now.
fn free_port() -> io::Result<u16> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
    Ok(listener.local_addr()?.port())
}

/// A socket path of an instance with `listen = "unix"`, in a directory of this process
/// (`harrier-PID` in the temp dir, mode 0700) that exists while any socket lease does.
struct SocketLease(PathBuf);

/// How many [`SocketLease`]s exist; the directory is created and removed under this lock.
static SOCKET_LEASES: Mutex<usize> = Mutex::new(0);

impl SocketLease {
    fn new(app: &str, index: u32, generation: u64) -> io::Result<SocketLease> {
        let name: String = app
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .take(32)
            .collect();
        let mut leases = SOCKET_LEASES.lock().unwrap_or_else(|e| e.into_inner());
        let dir = socket_dir();
        #[cfg_attr(not(unix), allow(unused_mut))]
        let mut builder = std::fs::DirBuilder::new();
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        match builder.create(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
        *leases += 1;
        let path = dir.join(format!("{name}-{index}-{generation}.sock"));
        let _ = std::fs::remove_file(&path);
        Ok(SocketLease(path))
    }
}

impl Drop for SocketLease {
    fn drop(&mut self) {
        let mut leases = SOCKET_LEASES.lock().unwrap_or_else(|e| e.into_inner());
        let _ = std::fs::remove_file(&self.0);
        *leases -= 1;
        if *leases == 0 {
            let _ = std::fs::remove_dir(socket_dir());
        }
    }
}

/// The directory of this process's app sockets.
fn socket_dir() -> PathBuf {
    let mut base = std::env::temp_dir();
    // sun_path holds about 100 bytes; a long TMPDIR (macOS) would not leave room.
    if cfg!(unix) && base.as_os_str().len() > 60 {
        base = PathBuf::from("/tmp");
    }
    base.join(format!("harrier-{}", std::process::id()))
}

/// Forwards `output` line by line to the log: stdout at info, stderr at warn.
async fn forward(output: impl AsyncRead + Unpin, app: String, instance: u32, stderr: bool) {
    let mut reader = BufReader::new(output);
    let mut line = Vec::new();
    let mut cut = false;
    loop {
        let (consumed, complete) = match reader.fill_buf().await {
            Ok([]) | Err(_) => {
                if !line.is_empty() {
                    emit(&line, &app, instance, stderr);
                }
                return;
            }
            Ok(buf) => {
                let end = memchr::memchr(b'\n', buf);
                let piece = &buf[..end.unwrap_or(buf.len())];
                let room = MAX_LINE - line.len();
                cut |= piece.len() > room;
                line.extend_from_slice(&piece[..piece.len().min(room)]);
                (end.map_or(buf.len(), |e| e + 1), end.is_some())
            }
        };
        reader.consume(consumed);
        if complete {
            if cut {
                line.extend_from_slice(" [cut]".as_bytes());
            }
            emit(&line, &app, instance, stderr);
            line.clear();
            cut = false;
        }
    }
}

fn emit(line: &[u8], app: &str, instance: u32, stderr: bool) {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let text = String::from_utf8_lossy(line);
    if stderr {
        tracing::warn!(target: OUTPUT_TARGET, app = %app, instance, "{text}");
    } else {
        tracing::info!(target: OUTPUT_TARGET, app = %app, instance, "{text}");
    }
}

//! `[[apps]]` supervision over real processes: tests/fixtures/app.py (python3, stdlib only)
//! started, probed, crashed, recycled and stopped through the library API.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use harrier::apps::{Apps, Supervisors};
use harrier::config::{AppConfig, AppStart, Readiness, UpstreamTarget};
use harrier::handlers::proxy::upstream::{SetStatus, Upstream, UpstreamSet};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Every test ends within this.
const TEST_BOUND: Duration = Duration::from_secs(60);

async fn bounded<F: Future>(test: F) -> F::Output {
    tokio::time::timeout(TEST_BOUND, test)
        .await
        .expect("the test did not finish in time")
}

/// The python interpreter itself (not a version manager's shim, which would add its own
/// start-up time and process).
fn python() -> &'static str {
    static PYTHON: OnceLock<String> = OnceLock::new();
    PYTHON.get_or_init(|| {
        let out = std::process::Command::new("python3")
            .args(["-c", "import sys; print(sys.executable)"])
            .output()
            .expect("python3 is needed by these tests");
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    })
}

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/app.py")
}

/// The fixture app with small delays, so tests run fast.
fn app(name: &str, dir: &Path) -> AppConfig {
    let mut app = AppConfig::new(
        name,
        vec![python().to_owned(), fixture().display().to_string()],
        dir.to_path_buf(),
    );
    app.restart_delay = Duration::from_millis(50);
    app.restart_delay_max = Duration::from_secs(1);
    app.start_timeout = Duration::from_secs(15);
    app.stop_timeout = Duration::from_secs(3);
    app
}

fn env(app: &mut AppConfig, name: &str, value: &str) {
    app.env.push((name.to_owned(), value.to_owned()));
}

/// Polls `check` every 10 ms until it gives a value; panics after `within`.
async fn until<T>(what: &str, within: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Starts supervising `config` alone: its set and the supervisors.
fn start_one(config: AppConfig) -> (Arc<UpstreamSet>, Supervisors) {
    let apps = Apps::new(std::slice::from_ref(&config));
    (apps.upstreams(&config.name).unwrap(), apps.start())
}

/// The reason the set was stopped for (rapid-fail protection), once it is.
async fn stopped_reason(set: &UpstreamSet) -> String {
    until(
        "rapid-fail protection",
        Duration::from_secs(20),
        || match set.status() {
            SetStatus::Stopped(why) => Some(why),
            _ => None,
        },
    )
    .await
}

/// Waits until none of `pids` runs any more.
#[cfg(unix)]
async fn gone(what: &str, within: Duration, pids: &[u32]) {
    until(what, within, || {
        pids.iter().all(|&p| !alive(p)).then_some(())
    })
    .await
}

/// The set's upstreams once it has `n`.
async fn ready(set: &UpstreamSet, n: usize) -> Vec<Arc<Upstream>> {
    until("the instances to be ready", Duration::from_secs(20), || {
        let list = set.current();
        (list.len() == n).then(|| list.to_vec())
    })
    .await
}

/// GET `path` from `target` with a fresh connection: (status, body).
async fn get(target: &UpstreamTarget, path: &str) -> std::io::Result<(u16, String)> {
    match target {
        UpstreamTarget::Tcp { host, port, .. } => {
            let stream = tokio::net::TcpStream::connect((host.as_str(), *port)).await?;
            exchange(stream, path).await
        }
        #[cfg(unix)]
        UpstreamTarget::Unix(socket) => {
            exchange(tokio::net::UnixStream::connect(socket).await?, path).await
        }
        #[cfg(not(unix))]
        UpstreamTarget::Unix(_) => unreachable!(),
    }
}

async fn exchange(
    mut s: impl AsyncRead + AsyncWrite + Unpin,
    path: &str,
) -> std::io::Result<(u16, String)> {
    let request = format!("GET {path} HTTP/1.1\r\nhost: app\r\nconnection: close\r\n\r\n");
    s.write_all(request.as_bytes()).await?;
    let mut response = Vec::new();
    s.read_to_end(&mut response).await?;
    let response = String::from_utf8_lossy(&response);
    let bad = || std::io::Error::other(format!("not an HTTP response: {response:?}"));
    let (head, body) = response.split_once("\r\n\r\n").ok_or_else(bad)?;
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(bad)?;
    Ok((status, body.to_owned()))
}

/// GET that must answer 200.
async fn get_ok(target: &UpstreamTarget, path: &str) -> String {
    let (status, body) = get(target, path).await.expect("the app answers");
    assert_eq!(status, 200, "GET {path}: {body}");
    body
}

/// `name=value` out of the fixture's `/` answer.
fn field(body: &str, name: &str) -> String {
    body.split(' ')
        .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
        .unwrap_or_else(|| panic!("no {name} in {body:?}"))
        .to_owned()
}

fn pid_of(body: &str) -> u32 {
    field(body, "pid").parse().unwrap()
}

/// The pids of the app and of its `sleep` child out of the fixture's `/` answer.
fn pid_and_child(body: &str) -> (u32, u32) {
    (pid_of(body), field(body, "child").parse().unwrap())
}

fn port_of(target: &UpstreamTarget) -> u16 {
    match target {
        UpstreamTarget::Tcp { port, .. } => *port,
        other => panic!("not TCP: {other:?}"),
    }
}

/// Whether process `pid` still runs (a zombie does not).
#[cfg(unix)]
fn alive(pid: u32) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    if unsafe { libc::kill(pid as libc::pid_t, 0) } != 0 {
        return false;
    }
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the command name in parentheses.
        Ok(stat) => !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => !cfg!(target_os = "linux"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_get_a_port_and_the_environment() {
    bounded(async {
        let dir = tempfile::tempdir().unwrap();
        let mut config = app("web", dir.path());
        config.instances = 2;
        env(&mut config, "GREETING", "hello");
        env(&mut config, "HARRIER_SOCKET", "/must/not/leak");
        let started = Instant::now();
        let (set, supervisors) = start_one(config);
        assert_eq!(set.status(), SetStatus::Starting);
        let list = ready(&set, 2).await;
        eprintln!(
            "two instances ready in {} ms",
            started.elapsed().as_millis()
        );
        assert_eq!(set.status(), SetStatus::Ready);

        let mut pids = Vec::new();
        let mut labels = Vec::new();
        for up in &list {
            let target = &up.target;
            let port = port_of(target).to_string();
            let body = get_ok(target, "/").await;
            let instance = field(&body, "instance");
            assert_eq!(up.label, format!("web#{instance}"));
            labels.push(up.label.clone());
            assert_eq!(field(&body, "app"), "web");
            pids.push(pid_of(&body));
            for var in ["PORT", "HARRIER_PORT", "ASPNETCORE_PORT"] {
                assert_eq!(get_ok(target, &format!("/env?name={var}")).await, port);
            }
            assert_eq!(
                get_ok(target, "/env?name=ASPNETCORE_URLS").await,
                format!("http://127.0.0.1:{port}")
            );
            assert_eq!(get_ok(target, "/env?name=HARRIER_INSTANCE").await, instance);
            assert_eq!(get_ok(target, "/env?name=GREETING").await, "hello");
            // harrier's own environment is passed on.
            assert_eq!(
                get_ok(target, "/env?name=PATH").await,
                std::env::var("PATH").unwrap()
            );
            let (status, _) = get(target, "/env?name=HARRIER_SOCKET").await.unwrap();
            assert_eq!(status, 404, "HARRIER_SOCKET is not set with listen = tcp");
        }
        labels.sort();
        assert_eq!(labels, ["web#0", "web#1"]);
        assert_ne!(port_of(&list[0].target), port_of(&list[1].target));

        supervisors.shutdown().await;
        assert_eq!(set.status(), SetStatus::Stopped("shutting down".into()));
        assert!(set.current().is_empty());
        #[cfg(unix)]
        for pid in pids {
            assert!(!alive(pid), "pid {pid} still runs after shutdown");
        }
    })
    .await
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unix_socket_listen() {
    bounded(async {
        let dir = tempfile::tempdir().unwrap();
        let mut config = app("sock", dir.path());
        config.listen = harrier::config::AppListen::Unix;
        let (set, supervisors) = start_one(config);
        let up = ready(&set, 1).await.remove(0);
        let UpstreamTarget::Unix(path) = &up.target else {
            panic!("not a unix socket: {:?}", up.target);
        };
        assert!(path.exists());
        let body = get_ok(&up.target, "/").await;
        assert_eq!(field(&body, "instance"), "0");
        assert_eq!(
            get_ok(&up.target, "/env?name=HARRIER_SOCKET").await,
            path.display().to_string()
        );
        let (status, _) = get(&up.target, "/env?name=PORT").await.unwrap();
        assert_eq!(status, 404, "PORT is not set with listen = unix");
        supervisors.shutdown().await;
        assert!(!path.exists(), "the socket file is removed");
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_readiness_waits_for_the_health_path() {
    bounded(async {
        let dir = tempfile::tempdir().unwrap();
        let mut config = app("health", dir.path());
        config.ready = Readiness::Http("/healthz".into());
        // The port accepts at once; the health path answers 503 for the first 700 ms.
        env(&mut config, "APP_HEALTH_DELAY_MS", "700");
        let started = Instant::now();
        let (set, supervisors) = start_one(config);
        let up = ready(&set, 1).await.remove(0);
        let took = started.elapsed();
        eprintln!("ready (HTTP) in {} ms", took.as_millis());
        assert!(took >= Duration::from_millis(700), "ready after {took:?}");
        assert_eq!(get_ok(&up.target, "/healthz").await, "ok");
        supervisors.shutdown().await;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_instance_leaves_the_set_and_restarts_with_back_off() {
    bounded(async {
        let dir = tempfile::tempdir().unwrap();
        let mut config = app("crashy", dir.path());
        config.restart_delay = Duration::from_millis(100);
        config.rapid_fail = None;
        let (set, supervisors) = start_one(config);

        let mut up = ready(&set, 1).await.remove(0);
        let mut pid = pid_of(&get_ok(&up.target, "/").await);
        let mut delays = Vec::new();
        for _ in 0..3 {
            get_ok(&up.target, "/crash").await;
            let crashed = Instant::now();
            until(
                "the crashed instance to leave the set",
                Duration::from_secs(5),
                || (!set.current().iter().any(|u| Arc::ptr_eq(u, &up))).then_some(()),
            )
            .await;
            let removed = crashed.elapsed();
            let next = until("a new instance", Duration::from_secs(20), || {
                set.current().first().cloned()
            })
            .await;
            let back = crashed.elapsed();
            let new_pid = pid_of(&get_ok(&next.target, "/").await);
            assert_ne!(new_pid, pid, "a new process");
            #[cfg(unix)]
            assert!(!alive(pid));
            eprintln!(
                "crash: out of the set after {} ms, back after {} ms",
                removed.as_millis(),
                back.as_millis()
            );
            delays.push(back);
            (up, pid) = (next, new_pid);
        }
        // 100 ms, then 200 ms, then 400 ms before each restart.
        assert!(delays[0] >= Duration::from_millis(100), "{delays:?}");
        assert!(delays[1] >= Duration::from_millis(200), "{delays:?}");
        assert!(delays[2] >= Duration::from_millis(400), "{delays:?}");
        supervisors.shutdown().await;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rapid_fail_stops_the_app() {
    bounded(async {
        let dir = tempfile::tempdir().unwrap();
        let mark = dir.path().join("starts");
        let mut config = app("broken", dir.path());
        config.restart_delay = Duration::from_millis(20);
        config.rapid_fail = Some(harrier::config::RapidFail {
            crashes: 3,
            window: Duration::from_secs(10),
        });
        env(&mut config, "APP_EXIT_AT_START", "3");
        env(&mut config, "APP_MARK_FILE", &mark.display().to_string());
        let started = Instant::now();
        let (set, supervisors) = start_one(config);
        let why = stopped_reason(&set).await;
        eprintln!("stopped after {} ms: {why}", started.elapsed().as_millis());
        assert_eq!(
            why,
            "app broken stopped after 3 crashes within 10s; fix it and restart harrier"
        );
        assert!(set.current().is_empty());
        assert_eq!(
            set.wait_for_upstreams(Duration::from_secs(1))
                .await
                .unwrap_err(),
            SetStatus::Stopped(why)
        );
        // The supervisor ended by itself: shutting down has nothing left to wait for, and
        // no fourth start happened.
        supervisors.shutdown().await;
        let starts = std::fs::read_to_string(&mark).unwrap();
        assert_eq!(starts.lines().count(), 3, "{starts}");
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_request_start_waits_for_demand() {
    bounded(async {
        let dir = tempfile::tempdir().unwrap();
        let mark = dir.path().join("starts");
        let mut config = app("lazy", dir.path());
        config.start = AppStart::FirstRequest;
        env(&mut config, "APP_MARK_FILE", &mark.display().to_string());
        let (set, supervisors) = start_one(config);
        // Nothing may happen without a request; give it the time a start would take.
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(!mark.exists(), "started without a request");
        assert!(set.current().is_empty());
        assert_eq!(set.status(), SetStatus::Starting);

        let asked = Instant::now();
        set.demand();
        let list = set
            .wait_for_upstreams(Duration::from_secs(20))
            .await
            .expect("started on demand");
        eprintln!(
            "first request: ready {} ms after demand()",
            asked.elapsed().as_millis()
        );
        get_ok(&list[0].target, "/").await;
        assert_eq!(std::fs::read_to_string(&mark).unwrap().lines().count(), 1);
        supervisors.shutdown().await;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn recycling_after_n_requests_is_overlapped() {
    bounded(async {
        let dir = tempfile::tempdir().unwrap();
        let mut config = app("pool", dir.path());
        config.recycle.requests = Some(40);
        let (set, supervisors) = start_one(config);
        ready(&set, 1).await;

        // Clients behave like the proxy: take the current list, count the request on the
        // upstream while it runs. Some requests are slow, so recycling has to drain.
        let failures = Arc::new(AtomicUsize::new(0));
        let done = Arc::new(AtomicUsize::new(0));
        let stop = tokio_util::sync::CancellationToken::new();
        let pids = Arc::new(std::sync::Mutex::new(Vec::<u32>::new()));
        let mut clients = Vec::new();
        for client in 0..4 {
            let (set, failures, done, stop, pids) = (
                Arc::clone(&set),
                Arc::clone(&failures),
                Arc::clone(&done),
                stop.clone(),
                Arc::clone(&pids),
            );
            clients.push(tokio::spawn(async move {
                let mut n = 0usize;
                while !stop.is_cancelled() {
                    n += 1;
                    let list = set.current();
                    let Some(up) = list.get(n % list.len().max(1)).cloned() else {
                        failures.fetch_add(1, Ordering::Relaxed);
                        eprintln!("client {client}: the set is empty");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    };
                    let _guard = up.start_request();
                    let path = if n % 4 == 0 { "/slow?ms=150" } else { "/" };
                    match get(&up.target, path).await {
                        Ok((200, body)) => {
                            let pid = pid_of(body.trim_start_matches("slow "));
                            let mut pids = pids.lock().unwrap();
                            if !pids.contains(&pid) {
                                pids.push(pid);
                            }
                            done.fetch_add(1, Ordering::Relaxed);
                        }
                        other => {
                            failures.fetch_add(1, Ordering::Relaxed);
                            eprintln!("client {client}: {} failed: {other:?}", up.label);
                        }
                    }
                }
            }));
        }
        // Three generations: two recycles, the first old instance gone.
        let started = Instant::now();
        let first = until("two recycles", Duration::from_secs(30), || {
            let pids = pids.lock().unwrap();
            (pids.len() >= 3).then(|| pids[0])
        })
        .await;
        #[cfg(unix)]
        gone(
            "the first instance to be stopped",
            Duration::from_secs(10),
            &[first],
        )
        .await;
        #[cfg(not(unix))]
        let _ = first;
        stop.cancel();
        for c in clients {
            c.await.unwrap();
        }
        eprintln!(
            "{} requests over {} instances in {} ms, {} failed",
            done.load(Ordering::Relaxed),
            pids.lock().unwrap().len(),
            started.elapsed().as_millis(),
            failures.load(Ordering::Relaxed)
        );
        assert_eq!(failures.load(Ordering::Relaxed), 0, "no request fails");
        supervisors.shutdown().await;
    })
    .await
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_stops_the_whole_process_group() {
    bounded(async {
        let dir = tempfile::tempdir().unwrap();
        // One app ignores SIGTERM (killed after stop_timeout), the other honours it; both
        // have a `sleep` child in their group.
        let mut stubborn = app("stubborn", dir.path());
        stubborn.stop_timeout = Duration::from_millis(700);
        env(&mut stubborn, "APP_IGNORE_TERM", "1");
        env(&mut stubborn, "APP_SPAWN_CHILD", "1");
        let mut polite = app("polite", dir.path());
        polite.stop_timeout = Duration::from_secs(5);
        let apps = Apps::new(&[stubborn, polite]);
        let supervisors = apps.start();
        let mut pids = Vec::new();
        for name in ["stubborn", "polite"] {
            let up = ready(&apps.upstreams(name).unwrap(), 1).await.remove(0);
            if name == "polite" {
                get_ok(&up.target, "/spawn").await;
            }
            let (pid, child) = pid_and_child(&get_ok(&up.target, "/").await);
            assert!(child != 0 && alive(pid) && alive(child));
            pids.extend([pid, child]);
        }
        let started = Instant::now();
        supervisors.shutdown().await;
        let took = started.elapsed();
        eprintln!(
            "shutdown (one app killed after 700 ms) took {} ms",
            took.as_millis()
        );
        // In parallel: the stubborn app's 700 ms, not the sum, and not the polite app's 5 s.
        assert!(took >= Duration::from_millis(700), "{took:?}");
        assert!(took < Duration::from_millis(3000), "{took:?}");
        gone(
            "every process of both groups to be gone",
            Duration::from_secs(5),
            &pids,
        )
        .await;
    })
    .await
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_supervisors_kills_the_group() {
    bounded(async {
        let dir = tempfile::tempdir().unwrap();
        let mut config = app("dropped", dir.path());
        env(&mut config, "APP_SPAWN_CHILD", "1");
        let (set, supervisors) = start_one(config);
        let up = ready(&set, 1).await.remove(0);
        let (pid, child) = pid_and_child(&get_ok(&up.target, "/").await);
        assert!(child != 0 && alive(pid) && alive(child));
        drop(supervisors);
        gone(
            "the app and its child to be killed",
            Duration::from_secs(5),
            &[pid, child],
        )
        .await;
    })
    .await
}

/// The harrier binary serving a settings file with one `[[apps]]` entry (the fixture with
/// `app_env`), its stderr collected.
#[cfg(unix)]
struct Harrier {
    child: std::process::Child,
    stderr: Arc<std::sync::Mutex<Vec<String>>>,
    _dir: tempfile::TempDir,
    mark: PathBuf,
}

#[cfg(unix)]
impl Harrier {
    fn start(app_env: &[(&str, &str)]) -> Harrier {
        use std::io::BufRead;
        let dir = tempfile::tempdir().unwrap();
        let mark = dir.path().join("starts");
        let mut env = format!("APP_MARK_FILE = {:?}", mark.display().to_string());
        for (k, v) in app_env {
            env.push_str(&format!(", {k} = {v:?}"));
        }
        let settings = format!(
            "[[apps]]\nname = \"svc\"\ncommand = [{:?}, {:?}]\nstop_timeout = \"3s\"\n\
             env = {{ {env} }}\n",
            python(),
            fixture().display().to_string(),
        );
        let file = dir.path().join("harrier.toml");
        std::fs::write(&file, settings).unwrap();
        let bin = env!("CARGO_BIN_EXE_harrier");
        let check = std::process::Command::new(bin)
            .arg("check")
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(
            check.status.success(),
            "harrier check: {}",
            String::from_utf8_lossy(&check.stderr)
        );
        let mut child = std::process::Command::new(bin)
            .args(["--listen", "http://127.0.0.1:0"])
            .arg(dir.path())
            .env_remove("HARRIER_CONFIG")
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (pipe, lines) = (child.stderr.take().unwrap(), Arc::clone(&stderr));
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(pipe).lines().map_while(Result::ok) {
                lines.lock().unwrap().push(line);
            }
        });
        Harrier {
            child,
            stderr,
            _dir: dir,
            mark,
        }
    }

    /// Waits for the app to be ready; its pid.
    async fn app_ready(&self) -> u32 {
        until("the app to be ready", Duration::from_secs(20), || {
            let lines = self.stderr.lock().unwrap();
            lines.iter().any(|l| l.contains("ready in")).then_some(())
        })
        .await;
        let starts = std::fs::read_to_string(&self.mark).unwrap();
        starts.lines().next().unwrap().parse().unwrap()
    }

    fn log(&self) -> String {
        self.stderr.lock().unwrap().join("\n")
    }
}

#[cfg(unix)]
impl Drop for Harrier {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The children of process `pid` (Linux).
#[cfg(target_os = "linux")]
fn children(pid: u32) -> Vec<u32> {
    let path = format!("/proc/{pid}/task/{pid}/children");
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_app_dies_with_a_killed_harrier() {
    bounded(async {
        let mut harrier = Harrier::start(&[]);
        let pid = harrier.app_ready().await;
        assert!(alive(pid));
        // The app's output reaches harrier's log, tagged with the app and instance.
        let line = until(
            "the app's output in the log",
            Duration::from_secs(10),
            || {
                let log = harrier.log();
                let tag = format!("(pid {pid})");
                log.lines()
                    .find(|l| l.contains("listening on 127.0.0.1:") && l.contains(&tag))
                    .map(str::to_owned)
            },
        )
        .await;
        assert!(line.contains("svc") && line.contains("instance"), "{line}");
        assert!(harrier.log().contains("a line on stderr"));

        // SIGKILL: harrier cannot clean up; the kernel kills the app (PR_SET_PDEATHSIG).
        harrier.child.kill().unwrap();
        harrier.child.wait().unwrap();
        gone(
            "the app to die with harrier",
            Duration::from_secs(5),
            &[pid],
        )
        .await;
    })
    .await
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn harrier_stops_its_apps_on_sigterm() {
    bounded(async {
        let mut harrier = Harrier::start(&[("APP_SPAWN_CHILD", "1")]);
        let pid = harrier.app_ready().await;
        #[cfg(target_os = "linux")]
        let grandchildren = until("the app's child", Duration::from_secs(10), || {
            let c = children(pid);
            (!c.is_empty()).then_some(c)
        })
        .await;
        #[cfg(not(target_os = "linux"))]
        let grandchildren: Vec<u32> = Vec::new();
        // SAFETY: signalling our own child process.
        unsafe { libc::kill(harrier.child.id() as libc::pid_t, libc::SIGTERM) };
        let status = until("harrier to exit", Duration::from_secs(20), || {
            harrier.child.try_wait().unwrap()
        })
        .await;
        assert!(status.success(), "{status:?}\n{}", harrier.log());
        assert!(!alive(pid), "the app outlived harrier\n{}", harrier.log());
        for child in grandchildren {
            assert!(!alive(child), "the app's child {child} outlived harrier");
        }
        // Stopped politely (the fixture honours SIGTERM), not killed after stop_timeout.
        let log = harrier.log();
        let tag = format!("pid={pid}");
        assert!(
            log.lines()
                .any(|l| l.contains("stopped (") && l.contains(&tag) && !l.contains("killed")),
            "no polite stop of pid {pid} in the log:\n{log}"
        );
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_timeouts_and_spawn_failures_count_as_crashes() {
    bounded(async {
        let dir = tempfile::tempdir().unwrap();
        let rapid_fail = Some(harrier::config::RapidFail {
            crashes: 2,
            window: Duration::from_secs(30),
        });
        // Listens only after 30 s: never ready within its 300 ms.
        let mut slow = app("slow", dir.path());
        slow.instances = 2;
        slow.start_timeout = Duration::from_millis(300);
        slow.rapid_fail = rapid_fail;
        env(&mut slow, "APP_LISTEN_DELAY_MS", "30000");
        let mut missing = app("missing", dir.path());
        missing.command = vec![dir.path().join("no-such-program").display().to_string()];
        missing.rapid_fail = rapid_fail;
        let apps = Apps::new(&[slow, missing]);
        let supervisors = apps.start();
        for name in ["slow", "missing"] {
            let why = stopped_reason(&apps.upstreams(name).unwrap()).await;
            assert!(
                why.starts_with(&format!("app {name} stopped after 2 crashes")),
                "{why}"
            );
        }
        supervisors.shutdown().await;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recycling_on_age_and_memory() {
    bounded(async {
        let dir = tempfile::tempdir().unwrap();
        let mut aged = app("aged", dir.path());
        aged.recycle.after = Some(Duration::from_millis(500));
        let mut configs = vec![aged];
        if cfg!(target_os = "linux") {
            // Any process is above one byte.
            let mut fat = app("fat", dir.path());
            fat.recycle.memory = Some(1);
            configs.push(fat);
        }
        let apps = Apps::new(&configs);
        let supervisors = apps.start();
        for config in &configs {
            let set = apps.upstreams(&config.name).unwrap();
            let first = ready(&set, 1).await.remove(0);
            let pid = pid_of(&get_ok(&first.target, "/").await);
            let since = Instant::now();
            let next = until("a recycle", Duration::from_secs(20), || {
                set.current()
                    .first()
                    .filter(|u| !Arc::ptr_eq(u, &first))
                    .cloned()
            })
            .await;
            eprintln!(
                "{}: recycled {} ms after the first request",
                config.name,
                since.elapsed().as_millis()
            );
            assert_ne!(pid_of(&get_ok(&next.target, "/").await), pid);
            #[cfg(unix)]
            gone("the old instance to stop", Duration::from_secs(10), &[pid]).await;
        }
        supervisors.shutdown().await;
    })
    .await
}

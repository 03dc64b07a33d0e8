//! Shared helpers for integration tests: start a real server on 127.0.0.1:0, talk raw TCP.
#![allow(dead_code)]
pub mod pki;
pub mod upstream;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use harrier::config::{self, LoadOptions};
use harrier::pipeline::Handler;
use harrier::Server;
use tokio::io::{
    AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader, Lines,
};
use tokio::net::TcpStream;
use tokio::process::{Child, ChildStderr, ChildStdout, Command};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Every test step is bounded by this.
pub const STEP: Duration = Duration::from_secs(10);

/// A running in-process server.
pub struct TestServer {
    pub addr: SocketAddr,
    pub dir: PathBuf,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
    _tmp: Option<tempfile::TempDir>,
}

impl TestServer {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Signals shutdown and returns the task that completes when the server has stopped.
    pub fn shutdown(&mut self) -> JoinHandle<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.take().expect("server already shut down")
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// Loads `toml` (as if from `DIR/harrier.toml`) with the server listening on 127.0.0.1:0.
pub fn config_for(dir: &Path, toml: &str) -> harrier::config::Config {
    let opts = LoadOptions {
        app_dir: dir.to_path_buf(),
        config_file: None,
        env: Vec::new(),
        listen: vec!["http://127.0.0.1:0".to_owned()],
        port: None,
    };
    config::load_str(toml, &dir.join("harrier.toml"), &opts).expect("test config must load")
}

/// Starts a server serving `dir` with settings `toml`.
pub async fn start_in(dir: &Path, toml: &str, handler: Option<Handler>) -> TestServer {
    let cfg = config_for(dir, toml);
    let mut server = Server::from_config(cfg);
    if let Some(h) = handler {
        server = server.with_handler(h);
    }
    let bound = server.bind().await.expect("bind");
    let addr = bound.local_addrs()[0];
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(bound.serve(async move {
        let _ = stopped.await;
    }));
    TestServer {
        addr,
        dir: dir.to_path_buf(),
        stop: Some(stop),
        task: Some(task),
        _tmp: None,
    }
}

/// Starts a server over a fresh temporary directory holding `files` (path, contents).
pub async fn start(toml: &str, files: &[(&str, &[u8])]) -> TestServer {
    let tmp = tempfile::tempdir().expect("tempdir");
    for (path, contents) in files {
        let p = tmp.path().join(path);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(&p, contents).expect("write");
    }
    let mut server = start_in(tmp.path(), toml, None).await;
    server._tmp = Some(tmp);
    server
}

/// Serves `toml` on the endpoints it declares (`start` replaces them with one unnamed
/// `--listen` endpoint, which no site can be bound to), with `files` in its directory: the
/// endpoints' addresses in order, the stop signal, the directory.
pub async fn start_endpoints(
    toml: &str,
    files: &[(&str, &[u8])],
) -> (Vec<SocketAddr>, oneshot::Sender<()>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, contents) in files {
        std::fs::write(dir.path().join(name), contents).expect("write");
    }
    let opts = LoadOptions {
        app_dir: dir.path().to_path_buf(),
        ..LoadOptions::default()
    };
    let cfg = config::load_str(toml, &dir.path().join("harrier.toml"), &opts)
        .expect("test config must load");
    let bound = Server::from_config(cfg).bind().await.expect("bind");
    let addrs = bound.local_addrs();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(bound.serve(async move {
        let _ = stopped.await;
    }));
    (addrs, stop, dir)
}

/// Starts a server answering every request with `handler` (over an empty directory).
pub async fn start_with(toml: &str, handler: Handler) -> TestServer {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut server = start_in(tmp.path(), toml, Some(handler)).await;
    server._tmp = Some(tmp);
    server
}

/// Opens a raw TCP connection.
pub async fn connect(addr: SocketAddr) -> TcpStream {
    tokio::time::timeout(STEP, TcpStream::connect(addr))
        .await
        .expect("connect timeout")
        .expect("connect")
}

/// A connection that has had `GET /` answered with 200 and is kept alive.
pub async fn kept_alive(addr: SocketAddr) -> TcpStream {
    let mut s = connect(addr).await;
    s.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        .await
        .expect("write");
    let resp = read_response(&mut s).await;
    assert_eq!(status_of(&resp), 200, "{resp}");
    s
}

/// Sends `bytes` and reads until the server closes the connection (bounded by `STEP`).
pub async fn exchange(addr: SocketAddr, bytes: &[u8]) -> String {
    let mut s = connect(addr).await;
    s.write_all(bytes).await.expect("write");
    read_to_close(&mut s).await
}

/// Reads until EOF or a connection reset, bounded by `STEP`.
pub async fn read_to_close<S: AsyncRead + Unpin>(s: &mut S) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    let read = async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(STEP, read)
        .await
        .expect("server did not close the connection in time");
    String::from_utf8_lossy(&out).into_owned()
}

/// Reads one response head plus `content-length` body bytes from a kept-alive connection.
pub async fn read_response<S: AsyncRead + Unpin>(s: &mut S) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    let read = async {
        loop {
            if let Some(end) = find(&out, b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&out[..end]).to_ascii_lowercase();
                let len = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse::<usize>().ok())
                    .unwrap_or(0);
                if out.len() >= end + 4 + len {
                    break;
                }
            }
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(STEP, read)
        .await
        .expect("no complete response in time");
    String::from_utf8_lossy(&out).into_owned()
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The status code of a raw HTTP/1.1 response.
pub fn status_of(resp: &str) -> u16 {
    resp.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// A handler echoing the request body; body errors become their status (413, 408, 400).
pub fn echo() -> harrier::pipeline::Handler {
    use http_body_util::BodyExt;
    harrier::pipeline::handler_fn(|req: http::Request<harrier::body::Body>| async move {
        match req.into_body().collect().await {
            Ok(c) => http::Response::new(harrier::body::full(c.to_bytes())),
            Err(e) => harrier::pipeline::body_error_response(&e),
        }
    })
}

/// An HTTP/1.1 client and an h2c (prior knowledge) client, named for messages: the pipeline
/// must answer the same on both.
pub fn clients() -> [(&'static str, reqwest::Client); 2] {
    let h1 = reqwest::Client::builder().http1_only().timeout(STEP);
    [("HTTP/1.1", h1.build().expect("client")), ("HTTP/2", h2c())]
}

/// A client speaking HTTP/2 without TLS (prior knowledge), each request bounded by `STEP`.
pub fn h2c() -> reqwest::Client {
    reqwest::Client::builder()
        .http2_prior_knowledge()
        .timeout(STEP)
        .build()
        .expect("client")
}

/// Sends `METHOD target` (Host `t`, `extra` header lines each ending in CRLF) on a new
/// connection that asks to be closed, and returns the raw response.
pub async fn request(addr: SocketAddr, method: &str, target: &str, extra: &str) -> String {
    let req = format!("{method} {target} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n{extra}\r\n");
    exchange(addr, req.as_bytes()).await
}

/// The value of header `name` (any case) in the head of a raw HTTP/1.1 response.
pub fn header_of<'a>(resp: &'a str, name: &str) -> Option<&'a str> {
    resp.split("\r\n\r\n").next()?.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// A `harrier serve` process (the built binary) started from a settings file, with its
/// output read line by line; killed when dropped.
pub struct Served {
    /// The URL it printed as `listening on ...`.
    pub url: String,
    /// Standard output: the access log.
    pub stdout: Lines<BufReader<ChildStdout>>,
    /// Standard error: the other logs, after the listening line.
    pub stderr: Lines<BufReader<ChildStderr>>,
    _child: Child,
    _dir: tempfile::TempDir,
}

impl Served {
    /// Stops the server as SIGTERM does (gracefully: its threads write out what they still
    /// hold) and hands back what it wrote on stdout and did not get read yet, up to the end.
    /// Without SIGTERM (Windows) it is killed.
    pub async fn terminate(mut self) -> Lines<BufReader<ChildStdout>> {
        #[cfg(unix)]
        if let Some(pid) = self._child.id() {
            // SAFETY: signals a child process this test started and has not reaped.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
        }
        #[cfg(not(unix))]
        let _ = self._child.start_kill();
        let _ = tokio::time::timeout(STEP, self._child.wait()).await;
        self.stdout
    }
}

/// Runs `harrier serve -l http://127.0.0.1:0 -c FILE` with `toml` as FILE, and waits for it
/// to listen.
pub async fn serve_binary(toml: &str) -> Served {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("harrier.toml");
    std::fs::write(&file, toml).expect("write settings");
    let mut child = Command::new(env!("CARGO_BIN_EXE_harrier"))
        .args(["serve", "-l", "http://127.0.0.1:0", "-c"])
        .arg(&file)
        .env_remove("RUST_LOG")
        .env_remove("HARRIER_CONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn harrier");
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let stdout = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let listening = line_where(&mut stderr, |l| l.starts_with("listening on ")).await;
    Served {
        url: listening["listening on ".len()..].to_owned(),
        stdout,
        stderr,
        _child: child,
        _dir: dir,
    }
}

/// The next line of `lines` that `wanted` accepts, each read bounded by [`STEP`].
pub async fn line_where<R: AsyncBufRead + Unpin>(
    lines: &mut Lines<R>,
    wanted: impl Fn(&str) -> bool,
) -> String {
    loop {
        let line = tokio::time::timeout(STEP, lines.next_line())
            .await
            .expect("a line in time")
            .expect("read a line")
            .expect("the stream ended first");
        if wanted(&line) {
            return line;
        }
    }
}

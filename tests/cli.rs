//! The command line as users and scripts meet it: the real binary, real signals, curl.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

mod common;

const BIN: &str = env!("CARGO_BIN_EXE_harrier");
const STEP: Duration = Duration::from_secs(20);

/// A running `harrier` process and the URLs it printed.
struct Running {
    child: Child,
    urls: Vec<String>,
    #[cfg_attr(not(unix), allow(dead_code))]
    stderr: mpsc::Receiver<String>,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the binary with `args` and waits for `expect_urls` "listening on" lines.
fn spawn(args: &[&str], env: &[(&str, &str)], dir: &Path, expect_urls: usize) -> Running {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(Stdio::null());
    cmd.env_remove("HARRIER_CONFIG").env_remove("RUST_LOG");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn harrier");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut urls = Vec::new();
    while urls.len() < expect_urls {
        let line = rx
            .recv_timeout(STEP)
            .expect("harrier printed no listening line in time");
        if let Some(url) = line.strip_prefix("listening on ") {
            urls.push(url.to_owned());
        }
    }
    Running {
        child,
        urls,
        stderr: rx,
    }
}

fn site() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("index.html"), "<h1>hello</h1>").unwrap();
    std::fs::write(dir.path().join("data.txt"), "0123456789").unwrap();
    dir
}

fn curl(args: &[&str]) -> std::process::Output {
    let out = Command::new("curl")
        .args(["--silent", "--show-error", "--max-time", "10"])
        .args(args)
        .output()
        .expect("curl must be installed (.ci/run installs it)");
    assert!(
        out.status.success(),
        "curl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The first line the server writes on stdout (its access log), waiting at most `STEP`.
fn first_stdout_line(server: &mut Running) -> String {
    let stdout = server.child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    // The reader ends when the server does (`Running` kills it), line or not.
    std::thread::spawn(move || {
        let _ = tx.send(BufReader::new(stdout).lines().next());
    });
    rx.recv_timeout(STEP)
        .expect("no access log line in time")
        .expect("stdout closed without an access log line")
        .expect("read stdout")
}

fn run(args: &[&str], dir: &Path) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .env_remove("HARRIER_CONFIG")
        .stdin(Stdio::null())
        .output()
        .expect("run harrier")
}

#[cfg(unix)]
fn terminate(child: &mut Child) -> std::process::ExitStatus {
    let ok = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(ok.success());
    let (tx, rx) = mpsc::channel();
    let pid = child.id();
    std::thread::spawn(move || {
        // Bound the wait: if harrier hangs, kill it so the test fails instead of hanging.
        if rx.recv_timeout(STEP).is_err() {
            let _ = Command::new("kill")
                .arg("-KILL")
                .arg(pid.to_string())
                .status();
        }
    });
    let status = child.wait().unwrap();
    let _ = tx.send(());
    status
}

#[test]
fn serves_a_directory_over_http1_and_h2c_with_curl() {
    let dir = site();
    let server = spawn(
        &["serve", ".", "--listen", "http://127.0.0.1:0"],
        &[],
        dir.path(),
        1,
    );
    let url = format!("{}/data.txt", server.urls[0]);
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let out = curl(&["--http1.1", "-i", &url]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.ends_with("0123456789"), "{text}");
    let out = curl(&["--http2-prior-knowledge", "-i", &url]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("HTTP/2 200"), "{text}");
    assert!(
        text.to_ascii_lowercase().contains("server: harrier"),
        "{text}"
    );
    let out = curl(&["--http1.1", "-I", &server.urls[0]]);
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("HTTP/1.1 200"));
}

#[test]
fn app_dir_alone_is_enough() {
    // `harrier DIR` is `harrier serve DIR`; --port 0 keeps the default host.
    let dir = site();
    let server = spawn(&[".", "--port", "0"], &[], dir.path(), 1);
    assert!(
        server.urls[0].starts_with("http://127.0.0.1:"),
        "{:?}",
        server.urls
    );
    let out = curl(&[&server.urls[0]]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "<h1>hello</h1>");
}

#[cfg(unix)]
#[test]
fn sigterm_shuts_down_cleanly_with_exit_code_0() {
    let dir = site();
    let mut server = spawn(&["--listen", "http://127.0.0.1:0"], &[], dir.path(), 1);
    curl(&[&server.urls[0]]);
    let status = terminate(&mut server.child);
    assert_eq!(status.code(), Some(0));
}

#[test]
fn settings_discovery_env_overrides_and_precedence() {
    let dir = site();
    std::fs::write(
        dir.path().join("harrier.toml"),
        "[server]\nadd_server_header = true\n\n[[endpoints]]\nurl = \"http://127.0.0.1:0\"\n",
    )
    .unwrap();
    // APP_DIR/harrier.toml is found; the environment beats the file.
    let server = spawn(
        &["serve", "."],
        &[("HARRIER__SERVER__ADD_SERVER_HEADER", "false")],
        dir.path(),
        1,
    );
    let out = curl(&["-i", &server.urls[0]]);
    let text = String::from_utf8_lossy(&out.stdout).to_ascii_lowercase();
    assert!(text.starts_with("http/1.1 200"), "{text}");
    assert!(
        !text.contains("server: harrier"),
        "env override ignored: {text}"
    );
    drop(server);
    // HARRIER_CONFIG names another file; -l on the command line beats every endpoint in it.
    let other = dir.path().join("other.toml");
    std::fs::write(&other, "[[endpoints]]\nurl = \"http://127.0.0.1:1\"\n").unwrap();
    let server = spawn(
        &[
            "serve",
            ".",
            "-l",
            "http://127.0.0.1:0",
            "-l",
            "http://127.0.0.1:0",
        ],
        &[("HARRIER_CONFIG", other.to_str().unwrap())],
        dir.path(),
        2,
    );
    assert_ne!(server.urls[0], server.urls[1]);
    for url in &server.urls {
        curl(&[url]);
    }
}

#[test]
fn the_access_log_goes_to_stdout_in_combined_format() {
    let dir = site();
    let mut server = spawn(&["--listen", "http://127.0.0.1:0"], &[], dir.path(), 1);
    curl(&["-A", "test-agent", &format!("{}/data.txt", server.urls[0])]);
    let line = first_stdout_line(&mut server);
    assert!(line.starts_with("127.0.0.1 - - ["), "{line}");
    assert!(
        line.contains("] \"GET /data.txt HTTP/1.1\" 200 10 \"-\" \"test-agent\""),
        "{line}"
    );
}

#[test]
fn check_prints_the_effective_config_or_the_error() {
    let dir = site();
    let out = run(&["check", "."], dir.path());
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("max_request_body_size"), "{text}");
    assert!(text.contains("[[endpoints]]"), "{text}");

    std::fs::write(
        dir.path().join("bad.toml"),
        "[limits]\nmax_reqest_body_size = 10\n",
    )
    .unwrap();
    let out = run(&["check", "-c", "bad.toml"], dir.path());
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.toml:2:1"), "{err}");
    assert!(err.contains("limits.max_reqest_body_size"), "{err}");
    assert!(
        err.contains("max_request_body_size"),
        "no suggestion: {err}"
    );

    // The same error stops `serve` with exit code 1 before anything listens.
    let out = run(&["serve", "-c", "bad.toml"], dir.path());
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn usage_errors_exit_with_2() {
    let dir = site();
    assert_eq!(run(&["--no-such-flag"], dir.path()).status.code(), Some(2));
    let out = run(
        &[
            "-l",
            "http://127.0.0.1:0",
            "-l",
            "http://127.0.0.1:0",
            "--port",
            "9",
        ],
        dir.path(),
    );
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(&["--version"], dir.path());
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains(env!("CARGO_PKG_VERSION")));
}

#[test]
fn a_port_in_use_is_a_startup_error() {
    let dir = site();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", taken.local_addr().unwrap());
    let out = run(&["--listen", &url], dir.path());
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains(&url));
}

#[cfg(unix)]
#[test]
fn serves_on_a_unix_socket() {
    let dir = site();
    let sock = dir.path().join("h.sock");
    let url = format!("unix:{}", sock.display());
    let mut server = spawn(&["--listen", &url], &[], dir.path(), 1);
    assert_eq!(server.urls[0], url);
    let out = curl(&[
        "--unix-socket",
        sock.to_str().unwrap(),
        "http://localhost/data.txt",
    ]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "0123456789");
    assert_eq!(terminate(&mut server.child).code(), Some(0));
    assert!(!sock.exists(), "socket file left behind");
}

#[test]
fn the_access_log_can_be_json_or_off() {
    let dir = site();
    let mut server = spawn(
        &["--listen", "http://127.0.0.1:0"],
        &[("HARRIER__LOG__ACCESS_LOG", "json")],
        dir.path(),
        1,
    );
    curl(&[&format!("{}/data.txt?x=1", server.urls[0])]);
    let line = first_stdout_line(&mut server);
    let v: serde_json::Value = serde_json::from_str(&line).expect("one JSON object per line");
    assert_eq!(v["status"], 200, "{line}");
    assert_eq!(v["method"], "GET", "{line}");
    assert_eq!(v["uri"], "/data.txt?x=1", "{line}");
    assert_eq!(v["bytes_sent"], 10, "{line}");
    assert_eq!(v["remote_addr"], "127.0.0.1", "{line}");

    #[cfg(unix)]
    {
        let mut server = spawn(
            &["--listen", "http://127.0.0.1:0"],
            &[("HARRIER__LOG__ACCESS_LOG", "off")],
            dir.path(),
            1,
        );
        curl(&[&server.urls[0]]);
        let mut stdout = server.child.stdout.take().unwrap();
        assert_eq!(terminate(&mut server.child).code(), Some(0));
        let mut out = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut out).unwrap();
        assert_eq!(out, "", "access log is off");
    }
}

/// The verified client certificate's subject reaches the JSON access log, with curl as
/// the client.
#[cfg(unix)]
#[test]
fn the_client_certificate_subject_is_in_the_access_log() {
    use common::pki::{https_endpoint, Ca};
    let ca = Ca::new("Log CA");
    let dir = common::pki::site(&ca, &["localhost", "127.0.0.1"]);
    // One CA issues both the server's certificate and alice's.
    let ca_file = ca.write(dir.path(), "ca.pem");
    let (cert, key) = ca.client("alice").write(dir.path(), "alice");
    let toml = format!(
        "[log]\naccess_log = \"json\"\n{}",
        https_endpoint("client_certificate = \"require\"\nclient_ca = \"ca.pem\"")
    );
    std::fs::write(dir.path().join("harrier.toml"), toml).unwrap();
    let mut server = spawn(&["serve", "."], &[], dir.path(), 1);
    let path = |p: &Path| p.to_str().expect("UTF-8 temp path").to_owned();
    curl(&[
        "--cacert",
        &path(&ca_file),
        "--cert",
        &path(&cert),
        "--key",
        &path(&key),
        &format!("{}/", server.urls[0]),
    ]);
    let line = first_stdout_line(&mut server);
    let v: serde_json::Value = serde_json::from_str(&line).expect("one JSON object per line");
    assert_eq!(v["client_cert"], "CN=alice", "{line}");
    assert_eq!(v["status"], 200, "{line}");
}

#[cfg(unix)]
#[test]
fn sighup_does_not_kill_the_server() {
    let dir = site();
    let mut server = spawn(&["--listen", "http://127.0.0.1:0"], &[], dir.path(), 1);
    let pid = server.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .unwrap()
        .success());
    // The warning proves the signal was handled; the server keeps serving.
    loop {
        let line = server.stderr.recv_timeout(STEP).expect("no reload warning");
        if line.contains("SIGHUP") {
            break;
        }
    }
    let out = curl(&[&format!("{}/data.txt", server.urls[0])]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "0123456789");
    assert_eq!(terminate(&mut server.child).code(), Some(0));
}

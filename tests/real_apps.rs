//! A real WSGI application no one here wrote (httpbin under gunicorn, from PyPI) behind the
//! proxy and as a supervised `[[apps]]` process: responses compared byte for byte with the
//! app's own, an app killed under load and restarted, no processes left after shutdown.
//!
//! `.ci/run` installs gunicorn and httpbin into a virtualenv and names gunicorn in
//! `HARRIER_TEST_GUNICORN`; elsewhere the tests look for that virtualenv
//! (`~/.cache/harrier-py`) and skip with a message when it is missing.
#![cfg(unix)]

mod common;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use common::*;

/// Polls `check` every 50 ms until it holds; panics with `what` after `within`.
async fn eventually<F: std::future::Future<Output = bool>>(
    what: &str,
    within: Duration,
    mut check: impl FnMut() -> F,
) {
    tokio::time::timeout(within, async {
        while !check().await {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("timed out waiting for {what}"));
}

/// Headers that legitimately differ between a direct and a proxied response.
const VARYING: [&str; 5] = [
    "date",
    "server",
    "connection",
    "keep-alive",
    "transfer-encoding",
];

fn comparable(resp: &reqwest::Response) -> Vec<(String, String)> {
    let mut headers: Vec<(String, String)> = resp
        .headers()
        .iter()
        .filter(|(k, _)| !VARYING.contains(&k.as_str()))
        .map(|(k, v)| {
            (
                k.to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    headers.sort();
    headers
}

#[tokio::test]
async fn httpbin_behind_the_proxy_answers_byte_for_byte_as_it_does_directly() {
    let Some(gunicorn) = gunicorn() else { return };
    let port = upstream::closed_port();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut app = tokio::process::Command::new(&gunicorn)
        .args(["-b", &addr.to_string(), "-w", "2", "httpbin:app"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start gunicorn");
    eventually("gunicorn to listen", STEP, || async {
        tokio::net::TcpStream::connect(addr).await.is_ok()
    })
    .await;
    let toml = format!(
        "[server]\nadd_server_header = false\n{}",
        upstream::proxy_site(&format!("http://{addr}"))
    );
    let server = start(&toml, &[]).await;
    let direct = reqwest::Client::builder()
        .http1_only()
        .timeout(STEP)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let through = [
        ("HTTP/1.1", direct.clone()),
        (
            "HTTP/2",
            reqwest::Client::builder()
                .http2_prior_knowledge()
                .timeout(STEP)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
        ),
    ];
    let paths = [
        "/status/418",
        "/bytes/5000?seed=7",
        "/stream-bytes/20000?seed=3&chunk_size=1000",
        "/response-headers?x-a=1&x-b=2",
        "/html",
        "/xml",
        "/robots.txt",
        "/base64/aGFycmllcg==",
        "/deny",
        "/encoding/utf8",
        "/image/png",
        "/redirect-to?url=/html&status_code=302",
        "/cookies/set?a=1",
    ];
    for path in paths {
        let want = direct
            .get(format!("http://{addr}{path}"))
            .send()
            .await
            .unwrap();
        let (want_status, want_headers) = (want.status(), comparable(&want));
        let want_body = want.bytes().await.unwrap();
        for (name, client) in &through {
            let got = client.get(server.url(path)).send().await.unwrap();
            assert_eq!(got.status(), want_status, "{name} {path}");
            assert_eq!(comparable(&got), want_headers, "{name} {path}");
            assert_eq!(got.bytes().await.unwrap(), want_body, "{name} {path}");
        }
    }
    // Conditional and range requests pass through too.
    let got = direct
        .get(server.url("/etag/abc"))
        .header("if-none-match", "\"abc\"")
        .send()
        .await
        .unwrap();
    assert_eq!(got.status(), 304);
    let got = direct
        .get(server.url("/range/1000"))
        .header("range", "bytes=10-19")
        .send()
        .await
        .unwrap();
    assert_eq!(got.status(), 206);
    assert_eq!(got.bytes().await.unwrap().len(), 10);
    // A body goes up whole, and the app sees the client through X-Forwarded-For.
    let data = "x".repeat(1 << 20);
    let got = direct
        .post(server.url("/anything?k=v"))
        .body(data.clone())
        .send()
        .await
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&got.bytes().await.unwrap()).unwrap();
    assert_eq!(json["data"].as_str().map(str::len), Some(data.len()));
    assert_eq!(json["args"]["k"], "v");
    assert_eq!(
        json["origin"], "127.0.0.1",
        "httpbin reads X-Forwarded-For as the origin"
    );
    let _ = app.kill().await;
}

/// Processes whose command line contains `marker`.
fn pids_with(marker: &str) -> Vec<u32> {
    let out = std::process::Command::new("pgrep")
        .args(["-f", marker])
        .output()
        .expect("pgrep");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

#[tokio::test]
async fn httpbin_as_a_supervised_app_survives_being_killed_under_load() {
    let Some(gunicorn) = gunicorn() else { return };
    let marker = format!("harrier-test-{}", std::process::id());
    let toml = format!(
        r#"{site}
[[apps]]
name = "httpbin"
command = ["sh", "-c", "exec {gunicorn} -b 127.0.0.1:$PORT -w 1 --name {marker} httpbin:app"]
ready = "/get"
start_timeout = "20s"
restart_delay = "100ms"
stop_timeout = "5s"
"#,
        site = upstream::site(r#"{ type = "app", app = "httpbin", passive_health = "off" }"#),
        gunicorn = gunicorn.display()
    );
    let mut server = start(&toml, &[]).await;
    let client = reqwest::Client::builder().timeout(STEP).build().unwrap();
    let ok = |client: reqwest::Client, url: String| async move {
        matches!(client.get(url).send().await, Ok(r) if r.status() == 200)
    };
    // Requests wait for the app to become ready rather than failing.
    assert!(ok(client.clone(), server.url("/get")).await);

    // Kill the app's processes while a request loop runs; it comes back.
    let load = {
        let (client, url) = (client.clone(), server.url("/get"));
        tokio::spawn(async move {
            let mut good = 0;
            for _ in 0..200 {
                if ok(client.clone(), url.clone()).await {
                    good += 1;
                }
            }
            good
        })
    };
    let before = pids_with(&marker);
    assert!(!before.is_empty(), "gunicorn runs with the marker");
    for pid in &before {
        unsafe { libc::kill(*pid as i32, libc::SIGKILL) };
    }
    eventually(
        "the app to be restarted and answer again",
        Duration::from_secs(30),
        || async {
            let now = pids_with(&marker);
            !now.is_empty()
                && now.iter().all(|p| !before.contains(p))
                && ok(client.clone(), server.url("/get")).await
        },
    )
    .await;
    let good = load.await.unwrap();
    assert!(good > 0, "the request loop got answers");

    // Shutdown stops the whole process group: nothing with the marker is left.
    tokio::time::timeout(STEP, server.shutdown())
        .await
        .unwrap()
        .unwrap();
    eventually("no app process to outlive harrier", STEP, || async {
        pids_with(&marker).is_empty()
    })
    .await;
}

/// A program the tests need: `$VAR` when set (CI sets it: it must exist), else `fallback`
/// when it exists, else `None` (skip, with a message).
fn tool(var: &str, fallback: Option<PathBuf>) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(var) {
        let path = PathBuf::from(path);
        assert!(path.exists(), "{var}={} does not exist", path.display());
        return Some(path);
    }
    match fallback.filter(|p| p.exists()) {
        Some(path) => Some(path),
        None => {
            eprintln!("skipping: {var} not set and no fallback found (see .ci/run)");
            None
        }
    }
}

/// A program of the virtualenv `.ci/run` sets up (`~/.cache/harrier-py`).
fn venv(program: &str) -> Option<PathBuf> {
    let home = std::env::var_os("HOME")?;
    Some(
        PathBuf::from(home)
            .join(".cache/harrier-py/bin")
            .join(program),
    )
}

/// gunicorn, with httpbin in its virtualenv.
fn gunicorn() -> Option<PathBuf> {
    tool("HARRIER_TEST_GUNICORN", venv("gunicorn"))
}

fn node() -> Option<PathBuf> {
    tool("HARRIER_TEST_NODE", Some(PathBuf::from("/usr/bin/node")))
}

fn uvicorn() -> Option<PathBuf> {
    tool("HARRIER_TEST_UVICORN", venv("uvicorn"))
}

fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

async fn json(client: &reqwest::Client, url: &str) -> serde_json::Value {
    let resp = client.get(url).send().await.expect("request");
    assert_eq!(resp.status(), 200, "{url}");
    serde_json::from_slice(&resp.bytes().await.unwrap()).expect("json")
}

#[tokio::test]
async fn a_node_web_garden_is_balanced_streams_events_and_recycles_without_a_failed_request() {
    let Some(node) = node() else { return };
    let toml = format!(
        r#"
[[sites]]
hosts = ["*"]
[[sites.routes]]
path = "/garden/*"
handler = {{ type = "app", app = "garden", strip_prefix = "/garden" }}
[[sites.routes]]
path = "/pool/*"
handler = {{ type = "app", app = "pool", strip_prefix = "/pool" }}

[[apps]]
name = "garden"
command = ["{node}", "{script}"]
instances = 2

[[apps]]
name = "pool"
command = ["{node}", "{script}"]
recycle = {{ requests = 25 }}
"#,
        node = node.display(),
        script = fixture("node_app.js")
    );
    let server = start(&toml, &[]).await;
    let client = reqwest::Client::builder().timeout(STEP).build().unwrap();
    // Requests flow as soon as one instance is ready; the second joins when it is.
    let mut pids = std::collections::HashSet::new();
    let deadline = std::time::Instant::now() + STEP;
    while pids.len() < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "only {pids:?} answered"
        );
        let j = json(&client, &server.url("/garden/hello?x=1")).await;
        assert_eq!(j["url"], "/hello?x=1");
        assert_eq!(j["forwardedFor"], "127.0.0.1");
        pids.insert(j["pid"].as_u64().unwrap());
    }

    let mut resp = client
        .get(server.url("/garden/events"))
        .send()
        .await
        .unwrap();
    let mut events = Vec::new();
    while let Some(chunk) = tokio::time::timeout(STEP, resp.chunk())
        .await
        .unwrap()
        .unwrap()
    {
        events.push(String::from_utf8_lossy(&chunk).into_owned());
    }
    assert_eq!(events.concat(), "data: 1\n\ndata: 2\n\ndata: 3\n\n");
    assert!(events.len() >= 2, "events arrive one by one: {events:?}");

    // Recycling after 25 requests (checked every second), under a steady request loop that
    // runs until two recycles happened: no request fails.
    let mut pids = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut i = 0;
    while pids.len() < 3 {
        assert!(
            std::time::Instant::now() < deadline,
            "no recycle within 30 s: {pids:?}"
        );
        i += 1;
        let resp = client
            .post(server.url("/pool/work"))
            .body(vec![b'p'; 1000])
            .send()
            .await
            .unwrap_or_else(|e| panic!("request {i} failed during recycling: {e}"));
        assert_eq!(resp.status(), 200, "request {i}");
        let j: serde_json::Value = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
        assert_eq!(j["bodyLength"], 1000);
        let pid = j["pid"].as_u64().unwrap();
        if pids.last() != Some(&pid) {
            pids.push(pid);
        }
    }
    eprintln!("{i} requests, no failure, across instances {pids:?}");
}

#[tokio::test]
async fn an_asgi_app_under_uvicorn_on_a_unix_socket_with_websockets() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let Some(uvicorn) = uvicorn() else { return };
    let toml = format!(
        r#"{site}
[[apps]]
name = "asgi"
command = ["sh", "-c", "exec {uvicorn} --uds \"$HARRIER_SOCKET\" --app-dir {dir} asgi_app:app"]
listen = "unix"
"#,
        site = upstream::site(r#"{ type = "app", app = "asgi" }"#),
        uvicorn = uvicorn.display(),
        dir = fixture("")
    );
    let server = start(&toml, &[]).await;
    let client = reqwest::Client::builder()
        .http2_prior_knowledge()
        .timeout(STEP)
        .build()
        .unwrap();
    let j = json(&client, &server.url("/items?id=7")).await;
    assert_eq!(j["path"], "/items");
    assert_eq!(j["query"], "id=7");
    assert_eq!(j["forwarded_proto"], "http");
    let url = format!("ws://{}/ws", server.addr);
    let (mut ws, _) = tokio::time::timeout(STEP, tokio_tungstenite::connect_async(&url))
        .await
        .unwrap()
        .expect("WebSocket through harrier to uvicorn");
    ws.send(Message::text("hi")).await.unwrap();
    let echoed = tokio::time::timeout(STEP, ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(echoed, Message::text("echo: hi"));
}

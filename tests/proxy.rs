//! The `proxy` handler over real sockets: a harrier in front of in-process upstream servers,
//! real HTTP/1.1, HTTP/2 and WebSocket clients.

mod common;

use std::sync::atomic::Ordering::SeqCst;
use std::time::Duration;

use common::upstream::{self, proxy_site, site, Kind};
use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn get_json(client: &reqwest::Client, url: &str) -> serde_json::Value {
    let resp = client.get(url).send().await.expect("request");
    assert_eq!(resp.status(), 200, "{url}");
    serde_json::from_slice(&resp.bytes().await.expect("body")).expect("json")
}

fn h1() -> reqwest::Client {
    reqwest::Client::builder()
        .http1_only()
        .timeout(STEP)
        .build()
        .unwrap()
}

#[tokio::test]
async fn forwards_over_h1_and_h2_with_forwarding_headers_and_without_hop_by_hop() {
    let up = upstream::start("a", Kind::Http1).await;
    let toml = site(&format!(
        r#"{{ type = "proxy", upstreams = ["{}"], forwarded = {{ forwarded = true, via = true }} }}"#,
        up.url()
    ));
    let server = start(&toml, &[]).await;
    for (name, client) in clients() {
        let url = server.url("/echo/x?y=1");
        let resp = client
            .get(&url)
            .header("x-forwarded-for", "6.6.6.6")
            .header("x-custom", "1")
            .send()
            .await
            .expect("request");
        assert_eq!(resp.status(), 200, "{name}");
        let via = resp
            .headers()
            .get("via")
            .map(|v| v.to_str().unwrap().to_owned());
        assert_eq!(via.as_deref(), Some("1.1 harrier"), "{name}");
        let json: serde_json::Value = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
        let h = &json["headers"];
        assert_eq!(json["uri"], "/echo/x?y=1", "{name}");
        assert_eq!(json["version"], "HTTP/1.1", "{name}");
        assert_eq!(
            h["x-forwarded-for"], "127.0.0.1",
            "{name}: untrusted value replaced"
        );
        assert_eq!(h["x-forwarded-proto"], "http", "{name}");
        assert_eq!(h["x-forwarded-host"], server.addr.to_string(), "{name}");
        assert_eq!(h["host"], server.addr.to_string(), "{name}: Host preserved");
        assert_eq!(h["x-custom"], "1", "{name}");
        let forwarded = format!("for=127.0.0.1;proto=http;host=\"{}\"", server.addr);
        assert_eq!(h["forwarded"], forwarded.as_str(), "{name}");
        let version = if name == "HTTP/2" { "2" } else { "1.1" };
        assert_eq!(h["via"], format!("{version} harrier").as_str(), "{name}");
    }

    // Hop-by-hop headers, including those named in Connection, go neither way.
    let raw = exchange(
        server.addr,
        b"GET /echo HTTP/1.1\r\nHost: x\r\nConnection: close, x-secret\r\nx-secret: 1\r\nKeep-Alive: 5\r\nTE: gzip\r\n\r\n",
    )
    .await;
    assert_eq!(status_of(&raw), 200, "{raw}");
    let body = &raw[raw.find("\r\n\r\n").unwrap() + 4..];
    let json: serde_json::Value = serde_json::from_str(body).expect(body);
    for gone in ["x-secret", "keep-alive", "te", "connection"] {
        assert!(
            json["headers"].get(gone).is_none(),
            "{gone} forwarded: {json}"
        );
    }
    let resp = h1().get(server.url("/hop")).send().await.unwrap();
    assert_eq!(resp.headers()["x-end-to-end"], "kept");
    assert!(resp.headers().get("x-hop-named").is_none());
    assert!(resp.headers().get("keep-alive").is_none());
}

#[tokio::test]
async fn trusted_peers_get_their_forwarding_headers_appended() {
    let up = upstream::start("a", Kind::Http1).await;
    let toml = site(&format!(
        r#"{{ type = "proxy", upstreams = ["{}"], forwarded = {{ trusted_proxies = ["127.0.0.1/32"] }} }}"#,
        up.url()
    ));
    let server = start(&toml, &[]).await;
    let resp = h1()
        .get(server.url("/echo"))
        .header("x-forwarded-for", "203.0.113.7")
        .header("x-forwarded-proto", "https")
        .send()
        .await
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
    assert_eq!(json["headers"]["x-forwarded-for"], "203.0.113.7, 127.0.0.1");
    assert_eq!(json["headers"]["x-forwarded-proto"], "https");
}

#[tokio::test]
async fn paths_host_and_header_rules() {
    let up = upstream::start("a", Kind::Http1).await;
    let toml = format!(
        r#"
[[sites]]
hosts = ["*"]
[[sites.routes]]
path = "/api/*"
handler = {{ type = "proxy", upstreams = ["{url}"], strip_prefix = "/api", add_prefix = "/v2", host = "upstream", request_headers = {{ set = {{ "x-from" = "{{client_ip}}" }}, remove = ["x-drop"] }}, response_headers = {{ set = {{ "x-proxied" = "yes" }}, remove = ["x-upstream"] }} }}
[[sites.routes]]
path = "/fixed/*"
handler = {{ type = "proxy", upstreams = ["{url}"], host = "internal.example" }}
"#,
        url = up.url()
    );
    let server = start(&toml, &[]).await;
    let resp = h1()
        .get(server.url("/api/users?id=3"))
        .header("x-drop", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["x-proxied"], "yes");
    assert!(resp.headers().get("x-upstream").is_none());
    let json: serde_json::Value = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
    assert_eq!(json["uri"], "/v2/users?id=3");
    assert_eq!(json["headers"]["host"], up.addr.to_string());
    assert_eq!(json["headers"]["x-from"], "127.0.0.1");
    assert!(json["headers"].get("x-drop").is_none());
    let json = get_json(&h1(), &server.url("/fixed/x")).await;
    assert_eq!(json["headers"]["host"], "internal.example");
    assert_eq!(json["uri"], "/fixed/x");
}

/// Which upstream answered each of `n` GETs of `path`.
async fn spread(client: &reqwest::Client, url: &str, n: usize) -> Vec<String> {
    let mut names = Vec::new();
    for _ in 0..n {
        let resp = client.get(url).send().await.expect("request");
        assert_eq!(resp.status(), 200);
        names.push(resp.headers()["x-upstream"].to_str().unwrap().to_owned());
    }
    names
}

#[tokio::test]
async fn load_balancing_policies() {
    let a = upstream::start("a", Kind::Http1).await;
    let b = upstream::start("b", Kind::Http1).await;
    let ups = format!(r#"["{}", {{ url = "{}", weight = 3 }}]"#, a.url(), b.url());
    let count = |names: &[String], n: &str| names.iter().filter(|x| *x == n).count();

    let rr = start(
        &site(&format!(r#"{{ type = "proxy", upstreams = {ups} }}"#)),
        &[],
    )
    .await;
    let names = spread(&h1(), &rr.url("/echo"), 8).await;
    assert_eq!(
        (count(&names, "a"), count(&names, "b")),
        (2, 6),
        "{names:?}"
    );

    let first = start(
        &site(&format!(
            r#"{{ type = "proxy", upstreams = {ups}, policy = "first" }}"#
        )),
        &[],
    )
    .await;
    assert_eq!(count(&spread(&h1(), &first.url("/echo"), 5).await, "a"), 5);

    let random = start(
        &site(&format!(
            r#"{{ type = "proxy", upstreams = {ups}, policy = "random" }}"#
        )),
        &[],
    )
    .await;
    let names = spread(&h1(), &random.url("/echo"), 60).await;
    assert!(
        count(&names, "a") > 0 && count(&names, "b") > 0,
        "{names:?}"
    );

    for policy in ["ip_hash", "uri_hash", "header:x-tenant"] {
        let s = start(
            &site(&format!(
                r#"{{ type = "proxy", upstreams = {ups}, policy = "{policy}" }}"#
            )),
            &[],
        )
        .await;
        let client = reqwest::Client::builder()
            .http1_only()
            .default_headers(
                [(
                    http::HeaderName::from_static("x-tenant"),
                    http::HeaderValue::from_static("t1"),
                )]
                .into_iter()
                .collect(),
            )
            .build()
            .unwrap();
        let names = spread(&client, &s.url("/echo/same"), 6).await;
        assert!(names.iter().all(|n| *n == names[0]), "{policy}: {names:?}");
        if policy == "uri_hash" {
            let mut seen = std::collections::HashSet::new();
            for k in 0..40 {
                seen.extend(spread(&client, &s.url(&format!("/echo/{k}")), 1).await);
            }
            assert_eq!(seen.len(), 2, "uri_hash spreads different URLs");
        }
    }

    // least_conn: while a slow request holds one upstream, the next go to the other.
    let ab = format!(r#"["{}", "{}"]"#, a.url(), b.url());
    let lc = start(
        &site(&format!(
            r#"{{ type = "proxy", upstreams = {ab}, policy = "least_conn" }}"#
        )),
        &[],
    )
    .await;
    let slow_url = lc.url("/slow?ms=1500");
    let slow = tokio::spawn(async move {
        h1().get(slow_url)
            .send()
            .await
            .map(|r| r.headers()["x-upstream"].to_str().unwrap().to_owned())
    });
    // Wait until the slow request is in flight upstream.
    tokio::time::timeout(STEP, async {
        while a.hits() + b.hits() == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("slow request reached an upstream");
    let names = spread(&h1(), &lc.url("/echo"), 4).await;
    let slow_on = slow.await.unwrap().unwrap();
    assert!(
        names.iter().all(|n| *n != slow_on),
        "{slow_on} was busy: {names:?}"
    );
}

#[tokio::test]
async fn cookie_policy_is_sticky_and_signed() {
    let a = upstream::start("a", Kind::Http1).await;
    let b = upstream::start("b", Kind::Http1).await;
    let toml = site(&format!(
        r#"{{ type = "proxy", upstreams = ["{}", "{}"], policy = "cookie:srv", cookie_secret = "0123456789abcdef0123" }}"#,
        a.url(),
        b.url()
    ));
    let server = start(&toml, &[]).await;
    let resp = h1().get(server.url("/echo")).send().await.unwrap();
    let first = resp.headers()["x-upstream"].to_str().unwrap().to_owned();
    let cookie = resp.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        cookie.starts_with("srv=") && cookie.contains("HttpOnly"),
        "{cookie}"
    );
    let pair = cookie.split(';').next().unwrap().to_owned();
    for _ in 0..6 {
        let resp = h1()
            .get(server.url("/echo"))
            .header("cookie", &pair)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.headers()["x-upstream"], first.as_str());
        assert!(resp.headers().get("set-cookie").is_none());
    }
}

#[tokio::test]
async fn connection_failures_are_retried_for_safe_requests_and_mark_the_upstream_down() {
    let good = upstream::start("good", Kind::Http1).await;
    let dead = format!("http://127.0.0.1:{}", upstream::closed_port());
    let toml = site(&format!(
        r#"{{ type = "proxy", upstreams = ["{dead}", "{}"], policy = "first", passive_health = {{ max_failures = 1, fail_duration = "1m" }} }}"#,
        good.url()
    ));
    let server = start(&toml, &[]).await;
    // POST is not retried: the dead upstream answers 502 ...
    let resp = h1()
        .post(server.url("/echo"))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 502);
    let text = resp.text().await.unwrap();
    assert!(text.contains("could not be reached"), "{text}");
    // ... which marked it down: now everything goes to the good one.
    let names = spread(&h1(), &server.url("/echo"), 3).await;
    assert!(names.iter().all(|n| n == "good"));

    // A GET to a fresh handler is retried on the next upstream at once, with its headers.
    let toml = site(&format!(
        r#"{{ type = "proxy", upstreams = ["{dead}", "{}"], policy = "first" }}"#,
        good.url()
    ));
    let server = start(&toml, &[]).await;
    let resp = h1()
        .get(server.url("/echo"))
        .header("x-custom", "kept")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let json: serde_json::Value = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
    assert_eq!(json["upstream"], "good");
    assert_eq!(json["headers"]["x-custom"], "kept", "{json}");
    assert_eq!(json["headers"]["x-forwarded-for"], "127.0.0.1", "{json}");

    // With every upstream down: 503 with a clear body.
    let toml = site(&format!(
        r#"{{ type = "proxy", upstreams = ["{dead}"], retries = 0 }}"#
    ));
    let server = start(&toml, &[]).await;
    assert_eq!(
        h1().get(server.url("/")).send().await.unwrap().status(),
        502
    );
    let resp = h1().get(server.url("/")).send().await.unwrap();
    assert_eq!(resp.status(), 503);
    let text = resp.text().await.unwrap();
    assert!(text.contains("is down"), "{text}");
}

#[tokio::test]
async fn timeouts_answer_504_or_cut_the_body() {
    let up = upstream::start("a", Kind::Http1).await;
    let toml = site(&format!(
        r#"{{ type = "proxy", upstreams = ["{}"], response_header_timeout = "300ms", body_idle_timeout = "300ms", passive_health = "off" }}"#,
        up.url()
    ));
    let server = start(&toml, &[]).await;
    let started = std::time::Instant::now();
    let resp = h1().get(server.url("/slow?ms=5000")).send().await.unwrap();
    assert_eq!(resp.status(), 504);
    assert!(started.elapsed() < Duration::from_secs(3));
    let resp = h1().get(server.url("/stall")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.bytes().await.is_err(),
        "a stalled body must be cut, not completed"
    );
    // The server still answers.
    assert_eq!(spread(&h1(), &server.url("/echo"), 1).await, ["a"]);

    // A TLS upstream that accepts TCP but never answers the handshake: connect timeout.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = silent.local_addr().unwrap().port();
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = silent.accept().await {
            held.push(s);
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let ca = pki::Ca::new("upstream CA");
    ca.write(dir.path(), "ca.pem");
    let toml = site(&format!(
        r#"{{ type = "proxy", upstreams = ["https://127.0.0.1:{port}"], connect_timeout = "300ms", tls = {{ ca = "ca.pem" }} }}"#
    ));
    let server = start_in(dir.path(), &toml, None).await;
    let resp = h1().get(server.url("/")).send().await.unwrap();
    assert_eq!(resp.status(), 504);
    hold.abort();
}

#[tokio::test]
async fn streams_large_bodies_both_ways_and_events_as_they_come() {
    let up = upstream::start("a", Kind::Http1).await;
    let toml = proxy_site(&up.url());
    let server = start(&toml, &[]).await;
    for (name, client) in clients() {
        let body = vec![7u8; 8 * 1024 * 1024];
        let resp = client
            .post(server.url("/echo"))
            .body(body)
            .send()
            .await
            .unwrap();
        let json: serde_json::Value = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
        assert_eq!(json["body_len"], 8 * 1024 * 1024, "{name}");
        let resp = client.get(server.url("/big?mib=16")).send().await.unwrap();
        assert_eq!(resp.bytes().await.unwrap().len(), 16 << 20, "{name}");
    }
    // Server-sent events: the first event arrives while the upstream still holds the second.
    let mut resp = h1().get(server.url("/sse")).send().await.unwrap();
    let first = tokio::time::timeout(STEP, resp.chunk())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(&first[..], b"data: one\n\n");
    up.release.notify_one();
    let second = tokio::time::timeout(STEP, resp.chunk())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(&second[..], b"data: two\n\n");
}

#[tokio::test]
async fn request_body_limits_hold_through_the_proxy() {
    let up = upstream::start("a", Kind::Http1).await;
    let toml = format!(
        "[limits]\nmax_request_body_size = \"1KiB\"\n{}",
        proxy_site(&up.url())
    );
    let server = start(&toml, &[]).await;
    let resp = h1()
        .post(server.url("/echo"))
        .body(vec![1u8; 4096])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);
    // Chunked (no length known up front): cut while streaming.
    let mut s = connect(server.addr).await;
    s.write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        .await
        .unwrap();
    let chunk = format!("{:x}\r\n{}\r\n", 3000, "y".repeat(3000));
    let _ = s.write_all(chunk.as_bytes()).await;
    let resp = read_response(&mut s).await;
    assert_eq!(status_of(&resp), 413, "{resp}");
}

#[tokio::test]
async fn active_health_checks_take_upstreams_out_and_back() {
    let a = upstream::start("a", Kind::Http1).await;
    let b = upstream::start("b", Kind::Http1).await;
    let toml = site(&format!(
        r#"{{ type = "proxy", upstreams = ["{}", "{}"], policy = "first", health_check = {{ path = "/healthz", interval = "50ms", timeout = "50ms", healthy_threshold = 1, unhealthy_threshold = 2 }} }}"#,
        a.url(),
        b.url()
    ));
    let server = start(&toml, &[]).await;
    assert_eq!(spread(&h1(), &server.url("/echo"), 1).await, ["a"]);
    a.health.store(503, std::sync::atomic::Ordering::SeqCst);
    wait_for_upstream(&server, "b").await;
    a.health.store(200, std::sync::atomic::Ordering::SeqCst);
    wait_for_upstream(&server, "a").await;
}

/// Polls until `name` answers `/echo` (bounded by `STEP`).
async fn wait_for_upstream(server: &TestServer, name: &str) {
    let client = h1();
    tokio::time::timeout(STEP, async {
        loop {
            if spread(&client, &server.url("/echo"), 1).await[0] == name {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{name} never answered"));
}

#[tokio::test]
async fn h2c_unix_and_https_upstreams() {
    let h2 = upstream::start("h2", Kind::H2c).await;
    let toml = site(&format!(
        r#"{{ type = "proxy", upstreams = ["h2c://{}"] }}"#,
        h2.addr
    ));
    let server = start(&toml, &[]).await;
    let json = get_json(&h1(), &server.url("/echo")).await;
    assert_eq!(json["version"], "HTTP/2.0");
    assert_eq!(
        json["headers"].get("host"),
        None,
        "HTTP/2 carries the host in :authority"
    );

    let dir = tempfile::tempdir().unwrap();
    // An https upstream, trusted through tls.ca, that also wants a client certificate.
    let ca = pki::Ca::new("upstream CA");
    ca.write(dir.path(), "ca.pem");
    let leaf = ca.server(&["upstream.test"]);
    let client_leaf = ca.client("harrier");
    let (cert, key) = leaf.write(dir.path(), "upstream");
    client_leaf.write(dir.path(), "client");
    let tls_up = upstream::start_tls("tls", &cert, &key, &dir.path().join("ca.pem")).await;
    #[cfg(unix)]
    let unix_up = upstream::start_unix("unix", &dir.path().join("up.sock")).await;
    let mut toml = format!(
        r#"
[[sites]]
hosts = ["*"]
[[sites.routes]]
path = "/tls/*"
handler = {{ type = "proxy", upstreams = ["https://127.0.0.1:{port}"], tls = {{ ca = "ca.pem", server_name = "upstream.test", certificate = "client.pem", key = "client.key" }} }}
"#,
        port = tls_up.addr.port()
    );
    if cfg!(unix) {
        toml.push_str(
            r#"
[[sites.routes]]
path = "/unix/*"
handler = { type = "proxy", upstreams = ["unix:up.sock"] }
"#,
        );
    }
    let server = start_in(dir.path(), &toml, None).await;
    let json = get_json(&h1(), &server.url("/tls/echo")).await;
    assert_eq!(json["upstream"], "tls");
    assert_eq!(json["version"], "HTTP/2.0", "ALPN picked h2");
    #[cfg(unix)]
    {
        let json = get_json(&h1(), &server.url("/unix/echo")).await;
        assert_eq!(json["upstream"], "unix");
        let _ = unix_up;
    }
}

#[tokio::test]
async fn websockets_are_tunnelled_and_counted() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let up = upstream::start("a", Kind::Http1).await;
    let toml = format!(
        "[limits]\nmax_concurrent_upgraded_connections = 1\n{}",
        proxy_site(&up.url())
    );
    let server = start(&toml, &[]).await;
    let url = format!("ws://{}/ws", server.addr);
    let (mut ws, resp) = tokio::time::timeout(STEP, tokio_tungstenite::connect_async(&url))
        .await
        .unwrap()
        .expect("websocket handshake through the proxy");
    assert_eq!(resp.status(), 101);
    for text in ["hello", "world"] {
        ws.send(Message::text(text)).await.unwrap();
        let echoed = tokio::time::timeout(STEP, ws.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(echoed, Message::text(text));
    }
    let big = vec![9u8; 1 << 20];
    ws.send(Message::binary(big.clone())).await.unwrap();
    let echoed = tokio::time::timeout(STEP, ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(echoed.into_data().len(), big.len());

    // The limit is one upgraded connection: a second is refused while the first is open.
    let second = tokio_tungstenite::connect_async(&url).await;
    match second {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 503),
        other => panic!("second upgrade should be refused: {other:?}"),
    }
    ws.close(None).await.unwrap();
    drop(ws);
    // Once closed, another may open.
    tokio::time::timeout(STEP, async {
        loop {
            if tokio_tungstenite::connect_async(&url).await.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("upgrade permit released after close");
}

#[tokio::test]
async fn raw_http1_pipelined_keep_alive_through_the_proxy() {
    let up = upstream::start("a", Kind::Http1).await;
    let toml = proxy_site(&up.url());
    let server = start(&toml, &[]).await;
    let mut s = connect(server.addr).await;
    s.write_all(b"GET /status/204 HTTP/1.1\r\nHost: x\r\n\r\nGET /status/404 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut all = String::new();
    tokio::time::timeout(STEP, s.read_to_string(&mut all))
        .await
        .unwrap()
        .unwrap();
    let statuses: Vec<&str> = all.lines().filter(|l| l.starts_with("HTTP/1.1")).collect();
    assert_eq!(
        statuses,
        ["HTTP/1.1 204 No Content", "HTTP/1.1 404 Not Found"],
        "{all}"
    );
}

#[tokio::test]
async fn websockets_over_http2_extended_connect_reach_an_http1_upstream() {
    use futures_util::{SinkExt, StreamExt};
    use hyper_util::rt::{TokioExecutor, TokioIo};
    use tokio_tungstenite::tungstenite::{protocol::Role, Message};
    let up = upstream::start("a", Kind::Http1).await;
    let toml = proxy_site(&up.url());
    let server = start(&toml, &[]).await;
    let tcp = connect(server.addr).await;
    let (mut send, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .expect("h2 handshake");
    tokio::spawn(conn);
    // One ordinary request first, so the server's SETTINGS (ENABLE_CONNECT_PROTOCOL) are in.
    let get = http::Request::get(server.url("/status/204"))
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .unwrap();
    let resp = tokio::time::timeout(STEP, send.send_request(get))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(resp.status(), 204);
    let mut connect_req = http::Request::builder()
        .method(http::Method::CONNECT)
        .uri(server.url("/ws"))
        .header("sec-websocket-version", "13")
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .unwrap();
    connect_req
        .extensions_mut()
        .insert(hyper::ext::Protocol::from_static("websocket"));
    let mut resp = tokio::time::timeout(STEP, send.send_request(connect_req))
        .await
        .unwrap()
        .expect("extended CONNECT");
    assert_eq!(resp.status(), 200);
    let upgraded = tokio::time::timeout(STEP, hyper::upgrade::on(&mut resp))
        .await
        .unwrap()
        .expect("h2 stream as a tunnel");
    let mut ws = tokio_tungstenite::WebSocketStream::from_raw_socket(
        TokioIo::new(upgraded),
        Role::Client,
        None,
    )
    .await;
    for text in ["over", "h2"] {
        ws.send(Message::text(text)).await.unwrap();
        let echoed = tokio::time::timeout(STEP, ws.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(echoed, Message::text(text));
    }
}

/// Waits (bounded by STEP) until `cond` holds; the upstream's connection counters change
/// on its own tasks, after the response the test saw.
async fn until(what: &str, cond: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + STEP;
    while !cond() {
        assert!(tokio::time::Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn http1_upstream_connections_are_kept_and_reused() {
    let up = upstream::start("a", Kind::Http1).await;
    let server = start(&proxy_site(&up.url()), &[]).await;
    let client = h1();
    // Bodies of every shape end cleanly and leave the connection reusable: JSON, empty
    // (204, 304 never polled), HEAD, streamed chunks, a request body.
    for path in [
        "/echo",
        "/status/204",
        "/status/304",
        "/big?mib=1",
        "/echo?x=1",
    ] {
        let resp = client.get(server.url(path)).send().await.unwrap();
        let status = resp.status();
        let body = resp.bytes().await.unwrap();
        assert!(status.is_success() || status == 304, "{path}: {status}");
        if path == "/big?mib=1" {
            assert_eq!(body.len(), 1024 * 1024);
        }
    }
    let head = client.head(server.url("/echo")).send().await.unwrap();
    assert_eq!(head.status(), 200);
    let post = client
        .post(server.url("/echo"))
        .body(vec![b'p'; 100_000])
        .send()
        .await
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&post.bytes().await.unwrap()).unwrap();
    assert_eq!(json["body_len"], 100_000);
    // The upstream sees the path in origin form, as a client would send it.
    assert_eq!(json["uri"], "/echo", "{json}");
    assert_eq!(up.hits(), 7);
    assert_eq!(up.connections.load(SeqCst), 1, "one kept connection");
}

#[tokio::test]
async fn an_abandoned_response_body_closes_its_upstream_connection() {
    let up = upstream::start("a", Kind::Http1).await;
    let server = start(&proxy_site(&up.url()), &[]).await;
    let mut s = connect(server.addr).await;
    s.write_all(b"GET /big?mib=8 HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut first = [0u8; 1024];
    let n = tokio::time::timeout(STEP, s.read(&mut first))
        .await
        .unwrap()
        .unwrap();
    assert!(first[..n].starts_with(b"HTTP/1.1 200"));
    drop(s);
    // The rest of that body must not reach the next request: its connection is closed,
    // and the next request gets a new one and a clean answer.
    until("the upstream connection is closed", || {
        up.closed.load(SeqCst) == 1
    })
    .await;
    let json = get_json(&h1(), &server.url("/echo")).await;
    assert_eq!(json["uri"], "/echo");
    assert_eq!(up.connections.load(SeqCst), 2);
}

#[tokio::test]
async fn a_connection_the_upstream_closed_while_idle_is_not_used() {
    // An upstream that answers a connection's first request, keeps it open (no
    // `Connection: close`) until the test says, then closes it.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let close = std::sync::Arc::new(tokio::sync::Notify::new());
    let closed = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (close2, closed2) = (close.clone(), closed.clone());
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let (close, closed) = (close2.clone(), closed2.clone());
            tokio::spawn(async move {
                let head = read_response(&mut s).await;
                assert!(head.starts_with("POST / "), "{head}");
                let _ = s
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                    .await;
                close.notified().await;
                drop(s);
                closed.fetch_add(1, SeqCst);
            });
        }
    });
    let server = start(&proxy_site(&format!("http://{addr}")), &[]).await;
    // POST is not retried on another upstream, so only the pool's own check of an idle
    // connection (or its resend of a request that never left) can save the next one.
    for i in 0..3 {
        let resp = h1().post(server.url("/")).body("x").send().await.unwrap();
        assert_eq!(resp.status(), 200, "request {i}");
        assert_eq!(resp.text().await.unwrap(), "ok");
        close.notify_one();
        until("the upstream closed", || closed.load(SeqCst) == i + 1).await;
    }
}

#[tokio::test]
async fn idle_upstream_connections_close_after_pool_idle_timeout() {
    let up = upstream::start("a", Kind::Http1).await;
    let toml = site(&format!(
        r#"{{ type = "proxy", upstreams = ["{}"], pool_idle_timeout = "200ms" }}"#,
        up.url()
    ));
    let server = start(&toml, &[]).await;
    get_json(&h1(), &server.url("/echo")).await;
    until("the idle connection is closed", || {
        up.closed.load(SeqCst) == 1
    })
    .await;
    get_json(&h1(), &server.url("/echo")).await;
    assert_eq!(up.connections.load(SeqCst), 2);
}

/// A raw HTTP/1.1 upstream on 127.0.0.1:0 whose every connection runs `serve` with the
/// stream; counts connections.
async fn raw_upstream<F, Fut>(serve: F) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>)
where
    F: Fn(tokio::net::TcpStream) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let conns = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = conns.clone();
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            counted.fetch_add(1, SeqCst);
            tokio::spawn(serve(s));
        }
    });
    (format!("http://{addr}"), conns)
}

/// Reads a request head from `s` (bytes past it stay in `buf`); its content-length.
async fn request_head(s: &mut tokio::net::TcpStream, buf: &mut Vec<u8>) -> Option<usize> {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            buf.drain(..end + 4);
            return Some(
                head.lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0),
            );
        }
        let mut chunk = [0u8; 65536];
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

#[tokio::test]
async fn an_early_answer_does_not_cut_the_request_body_it_did_not_wait_for() {
    // The upstream answers 202 as soon as it has the head, then reads the body (RFC 9112
    // §9.5: without `Connection: close` the client must go on sending it).
    let received = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let cut = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (r, c) = (received.clone(), cut.clone());
    let (url, _conns) = raw_upstream(move |mut s| {
        let (received, cut) = (r.clone(), c.clone());
        async move {
            let mut buf = Vec::new();
            while let Some(len) = request_head(&mut s, &mut buf).await {
                let _ = s
                    .write_all(b"HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\n\r\n")
                    .await;
                let mut left = len - buf.len().min(len);
                buf.drain(..buf.len().min(len));
                let mut chunk = vec![0u8; 65536];
                while left > 0 {
                    match s.read(&mut chunk[..left.min(65536)]).await {
                        Ok(0) | Err(_) => {
                            cut.fetch_add(1, SeqCst);
                            return;
                        }
                        Ok(n) => left -= n,
                    }
                }
                received.fetch_add(1, SeqCst);
            }
        }
    })
    .await;
    let server = start(&proxy_site(&url), &[]).await;
    for i in 0..2 {
        let resp = h1()
            .post(server.url("/upload"))
            .body(vec![b'x'; 16 << 20])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 202, "request {i}");
        until("the upstream read the whole body", || {
            received.load(SeqCst) + cut.load(SeqCst) == i + 1
        })
        .await;
    }
    assert_eq!((received.load(SeqCst), cut.load(SeqCst)), (2, 0));
}

#[tokio::test]
async fn a_response_with_trailers_leaves_its_connection_reusable() {
    let (url, conns) = raw_upstream(|mut s| async move {
        let mut buf = Vec::new();
        while request_head(&mut s, &mut buf).await.is_some() {
            let answer = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ntrailer: x-t\r\n\r\n2\r\nok\r\n0\r\nx-t: 1\r\n\r\n";
            if s.write_all(answer).await.is_err() {
                return;
            }
        }
    })
    .await;
    let server = start(&proxy_site(&url), &[]).await;
    for _ in 0..3 {
        let resp = h1().get(server.url("/")).send().await.unwrap();
        assert_eq!(resp.text().await.unwrap(), "ok");
    }
    assert_eq!(conns.load(SeqCst), 1);
}

//! The `basic_auth` stage and `harrier hash-password`: hashes made by the binary, used in a
//! settings file, checked over real sockets (HTTP/1.1 and HTTP/2); failures logged without
//! the password; the user in the request's extensions and the access log.

mod common;

use std::process::Stdio;
use std::sync::Arc;

use common::*;
use harrier::config::BasicAuthStage;
use harrier::middleware::basic_auth::{AuthUser, BasicAuth};
use harrier::pipeline::{handler_fn, Chain, Middleware};
use tokio::io::AsyncWriteExt;
use tokio::process::Command;
use tokio::time::timeout;

const BIN: &str = env!("CARGO_BIN_EXE_harrier");

/// Runs `harrier hash-password [args]` with `input` on stdin: (exit code, stdout, stderr).
async fn hash_password(input: &str, args: &[&str]) -> (i32, String, String) {
    let mut child = Command::new(BIN)
        .arg("hash-password")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn harrier");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input.as_bytes()).await.unwrap();
    drop(stdin);
    let out = timeout(STEP, child.wait_with_output())
        .await
        .expect("hash-password finished in time")
        .unwrap();
    let text = |b: Vec<u8>| String::from_utf8(b).unwrap();
    (
        out.status.code().unwrap_or(-1),
        text(out.stdout),
        text(out.stderr),
    )
}

fn settings(users: &str) -> String {
    format!(
        r#"
[[sites]]
hosts = ["*"]

[[sites.use]]
type = "basic_auth"
realm = "staff area"
users = {{ {users} }}

[[sites.routes]]
handler = {{ type = "respond", status = 200, body = "secret stuff" }}
"#
    )
}

#[tokio::test]
async fn hashes_from_the_cli_protect_a_site_over_http1_and_http2() {
    let (code, argon, err) = hash_password("correct horse\n", &[]).await;
    assert_eq!(code, 0, "{err}");
    let argon = argon.trim_end();
    assert!(argon.starts_with("$argon2id$"), "{argon}");
    let (code, bcrypt, err) = hash_password("bob's pw\r\n", &["--bcrypt"]).await;
    assert_eq!(code, 0, "{err}");
    let bcrypt = bcrypt.trim_end();
    assert!(
        bcrypt.starts_with("$2b$12$") && bcrypt.len() == 60,
        "{bcrypt}"
    );

    let toml = settings(&format!("alice = \"{argon}\", bob = \"{bcrypt}\""));
    let server = start(&toml, &[]).await;
    let url = server.url("/");
    for (proto, client) in clients() {
        let resp = client.get(&url).send().await.unwrap();
        assert_eq!(resp.status(), 401, "{proto}: no credentials");
        assert_eq!(
            resp.headers()["www-authenticate"],
            "Basic realm=\"staff area\", charset=\"UTF-8\"",
            "{proto}"
        );
        let status = |user: &str, pw: &str| {
            let req = client.get(&url).basic_auth(user, Some(pw));
            async move { req.send().await.unwrap().status().as_u16() }
        };
        // The trailing newline (and CR) typed on stdin is not part of the password.
        assert_eq!(status("alice", "correct horse").await, 200, "{proto}");
        assert_eq!(
            status("alice", "correct horse").await,
            200,
            "{proto}: cached"
        );
        assert_eq!(status("bob", "bob's pw").await, 200, "{proto}");
        assert_eq!(status("alice", "correct horse\n").await, 401, "{proto}");
        assert_eq!(status("alice", "bob's pw").await, 401, "{proto}");
        assert_eq!(
            status("carol", "correct horse").await,
            401,
            "{proto}: unknown user"
        );
        assert_eq!(
            status("Alice", "correct horse").await,
            401,
            "{proto}: names are exact"
        );
        let ok = client.get(&url).basic_auth("bob", Some("bob's pw"));
        assert_eq!(
            ok.send().await.unwrap().text().await.unwrap(),
            "secret stuff"
        );
    }
}

#[tokio::test]
async fn an_empty_password_is_refused() {
    let (code, out, err) = hash_password("\n", &[]).await;
    assert_eq!(code, 1);
    assert_eq!(out, "");
    assert!(err.contains("empty password"), "{err}");
}

#[test]
fn a_plain_password_in_the_settings_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let opts = harrier::config::LoadOptions {
        app_dir: dir.path().to_path_buf(),
        ..Default::default()
    };
    let toml = settings("alice = \"hunter2\"");
    let err = harrier::config::load_str(&toml, &dir.path().join("h.toml"), &opts)
        .expect_err("a plain password must not load")
        .to_string();
    assert!(err.contains("sites[0].use[0].users.alice"), "{err}");
    assert!(err.contains("run `harrier hash-password`"), "{err}");
}

#[tokio::test]
async fn the_user_reaches_the_handler_and_the_response() {
    let hash = harrier::middleware::basic_auth::hash_password("pw", false).unwrap();
    let cfg = BasicAuthStage {
        realm: "r".into(),
        users: vec![("alice".into(), hash)],
    };
    let stage: Arc<dyn Middleware> = Arc::new(BasicAuth::new(&cfg).unwrap());
    let handler = handler_fn(|req: http::Request<harrier::body::Body>| async move {
        let user = req.extensions().get::<AuthUser>().map(|u| u.0.clone());
        http::Response::new(harrier::body::full(user.unwrap_or_default()))
    });
    let chain = Chain::new(vec![stage], handler);
    let req = http::Request::builder()
        .header("authorization", "Basic YWxpY2U6cHc=") // alice:pw
        .body(harrier::body::empty())
        .unwrap();
    let resp = timeout(STEP, chain.run(req)).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.extensions().get::<AuthUser>(),
        Some(&AuthUser("alice".into()))
    );
    let body = http_body_util::BodyExt::collect(resp.into_body())
        .await
        .unwrap();
    assert_eq!(body.to_bytes(), "alice");
}

#[tokio::test]
async fn failures_are_logged_without_the_password_and_the_user_is_in_the_access_log() {
    let (_, hash, _) = hash_password("pw\n", &[]).await;
    let mut served = serve_binary(&settings(&format!("alice = \"{}\"", hash.trim_end()))).await;
    let url = served.url.clone();
    let client = reqwest::Client::builder().timeout(STEP).build().unwrap();
    let bad = client
        .get(&url)
        .basic_auth("mallory", Some("hunter2-secret"));
    assert_eq!(bad.send().await.unwrap().status(), 401);
    let warn = line_where(&mut served.stderr, |line| {
        line.contains("basic auth failed")
    })
    .await;
    assert!(warn.contains("WARN") && warn.contains("mallory"), "{warn}");
    assert!(warn.contains("127.0.0.1"), "client IP logged: {warn}");
    assert!(
        !warn.contains("hunter2"),
        "the password must never be logged: {warn}"
    );

    let good = client
        .get(format!("{url}/page"))
        .basic_auth("alice", Some("pw"));
    assert_eq!(good.send().await.unwrap().status(), 200);
    let line = line_where(&mut served.stdout, |line| line.contains("/page")).await;
    assert!(line.starts_with("127.0.0.1 - alice ["), "{line}");
}

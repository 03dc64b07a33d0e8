//! Path traversal against the static handler over raw TCP (clients would normalise these
//! targets before sending them), and symlinks out of and within the root.
//!
//! The served root is `www/` inside the temporary directory; `secret` sits next to it, so any
//! climb out of the root by one level would find it.

mod common;

use common::*;

/// Only ever in the file outside the root; no response may contain it.
const MARKER: &str = "MARKER-outside-root-5b1f0c";
const ROOT: &str = "[static]\nroot = \"www\"\n";

fn site() -> Vec<(&'static str, &'static [u8])> {
    vec![
        ("secret", MARKER.as_bytes()),
        ("www/index.html", b"inside index"),
        ("www/static/app.css", b"body{}"),
        ("www/a/b.html", b"b"),
        ("www/404.html", b"root 404 page"),
    ]
}

/// Sends one request with `target` and returns the response, which must not leak anything.
async fn ask(server: &TestServer, target: &str) -> String {
    let req = format!("GET {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    let resp = exchange(server.addr, req.as_bytes()).await;
    assert!(!resp.contains(MARKER), "{target} leaked the secret: {resp}");
    assert!(
        !resp.contains("root:x:0:0"),
        "{target} leaked /etc/passwd: {resp}"
    );
    resp
}

#[tokio::test]
async fn traversal_in_every_encoding_is_refused_on_the_wire() {
    let server = start(ROOT, &site()).await;
    let home = ask(&server, "/").await;
    assert_eq!(status_of(&home), 200, "{home}");
    assert!(home.ends_with("inside index"), "{home}");

    // (request target, status): 400 for targets that are malformed or try to climb, 404 for
    // well-formed paths that simply name nothing below the root.
    let attempts = [
        ("/../secret", 400),
        ("/%2e%2e/secret", 400),
        ("/%2E%2E%2Fsecret", 400),
        ("/..%2fsecret", 400),
        ("/.%2e/secret", 400),
        ("/%252e%252e/secret", 400),
        ("/%252e%252e%252fsecret", 400),
        ("/..%5csecret", 400),
        ("/..\\secret", 400),
        ("/static\\..\\..\\secret", 400),
        ("/%c0%ae%c0%ae/secret", 400),
        ("/%c0%ae%c0%ae%c0%afsecret", 400),
        ("/a/%00", 400),
        ("/a%00.html", 400),
        ("/index.html%00.png", 400),
        ("http://evil/../secret", 400),
        ("http://evil/%2e%2e/secret", 400),
        ("/./index.html", 400),
        ("/static/../../secret", 400),
        ("/static/..%2f..%2fsecret", 400),
        ("/static/%2e%2e/%2e%2e/secret", 400),
        ("//etc/passwd", 404),
        ("/secret", 404),
        ("/www/secret", 404),
    ];
    let mut wrong = Vec::new();
    for (target, want) in attempts {
        let resp = ask(&server, target).await;
        let got = status_of(&resp);
        if got != want {
            wrong.push(format!("{target}: {got} (expected {want})"));
        }
        if got == 404 {
            assert!(resp.ends_with("root 404 page"), "{target}: {resp}");
        }
    }
    assert!(
        wrong.is_empty(),
        "unexpected statuses:\n{}",
        wrong.join("\n")
    );

    // Absolute form inside the root is fine, and the server survived all of the above.
    let resp = ask(&server, "http://evil/static/app.css").await;
    assert_eq!(status_of(&resp), 200, "{resp}");
    assert!(resp.ends_with("body{}"), "{resp}");
}

#[cfg(unix)]
#[tokio::test]
async fn symlinks_out_of_the_root_need_follow_symlinks() {
    use std::os::unix::fs::symlink;

    let tmp = tempfile::tempdir().expect("tempdir");
    for (path, contents) in site() {
        let p = tmp.path().join(path);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(&p, contents).expect("write");
    }
    let www = tmp.path().join("www");
    symlink(tmp.path().join("secret"), www.join("out")).expect("link out");
    symlink(tmp.path(), www.join("up")).expect("link to the parent");
    symlink(www.join("a/b.html"), www.join("in.html")).expect("link in");
    symlink("a", www.join("alias")).expect("relative link in");

    let strict = start_in(tmp.path(), ROOT, None).await;
    for target in ["/out", "/up/secret"] {
        let resp = ask(&strict, target).await;
        assert_eq!(status_of(&resp), 404, "{target}: {resp}");
        assert!(resp.ends_with("root 404 page"), "{target}: {resp}");
    }
    for target in ["/in.html", "/alias/b.html"] {
        let resp = ask(&strict, target).await;
        assert_eq!(status_of(&resp), 200, "{target}: {resp}");
        assert!(resp.ends_with("\r\n\r\nb"), "{target}: {resp}");
    }

    let toml = format!("{ROOT}follow_symlinks = true\n");
    let loose = start_in(tmp.path(), &toml, None).await;
    for target in ["/out", "/up/secret"] {
        let req = format!("GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        let resp = exchange(loose.addr, req.as_bytes()).await;
        assert_eq!(status_of(&resp), 200, "{target}: {resp}");
        assert!(
            resp.ends_with(MARKER),
            "{target}: link not followed: {resp}"
        );
    }
}

//! Methods, headers, not-found handling and error mapping.

use http::StatusCode;

use super::site;
use crate::handlers::static_files::{StaticError, StaticFiles};

#[tokio::test]
async fn get_sends_file_with_headers() {
    let s = site(&[("hello.txt", b"hello world")], |c| {
        c.cache_control = Some("public, max-age=60".into());
    });
    let r = s.get("/hello.txt").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body, "hello world");
    assert_eq!(r.header("content-type"), "text/plain; charset=utf-8");
    assert_eq!(r.header("content-length"), "11");
    assert_eq!(r.header("accept-ranges"), "bytes");
    assert_eq!(r.header("cache-control"), "public, max-age=60");
    let modified = std::fs::metadata(s.path("hello.txt"))
        .unwrap()
        .modified()
        .unwrap();
    assert_eq!(r.header("last-modified"), httpdate::fmt_http_date(modified));
    let etag = r.header("etag");
    assert!(
        etag.starts_with("\"b-") && etag.ends_with('"') && !etag.starts_with("W/"),
        "{etag}"
    );
    assert_eq!(r.header("vary"), "");
    assert_eq!(r.header("content-encoding"), "");
}

#[tokio::test]
async fn head_has_the_same_headers_and_no_body() {
    let s = site(&[("a.json", b"{\"a\":1}")], |_| {});
    let get = s.get("/a.json").await;
    let head = s.send("HEAD", "/a.json", &[]).await;
    assert_eq!(head.status, StatusCode::OK);
    assert!(head.body.is_empty());
    assert_eq!(head.headers, get.headers);
    assert_eq!(head.header("content-length"), "7");
    assert_eq!(
        head.header("content-type"),
        "application/json; charset=utf-8"
    );
    // Also for files streamed from disk, and for 404s.
    let big = site(&[("big.bin", &[7u8; 5000])], |_| {});
    let head = big.send("HEAD", "/big.bin", &[]).await;
    assert_eq!(head.header("content-length"), "5000");
    assert_eq!(head.header("content-type"), "application/octet-stream");
    assert!(head.body.is_empty());
    let missing = big.send("HEAD", "/nope", &[]).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(missing.body.is_empty());
    assert_ne!(missing.header("content-length"), "0");
}

#[tokio::test]
async fn options_and_other_methods() {
    let s = site(&[("a.txt", b"a")], |_| {});
    let r = s.send("OPTIONS", "/a.txt", &[]).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(r.header("allow"), "GET, HEAD, OPTIONS");
    for method in ["POST", "PUT", "DELETE", "PATCH", "TRACE", "BREW"] {
        let r = s.send(method, "/a.txt", &[]).await;
        assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED, "{method}");
        assert_eq!(r.header("allow"), "GET, HEAD, OPTIONS");
    }
}

#[tokio::test]
async fn absolute_form_uses_only_the_path() {
    let s = site(&[("a.txt", b"a")], |_| {});
    let r = s.get("http://other.example:8080/a.txt?x=1").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body, "a");
}

#[tokio::test]
async fn content_types() {
    let s = site(
        &[
            ("x.css", b""),
            ("x.svg", b""),
            ("x.png", b""),
            ("x.weird", b""),
            ("x.js", b""),
        ],
        |_| {},
    );
    assert_eq!(
        s.get("/x.css").await.header("content-type"),
        "text/css; charset=utf-8"
    );
    assert_eq!(
        s.get("/x.svg").await.header("content-type"),
        "image/svg+xml; charset=utf-8"
    );
    assert_eq!(s.get("/x.png").await.header("content-type"), "image/png");
    let weird = s.get("/x.weird").await;
    assert_eq!(weird.header("content-type"), "application/octet-stream");
    assert!(s
        .get("/x.js")
        .await
        .header("content-type")
        .ends_with("javascript; charset=utf-8"));
}

#[tokio::test]
async fn not_found_plain_page_and_fallback() {
    let s = site(&[("a.txt", b"a")], |_| {});
    let r = s.get("/missing").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.header("content-type").starts_with("text/plain"));
    assert_eq!(r.text(), "404 Not Found\n");

    let page = site(&[("404.html", b"<h1>gone</h1>")], |c| {
        c.not_found_page = Some("404.html".into());
    });
    let r = page.get("/missing").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.header("content-type"), "text/html; charset=utf-8");
    assert_eq!(r.body, "<h1>gone</h1>");
    // A configured page that does not exist gives the plain text.
    let absent = site(&[], |c| c.not_found_page = Some("404.html".into()));
    assert_eq!(absent.get("/x").await.text(), "404 Not Found\n");
    // Large 404 pages stream.
    let big = vec![b'x'; 3000];
    let large = site(&[("err/404.html", &big)], |c| {
        c.not_found_page = Some("/err/404.html".into());
    });
    let r = large.get("/x").await;
    assert_eq!((r.status, r.body.len()), (StatusCode::NOT_FOUND, 3000));
    assert_eq!(r.header("content-length"), "3000");

    let spa = site(&[("index.html", b"app"), ("404.html", b"nf")], |c| {
        c.fallback = Some("index.html".into());
        c.not_found_page = Some("404.html".into());
    });
    let r = spa.get("/some/client/route").await;
    assert_eq!((r.status, r.text().as_str()), (StatusCode::OK, "app"));
    assert_eq!(r.header("content-type"), "text/html; charset=utf-8");
    let head = spa.send("HEAD", "/route", &[]).await;
    assert_eq!((head.status, head.body.len()), (StatusCode::OK, 0));
    assert_eq!(head.header("content-length"), "3");
    // Hidden paths fall back too (nothing about them leaks), but bad requests do not.
    assert_eq!(spa.get("/.git/config").await.text(), "app");
    assert_eq!(spa.get("/%2e%2e/x").await.status, StatusCode::BAD_REQUEST);
    // Other methods never fall back.
    assert_eq!(
        spa.send("POST", "/route", &[]).await.status,
        StatusCode::METHOD_NOT_ALLOWED
    );
}

#[tokio::test]
async fn fallback_missing_gives_404() {
    let s = site(&[("404.html", b"nf")], |c| {
        c.fallback = Some("index.html".into());
        c.not_found_page = Some("404.html".into());
    });
    let r = s.get("/x").await;
    assert_eq!((r.status, r.text().as_str()), (StatusCode::NOT_FOUND, "nf"));
}

#[cfg(unix)]
#[tokio::test]
async fn special_files_are_not_served() {
    let s = site(&[], |_| {});
    let _socket = std::os::unix::net::UnixListener::bind(s.path("sock")).unwrap();
    assert_eq!(s.get("/sock").await.status, StatusCode::NOT_FOUND);
}

#[cfg(unix)]
#[tokio::test]
async fn unreadable_files_are_403() {
    use std::os::unix::fs::PermissionsExt;
    let s = site(&[("locked.txt", b"x"), ("closed/inner.txt", b"y")], |_| {});
    std::fs::set_permissions(s.path("locked.txt"), std::fs::Permissions::from_mode(0o000)).unwrap();
    std::fs::set_permissions(s.path("closed"), std::fs::Permissions::from_mode(0o000)).unwrap();
    if std::fs::read(s.path("locked.txt")).is_ok() {
        // Running as root: permissions do not apply, nothing to test.
        return;
    }
    assert_eq!(s.get("/locked.txt").await.status, StatusCode::FORBIDDEN);
    assert_eq!(
        s.get("/closed/inner.txt").await.status,
        StatusCode::FORBIDDEN
    );
    // Errors are not cached: fixing the permissions fixes the response.
    std::fs::set_permissions(s.path("locked.txt"), std::fs::Permissions::from_mode(0o644)).unwrap();
    assert_eq!(s.get("/locked.txt").await.status, StatusCode::OK);
}

#[test]
fn bad_settings_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = super::config(&dir.path().join("missing"));
    assert!(matches!(
        StaticFiles::new(&cfg, true),
        Err(StaticError::Root { .. })
    ));
    std::fs::write(dir.path().join("file"), "").unwrap();
    cfg.root = dir.path().join("file");
    assert!(matches!(
        StaticFiles::new(&cfg, true),
        Err(StaticError::Root { .. })
    ));
    cfg.root = dir.path().to_path_buf();
    assert!(StaticFiles::new(&cfg, true).is_ok());
    for (key, value) in [("fallback", "../x"), ("not_found_page", "a/../../b")] {
        let mut bad = cfg.clone();
        match key {
            "fallback" => bad.fallback = Some(value.into()),
            _ => bad.not_found_page = Some(value.into()),
        }
        let err = StaticFiles::new(&bad, true).unwrap_err();
        assert!(
            matches!(err, StaticError::Path { key: k, .. } if k == key),
            "{err}"
        );
    }
    let mut bad = cfg.clone();
    bad.index_files = vec!["a/index.html".into()];
    assert!(matches!(
        StaticFiles::new(&bad, true),
        Err(StaticError::Path { .. })
    ));
    let mut bad = cfg;
    bad.cache_control = Some("no\ncache".into());
    assert!(matches!(
        StaticFiles::new(&bad, true),
        Err(StaticError::CacheControl(_))
    ));
}

//! Directories: slash redirects, index files, listings.

use http::StatusCode;

use super::site;

#[tokio::test]
async fn directory_without_slash_redirects_keeping_the_query() {
    let s = site(&[("docs/index.html", b"docs"), ("a b/", b"")], |_| {});
    let r = s.get("/docs?x=1&y=%20").await;
    assert_eq!(r.status, StatusCode::MOVED_PERMANENTLY);
    assert_eq!(r.header("location"), "/docs/?x=1&y=%20");
    let r = s.get("/a%20b").await;
    assert_eq!(r.header("location"), "/a%20b/");
    // Merged slashes must not turn into a protocol-relative redirect.
    let r = s.get("//docs").await;
    assert_eq!(r.header("location"), "/docs/");
    assert_eq!(
        s.send("HEAD", "/docs", &[]).await.status,
        StatusCode::MOVED_PERMANENTLY
    );
}

#[tokio::test]
async fn index_files_in_order() {
    let s = site(
        &[
            ("index.html", b"root"),
            ("d/index.htm", b"htm"),
            ("d/index.html", b"html"),
            ("e/", b""),
        ],
        |c| c.index_files = vec!["index.htm".into(), "index.html".into()],
    );
    assert_eq!(s.get("/").await.text(), "root");
    let r = s.get("/d/").await;
    assert_eq!((r.status, r.text().as_str()), (StatusCode::OK, "htm"));
    assert_eq!(r.header("content-type"), "text/html; charset=utf-8");
    assert_eq!(s.get("/e/").await.status, StatusCode::NOT_FOUND);
    // A file named with a trailing slash is not a directory.
    assert_eq!(s.get("/d/index.html/").await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn listing_when_enabled() {
    let files: &[(&str, &[u8])] = &[
        ("pub/b.txt", b"12345"),
        ("pub/a&<b>.txt", b""),
        ("pub/sub/", b""),
        ("pub/.hidden", b""),
        ("pub/100%.txt", b""),
    ];
    let off = site(files, |_| {});
    assert_eq!(off.get("/pub/").await.status, StatusCode::NOT_FOUND);
    let on = site(files, |c| c.directory_listing = true);
    let r = on.get("/pub/").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("content-type"), "text/html; charset=utf-8");
    let page = r.text();
    assert!(page.contains("Index of /pub/"), "{page}");
    assert!(
        page.contains("<a href=\"a%26%3Cb%3E.txt\">a&amp;&lt;b&gt;.txt</a>"),
        "{page}"
    );
    assert!(
        page.contains("<a href=\"b.txt\">b.txt</a></td><td>5</td>"),
        "{page}"
    );
    assert!(page.contains("<a href=\"sub/\">sub/</a>"), "{page}");
    assert!(page.contains("<a href=\"100%25.txt\">"), "{page}");
    assert!(!page.contains("hidden"));
    let sub = page.find("sub/").unwrap();
    let (a, b) = (page.find("a%26").unwrap(), page.find("b.txt").unwrap());
    assert!(sub < a && a < b, "directories first, then names in order");
    // The links work.
    assert_eq!(on.get("/pub/a%26%3Cb%3E.txt").await.status, StatusCode::OK);
    assert_eq!(on.get("/pub/100%25.txt").await.status, StatusCode::OK);
    let head = on.send("HEAD", "/pub/", &[]).await;
    assert_eq!(head.status, StatusCode::OK);
    assert!(head.body.is_empty());
    assert_eq!(head.header("content-length"), page.len().to_string());

    let hidden = site(files, |c| {
        c.directory_listing = true;
        c.serve_hidden_files = true;
    });
    assert!(hidden.get("/pub/").await.text().contains(".hidden"));
}

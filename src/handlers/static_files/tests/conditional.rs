//! Conditional requests end to end.

use http::StatusCode;

use super::site;

#[tokio::test]
async fn revalidation_with_etag_and_date() {
    let s = site(&[("a.txt", b"abc")], |c| {
        c.cache_control = Some("no-cache".into())
    });
    let first = s.get("/a.txt").await;
    let etag = first.header("etag").to_owned();
    let date = first.header("last-modified").to_owned();

    let r = s.get_with("/a.txt", &[("if-none-match", &etag)]).await;
    assert_eq!(r.status, StatusCode::NOT_MODIFIED);
    assert!(r.body.is_empty());
    assert_eq!(r.header("etag"), etag);
    assert_eq!(r.header("last-modified"), date);
    assert_eq!(r.header("cache-control"), "no-cache");
    assert_eq!(r.header("content-length"), "");

    let weak = format!("\"x\", W/{etag}");
    let r = s.send("HEAD", "/a.txt", &[("if-none-match", &weak)]).await;
    assert_eq!(r.status, StatusCode::NOT_MODIFIED);
    let r = s.get_with("/a.txt", &[("if-none-match", "*")]).await;
    assert_eq!(r.status, StatusCode::NOT_MODIFIED);
    let r = s
        .get_with("/a.txt", &[("if-none-match", "\"other\"")])
        .await;
    assert_eq!((r.status, r.text().as_str()), (StatusCode::OK, "abc"));

    let r = s.get_with("/a.txt", &[("if-modified-since", &date)]).await;
    assert_eq!(r.status, StatusCode::NOT_MODIFIED);
    let old = httpdate::fmt_http_date(std::time::UNIX_EPOCH);
    let r = s.get_with("/a.txt", &[("if-modified-since", &old)]).await;
    assert_eq!(r.status, StatusCode::OK);
    // If-None-Match takes precedence over If-Modified-Since.
    let both = [
        ("if-none-match", "\"other\""),
        ("if-modified-since", date.as_str()),
    ];
    assert_eq!(s.get_with("/a.txt", &both).await.status, StatusCode::OK);
}

#[tokio::test]
async fn preconditions_that_fail_give_412() {
    let s = site(&[("a.txt", b"abc")], |_| {});
    let first = s.get("/a.txt").await;
    let etag = first.header("etag").to_owned();
    let date = first.header("last-modified").to_owned();
    let old = httpdate::fmt_http_date(std::time::UNIX_EPOCH);

    let r = s.get_with("/a.txt", &[("if-match", "\"other\"")]).await;
    assert_eq!(r.status, StatusCode::PRECONDITION_FAILED);
    assert!(r.body.is_empty());
    let weak = format!("W/{etag}");
    assert_eq!(
        s.get_with("/a.txt", &[("if-match", &weak)]).await.status,
        StatusCode::PRECONDITION_FAILED
    );
    assert_eq!(
        s.get_with("/a.txt", &[("if-match", &etag)]).await.status,
        StatusCode::OK
    );
    assert_eq!(
        s.get_with("/a.txt", &[("if-match", "*")]).await.status,
        StatusCode::OK
    );

    let r = s.get_with("/a.txt", &[("if-unmodified-since", &old)]).await;
    assert_eq!(r.status, StatusCode::PRECONDITION_FAILED);
    assert_eq!(
        s.get_with("/a.txt", &[("if-unmodified-since", &date)])
            .await
            .status,
        StatusCode::OK
    );
    // If-Match wins over If-Unmodified-Since, and is checked before If-None-Match.
    let r = s
        .get_with(
            "/a.txt",
            &[("if-match", &etag), ("if-unmodified-since", &old)],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = s
        .get_with("/a.txt", &[("if-match", "\"x\""), ("if-none-match", &etag)])
        .await;
    assert_eq!(r.status, StatusCode::PRECONDITION_FAILED);
}

#[tokio::test]
async fn preconditions_also_apply_to_streamed_files_and_fallbacks() {
    let big = vec![1u8; 4096];
    let s = site(&[("big.bin", &big), ("index.html", b"app")], |c| {
        c.fallback = Some("index.html".into());
    });
    let etag = s.get("/big.bin").await.header("etag").to_owned();
    let r = s.get_with("/big.bin", &[("if-none-match", &etag)]).await;
    assert_eq!(r.status, StatusCode::NOT_MODIFIED);
    let app = s.get("/route").await.header("etag").to_owned();
    assert_eq!(
        s.get_with("/other", &[("if-none-match", &app)])
            .await
            .status,
        StatusCode::NOT_MODIFIED
    );
}

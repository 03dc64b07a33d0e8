//! Range requests end to end, from memory and from disk.

use http::StatusCode;

use super::{site, Reply, Site};

fn data(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

/// One small (cached in memory) and one large (streamed) file with the same pattern.
fn two_sizes() -> (Site, Vec<u8>, Vec<u8>) {
    let (small, large) = (data(1000), data(200_000));
    let s = site(&[("small.bin", &small), ("large.bin", &large)], |_| {});
    (s, small, large)
}

#[tokio::test]
async fn single_ranges() {
    let (s, small, large) = two_sizes();
    for (uri, content) in [("/small.bin", &small), ("/large.bin", &large)] {
        let len = content.len();
        let cases = [
            ("bytes=0-9", 0..10),
            ("bytes=10-", 10..len),
            ("bytes=-5", len - 5..len),
            ("bytes=900-99999999", 900..len),
        ];
        for (range, want) in cases {
            let r = s.get_with(uri, &[("range", range)]).await;
            assert_eq!(r.status, StatusCode::PARTIAL_CONTENT, "{uri} {range}");
            assert_eq!(r.body, content[want.clone()], "{uri} {range}");
            let cr = format!("bytes {}-{}/{len}", want.start, want.end - 1);
            assert_eq!(r.header("content-range"), cr);
            assert_eq!(r.header("content-length"), want.len().to_string());
            assert_eq!(r.header("content-type"), "application/octet-stream");
        }
    }
}

/// Splits a multipart/byteranges body into (headers, data) parts.
fn parts(r: &Reply) -> Vec<(String, Vec<u8>)> {
    let ct = r.header("content-type");
    let boundary = ct.strip_prefix("multipart/byteranges; boundary=").unwrap();
    let delimiter = format!("--{boundary}");
    let body = &r.body[..];
    let mut out = Vec::new();
    let mut pos = 0;
    let find = |from: usize, needle: &[u8]| {
        body[from..]
            .windows(needle.len())
            .position(|w| w == needle)
            .map(|p| p + from)
    };
    while let Some(start) = find(pos, delimiter.as_bytes()) {
        let after = start + delimiter.len();
        if body[after..].starts_with(b"--") {
            assert_eq!(&body[after..], b"--\r\n");
            break;
        }
        let head_end = find(after, b"\r\n\r\n").unwrap();
        let head = String::from_utf8(body[after + 2..head_end].to_vec()).unwrap();
        let next = find(head_end, format!("\r\n{delimiter}").as_bytes()).unwrap();
        out.push((head, body[head_end + 4..next].to_vec()));
        pos = next + 2;
    }
    out
}

#[tokio::test]
async fn multiple_ranges_are_multipart() {
    let (s, small, large) = two_sizes();
    for (uri, content) in [("/small.bin", &small), ("/large.bin", &large)] {
        let len = content.len();
        let r = s.get_with(uri, &[("range", "bytes=0-1, 100-199,-3")]).await;
        assert_eq!(r.status, StatusCode::PARTIAL_CONTENT);
        assert_eq!(r.header("content-length"), r.body.len().to_string());
        assert_eq!(r.header("content-range"), "");
        let got = parts(&r);
        assert_eq!(got.len(), 3);
        let want = [0..2, 100..200, len - 3..len];
        for ((head, bytes), range) in got.iter().zip(want) {
            assert!(
                head.contains("content-type: application/octet-stream"),
                "{head}"
            );
            let cr = format!(
                "content-range: bytes {}-{}/{len}",
                range.start,
                range.end - 1
            );
            assert!(head.contains(&cr), "{head}");
            assert_eq!(bytes[..], content[range]);
        }
    }
}

#[tokio::test]
async fn unsatisfiable_and_ignored_ranges() {
    let (s, small, _) = two_sizes();
    let r = s.get_with("/small.bin", &[("range", "bytes=5000-")]).await;
    assert_eq!(r.status, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(r.header("content-range"), "bytes */1000");
    assert!(r.body.is_empty());
    for range in [
        "bytes=abc",
        "bytes=5-1",
        "pages=1-2",
        "bytes=0-,0-",
        "bytes=0-600,300-999",
    ] {
        let r = s.get_with("/small.bin", &[("range", range)]).await;
        assert_eq!(r.status, StatusCode::OK, "{range}");
        assert_eq!(r.body, small);
    }
    let many = format!(
        "bytes={}",
        (0..17)
            .map(|i| format!("{i}-{i}"))
            .collect::<Vec<_>>()
            .join(",")
    );
    assert_eq!(
        s.get_with("/small.bin", &[("range", &many)]).await.status,
        StatusCode::OK
    );
    // HEAD ignores Range.
    let r = s
        .send("HEAD", "/small.bin", &[("range", "bytes=0-1")])
        .await;
    assert_eq!(
        (r.status, r.header("content-length")),
        (StatusCode::OK, "1000")
    );
}

#[tokio::test]
async fn if_range() {
    let (s, small, _) = two_sizes();
    let first = s.get("/small.bin").await;
    let etag = first.header("etag").to_owned();
    let date = first.header("last-modified").to_owned();
    let range = ("range", "bytes=0-3");
    let r = s
        .get_with("/small.bin", &[range, ("if-range", &etag)])
        .await;
    assert_eq!((r.status, r.body.len()), (StatusCode::PARTIAL_CONTENT, 4));
    let r = s
        .get_with("/small.bin", &[range, ("if-range", &date)])
        .await;
    assert_eq!(r.status, StatusCode::PARTIAL_CONTENT);
    let r = s
        .get_with("/small.bin", &[range, ("if-range", "\"stale\"")])
        .await;
    assert_eq!((r.status, &r.body[..]), (StatusCode::OK, &small[..]));
    let weak = format!("W/{etag}");
    assert_eq!(
        s.get_with("/small.bin", &[range, ("if-range", &weak)])
            .await
            .status,
        StatusCode::OK
    );
    let old = httpdate::fmt_http_date(std::time::UNIX_EPOCH);
    assert_eq!(
        s.get_with("/small.bin", &[range, ("if-range", &old)])
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn preconditions_come_before_ranges() {
    let (s, _, _) = two_sizes();
    let etag = s.get("/small.bin").await.header("etag").to_owned();
    let r = s
        .get_with(
            "/small.bin",
            &[("range", "bytes=0-1"), ("if-none-match", &etag)],
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_MODIFIED);
    let r = s
        .get_with(
            "/small.bin",
            &[("range", "bytes=9999-"), ("if-match", "\"x\"")],
        )
        .await;
    assert_eq!(r.status, StatusCode::PRECONDITION_FAILED);
}

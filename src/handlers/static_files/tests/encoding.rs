//! Precompressed sidecars end to end.

use http::StatusCode;

use super::{site, Site};

fn with_sidecars(precompressed: bool) -> Site {
    site(
        &[
            ("app.js", b"plain js"),
            ("app.js.br", b"BR"),
            ("app.js.zst", b"ZSTD!"),
            ("app.js.gz", b"GZIP"),
            ("style.css", b"body{}"),
            ("style.css.gz", b"GZ"),
            ("lone.txt", b"no sidecars"),
        ],
        |c| c.precompressed = precompressed,
    )
}

#[tokio::test]
async fn picks_the_best_sidecar() {
    let s = with_sidecars(true);
    let cases = [
        ("gzip, deflate, br, zstd", "BR", "br"),
        ("gzip, zstd", "ZSTD!", "zstd"),
        ("gzip", "GZIP", "gzip"),
        ("br;q=0.5, gzip;q=0.8", "GZIP", "gzip"),
        ("br;q=0, *", "ZSTD!", "zstd"),
        ("identity", "plain js", ""),
        ("identity, br;q=0.9", "plain js", ""),
        ("deflate", "plain js", ""),
        ("*;q=0, identity;q=0", "plain js", ""),
    ];
    for (accept, body, encoding) in cases {
        let r = s.get_with("/app.js", &[("accept-encoding", accept)]).await;
        assert_eq!(r.status, StatusCode::OK, "{accept}");
        assert_eq!(r.text(), body, "{accept}");
        assert_eq!(r.header("content-encoding"), encoding, "{accept}");
        assert_eq!(r.header("content-length"), body.len().to_string());
        assert!(
            r.header("content-type")
                .ends_with("javascript; charset=utf-8"),
            "{accept}"
        );
        assert_eq!(r.header("vary"), "accept-encoding", "{accept}");
    }
    let r = s.get("/app.js").await;
    assert_eq!(
        (r.text().as_str(), r.header("content-encoding")),
        ("plain js", "")
    );
    assert_eq!(r.header("vary"), "accept-encoding");
    let css = s
        .get_with("/style.css", &[("accept-encoding", "br, gzip")])
        .await;
    assert_eq!(
        (css.text().as_str(), css.header("content-encoding")),
        ("GZ", "gzip")
    );
    assert_eq!(css.header("content-type"), "text/css; charset=utf-8");
}

#[tokio::test]
async fn etags_differ_per_encoding_and_revalidate_per_encoding() {
    let s = with_sidecars(true);
    let plain = s.get("/app.js").await;
    let br = s.get_with("/app.js", &[("accept-encoding", "br")]).await;
    let gz = s.get_with("/app.js", &[("accept-encoding", "gzip")]).await;
    let tags = [plain.header("etag"), br.header("etag"), gz.header("etag")];
    assert!(
        tags[1].ends_with("-br\"") && tags[2].ends_with("-gzip\""),
        "{tags:?}"
    );
    assert!(tags[0] != tags[1] && tags[1] != tags[2] && tags[0] != tags[2]);
    let br_tag = br.header("etag").to_owned();
    let r = s
        .get_with(
            "/app.js",
            &[("accept-encoding", "br"), ("if-none-match", &br_tag)],
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_MODIFIED);
    assert_eq!(r.header("vary"), "accept-encoding");
    assert_eq!(r.header("etag"), br_tag);
    // The same tag does not validate the identity representation.
    let r = s.get_with("/app.js", &[("if-none-match", &br_tag)]).await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn ranges_apply_to_the_identity_representation_only() {
    let s = with_sidecars(true);
    let r = s
        .get_with(
            "/app.js",
            &[("accept-encoding", "br"), ("range", "bytes=0-0")],
        )
        .await;
    assert_eq!((r.status, r.text().as_str()), (StatusCode::OK, "BR"));
    assert_eq!(r.header("accept-ranges"), "");
    let r = s.get_with("/app.js", &[("range", "bytes=0-1")]).await;
    assert_eq!(
        (r.status, r.text().as_str()),
        (StatusCode::PARTIAL_CONTENT, "pl")
    );
    assert_eq!(r.header("vary"), "accept-encoding");
}

#[tokio::test]
async fn no_vary_without_sidecars_or_when_disabled() {
    let s = with_sidecars(true);
    let r = s.get_with("/lone.txt", &[("accept-encoding", "br")]).await;
    assert_eq!((r.header("vary"), r.header("content-encoding")), ("", ""));
    let off = with_sidecars(false);
    let r = off.get_with("/app.js", &[("accept-encoding", "br")]).await;
    assert_eq!((r.text().as_str(), r.header("vary")), ("plain js", ""));
    // Sidecars are still files in their own right.
    assert_eq!(off.get("/app.js.br").await.text(), "BR");
}

#[tokio::test]
async fn large_sidecars_stream_and_index_files_have_sidecars() {
    let big = vec![b'z'; 10_000];
    let s = site(
        &[("d/index.html", b"<p>"), ("d/index.html.zst", &big)],
        |_| {},
    );
    let r = s.get_with("/d/", &[("accept-encoding", "zstd")]).await;
    assert_eq!(
        (r.body.len(), r.header("content-encoding")),
        (10_000, "zstd")
    );
    assert_eq!(r.header("content-type"), "text/html; charset=utf-8");
    assert_eq!(r.header("content-length"), "10000");
}

#[tokio::test]
async fn sidecar_checks_are_cached() {
    let s = with_sidecars(true);
    assert_eq!(
        s.get_with("/lone.txt", &[("accept-encoding", "br")])
            .await
            .header("content-encoding"),
        ""
    );
    // A sidecar that appears later is only seen after revalidation: no stat per request.
    std::fs::write(s.path("lone.txt.br"), "LBR").unwrap();
    let r = s.get_with("/lone.txt", &[("accept-encoding", "br")]).await;
    assert_eq!(r.text(), "no sidecars");
}

//! The static-file handler over real sockets: reqwest over HTTP/1.1 and h2c, raw TCP where
//! framing matters, and curl for the precompressed sidecars. The handler's own tests call
//! `serve` directly; these check what a client on the wire sees.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use reqwest::header::HeaderMap;
use reqwest::{Client, Method, StatusCode, Version};
use tokio::io::AsyncWriteExt;

/// A response with its body read.
struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Reply {
    /// A header as text; "" when absent.
    fn h(&self, name: &str) -> &str {
        match self.headers.get(name) {
            Some(v) => v.to_str().expect("header is ASCII"),
            None => "",
        }
    }
}

/// A client bound to one protocol and one server; every reply is checked to use that protocol.
struct Conn {
    client: Client,
    version: Version,
    base: String,
}

impl Conn {
    async fn send(&self, method: Method, path: &str, headers: &[(&str, &str)]) -> Reply {
        let mut req = self
            .client
            .request(method.clone(), format!("{}{path}", self.base));
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let resp = req.send().await.expect("request");
        assert_eq!(resp.version(), self.version, "{method} {path}");
        let (status, headers) = (resp.status(), resp.headers().clone());
        let body = resp.bytes().await.expect("body");
        Reply {
            status,
            headers,
            body,
        }
    }

    async fn get(&self, path: &str, headers: &[(&str, &str)]) -> Reply {
        self.send(Method::GET, path, headers).await
    }

    /// GETs `path` and checks the status and the whole (text) body.
    async fn expect(&self, path: &str, status: StatusCode, body: &str) -> Reply {
        let r = self.get(path, &[]).await;
        let what = format!("{:?} {path}", self.version);
        assert_eq!(r.status, status, "{what}");
        assert_eq!(String::from_utf8_lossy(&r.body), body, "{what}");
        r
    }
}

/// One HTTP/1.1 and one h2c (prior knowledge) client for `server`; redirects are not followed.
fn conns(server: &TestServer) -> [Conn; 2] {
    [Version::HTTP_11, Version::HTTP_2].map(|version| {
        let builder = Client::builder()
            .timeout(STEP)
            .redirect(reqwest::redirect::Policy::none());
        let builder = match version {
            Version::HTTP_2 => builder.http2_prior_knowledge(),
            _ => builder.http1_only(),
        };
        Conn {
            client: builder.build().expect("client"),
            version,
            base: format!("http://{}", server.addr),
        }
    })
}

/// Deterministic pseudo-random bytes (xorshift), so a mix-up of offsets cannot go unnoticed.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

const MIB: usize = 1 << 20;

/// What the file `name` below the served directory was last modified, as an HTTP date.
fn mtime_of(server: &TestServer, name: &str) -> String {
    let meta = std::fs::metadata(server.dir.join(name)).expect("stat");
    httpdate::fmt_http_date(meta.modified().expect("mtime"))
}

#[tokio::test]
async fn small_and_large_files_arrive_exactly_with_their_headers() {
    let page = b"<!doctype html><title>harrier</title>".repeat(100);
    let large = noise(3 * MIB, 7); // above the default 256KiB cache limit: streamed from disk
    let server = start("", &[("page.html", &page), ("large.bin", &large)]).await;
    for c in conns(&server) {
        for (name, data, ctype) in [
            ("page.html", &page, "text/html; charset=utf-8"),
            ("large.bin", &large, "application/octet-stream"),
        ] {
            let path = format!("/{name}");
            let first = c.get(&path, &[]).await;
            let what = format!("{:?} {path}", c.version);
            assert_eq!(first.status, StatusCode::OK, "{what}");
            assert!(first.body == data[..], "{what}: body differs from the file");
            assert_eq!(first.h("content-type"), ctype, "{what}");
            assert_eq!(first.h("content-length"), data.len().to_string(), "{what}");
            assert_eq!(first.h("accept-ranges"), "bytes", "{what}");
            assert_eq!(first.h("last-modified"), mtime_of(&server, name), "{what}");
            assert_eq!(first.h("transfer-encoding"), "", "{what}: length is known");
            let etag = first.h("etag");
            assert!(
                etag.len() > 2 && etag.starts_with('"') && etag.ends_with('"'),
                "{etag}"
            );

            let head = c.send(Method::HEAD, &path, &[]).await;
            assert_eq!(head.status, StatusCode::OK, "{what}");
            assert!(head.body.is_empty(), "{what}: HEAD sent a body");
            for name in ["content-type", "content-length", "etag", "last-modified"] {
                assert_eq!(head.h(name), first.h(name), "{what}: HEAD {name}");
            }

            let again = c.get(&path, &[]).await;
            assert_eq!(again.status, StatusCode::OK, "{what}");
            assert!(again.body == first.body, "{what}: second GET differs");
            for name in ["content-type", "content-length", "etag", "last-modified"] {
                assert_eq!(again.h(name), first.h(name), "{what}: second GET {name}");
            }
        }
    }
}

#[tokio::test]
async fn head_on_http1_leaves_the_connection_framed() {
    // If HEAD sent the body its content-length announces, the next response would start inside
    // it; a pipelined GET must follow the HEAD head immediately.
    let page = b"0123456789".repeat(50);
    let server = start("", &[("page.txt", &page)]).await;
    let resp = exchange(
        server.addr,
        b"HEAD /page.txt HTTP/1.1\r\nHost: x\r\n\r\n\
          GET /page.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    let (head, rest) = resp.split_once("\r\n\r\n").expect("HEAD response");
    assert_eq!(status_of(head), 200, "{resp}");
    assert!(
        head.to_ascii_lowercase().contains("content-length: 500"),
        "{head}"
    );
    assert!(
        rest.starts_with("HTTP/1.1 200 "),
        "HEAD leaked bytes: {rest:.80}"
    );
    assert!(
        rest.ends_with(std::str::from_utf8(&page).unwrap()),
        "{rest}"
    );
}

/// Rewrites `name` until a request sees the new bytes; returns how long that took, or None
/// if the old bytes were still served when `patience` ran out.
async fn edit_and_poll(server: &TestServer, name: &str, patience: Duration) -> Option<Duration> {
    let c = &conns(server)[0];
    let path = format!("/{name}");
    let old = c.get(&path, &[]).await;
    assert_eq!(old.status, StatusCode::OK);
    let new = b"edited on disk, and longer than before".to_vec();
    // Renamed into place, so no request can see a half-written file.
    let tmp = server.dir.join("edit.tmp");
    std::fs::write(&tmp, &new).expect("write");
    std::fs::rename(&tmp, server.dir.join(name)).expect("rename");
    let written = Instant::now();
    loop {
        let r = c.get(&path, &[]).await;
        if r.body == new {
            assert_eq!(r.h("content-length"), new.len().to_string());
            assert_ne!(r.h("etag"), old.h("etag"), "new bytes under the old etag");
            return Some(written.elapsed());
        }
        assert!(r.body == old.body, "neither old nor new: {:?}", r.body);
        assert_eq!(r.h("etag"), old.h("etag"), "old bytes under a new etag");
        if written.elapsed() > patience {
            return None;
        }
        // The polling interval, not a synchronisation: the loop ends on what it observes.
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn an_edited_file_is_served_fresh_after_revalidate_after() {
    let files: &[(&str, &[u8])] = &[("a.txt", b"original")];
    let quick = start("[static.cache]\nrevalidate_after = \"50ms\"\n", files).await;
    let seen = edit_and_poll(&quick, "a.txt", STEP).await;
    assert!(seen.is_some(), "edit not served within {STEP:?}");

    // The same edit under a one-hour trust stays invisible: the small file really is served
    // from the cache, and the 50ms above is what made the difference.
    let slow = start("[static.cache]\nrevalidate_after = \"1h\"\n", files).await;
    let seen = edit_and_poll(&slow, "a.txt", Duration::from_millis(300)).await;
    assert_eq!(
        seen, None,
        "a cached file was re-read before revalidate_after"
    );
}

#[tokio::test]
async fn conditional_requests() {
    let server = start("", &[("c.txt", b"conditional body")]).await;
    for c in conns(&server) {
        let v = c.version;
        let full = c.get("/c.txt", &[]).await;
        let (etag, date) = (full.h("etag"), full.h("last-modified"));

        let r = c.get("/c.txt", &[("if-none-match", etag)]).await;
        assert_eq!(r.status, StatusCode::NOT_MODIFIED, "{v:?}");
        assert!(r.body.is_empty(), "{v:?}: 304 with a body");
        assert_eq!(r.h("etag"), etag, "{v:?}: 304 must repeat the etag");
        let r = c.get("/c.txt", &[("if-none-match", "\"other\"")]).await;
        assert_eq!(r.status, StatusCode::OK, "{v:?}");

        let r = c.get("/c.txt", &[("if-modified-since", date)]).await;
        assert_eq!(r.status, StatusCode::NOT_MODIFIED, "{v:?}");
        assert!(r.body.is_empty(), "{v:?}");
        let past = "Sun, 06 Nov 1994 08:49:37 GMT";
        let r = c.get("/c.txt", &[("if-modified-since", past)]).await;
        assert_eq!(r.status, StatusCode::OK, "{v:?}");
        assert!(r.body == full.body, "{v:?}");

        let r = c.get("/c.txt", &[("if-match", "\"nope\"")]).await;
        assert_eq!(r.status, StatusCode::PRECONDITION_FAILED, "{v:?}");
        assert!(r.body.is_empty(), "{v:?}");
        let r = c.get("/c.txt", &[("if-match", etag)]).await;
        assert_eq!(r.status, StatusCode::OK, "{v:?}");

        let r = c.get("/c.txt", &[("if-unmodified-since", past)]).await;
        assert_eq!(r.status, StatusCode::PRECONDITION_FAILED, "{v:?}");
        let r = c.get("/c.txt", &[("if-unmodified-since", date)]).await;
        assert_eq!(r.status, StatusCode::OK, "{v:?}");
    }
}

#[tokio::test]
async fn a_304_on_http1_keeps_the_connection_usable() {
    let server = start("", &[("c.txt", b"conditional body")]).await;
    let etag = conns(&server)[0]
        .get("/c.txt", &[])
        .await
        .h("etag")
        .to_owned();
    let mut s = connect(server.addr).await;
    let ask = format!("GET /c.txt HTTP/1.1\r\nHost: x\r\nIf-None-Match: {etag}\r\n\r\n");
    s.write_all(ask.as_bytes()).await.expect("write");
    let first = read_response(&mut s).await;
    assert_eq!(status_of(&first), 304, "{first}");
    assert!(first.ends_with("\r\n\r\n"), "304 carried a body: {first}");
    s.write_all(b"GET /c.txt HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let second = read_response(&mut s).await;
    assert_eq!(status_of(&second), 200, "{second}");
    assert!(second.ends_with("\r\n\r\nconditional body"), "{second}");
}

/// The parts of a multipart/byteranges body (RFC 9110 §14.6): (lower-cased headers, bytes).
fn byteranges(content_type: &str, body: &[u8]) -> Vec<(String, Vec<u8>)> {
    let boundary = content_type
        .strip_prefix("multipart/byteranges; boundary=")
        .unwrap_or_else(|| panic!("not multipart: {content_type}"));
    // Every delimiter is CRLF "--" boundary; the first one's CRLF is the body's start.
    let delimiter = format!("\r\n--{boundary}");
    let mut text = b"\r\n".to_vec();
    text.extend_from_slice(body);
    let mut pieces = Vec::new();
    let mut rest = &text[..];
    while let Some(at) = rest
        .windows(delimiter.len())
        .position(|w| w == delimiter.as_bytes())
    {
        pieces.push(&rest[..at]);
        rest = &rest[at + delimiter.len()..];
    }
    assert_eq!(
        rest, b"--\r\n",
        "multipart must end with the close delimiter"
    );
    assert_eq!(pieces.first(), Some(&&b""[..]), "no preamble expected");
    pieces[1..]
        .iter()
        .map(|part| {
            let part = part.strip_prefix(b"\r\n").expect("CRLF after delimiter");
            let split = part
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
                .expect("part head");
            let head = String::from_utf8(part[..split].to_vec()).expect("ASCII part head");
            (head.to_ascii_lowercase(), part[split + 4..].to_vec())
        })
        .collect()
}

#[tokio::test]
async fn byte_ranges_single_suffix_multiple_unsatisfiable_and_if_range() {
    let small = noise(5000, 1);
    let large = noise(3 * MIB, 2);
    let server = start("", &[("small.bin", &small), ("large.bin", &large)]).await;
    for c in conns(&server) {
        for (path, data) in [("/small.bin", &small), ("/large.bin", &large)] {
            let len = data.len();
            let what = format!("{:?} {path}", c.version);
            let mid = len / 2;
            let spec = format!("bytes={}-{}", mid - 3, mid + 9);
            let r = c.get(path, &[("range", &spec)]).await;
            assert_eq!(r.status, StatusCode::PARTIAL_CONTENT, "{what}");
            let want = format!("bytes {}-{}/{len}", mid - 3, mid + 9);
            assert_eq!(r.h("content-range"), want, "{what}");
            assert_eq!(r.h("content-length"), "13", "{what}");
            assert!(r.body == data[mid - 3..=mid + 9], "{what}: wrong bytes");

            let r = c.get(path, &[("range", "bytes=-7")]).await;
            assert_eq!(r.status, StatusCode::PARTIAL_CONTENT, "{what}");
            let want = format!("bytes {}-{}/{len}", len - 7, len - 1);
            assert_eq!(r.h("content-range"), want, "{what}");
            assert!(r.body == data[len - 7..], "{what}: wrong suffix");

            let spec = format!("bytes=0-4,{}-{},{}-", mid, mid + 99, len - 2);
            let r = c.get(path, &[("range", &spec)]).await;
            assert_eq!(r.status, StatusCode::PARTIAL_CONTENT, "{what}");
            assert_eq!(r.h("content-length"), r.body.len().to_string(), "{what}");
            let parts = byteranges(r.h("content-type"), &r.body);
            let wanted = [(0, 4), (mid, mid + 99), (len - 2, len - 1)];
            assert_eq!(parts.len(), wanted.len(), "{what}");
            for ((head, bytes), (first, last)) in parts.iter().zip(wanted) {
                let range = format!("content-range: bytes {first}-{last}/{len}");
                assert!(head.contains(&range), "{what}: {head}");
                assert!(
                    head.contains("content-type: application/octet-stream"),
                    "{head}"
                );
                assert!(
                    bytes[..] == data[first..=last],
                    "{what}: part {first}-{last}"
                );
            }

            let spec = format!("bytes={len}-");
            let r = c.get(path, &[("range", &spec)]).await;
            assert_eq!(r.status, StatusCode::RANGE_NOT_SATISFIABLE, "{what}");
            assert_eq!(r.h("content-range"), format!("bytes */{len}"), "{what}");
            assert!(r.body.is_empty(), "{what}");

            let etag = c
                .get(path, &[("range", "bytes=0-0")])
                .await
                .h("etag")
                .to_owned();
            let r = c
                .get(path, &[("range", "bytes=1-2"), ("if-range", &etag)])
                .await;
            assert_eq!(r.status, StatusCode::PARTIAL_CONTENT, "{what}");
            assert!(r.body == data[1..=2], "{what}");
            let r = c
                .get(path, &[("range", "bytes=1-2"), ("if-range", "\"old\"")])
                .await;
            assert_eq!(
                r.status,
                StatusCode::OK,
                "{what}: stale If-Range must give all"
            );
            assert!(r.body == data[..], "{what}");
        }
    }
}

/// `data` compressed by the system's gzip. A missing gzip fails the test: it must not pass
/// without having checked anything.
fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut child = std::process::Command::new("gzip")
        .args(["-9", "-n", "-c"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("gzip must be installed to build the sidecar");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(data).expect("feed gzip");
    drop(stdin);
    let out = child.wait_with_output().expect("gzip output");
    assert!(
        out.status.success() && out.stdout.starts_with(b"\x1f\x8b"),
        "gzip failed"
    );
    out.stdout
}

#[tokio::test]
async fn precompressed_sidecars_follow_accept_encoding() {
    let js = b"export const greet = (name) => `hello, ${name}`;\n".repeat(40);
    let gz = gzip(&js);
    // harrier never decodes sidecars, so a marker stands in for real brotli output.
    let br = b"\x8b\x7f not really brotli, but the .br sidecar".to_vec();
    let files: &[(&str, &[u8])] = &[("app.js", &js), ("app.js.gz", &gz), ("app.js.br", &br)];
    let server = start("", files).await;
    for c in conns(&server) {
        let v = c.version;
        let mut etags = Vec::new();
        for (accept, body, encoding) in [
            (Some("br"), &br, "br"),
            (Some("gzip"), &gz, "gzip"),
            (None, &js, ""),
        ] {
            let headers: Vec<_> = accept.map(|a| ("accept-encoding", a)).into_iter().collect();
            let r = c.get("/app.js", &headers).await;
            assert_eq!(r.status, StatusCode::OK, "{v:?} {accept:?}");
            assert!(r.body == body[..], "{v:?} {accept:?}: wrong representation");
            assert_eq!(r.h("content-encoding"), encoding, "{v:?} {accept:?}");
            assert_eq!(r.h("content-length"), body.len().to_string(), "{v:?}");
            let ctype = r.h("content-type");
            assert!(
                ctype.ends_with("javascript; charset=utf-8"),
                "{v:?}: {ctype}"
            );
            assert!(
                r.h("vary").eq_ignore_ascii_case("accept-encoding"),
                "{v:?} {accept:?}"
            );
            etags.push(r.h("etag").to_owned());
        }
        let mut distinct = etags.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(
            distinct.len(),
            3,
            "{v:?}: etags must differ per encoding: {etags:?}"
        );
    }
}

#[tokio::test]
async fn curl_compressed_decodes_the_gzip_sidecar() {
    let js = b"function harrier() { return 42; }\n".repeat(60);
    let gz = gzip(&js);
    // No .br here: curl asks for br and zstd too, and would get them if they existed.
    let server = start("", &[("lib.js", &js), ("lib.js.gz", &gz)]).await;
    let out_dir = tempfile::tempdir().expect("tempdir");
    for (flag, status_line) in [
        ("--http1.1", "HTTP/1.1 200"),
        ("--http2-prior-knowledge", "HTTP/2 200"),
    ] {
        let out = out_dir.path().join("body");
        let run = tokio::process::Command::new("curl")
            .args([
                "-sS",
                "--fail",
                "--compressed",
                "--max-time",
                "10",
                "-D",
                "-",
                flag,
            ])
            .arg("-o")
            .arg(&out)
            .arg(server.url("/lib.js"))
            .kill_on_drop(true)
            .output();
        let done = tokio::time::timeout(STEP, run)
            .await
            .expect("curl timed out");
        let done = done.expect("curl must be installed (.ci/run installs it)");
        let head = String::from_utf8_lossy(&done.stdout).to_ascii_lowercase();
        assert!(
            done.status.success(),
            "{flag}: {}",
            String::from_utf8_lossy(&done.stderr)
        );
        assert!(
            head.starts_with(&status_line.to_ascii_lowercase()),
            "{flag}: {head}"
        );
        assert!(
            head.contains("content-encoding: gzip"),
            "{flag}: sidecar not sent: {head}"
        );
        let got = std::fs::read(&out).expect("curl output");
        assert!(
            got == js,
            "{flag}: curl did not decode the sidecar to the original"
        );
    }
}

#[tokio::test]
async fn directories_redirects_404_page_hidden_files_and_cache_control() {
    let files: &[(&str, &[u8])] = &[
        ("index.html", b"home page"),
        ("dir/index.html", b"dir index"),
        ("404.html", b"custom not-found page"),
        (".env", b"SECRET_ENV=1"),
        (".git/config", b"[core]"),
        (".well-known/security.txt", b"Contact: mailto:x@example.com"),
        ("docs/readme.txt", b"r"),
    ];
    let toml = "[static]\ncache_control = \"public, max-age=60\"\n";
    let server = start(toml, files).await;
    for c in conns(&server) {
        let v = c.version;
        let r = c.get("/dir?x=1&y=%2F", &[]).await;
        assert_eq!(r.status, StatusCode::MOVED_PERMANENTLY, "{v:?}");
        assert_eq!(r.h("location"), "/dir/?x=1&y=%2F", "{v:?}: query lost");

        let r = c.expect("/dir/", StatusCode::OK, "dir index").await;
        assert_eq!(r.h("cache-control"), "public, max-age=60", "{v:?}");
        c.expect("/", StatusCode::OK, "home page").await;
        let security = "Contact: mailto:x@example.com";
        c.expect("/.well-known/security.txt", StatusCode::OK, security)
            .await;

        // Missing, a directory without index or listing, and hidden files all look alike.
        for missing in ["/nope.html", "/docs/", "/.env", "/.git/config", "/dir/.env"] {
            let page = "custom not-found page";
            let r = c.expect(missing, StatusCode::NOT_FOUND, page).await;
            assert_eq!(r.h("content-type"), "text/html; charset=utf-8", "{v:?}");
        }
    }
}

#[tokio::test]
async fn listing_fallback_and_served_hidden_files() {
    let files: &[(&str, &[u8])] = &[
        ("index.html", b"spa shell"),
        (".env", b"SECRET_ENV=1"),
        ("docs/<b>&x.txt", b"12345"),
        ("docs/.private", b"p"),
        ("docs/sub/a.txt", b"a"),
    ];
    let listing = start("[static]\ndirectory_listing = true\n", files).await;
    for c in conns(&listing) {
        let v = c.version;
        let r = c.get("/docs/", &[]).await;
        assert_eq!(r.status, StatusCode::OK, "{v:?}");
        assert_eq!(r.h("content-type"), "text/html; charset=utf-8", "{v:?}");
        let page = String::from_utf8(r.body.to_vec()).expect("UTF-8 listing");
        assert!(page.contains("&lt;b&gt;&amp;x.txt"), "{v:?}: {page}");
        assert!(!page.contains("<b>"), "{v:?}: unescaped name: {page}");
        assert!(page.contains("sub/"), "{v:?}: {page}");
        assert!(!page.contains(".private"), "{v:?}: hidden: {page}");
        c.expect("/docs/%3Cb%3E%26x.txt", StatusCode::OK, "12345")
            .await;
    }

    let toml = "[static]\nfallback = \"index.html\"\nserve_hidden_files = true\n";
    let spa = start(toml, files).await;
    for c in conns(&spa) {
        for route in ["/some/route", "/app/users/42?tab=1"] {
            let r = c.expect(route, StatusCode::OK, "spa shell").await;
            assert_eq!(r.h("content-type"), "text/html; charset=utf-8");
        }
        c.expect("/.env", StatusCode::OK, "SECRET_ENV=1").await;
        c.expect("/docs/.private", StatusCode::OK, "p").await;
    }
}

#[tokio::test]
async fn methods_other_than_get_and_head() {
    let server = start("", &[("index.html", b"home")]).await;
    for c in conns(&server) {
        let v = c.version;
        for method in [Method::POST, Method::PUT, Method::DELETE, Method::PATCH] {
            let r = c.send(method.clone(), "/index.html", &[]).await;
            assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED, "{v:?} {method}");
            assert_eq!(r.h("allow"), "GET, HEAD, OPTIONS", "{v:?} {method}");
            assert!(!r.body.starts_with(b"home"), "{v:?} {method}: file sent");
        }
        let r = c.send(Method::OPTIONS, "/index.html", &[]).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{v:?}");
        assert_eq!(r.h("allow"), "GET, HEAD, OPTIONS", "{v:?}");
        assert!(r.body.is_empty(), "{v:?}");
    }
}

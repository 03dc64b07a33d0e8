//! The `compress` stage over real sockets (HTTP/1.1 and HTTP/2): negotiation, the bytes
//! decoded by the real decoders and by curl, and the responses it must leave alone.

mod common;

use std::io::Read;

use common::*;

const TOML: &str = r#"
[[sites]]
hosts = ["*"]
[sites.static]
precompressed = true

[[sites.use]]
type = "compress"
"#;

/// About 60 KiB of text that is not trivially repetitive (several frames of the static
/// handler, and more than one encoder block).
fn big_text() -> Vec<u8> {
    let mut text = String::new();
    let mut x: u32 = 7;
    while text.len() < 60_000 {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        text.push_str(&format!("<p>line {} value {}</p>\n", text.len(), x >> 8));
    }
    text.into_bytes()
}

async fn server() -> (TestServer, Vec<u8>) {
    let big = big_text();
    let server = start(
        TOML,
        &[
            ("big.html", &big),
            ("small.txt", b"tiny"),
            ("photo.png", &big),
            ("app.js", &big),
            ("app.js.gz", b"not really gzip, but the sidecar's bytes"),
        ],
    )
    .await;
    (server, big)
}

fn decode(encoding: &str, bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    match encoding {
        "gzip" => flate2::read::GzDecoder::new(bytes)
            .read_to_end(&mut out)
            .map(drop),
        "br" => brotli::Decompressor::new(bytes, 4096)
            .read_to_end(&mut out)
            .map(drop),
        "zstd" => zstd::stream::read::Decoder::new(bytes)
            .and_then(|mut d| d.read_to_end(&mut out))
            .map(drop),
        other => panic!("unexpected coding {other}"),
    }
    .unwrap_or_else(|e| panic!("{encoding} does not decode: {e}"));
    out
}

/// Sends `req` with `headers`: the status, headers and raw (undecoded) body.
async fn fetch(
    req: reqwest::RequestBuilder,
    headers: &[(&str, &str)],
) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let req = headers.iter().fold(req, |r, (n, v)| r.header(*n, *v));
    let resp = req.send().await.expect("response");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    (status, headers, resp.bytes().await.expect("body").to_vec())
}

fn header<'a>(h: &'a reqwest::header::HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).map(|v| v.to_str().unwrap())
}

#[tokio::test]
async fn each_coding_decodes_to_the_exact_file_on_h1_and_h2() {
    let (server, big) = server().await;
    for (_, client) in clients() {
        for (accept, expected) in [
            ("gzip", "gzip"),
            ("br", "br"),
            ("zstd", "zstd"),
            ("gzip, br, zstd", "zstd"),
            ("gzip;q=0.5, br;q=0.9, zstd;q=0.1", "br"),
            ("*;q=0.3, zstd;q=0, br;q=0", "gzip"),
        ] {
            let req = client.get(server.url("/big.html"));
            let (_, h, body) = fetch(req, &[("accept-encoding", accept)]).await;
            assert_eq!(header(&h, "content-encoding"), Some(expected), "{accept}");
            assert!(body.len() < big.len() / 2, "{accept}: {} bytes", body.len());
            assert!(
                decode(expected, &body) == big,
                "{accept}: decoded bytes differ"
            );
            assert_eq!(header(&h, "vary"), Some("Accept-Encoding"));
            assert!(h.get("content-length").is_none(), "{accept}: {h:?}");
            assert!(header(&h, "etag").unwrap().starts_with("W/\""), "{h:?}");
        }
        // Nothing acceptable, or identity preferred: the identity bytes, still marked as
        // varying.
        for accept in ["*;q=0", "identity, gzip;q=0.5", "gzip;q=1.5"] {
            let req = client.get(server.url("/big.html"));
            let (_, h, body) = fetch(req, &[("accept-encoding", accept)]).await;
            assert!(h.get("content-encoding").is_none(), "{accept}: {h:?}");
            assert_eq!(header(&h, "vary"), Some("Accept-Encoding"));
            assert!(body == big, "{accept}");
        }
    }
}

#[tokio::test]
async fn responses_that_must_not_be_compressed_are_left_alone() {
    let (server, big) = server().await;
    let all = ("accept-encoding", "gzip, br, zstd");
    for (_, client) in clients() {
        let get = |path: &str| client.get(server.url(path));
        // Below min_size.
        let (_, h, body) = fetch(get("/small.txt"), &[all]).await;
        assert!(h.get("content-encoding").is_none(), "{h:?}");
        assert_eq!(body, b"tiny");
        // Not an allowed media type.
        let (_, h, body) = fetch(get("/photo.png"), &[all]).await;
        assert!(h.get("content-encoding").is_none(), "{h:?}");
        assert!(body == big);
        // A range: 206 with the identity bytes.
        let (status, h, body) = fetch(get("/big.html"), &[all, ("range", "bytes=0-99")]).await;
        assert_eq!(status, 206);
        assert!(h.get("content-encoding").is_none(), "{h:?}");
        assert_eq!(body, big[..100]);
        // HEAD: headers of the identity representation.
        let (status, h, _) = fetch(client.head(server.url("/big.html")), &[all]).await;
        assert_eq!(status, 200);
        assert!(h.get("content-encoding").is_none(), "{h:?}");
        // A precompressed sidecar is sent as the static handler chose it, not recompressed.
        let (_, h, body) = fetch(get("/app.js"), &[("accept-encoding", "gzip")]).await;
        assert_eq!(header(&h, "content-encoding"), Some("gzip"), "{h:?}");
        assert_eq!(body, b"not really gzip, but the sidecar's bytes");
    }
}

/// curl, a client that did not come from this crate, decodes what the stage sends.
#[tokio::test]
async fn curl_decodes_gzip_br_and_zstd() {
    let (server, big) = server().await;
    let url = server.url("/big.html");
    for coding in ["gzip", "br", "zstd"] {
        let url = url.clone();
        let out = tokio::task::spawn_blocking(move || {
            std::process::Command::new("curl")
                .args([
                    "-sS",
                    "--max-time",
                    "10",
                    "--compressed",
                    "-D",
                    "/dev/stderr",
                ])
                .args(["-H", &format!("Accept-Encoding: {coding}"), &url])
                .output()
                .expect("curl must be installed")
        })
        .await
        .unwrap();
        assert!(out.status.success(), "{coding}: {out:?}");
        let head = String::from_utf8_lossy(&out.stderr).to_ascii_lowercase();
        assert!(
            head.contains(&format!("content-encoding: {coding}")),
            "{head}"
        );
        assert!(out.stdout == big, "{coding}: curl's decoded body differs");
    }
}

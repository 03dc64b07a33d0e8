//! The compressing body driven by a channel (a stand-in for a server-sent-events handler),
//! and the rules for which responses are compressed.

use std::io::Write;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode};
use http_body::{Body as _, Frame};
use http_body_util::{BodyExt, StreamBody};

use super::*;
use crate::body::{self, BoxError};
use crate::config::CompressLevels;

const LEVELS: CompressLevels = CompressLevels {
    gzip: 6,
    br: 4,
    zstd: 3,
};

/// The real decoders, fed piece by piece as a client would.
enum Decoder {
    Gzip(flate2::write::GzDecoder<Vec<u8>>),
    Br(Box<brotli::DecompressorWriter<Vec<u8>>>),
    Zstd(zstd::stream::write::Decoder<'static, Vec<u8>>),
}

impl Decoder {
    fn new(encoding: Encoding) -> Decoder {
        match encoding {
            Encoding::Gzip => Decoder::Gzip(flate2::write::GzDecoder::new(Vec::new())),
            Encoding::Br => {
                Decoder::Br(Box::new(brotli::DecompressorWriter::new(Vec::new(), 4096)))
            }
            Encoding::Zstd => Decoder::Zstd(zstd::stream::write::Decoder::new(Vec::new()).unwrap()),
        }
    }

    /// Everything decodable from the bytes fed so far that was not returned before.
    fn feed(&mut self, data: &[u8]) -> Vec<u8> {
        let out = match self {
            Decoder::Gzip(d) => {
                d.write_all(data).unwrap();
                d.flush().unwrap();
                d.get_mut()
            }
            Decoder::Br(d) => {
                d.write_all(data).unwrap();
                d.flush().unwrap();
                d.get_mut()
            }
            Decoder::Zstd(d) => {
                d.write_all(data).unwrap();
                d.flush().unwrap();
                d.get_mut()
            }
        };
        std::mem::take(out)
    }
}

#[tokio::test]
async fn each_event_is_decodable_as_soon_as_it_is_sent() {
    for encoding in Encoding::ALL {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, BoxError>>(1);
        let stream = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
        let inner = StreamBody::new(stream).boxed_unsync();
        let mut body = CompressBody::new(inner, Encoder::new(encoding, LEVELS).unwrap());
        let mut decoder = Decoder::new(encoding);
        for i in 0..5 {
            let event = format!("data: event number {i}\n\n");
            tx.send(Ok(Frame::data(Bytes::from(event.clone()))))
                .await
                .unwrap();
            // The channel stays open: the frame must come out without waiting for the end.
            let frame = tokio::time::timeout(Duration::from_secs(10), body.frame())
                .await
                .expect("a compressed frame per event")
                .expect("a frame")
                .expect("no error");
            let bytes = frame.into_data().expect("data");
            assert_eq!(
                String::from_utf8(decoder.feed(&bytes)).unwrap(),
                event,
                "{encoding:?}"
            );
        }
        drop(tx);
        let mut rest = Vec::new();
        while let Some(frame) = body.frame().await {
            rest.extend_from_slice(&frame.unwrap().into_data().unwrap());
        }
        assert!(!rest.is_empty(), "{encoding:?} ends its stream");
        assert!(decoder.feed(&rest).is_empty());
        assert!(body.is_end_stream());
    }
}

fn cfg() -> CompressStage {
    CompressStage {
        encodings: Encoding::ALL.to_vec(),
        min_size: 10,
        content_types: vec!["text/".into(), "application/json".into()],
        levels: LEVELS,
    }
}

fn response(headers: &[(&'static str, &'static str)], body: &'static str) -> Response<Body> {
    let mut resp = Response::new(body::full(body));
    for (name, value) in headers {
        resp.headers_mut()
            .append(*name, HeaderValue::from_static(value));
    }
    resp
}

const LONG: &str = "a body long enough to compress";

#[test]
fn compressed_responses_get_vary_weak_etag_and_no_length() {
    let resp = response(
        &[
            ("content-type", "text/html; charset=utf-8"),
            ("content-length", "30"),
            ("etag", "\"abc\""),
            ("vary", "Origin"),
            ("accept-ranges", "bytes"),
        ],
        LONG,
    );
    let resp = apply(&cfg(), resp, Some(Encoding::Br), false);
    let h = resp.headers();
    assert_eq!(h["content-encoding"], "br");
    assert_eq!(h["etag"], "W/\"abc\"");
    assert!(h.get("content-length").is_none());
    assert!(h.get("accept-ranges").is_none());
    let vary: Vec<_> = h.get_all("vary").iter().collect();
    assert_eq!(vary, ["Origin", "Accept-Encoding"]);
}

#[test]
fn skipped_responses_are_untouched() {
    let text = ("content-type", "text/plain");
    let mut cases: Vec<(Response<Body>, bool)> = vec![
        (response(&[text, ("content-encoding", "gzip")], LONG), false),
        (
            response(&[text, ("cache-control", "public, no-transform")], LONG),
            false,
        ),
        (response(&[text], "short"), false),
        (
            response(&[text, ("content-range", "bytes 0-1/30")], LONG),
            false,
        ),
        (response(&[("content-type", "image/png")], LONG), false),
        (response(&[], LONG), false),
        // No acceptable coding: not compressed, but says it could have been.
        (response(&[text], LONG), true),
    ];
    let mut partial = response(&[text], LONG);
    *partial.status_mut() = StatusCode::PARTIAL_CONTENT;
    cases.push((partial, false));
    for (i, (resp, varies)) in cases.into_iter().enumerate() {
        let chosen = if varies { None } else { Some(Encoding::Gzip) };
        // Untouched: every header as it was (only Vary gained when it could have been
        // compressed), and the body's bytes as they were.
        let mut expected = resp.headers().clone();
        if varies {
            expected.append("vary", HeaderValue::from_static("Accept-Encoding"));
        }
        let body = resp.body().size_hint().exact();
        let resp = apply(&cfg(), resp, chosen, false);
        assert_eq!(resp.headers(), &expected, "{i}");
        assert_eq!(resp.body().size_hint().exact(), body, "{i}");
    }
    // HEAD: the identity representation's headers, and Vary.
    let head = response(&[text, ("content-length", "30")], "");
    let head = apply(&cfg(), head, Some(Encoding::Gzip), true);
    let h = head.headers();
    assert!(h.get("content-encoding").is_none());
    assert_eq!(h["content-length"], "30");
    assert_eq!(h["vary"], "Accept-Encoding");
}

#[test]
fn media_types_match_in_any_case() {
    let resp = response(&[("content-type", "Text/HTML; Charset=UTF-8")], LONG);
    let resp = apply(&cfg(), resp, Some(Encoding::Gzip), false);
    assert_eq!(resp.headers()["content-encoding"], "gzip");
    // A type shorter than the configured prefix is no match.
    let resp = response(&[("content-type", "text")], LONG);
    let resp = apply(&cfg(), resp, Some(Encoding::Gzip), false);
    assert!(resp.headers().get("content-encoding").is_none());
}

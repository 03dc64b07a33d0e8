//! File bodies: from memory when cached, else streamed from disk in bounded chunks.
//!
//! Streaming keeps memory per response at one chunk however large the file is; hyper pulls
//! the next chunk only when the client has taken the last one.

use std::io;
use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::{stream, Stream, TryStreamExt};
use http::HeaderValue;
use http_body::Frame;
use http_body_util::{BodyExt, StreamBody};

use super::file_read::read_at;
use super::range::content_range;
use crate::body::{self, Body, BoxError};

/// Read size for streamed files.
pub const CHUNK: usize = 64 * 1024;

/// Where a variant's bytes come from.
#[derive(Debug)]
pub enum Source {
    /// The cached content.
    Memory(Bytes),
    /// An open file, read by offset (shared with reads on the blocking pool).
    Disk(Arc<std::fs::File>),
}

/// The bytes `range` of `source`.
pub fn single(source: Source, range: Range<u64>) -> Body {
    match source {
        Source::Memory(bytes) => body::full(slice(&bytes, &range)),
        Source::Disk(file) => from_stream(disk_pieces(file, vec![Piece::Data(range)])),
    }
}

fn slice(bytes: &Bytes, range: &Range<u64>) -> Bytes {
    let clamp = |n: u64| usize::try_from(n).unwrap_or(usize::MAX).min(bytes.len());
    let start = clamp(range.start);
    bytes.slice(start..clamp(range.end).max(start))
}

fn from_stream(chunks: impl Stream<Item = io::Result<Bytes>> + Send + 'static) -> Body {
    StreamBody::new(chunks.map_ok(Frame::data).map_err(BoxError::from)).boxed_unsync()
}

/// One piece of a `multipart/byteranges` body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// Delimiters and part headers.
    Text(Bytes),
    /// A range of the file.
    Data(Range<u64>),
}

/// A `multipart/byteranges` body laid out ahead of time, so its exact length is known for
/// `content-length` before any byte is read.
#[derive(Debug)]
pub struct Multipart {
    /// The `content-type` of the whole response.
    pub content_type: HeaderValue,
    /// Exact body length.
    pub len: u64,
    /// Pieces in order.
    pub pieces: Vec<Piece>,
}

impl Multipart {
    /// Lays out `ranges` of a `total`-byte representation of type `part_type`. The boundary
    /// is random per response so file contents cannot be crafted to contain it.
    pub fn new(ranges: &[Range<u64>], total: u64, part_type: &HeaderValue) -> Multipart {
        Multipart::with_boundary(ranges, total, part_type, &random_boundary())
    }

    fn with_boundary(
        ranges: &[Range<u64>],
        total: u64,
        part_type: &HeaderValue,
        boundary: &str,
    ) -> Multipart {
        let part_type = String::from_utf8_lossy(part_type.as_bytes());
        let mut pieces = Vec::with_capacity(ranges.len() * 2 + 1);
        let mut len = 0;
        for (i, range) in ranges.iter().enumerate() {
            let text = format!(
                "{}--{boundary}\r\ncontent-type: {part_type}\r\ncontent-range: {}\r\n\r\n",
                if i == 0 { "" } else { "\r\n" },
                content_range(range, total),
            );
            len += text.len() as u64 + (range.end - range.start);
            pieces.push(Piece::Text(Bytes::from(text)));
            pieces.push(Piece::Data(range.clone()));
        }
        let close = format!("\r\n--{boundary}--\r\n");
        len += close.len() as u64;
        pieces.push(Piece::Text(Bytes::from(close)));
        let content_type = format!("multipart/byteranges; boundary={boundary}");
        Multipart {
            content_type: HeaderValue::from_str(&content_type)
                .unwrap_or_else(|_| HeaderValue::from_static("multipart/byteranges")),
            len,
            pieces,
        }
    }

    /// The body, reading data pieces from `source`.
    pub fn body(self, source: Source) -> Body {
        match source {
            Source::Memory(bytes) => {
                let chunks = self.pieces.into_iter().map(move |piece| match piece {
                    Piece::Text(text) => Ok(text),
                    Piece::Data(range) => Ok(slice(&bytes, &range)),
                });
                from_stream(stream::iter(chunks))
            }
            Source::Disk(file) => from_stream(disk_pieces(file, self.pieces)),
        }
    }
}

fn random_boundary() -> String {
    use std::hash::{BuildHasher, RandomState};
    let n = RandomState::new().hash_one(std::time::Instant::now());
    format!("harrier-{n:016x}")
}

/// Streams pieces from one file, reading each range in chunks of at most [`CHUNK`]. A file
/// that ends before a range does is an error (the length was promised in the head).
fn disk_pieces(
    file: Arc<std::fs::File>,
    pieces: Vec<Piece>,
) -> impl Stream<Item = io::Result<Bytes>> + Send {
    let state = (file, pieces.into_iter(), 0u64..0u64);
    stream::try_unfold(state, |(file, mut pieces, mut range)| async move {
        loop {
            if !range.is_empty() {
                let want = (range.end - range.start).min(CHUNK as u64) as usize;
                let chunk = read_at(&file, range.start, want).await?;
                if chunk.is_empty() {
                    return Err(io::Error::from(io::ErrorKind::UnexpectedEof));
                }
                range.start += chunk.len() as u64;
                return Ok(Some((chunk, (file, pieces, range))));
            }
            match pieces.next() {
                None => return Ok(None),
                Some(Piece::Text(text)) => return Ok(Some((text, (file, pieces, range)))),
                Some(Piece::Data(next)) => range = next,
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    async fn collect(body: Body) -> Vec<u8> {
        body.collect().await.unwrap().to_bytes().to_vec()
    }

    async fn disk(content: &[u8]) -> (tempfile::TempDir, Arc<std::fs::File>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, content).unwrap();
        let file = std::fs::File::open(&path).unwrap();
        (dir, Arc::new(file))
    }

    #[tokio::test]
    async fn single_ranges_from_memory_and_disk() {
        let data: Vec<u8> = (0..=255u8).cycle().take(3 * CHUNK + 7).collect();
        let mem = Source::Memory(Bytes::from(data.clone()));
        assert_eq!(collect(single(mem, 10..20)).await, &data[10..20]);
        let (_d, file) = disk(&data).await;
        let whole = collect(single(Source::Disk(file), 0..data.len() as u64)).await;
        assert_eq!(whole, data);
        let (_d, file) = disk(&data).await;
        let tail = CHUNK as u64..data.len() as u64 - 1;
        assert_eq!(
            collect(single(Source::Disk(file), tail)).await,
            &data[CHUNK..data.len() - 1]
        );
    }

    #[tokio::test]
    async fn disk_bodies_come_in_bounded_chunks() {
        let data = vec![9u8; 5 * CHUNK + 1];
        let (_d, file) = disk(&data).await;
        let mut body = single(Source::Disk(file), 0..data.len() as u64);
        let mut total = 0;
        while let Some(frame) = body.frame().await {
            let chunk = frame.unwrap().into_data().unwrap();
            assert!(!chunk.is_empty() && chunk.len() <= CHUNK, "{}", chunk.len());
            total += chunk.len();
        }
        assert_eq!(total, data.len());
    }

    #[tokio::test]
    async fn multipart_layout_and_length() {
        let data: Vec<u8> = (0..200u8).collect();
        let ct = HeaderValue::from_static("text/plain");
        let m = Multipart::with_boundary(&[0..2, 198..200], 200, &ct, "B");
        let expected = b"--B\r\ncontent-type: text/plain\r\ncontent-range: bytes 0-1/200\r\n\r\n\x00\x01\
\r\n--B\r\ncontent-type: text/plain\r\ncontent-range: bytes 198-199/200\r\n\r\n\xc6\xc7\r\n--B--\r\n";
        assert_eq!(m.len, expected.len() as u64);
        assert_eq!(m.content_type, "multipart/byteranges; boundary=B");
        let pieces = m.pieces.clone();
        assert_eq!(
            collect(m.body(Source::Memory(Bytes::from(data.clone())))).await,
            expected
        );
        let (_d, file) = disk(&data).await;
        let from_disk = Multipart {
            content_type: ct,
            len: 0,
            pieces,
        };
        assert_eq!(collect(from_disk.body(Source::Disk(file))).await, expected);
    }

    #[tokio::test]
    async fn multipart_streams_large_ranges_in_chunks() {
        let data: Vec<u8> = (0..=255u8).cycle().take(2 * CHUNK + 100).collect();
        let (_d, file) = disk(&data).await;
        let ct = HeaderValue::from_static("application/octet-stream");
        let ranges = [5..(2 * CHUNK as u64 + 50), 0..3];
        let m = Multipart::new(&ranges, data.len() as u64, &ct);
        assert!(m
            .content_type
            .to_str()
            .unwrap()
            .starts_with("multipart/byteranges; boundary=harrier-"));
        let len = m.len;
        let body = m.body(Source::Disk(file));
        let bytes = collect(body).await;
        assert_eq!(bytes.len() as u64, len);
        let needle = &data[5..2 * CHUNK + 50];
        assert!(bytes.windows(needle.len()).any(|w| w == needle));
    }

    #[tokio::test]
    async fn shrunken_file_is_an_error_not_a_hang() {
        let (_d, file) = disk(b"short").await;
        let m = Multipart::with_boundary(
            std::slice::from_ref(&(0..100)),
            100,
            &HeaderValue::from_static("x/y"),
            "B",
        );
        assert!(m.body(Source::Disk(file)).collect().await.is_err());
    }
}

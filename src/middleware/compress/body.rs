//! The compressing body: each frame of the inner body is compressed and flushed on its own,
//! so a stream (server-sent events, a slow generator) reaches the client as it is produced
//! and memory stays bounded by one frame plus the encoder's window.

use std::io::{self, Write};
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use http::HeaderMap;
use http_body::{Frame, SizeHint};

use crate::body::{Body, BoxError};
use crate::config::{CompressLevels, Encoding};

/// Brotli's window: 1 MiB (lgwin 20) bounds memory per response; the default 4 MiB gains
/// little on web content.
const BROTLI_LGWIN: u32 = 20;
/// Brotli's internal buffer size.
const BROTLI_BUFFER: usize = 4096;

/// One coding's streaming encoder, writing into a buffer drained after every frame.
pub enum Encoder {
    /// gzip.
    Gzip(flate2::write::GzEncoder<Vec<u8>>),
    /// br (boxed: its state is large).
    Br(Box<brotli::CompressorWriter<Vec<u8>>>),
    /// zstd.
    Zstd(zstd::stream::write::Encoder<'static, Vec<u8>>),
}

impl Encoder {
    /// An encoder for `encoding` at its configured level.
    pub fn new(encoding: Encoding, levels: CompressLevels) -> io::Result<Encoder> {
        Ok(match encoding {
            Encoding::Gzip => Encoder::Gzip(flate2::write::GzEncoder::new(
                Vec::new(),
                flate2::Compression::new(levels.gzip),
            )),
            Encoding::Br => Encoder::Br(Box::new(brotli::CompressorWriter::new(
                Vec::new(),
                BROTLI_BUFFER,
                levels.br,
                BROTLI_LGWIN,
            ))),
            Encoding::Zstd => {
                Encoder::Zstd(zstd::stream::write::Encoder::new(Vec::new(), levels.zstd)?)
            }
        })
    }

    /// Compresses `data` and flushes, so everything written so far can be decoded from the
    /// bytes returned up to now.
    pub fn write_flush(&mut self, data: &[u8]) -> io::Result<Bytes> {
        fn step<W: Write>(w: &mut W, data: &[u8]) -> io::Result<()> {
            w.write_all(data)?;
            w.flush()
        }
        let out = match self {
            Encoder::Gzip(e) => {
                step(e, data)?;
                e.get_mut()
            }
            Encoder::Br(e) => {
                step(e.as_mut(), data)?;
                e.get_mut()
            }
            Encoder::Zstd(e) => {
                step(e, data)?;
                e.get_mut()
            }
        };
        Ok(Bytes::from(std::mem::take(out)))
    }

    /// Ends the stream: the coding's trailer (gzip's CRC and length, the last blocks).
    pub fn finish(self) -> io::Result<Bytes> {
        let out = match self {
            Encoder::Gzip(e) => e.finish()?,
            Encoder::Br(e) => e.into_inner(),
            Encoder::Zstd(e) => e.finish()?,
        };
        Ok(Bytes::from(out))
    }
}

/// A body compressed frame by frame.
pub struct CompressBody {
    inner: Body,
    /// `None` once the inner body has ended (or failed).
    encoder: Option<Encoder>,
    /// Trailers of the inner body, sent after the coding's end.
    trailers: Option<HeaderMap>,
}

impl CompressBody {
    /// Compresses `inner` with `encoder`.
    pub fn new(inner: Body, encoder: Encoder) -> CompressBody {
        CompressBody {
            inner,
            encoder: Some(encoder),
            trailers: None,
        }
    }
}

impl http_body::Body for CompressBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        loop {
            let Some(encoder) = this.encoder.as_mut() else {
                return Poll::Ready(this.trailers.take().map(|t| Ok(Frame::trailers(t))));
            };
            let out = match ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) if data.is_empty() => continue,
                    Ok(data) => encoder.write_flush(&data),
                    Err(frame) => {
                        this.trailers = frame.into_trailers().ok();
                        continue;
                    }
                },
                Some(Err(e)) => {
                    this.encoder = None;
                    return Poll::Ready(Some(Err(e)));
                }
                None => match this.encoder.take() {
                    Some(encoder) => encoder.finish(),
                    None => continue,
                },
            };
            match out {
                Ok(bytes) if bytes.is_empty() => continue,
                Ok(bytes) => return Poll::Ready(Some(Ok(Frame::data(bytes)))),
                Err(e) => {
                    this.encoder = None;
                    return Poll::Ready(Some(Err(e.into())));
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.encoder.is_none() && self.trailers.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

//! The request body of an HTTP/3 request: the receive half of its h3 stream as an
//! [`http_body::Body`], so that [`crate::pipeline::Entry`] and its `LimitedBody` treat it like
//! hyper's `Incoming`.

use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::{Buf, Bytes};
use h3::error::{Code, StreamError};
use h3::server::RequestStream;
use http_body::{Body as HttpBody, Frame};

/// Where reading the stream is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// DATA frames until the stream ends or a trailing HEADERS frame arrives.
    Data,
    /// The optional trailers.
    Trailers,
    /// Everything read (or an error returned).
    Done,
}

/// The receive half of an h3 request stream, read frame by frame as the handler polls it.
pub struct RequestBody {
    stream: RequestStream<h3_quinn::RecvStream, Bytes>,
    state: State,
    /// The last poll was pending: h3-quinn holds the QUIC stream inside its read future then,
    /// and panics if asked to stop it.
    reading: bool,
}

impl RequestBody {
    /// The body read from `stream`.
    pub fn new(stream: RequestStream<h3_quinn::RecvStream, Bytes>) -> Self {
        RequestBody {
            stream,
            state: State::Data,
            reading: false,
        }
    }
}

impl HttpBody for RequestBody {
    type Data = Bytes;
    type Error = StreamError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, StreamError>>> {
        let polled = self.as_mut().poll_stream(cx);
        self.reading = polled.is_pending();
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.state == State::Done
    }
}

impl RequestBody {
    fn poll_stream(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, StreamError>>> {
        loop {
            match self.state {
                State::Data => match ready!(self.stream.poll_recv_data(cx)) {
                    Ok(Some(mut data)) => {
                        // The chunk is a `Bytes` underneath: this does not copy.
                        let data = data.copy_to_bytes(data.remaining());
                        return Poll::Ready(Some(Ok(Frame::data(data))));
                    }
                    Ok(None) => self.state = State::Trailers,
                    Err(e) => {
                        self.state = State::Done;
                        return Poll::Ready(Some(Err(e)));
                    }
                },
                State::Trailers => {
                    let trailers = ready!(self.stream.poll_recv_trailers(cx));
                    self.state = State::Done;
                    return Poll::Ready(trailers.transpose().map(|t| t.map(Frame::trailers)));
                }
                State::Done => return Poll::Ready(None),
            }
        }
    }
}

impl Drop for RequestBody {
    fn drop(&mut self) {
        // The response does not need the rest (RFC 9114 §4.1: a server that answered early
        // asks the client to stop sending, without an error). With a read pending, dropping
        // the stream stops it (with code 0).
        if self.state != State::Done && !self.reading {
            self.stream.stop_sending(Code::H3_NO_ERROR);
        }
    }
}

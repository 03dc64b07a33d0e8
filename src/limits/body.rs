//! The request body as handlers see it: size limit and minimum upload rate enforced.
//!
//! Kestrel enforces `MaxRequestBodySize` and `MinRequestBodyDataRate` while the application
//! reads the body; so does this wrapper, for every protocol. A violation surfaces as a body
//! error that [`BodyLimitError::status`] maps to the status a handler should answer with.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http::StatusCode;
use http_body::{Body as HttpBody, Frame, SizeHint};
use tokio::time::Sleep;

use crate::body::BoxError;
use crate::config::DataRate;

/// Why reading a request body stopped.
#[derive(Debug, thiserror::Error)]
pub enum BodyLimitError {
    /// More bytes than `max_request_body_size`.
    #[error("request body larger than {0} bytes")]
    TooLarge(u64),
    /// The client sent the body slower than `min_request_body_data_rate`.
    #[error("request body arrived slower than {0} bytes per second")]
    TooSlow(u64),
}

impl BodyLimitError {
    /// The status a handler should answer when reading the body failed with `err`.
    pub fn status(err: &BoxError) -> StatusCode {
        match err.downcast_ref::<BodyLimitError>() {
            Some(BodyLimitError::TooLarge(_)) => StatusCode::PAYLOAD_TOO_LARGE,
            Some(BodyLimitError::TooSlow(_)) => StatusCode::REQUEST_TIMEOUT,
            None => StatusCode::BAD_REQUEST,
        }
    }
}

pin_project_lite::pin_project! {
    /// A request body with limits; see the module documentation.
    pub struct LimitedBody<B> {
        #[pin]
        inner: B,
        max: Option<u64>,
        received: u64,
        rate: Option<DataRate>,
        started: Option<Instant>,
        timer: Option<Pin<Box<Sleep>>>,
    }
}

impl<B> LimitedBody<B> {
    /// Wraps `inner` with an optional size limit and minimum data rate.
    pub fn new(inner: B, max: Option<u64>, rate: Option<DataRate>) -> Self {
        LimitedBody {
            inner,
            max,
            received: 0,
            rate,
            started: None,
            timer: None,
        }
    }
}

impl<B> HttpBody for LimitedBody<B>
where
    B: HttpBody<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.project();
        let started = *this.started.get_or_insert_with(Instant::now);
        match this.inner.poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    *this.received += data.len() as u64;
                    if let Some(max) = *this.max {
                        if *this.received > max {
                            return Poll::Ready(Some(Err(BodyLimitError::TooLarge(max).into())));
                        }
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => {
                let Some(rate) = *this.rate else {
                    return Poll::Pending;
                };
                let elapsed = started.elapsed();
                if elapsed >= rate.grace_period {
                    let needed = rate.bytes_per_second as f64 * elapsed.as_secs_f64();
                    if (*this.received as f64) < needed {
                        return Poll::Ready(Some(Err(BodyLimitError::TooSlow(
                            rate.bytes_per_second,
                        )
                        .into())));
                    }
                }
                // Re-check once a second (first at the end of the grace period) while waiting.
                let next = if elapsed < rate.grace_period {
                    started + rate.grace_period
                } else {
                    Instant::now() + std::time::Duration::from_secs(1)
                };
                let next = tokio::time::Instant::from_std(next);
                let timer = match this.timer {
                    Some(t) => {
                        t.as_mut().reset(next);
                        t
                    }
                    None => this.timer.insert(Box::pin(tokio::time::sleep_until(next))),
                };
                if timer.as_mut().poll(cx).is_ready() {
                    cx.waker().wake_by_ref();
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

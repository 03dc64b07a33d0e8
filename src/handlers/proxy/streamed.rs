//! The body of an upstream's response on its way to the client: cut when the upstream
//! pauses longer than `body_idle_timeout`, and counting the request as in flight on its
//! upstream until the last byte (least_conn and recycling drains see streaming responses).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

use super::upstream::InFlight;
use crate::body::BoxError;

/// The upstream paused longer than `body_idle_timeout` in the middle of a body.
#[derive(Debug, thiserror::Error)]
#[error("upstream sent nothing for {0:?} in the middle of a response body")]
pub struct BodyIdle(pub Duration);

pin_project_lite::pin_project! {
    /// See the module documentation.
    pub struct UpstreamBody<B> {
        #[pin]
        inner: B,
        idle: Duration,
        // Made the first time the body waits: a response that is all there when the client
        // reads it (most small ones) never touches the timer wheel.
        timer: Option<Pin<Box<Sleep>>>,
        // A frame came since the timer was last set.
        progressed: bool,
        guard: Option<InFlight>,
    }
}

impl<B> UpstreamBody<B> {
    /// Wraps `inner`; `guard` is released when the body ends or is dropped.
    pub fn new(inner: B, idle: Duration, guard: InFlight) -> Self {
        UpstreamBody {
            inner,
            idle,
            timer: None,
            progressed: false,
            guard: Some(guard),
        }
    }
}

impl<B> HttpBody for UpstreamBody<B>
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
        match this.inner.poll_frame(cx) {
            Poll::Ready(None) => {
                this.guard.take();
                Poll::Ready(None)
            }
            Poll::Ready(Some(frame)) => {
                *this.progressed = true;
                if frame.is_err() {
                    this.guard.take();
                }
                Poll::Ready(Some(frame.map_err(Into::into)))
            }
            Poll::Pending => {
                // The pause is timed from the first wait after the last frame.
                let timer = match this.timer {
                    Some(timer) if *this.progressed => {
                        timer.as_mut().reset(Instant::now() + *this.idle);
                        timer
                    }
                    Some(timer) => timer,
                    None => this.timer.insert(Box::pin(tokio::time::sleep(*this.idle))),
                };
                *this.progressed = false;
                if timer.as_mut().poll(cx).is_ready() {
                    this.guard.take();
                    return Poll::Ready(Some(Err(Box::new(BodyIdle(*this.idle)))));
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

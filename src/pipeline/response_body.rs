//! The response body hyper writes: it keeps the request counted as in flight until the last
//! byte is out, and writes the access-log line when it ends.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};

use crate::access_log::Record;
use crate::body::{Body, BoxError};
use crate::limits::RequestGuard;

/// A response body with bookkeeping; see the module documentation.
pub struct ResponseBody {
    inner: Body,
    sent: u64,
    log: Option<Box<Record>>,
    _guard: Option<RequestGuard>,
}

impl ResponseBody {
    /// Wraps `inner`; `log` is written when the body is finished or dropped.
    pub fn new(inner: Body, guard: Option<RequestGuard>, log: Option<Box<Record>>) -> Self {
        ResponseBody {
            inner,
            sent: 0,
            log,
            _guard: guard,
        }
    }
}

impl HttpBody for ResponseBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let res = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &res {
            if let Some(data) = frame.data_ref() {
                self.sent += data.len() as u64;
            }
        }
        res
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for ResponseBody {
    fn drop(&mut self) {
        if let Some(record) = self.log.take() {
            record.write(self.sent);
        }
    }
}

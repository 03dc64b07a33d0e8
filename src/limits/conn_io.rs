//! The I/O wrapper under every hyper connection: timeouts, head checks and response rate.
//!
//! hyper has no idle timeout for HTTP/2, an HTTP/1 header timeout that closes without a
//! response, and no minimum response data rate. Doing these here, in the I/O object hyper
//! already polls, costs no extra task and no timer on the fast path: timers are armed only
//! when a read or write would block.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes};
use http::StatusCode;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

use super::conn_state::ConnShared;
use super::head_scan::{HeadLimits, HeadScanner, Verdict};
use crate::config::DataRate;

/// Timeouts and rates applied by [`ConnIo`].
#[derive(Debug, Clone, Copy)]
pub struct IoLimits {
    /// Close the connection after this long without a request.
    pub keep_alive_timeout: Duration,
    /// A request head must be complete this long after its first byte (HTTP/1.1).
    pub request_headers_timeout: Duration,
    /// Abort when the client reads responses slower than this.
    pub min_response_data_rate: Option<DataRate>,
}

/// Where an idle HTTP/1.1 connection's stream is put when hyper's connection around it is
/// released (see [`ConnIo::release_when_idle`]).
pub type ReleaseSlot<T> = Arc<std::sync::Mutex<Option<T>>>;

/// How long an HTTP/1.1 connection waits for its next request before hyper's state for it
/// (an 8 KiB read and an 8 KiB write buffer, header maps, the connection future) is released.
/// Long enough that a busy connection keeps it (rebuilding costs a few microseconds), short
/// enough that thousands of idle keep-alive connections hold only their sockets.
pub const RELEASE_IDLE_AFTER: Duration = Duration::from_millis(10);

/// Wraps a connection's byte stream; see the module documentation.
pub struct ConnIo<T> {
    /// Taken out when the stream is handed to `release`.
    inner: Option<T>,
    /// Where the stream goes once hyper has finished with an idle connection.
    release: Option<ReleaseSlot<T>>,
    /// hyper was told the stream ended because the connection is idle; its shutdown hands
    /// the stream to `release` instead of closing it.
    releasing: bool,
    /// Bytes already read while detecting the protocol, replayed first.
    prefix: Bytes,
    shared: Arc<ConnShared>,
    limits: IoLimits,
    /// Present on HTTP/1.1 connections.
    scanner: Option<HeadScanner>,
    head_started: Option<Instant>,
    reject: Option<Reject>,
    read_timer: Option<Pin<Box<Sleep>>>,
    write: WriteRate,
    /// Bytes were written and not yet flushed.
    dirty: bool,
}

/// A canned error response written in place of hyper's, then the connection ends.
struct Reject {
    bytes: Bytes,
}

#[derive(Default)]
struct WriteRate {
    blocked_since: Option<Instant>,
    blocked_total: Duration,
    bytes: u64,
    timer: Option<Pin<Box<Sleep>>>,
}

impl<T> ConnIo<T> {
    /// Wraps `inner`; `head_limits` is `Some` for HTTP/1.1 (heads are checked byte by byte).
    pub fn new(
        inner: T,
        prefix: Bytes,
        shared: Arc<ConnShared>,
        limits: IoLimits,
        head_limits: Option<HeadLimits>,
    ) -> Self {
        ConnIo {
            inner: Some(inner),
            release: None,
            releasing: false,
            prefix,
            shared,
            limits,
            scanner: head_limits.map(HeadScanner::new),
            head_started: None,
            reject: None,
            read_timer: None,
            write: WriteRate::default(),
            dirty: false,
        }
    }

    /// Once the connection has waited [`RELEASE_IDLE_AFTER`] for its next request, reports
    /// the end of the stream to hyper and, when hyper shuts it down, puts the stream in
    /// `slot` instead of closing it, so that the caller can wait for the next request without
    /// hyper's buffers and serve it with a new connection. HTTP/1.1 only: the head scanner is
    /// what knows that no request is half-read.
    pub fn release_when_idle(mut self, slot: ReleaseSlot<T>) -> Self {
        self.release = Some(slot);
        self
    }

    /// Whether reporting the end of the stream now would lose nothing: no request is being
    /// read or answered and every byte read belongs to a request already answered.
    fn may_release(&self) -> bool {
        self.release.is_some()
            && !self.releasing
            && self.reject.is_none()
            && self.prefix.is_empty()
            && RELEASE_IDLE_AFTER < self.limits.keep_alive_timeout
            && self.scanner.as_ref().is_some_and(HeadScanner::at_boundary)
    }

    /// Runs the head scanner over newly read bytes; returns how many may be passed on.
    fn inspect(&mut self, new: &[u8]) -> usize {
        if self.shared.is_upgraded() {
            return new.len();
        }
        if self.shared.in_flight() == 0 && self.write.blocked_since.is_none() {
            // A new request begins: response-rate accounting starts afresh.
            self.write.bytes = 0;
            self.write.blocked_total = Duration::ZERO;
        }
        let Some(scanner) = self.scanner.as_mut() else {
            return new.len();
        };
        match scanner.feed(new) {
            Verdict::Ok => {
                if scanner.in_head() {
                    self.head_started.get_or_insert_with(Instant::now);
                } else {
                    self.head_started = None;
                }
                new.len()
            }
            Verdict::Reject { status, at } => {
                tracing::debug!(%status, "refusing malformed or oversized request head");
                self.reject = Some(Reject {
                    bytes: canned_response(status),
                });
                at
            }
        }
    }
}

/// A complete, minimal HTTP/1.1 error response that closes the connection.
fn canned_response(status: StatusCode) -> Bytes {
    let reason = status.canonical_reason().unwrap_or("Error");
    let body = format!("{} {}\n", status.as_u16(), reason);
    Bytes::from(format!(
        "HTTP/1.1 {} {}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\ndate: {}\r\n\r\n{}",
        status.as_u16(),
        reason,
        body.len(),
        httpdate::fmt_http_date(std::time::SystemTime::now()),
        body
    ))
}

fn poll_timer(
    timer: &mut Option<Pin<Box<Sleep>>>,
    deadline: Instant,
    cx: &mut Context<'_>,
) -> Poll<()> {
    let deadline = tokio::time::Instant::from_std(deadline);
    match timer {
        Some(t) => {
            if t.deadline() != deadline {
                t.as_mut().reset(deadline);
            }
            t.as_mut().poll(cx)
        }
        None => timer
            .insert(Box::pin(tokio::time::sleep_until(deadline)))
            .as_mut()
            .poll(cx),
    }
}

use std::future::Future;

impl<T: AsyncRead + AsyncWrite + Unpin> ConnIo<T> {
    /// The stream, or an error once it has been handed to the release slot (hyper does not
    /// write after it was told the stream ended and shut it down).
    fn inner(&mut self) -> io::Result<Pin<&mut T>> {
        match self.inner.as_mut() {
            Some(inner) => Ok(Pin::new(inner)),
            None => Err(io::ErrorKind::NotConnected.into()),
        }
    }

    /// Writes the canned response once every earlier response is out, then reports EOF.
    fn poll_reject(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.shared.in_flight() > 0 || self.dirty {
            self.shared.read_waker.register(cx.waker());
            return Poll::Pending;
        }
        let Some(reject) = self.reject.as_mut() else {
            return Poll::Ready(Ok(()));
        };
        while reject.bytes.has_remaining() {
            let Some(inner) = self.inner.as_mut() else {
                return Poll::Ready(Err(io::ErrorKind::NotConnected.into()));
            };
            let n = std::task::ready!(Pin::new(inner).poll_write(cx, &reject.bytes))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            reject.bytes.advance(n);
        }
        std::task::ready!(self.inner()?.poll_flush(cx))?;
        // Report end of stream: hyper drops its partial head without answering it.
        Poll::Ready(Ok(()))
    }

    /// Called when a read would block: arms the head or idle timer.
    fn poll_read_timers(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.shared.is_upgraded() {
            // The tunnel has its own lifetime; HTTP's idle and head timers no longer apply.
            return Poll::Pending;
        }
        if self.shared.in_flight() > 0 {
            // Wake up when the last request finishes, so the idle timer gets armed.
            self.shared.read_waker.register(cx.waker());
            if self.shared.in_flight() > 0 {
                return Poll::Pending;
            }
        }
        if let Some(started) = self.head_started {
            let deadline = started + self.limits.request_headers_timeout;
            if poll_timer(&mut self.read_timer, deadline, cx).is_ready() {
                self.head_started = None;
                self.reject = Some(Reject {
                    bytes: canned_response(StatusCode::REQUEST_TIMEOUT),
                });
                return self.poll_reject(cx);
            }
            return Poll::Pending;
        }
        if self.may_release() {
            let at = self.shared.idle_since() + RELEASE_IDLE_AFTER;
            if poll_timer(&mut self.read_timer, at, cx).is_ready() {
                self.releasing = true;
                return Poll::Ready(Ok(()));
            }
            return Poll::Pending;
        }
        let deadline = self.shared.idle_since() + self.limits.keep_alive_timeout;
        if poll_timer(&mut self.read_timer, deadline, cx).is_ready() {
            self.shared.close.notify_one();
        }
        Poll::Pending
    }

    /// Accounts a write attempt for the minimum response data rate.
    fn account_write(
        &mut self,
        res: Poll<io::Result<usize>>,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<usize>> {
        match res {
            Poll::Ready(Ok(n)) => {
                if n > 0 {
                    self.dirty = true;
                }
                if let Some(since) = self.write.blocked_since.take() {
                    self.write.blocked_total += since.elapsed();
                }
                self.write.bytes += n as u64;
                Poll::Ready(Ok(n))
            }
            Poll::Pending => {
                let Some(rate) = self.limits.min_response_data_rate else {
                    return Poll::Pending;
                };
                if self.shared.is_upgraded() {
                    return Poll::Pending;
                }
                let now = Instant::now();
                let since = *self.write.blocked_since.get_or_insert(now);
                let blocked = self.write.blocked_total + (now - since);
                if blocked >= rate.grace_period {
                    let needed = rate.bytes_per_second as f64 * blocked.as_secs_f64();
                    if (self.write.bytes as f64) < needed {
                        tracing::debug!("client reads too slowly: closing connection");
                        return Poll::Ready(Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            "minimum response data rate not met",
                        )));
                    }
                }
                // Check again in a second (or when the grace period ends) while still blocked.
                let next = now
                    + Duration::from_secs(1).min(
                        rate.grace_period
                            .saturating_sub(blocked)
                            .max(Duration::from_millis(100)),
                    );
                if poll_timer(&mut self.write.timer, next, cx).is_ready() {
                    cx.waker().wake_by_ref();
                }
                Poll::Pending
            }
            other => other,
        }
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncRead for ConnIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.reject.is_some() {
            return this.poll_reject(cx);
        }
        if !this.prefix.is_empty() {
            let n = this.prefix.len().min(buf.remaining());
            let chunk = this.prefix.split_to(n);
            let pass = this.inspect(&chunk);
            buf.put_slice(&chunk[..pass]);
            if pass == 0 && this.reject.is_some() {
                return this.poll_reject(cx);
            }
            return Poll::Ready(Ok(()));
        }
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(Ok(()));
        };
        let before = buf.filled().len();
        match Pin::new(inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let filled = buf.filled().len();
                if filled == before {
                    return Poll::Ready(Ok(()));
                }
                let pass = this.inspect(&buf.filled()[before..]);
                buf.set_filled(before + pass);
                if pass == 0 && this.reject.is_some() {
                    return this.poll_reject(cx);
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending => this.poll_read_timers(cx),
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
        }
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncWrite for ConnIo<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let res = this.inner()?.poll_write(cx, buf);
        this.account_write(res, cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let res = this.inner()?.poll_write_vectored(cx, bufs);
        this.account_write(res, cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.as_ref().is_some_and(|t| t.is_write_vectored())
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let res = this.inner()?.poll_flush(cx);
        if let Poll::Ready(Ok(())) = res {
            this.dirty = false;
            if this.reject.is_some() {
                // A refusal was waiting for earlier responses to leave.
                cx.waker().wake_by_ref();
            }
        }
        res
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.releasing {
            return this.inner()?.poll_shutdown(cx);
        }
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(Ok(()));
        };
        std::task::ready!(Pin::new(inner).poll_flush(cx))?;
        if let (Some(slot), Some(inner)) = (this.release.take(), this.inner.take()) {
            // A poisoned slot (a panic elsewhere) just means the stream is dropped: closed.
            if let Ok(mut slot) = slot.lock() {
                *slot = Some(inner);
            }
        }
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper_util::rt::TokioIo;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    const BOUND: Duration = Duration::from_secs(5);

    async fn read_until(stream: &mut TcpStream, end: &[u8]) -> Vec<u8> {
        let mut got = Vec::new();
        let mut buf = [0u8; 1024];
        while !got.ends_with(end) {
            let n = stream.read(&mut buf).await.expect("read");
            assert!(n > 0, "closed after {:?}", String::from_utf8_lossy(&got));
            got.extend_from_slice(&buf[..n]);
        }
        got
    }

    /// hyper serves a request through `ConnIo`; once the client has been idle for
    /// `RELEASE_IDLE_AFTER`, hyper's connection ends without closing the socket, which is
    /// handed back through the slot and still carries the client's next request.
    #[tokio::test]
    async fn an_idle_connection_is_handed_back_open() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (stream, _) = listener.accept().await.unwrap();
        let shared = ConnShared::new();
        let limits = IoLimits {
            keep_alive_timeout: BOUND,
            request_headers_timeout: BOUND,
            min_response_data_rate: None,
        };
        let head = HeadLimits {
            max_request_line_size: 1024,
            max_header_count: 10,
            max_headers_total_size: 1024,
        };
        let slot = ReleaseSlot::default();
        let io = ConnIo::new(
            stream,
            Bytes::new(),
            Arc::clone(&shared),
            limits,
            Some(head),
        )
        .release_when_idle(Arc::clone(&slot));
        let state = Arc::clone(&shared);
        let service = hyper::service::service_fn(move |_req| {
            drop(state.start_request());
            async { Ok::<_, std::convert::Infallible>(http::Response::new(String::from("ok"))) }
        });
        let conn = hyper::server::conn::http1::Builder::new()
            .serve_connection(TokioIo::new(io), service)
            .with_upgrades();
        let serving = tokio::spawn(async move {
            let started = Instant::now();
            conn.await.map(|()| started.elapsed())
        });

        client
            .write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
            .await
            .unwrap();
        let answer = tokio::time::timeout(BOUND, read_until(&mut client, b"ok")).await;
        assert!(answer
            .expect("answered in time")
            .starts_with(b"HTTP/1.1 200"));
        let served = tokio::time::timeout(BOUND, serving)
            .await
            .expect("hyper's connection ends once idle")
            .unwrap()
            .expect("and ends without an error");
        assert!(served >= RELEASE_IDLE_AFTER, "released after {served:?}");

        let mut stream = slot
            .lock()
            .unwrap()
            .take()
            .expect("the socket is handed back");
        client
            .write_all(b"GET /next HTTP/1.1\r\n\r\n")
            .await
            .unwrap();
        let next = tokio::time::timeout(BOUND, read_until(&mut stream, b"\r\n\r\n")).await;
        assert_eq!(
            next.expect("next request in time"),
            b"GET /next HTTP/1.1\r\n\r\n"
        );
    }
}

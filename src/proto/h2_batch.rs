//! HTTP/2 batching: new streams get their first poll inside their connection's poll, and what
//! the connection writes during that poll leaves in one write at its end.
//!
//! hyper hands every accepted stream to an executor. Spawned as tasks, each stream's response
//! woke the connection task, which tokio's LIFO slot ran straight away: one TLS record and one
//! `writev` per response even when ten requests arrived in one read (h2load `-m 10`), a third of
//! the server's CPU in the kernel's send path. The h2 crate also flushes after every DATA frame
//! larger than 256 bytes, so even responses produced together were written one by one.
//!
//! Here the streams accepted during one poll of the connection are collected ([`StreamExecutor`]),
//! polled once right after it, and the connection polled again so it queues their answers
//! ([`Batched`]). Meanwhile the connection's writes go to a buffer ([`Corked`]) whose flushes are
//! deferred while the poll runs; the poll ends with one more pass of the connection with the
//! cork out, whose flush writes everything at once — like nginx and h2o, which write at the end
//! of an event loop turn. A stream not finished by its first poll (a proxied request, a file
//! read from disk, a request body still arriving) becomes a task as before.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// A stream hyper handed over.
type Stream = Pin<Box<dyn Future<Output = ()> + Send>>;

thread_local! {
    /// The streams accepted by the connection being polled on this thread (`None` outside a
    /// [`Batched`] poll: then streams are spawned directly).
    static ACCEPTED: RefCell<Option<Vec<Stream>>> = const { RefCell::new(None) };
    /// Set while a [`Batched`] poll wants [`Corked`] flushes deferred.
    static CORKED: Cell<bool> = const { Cell::new(false) };
    /// Set by a [`Corked`] flush that was deferred: the poll must end with a real one.
    static DEFERRED: Cell<bool> = const { Cell::new(false) };
}

/// Rounds of (poll connection, run its new streams) in one poll before yielding to other
/// tasks; each round needs new request frames from the socket, so this bounds a busy client.
const MAX_ROUNDS: usize = 8;

/// Buffered bytes past which [`Corked`] writes through even while corked: about four 16 KiB
/// TLS records, so large bodies stream instead of piling up.
const CORK_LIMIT: usize = 64 * 1024;

/// Buffer capacity a [`Corked`] keeps after writing out; a larger one (after a big body) is
/// released so an idle connection does not hold it.
const CORK_KEEP: usize = 16 * 1024;

/// The executor given to hyper's HTTP/2 builder: collects streams during a [`Batched`] poll.
#[derive(Clone, Copy, Debug, Default)]
pub struct StreamExecutor;

impl<F> hyper::rt::Executor<F> for StreamExecutor
where
    F: Future<Output = ()> + Send + 'static,
{
    fn execute(&self, stream: F) {
        let stream: Stream = Box::pin(stream);
        let unqueued = ACCEPTED.with_borrow_mut(|accepted| match accepted {
            Some(accepted) => {
                accepted.push(stream);
                None
            }
            None => Some(stream),
        });
        if let Some(stream) = unqueued {
            tokio::spawn(stream);
        }
    }
}

pin_project_lite::pin_project! {
    /// An HTTP/2 connection future (built with [`StreamExecutor`] over a [`Corked`] I/O) whose
    /// new streams get their first poll inline and whose writes leave once per poll.
    pub struct Batched<C> {
        #[pin]
        conn: C,
        // Reused between polls: no allocation per batch once it has grown.
        spare: Vec<Stream>,
    }
}

impl<C> Batched<C> {
    /// Wraps hyper's connection future.
    pub fn new(conn: C) -> Self {
        Batched {
            conn,
            spare: Vec::new(),
        }
    }

    /// The wrapped connection, to ask it to shut down gracefully.
    pub fn conn(self: Pin<&mut Self>) -> Pin<&mut C> {
        self.project().conn
    }
}

impl<C: Future> Future for Batched<C> {
    type Output = C::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<C::Output> {
        let mut this = self.project();
        DEFERRED.set(false);
        let mut rounds = 0;
        loop {
            rounds += 1;
            // A pass after one that deferred its flush runs uncorked: its flush writes.
            let flush_pass = DEFERRED.replace(false);
            CORKED.set(!flush_pass);
            let outer = ACCEPTED.replace(Some(std::mem::take(this.spare)));
            let result = this.conn.as_mut().poll(cx);
            let mut batch = ACCEPTED.replace(outer).unwrap_or_default();
            CORKED.set(false);
            let accepted = !batch.is_empty();
            for stream in batch.drain(..) {
                first_poll(stream);
            }
            *this.spare = batch;
            if result.is_ready() {
                return result;
            }
            match (accepted, DEFERRED.get()) {
                // Their answers are queued in the connection: another pass writes them.
                (true, _) if rounds < MAX_ROUNDS => continue,
                // Written (corked): one more pass with the cork out.
                (false, true) => continue,
                (true, _) => {
                    // Out of rounds: let other tasks run; the next poll writes these answers.
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
                (false, false) => return result,
            }
        }
    }
}

/// Polls a stream once; one that is not finished becomes a task. The no-op waker is never
/// relied on: a pending stream is polled again by its task, with the task's waker.
fn first_poll(mut stream: Stream) {
    if super::poll_inline(stream.as_mut()).is_pending() {
        tokio::spawn(stream);
    }
}

pin_project_lite::pin_project! {
    /// An HTTP/2 connection's I/O whose writes are buffered while a [`Batched`] poll is corked;
    /// outside one (or past [`CORK_LIMIT`]) it writes through.
    pub struct Corked<T> {
        #[pin]
        inner: T,
        buf: Vec<u8>,
    }
}

impl<T> Corked<T> {
    /// Wraps the connection's I/O.
    pub fn new(inner: T) -> Self {
        Corked {
            inner,
            buf: Vec::new(),
        }
    }
}

impl<T: AsyncWrite> Corked<T> {
    /// Writes the buffer out; `Ready(Ok)` once it is empty.
    fn poll_drain(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut this = self.project();
        let mut written = 0;
        let result = loop {
            if written == this.buf.len() {
                break Poll::Ready(Ok(()));
            }
            match this.inner.as_mut().poll_write(cx, &this.buf[written..]) {
                Poll::Ready(Ok(0)) => break Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => written += n,
                Poll::Ready(Err(e)) => break Poll::Ready(Err(e)),
                Poll::Pending => break Poll::Pending,
            }
        };
        this.buf.drain(..written);
        if this.buf.is_empty() && this.buf.capacity() > CORK_KEEP {
            *this.buf = Vec::new();
        }
        result
    }

    /// Whether a write of `len` bytes is appended: yes while corked, and while bytes of a
    /// corked pass still wait (they must leave first); past the limit the buffer is written
    /// out first. `None`: the caller writes through.
    fn poll_append(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        len: usize,
    ) -> Option<Poll<io::Result<()>>> {
        if !CORKED.get() && self.buf.is_empty() {
            return None;
        }
        if self.buf.len() + len > CORK_LIMIT {
            if let Poll::Ready(Err(e)) = self.as_mut().poll_drain(cx) {
                return Some(Poll::Ready(Err(e)));
            }
            if !self.buf.is_empty() {
                return Some(Poll::Pending);
            }
            if !CORKED.get() {
                return None;
            }
        }
        Some(Poll::Ready(Ok(())))
    }
}

impl<T: AsyncRead> AsyncRead for Corked<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.project().inner.poll_read(cx, buf)
    }
}

impl<T: AsyncWrite> AsyncWrite for Corked<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_vectored(cx, &[io::IoSlice::new(data)])
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let len = bufs.iter().map(|b| b.len()).sum();
        match self.as_mut().poll_append(cx, len) {
            None => self.project().inner.poll_write_vectored(cx, bufs),
            Some(Poll::Ready(Ok(()))) => {
                let this = self.project();
                let mut room = CORK_LIMIT.saturating_sub(this.buf.len());
                let mut n = 0;
                for b in bufs {
                    let take = b.len().min(room);
                    this.buf.extend_from_slice(&b[..take]);
                    n += take;
                    room -= take;
                }
                Poll::Ready(Ok(n))
            }
            Some(other) => other.map_ok(|()| 0),
        }
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if CORKED.get() {
            if !self.buf.is_empty() {
                DEFERRED.set(true);
            }
            return Poll::Ready(Ok(()));
        }
        std::task::ready!(self.as_mut().poll_drain(cx))?;
        self.project().inner.poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        std::task::ready!(self.as_mut().poll_drain(cx))?;
        self.project().inner.poll_shutdown(cx)
    }
}

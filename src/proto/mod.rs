//! HTTP/1.1 and HTTP/2 (h2c by prior knowledge) on one connection, driven by hyper.
//!
//! The protocol is decided by the first bytes (the HTTP/2 connection preface), then the
//! endpoint's `protocols` decide whether it is served. The connection runs until it ends,
//! its keep-alive timeout asks for a close, or the server drains.

mod builders;
mod h2_batch;
pub mod h3;
mod sniff;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use crate::config::{Config, Protocols};
use crate::limits::{ConnIo, ConnShared, HeadLimits, IoLimits, ReleaseSlot};
use crate::pipeline::{App, ConnInfo, Entry};

pub use builders::Builders;
use sniff::{sniff, Sniffed};

/// What every connection of one server shares.
pub struct ConnContext {
    /// The request pipeline.
    pub app: Arc<App>,
    builders: Builders,
    io_limits: IoLimits,
    head_limits: HeadLimits,
    /// Cancelled when connections should finish their current requests and close.
    pub drain: CancellationToken,
    /// Cancelled when connections must close now.
    pub abort: CancellationToken,
}

impl ConnContext {
    /// Connection settings from `config`, answering requests with `app`.
    pub fn new(
        config: &Config,
        app: Arc<App>,
        drain: CancellationToken,
        abort: CancellationToken,
    ) -> Self {
        let limits = &config.limits;
        ConnContext {
            app,
            builders: Builders::new(config),
            io_limits: IoLimits {
                keep_alive_timeout: limits.keep_alive_timeout,
                request_headers_timeout: limits.request_headers_timeout,
                min_response_data_rate: limits.min_response_data_rate,
            },
            head_limits: HeadLimits {
                max_request_line_size: limits.max_request_line_size,
                max_header_count: limits.max_request_header_count,
                max_headers_total_size: limits.max_request_headers_total_size,
            },
            drain,
            abort,
        }
    }
}

/// Serves one accepted connection until it closes.
pub async fn serve_connection<S>(
    mut stream: S,
    protocols: Protocols,
    conn: ConnInfo,
    ctx: Arc<ConnContext>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let sniffed = tokio::select! {
        s = tokio::time::timeout(ctx.io_limits.request_headers_timeout, sniff(&mut stream)) => s,
        _ = ctx.drain.cancelled() => return,
    };
    let (is_h2, prefix) = match sniffed {
        Ok(Ok(Sniffed { is_h2, prefix })) => (is_h2, prefix),
        Ok(Err(e)) => {
            tracing::debug!("connection closed before a request: {e}");
            return;
        }
        Err(_) => {
            tracing::debug!("no request within request_headers_timeout: closing connection");
            return;
        }
    };
    if (is_h2 && !protocols.http2) || (!is_h2 && !protocols.http1) {
        tracing::debug!(
            h2 = is_h2,
            "protocol not enabled on this endpoint: closing connection"
        );
        return;
    }
    let shared = ConnShared::new();
    let service = Entry::new(Arc::clone(&ctx.app), Arc::clone(&shared), Arc::new(conn));
    if !is_h2 {
        return serve_http1(stream, prefix, shared, service, &ctx).await;
    }
    // Boxed separately so an HTTP/1.1 connection does not carry the size of an HTTP/2 one
    // (built in a block: what lives across an await is stored in the connection's future).
    let serving = {
        let io = ConnIo::new(stream, prefix, Arc::clone(&shared), ctx.io_limits, None);
        let io = TokioIo::new(h2_batch::Corked::new(io));
        let conn = ctx.builders.h2.serve_connection(io, service);
        Box::pin(drive(h2_batch::Batched::new(conn), &shared, &ctx))
    };
    serving.await;
}

/// Serves HTTP/1.1 requests, giving up hyper's connection (and its buffers) whenever the
/// client has been idle for [`crate::limits::RELEASE_IDLE_AFTER`]: the socket alone then waits for the next
/// request, which a new hyper connection serves. Keep-alive timeout, drain and abort apply
/// while released as while served.
async fn serve_http1<S>(
    mut stream: S,
    mut prefix: Bytes,
    shared: Arc<ConnShared>,
    service: Entry,
    ctx: &ConnContext,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let slot: ReleaseSlot<S> = Arc::default();
    loop {
        // Boxed in a block so that a released connection's future holds none of it.
        let serving = {
            let io = ConnIo::new(
                stream,
                prefix,
                Arc::clone(&shared),
                ctx.io_limits,
                Some(ctx.head_limits),
            )
            .release_when_idle(Arc::clone(&slot));
            // Upgrades (WebSocket through the proxy) need the connection handed over after a 101.
            let conn = ctx
                .builders
                .h1
                .serve_connection(TokioIo::new(io), service.clone())
                .with_upgrades();
            Box::pin(drive(conn, &shared, ctx))
        };
        serving.await;
        let released = slot.lock().ok().and_then(|mut slot| slot.take());
        let Some(released) = released else {
            return;
        };
        stream = released;
        match wait_while_released(&mut stream, &shared, ctx).await {
            Some(bytes) => prefix = bytes,
            None => return,
        }
    }
}

/// Waits for a released connection's next bytes; `None` when it should close instead (the
/// client left, the keep-alive timeout passed, the server drains or aborts).
async fn wait_while_released<S>(
    stream: &mut S,
    shared: &ConnShared,
    ctx: &ConnContext,
) -> Option<Bytes>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let deadline = shared.idle_since() + ctx.io_limits.keep_alive_timeout;
    let polite = tokio::select! {
        biased;
        _ = ctx.abort.cancelled() => false,
        read = sniff::read_some(stream) => {
            return read.ok().filter(|bytes| !bytes.is_empty());
        }
        _ = ctx.drain.cancelled() => true,
        _ = tokio::time::sleep_until(deadline.into()) => true,
    };
    if polite {
        // What hyper does when it closes an idle connection: FIN, and TLS's close_notify.
        let _ = tokio::time::timeout(CLOSE_GRACE, stream.shutdown()).await;
    }
    None
}

/// Polls a request's future once on the caller's task, so that what it answers at once is
/// sent together with its neighbours' answers instead of after a task switch each. `Pending`
/// means the caller must spawn it (the no-op waker is never relied on: its task polls it
/// again with a real one). A panic counts as finished, as a panicking task would: the request
/// is dropped (its stream reset) and the connection carries on.
fn poll_inline<F: Future<Output = ()> + ?Sized>(fut: Pin<&mut F>) -> Poll<()> {
    let mut cx = Context::from_waker(std::task::Waker::noop());
    let poll = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| fut.poll(&mut cx)));
    match poll {
        Ok(poll) => poll,
        Err(_) => {
            tracing::error!("a request panicked; its stream was reset");
            Poll::Ready(())
        }
    }
}

/// A hyper connection that can be asked to finish gracefully.
trait Drain: Future {
    fn drain(self: Pin<&mut Self>);
}

impl<I, S> Drain for hyper::server::conn::http1::UpgradeableConnection<I, S>
where
    S: hyper::service::HttpService<hyper::body::Incoming>,
    S::ResBody: 'static,
    <S::ResBody as http_body::Body>::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    fn drain(self: Pin<&mut Self>) {
        self.graceful_shutdown();
    }
}

impl<C: Drain> Drain for h2_batch::Batched<C> {
    fn drain(self: Pin<&mut Self>) {
        self.conn().drain();
    }
}

impl<I, S, E, B> Drain for hyper::server::conn::http2::Connection<I, S, E>
where
    S: hyper::service::HttpService<hyper::body::Incoming, ResBody = B>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    I: hyper::rt::Read + hyper::rt::Write + Unpin + 'static,
    B: http_body::Body + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    E: hyper::rt::bounds::Http2ServerConnExec<S::Future, B>,
{
    fn drain(self: Pin<&mut Self>) {
        self.graceful_shutdown();
    }
}

/// After asking a connection to close gracefully, how long it may take to finish the
/// goodbye (HTTP/2's GOAWAY and PING round trip) once it has no request in flight.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// Wakes the connection task and remembers that a signal (not the connection) woke it.
///
/// A connection's future is polled on every byte it moves; polling the signal futures each
/// time would take a mutex per poll (tokio's `Notify`). They are polled only when they woke us.
#[derive(Default)]
struct SignalWaker {
    woken: std::sync::atomic::AtomicBool,
    task: futures_util::task::AtomicWaker,
}

impl std::task::Wake for SignalWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, std::sync::atomic::Ordering::Release);
        self.task.wake();
    }
}

/// What a signal asks of the connection.
enum Signal {
    /// Finish in-flight requests, then close (keep-alive timeout or server drain).
    Drain,
    /// The peer had its grace period to close: drop the connection now if idle.
    Force,
    /// Close now (server abort).
    Abort,
}

async fn drive<C, E>(conn: C, shared: &ConnShared, ctx: &ConnContext)
where
    C: Drain<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    let mut conn = std::pin::pin!(conn);
    let mut close = std::pin::pin!(shared.close.notified());
    let mut drain = std::pin::pin!(ctx.drain.cancelled());
    let mut abort = std::pin::pin!(ctx.abort.cancelled());
    // Set once draining (so also the draining flag): a peer that never acknowledges the
    // GOAWAY is cut off when idle.
    let mut force: Option<std::pin::Pin<Box<tokio::time::Sleep>>> = None;
    let signals = Arc::new(SignalWaker::default());
    signals
        .woken
        .store(true, std::sync::atomic::Ordering::Relaxed);
    let signal_waker = std::task::Waker::from(Arc::clone(&signals));
    std::future::poll_fn(|cx| {
        signals.task.register(cx.waker());
        loop {
            if let Poll::Ready(res) = conn.as_mut().poll(cx) {
                if let Err(e) = res {
                    tracing::debug!("connection ended with an error: {e}");
                }
                return Poll::Ready(());
            }
            if !signals
                .woken
                .swap(false, std::sync::atomic::Ordering::AcqRel)
            {
                return Poll::Pending;
            }
            let mut scx = Context::from_waker(&signal_waker);
            let signal = if abort.as_mut().poll(&mut scx).is_ready() {
                Some(Signal::Abort)
            } else if force
                .as_mut()
                .is_some_and(|f| f.as_mut().poll(&mut scx).is_ready())
            {
                Some(Signal::Force)
            } else if force.is_none()
                && (close.as_mut().poll(&mut scx).is_ready()
                    || drain.as_mut().poll(&mut scx).is_ready())
            {
                Some(Signal::Drain)
            } else {
                None
            };
            match signal {
                None => return Poll::Pending,
                Some(Signal::Abort) => return Poll::Ready(()),
                Some(Signal::Force) if shared.in_flight() == 0 => {
                    tracing::debug!("peer did not finish closing: dropping the connection");
                    return Poll::Ready(());
                }
                Some(Signal::Force) | Some(Signal::Drain) => {
                    if force.is_none() {
                        conn.as_mut().drain();
                    }
                    let at = tokio::time::Instant::now() + CLOSE_GRACE;
                    force = Some(Box::pin(tokio::time::sleep_until(at)));
                    // Poll the new timer (and the connection, which was asked to drain).
                    signals
                        .woken
                        .store(true, std::sync::atomic::Ordering::Release);
                }
            }
        }
    })
    .await
}

//! Keep-alive HTTP/1.1 connections to one plain-HTTP (TCP or unix socket) upstream, driven
//! by the requests that use them.
//!
//! hyper-util's pooled client runs every upstream connection as a task of its own: each
//! request crosses to that task through a channel, its response and every body chunk cross
//! back, and the pool hashes its key at every checkout and return. About a sixth of a
//! proxied request's instructions went there. Here the request's own future polls the
//! connection while it waits for the response head, and the response body polls it as the
//! client reads: one task, no hand-offs. A connection whose response ended cleanly and that
//! can take another request goes back to the idle list (newest last, so the warmest is used
//! first); one whose body was abandoned is closed, as it must be.
//!
//! Upgrades (the tunnel needs hyper's upgrade machinery), HTTP/2 and https upstreams (ALPN
//! may choose h2) keep hyper-util's client.

use std::future::{poll_fn, Future};
use std::pin::{pin, Pin};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response};
use http_body::{Body as HttpBody, Frame, SizeHint};
use hyper::body::Incoming;
use hyper::client::conn::http1;

use super::connect::{ConnectError, Connector, UpstreamIo};
use crate::body::Body;

/// Boxed once per connection: hyper's connection state is large, and it moves between the
/// idle list, the request and the body at every request.
type Conn = Box<http1::Connection<UpstreamIo, Body>>;

/// A connection between requests.
struct Idle {
    send: http1::SendRequest<Body>,
    conn: Conn,
    since: Instant,
}

/// The idle HTTP/1.1 connections of one upstream and how to open more.
pub struct H1Pool {
    connector: Connector,
    idle: Mutex<Vec<Idle>>,
    max_idle: usize,
    idle_timeout: Duration,
}

/// Why an exchange with the upstream failed.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// No connection could be opened.
    #[error("connect: {0}")]
    Connect(#[source] ConnectError),
    /// The connection failed while sending the request or reading the response head.
    #[error("{0}")]
    Http(#[source] hyper::Error),
}

impl SendError {
    /// Nothing reached the upstream: safe to try another one.
    pub fn is_connect(&self) -> bool {
        matches!(self, SendError::Connect(_))
    }
}

impl H1Pool {
    /// A pool keeping at most `max_idle` connections, each for at most `idle_timeout`;
    /// a task closes expired ones while the pool lives.
    pub fn new(connector: Connector, max_idle: usize, idle_timeout: Duration) -> Arc<Self> {
        let pool = Arc::new(H1Pool {
            connector,
            idle: Mutex::new(Vec::new()),
            max_idle,
            idle_timeout,
        });
        let weak = Arc::downgrade(&pool);
        // A connection is closed at most half a timeout late.
        let every = (idle_timeout / 2).max(Duration::from_millis(100));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(pool) = weak.upgrade() else { return };
                pool.expire();
            }
        });
        pool
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Idle>> {
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Closes connections idle longer than the timeout (outside the lock).
    fn expire(&self) {
        let now = Instant::now();
        let expired: Vec<Idle> = {
            let mut idle = self.lock();
            let keep = idle
                .iter()
                .position(|c| now.duration_since(c.since) < self.idle_timeout)
                .unwrap_or(idle.len());
            idle.drain(..keep).collect()
        };
        drop(expired);
    }

    /// The newest idle connection that is still open, polled once with `cx` so that a close
    /// by the upstream while it sat idle is seen now rather than when the request is lost.
    fn checkout(&self, cx: &mut Context<'_>) -> Option<(http1::SendRequest<Body>, Conn)> {
        loop {
            let Idle {
                send,
                mut conn,
                since,
            } = self.lock().pop()?;
            if since.elapsed() >= self.idle_timeout {
                // Everything below it is older still (but another request may have put a
                // fresh one on top meanwhile: only the expired ones go).
                self.expire();
                return None;
            }
            if Pin::new(&mut *conn).poll(cx).is_pending() && send.is_ready() {
                return Some((send, conn));
            }
        }
    }

    /// Drives a connection whose response has ended until it can take another request
    /// (its request body sent), then pools it; drops it if it closes or takes too long.
    async fn finish_upload(self: Arc<Self>, mut send: http1::SendRequest<Body>, mut conn: Conn) {
        let ready = poll_fn(|cx| {
            if Pin::new(&mut *conn).poll(cx).is_ready() {
                return Poll::Ready(false);
            }
            send.poll_ready(cx).map(|r| r.is_ok())
        });
        if let Ok(true) = tokio::time::timeout(self.idle_timeout, ready).await {
            self.put(send, conn);
        }
    }

    fn put(&self, send: http1::SendRequest<Body>, conn: Conn) {
        let mut idle = self.lock();
        if idle.len() < self.max_idle {
            idle.push(Idle {
                send,
                conn,
                since: Instant::now(),
            });
        }
    }

    /// A new connection (boxed by the caller: it is the rare path, and its future is large).
    async fn open(&self) -> Result<(http1::SendRequest<Body>, Conn), SendError> {
        let io = self.connector.dial().await.map_err(SendError::Connect)?;
        let (send, conn) = http1::Builder::new()
            .handshake(io)
            .await
            .map_err(SendError::Http)?;
        Ok((send, Box::new(conn)))
    }

    /// Sends `req` (origin-form URI, Host set) on an idle connection or a new one, and
    /// answers with the response head; the body drives the connection from then on. A
    /// request that an idle connection closed under before it was sent is sent again on
    /// the next one (or a new one).
    pub async fn send(
        self: &Arc<Self>,
        mut req: Request<Body>,
    ) -> Result<Response<PooledBody>, SendError> {
        loop {
            let (reused, mut send, conn) = match poll_fn(|cx| Poll::Ready(self.checkout(cx))).await
            {
                Some((send, conn)) => (true, send, conn),
                None => {
                    let (send, conn) = Box::pin(self.open()).await?;
                    (false, send, conn)
                }
            };
            let mut conn = Some(conn);
            let mut sent = pin!(send.try_send_request(req));
            let result = poll_fn(|cx| {
                if let Some(c) = conn.as_mut() {
                    if Pin::new(&mut **c).poll(cx).is_ready() {
                        // Done or failed: dropping it fails a request still queued in it,
                        // handing the request back.
                        conn = None;
                    }
                }
                sent.as_mut().poll(cx)
            })
            .await;
            match result {
                Ok(resp) => {
                    let (parts, incoming) = resp.into_parts();
                    let body = PooledBody {
                        incoming,
                        conn: conn.map(|conn| (send, conn)),
                        pool: Arc::downgrade(self),
                    };
                    return Ok(Response::from_parts(parts, body));
                }
                Err(mut e) => match e.take_message() {
                    Some(back) if reused => req = back,
                    _ => return Err(SendError::Http(e.into_error())),
                },
            }
        }
    }
}

/// A response body from a pooled connection: reading it drives the connection, and once
/// it has ended the connection goes back to the pool.
pub struct PooledBody {
    incoming: Incoming,
    conn: Option<(http1::SendRequest<Body>, Conn)>,
    pool: Weak<H1Pool>,
}

impl PooledBody {
    /// Lets the connection read what the body waits for.
    fn drive(&mut self, cx: &mut Context<'_>) {
        if let Some((_, conn)) = self.conn.as_mut() {
            if Pin::new(&mut **conn).poll(cx).is_ready() {
                self.conn = None;
            }
        }
    }

    /// After the last byte: the connection settles into idle and goes back to the pool if
    /// it can take another request (not `Connection: close`, nothing left unread). An
    /// upstream may answer before it has read the whole request body (a 202, an early
    /// 413...): without `Connection: close` the body must still be sent (RFC 9112 §9.5), so
    /// a task finishes the upload, within `pool_idle_timeout`, and then returns the
    /// connection.
    fn release(&mut self, cx: &mut Context<'_>) {
        self.drive(cx);
        let (Some((send, conn)), Some(pool)) = (self.conn.take(), self.pool.upgrade()) else {
            return;
        };
        if send.is_ready() {
            pool.put(send, conn);
        } else if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(pool.finish_upload(send, conn));
        }
    }
}

impl HttpBody for PooledBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        // The body first, so that it tells the connection it wants data; then the
        // connection, which reads it; then the body again.
        let mut frame = Pin::new(&mut this.incoming).poll_frame(cx);
        if frame.is_pending() && this.conn.is_some() {
            this.drive(cx);
            frame = Pin::new(&mut this.incoming).poll_frame(cx);
        }
        match &frame {
            Poll::Ready(None) => this.release(cx),
            // hyper's server stops polling after trailers, so they count as the end.
            Poll::Ready(Some(Ok(frame)))
                if frame.is_trailers() || this.incoming.is_end_stream() =>
            {
                this.release(cx)
            }
            Poll::Ready(Some(Err(_))) => this.conn = None,
            _ => {}
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.incoming.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.incoming.size_hint()
    }
}

impl Drop for PooledBody {
    /// An empty body (HEAD, 204, 304) may never be polled; it still ended cleanly.
    fn drop(&mut self) {
        if self.conn.is_some() && self.incoming.is_end_stream() {
            self.release(&mut Context::from_waker(Waker::noop()));
        }
    }
}

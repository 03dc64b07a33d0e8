//! Telling HTTP/2 prior knowledge from HTTP/1.1 by the connection preface.

use std::io;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::task::Poll;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, ReadBuf};

const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Most a single [`read_some`] returns; a longer request head is read on by hyper.
const READ_SIZE: usize = 4096;

/// The outcome of sniffing: the protocol and the bytes consumed doing so (to be replayed).
pub struct Sniffed {
    /// The client sent the HTTP/2 connection preface.
    pub is_h2: bool,
    /// Bytes read so far.
    pub prefix: Bytes,
}

/// Reads until the bytes either are the HTTP/2 preface or cannot be.
pub async fn sniff<S: AsyncRead + Unpin>(stream: &mut S) -> io::Result<Sniffed> {
    let mut prefix = Bytes::new();
    loop {
        let more = read_some(stream).await?;
        if more.is_empty() {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        prefix = if prefix.is_empty() {
            more
        } else {
            let mut joined = BytesMut::with_capacity(prefix.len() + more.len());
            joined.extend_from_slice(&prefix);
            joined.extend_from_slice(&more);
            joined.freeze()
        };
        let common = prefix.len().min(PREFACE.len());
        if prefix[..common] != PREFACE[..common] {
            return Ok(Sniffed {
                is_h2: false,
                prefix,
            });
        }
        if prefix.len() >= PREFACE.len() {
            return Ok(Sniffed {
                is_h2: true,
                prefix,
            });
        }
    }
}

/// Waits for the peer's next bytes and returns them (empty at end of stream).
///
/// The read goes into a buffer on the stack of the poll that completes it, so a connection
/// waiting for its client holds no read buffer: ten thousand idle keep-alive connections
/// would otherwise keep ten thousand buffers.
pub async fn read_some<S: AsyncRead + Unpin>(stream: &mut S) -> io::Result<Bytes> {
    std::future::poll_fn(|cx| {
        let mut buf = [MaybeUninit::<u8>::uninit(); READ_SIZE];
        let mut read = ReadBuf::uninit(&mut buf);
        std::task::ready!(Pin::new(&mut *stream).poll_read(cx, &mut read))?;
        Poll::Ready(Ok(Bytes::copy_from_slice(read.filled())))
    })
    .await
}

//! Telling HTTP/2 prior knowledge from HTTP/1.1 by the connection preface.

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};

const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// The outcome of sniffing: the protocol and the bytes consumed doing so (to be replayed).
pub struct Sniffed {
    /// The client sent the HTTP/2 connection preface.
    pub is_h2: bool,
    /// Bytes read so far.
    pub prefix: Bytes,
}

/// Reads until the bytes either are the HTTP/2 preface or cannot be.
pub async fn sniff<S: AsyncRead + Unpin>(stream: &mut S) -> std::io::Result<Sniffed> {
    let mut buf = BytesMut::with_capacity(1024);
    loop {
        let n = stream.read_buf(&mut buf).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let common = buf.len().min(PREFACE.len());
        if buf[..common] != PREFACE[..common] {
            return Ok(Sniffed {
                is_h2: false,
                prefix: buf.freeze(),
            });
        }
        if buf.len() >= PREFACE.len() {
            return Ok(Sniffed {
                is_h2: true,
                prefix: buf.freeze(),
            });
        }
    }
}

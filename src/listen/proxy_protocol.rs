//! The PROXY protocol (HAProxy's, v1 text and v2 binary): a load balancer that terminates
//! TCP tells us who its client was in a header before anything else on the connection
//! (before TLS). On endpoints with `proxy_protocol = true` the header is required: the
//! address it gives becomes the connection's remote address, and a connection without a
//! valid header is closed. Parsing is done by the `ppp` crate; this module only reads
//! exactly the header's bytes, so nothing of the TLS or HTTP bytes behind it is consumed.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use ppp::{v1, v2, HeaderResult};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio_util::sync::CancellationToken;

use crate::pipeline::ConnInfo;

/// The v2 signature.
const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";
/// The shortest header of either version: `PROXY UNKNOWN\r\n`.
const MIN_LEN: usize = 15;
/// The longest v1 line the spec allows, CRLF included.
const V1_MAX: usize = 107;

/// Reads the PROXY header when `timeout` is set (the endpoint requires one) and puts its
/// source address into `info.remote`. False when the connection must be closed: no valid
/// header within `timeout`, or the server is shutting down.
pub async fn accept_header<S: AsyncRead + Unpin>(
    stream: &mut S,
    timeout: Option<Duration>,
    info: &mut ConnInfo,
    drain: &CancellationToken,
) -> bool {
    let Some(timeout) = timeout else {
        return true;
    };
    let read = tokio::select! {
        r = tokio::time::timeout(timeout, read_header(stream)) => r,
        _ = drain.cancelled() => return false,
    };
    match read {
        Ok(Ok(source)) => {
            // LOCAL (health checks) and UNKNOWN keep the real peer.
            if source.is_some() {
                info.remote = source;
            }
            true
        }
        Ok(Err(e)) => {
            tracing::debug!("closing a connection without a valid PROXY header: {e}");
            false
        }
        Err(_) => {
            tracing::debug!("no PROXY header within {timeout:?}: closing connection");
            false
        }
    }
}

/// Reads one v1 or v2 header, exactly, and returns the client address it carries (`None`
/// for LOCAL and UNKNOWN, which speak for the proxy itself).
pub async fn read_header<S: AsyncRead + Unpin>(stream: &mut S) -> io::Result<Option<SocketAddr>> {
    let mut buf = vec![0u8; MIN_LEN];
    stream.read_exact(&mut buf).await?;
    if buf.starts_with(V2_SIGNATURE) {
        buf.resize(16, 0);
        stream.read_exact(&mut buf[MIN_LEN..]).await?;
        let len = usize::from(u16::from_be_bytes([buf[14], buf[15]]));
        buf.resize(16 + len, 0);
        stream.read_exact(&mut buf[16..]).await?;
    } else if buf.starts_with(b"PROXY ") {
        while !buf.ends_with(b"\r\n") {
            // Until CR is seen at least "\r\n" is still to come: two bytes can be read
            // without reading past the line.
            let more = if buf.last() == Some(&b'\r') { 1 } else { 2 };
            if buf.len() + more > V1_MAX {
                return Err(invalid("PROXY v1 line longer than 107 bytes"));
            }
            let at = buf.len();
            buf.resize(at + more, 0);
            stream.read_exact(&mut buf[at..]).await?;
        }
    } else {
        return Err(invalid("the connection does not start with a PROXY header"));
    }
    match HeaderResult::parse(&buf) {
        HeaderResult::V1(Ok(h)) => Ok(match h.addresses {
            v1::Addresses::Tcp4(a) => Some(SocketAddr::from((a.source_address, a.source_port))),
            v1::Addresses::Tcp6(a) => Some(SocketAddr::from((a.source_address, a.source_port))),
            v1::Addresses::Unknown => None,
        }),
        HeaderResult::V2(Ok(h)) => Ok(match (h.command, h.addresses) {
            (v2::Command::Proxy, v2::Addresses::IPv4(a)) => {
                Some(SocketAddr::from((a.source_address, a.source_port)))
            }
            (v2::Command::Proxy, v2::Addresses::IPv6(a)) => {
                Some(SocketAddr::from((a.source_address, a.source_port)))
            }
            _ => None,
        }),
        HeaderResult::V1(Err(e)) => Err(invalid(&format!("bad PROXY v1 header: {e}"))),
        HeaderResult::V2(Err(e)) => Err(invalid(&format!("bad PROXY v2 header: {e}"))),
    }
}

fn invalid(message: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn read(bytes: &[u8]) -> (io::Result<Option<SocketAddr>>, Vec<u8>) {
        let mut input = bytes;
        let result = read_header(&mut input).await;
        (result, input.to_vec())
    }

    #[tokio::test]
    async fn reads_exactly_the_header() {
        let (r, rest) = read(b"PROXY TCP4 1.2.3.4 5.6.7.8 1111 443\r\nGET / HTTP/1.1\r\n").await;
        assert_eq!(r.unwrap(), Some("1.2.3.4:1111".parse().unwrap()));
        assert_eq!(rest, b"GET / HTTP/1.1\r\n");
        let (r, rest) = read(b"PROXY UNKNOWN\r\nX").await;
        assert_eq!(r.unwrap(), None);
        assert_eq!(rest, b"X");
        let header = v2::Builder::with_addresses(
            v2::Version::Two | v2::Command::Proxy,
            v2::Protocol::Stream,
            (
                "[2001:db8::1]:4000".parse::<SocketAddr>().unwrap(),
                "[2001:db8::2]:443".parse::<SocketAddr>().unwrap(),
            ),
        )
        .write_tlv(v2::Type::NoOp, b"pad")
        .unwrap()
        .build()
        .unwrap();
        let mut bytes = header.clone();
        bytes.extend_from_slice(b"\x16\x03\x01");
        let (r, rest) = read(&bytes).await;
        assert_eq!(r.unwrap(), Some("[2001:db8::1]:4000".parse().unwrap()));
        assert_eq!(rest, b"\x16\x03\x01");
    }

    #[tokio::test]
    async fn refuses_anything_else() {
        assert!(read(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n").await.0.is_err());
        assert!(read(b"PROXY TCP4 1.2.3.4\r\n and more").await.0.is_err());
        let long = [b"PROXY TCP4 ".as_slice(), &[b'1'; 200]].concat();
        assert!(read(&long).await.0.is_err());
        assert!(read(b"PROXY").await.0.is_err());
    }
}

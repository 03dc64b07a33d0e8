//! Binding endpoint sockets with explicit options (socket2), TCP and unix.

use std::io;
use std::net::SocketAddr;
#[cfg(unix)]
use std::path::PathBuf;

use socket2::{Domain, Protocol, Socket, Type};

use crate::config::ListenUrl;

/// Pending connections the kernel queues per socket (nginx uses 511; Kestrel 512).
const BACKLOG: i32 = 1024;

/// A bound, listening socket.
#[derive(Debug)]
pub enum Listener {
    /// TCP; `true` when it is an https:// endpoint.
    Tcp(tokio::net::TcpListener, bool),
    /// Unix domain socket, with the path to remove on shutdown.
    #[cfg(unix)]
    Unix(tokio::net::UnixListener, PathBuf),
}

impl Listener {
    /// The URL clients use to reach this listener (with the real port when 0 was asked).
    pub fn url(&self) -> String {
        match self {
            Listener::Tcp(l, secure) => {
                let scheme = if *secure { "https" } else { "http" };
                match l.local_addr() {
                    Ok(addr) => format!("{scheme}://{addr}"),
                    Err(_) => format!("{scheme}://?"),
                }
            }
            #[cfg(unix)]
            Listener::Unix(_, path) => format!("unix:{}", path.display()),
        }
    }

    /// The bound TCP address, if this is a TCP listener.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        match self {
            Listener::Tcp(l, _) => l.local_addr().ok(),
            #[cfg(unix)]
            Listener::Unix(..) => None,
        }
    }
}

/// Binds `url`. Must be called inside a tokio runtime.
pub fn bind(url: &ListenUrl) -> io::Result<Listener> {
    match url {
        ListenUrl::Http(addr) => bind_tcp(*addr).map(|l| Listener::Tcp(l, false)),
        ListenUrl::Https(addr) => bind_tcp(*addr).map(|l| Listener::Tcp(l, true)),
        #[cfg(unix)]
        ListenUrl::Unix(path) => bind_unix(path),
        #[cfg(not(unix))]
        ListenUrl::Unix(_) => Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "unix sockets are not supported on this platform",
        )),
    }
}

fn bind_tcp(addr: SocketAddr) -> io::Result<tokio::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    // Windows' SO_REUSEADDR lets another process steal the port; elsewhere it only allows
    // rebinding over TIME_WAIT after a restart.
    #[cfg(not(windows))]
    socket.set_reuse_address(true)?;
    if addr.is_ipv6() {
        // Explicit, whatever the OS default: [::] means IPv6 only; list 0.0.0.0 too for both.
        socket.set_only_v6(true)?;
    }
    socket.set_tcp_nodelay(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    tokio::net::TcpListener::from_std(socket.into())
}

#[cfg(unix)]
fn bind_unix(path: &std::path::Path) -> io::Result<Listener> {
    use std::os::unix::fs::FileTypeExt;
    // A socket file left by a previous run would make bind fail; anything else is kept.
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if meta.file_type().is_socket() {
            std::fs::remove_file(path)?;
        }
    }
    let listener = tokio::net::UnixListener::bind(path)?;
    Ok(Listener::Unix(listener, path.to_path_buf()))
}

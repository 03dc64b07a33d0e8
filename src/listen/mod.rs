//! Listening sockets: binding endpoints, accepting connections, the connection limit.

mod accept;
mod bind;

pub use accept::{accept_loop, AcceptedStream, ConnectionLimiter, ConnectionPermit};
pub use bind::{bind, Listener};

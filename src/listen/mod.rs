//! Listening sockets: binding endpoints, accepting connections, the connection limit.

mod accept;
mod bind;
mod endpoint;
pub mod proxy_protocol;

pub use accept::{accept_loop, AcceptedStream, ConnectionLimiter, ConnectionPermit};
pub use bind::{bind, Listener};
pub use endpoint::{BoundEndpoint, EndpointError};

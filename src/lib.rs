//! harrier: a fast, standalone HTTP server with precise limits, configured by one TOML file.
//!
//! The binary (`src/main.rs`) is only the command line; everything it does is available to
//! embedders through [`Server`].

pub mod access_log;
pub mod apps;
pub mod body;
pub mod config;
pub mod handlers;
pub mod limits;
pub mod listen;
pub mod middleware;
pub mod pipeline;
pub mod proto;
pub mod server;
pub mod signals;
pub mod text;
pub mod tls;

pub use server::{BoundServer, Server, ServerError};

//! harrier: a fast, standalone HTTP server with precise limits, configured by one TOML file.
//!
//! The binary (`src/main.rs`) is only the command line; everything it does is available to
//! embedders through [`Server`].

pub mod body;
pub mod config;
pub mod handlers;

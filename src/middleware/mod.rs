//! Middleware stages: each wraps the rest of a route's chain (see `pipeline::chain`).

pub mod headers;
pub mod basic_auth;
pub mod cors;
pub mod rewrite;

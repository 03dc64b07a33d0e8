//! Middleware stages: each wraps the rest of a route's chain (see `pipeline::chain`).

pub mod basic_auth;
pub mod compress;
pub mod cors;
pub mod error_pages;
pub mod forwarded_headers;
pub mod headers;
pub mod ip_filter;
pub mod rate_limit;
pub mod request_filter;
pub mod rewrite;

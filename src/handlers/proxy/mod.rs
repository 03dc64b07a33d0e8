//! The `proxy` and `app` handlers: forward requests to upstream servers and stream their
//! responses back.

pub mod upstream;

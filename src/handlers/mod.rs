//! Terminal handlers: the stage that finally answers a request.

pub mod static_files;

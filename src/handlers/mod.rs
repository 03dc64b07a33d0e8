//! Terminal handlers: the stage that finally answers a request.

pub mod proxy;
pub mod redirect;
pub mod respond;
pub mod static_files;

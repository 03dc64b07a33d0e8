//! One configured endpoint made real: its socket, its TLS, and what its requests need to know.

use std::sync::Arc;

use http::HeaderValue;

use super::{bind, Listener};
use crate::config::{Config, EndpointConfig, Hsts, ListenUrl, Protocols};
use crate::pipeline::EndpointInfo;
use crate::tls::{EndpointTls, TlsError};

/// Why an endpoint could not be started.
#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    /// The socket could not be bound.
    #[error("cannot listen on {url}: {source}")]
    Bind {
        /// The endpoint URL from the config.
        url: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// TLS could not be set up.
    #[error("{url}: {source}")]
    Tls {
        /// The endpoint URL from the config.
        url: String,
        /// What went wrong.
        source: TlsError,
    },
}

/// A bound endpoint, ready to accept.
pub struct BoundEndpoint {
    /// The listening socket.
    pub listener: Listener,
    /// Protocols spoken.
    pub protocols: Protocols,
    /// Shared with every request of the endpoint.
    pub info: Arc<EndpointInfo>,
    /// TLS, on https:// endpoints.
    pub tls: Option<Arc<EndpointTls>>,
}

impl BoundEndpoint {
    /// Binds `ep` (of `config`, which the https redirect target is taken from).
    pub fn bind(ep: &EndpointConfig, config: &Config) -> Result<Self, EndpointError> {
        let url = ep.url.to_string();
        let tls = match (&ep.url, &ep.tls) {
            (ListenUrl::Https(addr), Some(tls)) => Some(Arc::new(
                EndpointTls::new(tls, *addr, ep.protocols).map_err(|source| {
                    EndpointError::Tls {
                        url: url.clone(),
                        source,
                    }
                })?,
            )),
            _ => None,
        };
        let listener = bind(&ep.url).map_err(|source| EndpointError::Bind { url, source })?;
        let info = EndpointInfo {
            url: listener.url(),
            https_redirect_port: ep.https_redirect.then(|| https_port(config)).flatten(),
            hsts: ep.tls.as_ref().and_then(|t| t.hsts).map(hsts_value),
            alt_svc: None,
            require_sni_host_match: ep.tls.as_ref().is_some_and(|t| t.require_sni_host_match),
        };
        Ok(BoundEndpoint {
            listener,
            protocols: ep.protocols,
            info: Arc::new(info),
            tls,
        })
    }
}

/// The port of the first https:// endpoint, where plain-HTTP requests are redirected.
fn https_port(config: &Config) -> Option<u16> {
    config.endpoints.iter().find_map(|e| match e.url {
        ListenUrl::Https(addr) => Some(addr.port()),
        _ => None,
    })
}

fn hsts_value(h: Hsts) -> HeaderValue {
    let mut v = format!("max-age={}", h.max_age.as_secs());
    if h.include_subdomains {
        v.push_str("; includeSubDomains");
    }
    if h.preload {
        v.push_str("; preload");
    }
    HeaderValue::from_str(&v).unwrap_or_else(|_| HeaderValue::from_static("max-age=0"))
}

//! Server lifecycle: bind every endpoint, serve, and shut down gracefully.
//!
//! Embedders use it like Kestrel: `Server::from_config(cfg).bind().await?.serve(signal)`.

use std::future::Future;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::handlers::static_files::StaticFiles;
use crate::listen::{self, AcceptedStream, ConnectionLimiter, Listener};
use crate::pipeline::{App, Handler};
use crate::proto::{self, ConnContext};

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// An endpoint could not be bound.
    #[error("cannot listen on {url}: {source}")]
    Bind {
        /// The endpoint URL from the config.
        url: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The static file root could not be opened.
    #[error("static.root {path}: {message}")]
    StaticRoot {
        /// The configured root.
        path: String,
        /// What went wrong.
        message: String,
    },
}

/// A configured server, not yet listening.
pub struct Server {
    config: Config,
    handler: Option<Handler>,
}

impl Server {
    /// A server that will do what `config` says.
    pub fn from_config(config: Config) -> Self {
        Server {
            config,
            handler: None,
        }
    }

    /// Answers every request with `handler` instead of the static files of the app
    /// directory (embedding, like Kestrel's `app.Run`).
    pub fn with_handler(mut self, handler: Handler) -> Self {
        self.handler = Some(handler);
        self
    }

    /// The effective configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Binds every endpoint. Must be called inside a tokio runtime.
    pub async fn bind(self) -> Result<BoundServer, ServerError> {
        let handler = match self.handler {
            Some(h) => h,
            None => static_handler(&self.config)?,
        };
        let mut listeners = Vec::with_capacity(self.config.endpoints.len());
        for ep in &self.config.endpoints {
            let listener = listen::bind(&ep.url).map_err(|source| ServerError::Bind {
                url: ep.url.to_string(),
                source,
            })?;
            listeners.push((listener, ep.protocols));
        }
        Ok(BoundServer {
            app: Arc::new(App::new(&self.config, handler)),
            config: self.config,
            listeners,
        })
    }
}

fn static_handler(config: &Config) -> Result<Handler, ServerError> {
    let files = StaticFiles::new(&config.static_files).map_err(|e| ServerError::StaticRoot {
        path: config.static_files.root.display().to_string(),
        message: e.to_string(),
    })?;
    let files = Arc::new(files);
    Ok(crate::pipeline::handler_fn(move |req| {
        let files = Arc::clone(&files);
        // The body is not needed, and dropping it keeps the future `Send`.
        let req = req.map(|_| ());
        async move { files.serve(&req).await }
    }))
}

/// A server whose endpoints are bound; [`BoundServer::serve`] runs it.
pub struct BoundServer {
    config: Config,
    app: Arc<App>,
    listeners: Vec<(Listener, crate::config::Protocols)>,
}

impl BoundServer {
    /// The URL of each endpoint, with real ports (`http://127.0.0.1:PORT`, `unix:/path`).
    pub fn urls(&self) -> Vec<String> {
        self.listeners.iter().map(|(l, _)| l.url()).collect()
    }

    /// The TCP addresses bound, in endpoint order.
    pub fn local_addrs(&self) -> Vec<std::net::SocketAddr> {
        self.listeners
            .iter()
            .filter_map(|(l, _)| l.local_addr())
            .collect()
    }

    /// Serves until `shutdown` completes, then shuts down gracefully: keeps serving for
    /// `shutdown_delay`, stops accepting, lets in-flight requests finish within
    /// `shutdown_timeout`, and closes what is left.
    pub async fn serve(self, shutdown: impl Future<Output = ()>) {
        let stop_accepting = CancellationToken::new();
        let drain = CancellationToken::new();
        let abort = CancellationToken::new();
        let tracker = TaskTracker::new();
        let limiter = ConnectionLimiter::new(self.config.limits.max_concurrent_connections);
        let ctx = Arc::new(ConnContext::new(
            &self.config,
            self.app,
            drain.clone(),
            abort.clone(),
        ));

        let mut unix_paths = Vec::new();
        let mut acceptors = Vec::new();
        for (listener, protocols) in self.listeners {
            #[cfg(unix)]
            if let Listener::Unix(_, path) = &listener {
                unix_paths.push(path.clone());
            }
            let ctx = Arc::clone(&ctx);
            let serve = move |stream: AcceptedStream, info| {
                let ctx = Arc::clone(&ctx);
                async move {
                    match stream {
                        AcceptedStream::Tcp(s) => {
                            proto::serve_connection(s, protocols, info, ctx).await
                        }
                        #[cfg(unix)]
                        AcceptedStream::Unix(s) => {
                            proto::serve_connection(s, protocols, info, ctx).await
                        }
                    }
                }
            };
            acceptors.push(tokio::spawn(listen::accept_loop(
                listener,
                Arc::clone(&limiter),
                tracker.clone(),
                stop_accepting.clone(),
                serve,
            )));
        }

        shutdown.await;
        let server = &self.config.server;
        tracing::info!(
            "shutting down: serving {:?} more, then draining for up to {:?}",
            server.shutdown_delay,
            server.shutdown_timeout
        );
        tokio::time::sleep(server.shutdown_delay).await;
        stop_accepting.cancel();
        for acceptor in acceptors {
            let _ = acceptor.await;
        }
        drain.cancel();
        tracker.close();
        if tokio::time::timeout(server.shutdown_timeout, tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                "shutdown_timeout reached with {} connections open: closing them",
                limiter.open()
            );
            abort.cancel();
            tracker.wait().await;
        }
        for path in unix_paths {
            let _ = std::fs::remove_file(path);
        }
        tracing::info!("shut down");
    }
}

//! Server lifecycle: bind every endpoint, serve, and shut down gracefully.
//!
//! Embedders use it like Kestrel: `Server::from_config(cfg).bind().await?.serve(signal)`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::apps::Apps;
use crate::config::Config;
use crate::listen::{
    self, AcceptedStream, BoundEndpoint, ConnectionLimiter, EndpointError, Listener,
};
use crate::pipeline::{App, BuildError, Handler, Router};
use crate::proto::h3::QuicListener;
use crate::proto::{self, ConnContext};
use crate::tls::EndpointTls;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// An endpoint could not be bound or its TLS set up.
    #[error(transparent)]
    Endpoint(#[from] EndpointError),
    /// The request pipeline (sites, routes, static roots) could not be built.
    #[error(transparent)]
    Pipeline(#[from] BuildError),
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

    /// Binds every endpoint (and loads its certificates). Must be called inside a tokio
    /// runtime.
    pub async fn bind(self) -> Result<BoundServer, ServerError> {
        let apps = Apps::new(&self.config.apps);
        let router = match self.handler {
            Some(h) => Router::single(h),
            None => Router::from_config(&self.config, &apps)?,
        };
        let mut endpoints = Vec::with_capacity(self.config.endpoints.len());
        for ep in &self.config.endpoints {
            endpoints.push(BoundEndpoint::bind(ep, &self.config)?);
        }
        // Redirects go to the first https:// endpoint's real port (the config may say 0),
        // known only now that every endpoint is bound.
        let https_port = endpoints
            .iter()
            .find(|e| matches!(e.listener, Listener::Tcp(_, true)))
            .and_then(|e| e.listener.local_addr())
            .map(|a| a.port());
        let mut quic = Vec::new();
        for (bound, ep) in endpoints.iter_mut().zip(&self.config.endpoints) {
            if let Some(info) = Arc::get_mut(&mut bound.info) {
                info.https_redirect_port = https_port.filter(|_| ep.https_redirect);
            }
            quic.extend(QuicListener::from_bound(bound, &self.config)?);
        }
        Ok(BoundServer {
            app: Arc::new(App::new(&self.config, router)),
            config: self.config,
            apps,
            endpoints,
            quic,
            reload: Arc::new(tokio::sync::Notify::new()),
        })
    }
}

/// A server whose endpoints are bound; [`BoundServer::serve`] runs it.
pub struct BoundServer {
    config: Config,
    app: Arc<App>,
    apps: Apps,
    endpoints: Vec<BoundEndpoint>,
    quic: Vec<QuicListener>,
    reload: Arc<tokio::sync::Notify>,
}

/// After shutdown, how long QUIC endpoints may take to see their connections' close
/// acknowledged (otherwise peers only learn of it from their idle timeout).
const QUIC_CLOSE_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

impl BoundServer {
    /// The URL of each endpoint, with real ports (`http://127.0.0.1:PORT`, `unix:/path`).
    pub fn urls(&self) -> Vec<String> {
        self.endpoints.iter().map(|e| e.listener.url()).collect()
    }

    /// A handle that reloads what can be reloaded without restarting (certificates today)
    /// when notified; `main` notifies it on SIGHUP.
    pub fn reload_handle(&self) -> Arc<tokio::sync::Notify> {
        Arc::clone(&self.reload)
    }

    /// The TCP addresses bound, in endpoint order.
    pub fn local_addrs(&self) -> Vec<std::net::SocketAddr> {
        self.endpoints
            .iter()
            .filter_map(|e| e.listener.local_addr())
            .collect()
    }

    /// The UDP addresses of the HTTP/3 endpoints, in endpoint order.
    pub fn quic_addrs(&self) -> Vec<std::net::SocketAddr> {
        self.quic
            .iter()
            .filter_map(QuicListener::local_addr)
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
        let supervisors = self.apps.start();
        let ctx = Arc::new(ConnContext::new(
            &self.config,
            self.app,
            drain.clone(),
            abort.clone(),
        ));

        #[cfg_attr(not(unix), allow(unused_mut))]
        let mut unix_paths: Vec<std::path::PathBuf> = Vec::new();
        let mut acceptors = Vec::new();
        let mut tls_endpoints = Vec::new();
        for ep in self.endpoints {
            #[cfg(unix)]
            if let Listener::Unix(_, path) = &ep.listener {
                unix_paths.push(path.clone());
            }
            let ctx = Arc::clone(&ctx);
            let protocols = ep.protocols;
            let tls = ep.tls.clone();
            if let Some(tls) = &tls {
                tls_endpoints.push(Arc::clone(tls));
            }
            let proxy = ep.proxy_protocol;
            let serve = move |mut stream: AcceptedStream, mut info| {
                let ctx = Arc::clone(&ctx);
                let tls = tls.clone();
                async move {
                    use listen::proxy_protocol::accept_header;
                    let ok = match &mut stream {
                        AcceptedStream::Tcp(s) => {
                            accept_header(s, proxy, &mut info, &ctx.drain).await
                        }
                        #[cfg(unix)]
                        AcceptedStream::Unix(s) => {
                            accept_header(s, proxy, &mut info, &ctx.drain).await
                        }
                    };
                    if !ok {
                        return;
                    }
                    // Each branch is boxed at its own size: otherwise every connection's
                    // task would reserve room for the largest (TLS) one, idle or not. Boxed
                    // before the await, not in its statement: a temporary that lives across
                    // an await is stored in the task too.
                    let serving: Pin<Box<dyn Future<Output = ()> + Send>> = match stream {
                        AcceptedStream::Tcp(s) => match tls {
                            Some(tls) => Box::pin(serve_tls(s, tls, protocols, info, ctx)),
                            None => Box::pin(proto::serve_connection(s, protocols, info, ctx)),
                        },
                        #[cfg(unix)]
                        AcceptedStream::Unix(s) => {
                            Box::pin(proto::serve_connection(s, protocols, info, ctx))
                        }
                    };
                    serving.await
                }
            };
            acceptors.push(tokio::spawn(listen::accept_loop(
                ep.listener,
                ep.info,
                Arc::clone(&limiter),
                tracker.clone(),
                stop_accepting.clone(),
                serve,
            )));
        }
        let mut quic_endpoints = Vec::with_capacity(self.quic.len());
        for listener in self.quic {
            quic_endpoints.push(listener.endpoint().clone());
            acceptors.push(tokio::spawn(proto::h3::accept_loop(
                listener,
                Arc::clone(&limiter),
                tracker.clone(),
                stop_accepting.clone(),
                Arc::clone(&ctx),
            )));
        }
        let reloader = tokio::spawn(watch_certificates(tls_endpoints, self.reload));

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
            for endpoint in &quic_endpoints {
                endpoint.close(0u32.into(), b"shutdown");
            }
            tracker.wait().await;
        }
        let closed = futures_util::future::join_all(quic_endpoints.iter().map(|e| e.wait_idle()));
        let _ = tokio::time::timeout(QUIC_CLOSE_WAIT, closed).await;
        reloader.abort();
        supervisors.shutdown().await;
        for path in unix_paths {
            let _ = std::fs::remove_file(path);
        }
        tracing::info!("shut down");
    }
}

/// Runs the TLS handshake in the connection's own task, then serves HTTP on top of it.
async fn serve_tls(
    stream: tokio::net::TcpStream,
    tls: Arc<EndpointTls>,
    protocols: crate::config::Protocols,
    mut info: crate::pipeline::ConnInfo,
    ctx: Arc<ConnContext>,
) {
    let timeout = tls.config().handshake_timeout;
    let handshake = crate::tls::accept(stream, Arc::clone(&tls.tcp), timeout);
    let accepted = tokio::select! {
        a = handshake => a,
        _ = ctx.drain.cancelled() => None,
    };
    if let Some((stream, tls_info)) = accepted {
        info.tls = Some(tls_info);
        proto::serve_connection(stream, protocols, info, ctx).await;
    }
}

/// How often certificate files are checked for changes.
const CERT_POLL: std::time::Duration = std::time::Duration::from_secs(2);

/// Reloads changed certificates: on file-change notifications, by polling every
/// `CERT_POLL` as the fallback (Kubernetes secret symlink swaps and some bind mounts do not
/// notify reliably), and at once when `reload` (SIGHUP) fires. A broken new file keeps the
/// old certificate.
async fn watch_certificates(endpoints: Vec<Arc<EndpointTls>>, reload: Arc<tokio::sync::Notify>) {
    if endpoints.is_empty() {
        return;
    }
    let mut tick = tokio::time::interval(CERT_POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let paths: Vec<_> = endpoints.iter().flat_map(|e| e.watched_paths()).collect();
    let (_watcher, mut changed) = crate::tls::watch::watch(&paths);
    loop {
        let force = tokio::select! {
            _ = tick.tick() => false,
            _ = reload.notified() => true,
            Some(()) = changed.recv() => {
                // Let a writer finish the certificate and key pair before reading them.
                tokio::time::sleep(crate::tls::watch::SETTLE).await;
                while changed.try_recv().is_ok() {}
                false
            }
        };
        for ep in &endpoints {
            let ep = Arc::clone(ep);
            let result = tokio::task::spawn_blocking(move || ep.reload_if_changed(force)).await;
            match result {
                Ok(Ok(true)) => tracing::info!("certificates reloaded"),
                Ok(Ok(false)) => {}
                Ok(Err(e)) => {
                    tracing::error!("certificate reload failed, keeping the old certificate: {e}")
                }
                Err(e) => tracing::error!("certificate reload task failed: {e}"),
            }
        }
    }
}

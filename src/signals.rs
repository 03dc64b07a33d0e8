//! Operating-system signals, in one place: which ones mean "shut down gracefully".

/// Completes when the process is asked to stop: SIGTERM or SIGINT on Unix, Ctrl-C or
/// Ctrl-Break on Windows. The handlers are installed when this is called (inside a tokio
/// runtime), not when the future is first polled, so a signal sent right after startup
/// output is never handled by the default action (which would kill the process).
pub fn shutdown() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let handlers = {
        use tokio::signal::unix::{signal, SignalKind};
        (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        )
    };
    #[cfg(windows)]
    let handlers = (
        tokio::signal::windows::ctrl_break(),
        tokio::signal::windows::ctrl_c(),
    );
    async move {
        #[cfg(any(unix, windows))]
        match handlers {
            (Ok(mut a), Ok(mut b)) => {
                tokio::select! {
                    _ = a.recv() => {}
                    _ = b.recv() => {}
                }
            }
            _ => {
                tracing::warn!("cannot install signal handlers; only Ctrl-C will stop the server");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
        #[cfg(not(any(unix, windows)))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// Completes each time the operator asks for a configuration reload (SIGHUP on Unix; never
/// elsewhere). Installing the handler also keeps SIGHUP from killing the process.
pub struct Reload {
    #[cfg(unix)]
    hup: Option<tokio::signal::unix::Signal>,
}

impl Reload {
    /// Starts listening for reload requests. Must be called inside a tokio runtime.
    pub fn new() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Reload {
                hup: signal(SignalKind::hangup()).ok(),
            }
        }
        #[cfg(not(unix))]
        {
            Reload {}
        }
    }

    /// Waits for the next reload request.
    pub async fn recv(&mut self) {
        #[cfg(unix)]
        if let Some(hup) = self.hup.as_mut() {
            if hup.recv().await.is_some() {
                return;
            }
        }
        std::future::pending::<()>().await
    }
}

impl Default for Reload {
    fn default() -> Self {
        Self::new()
    }
}

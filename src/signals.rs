//! Operating-system signals, in one place: which ones mean "shut down gracefully".

/// Completes when the process is asked to stop: SIGTERM or SIGINT on Unix, Ctrl-C or
/// Ctrl-Break on Windows.
pub async fn shutdown() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
            }
            _ => {
                tracing::warn!("cannot install signal handlers; only Ctrl-C will stop the server");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(windows)]
    {
        match tokio::signal::windows::ctrl_break() {
            Ok(mut brk) => {
                tokio::select! {
                    _ = brk.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(any(unix, windows)))]
    {
        let _ = tokio::signal::ctrl_c().await;
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

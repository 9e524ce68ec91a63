//! Waiting for the signal to stop a server process.

/// The signals that stop a server process, listened for from creation on:
/// create it before announcing readiness, so that a signal sent right after
/// the ready line is not lost to the default action.
pub struct Shutdown {
    #[cfg(unix)]
    signals: Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>,
}

impl Shutdown {
    /// Installs the handlers for Ctrl-C and (on unix) SIGTERM now. Must be
    /// called inside a tokio runtime.
    pub fn listen() -> Shutdown {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            match (
                signal(SignalKind::interrupt()),
                signal(SignalKind::terminate()),
            ) {
                (Ok(int), Ok(term)) => Shutdown {
                    signals: Some((int, term)),
                },
                (Err(e), _) | (_, Err(e)) => {
                    tracing::warn!(
                        "cannot listen for SIGINT/SIGTERM ({e}); falling back to Ctrl-C"
                    );
                    Shutdown { signals: None }
                }
            }
        }
        #[cfg(not(unix))]
        Shutdown {}
    }

    /// Resolves on Ctrl-C or (on unix) SIGTERM.
    pub async fn signalled(&mut self) {
        #[cfg(unix)]
        if let Some((int, term)) = &mut self.signals {
            tokio::select! {
                _ = int.recv() => {},
                _ = term.recv() => {},
            }
            return;
        }
        let _ = tokio::signal::ctrl_c().await;
    }
}

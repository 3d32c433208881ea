//! SIGINT and SIGTERM: the first one stops the current hook and lets the chain's `failure`/`always` hooks run.

use std::sync::{Arc, OnceLock};

use tokio::signal::unix::{signal, SignalKind};
use tokio_util::sync::CancellationToken;

/// Fires once, when the first SIGINT or SIGTERM arrives, and remembers which.
#[derive(Debug, Clone, Default)]
pub struct Interrupt {
    token: CancellationToken,
    signal: Arc<OnceLock<&'static str>>,
}

impl Interrupt {
    /// Listens for SIGINT and SIGTERM from now on. Later signals are ignored: the run is already winding down
    /// (services coming back); `kill -9` and `hookrun recover` are the way out of a hung run.
    pub fn listen() -> std::io::Result<Self> {
        let interrupt = Self::default();
        for (kind, name) in [
            (SignalKind::interrupt(), "SIGINT"),
            (SignalKind::terminate(), "SIGTERM"),
        ] {
            let mut stream = signal(kind)?;
            let me = interrupt.clone();
            tokio::spawn(async move {
                while stream.recv().await.is_some() {
                    me.fire(name);
                }
            });
        }
        Ok(interrupt)
    }

    /// Fires as if `signal` had arrived.
    pub fn fire(&self, signal: &'static str) {
        let _ = self.signal.set(signal);
        self.token.cancel();
    }

    /// The signal, once one has arrived.
    pub fn signal(&self) -> Option<&'static str> {
        self.signal.get().copied()
    }

    /// Completes when a signal has arrived.
    pub async fn fired(&self) {
        self.token.cancelled().await
    }
}

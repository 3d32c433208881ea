//! SIGINT, SIGTERM and SIGHUP: the first one stops the current hook and lets the chain's `failure`/`always` hooks
//! run (services come back), then the run exits 1. SIGHUP is what a dropped SSH session or a closed terminal sends,
//! so it is treated like SIGTERM — unless it was ignored when hookrun started (`nohup`): then it stays ignored and
//! the run goes on, as the one who started it asked.

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
    /// Listens for SIGINT, SIGTERM and (unless ignored at start) SIGHUP from now on. Later signals are ignored:
    /// the run is already winding down (services coming back); `kill -9` and `hookrun recover` are the way out of a
    /// hung run.
    pub fn listen() -> std::io::Result<Self> {
        let interrupt = Self::default();
        let mut kinds = vec![
            (SignalKind::interrupt(), "SIGINT"),
            (SignalKind::terminate(), "SIGTERM"),
        ];
        if !hangup_ignored_at_start() {
            kinds.push((SignalKind::hangup(), "SIGHUP"));
        }
        for (kind, name) in kinds {
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

/// Whether SIGHUP was ignored (`SIG_IGN`) when hookrun started, as `nohup` leaves it. Asked once, before any
/// handler of ours is installed, and remembered: the answer is what hookrun inherited.
fn hangup_ignored_at_start() -> bool {
    static INHERITED: OnceLock<bool> = OnceLock::new();
    *INHERITED.get_or_init(|| {
        // SAFETY: a query (the new action is null) into a zeroed sigaction that outlives the call.
        let mut current: libc::sigaction = unsafe { std::mem::zeroed() };
        let queried = unsafe { libc::sigaction(libc::SIGHUP, std::ptr::null(), &mut current) };
        queried == 0 && current.sa_sigaction == libc::SIG_IGN
    })
}

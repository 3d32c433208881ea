//! Progress that long-running hooks report while they work; the runner turns it into events for reporters.

use std::sync::Arc;

/// How far a hook has come with its main piece of work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    /// The hook reporting.
    pub hook: String,
    /// Units done so far.
    pub done: u64,
    /// Units expected in all (0 when unknown).
    pub total: u64,
    /// What the units are, e.g. "bytes".
    pub unit: &'static str,
}

/// Where progress goes. Cheap to clone and callable from blocking threads.
#[derive(Clone)]
pub struct ProgressSink(Arc<dyn Fn(Progress) + Send + Sync>);

impl ProgressSink {
    /// A sink that hands every report to `f`.
    pub fn new(f: impl Fn(Progress) + Send + Sync + 'static) -> Self {
        Self(Arc::new(f))
    }

    /// A sink that drops every report.
    pub fn discard() -> Self {
        Self::new(|_| {})
    }

    /// Reports one step.
    pub fn report(&self, progress: Progress) {
        (self.0)(progress)
    }
}

impl std::fmt::Debug for ProgressSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ProgressSink")
    }
}

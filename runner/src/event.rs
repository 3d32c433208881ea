//! What the executor tells the world: events that reporters render and the journal writes down.

use std::collections::BTreeMap;
use std::time::Duration;

use hookrun_catalog::HookStatus;
use hookrun_hooks::Progress;

/// One thing that happened during a run.
#[derive(Debug, Clone)]
pub enum Event {
    /// A hook's preflight check refused the run before anything was touched.
    PreflightFailed { hook: String, error: String },
    /// A hook did its work that comes before the chain, with the services still running (the snapshot's
    /// pre-copy).
    Prepared {
        name: String,
        kind: String,
        /// What it did, in a sentence.
        did: String,
        elapsed: Duration,
    },
    /// A hook is about to run.
    HookStarted { seq: usize, name: String, kind: String },
    /// A hook's `when` did not match.
    HookSkipped {
        seq: usize,
        name: String,
        kind: String,
        reason: String,
    },
    /// A hook ended.
    HookFinished {
        seq: usize,
        name: String,
        kind: String,
        outcome: Outcome,
        elapsed: Duration,
        /// The named outputs the hook set.
        outputs: BTreeMap<String, String>,
    },
    /// A hook made progress.
    Progress(Progress),
    /// A signal asked the run to stop; the current hook is being stopped and the `always` hooks will run.
    Interrupted { signal: String },
    /// An upgrade entered a phase (`pre-upgrade`, `command`, `gate`, `rollback`), saying what it does now.
    UpgradePhase { phase: String, doing: String },
    /// A line the upgrade command (or the rollback command) wrote, on stdout or stderr.
    CommandOutput { line: String },
    /// A restore fetched the backup's archive from a remote copy (the local one was missing, pruned or damaged).
    Fetched(crate::remotes::FetchedArchive),
}

/// How a hook that ran ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// It succeeded.
    Completed,
    /// It failed and the run fails with it.
    Failed { error: String },
    /// It failed, but `on_error = "continue"`.
    Continued { error: String },
}

impl Outcome {
    /// The catalog's status for this outcome.
    pub fn status(&self) -> HookStatus {
        match self {
            Outcome::Completed => HookStatus::Completed,
            Outcome::Failed { .. } => HookStatus::Failed,
            Outcome::Continued { .. } => HookStatus::Continued,
        }
    }

    /// The error, if it failed.
    pub fn error(&self) -> Option<&str> {
        match self {
            Outcome::Completed => None,
            Outcome::Failed { error } | Outcome::Continued { error } => Some(error),
        }
    }
}

/// Something that receives events: a reporter, the journal.
pub trait EventSink: Send + Sync {
    /// Handles one event. Called in order, from the executor's task.
    fn emit(&self, event: &Event);
}

/// Hands each event to several sinks in turn.
pub struct Fanout<'a>(pub Vec<&'a dyn EventSink>);

impl EventSink for Fanout<'_> {
    fn emit(&self, event: &Event) {
        for sink in &self.0 {
            sink.emit(event);
        }
    }
}

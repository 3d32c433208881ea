//! The run journal: writes each phase and hook result to the catalog as it happens, so that a run that dies
//! half way is visible to the next invocation.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use chrono::Utc;
use hookrun_catalog::{timestamp, Catalog, HookResultRow, HookStatus};

use crate::event::{Event, EventSink};

/// Journals one run's events into the catalog.
pub struct Journal {
    catalog: Arc<Catalog>,
    run_id: i64,
    failed_write: AtomicBool,
}

impl Journal {
    /// A journal for run `run_id`.
    pub fn new(catalog: Arc<Catalog>, run_id: i64) -> Self {
        Self {
            catalog,
            run_id,
            failed_write: AtomicBool::new(false),
        }
    }

    fn write(&self, result: Result<(), hookrun_catalog::CatalogError>) {
        if let Err(e) = result {
            // The run goes on (services must come back); the first failed write is logged.
            if !self.failed_write.swap(true, Ordering::Relaxed) {
                tracing::error!("journal: {e}");
            }
        }
    }

    fn result(&self, seq: usize, name: &str, kind: &str, status: HookStatus, error: Option<&str>, ms: Option<u128>) {
        self.result_with(seq, name, kind, status, error, ms, &BTreeMap::new())
    }

    #[allow(clippy::too_many_arguments)]
    fn result_with(
        &self,
        seq: usize,
        name: &str,
        kind: &str,
        status: HookStatus,
        error: Option<&str>,
        ms: Option<u128>,
        outputs: &BTreeMap<String, String>,
    ) {
        let row = HookResultRow {
            seq: seq as i64,
            name: name.to_string(),
            hook_type: kind.to_string(),
            status,
            error: error.map(str::to_string),
            started_at: ms.map(|ms| timestamp(Utc::now() - chrono::Duration::milliseconds(ms as i64))),
            duration_ms: ms.map(|ms| ms as i64),
            outputs: serde_json::to_value(outputs).unwrap_or_default(),
        };
        self.write(self.catalog.record_hook_result(self.run_id, &row));
    }
}

impl EventSink for Journal {
    fn emit(&self, event: &Event) {
        match event {
            Event::HookStarted { name, .. } => self.write(self.catalog.set_phase(self.run_id, &format!("hook {name}"))),
            Event::HookSkipped { seq, name, kind, .. } => {
                self.result(*seq, name, kind, HookStatus::Skipped, None, None)
            }
            Event::HookFinished {
                seq,
                name,
                kind,
                outcome,
                elapsed,
                outputs,
            } => self.result_with(
                *seq,
                name,
                kind,
                outcome.status(),
                outcome.error(),
                Some(elapsed.as_millis()),
                outputs,
            ),
            Event::PreflightFailed { hook, .. } => {
                self.write(self.catalog.set_phase(self.run_id, &format!("preflight {hook} failed")))
            }
            Event::Interrupted { signal } => {
                self.write(self.catalog.set_phase(self.run_id, &format!("interrupted by {signal}")))
            }
            // An upgrade journals its phases in its own record (see `upgrade`).
            Event::Progress(_)
            | Event::Prepared { .. }
            | Event::UpgradePhase { .. }
            | Event::CommandOutput { .. }
            | Event::Fetched(_) => {}
        }
    }
}

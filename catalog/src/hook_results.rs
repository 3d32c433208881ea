//! Per-hook results of a run in the catalog.

use rusqlite::params;
use serde::Serialize;

use crate::names::names;

use super::{Catalog, CatalogError};

names! {
    /// How one hook of a run ended.
    pub enum HookStatus ("hook status") {
        /// It ran and succeeded.
        Completed = "completed",
        /// It failed (or timed out) and that failed the run.
        Failed = "failed",
        /// It failed, but `on_error = "continue"` kept the run going.
        Continued = "continued",
        /// Its `when` did not match, so it did not run.
        Skipped = "skipped",
    }
}

/// One hook's result as the catalog holds it.
#[derive(Debug, Clone, Serialize)]
pub struct HookResultRow {
    pub seq: i64,
    pub name: String,
    pub hook_type: String,
    pub status: HookStatus,
    pub error: Option<String>,
    pub started_at: Option<String>,
    pub duration_ms: Option<i64>,
    pub outputs: serde_json::Value,
}

impl Catalog {
    /// Stores one hook's result.
    pub fn record_hook_result(&self, run_id: i64, row: &HookResultRow) -> Result<(), CatalogError> {
        self.conn()
            .execute(
                "INSERT OR REPLACE INTO hook_results
                 (run_id, seq, name, hook_type, status, error, started_at, duration_ms, outputs)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    run_id,
                    row.seq,
                    row.name,
                    row.hook_type,
                    row.status,
                    row.error,
                    row.started_at,
                    row.duration_ms,
                    row.outputs.to_string(),
                ],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// A run's hook results in chain order.
    pub fn hook_results(&self, run_id: i64) -> Result<Vec<HookResultRow>, CatalogError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(
                "SELECT seq, name, hook_type, status, error, started_at, duration_ms, outputs
                 FROM hook_results WHERE run_id = ?1 ORDER BY seq",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![run_id], |row| {
                let outputs: String = row.get(7)?;
                Ok(HookResultRow {
                    seq: row.get(0)?,
                    name: row.get(1)?,
                    hook_type: row.get(2)?,
                    status: row.get(3)?,
                    error: row.get(4)?,
                    started_at: row.get(5)?,
                    duration_ms: row.get(6)?,
                    outputs: serde_json::from_str(&outputs).unwrap_or(serde_json::Value::Null),
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }
}

//! Runs in the catalog: the journal written before anything is touched and updated at each phase.

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension, Row};
use serde::Serialize;

use crate::names::names;

use super::{timestamp, Catalog, CatalogError};
use crate::RunKind;

names! {
    /// A run's state in the journal.
    pub enum RunStatus ("run status") {
        /// Started and not finished (or died without finishing).
        Running = "running",
        /// Every hook that ran succeeded.
        Completed = "completed",
        /// A hook failed.
        Failed = "failed",
        /// The process died mid-run and `hookrun recover` cleaned up after it.
        Interrupted = "interrupted",
    }
}

/// What is known of a run when it starts.
#[derive(Debug, Clone)]
pub struct NewRun {
    pub kind: RunKind,
    pub version: String,
    pub project: Option<String>,
    pub started_at: DateTime<Utc>,
    pub pid: u32,
    pub boot_id: Option<String>,
    pub storage_dir: PathBuf,
    pub staging_dir: PathBuf,
}

/// A run as the catalog holds it.
#[derive(Debug, Clone, Serialize)]
pub struct RunRow {
    pub id: i64,
    pub kind: RunKind,
    pub version: String,
    pub project: Option<String>,
    pub status: RunStatus,
    pub phase: String,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub duration_ms: Option<i64>,
    pub error: Option<String>,
    pub pid: i64,
    pub boot_id: Option<String>,
    pub storage_dir: String,
    pub staging_dir: String,
}

impl RunRow {
    const COLUMNS: &'static str = "id, kind, version, project, status, phase, started_at, finished_at, duration_ms, \
                                   error, pid, boot_id, storage_dir, staging_dir";

    fn from_row(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            id: row.get(0)?,
            kind: row.get(1)?,
            version: row.get(2)?,
            project: row.get(3)?,
            status: row.get(4)?,
            phase: row.get(5)?,
            started_at: row.get(6)?,
            finished_at: row.get(7)?,
            duration_ms: row.get(8)?,
            error: row.get(9)?,
            pid: row.get(10)?,
            boot_id: row.get(11)?,
            storage_dir: row.get(12)?,
            staging_dir: row.get(13)?,
        })
    }
}

impl Catalog {
    /// Writes the journal entry of a new run (status `running`, phase `starting`) and returns its id.
    pub fn begin_run(&self, run: &NewRun) -> Result<i64, CatalogError> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO runs (kind, version, project, status, phase, started_at, pid, boot_id, storage_dir, staging_dir)
             VALUES (?1, ?2, ?3, 'running', 'starting', ?4, ?5, ?6, ?7, ?8)",
            params![
                run.kind,
                run.version,
                run.project,
                timestamp(run.started_at),
                run.pid,
                run.boot_id,
                run.storage_dir.to_string_lossy(),
                run.staging_dir.to_string_lossy(),
            ],
        )
        .map_err(|e| self.err(e))?;
        Ok(conn.last_insert_rowid())
    }

    /// Records the phase a run has reached (e.g. `hook backup`).
    pub fn set_phase(&self, run_id: i64, phase: &str) -> Result<(), CatalogError> {
        self.conn()
            .execute("UPDATE runs SET phase = ?2 WHERE id = ?1", params![run_id, phase])
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Closes a run. A run that did not complete takes its backup's usability with it, in the same transaction.
    pub fn finish_run(
        &self,
        run_id: i64,
        status: RunStatus,
        error: Option<&str>,
        finished_at: DateTime<Utc>,
        duration_ms: u64,
    ) -> Result<(), CatalogError> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(|e| self.err(e))?;
        tx.execute(
            "UPDATE runs SET status = ?2, phase = 'finished', error = ?3, finished_at = ?4, duration_ms = ?5
             WHERE id = ?1",
            params![
                run_id,
                status.as_str(),
                error,
                timestamp(finished_at),
                duration_ms as i64
            ],
        )
        .map_err(|e| self.err(e))?;
        let why = match status {
            RunStatus::Completed => "never recorded as usable: no `record` hook ran after the backup".to_string(),
            _ => format!("run {}: {}", status.as_str(), error.unwrap_or("no reason recorded")),
        };
        if status != RunStatus::Completed {
            tx.execute(
                "UPDATE backups SET status = 'failed', error = coalesce(error, ?2)
                 WHERE run_id = ?1 AND status = 'completed'",
                params![run_id, why],
            )
            .map_err(|e| self.err(e))?;
        }
        // An archive registered but never recorded says why now that its run is over.
        tx.execute(
            "UPDATE backups SET error = ?2 WHERE run_id = ?1 AND error = ?3",
            params![run_id, why, super::backups::NOT_YET_RECORDED],
        )
        .map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))
    }

    /// Removes a run that a preflight check refused before anything was touched: nothing happened, so nothing is
    /// recorded (its journal entries go with it).
    pub fn discard_run(&self, run_id: i64) -> Result<(), CatalogError> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(|e| self.err(e))?;
        for table in ["hook_results", "services"] {
            tx.execute(&format!("DELETE FROM {table} WHERE run_id = ?1"), params![run_id])
                .map_err(|e| self.err(e))?;
        }
        tx.execute("UPDATE restores SET run_id = NULL WHERE run_id = ?1", params![run_id])
            .map_err(|e| self.err(e))?;
        tx.execute("DELETE FROM runs WHERE id = ?1", params![run_id])
            .map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))
    }

    /// One run by id.
    pub fn run(&self, run_id: i64) -> Result<Option<RunRow>, CatalogError> {
        self.conn()
            .query_row(
                &format!("SELECT {} FROM runs WHERE id = ?1", RunRow::COLUMNS),
                params![run_id],
                RunRow::from_row,
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// The `limit` newest runs of every kind (backups, restores), newest first: a history.
    pub fn recent_runs(&self, limit: usize) -> Result<Vec<RunRow>, CatalogError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(&format!(
                "SELECT {} FROM runs ORDER BY id DESC LIMIT ?1",
                RunRow::COLUMNS
            ))
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![limit as i64], RunRow::from_row)
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    /// Runs still marked `running`, oldest first: live ones, or ones that died without finishing.
    pub fn unfinished_runs(&self) -> Result<Vec<RunRow>, CatalogError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(&format!(
                "SELECT {} FROM runs WHERE status = 'running' ORDER BY id",
                RunRow::COLUMNS
            ))
            .map_err(|e| self.err(e))?;
        let rows = stmt.query_map([], RunRow::from_row).map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }
}

//! Backups in the catalog: one row per attempt, `completed` only when the archive is whole and its run succeeded.

use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension, Row};
use serde::Serialize;

use crate::names::names;

use super::{timestamp, Catalog, CatalogError};
use crate::{ArchiveInfo, ArchivedSource, RunKind};

names! {
    /// Whether a backup may be restored.
    pub enum BackupStatus ("backup status") {
        /// The archive is complete and its run succeeded: usable.
        Completed = "completed",
        /// Something failed: never offered for restore.
        Failed = "failed",
    }
}

/// A backup attempt to record.
#[derive(Debug, Clone)]
pub struct NewBackup<'a> {
    pub run_id: i64,
    pub kind: RunKind,
    pub version: &'a str,
    pub status: BackupStatus,
    pub error: Option<&'a str>,
    /// The archive, when one was written.
    pub archive: Option<&'a ArchiveInfo>,
    /// When the attempt ended (the archive's time when there is one).
    pub created_at: DateTime<Utc>,
}

/// A backup as the catalog holds it.
#[derive(Debug, Clone, Serialize)]
pub struct BackupRow {
    // Fields in alphabetical order (by their names in JSON): `hookrun list --json` writes them as they come (tested).
    pub bytes: Option<i64>,
    pub compression: Option<String>,
    /// Its copies on remotes.
    pub copies: Vec<crate::CopyRow>,
    pub created_at: String,
    /// Marked for deletion: its archive may already be gone.
    pub deleting: bool,
    pub duration_ms: Option<i64>,
    pub entry_count: Option<i64>,
    pub error: Option<String>,
    pub file_count: Option<i64>,
    pub id: i64,
    /// When its local archive was pruned while a remote copy keeps the backup (`None`: it is in local storage).
    pub local_removed_at: Option<String>,
    pub path: Option<String>,
    pub run_id: Option<i64>,
    pub sha256: Option<String>,
    pub size: Option<i64>,
    pub status: BackupStatus,
    #[serde(rename = "type")]
    pub kind: RunKind,
    /// When it was last verified, and whether that passed (`None`: never verified).
    pub verified_at: Option<String>,
    pub verify_error: Option<String>,
    pub verify_ok: Option<bool>,
    pub version: String,
}

impl BackupRow {
    const COLUMNS: &'static str = "id, run_id, type, version, status, error, path, size, sha256, file_count, \
                                   entry_count, bytes, compression, created_at, duration_ms, verified_at, verify_ok, \
                                   verify_error, deleting, local_removed_at";

    fn from_row(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            id: row.get(0)?,
            run_id: row.get(1)?,
            kind: row.get(2)?,
            version: row.get(3)?,
            status: row.get(4)?,
            error: row.get(5)?,
            path: row.get(6)?,
            size: row.get(7)?,
            sha256: row.get(8)?,
            file_count: row.get(9)?,
            entry_count: row.get(10)?,
            bytes: row.get(11)?,
            compression: row.get(12)?,
            created_at: row.get(13)?,
            duration_ms: row.get(14)?,
            verified_at: row.get(15)?,
            verify_ok: row.get(16)?,
            verify_error: row.get(17)?,
            deleting: row.get(18)?,
            local_removed_at: row.get(19)?,
            copies: Vec::new(),
        })
    }
}

/// Which backups `list_backups` returns.
#[derive(Debug, Clone, Default)]
pub struct BackupFilter {
    /// Only this type ("manual" or "pre-upgrade").
    pub kind: Option<String>,
    /// Only this status.
    pub status: Option<BackupStatus>,
}

/// The error of a backup whose archive is registered but whose run has not said yet whether it is usable.
pub const NOT_YET_RECORDED: &str = "not recorded yet: its run has not finished";

impl Catalog {
    /// Registers `archive` for run `run_id` just before it appears under its final name, as `failed` with
    /// [`NOT_YET_RECORDED`], so that storage never holds an archive the catalog does not know, whatever kills the
    /// run. `record` (or the end of the run) then says what it is. Returns the backup's id.
    pub fn register_archive(
        &self,
        run_id: i64,
        kind: RunKind,
        version: &str,
        archive: &ArchiveInfo,
    ) -> Result<i64, CatalogError> {
        self.insert_backup(&NewBackup {
            run_id,
            kind,
            version,
            status: BackupStatus::Failed,
            error: Some(NOT_YET_RECORDED),
            archive: Some(archive),
            created_at: archive.created_at,
        })
    }

    /// Says what a registered backup is: `completed` (usable) or `failed` with why.
    pub fn record_backup(&self, id: i64, status: BackupStatus, error: Option<&str>) -> Result<(), CatalogError> {
        self.conn()
            .execute(
                "UPDATE backups SET status = ?2, error = ?3 WHERE id = ?1",
                params![id, status.as_str(), error],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// A backup whose archive never appeared (its run died between registering and placing it): it has none.
    pub fn forget_archive(&self, id: i64, why: &str) -> Result<(), CatalogError> {
        self.conn()
            .execute(
                "UPDATE backups SET path = NULL, status = 'failed', error = ?2 WHERE id = ?1",
                params![id, why],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Every backup of run `run_id`, oldest first.
    pub fn backups_of_run(&self, run_id: i64) -> Result<Vec<BackupRow>, CatalogError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(&format!(
                "SELECT {} FROM backups WHERE run_id = ?1 ORDER BY id",
                BackupRow::COLUMNS
            ))
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![run_id], BackupRow::from_row)
            .map_err(|e| self.err(e))?;
        let rows = rows.collect::<Result<_, _>>().map_err(|e| self.err(e))?;
        drop(stmt);
        drop(conn);
        self.with_copies(rows)
    }

    /// Records a backup attempt and returns its id.
    pub fn insert_backup(&self, backup: &NewBackup<'_>) -> Result<i64, CatalogError> {
        let archive = backup.archive;
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(|e| self.err(e))?;
        tx.execute(
            "INSERT INTO backups (run_id, type, version, status, error, path, size, sha256, file_count, entry_count,
                                  bytes, compression, created_at, duration_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
            params![
                backup.run_id,
                backup.kind,
                backup.version,
                backup.status.as_str(),
                backup.error,
                archive.map(|a| a.path.to_string_lossy().into_owned()),
                archive.map(|a| a.size as i64),
                archive.map(|a| a.sha256.clone()),
                archive.map(|a| a.file_count as i64),
                archive.map(|a| a.entry_count as i64),
                archive.map(|a| a.bytes as i64),
                archive.map(|a| a.compression.to_string()),
                timestamp(backup.created_at),
                archive.map(|a| a.duration_ms as i64),
            ],
        )
        .map_err(|e| self.err(e))?;
        let id = tx.last_insert_rowid();
        for source in archive.map(|a| a.sources.as_slice()).unwrap_or_default() {
            tx.execute(
                "INSERT INTO backup_sources (backup_id, kind, name, archive_path, host_path) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![id, source.kind, source.name, source.archive_path, source.host_path],
            )
            .map_err(|e| self.err(e))?;
        }
        tx.commit().map_err(|e| self.err(e))?;
        Ok(id)
    }

    /// The trees in a backup's archive and where each came from.
    pub fn backup_sources(&self, backup_id: i64) -> Result<Vec<ArchivedSource>, CatalogError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(
                "SELECT kind, name, archive_path, host_path FROM backup_sources WHERE backup_id = ?1 ORDER BY rowid",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![backup_id], |r| {
                Ok(ArchivedSource {
                    kind: r.get(0)?,
                    name: r.get(1)?,
                    archive_path: r.get(2)?,
                    host_path: r.get(3)?,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    /// One backup by id.
    pub fn backup(&self, id: i64) -> Result<Option<BackupRow>, CatalogError> {
        let row = self
            .conn()
            .query_row(
                &format!("SELECT {} FROM backups WHERE id = ?1", BackupRow::COLUMNS),
                params![id],
                BackupRow::from_row,
            )
            .optional()
            .map_err(|e| self.err(e))?;
        Ok(self.with_copies(row.into_iter().collect())?.pop())
    }

    /// The backup a run recorded, if any.
    pub fn backup_of_run(&self, run_id: i64) -> Result<Option<BackupRow>, CatalogError> {
        let row = self
            .conn()
            .query_row(
                &format!(
                    "SELECT {} FROM backups WHERE run_id = ?1 ORDER BY id DESC LIMIT 1",
                    BackupRow::COLUMNS
                ),
                params![run_id],
                BackupRow::from_row,
            )
            .optional()
            .map_err(|e| self.err(e))?;
        Ok(self.with_copies(row.into_iter().collect())?.pop())
    }

    /// Records a verification of backup `id`.
    pub fn record_verification(
        &self,
        id: i64,
        ok: bool,
        error: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<(), CatalogError> {
        self.conn()
            .execute(
                "UPDATE backups SET verified_at = ?2, verify_ok = ?3, verify_error = ?4 WHERE id = ?1",
                params![id, timestamp(at), ok, error],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Step one of deleting a backup: mark it, so that a crash after its archive is gone leaves a marked row, never
    /// a row that claims an archive.
    pub fn mark_deleting(&self, id: i64) -> Result<(), CatalogError> {
        self.conn()
            .execute("UPDATE backups SET deleting = 1 WHERE id = ?1", params![id])
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Step two: remove the row (and its sources) once the archive is gone.
    pub fn remove_backup(&self, id: i64) -> Result<(), CatalogError> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(|e| self.err(e))?;
        for table in ["backup_sources", "backup_containers", "backup_compose_files", "copies"] {
            tx.execute(&format!("DELETE FROM {table} WHERE backup_id = ?1"), params![id])
                .map_err(|e| self.err(e))?;
        }
        tx.execute("DELETE FROM backups WHERE id = ?1", params![id])
            .map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))
    }

    /// Points backup `id` at its archive's new place (moved to new storage, or a registered archive whose first
    /// final name was taken meanwhile).
    pub fn move_backup(&self, id: i64, path: &std::path::Path) -> Result<(), CatalogError> {
        self.conn()
            .execute(
                "UPDATE backups SET path = ?2 WHERE id = ?1",
                params![id, path.to_string_lossy()],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Journals the start of a restore and returns its id.
    pub fn begin_restore(&self, backup_id: i64, only: &[String], at: DateTime<Utc>) -> Result<i64, CatalogError> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO restores (backup_id, started_at, status, only_paths) VALUES (?1, ?2, 'running', ?3)",
            params![
                backup_id,
                timestamp(at),
                serde_json::to_string(only).unwrap_or_default()
            ],
        )
        .map_err(|e| self.err(e))?;
        Ok(conn.last_insert_rowid())
    }

    /// The restore still marked running (a restore run that died), as (restore id, backup id, only paths).
    pub fn unfinished_restore(&self) -> Result<Option<(i64, i64, Vec<String>)>, CatalogError> {
        self.conn()
            .query_row(
                "SELECT id, backup_id, only_paths FROM restores WHERE status = 'running' ORDER BY id DESC LIMIT 1",
                [],
                |r| {
                    let only: String = r.get(2)?;
                    Ok((r.get(0)?, r.get(1)?, serde_json::from_str(&only).unwrap_or_default()))
                },
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Closes a restore.
    pub fn finish_restore(
        &self,
        id: i64,
        run_id: Option<i64>,
        error: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<(), CatalogError> {
        let status = if error.is_none() { "completed" } else { "failed" };
        self.conn()
            .execute(
                "UPDATE restores SET status = ?2, error = ?3, finished_at = ?4, run_id = ?5 WHERE id = ?1",
                params![id, status, error, timestamp(at), run_id],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Closes a restore whose data was put in place although its run did not finish (it died after its swap):
    /// `completed`, with `note` saying so.
    pub fn complete_interrupted_restore(
        &self,
        id: i64,
        run_id: i64,
        note: &str,
        at: DateTime<Utc>,
    ) -> Result<(), CatalogError> {
        self.conn()
            .execute(
                "UPDATE restores SET status = 'completed', error = NULL, note = ?2, finished_at = ?3, run_id = ?4
                 WHERE id = ?1",
                params![id, note, timestamp(at), run_id],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// The restores that finished (completed or failed) with a run, as (backup id, run id, only paths), oldest
    /// first: whose copies beside their targets `hookrun recover` may remove.
    pub fn finished_restores(&self) -> Result<Vec<(i64, i64, Vec<String>)>, CatalogError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(
                "SELECT backup_id, run_id, only_paths FROM restores
                 WHERE status != 'running' AND run_id IS NOT NULL ORDER BY id",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| {
                let only: String = r.get(2)?;
                Ok((r.get(0)?, r.get(1)?, serde_json::from_str(&only).unwrap_or_default()))
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    /// Backups matching `filter`, oldest first.
    pub fn list_backups(&self, filter: &BackupFilter) -> Result<Vec<BackupRow>, CatalogError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(&format!(
                "SELECT {} FROM backups
                 WHERE (?1 IS NULL OR type = ?1) AND (?2 IS NULL OR status = ?2)
                 ORDER BY created_at, id",
                BackupRow::COLUMNS
            ))
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(
                params![filter.kind, filter.status.map(BackupStatus::as_str)],
                BackupRow::from_row,
            )
            .map_err(|e| self.err(e))?;
        let rows = rows.collect::<Result<_, _>>().map_err(|e| self.err(e))?;
        drop(stmt);
        drop(conn);
        self.with_copies(rows)
    }

    /// Fills in each row's copies: one query for one row, one over every copy for more.
    fn with_copies(&self, mut rows: Vec<BackupRow>) -> Result<Vec<BackupRow>, CatalogError> {
        match rows.as_mut_slice() {
            [] => {}
            [row] => row.copies = self.copies(row.id)?,
            _ => {
                let mut by_backup: std::collections::HashMap<i64, Vec<crate::CopyRow>> = Default::default();
                for copy in self.all_copies()? {
                    by_backup.entry(copy.backup_id).or_default().push(copy);
                }
                for row in &mut rows {
                    row.copies = by_backup.remove(&row.id).unwrap_or_default();
                }
            }
        }
        Ok(rows)
    }
}

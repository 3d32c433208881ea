//! Where each backup is besides local storage: one row per backup and remote, written only once the object is
//! complete and checked, with its last verification.

use chrono::{DateTime, Utc};
use rusqlite::{params, Row};
use serde::Serialize;

use super::{timestamp, Catalog, CatalogError};

/// A copy of a backup's archive on a remote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CopyRow {
    // Fields in alphabetical order: `hookrun list --json` writes them as they come (tested).
    pub backup_id: i64,
    /// How long the upload took (what `plan` and `estimate` expect the next one to take, size for size).
    pub duration_ms: i64,
    pub encrypted: bool,
    /// The object's key in the remote's bucket.
    pub key: String,
    /// The remote's name in `hooks.toml`.
    pub location: String,
    /// The object's SHA-256 and size (of the ciphertext when encrypted).
    pub sha256: String,
    pub size: i64,
    pub uploaded_at: String,
    /// When it was last read back, and whether that passed (`None`: never since the upload).
    pub verified_at: Option<String>,
    pub verify_error: Option<String>,
    pub verify_ok: Option<bool>,
}

/// A copy to record.
#[derive(Debug, Clone)]
pub struct NewCopy<'a> {
    pub backup_id: i64,
    pub location: &'a str,
    pub key: &'a str,
    pub size: u64,
    pub sha256: &'a str,
    pub encrypted: bool,
    pub uploaded_at: DateTime<Utc>,
    pub duration_ms: u64,
}

impl CopyRow {
    const COLUMNS: &'static str =
        "backup_id, location, key, size, sha256, encrypted, uploaded_at, duration_ms, verified_at, verify_ok, \
         verify_error";

    fn from_row(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            backup_id: row.get(0)?,
            location: row.get(1)?,
            key: row.get(2)?,
            size: row.get(3)?,
            sha256: row.get(4)?,
            encrypted: row.get(5)?,
            uploaded_at: row.get(6)?,
            duration_ms: row.get(7)?,
            verified_at: row.get(8)?,
            verify_ok: row.get(9)?,
            verify_error: row.get(10)?,
        })
    }
}

impl Catalog {
    /// Records a complete, checked copy (replacing an earlier record of the same backup and remote).
    pub fn record_copy(&self, copy: &NewCopy<'_>) -> Result<(), CatalogError> {
        self.conn()
            .execute(
                "INSERT OR REPLACE INTO copies
                 (backup_id, location, key, size, sha256, encrypted, uploaded_at, duration_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    copy.backup_id,
                    copy.location,
                    copy.key,
                    copy.size as i64,
                    copy.sha256,
                    copy.encrypted,
                    timestamp(copy.uploaded_at),
                    copy.duration_ms as i64
                ],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// The copies of backup `backup_id`, by remote name.
    pub fn copies(&self, backup_id: i64) -> Result<Vec<CopyRow>, CatalogError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(&format!(
                "SELECT {} FROM copies WHERE backup_id = ?1 ORDER BY location",
                CopyRow::COLUMNS
            ))
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![backup_id], CopyRow::from_row)
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    /// Every copy, by backup then remote name.
    pub fn all_copies(&self) -> Result<Vec<CopyRow>, CatalogError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(&format!(
                "SELECT {} FROM copies ORDER BY backup_id, location",
                CopyRow::COLUMNS
            ))
            .map_err(|e| self.err(e))?;
        let rows = stmt.query_map([], CopyRow::from_row).map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    /// Records a read-back of a copy.
    pub fn record_copy_verification(
        &self,
        backup_id: i64,
        location: &str,
        ok: bool,
        error: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<(), CatalogError> {
        self.conn()
            .execute(
                "UPDATE copies SET verified_at = ?3, verify_ok = ?4, verify_error = ?5
                 WHERE backup_id = ?1 AND location = ?2",
                params![backup_id, location, timestamp(at), ok, error],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// The most recent copy on remote `location` (what its next upload is expected to take, size for size).
    pub fn last_copy_on(&self, location: &str) -> Result<Option<CopyRow>, CatalogError> {
        use rusqlite::OptionalExtension;
        self.conn()
            .query_row(
                &format!(
                    "SELECT {} FROM copies WHERE location = ?1 AND duration_ms > 0 ORDER BY uploaded_at DESC LIMIT 1",
                    CopyRow::COLUMNS
                ),
                params![location],
                CopyRow::from_row,
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Forgets a copy once its object is deleted.
    pub fn remove_copy(&self, backup_id: i64, location: &str) -> Result<(), CatalogError> {
        self.conn()
            .execute(
                "DELETE FROM copies WHERE backup_id = ?1 AND location = ?2",
                params![backup_id, location],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Records that backup `id`'s local archive was removed while a remote copy keeps the backup (prune per
    /// location): its row, its path (the archive's name) and its copies stay.
    pub fn local_archive_removed(&self, id: i64, at: DateTime<Utc>) -> Result<(), CatalogError> {
        self.conn()
            .execute(
                "UPDATE backups SET local_removed_at = ?2 WHERE id = ?1",
                params![id, timestamp(at)],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Records that backup `id` has a local archive again (fetched back from a remote).
    pub fn local_archive_restored(&self, id: i64) -> Result<(), CatalogError> {
        self.conn()
            .execute("UPDATE backups SET local_removed_at = NULL WHERE id = ?1", params![id])
            .map_err(|e| self.err(e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BackupStatus, NewBackup, NewRun, RunKind};

    fn catalog_with_backup() -> (tempfile::TempDir, Catalog, i64) {
        let dir = tempfile::tempdir().unwrap();
        let catalog = Catalog::open(&dir.path().join("catalog.db")).unwrap();
        let run = catalog
            .begin_run(&NewRun {
                kind: RunKind::Manual,
                version: "1".into(),
                project: None,
                started_at: Utc::now(),
                pid: 1,
                boot_id: None,
                storage_dir: dir.path().into(),
                staging_dir: dir.path().into(),
            })
            .unwrap();
        let id = catalog
            .insert_backup(&NewBackup {
                run_id: run,
                kind: RunKind::Manual,
                version: "1",
                status: BackupStatus::Completed,
                error: None,
                archive: None,
                created_at: Utc::now(),
            })
            .unwrap();
        (dir, catalog, id)
    }

    #[test]
    fn a_copy_is_recorded_verified_and_forgotten_with_its_backup() {
        let (_dir, catalog, id) = catalog_with_backup();
        catalog
            .record_copy(&NewCopy {
                backup_id: id,
                location: "offsite",
                key: "p/backup_manual_v1_x.tar.gz.age",
                size: 42,
                sha256: "ab",
                encrypted: true,
                uploaded_at: Utc::now(),
                duration_ms: 7,
            })
            .unwrap();
        catalog
            .record_copy_verification(id, "offsite", false, Some("SHA-256 differs"), Utc::now())
            .unwrap();
        let copies = catalog.copies(id).unwrap();
        assert_eq!(copies.len(), 1);
        assert_eq!((copies[0].size, copies[0].encrypted), (42, true));
        assert_eq!(copies[0].verify_error.as_deref(), Some("SHA-256 differs"));
        assert_eq!(catalog.all_copies().unwrap(), copies);
        catalog.remove_backup(id).unwrap();
        assert!(catalog.all_copies().unwrap().is_empty());
    }
}

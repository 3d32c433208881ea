//! Upgrades in the catalog: one row per `hookrun upgrade`, written before anything is touched and updated at each
//! phase, so that `hookrun recover` knows what a dead upgrade was doing (see `runner::upgrade_recovery`).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension, Row};
use serde::Serialize;

use crate::names::names;

use super::{timestamp, Catalog, CatalogError};

names! {
    /// How an upgrade ended.
    pub enum UpgradeStatus ("upgrade status") {
        /// Under way (or died: its process is gone).
        Running = "running",
        /// The command succeeded and the project passed the health gate on the new version.
        Upgraded = "upgraded",
        /// The upgrade failed and was rolled back: healthy on the old version.
        RolledBack = "rolled-back",
        /// The pre-upgrade chain failed: nothing was upgraded.
        Failed = "failed",
        /// The rollback failed: a person is needed.
        RollbackFailed = "rollback-failed",
        /// It died before its command ran, and `hookrun recover` brought the services back.
        Interrupted = "interrupted",
    }
}

names! {
    /// Where an upgrade is.
    pub enum UpgradePhase ("upgrade phase") {
        /// The pre-upgrade chain (the backup and what ran).
        PreUpgrade = "pre-upgrade",
        /// The upgrade command.
        Command = "command",
        /// The health gate on the new version.
        Gate = "gate",
        /// Putting the old version back.
        Rollback = "rollback",
        /// Finished.
        Done = "done",
    }
}

/// What is known of an upgrade when it starts.
#[derive(Debug, Clone)]
pub struct NewUpgrade<'a> {
    pub project: Option<&'a str>,
    pub from_version: &'a str,
    pub to_version: &'a str,
    pub command: &'a [String],
    pub started_at: DateTime<Utc>,
    pub pid: u32,
}

/// An upgrade as the catalog holds it.
#[derive(Debug, Clone, Serialize)]
pub struct UpgradeRow {
    pub id: i64,
    pub project: Option<String>,
    pub from_version: String,
    pub to_version: String,
    pub command: Vec<String>,
    pub status: UpgradeStatus,
    pub phase: UpgradePhase,
    /// The pre-upgrade backup (its rollback point), once it is recorded.
    pub backup_id: Option<i64>,
    /// The pre-upgrade chain's run, and the rollback's restore run when there was one.
    pub backup_run_id: Option<i64>,
    pub rollback_run_id: Option<i64>,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub pid: i64,
    pub error: Option<String>,
    /// How long each phase took, in milliseconds.
    pub phases: BTreeMap<String, u64>,
    /// Each service's downtime over the whole upgrade (stopped by the chain, the command or the rollback), in
    /// milliseconds.
    pub downtime: BTreeMap<String, u64>,
    /// The end of the command's output.
    pub output_tail: String,
}

impl UpgradeRow {
    const COLUMNS: &'static str = "id, project, from_version, to_version, command, status, phase, backup_id, \
                                   backup_run_id, rollback_run_id, started_at, finished_at, pid, error, phases, \
                                   downtime, output_tail";

    fn from_row(row: &Row<'_>) -> rusqlite::Result<Self> {
        let json = |i: usize| -> rusqlite::Result<String> { row.get(i) };
        Ok(Self {
            id: row.get(0)?,
            project: row.get(1)?,
            from_version: row.get(2)?,
            to_version: row.get(3)?,
            command: serde_json::from_str(&json(4)?).unwrap_or_default(),
            status: row.get(5)?,
            phase: row.get(6)?,
            backup_id: row.get(7)?,
            backup_run_id: row.get(8)?,
            rollback_run_id: row.get(9)?,
            started_at: row.get(10)?,
            finished_at: row.get(11)?,
            pid: row.get(12)?,
            error: row.get(13)?,
            phases: serde_json::from_str(&json(14)?).unwrap_or_default(),
            downtime: serde_json::from_str(&json(15)?).unwrap_or_default(),
            output_tail: row.get(16)?,
        })
    }
}

impl Catalog {
    /// Journals a new upgrade (status `running`, phase `pre-upgrade`) and returns its id.
    pub fn begin_upgrade(&self, upgrade: &NewUpgrade<'_>) -> Result<i64, CatalogError> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO upgrades (project, from_version, to_version, command, status, phase, started_at, pid)
             VALUES (?1, ?2, ?3, ?4, 'running', 'pre-upgrade', ?5, ?6)",
            params![
                upgrade.project,
                upgrade.from_version,
                upgrade.to_version,
                serde_json::to_string(upgrade.command).unwrap_or_else(|_| "[]".into()),
                timestamp(upgrade.started_at),
                upgrade.pid,
            ],
        )
        .map_err(|e| self.err(e))?;
        Ok(conn.last_insert_rowid())
    }

    /// Records that upgrade `id` entered `phase`, and how long the phase before it took.
    pub fn upgrade_phase(
        &self,
        id: i64,
        phase: UpgradePhase,
        previous: Option<(UpgradePhase, u64)>,
    ) -> Result<(), CatalogError> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(|e| self.err(e))?;
        if let Some((done, ms)) = previous {
            let phases: String = tx
                .query_row("SELECT phases FROM upgrades WHERE id = ?1", params![id], |r| r.get(0))
                .map_err(|e| self.err(e))?;
            let mut phases: BTreeMap<String, u64> = serde_json::from_str(&phases).unwrap_or_default();
            *phases.entry(done.as_str().to_string()).or_default() += ms;
            tx.execute(
                "UPDATE upgrades SET phases = ?2 WHERE id = ?1",
                params![id, serde_json::to_string(&phases).unwrap_or_else(|_| "{}".into())],
            )
            .map_err(|e| self.err(e))?;
        }
        tx.execute(
            "UPDATE upgrades SET phase = ?2 WHERE id = ?1",
            params![id, phase.as_str()],
        )
        .map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))
    }

    /// Records the pre-upgrade chain's run of upgrade `id` and the backup it made (its rollback point).
    pub fn upgrade_backup(&self, id: i64, run_id: Option<i64>, backup_id: Option<i64>) -> Result<(), CatalogError> {
        self.conn()
            .execute(
                "UPDATE upgrades SET backup_run_id = ?2, backup_id = ?3 WHERE id = ?1",
                params![id, run_id, backup_id],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Records the restore run that rolls upgrade `id` back.
    pub fn upgrade_rollback_run(&self, id: i64, run_id: i64) -> Result<(), CatalogError> {
        self.conn()
            .execute(
                "UPDATE upgrades SET rollback_run_id = ?2 WHERE id = ?1",
                params![id, run_id],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Records the end of the upgrade command's output.
    pub fn upgrade_output(&self, id: i64, tail: &str) -> Result<(), CatalogError> {
        self.conn()
            .execute("UPDATE upgrades SET output_tail = ?2 WHERE id = ?1", params![id, tail])
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Closes upgrade `id`.
    pub fn finish_upgrade(
        &self,
        id: i64,
        status: UpgradeStatus,
        error: Option<&str>,
        downtime: &BTreeMap<String, u64>,
        at: DateTime<Utc>,
    ) -> Result<(), CatalogError> {
        self.conn()
            .execute(
                "UPDATE upgrades SET status = ?2, phase = 'done', error = ?3, downtime = ?4, finished_at = ?5
                 WHERE id = ?1",
                params![
                    id,
                    status.as_str(),
                    error,
                    serde_json::to_string(downtime).unwrap_or_else(|_| "{}".into()),
                    timestamp(at)
                ],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// One upgrade by id.
    pub fn upgrade(&self, id: i64) -> Result<Option<UpgradeRow>, CatalogError> {
        self.conn()
            .query_row(
                &format!("SELECT {} FROM upgrades WHERE id = ?1", UpgradeRow::COLUMNS),
                params![id],
                UpgradeRow::from_row,
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Every upgrade, oldest first; with `unfinished`, only those still marked `running`.
    pub fn upgrades(&self, unfinished: bool) -> Result<Vec<UpgradeRow>, CatalogError> {
        let conn = self.conn();
        let filter = if unfinished { "WHERE status = 'running'" } else { "" };
        let mut stmt = conn
            .prepare(&format!(
                "SELECT {} FROM upgrades {filter} ORDER BY id",
                UpgradeRow::COLUMNS
            ))
            .map_err(|e| self.err(e))?;
        let rows = stmt.query_map([], UpgradeRow::from_row).map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_upgrade_is_journalled_phase_by_phase() {
        let dir = tempfile::tempdir().unwrap();
        let catalog = Catalog::open(&dir.path().join("catalog.db")).unwrap();
        let command = vec!["docker-compose".to_string(), "up".to_string()];
        let id = catalog
            .begin_upgrade(&NewUpgrade {
                project: Some("demo"),
                from_version: "1",
                to_version: "2",
                command: &command,
                started_at: Utc::now(),
                pid: 42,
            })
            .unwrap();
        catalog
            .upgrade_phase(id, UpgradePhase::Command, Some((UpgradePhase::PreUpgrade, 1500)))
            .unwrap();
        catalog
            .upgrade_phase(id, UpgradePhase::Gate, Some((UpgradePhase::Command, 200)))
            .unwrap();
        assert_eq!(catalog.upgrades(true).unwrap().len(), 1);
        let downtime = BTreeMap::from([("db".to_string(), 900)]);
        catalog
            .finish_upgrade(id, UpgradeStatus::Upgraded, None, &downtime, Utc::now())
            .unwrap();

        let row = catalog.upgrade(id).unwrap().unwrap();
        assert_eq!((row.status, row.phase), (UpgradeStatus::Upgraded, UpgradePhase::Done));
        assert_eq!(row.command, command);
        assert_eq!(row.phases["pre-upgrade"], 1500);
        assert_eq!(row.phases["command"], 200);
        assert_eq!(row.downtime, downtime);
        assert!(catalog.upgrades(true).unwrap().is_empty());
    }
}

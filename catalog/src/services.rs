//! The containers a run stopped, in the catalog: written before each stop, updated when it is back, so that
//! `hookrun recover` knows what a dead run left down.

use chrono::{DateTime, Utc};
use rusqlite::params;
use serde::Serialize;

use super::{timestamp, Catalog, CatalogError};
use crate::StoppedService;

/// One stopped (or being stopped) container of a run.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceRow {
    pub container_id: String,
    pub container_name: String,
    pub service: String,
    pub start_layer: i64,
    /// `stopping`, `stopped`, `started` or `failed`.
    pub state: String,
    pub stopped_at: Option<String>,
    pub started_at: Option<String>,
    pub downtime_ms: Option<i64>,
    pub error: Option<String>,
}

impl Catalog {
    /// Journals that a container is about to be stopped.
    pub fn service_stopping(&self, run_id: i64, service: &StoppedService) -> Result<(), CatalogError> {
        self.conn()
            .execute(
                "INSERT OR REPLACE INTO services (run_id, container_id, container_name, service, start_layer, state)
                 VALUES (?1, ?2, ?3, ?4, ?5, 'stopping')",
                params![
                    run_id,
                    service.container_id,
                    service.container_name,
                    service.service,
                    service.start_layer as i64
                ],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Journals that a container has stopped.
    pub fn service_stopped(&self, run_id: i64, container_id: &str, at: DateTime<Utc>) -> Result<(), CatalogError> {
        self.set_service(
            run_id,
            container_id,
            "state = 'stopped', stopped_at = ?3",
            timestamp(at),
        )
    }

    /// Journals that a container is back, and its downtime.
    pub fn service_started(
        &self,
        run_id: i64,
        container_id: &str,
        at: DateTime<Utc>,
        downtime_ms: u64,
    ) -> Result<(), CatalogError> {
        self.conn()
            .execute(
                "UPDATE services SET state = 'started', started_at = ?3, downtime_ms = ?4, error = NULL
                 WHERE run_id = ?1 AND container_id = ?2",
                params![run_id, container_id, timestamp(at), downtime_ms as i64],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Journals that a container did not come back.
    pub fn service_failed(&self, run_id: i64, container_id: &str, error: &str) -> Result<(), CatalogError> {
        self.set_service(run_id, container_id, "state = 'failed', error = ?3", error.to_string())
    }

    fn set_service(&self, run_id: i64, container_id: &str, set: &str, value: String) -> Result<(), CatalogError> {
        self.conn()
            .execute(
                &format!("UPDATE services SET {set} WHERE run_id = ?1 AND container_id = ?2"),
                params![run_id, container_id, value],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Journals that the stopped container `old_id` was replaced by `new` (a rollback re-created it): the run now
    /// has `new` to start, its downtime running from when `old_id` stopped.
    pub fn replace_service(&self, run_id: i64, old_id: &str, new: &StoppedService) -> Result<(), CatalogError> {
        self.conn()
            .execute(
                "UPDATE services SET container_id = ?3, container_name = ?4, start_layer = ?5
                 WHERE run_id = ?1 AND container_id = ?2",
                params![
                    run_id,
                    old_id,
                    new.container_id,
                    new.container_name,
                    new.start_layer as i64
                ],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Journals that a stopped container is gone (a rollback removed what the upgrade added): nothing to start.
    pub fn forget_service(&self, run_id: i64, container_id: &str) -> Result<(), CatalogError> {
        self.conn()
            .execute(
                "DELETE FROM services WHERE run_id = ?1 AND container_id = ?2",
                params![run_id, container_id],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// The containers of a run, in the order they were stopped.
    pub fn services(&self, run_id: i64) -> Result<Vec<ServiceRow>, CatalogError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(
                "SELECT container_id, container_name, service, start_layer, state, stopped_at, started_at,
                        downtime_ms, error
                 FROM services WHERE run_id = ?1 ORDER BY rowid",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![run_id], |r| {
                Ok(ServiceRow {
                    container_id: r.get(0)?,
                    container_name: r.get(1)?,
                    service: r.get(2)?,
                    start_layer: r.get(3)?,
                    state: r.get(4)?,
                    stopped_at: r.get(5)?,
                    started_at: r.get(6)?,
                    downtime_ms: r.get(7)?,
                    error: r.get(8)?,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }
}

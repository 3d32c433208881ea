//! What ran when a pre-upgrade backup was taken: each container of the Compose project as Docker reported it, the
//! image tag that keeps its image from deletion, and where each Compose file archived under `compose/` came from.
//! A rollback re-creates the containers and puts the files back from these records.

use rusqlite::params;
use serde::Serialize;

use super::{Catalog, CatalogError};

/// One container of the project as it was when the backup was taken.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecordedContainer {
    /// Its name, without Docker's leading `/`.
    pub name: String,
    /// Its Compose service.
    pub service: String,
    /// Its id then (a rollback creates a new one).
    pub container_id: String,
    /// The image reference it was created from (e.g. `app:latest`).
    pub image: String,
    /// The image it really ran (`sha256:…`): what a rollback runs, whatever the reference points at now.
    pub image_id: String,
    /// The image's repository digests, when it came from a registry.
    pub repo_digests: Vec<String>,
    /// Whether it was running (a rollback starts only these).
    pub running: bool,
    /// Start in ascending layers: a service's dependencies are in lower layers.
    pub start_layer: usize,
    /// The tag of hookrun's own that keeps the image (`hookrun-rollback/<project>-<service>:<backup id>`), until the
    /// backup is deleted; `None` when it could not be tagged or the tag is gone.
    pub rollback_tag: Option<String>,
    /// Docker's inspect document of the container (JSON): its configuration, host configuration and networks.
    #[serde(skip)]
    pub inspect: String,
}

/// A Compose file in a backup's archive and where it goes back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ComposeFile {
    /// Its path in the archive (`compose/…`).
    pub archive_path: String,
    /// Where it lived.
    pub host_path: String,
}

/// What a backup recorded of the deployment it was taken from (empty for backups that recorded nothing).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Deployment {
    pub containers: Vec<RecordedContainer>,
    pub compose_files: Vec<ComposeFile>,
}

impl Deployment {
    /// Whether the backup recorded its containers (a rollback can then re-create them).
    pub fn has_containers(&self) -> bool {
        !self.containers.is_empty()
    }
}

impl Catalog {
    /// Records what ran when backup `backup_id` was taken, in one transaction.
    pub fn record_deployment(&self, backup_id: i64, deployment: &Deployment) -> Result<(), CatalogError> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(|e| self.err(e))?;
        for c in &deployment.containers {
            let digests = serde_json::to_string(&c.repo_digests).unwrap_or_else(|_| "[]".into());
            tx.execute(
                "INSERT OR REPLACE INTO backup_containers (backup_id, name, service, container_id, image, image_id,
                     repo_digests, running, start_layer, rollback_tag, inspect)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                params![
                    backup_id,
                    c.name,
                    c.service,
                    c.container_id,
                    c.image,
                    c.image_id,
                    digests,
                    c.running,
                    c.start_layer as i64,
                    c.rollback_tag,
                    c.inspect
                ],
            )
            .map_err(|e| self.err(e))?;
        }
        for f in &deployment.compose_files {
            tx.execute(
                "INSERT OR REPLACE INTO backup_compose_files (backup_id, archive_path, host_path) VALUES (?1, ?2, ?3)",
                params![backup_id, f.archive_path, f.host_path],
            )
            .map_err(|e| self.err(e))?;
        }
        tx.commit().map_err(|e| self.err(e))
    }

    /// What backup `backup_id` recorded of its deployment, containers by service and name.
    pub fn deployment(&self, backup_id: i64) -> Result<Deployment, CatalogError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(
                "SELECT name, service, container_id, image, image_id, repo_digests, running, start_layer,
                        rollback_tag, inspect
                 FROM backup_containers WHERE backup_id = ?1 ORDER BY service, name",
            )
            .map_err(|e| self.err(e))?;
        let containers = stmt
            .query_map(params![backup_id], |r| {
                let digests: String = r.get(5)?;
                Ok(RecordedContainer {
                    name: r.get(0)?,
                    service: r.get(1)?,
                    container_id: r.get(2)?,
                    image: r.get(3)?,
                    image_id: r.get(4)?,
                    repo_digests: serde_json::from_str(&digests).unwrap_or_default(),
                    running: r.get(6)?,
                    start_layer: r.get::<_, i64>(7)? as usize,
                    rollback_tag: r.get(8)?,
                    inspect: r.get(9)?,
                })
            })
            .map_err(|e| self.err(e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.err(e))?;
        let mut stmt = conn
            .prepare("SELECT archive_path, host_path FROM backup_compose_files WHERE backup_id = ?1 ORDER BY rowid")
            .map_err(|e| self.err(e))?;
        let compose_files = stmt
            .query_map(params![backup_id], |r| {
                Ok(ComposeFile {
                    archive_path: r.get(0)?,
                    host_path: r.get(1)?,
                })
            })
            .map_err(|e| self.err(e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.err(e))?;
        Ok(Deployment {
            containers,
            compose_files,
        })
    }

    /// Notes that the image tag of backup `backup_id`'s container `name` is gone.
    pub fn forget_rollback_tag(&self, backup_id: i64, name: &str) -> Result<(), CatalogError> {
        self.conn()
            .execute(
                "UPDATE backup_containers SET rollback_tag = NULL WHERE backup_id = ?1 AND name = ?2",
                params![backup_id, name],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BackupStatus, NewBackup, RunKind};

    #[test]
    fn a_deployment_comes_back_as_recorded_and_goes_with_its_backup() {
        let dir = tempfile::tempdir().unwrap();
        let catalog = Catalog::open(&dir.path().join("catalog.db")).unwrap();
        let run_id = catalog
            .begin_run(&crate::NewRun {
                kind: RunKind::PreUpgrade,
                version: "1".into(),
                project: Some("demo".into()),
                started_at: chrono::Utc::now(),
                pid: 1,
                boot_id: None,
                storage_dir: dir.path().into(),
                staging_dir: dir.path().into(),
            })
            .unwrap();
        let id = catalog
            .insert_backup(&NewBackup {
                run_id,
                kind: RunKind::PreUpgrade,
                version: "1",
                status: BackupStatus::Completed,
                error: None,
                archive: None,
                created_at: chrono::Utc::now(),
            })
            .unwrap();
        let deployment = Deployment {
            containers: vec![RecordedContainer {
                name: "demo_db_1".into(),
                service: "db".into(),
                container_id: "abc".into(),
                image: "db:latest".into(),
                image_id: "sha256:0123".into(),
                repo_digests: vec!["db@sha256:4567".into()],
                running: true,
                start_layer: 0,
                rollback_tag: Some("hookrun-rollback/demo-db:1".into()),
                inspect: r#"{"Id":"abc"}"#.into(),
            }],
            compose_files: vec![ComposeFile {
                archive_path: "compose/docker-compose.yml".into(),
                host_path: "/srv/demo/docker-compose.yml".into(),
            }],
        };
        catalog.record_deployment(id, &deployment).unwrap();
        assert_eq!(catalog.deployment(id).unwrap(), deployment);

        catalog.forget_rollback_tag(id, "demo_db_1").unwrap();
        assert_eq!(catalog.deployment(id).unwrap().containers[0].rollback_tag, None);

        catalog.remove_backup(id).unwrap();
        assert_eq!(catalog.deployment(id).unwrap(), Deployment::default());
    }
}

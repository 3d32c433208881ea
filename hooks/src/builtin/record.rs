//! The `record` built-in: says in the catalog what the run's backup is, `completed` only if nothing failed before it
//! (the backup hook registered its archive there as it placed it), or records a failed attempt without an archive.

use async_trait::async_trait;
use chrono::Utc;

use crate::{Hook, HookError, RunContext};
use hookrun_catalog::{BackupStatus, NewBackup};

/// The `record` hook. It runs `always` by default, so a failed attempt is recorded too.
#[derive(Debug)]
pub struct RecordHook {
    name: String,
}

impl RecordHook {
    /// A record hook called `name`.
    pub fn new(name: impl Into<String>) -> Self {
        Self { name: name.into() }
    }
}

#[async_trait]
impl Hook for RecordHook {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &str {
        "record"
    }

    async fn run(&self, ctx: &mut RunContext) -> Result<(), HookError> {
        let failure = ctx.failure.as_ref().map(|f| format!("hook {}: {}", f.hook, f.message));
        let (status, error) = match (&ctx.archive, failure) {
            (_, Some(error)) => (BackupStatus::Failed, Some(error)),
            (Some(_), None) => (BackupStatus::Completed, None),
            (None, None) => (
                BackupStatus::Failed,
                Some("no backup hook produced an archive before record".into()),
            ),
        };
        let id = match &ctx.archive {
            // The backup hook registered its archive before placing it; this says what it is.
            Some(archive) => {
                ctx.catalog.record_backup(archive.backup_id, status, error.as_deref())?;
                archive.backup_id
            }
            None => ctx.catalog.insert_backup(&NewBackup {
                run_id: ctx.run_id,
                kind: ctx.kind,
                version: &ctx.version,
                status,
                error: error.as_deref(),
                archive: None,
                created_at: Utc::now(),
            })?,
        };
        ctx.outputs
            .entry(self.name.clone())
            .or_default()
            .insert("backup_id".into(), id.to_string());
        Ok(())
    }
}

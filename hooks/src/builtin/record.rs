//! The `record` built-in: registers the run's backup in the catalog, `completed` only if nothing failed before it.

use async_trait::async_trait;
use chrono::Utc;

use crate::catalog::{BackupStatus, NewBackup};
use crate::{Hook, HookError, RunContext};

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
        let kind = ctx.kind.as_str();
        let id = ctx.catalog.insert_backup(&NewBackup {
            run_id: ctx.run_id,
            kind,
            version: &ctx.version,
            status,
            error: error.as_deref(),
            archive: ctx.archive.as_ref(),
            created_at: ctx.archive.as_ref().map_or_else(Utc::now, |a| a.created_at),
        })?;
        ctx.outputs
            .entry(self.name.clone())
            .or_default()
            .insert("backup_id".into(), id.to_string());
        Ok(())
    }
}

//! `hookrun sync [--remote NAME]`: uploads every completed backup that lacks a copy on a remote (resumable: what
//! is recorded is skipped, an object an earlier upload completed but did not record is checked and adopted), under
//! the storage lock like every command that changes storage.

use std::time::Instant;

use hookrun_catalog::{BackupFilter, BackupStatus};
use hookrun_hooks::builtin::upload_backup;
use tokio_util::sync::CancellationToken;

use crate::exit::{Exit, UsageError};
use crate::results::{SyncFailure, SyncResult, Synced};
use crate::session::Session;

/// Uploads what lacks a copy on each remote (or only `remote`); `on_synced` hears of each upload as it ends, and
/// `on_progress` of the bytes sent so far. Exit 1 when an upload failed (the others still ran).
pub async fn sync(
    session: &Session,
    remote: Option<&str>,
    cancel: &CancellationToken,
    on_synced: &mut dyn FnMut(Result<&Synced, &SyncFailure>),
    on_progress: &(dyn Fn(i64, &str, u64, u64) + Sync),
) -> anyhow::Result<(SyncResult, Exit)> {
    let (config, catalog) = (&session.config, &session.catalog);
    if config.remotes.is_empty() {
        return Err(UsageError(format!("{} has no [[remote]] table to sync to", config.path.display())).into());
    }
    let remotes: Vec<_> = match remote {
        None => config.remotes.iter().collect(),
        Some(name) => vec![config.remote(name).ok_or_else(|| {
            UsageError(format!(
                "no remote named `{name}`; the [[remote]] tables are: {}",
                config
                    .remotes
                    .iter()
                    .map(|r| r.spec.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?],
    };
    let rows = catalog.list_backups(&BackupFilter {
        status: Some(BackupStatus::Completed),
        ..Default::default()
    })?;
    let mut result = SyncResult::default();
    for remote in remotes {
        let name = &remote.spec.name;
        let opened = crate::remotes::open(remote);
        for row in rows.iter().filter(|r| !r.deleting && r.local_removed_at.is_none()) {
            if row.copies.iter().any(|c| &c.location == name) {
                result.already += 1;
                continue;
            }
            let (Some(path), Some(sha256)) = (row.path.as_deref(), row.sha256.as_deref()) else {
                continue;
            };
            let started = Instant::now();
            let total = row.size.unwrap_or_default() as u64;
            let progress = |done: u64| on_progress(row.id, name, done, total);
            let outcome = match &opened {
                Ok(r) => upload_backup(r, catalog, row.id, path.as_ref(), sha256, cancel, &progress)
                    .await
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            match outcome {
                Ok(uploaded) => {
                    let synced = Synced {
                        backup: row.id,
                        remote: name.clone(),
                        key: uploaded.key,
                        bytes: uploaded.size,
                        encrypted: uploaded.encrypted,
                        already_there: uploaded.already_there,
                        duration_ms: started.elapsed().as_millis() as u64,
                    };
                    on_synced(Ok(&synced));
                    result.uploaded.push(synced);
                }
                Err(error) => {
                    let failure = SyncFailure {
                        backup: row.id,
                        remote: name.clone(),
                        error,
                    };
                    on_synced(Err(&failure));
                    result.failed.push(failure);
                    if cancel.is_cancelled() {
                        break;
                    }
                }
            }
        }
    }
    crate::metrics::refresh(&session.config, &session.catalog);
    let exit = if result.failed.is_empty() {
        Exit::Success
    } else {
        Exit::Failed
    };
    Ok((result, exit))
}

//! `hookrun restore ID` and `hookrun rollback`: put a backup's data back. A restore is a run of its own, journalled
//! like any other (so `hookrun recover` can finish one that died): extract beside each target while verifying the
//! archive (before anything stops), stop the project, swap, start the project, and only then delete the old copies.

use std::path::Path;

use chrono::Utc;
use hookrun_catalog::RunKind;
use hookrun_catalog::{BackupRow, BackupStatus, Catalog};
use hookrun_hooks::builtin::{StartHook, StopConfig, StopHook};
use hookrun_hooks::restore::{CleanupHook, RestoreHook, RestoreTarget, SharedLeftovers};
use hookrun_hooks::Hook;

use crate::chain_run::run_chain;
use crate::config::{Builtin, Config, HookKind, OnError, When};
use crate::event::EventSink;
use crate::executor::ChainHook;
use crate::exit::{Exit, UsageError};
use crate::restore_targets::targets;
use crate::results::{PlannedTarget, RestorePlan, RestoreResult};
use crate::session::Session;

/// What to restore.
pub enum Pick {
    /// This backup.
    Id(i64),
    /// The newest verified, completed pre-upgrade backup.
    NewestPreUpgrade,
}

/// Which backup a restore puts back (all of it, or the archive paths in `only`), and what it would change. Refuses
/// a backup that is not usable. Changes nothing.
pub fn plan(session: &Session, pick: Pick, only: Vec<String>, dry_run: bool) -> anyhow::Result<RestorePlan> {
    let (config, catalog) = (&session.config, &session.catalog);
    let backup = match pick {
        Pick::Id(id) => catalog
            .backup(id)?
            .ok_or_else(|| UsageError(format!("no backup with id {id}")))?,
        Pick::NewestPreUpgrade => newest_rollback_point(catalog)?,
    };
    if backup.status != BackupStatus::Completed || backup.deleting {
        let why = backup.error.as_deref().unwrap_or("being deleted");
        anyhow::bail!("backup {} is not usable ({}): {why}", backup.id, backup.status);
    }
    let restore_targets = targets(catalog, &backup, &only)?;
    let planned = restore_targets
        .iter()
        .map(|t| PlannedTarget {
            from: t.archive_prefix.clone(),
            to: t.host_path.clone(),
            replaces: t.host_path.exists(),
        })
        .collect();
    Ok(RestorePlan {
        backup: backup.id,
        dry_run,
        stops_project: config.runner.project.clone(),
        targets: planned,
        row: backup,
        only,
        restore_targets,
    })
}

/// Carries out `plan` (confirmed, if it had to be) as a restore run of its own, in a session opened without a dry
/// run; the run's events go to `events` as it goes. The restore is recorded in the catalog, failed or not.
pub async fn execute(
    session: &Session,
    plan: RestorePlan,
    events: &dyn EventSink,
) -> anyhow::Result<(RestoreResult, Exit)> {
    let (config, catalog) = (&session.config, &session.catalog);
    let backup = plan.row;
    let restore_id = catalog.begin_restore(backup.id, &plan.only, Utc::now())?;
    let chain = chain(config, backup.clone(), plan.restore_targets);
    let outcome = run_chain(
        session,
        RunKind::Restore,
        &backup.version,
        &chain,
        Some(backup.id),
        events,
    )
    .await;
    let (run_id, error) = match &outcome {
        Ok((report, _)) => (report.run_id, report.error.clone()),
        Err(e) => (None, Some(format!("{e:#}"))),
    };
    catalog.finish_restore(restore_id, run_id, error.as_deref(), Utc::now())?;
    outcome.map(|(report, exit)| (RestoreResult { report }, exit))
}

/// The newest completed pre-upgrade backup whose archive is there and whose last verification (if any) passed.
fn newest_rollback_point(catalog: &Catalog) -> anyhow::Result<BackupRow> {
    let filter = hookrun_catalog::BackupFilter {
        kind: Some("pre-upgrade".into()),
        status: Some(BackupStatus::Completed),
    };
    catalog
        .list_backups(&filter)?
        .into_iter()
        .rev()
        .find(|b| {
            !b.deleting && b.verify_ok != Some(false) && b.path.as_deref().is_some_and(|p| Path::new(p).is_file())
        })
        .ok_or_else(|| anyhow::anyhow!("no completed pre-upgrade backup with its archive in place to roll back to"))
}

/// stop → restore → start → remove the old copies (the restore's extraction is its preflight, before the stop).
/// Stop and start use the chain's own settings when it has them, and are left out when no Compose project is
/// configured. The clean-up always runs: a staged copy never swapped in goes even when the run failed.
fn chain(config: &Config, backup: BackupRow, targets: Vec<RestoreTarget>) -> Vec<ChainHook> {
    let leftovers = SharedLeftovers::default();
    let step = |hook: Box<dyn Hook>, when: When| ChainHook {
        hook,
        when,
        artifacts: true,
        on_error: OnError::Abort,
        timeout: std::time::Duration::from_secs(24 * 3600),
    };
    let mut chain = Vec::new();
    let has_project = config.runner.project.is_some();
    if has_project {
        let stop = config.hooks.iter().find_map(|h| match &h.kind {
            HookKind::Builtin(Builtin::Stop(stop)) => Some(stop.clone()),
            _ => None,
        });
        let stop = stop.unwrap_or(StopConfig {
            compose_file: config.runner.compose_file.clone(),
            ..Default::default()
        });
        chain.push(step(Box::new(StopHook::new("stop", stop)), When::Success));
    }
    chain.push(step(
        Box::new(RestoreHook::new(backup, targets, leftovers.clone())),
        When::Success,
    ));
    if has_project {
        let start = config
            .hooks
            .iter()
            .find_map(|h| match &h.kind {
                HookKind::Builtin(Builtin::Start(start)) => Some(start.clone()),
                _ => None,
            })
            .unwrap_or_default();
        chain.push(step(Box::new(StartHook::new("start", start)), When::Always));
    }
    chain.push(step(Box::new(CleanupHook::new(leftovers)), When::Always));
    chain
}

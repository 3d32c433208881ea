//! A restore as a run of its own, for `hookrun restore`/`rollback` and for the automatic rollback of
//! `hookrun upgrade`: which backup, what it changes, and the chain that does it — extract beside each target while
//! verifying the archive (before anything stops), stop the project, swap, put back the recorded deployment when a
//! rollback asks for it (Compose files and containers), start the project, and only then delete the old copies.

use std::path::{Path, PathBuf};

use chrono::Utc;
use hookrun_catalog::{BackupRow, BackupStatus, Catalog, Deployment, RunKind};
use hookrun_hooks::builtin::{CommandConfig, CommandHook, StartHook, StopConfig, StopHook};
use hookrun_hooks::context::COMPOSE_DIR;
use hookrun_hooks::restore::{CleanupHook, RedeployHook, RestoreHook, RestoreTarget, SharedLeftovers};
use hookrun_hooks::Hook;

use crate::chain_run::run_chain;
use crate::config::{Builtin, Config, HookKind, OnError, When};
use crate::event::Event;
use crate::event::EventSink;
use crate::executor::ChainHook;
use crate::exit::{Exit, UsageError};
use crate::remotes::ensure_local_archive;
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

/// The prefix of the folder (in the storage dir's `.staging`) where a rollback puts the archive's Compose files
/// before they go back to their places; `hookrun recover` removes what a dead rollback left there.
pub const COMPOSE_STAGING_PREFIX: &str = "rollback-compose-";

/// Which backup a restore puts back (all of it, or the archive paths in `only`), and what it would change. With
/// `redeploy` (a rollback) it also puts back what the backup recorded of the deployment: its Compose files and its
/// containers, re-created as they ran. Refuses a backup that is not usable. Changes nothing.
pub fn plan(
    session: &Session,
    pick: Pick,
    only: Vec<String>,
    redeploy: bool,
    dry_run: bool,
) -> anyhow::Result<RestorePlan> {
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
    let mut planned: Vec<PlannedTarget> = restore_targets
        .iter()
        .map(|t| PlannedTarget {
            from: t.archive_prefix.clone(),
            to: t.host_path.clone(),
            replaces: t.host_path.exists(),
        })
        .collect();
    let deployment = if redeploy && only.is_empty() && config.runner.project.is_some() {
        Some(catalog.deployment(backup.id)?).filter(|d| d.has_containers() || !d.compose_files.is_empty())
    } else {
        None
    };
    if let Some(deployment) = &deployment {
        planned.extend(deployment.compose_files.iter().map(|f| PlannedTarget {
            from: f.archive_path.clone().into(),
            to: f.host_path.clone().into(),
            replaces: Path::new(&f.host_path).exists(),
        }));
    }
    Ok(RestorePlan {
        backup: backup.id,
        dry_run,
        stops_project: config.runner.project.clone(),
        targets: planned,
        recreates: deployment.as_ref().map(|d| d.containers.clone()).unwrap_or_default(),
        row: backup,
        only,
        restore_targets,
        deployment,
        identity: None,
    })
}

/// Carries out `plan` (confirmed, if it had to be) as a restore run of its own; the run's events go to `events` as
/// it goes. The restore is recorded in the catalog, failed or not.
pub async fn execute(
    session: &Session,
    plan: RestorePlan,
    events: &dyn EventSink,
) -> anyhow::Result<(RestoreResult, Exit)> {
    let (config, catalog) = (&session.config, &session.catalog);
    let backup = plan.row;
    // Before anything stops: an archive that is missing, pruned or damaged comes back from a remote copy, checked.
    if let Some(fetched) = ensure_local_archive(config, catalog, &backup, plan.identity.as_ref()).await? {
        events.emit(&Event::Fetched(fetched));
    }
    let restore_id = catalog.begin_restore(backup.id, &plan.only, Utc::now())?;
    let chain = chain(config, backup.clone(), plan.restore_targets, plan.deployment);
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

/// The newest completed pre-upgrade backup whose archive is there (locally, or as a remote copy whose last
/// read-back, if any, passed) and whose last verification (if any) passed.
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
            let local = b.local_removed_at.is_none() && b.path.as_deref().is_some_and(|p| Path::new(p).is_file());
            let remote = b.copies.iter().any(|c| c.verify_ok != Some(false));
            !b.deleting && b.verify_ok != Some(false) && (local || remote)
        })
        .ok_or_else(|| {
            anyhow::anyhow!(
                "no completed pre-upgrade backup with its archive in place (or on a remote) to roll back to"
            )
        })
}

/// stop → restore → (redeploy) → start → remove the old copies (the restore's extraction is its preflight, before
/// the stop). Stop and start use the chain's own settings when it has them, and are left out when no Compose project
/// is configured. The clean-up always runs: a staged copy never swapped in goes even when the run failed. With a
/// deployment to put back, its Compose files are restored into the storage dir's staging and then written to their
/// places, and its containers re-created (or, with `[upgrade] rollback_command`, that command deploys instead).
fn chain(
    config: &Config,
    backup: BackupRow,
    mut targets: Vec<RestoreTarget>,
    deployment: Option<Deployment>,
) -> Vec<ChainHook> {
    let leftovers = SharedLeftovers::default();
    let step = |hook: Box<dyn Hook>, when: When| ChainHook {
        hook,
        when,
        artifacts: true,
        on_error: OnError::Abort,
        timeout: std::time::Duration::from_secs(24 * 3600),
    };
    let mut chain = Vec::new();
    let project = config.runner.project.clone();
    if project.is_some() {
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
    let compose_staged = deployment.as_ref().filter(|d| !d.compose_files.is_empty()).map(|_| {
        let staged: PathBuf = config.runner.storage_dir.join(".staging").join(format!(
            "{COMPOSE_STAGING_PREFIX}{}-{}",
            backup.id,
            std::process::id()
        ));
        targets.push(RestoreTarget {
            archive_prefix: COMPOSE_DIR.into(),
            host_path: staged.clone(),
            tree: staged.clone(),
        });
        staged
    });
    chain.push(step(
        Box::new(RestoreHook::new(backup, targets, leftovers.clone())),
        When::Success,
    ));
    if let (Some(deployment), Some(project)) = (deployment, project.clone()) {
        let rollback_command = config.upgrade.rollback_command.clone();
        let recreate = rollback_command.is_none();
        chain.push(step(
            Box::new(RedeployHook::new(project, deployment, compose_staged, recreate)),
            When::Success,
        ));
        if let Some(command) = rollback_command {
            let command = CommandConfig {
                command,
                ..Default::default()
            };
            chain.push(step(
                Box::new(CommandHook::new("rollback_command", command)),
                When::Success,
            ));
        }
    }
    if project.is_some() {
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

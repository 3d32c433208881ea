//! Runs that died without finishing (SIGKILL, power loss): starts what such a run left stopped, in dependency
//! order, removes its temporary files, accounts for its archive and marks it `interrupted`. Every command that takes
//! the storage lock does it first (see `session`), `hookrun recover` does it by hand and also removes what finished
//! restores left beside their targets.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use hookrun_archive::{remove_any, temporary_path, Format};
use hookrun_catalog::{BackupFilter, Catalog, RunKind, RunRow, RunStatus, StoppedService, UpgradePhase};
use hookrun_hooks::bring_back;
use hookrun_hooks::builtin::DEFAULT_START_TIMEOUT;
use hookrun_hooks::restore::{finished_restore_run, leftover_name, leftovers_beside, swaps_for, LeftoverKind};
use serde::Serialize;

use crate::config::{Builtin, Config, HookKind};
use crate::restore_run::COMPOSE_STAGING_PREFIX;

/// What recovering one interrupted run did.
#[derive(Debug, Serialize)]
pub struct Recovered {
    pub run_id: i64,
    /// `pre-upgrade`, `manual` or `restore`.
    pub kind: RunKind,
    /// The phase it died in.
    pub phase: String,
    /// The services it had stopped, started again.
    pub started: Vec<String>,
    /// The archive it had placed, complete but never recorded as usable: now in the catalog as `failed` (its run
    /// did not finish), to be deleted or pruned like any other.
    pub archive: Option<String>,
    /// Services that could not be started, with why.
    pub error: Option<String>,
}

impl Recovered {
    /// One line for people.
    pub fn describe(&self) -> String {
        let services = if self.started.is_empty() {
            "no services to start".to_string()
        } else {
            format!("started {}", self.started.join(", "))
        };
        let archive = self
            .archive
            .as_deref()
            .map(|a| format!("; its archive {a} is recorded as failed"))
            .unwrap_or_default();
        match &self.error {
            None => format!(
                "recovered run {} ({}, interrupted during {}): {services}{archive}",
                self.run_id, self.kind, self.phase
            ),
            Some(e) => format!(
                "run {} ({}, interrupted during {}) could not be recovered: {e}{archive}",
                self.run_id, self.kind, self.phase
            ),
        }
    }
}

/// Recovers every run that died without finishing: starts, in dependency order, what it left stopped, finishes or
/// undoes a restore's swap, removes its temporary files, accounts for an archive it placed but never recorded, and
/// marks it `interrupted`. The caller holds the storage lock, which proves that no `running` run is alive.
pub async fn recover_interrupted(config: &Config, catalog: &Catalog) -> anyhow::Result<Vec<Recovered>> {
    let timeout = config
        .hooks
        .iter()
        .find_map(|h| match &h.kind {
            HookKind::Builtin(Builtin::Start(start)) => Some(start.start_timeout),
            _ => None,
        })
        .unwrap_or(DEFAULT_START_TIMEOUT);

    // A restore run of an upgrade that died while rolling back is the upgrade's to finish: it rolls back again from
    // the start (see `upgrade::finish_interrupted`), so what that run stopped is not started here first.
    let rolling_back: Vec<i64> = catalog
        .upgrades(true)?
        .into_iter()
        .filter(|u| u.phase == UpgradePhase::Rollback)
        .map(|u| u.pid)
        .collect();
    let mut report = Vec::new();
    for run in catalog.unfinished_runs()? {
        let upgrade_rolls_it_back = run.kind == RunKind::Restore && rolling_back.contains(&run.pid);
        let stopped: Vec<StoppedService> = catalog
            .services(run.id)?
            .into_iter()
            .filter(|s| s.state != "started")
            .map(|s| StoppedService {
                stopped_at: s.stopped_at.as_deref().and_then(parse_time).unwrap_or_else(Utc::now),
                service: s.service,
                container_id: s.container_id,
                container_name: s.container_name,
                start_layer: s.start_layer as usize,
            })
            .collect();
        if run.kind == RunKind::Restore {
            finish_interrupted_restore(catalog, &run)?;
        }
        let result = if upgrade_rolls_it_back {
            Ok(())
        } else {
            bring_back(&stopped, catalog, run.id, timeout).await
        };
        remove_leftovers(&run);
        let error = result.as_ref().err().map(ToString::to_string);
        let note = format!(
            "interrupted during {}; hookrun recover started {} service(s){}",
            run.phase,
            stopped.len(),
            error.as_deref().map(|e| format!("; {e}")).unwrap_or_default()
        );
        let started_at = parse_time(&run.started_at).unwrap_or_else(Utc::now);
        let took = (Utc::now() - started_at).num_milliseconds().max(0) as u64;
        catalog.finish_run(run.id, RunStatus::Interrupted, Some(&note), Utc::now(), took)?;
        let archive = account_for_archives(catalog, &run)?;
        report.push(Recovered {
            run_id: run.id,
            kind: run.kind,
            phase: run.phase,
            started: stopped.into_iter().map(|s| s.service).collect(),
            archive,
            error,
        });
    }
    Ok(report)
}

/// The archives a dead run registered: one that is in storage stays, recorded as `failed` (closing the run said
/// why); one that never took its final name is forgotten. Returns the one left in storage.
fn account_for_archives(catalog: &Catalog, run: &RunRow) -> anyhow::Result<Option<String>> {
    let mut kept = None;
    for backup in catalog.backups_of_run(run.id)? {
        let Some(path) = backup.path.as_deref() else {
            continue;
        };
        if Path::new(path).is_file() {
            kept = Some(path.to_string());
        } else {
            catalog.forget_archive(
                backup.id,
                &format!("run {} died during {} before its archive was placed", run.id, run.phase),
            )?;
        }
    }
    Ok(kept)
}

/// Removes what a dead run left in storage: its temporary archive (`.tar.gz.partial` or `.tar.zst.partial`, the
/// catalog does not say which format the run was writing) and its staging folder.
fn remove_leftovers(run: &RunRow) {
    for format in Format::ALL {
        let partial = temporary_path(Path::new(&run.storage_dir), run.id, format);
        if partial.exists() {
            if let Err(e) = std::fs::remove_file(&partial) {
                tracing::warn!("cannot remove {}: {e}", partial.display());
            }
        }
    }
    let staging = Path::new(&run.staging_dir);
    if staging.exists() {
        if let Err(e) = std::fs::remove_dir_all(staging) {
            tracing::warn!("cannot remove {}: {e}", staging.display());
        }
    }
    // A rollback's Compose files, restored into staging before they went back to their places (and what the swap
    // left beside them).
    let shared_staging = Path::new(&run.storage_dir).join(".staging");
    for entry in std::fs::read_dir(&shared_staging).into_iter().flatten().flatten() {
        if entry.file_name().to_string_lossy().contains(COMPOSE_STAGING_PREFIX) {
            if let Err(e) = remove_any(&entry.path()) {
                tracing::warn!("cannot remove {}: {e}", entry.path().display());
            }
        }
    }
}

/// A restore run that died: if it died before or during the swap, every target goes back to the data it had
/// (a half-done swap is undone); if it got past the swap, the restored data stays. Either way the staged and old
/// copies it left beside the targets go.
fn finish_interrupted_restore(catalog: &Catalog, run: &RunRow) -> anyhow::Result<()> {
    let Some((restore_id, backup_id, only)) = catalog.unfinished_restore()? else {
        return Ok(());
    };
    let swapped = matches!(
        run.phase.as_str(),
        "hook redeploy" | "hook rollback_command" | "hook start" | "hook remove-old-copies" | "finished"
    );
    if let Some(backup) = catalog.backup(backup_id)? {
        let targets = crate::restore_targets::targets(catalog, &backup, &only)?;
        for (index, swap) in swaps_for(run.id, &targets).into_iter().enumerate() {
            remove_any(&swap.staged)?;
            if swap.old.symlink_metadata().is_err() {
                continue;
            }
            if swapped {
                remove_any(&swap.old)?;
            } else if swap.target.symlink_metadata().is_ok() {
                // The target holds restored data (its swap was made): put the old data back.
                let undone =
                    swap.target
                        .with_file_name(leftover_name(LeftoverKind::Undone, run.id, index, &swap.target));
                std::fs::rename(&swap.target, &undone)?;
                std::fs::rename(&swap.old, &swap.target)?;
                remove_any(&undone)?;
            } else {
                std::fs::rename(&swap.old, &swap.target)?;
            }
        }
    }
    if swapped {
        // Every target holds the backup's data: the restore did what it was for, only its run was cut short.
        let note = format!(
            "interrupted during {}, after the swap; the restored data stays",
            run.phase
        );
        catalog.complete_interrupted_restore(restore_id, run.id, &note, Utc::now())?;
    } else {
        let error = format!("interrupted during {}; the live data is as it was before", run.phase);
        catalog.finish_restore(restore_id, Some(run.id), Some(&error), Utc::now())?;
    }
    Ok(())
}

/// A copy a finished restore had left beside a target, which `hookrun recover` removed.
#[derive(Debug, Serialize)]
pub struct RemovedLeftover {
    pub path: String,
    pub what: String,
}

/// Removes what finished restores left beside their targets (the old copies a failed restore kept as the way back,
/// anything a restore that died left), looking beside the targets of every finished restore and every recorded tree.
/// Copies of a restore run still marked running are left to `finish_interrupted_restore`. A copy that cannot be
/// removed is warned about and left.
pub fn remove_leftovers_of_finished_restores(catalog: &Catalog) -> anyhow::Result<Vec<RemovedLeftover>> {
    let mut targets: BTreeSet<PathBuf> = BTreeSet::new();
    for (backup_id, _, only) in catalog.finished_restores()? {
        if let Some(backup) = catalog.backup(backup_id)? {
            if let Ok(restored) = crate::restore_targets::targets(catalog, &backup, &only) {
                targets.extend(restored.into_iter().map(|t| t.host_path));
            }
        }
    }
    for backup in catalog.list_backups(&BackupFilter::default())? {
        let trees = catalog.backup_sources(backup.id)?;
        targets.extend(
            trees
                .into_iter()
                .filter(|s| s.kind != "artifacts")
                .map(|s| s.host_path.into()),
        );
    }
    let mut removed = Vec::new();
    for target in targets {
        let beside = match leftovers_beside(&target) {
            Ok(beside) => beside,
            Err(e) => {
                tracing::warn!("cannot look for restore leftovers beside {}: {e}", target.display());
                continue;
            }
        };
        for leftover in beside.into_iter().filter(|l| finished_restore_run(catalog, l.run_id)) {
            match remove_any(&leftover.path) {
                Ok(()) => removed.push(RemovedLeftover {
                    path: leftover.path.display().to_string(),
                    what: leftover.describe(),
                }),
                Err(e) => tracing::warn!("cannot remove {}: {e}", leftover.path.display()),
            }
        }
    }
    Ok(removed)
}

fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s).ok().map(|t| t.with_timezone(&Utc))
}

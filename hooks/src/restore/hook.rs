//! The restore step of a restore run. Its preflight, while the services still run, extracts every target into a
//! staging folder beside it in one pass that also verifies the archive against its catalog row; only a verified
//! extraction lets the run go on to stop the services. The step itself, with the services stopped, swaps the staged
//! folders in; the old copies (and any staged folder never swapped) wait for `CleanupHook`.

use std::path::PathBuf;

use async_trait::async_trait;

use super::cleanup::SharedLeftovers;
use super::swap::{remove_any, swap_all, Swap};
use super::verify::{check_against_row, usable_archive};
use crate::archive::{extract, ExtractPlan};
use crate::blocking::blocking;
use crate::catalog::BackupRow;
use crate::{Hook, HookError, RunContext};

/// One tree to put back: where it is in the archive and where it lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreTarget {
    pub archive_prefix: PathBuf,
    pub host_path: PathBuf,
}

/// Restores `backup`'s `targets`.
#[derive(Debug)]
pub struct RestoreHook {
    backup: BackupRow,
    targets: Vec<RestoreTarget>,
    leftovers: SharedLeftovers,
}

impl RestoreHook {
    /// A restore of `targets` from `backup`; what it leaves beside the targets is listed in `leftovers`.
    pub fn new(backup: BackupRow, targets: Vec<RestoreTarget>, leftovers: SharedLeftovers) -> Self {
        Self {
            backup,
            targets,
            leftovers,
        }
    }

    fn leftovers(&self) -> std::sync::MutexGuard<'_, super::cleanup::Leftovers> {
        self.leftovers.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The staging and set-aside names beside each target, unique to run `run_id` (`hookrun recover` finds what a
/// restore that died left behind by these names).
pub fn swaps_for(run_id: i64, targets: &[RestoreTarget]) -> Vec<Swap> {
    targets
        .iter()
        .enumerate()
        .map(|(index, target)| {
            let parent = target.host_path.parent().unwrap_or_else(|| "/".as_ref());
            let name = target
                .host_path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            Swap {
                target: target.host_path.clone(),
                staged: parent.join(format!(".hookrun-restore-{run_id}-{index}-{name}")),
                old: parent.join(format!(".hookrun-old-{run_id}-{index}-{name}")),
            }
        })
        .collect()
}

#[async_trait]
impl Hook for RestoreHook {
    fn name(&self) -> &str {
        "restore"
    }

    fn kind(&self) -> &str {
        "restore"
    }

    /// Extracts and verifies in one pass before anything is stopped: a corrupt backup never touches the
    /// deployment, and the services are down only for the swap.
    async fn preflight(&self, ctx: &RunContext) -> Result<(), HookError> {
        let archive = usable_archive(&self.backup)?.to_path_buf();
        let swaps = swaps_for(ctx.run_id, &self.targets);
        let mut plans = Vec::new();
        for (swap, target) in swaps.iter().zip(&self.targets) {
            let parent = swap.staged.parent().expect("a name beside the target").to_path_buf();
            std::fs::create_dir_all(&parent).map_err(|source| HookError::Prepare { path: parent, source })?;
            plans.push(ExtractPlan {
                archive_prefix: target.archive_prefix.clone(),
                staging: swap.staged.clone(),
            });
        }
        let (backup, cancel) = (self.backup.clone(), ctx.cancel.clone());
        blocking(move || {
            let summary = extract(&archive, &plans, &cancel)?;
            let checked = check_against_row(&backup, &summary.archive);
            if checked.is_err() {
                for plan in &plans {
                    let _ = remove_any(&plan.staging);
                }
            }
            checked
        })
        .await?;
        self.leftovers().staged = swaps.into_iter().map(|s| s.staged).collect();
        Ok(())
    }

    async fn run(&self, ctx: &mut RunContext) -> Result<(), HookError> {
        if ctx.cancel.is_cancelled() {
            return Err(HookError::Cancelled);
        }
        let swaps = swaps_for(ctx.run_id, &self.targets);
        // From here the staged folders are either swapped in or removed by `swap_all` itself.
        self.leftovers().staged.clear();
        swap_all(&swaps)?;
        self.leftovers().old.extend(
            swaps
                .into_iter()
                .map(|s| s.old)
                .filter(|old| old.symlink_metadata().is_ok()),
        );
        Ok(())
    }
}

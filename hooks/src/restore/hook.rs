//! The restore step of a restore run: verify first (before anything is stopped), then extract every target into
//! a staging folder beside it and swap them all in; the old copies wait for `CleanupHook`.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use super::swap::{remove_any, swap_all, Swap};
use super::verify::verify_backup;
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
    /// The old copies set aside by the swap, for the clean-up after the services are back.
    set_aside: Arc<Mutex<Vec<PathBuf>>>,
}

impl RestoreHook {
    /// A restore of `targets` from `backup`; the old copies it sets aside are listed in `set_aside`.
    pub fn new(backup: BackupRow, targets: Vec<RestoreTarget>, set_aside: Arc<Mutex<Vec<PathBuf>>>) -> Self {
        Self {
            backup,
            targets,
            set_aside,
        }
    }
}

#[async_trait]
impl Hook for RestoreHook {
    fn name(&self) -> &str {
        "restore"
    }

    fn kind(&self) -> &str {
        "restore"
    }

    /// The archive is verified before anything is stopped: a corrupt backup never touches the deployment.
    async fn preflight(&self, ctx: &RunContext) -> Result<(), HookError> {
        let (backup, cancel) = (self.backup.clone(), ctx.cancel.clone());
        blocking(move || verify_backup(&backup, &cancel)).await
    }

    async fn run(&self, ctx: &mut RunContext) -> Result<(), HookError> {
        let archive = PathBuf::from(self.backup.path.clone().unwrap_or_default());
        let mut swaps = Vec::new();
        let mut plans = Vec::new();
        for (index, target) in self.targets.iter().enumerate() {
            let parent = target
                .host_path
                .parent()
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("/"));
            std::fs::create_dir_all(&parent).map_err(|source| HookError::Prepare {
                path: parent.clone(),
                source,
            })?;
            let name = target
                .host_path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let staged = parent.join(format!(".hookrun-restore-{}-{index}-{name}", ctx.run_id));
            let old = parent.join(format!(".hookrun-old-{}-{index}-{name}", ctx.run_id));
            plans.push(ExtractPlan {
                archive_prefix: target.archive_prefix.clone(),
                staging: staged.clone(),
            });
            swaps.push(Swap {
                target: target.host_path.clone(),
                staged,
                old,
            });
        }
        let cancel = ctx.cancel.clone();
        let staged: Vec<PathBuf> = plans.iter().map(|p| p.staging.clone()).collect();
        blocking(move || extract(&archive, &plans, &cancel).map(drop)).await?;
        if ctx.cancel.is_cancelled() {
            for path in &staged {
                let _ = remove_any(path);
            }
            return Err(HookError::Cancelled);
        }
        swap_all(&swaps)?;
        let mut set_aside = self.set_aside.lock().unwrap_or_else(|p| p.into_inner());
        set_aside.extend(
            swaps
                .into_iter()
                .map(|s| s.old)
                .filter(|old| old.symlink_metadata().is_ok()),
        );
        Ok(())
    }
}

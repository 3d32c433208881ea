//! The restore step of a restore run. Its preflight, while the services still run, extracts every target into a
//! staging folder beside it in one pass that also verifies the archive against its catalog row, and checks that each
//! extracted tree is the kind of thing (folder or file) its target is; only then may the run go on to stop the
//! services. The step itself, with the services stopped, swaps the staged folders in; the old copies (and any staged
//! folder never swapped) wait for `CleanupHook`.

use std::fs::Metadata;
use std::io;
use std::path::{Path, PathBuf};

use async_trait::async_trait;

use super::cleanup::{leftover_name, LeftoverKind, SharedLeftovers};
use hookrun_archive::remove_any;

use super::swap::{swap_all, Swap};
use super::verify::{check_against_row, usable_archive};
use crate::blocking::blocking;
use crate::{Hook, HookError, Progress, RunContext};
use hookrun_archive::{extract_reporting, ExtractPlan};
use hookrun_catalog::BackupRow;

/// One tree to put back: where it is in the archive and where it lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreTarget {
    pub archive_prefix: PathBuf,
    pub host_path: PathBuf,
    /// The recorded tree `host_path` lies in: `host_path` itself, unless `--only` names a part of a tree. Between the
    /// two, the live data must hold folders, never a symlink (a restore never writes through one).
    pub tree: PathBuf,
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
            let beside = |kind| parent.join(leftover_name(kind, run_id, index, &target.host_path));
            Swap {
                target: target.host_path.clone(),
                staged: beside(LeftoverKind::Staged),
                old: beside(LeftoverKind::Old),
            }
        })
        .collect()
}

/// Refuses a target reached through a symlink in the live data: the folders between its tree and it must be folders
/// (missing ones are created). A restored tree may hold symlinks pointing anywhere; a later `--only` of a path under
/// one must not put its staging folder, or swap, where the link points.
fn check_the_way(target: &RestoreTarget) -> Result<(), HookError> {
    let Ok(inside) = target.host_path.strip_prefix(&target.tree) else {
        return Err(HookError::Unrestorable {
            target: target.host_path.clone(),
            reason: format!("it is not inside its tree {}", target.tree.display()),
        });
    };
    let mut on_the_way = target.tree.clone();
    let parts: Vec<_> = inside.components().collect();
    for part in parts.iter().take(parts.len().saturating_sub(1)) {
        on_the_way.push(part);
        match on_the_way.symlink_metadata() {
            Ok(meta) if meta.is_dir() => {}
            Ok(meta) => {
                return Err(HookError::Unrestorable {
                    target: target.host_path.clone(),
                    reason: format!(
                        "{} is a {} in the live data, and a restore never writes through one; restore {} whole \
                         instead",
                        on_the_way.display(),
                        kind_name(&meta),
                        target.tree.display()
                    ),
                })
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(source) => {
                return Err(HookError::Prepare {
                    path: on_the_way,
                    source,
                })
            }
        }
    }
    Ok(())
}

/// Refuses to swap a tree in for a target of another kind (a file where a folder is, or a folder where a file is):
/// the services would find something else than they left. A symlink target counts as what it points to (the swap
/// replaces the link itself); a missing one as nothing to compare with.
fn check_kind(target: &RestoreTarget, staged: &Path) -> Result<(), HookError> {
    let archived = staged.symlink_metadata().map_err(|source| HookError::Prepare {
        path: staged.to_path_buf(),
        source,
    })?;
    let live = match target.host_path.symlink_metadata() {
        Ok(live) => live,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(HookError::Prepare {
                path: target.host_path.clone(),
                source,
            })
        }
    };
    let (pointed, described) = if live.file_type().is_symlink() {
        match std::fs::metadata(&target.host_path) {
            Ok(pointed) => {
                let described = format!("symlink to a {}", kind_name(&pointed));
                (pointed, described)
            }
            // A dangling link: the swap replaces it, nothing is there to compare with.
            Err(_) => return Ok(()),
        }
    } else {
        let described = kind_name(&live).to_string();
        (live, described)
    };
    if pointed.is_dir() == archived.is_dir() && pointed.is_file() == archived.is_file() {
        return Ok(());
    }
    Err(HookError::Unrestorable {
        target: target.host_path.clone(),
        reason: format!(
            "it is a {described}, and the archive holds a {} for it (`{}`)",
            kind_name(&archived),
            target.archive_prefix.display()
        ),
    })
}

/// What a file-system entry is, in words.
fn kind_name(meta: &Metadata) -> &'static str {
    let kind = meta.file_type();
    if kind.is_dir() {
        "folder"
    } else if kind.is_file() {
        "file"
    } else if kind.is_symlink() {
        "symlink"
    } else {
        "special file"
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

    /// Extracts and verifies in one pass before anything is stopped: a corrupt backup never touches the
    /// deployment, and the services are down only for the swap.
    async fn preflight(&self, ctx: &RunContext) -> Result<(), HookError> {
        let archive = usable_archive(&self.backup)?.to_path_buf();
        let swaps = swaps_for(ctx.run_id, &self.targets);
        let mut plans = Vec::new();
        for (swap, target) in swaps.iter().zip(&self.targets) {
            check_the_way(target)?;
            let parent = swap.staged.parent().expect("a name beside the target").to_path_buf();
            std::fs::create_dir_all(&parent).map_err(|source| HookError::Prepare { path: parent, source })?;
            plans.push(ExtractPlan {
                archive_prefix: target.archive_prefix.clone(),
                staging: swap.staged.clone(),
            });
        }
        let (backup, cancel, targets) = (self.backup.clone(), ctx.cancel.clone(), self.targets.clone());
        let (sink, total) = (ctx.progress.clone(), self.backup.size.unwrap_or(0).max(0) as u64);
        blocking(move || {
            let report = |done| {
                sink.report(Progress {
                    hook: "restore".into(),
                    done,
                    total,
                    unit: "bytes",
                })
            };
            let summary = extract_reporting(&archive, &plans, &cancel, &report)?;
            let checked = check_against_row(&backup, &summary.archive).and_then(|()| {
                targets
                    .iter()
                    .zip(&plans)
                    .try_for_each(|(target, plan)| check_kind(target, &plan.staging))
            });
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
        self.leftovers().swapped.extend(swaps);
        Ok(())
    }
}

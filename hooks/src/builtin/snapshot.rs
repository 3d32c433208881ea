//! The `snapshot` built-in: the minimal-downtime half of a backup. While the services are stopped it only copies
//! the trees its `backup` hook would archive into the run's staging folder; `start` then brings the services back,
//! and the `backup` hook, placed after `start` in the chain, archives the copies. The run is `completed` only once
//! the archive is.
//!
//! It is safe to put in every chain, and it never makes the downtime longer than the plain order does: by default
//! (`copies = "clone"`) it clones the files (`FICLONE`, XFS and btrfs), which takes little time and no room, and reads
//! those under 64 KiB into packs instead (`archive/pack.rs`), which is quicker than creating them. Where the storage
//! cannot clone the sources (ext4, tmpfs, another file system), or the copies would not fit in storage (both checked
//! before anything stops; the room again if the disk fills while copying), it writes the backup's archive itself, with
//! the services still stopped (the plain stop → backup → start order), and the `backup` hook after `start` has nothing
//! left to do. `copies = "any"` copies byte by byte where cloning is not possible: worth it only where the disk writes
//! the trees much faster than the CPU compresses them (on the bench VM's disk a 1 GiB copy took 6–28 s against 8 s for
//! the whole plain window: `bench/RESULTS.md`).

use std::path::PathBuf;
use std::sync::Mutex;

use async_trait::async_trait;

use super::{BackupConfig, BackupHook};
use crate::blocking::blocking;
use crate::context::SUMMARY_OUTPUT;
use crate::{Hook, HookError, RunContext, SnapshotTree};
use hookrun_archive::remove_any;
use hookrun_archive::tree_copy::{can_clone, copy_tree};
use hookrun_archive::{free_space, measure, SourceRoot};

/// Which copies the snapshot may take while the services are stopped (`copies = "clone" | "any"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Copies {
    /// Clones, which share the files' extents (small files go into packs); where the storage cannot clone, it
    /// archives in place.
    #[default]
    Clone,
    /// Clones, or byte copies where cloning is not possible.
    Any,
}

impl Copies {
    /// The value as `hooks.toml` spells it.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "clone" => Some(Copies::Clone),
            "any" => Some(Copies::Any),
            _ => None,
        }
    }
}

/// How this run's snapshot takes its consistent copy.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Mode {
    /// Copies the trees; the backup archives them after `start`.
    Copy,
    /// Archives the live trees while the services are stopped, for this reason.
    InPlace(String),
}

/// The `snapshot` hook, copying what the backup hook `backup` (configured with `config`) archives.
#[derive(Debug)]
pub struct SnapshotHook {
    name: String,
    /// The named backup: its config says what to copy, and it runs here when the copies do not fit.
    backup: BackupHook,
    copies: Copies,
    mode: Mutex<Mode>,
}

impl SnapshotHook {
    /// A snapshot hook called `name` for the backup hook `backup` configured with `config`, taking `copies`.
    pub fn new(name: impl Into<String>, backup: impl Into<String>, config: BackupConfig, copies: Copies) -> Self {
        Self {
            name: name.into(),
            backup: BackupHook::new(backup, config),
            copies,
            mode: Mutex::new(Mode::Copy),
        }
    }

    fn set_mode(&self, mode: Mode) {
        *self.mode.lock().unwrap_or_else(|p| p.into_inner()) = mode;
    }

    /// Writes the backup's archive now, with the services stopped, and tells the backup hook it is done.
    async fn archive_in_place(&self, ctx: &mut RunContext, why: String) -> Result<(), HookError> {
        // Expected wherever storage cannot clone (ext4): said once, in the run's summary, not as a warning.
        tracing::info!(hook = %self.name, "{why}: archiving with the services stopped");
        self.backup.run(ctx).await?;
        ctx.archived_by_snapshot = Some(self.backup.name().to_string());
        let summary = format!(
            "`{}` wrote the archive itself with the services stopped, as a plain backup does: {why}",
            self.name
        );
        let outputs = ctx.outputs.entry(self.name.clone()).or_default();
        outputs.insert("mode".into(), "in place".into());
        outputs.insert("reason".into(), why);
        outputs.insert(SUMMARY_OUTPUT.into(), summary);
        Ok(())
    }
}

#[async_trait]
impl Hook for SnapshotHook {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &str {
        "snapshot"
    }

    /// With `copies = "clone"` every tree must be clonable into the storage dir (where the staging folder is), and
    /// the copies need as much room as the trees themselves there. Otherwise the snapshot archives in place (the
    /// backup's own preflight checks the room for that).
    async fn preflight(&self, ctx: &RunContext) -> Result<(), HookError> {
        let trees = self
            .backup
            .config()
            .trees(&ctx.work_dir, ctx.project.as_deref())
            .await?;
        let roots: Vec<SourceRoot> = trees
            .iter()
            .map(|t| SourceRoot::new(&t.host_path, &t.archive_path))
            .collect();
        let storage = ctx.storage_dir.clone();
        let clones_only = self.copies == Copies::Clone;
        // Why the snapshot must archive in place, if it must; the room is measured only when clones are possible.
        let in_place = blocking(move || {
            if clones_only {
                for root in &roots {
                    if can_clone(&root.fs_path, &storage)? == Some(false) {
                        return Ok(Some(format!(
                            "storage {} cannot clone {} (no reflink; `copies = \"any\"` would copy it byte by byte)",
                            storage.display(),
                            root.fs_path.display()
                        )));
                    }
                }
            }
            let need = measure(&roots)?.bytes;
            let available = free_space(&storage).map_err(|source| HookError::Prepare {
                path: storage.clone(),
                source,
            })?;
            Ok((available < need).then(|| format!("the copies need {need} bytes, storage has {available} free")))
        })
        .await?;
        if let Some(why) = in_place {
            self.set_mode(Mode::InPlace(why));
            // Samples the trees now rather than while the services are stopped.
            self.backup.preflight(ctx).await?;
        }
        Ok(())
    }

    async fn run(&self, ctx: &mut RunContext) -> Result<(), HookError> {
        let mode = self.mode.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if let Mode::InPlace(why) = mode {
            return self.archive_in_place(ctx, why).await;
        }
        let plan = self.backup.config().plan(&ctx.work_dir, ctx.project.as_deref()).await?;
        ctx.mounts = plan.mounts;
        let trees = plan.trees;
        // The copies under `trees/` by their place in the archive, each tree's packs in `packs/<its number>`.
        let base = ctx.staging_dir.join("snapshot");
        let cancel = ctx.cancel.clone();
        let copied = blocking({
            let base = base.clone();
            move || {
                let mut copies = Vec::new();
                for (number, source) in trees.into_iter().enumerate() {
                    let copy = base.join("trees").join(&source.archive_path);
                    let packs = base.join("packs").join(number.to_string());
                    for folder in [copy.parent().map(PathBuf::from).unwrap_or_default(), packs.clone()] {
                        std::fs::create_dir_all(&folder)
                            .map_err(|source| HookError::Prepare { path: folder, source })?;
                    }
                    let taken = copy_tree(source.host_path.as_ref(), &copy, &packs, &cancel)?;
                    copies.push(SnapshotTree {
                        source,
                        copy,
                        packs: taken.packs,
                    });
                }
                Ok(copies)
            }
        })
        .await;
        match copied {
            Ok(copies) => {
                ctx.snapshot = copies;
                let outputs = ctx.outputs.entry(self.name.clone()).or_default();
                outputs.insert("mode".into(), "copy".into());
                Ok(())
            }
            // The copy could not be written (the disk filled meanwhile): drop it and archive in place.
            Err(HookError::Prepare { path, source }) => {
                let _ = remove_any(&base);
                self.archive_in_place(ctx, format!("cannot write the copy {}: {source}", path.display()))
                    .await
            }
            Err(other) => {
                let _ = remove_any(&base);
                Err(other)
            }
        }
    }
}

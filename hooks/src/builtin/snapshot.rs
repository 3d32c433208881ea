//! The `snapshot` built-in: the minimal-downtime half of a backup. While the services are stopped it only brings
//! the copies of the trees its `backup` hook would archive into the run's staging folder up to date; `start` then
//! brings the services back, and the `backup` hook, placed after `start` in the chain, archives the copies. The run
//! is `completed` only once the archive is.
//!
//! It is safe to put in every chain, and it never makes the downtime longer than the plain order does. By default
//! (`copies = "auto"`):
//! - where storage can clone the sources (XFS, btrfs), it clones the files (`FICLONE`) while the services are
//!   stopped, which takes little time and no room, and reads those under 64 KiB into packs instead
//!   (`archive/pack.rs`), which is quicker than creating them;
//! - elsewhere (ext4, the file system most hosts run) it pre-copies (`archive/pre_copy.rs`): it copies the trees
//!   while the services still run, before the chain's first hook, and once they are stopped copies again only what
//!   changed since (size, mtime and ctime to the nanosecond, inode) and removes what was deleted;
//! - without room for the copies and the archive (checked before anything stops; again if the disk fills while
//!   copying) it writes the backup's archive itself, with the services stopped (the plain stop → backup → start
//!   order), says so, and the `backup` hook after `start` has nothing left to do.
//!
//! `copies = "clone"` never pre-copies (clones, or the archive in place), `copies = "pre-copy"` always does (even where
//! storage could clone), and `copies = "any"` copies byte by byte with the services stopped where cloning is not
//! possible (worth it only where the disk writes much faster than the CPU compresses).

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use async_trait::async_trait;

use super::{BackupConfig, BackupHook};
use crate::blocking::blocking;
use crate::context::SUMMARY_OUTPUT;
use crate::{Hook, HookError, Progress, RunContext, SnapshotTree};
use hookrun_archive::pre_copy::{pre_copy, PreCopy, Refreshed};
use hookrun_archive::remove_any;
use hookrun_archive::tree_copy::{can_clone, copy_tree};
use hookrun_archive::{estimate, free_space, measure, SourceRoot};

/// Which copies the snapshot may take (`copies = "auto" | "clone" | "pre-copy" | "any"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Copies {
    /// Clones where storage can clone the sources, else a pre-copy; without room for it, the archive in place.
    #[default]
    Auto,
    /// Clones, which share the files' extents (small files go into packs); where the storage cannot clone, it
    /// archives in place.
    Clone,
    /// A pre-copy while the services run, refreshed while they are stopped, wherever there is room for it.
    PreCopy,
    /// Clones, or byte copies with the services stopped where cloning is not possible.
    Any,
}

impl Copies {
    /// The value as `hooks.toml` spells it.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "auto" => Some(Copies::Auto),
            "clone" => Some(Copies::Clone),
            "pre-copy" => Some(Copies::PreCopy),
            "any" => Some(Copies::Any),
            _ => None,
        }
    }
}

/// Room a file or folder may take beyond its content (one block).
const BLOCK: u64 = 4096;

/// How this run's snapshot takes its consistent copy.
#[derive(Debug)]
enum Mode {
    /// Copies the trees while the services are stopped; the backup archives them after `start`.
    Copy,
    /// Pre-copies the trees (of `bytes` content, as the preflight measured them) before the chain.
    PreCopy { bytes: u64 },
    /// Pre-copied: refreshes the copies while the services are stopped.
    PreCopied(PreCopied),
    /// Archives the live trees while the services are stopped, for this reason.
    InPlace(String),
}

/// What the pre-copy took, before the chain.
#[derive(Debug)]
struct PreCopied {
    mounts: Vec<crate::MountFate>,
    trees: Vec<(SnapshotTree, PreCopy)>,
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

    fn take_mode(&self) -> Mode {
        std::mem::replace(&mut *self.mode.lock().unwrap_or_else(|p| p.into_inner()), Mode::Copy)
    }

    /// Falls back to archiving in place, for `why`: says so in the log, and samples the trees for the backup's
    /// free-space check now, while the services still run.
    async fn fall_back(&self, ctx: &RunContext, why: String) -> Result<(), HookError> {
        tracing::info!(hook = %self.name, "{why}: the archive will be written with the services stopped");
        self.set_mode(Mode::InPlace(why));
        self.backup.preflight(ctx).await
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

    /// Chooses how the copy is taken. Clones (`auto`, `clone`, `any`) need every tree clonable into the storage dir
    /// (where the staging folder is); where one is not, `clone` archives in place and `auto` pre-copies. The copies
    /// must fit in storage — for a pre-copy, which takes room, together with the archive (the trees' bytes, a block
    /// per file and folder, and the archive's expected size); otherwise the snapshot archives in place (the
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
        let (copies, compression) = (self.copies, self.backup.config().compression);
        // The mode, or why the snapshot must archive in place.
        let chosen = blocking(move || {
            let mut pre_copy = copies == Copies::PreCopy;
            if copies != Copies::PreCopy {
                for root in &roots {
                    if can_clone(&root.fs_path, &storage)? == Some(false) {
                        match copies {
                            Copies::Auto => pre_copy = true,
                            Copies::Any => {}
                            _ => {
                                return Ok(Err(format!(
                                    "storage {} cannot clone {} (no reflink; `copies = \"auto\"` would pre-copy it)",
                                    storage.display(),
                                    root.fs_path.display()
                                )))
                            }
                        }
                    }
                }
            }
            let (need, bytes) = if pre_copy {
                let expected = estimate(&roots, compression)?;
                let need = expected.bytes + expected.files * BLOCK + expected.estimated_archive_bytes;
                (need, expected.bytes)
            } else {
                let bytes = measure(&roots)?.bytes;
                (bytes, bytes)
            };
            let available = free_space(&storage).map_err(|source| HookError::Prepare {
                path: storage.clone(),
                source,
            })?;
            if available < need {
                let what = if pre_copy {
                    "the pre-copy and the archive need"
                } else {
                    "the copies need"
                };
                return Ok(Err(format!("{what} {need} bytes, storage has {available} free")));
            }
            Ok(Ok(if pre_copy { Mode::PreCopy { bytes } } else { Mode::Copy }))
        })
        .await?;
        match chosen {
            Ok(mode) => self.set_mode(mode),
            Err(why) => self.fall_back(ctx, why).await?,
        }
        Ok(())
    }

    /// A pre-copy: copies every tree into the staging folder while the services still run, remembering what each
    /// entry looked like. Without room after all (the disk filled), the snapshot archives in place.
    async fn prepare(&self, ctx: &mut RunContext) -> Result<Option<String>, HookError> {
        // The progress's total is what the preflight measured.
        let Mode::PreCopy { bytes: total } = *self.mode.lock().unwrap_or_else(|p| p.into_inner()) else {
            return Ok(None);
        };
        let started = std::time::Instant::now();
        let plan = self.backup.config().plan(&ctx.work_dir, ctx.project.as_deref()).await?;
        let base = ctx.staging_dir.join("snapshot");
        let cancel = ctx.cancel.clone();
        let (sink, name) = (ctx.progress.clone(), self.name.clone());
        let copied = blocking({
            let base = base.clone();
            move || {
                let mut copies = Vec::new();
                let mut before = 0;
                for source in plan.trees {
                    let copy = base.join("trees").join(&source.archive_path);
                    if let Some(folder) = copy.parent() {
                        std::fs::create_dir_all(folder).map_err(|e| HookError::Prepare {
                            path: folder.to_path_buf(),
                            source: e,
                        })?;
                    }
                    let report = |done: u64| {
                        sink.report(Progress {
                            hook: name.clone(),
                            done: before + done,
                            total,
                            unit: "bytes",
                        })
                    };
                    let taken = pre_copy(source.host_path.as_ref(), &copy, &cancel, &report)?;
                    before += taken.bytes;
                    let tree = SnapshotTree {
                        source,
                        copy,
                        packs: Vec::new(),
                    };
                    copies.push((tree, taken));
                }
                Ok(copies)
            }
        })
        .await;
        match copied {
            Ok(trees) => {
                let (entries, bytes) = trees
                    .iter()
                    .fold((0, 0), |(e, b), (_, t)| (e + t.entries(), b + t.bytes));
                let took = started.elapsed();
                let outputs = ctx.outputs.entry(self.name.clone()).or_default();
                outputs.insert("pre_copy_ms".into(), took.as_millis().to_string());
                outputs.insert("pre_copied_entries".into(), entries.to_string());
                outputs.insert("pre_copied_bytes".into(), bytes.to_string());
                self.set_mode(Mode::PreCopied(PreCopied {
                    mounts: plan.mounts,
                    trees,
                }));
                Ok(Some(format!(
                    "pre-copied {entries} entries ({bytes} bytes) with the services running; only what changes \
                     until the stop is copied again"
                )))
            }
            Err(HookError::Prepare { path, source }) => {
                let _ = remove_any(&base);
                let why = format!("cannot write the pre-copy {}: {source}", path.display());
                self.fall_back(ctx, why.clone()).await?;
                Ok(Some(format!(
                    "{why}: the archive will be written with the services stopped"
                )))
            }
            Err(other) => {
                let _ = remove_any(&base);
                Err(other)
            }
        }
    }

    async fn run(&self, ctx: &mut RunContext) -> Result<(), HookError> {
        let pre_copied = match self.take_mode() {
            Mode::InPlace(why) => return self.archive_in_place(ctx, why).await,
            Mode::PreCopied(pre_copied) => pre_copied,
            Mode::PreCopy { .. } | Mode::Copy => return self.copy(ctx).await,
        };
        // The services are stopped: only what changed since the pre-copy is copied again.
        ctx.mounts = pre_copied.mounts;
        let base = ctx.staging_dir.join("snapshot");
        let cancel = ctx.cancel.clone();
        let refreshed = blocking(move || {
            let mut copies = Vec::new();
            let mut done = Refreshed::default();
            for (tree, pre_copy) in pre_copied.trees {
                let did = pre_copy.refresh(&cancel)?;
                done.copied += did.copied;
                done.bytes += did.bytes;
                done.removed += did.removed;
                done.unchanged += did.unchanged;
                copies.push(tree);
            }
            Ok((copies, done))
        })
        .await;
        match refreshed {
            Ok((copies, done)) => {
                ctx.snapshot = copies;
                let outputs = ctx.outputs.entry(self.name.clone()).or_default();
                outputs.insert("mode".into(), "pre-copy".into());
                outputs.insert("refreshed_entries".into(), done.copied.to_string());
                outputs.insert("refreshed_bytes".into(), done.bytes.to_string());
                outputs.insert("removed_entries".into(), done.removed.to_string());
                outputs.insert("unchanged_entries".into(), done.unchanged.to_string());
                Ok(())
            }
            Err(error) => self.copy_failed(ctx, &base, error).await,
        }
    }
}

impl SnapshotHook {
    /// Copies (clones) the trees now, with the services stopped.
    async fn copy(&self, ctx: &mut RunContext) -> Result<(), HookError> {
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
            Err(error) => self.copy_failed(ctx, &base, error).await,
        }
    }

    /// The copy under `base` could not be made: it is removed; when it could not be written (the disk filled
    /// meanwhile) the archive is written in place instead.
    async fn copy_failed(&self, ctx: &mut RunContext, base: &Path, error: HookError) -> Result<(), HookError> {
        let _ = remove_any(base);
        match error {
            HookError::Prepare { path, source } => {
                self.archive_in_place(ctx, format!("cannot write the copy {}: {source}", path.display()))
                    .await
            }
            other => Err(other),
        }
    }
}

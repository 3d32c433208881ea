//! The `snapshot` built-in: the minimal-downtime half of a backup. While the services are stopped it only copies
//! the trees its `backup` hook would archive into the run's staging folder; `start` then brings the services back,
//! and the `backup` hook, placed after `start` in the chain, archives the copies. The run is `completed` only once
//! the archive is.

use std::path::PathBuf;

use async_trait::async_trait;

use super::BackupConfig;
use crate::archive::{check_free_space, measure, SourceRoot};
use crate::blocking::blocking;
use crate::snapshot::copy_tree;
use crate::{Hook, HookError, RunContext, SnapshotTree};

/// The `snapshot` hook, copying what the backup hook configured with `config` archives.
#[derive(Debug)]
pub struct SnapshotHook {
    name: String,
    backup: BackupConfig,
}

impl SnapshotHook {
    /// A snapshot hook called `name` for the backup configured with `backup`.
    pub fn new(name: impl Into<String>, backup: BackupConfig) -> Self {
        Self {
            name: name.into(),
            backup,
        }
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

    /// The copies need as much room as the trees themselves, in the storage dir (where the staging folder is).
    async fn preflight(&self, ctx: &RunContext) -> Result<(), HookError> {
        let trees = self.backup.trees(&ctx.work_dir, ctx.project.as_deref()).await?;
        let roots: Vec<SourceRoot> = trees
            .iter()
            .map(|t| SourceRoot::new(&t.host_path, &t.archive_path))
            .collect();
        let storage = ctx.storage_dir.clone();
        blocking(move || check_free_space(&storage, measure(&roots)?.bytes, 1.0)).await
    }

    async fn run(&self, ctx: &mut RunContext) -> Result<(), HookError> {
        let trees = self.backup.trees(&ctx.work_dir, ctx.project.as_deref()).await?;
        let base = ctx.staging_dir.join("snapshot");
        let cancel = ctx.cancel.clone();
        let copies: Vec<SnapshotTree> = trees
            .into_iter()
            .map(|source| SnapshotTree {
                copy: base.join(&source.archive_path),
                source,
            })
            .collect();
        let planned = copies.clone();
        blocking(move || {
            for tree in &planned {
                let parent = tree.copy.parent().map(PathBuf::from).unwrap_or_default();
                std::fs::create_dir_all(&parent).map_err(|source| HookError::Prepare { path: parent, source })?;
                copy_tree(tree.source.host_path.as_ref(), &tree.copy, &cancel)?;
            }
            Ok(())
        })
        .await?;
        ctx.snapshot = copies;
        Ok(())
    }
}

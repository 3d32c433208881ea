//! The deletion every command uses: mark the row, delete its remote copies (each forgotten as its object goes),
//! remove the archive and fsync its folder, remove the image tags that kept what the backup's deployment ran, then
//! remove the row — a crash (or an unreachable remote) in between leaves a marked row that the next `delete` or
//! `prune` finishes, never one that claims a missing archive.

use std::path::Path;

use hookrun_archive::{LocalDir, Storage};
use hookrun_catalog::{BackupRow, Catalog, CopyRow};

use crate::config::Config;
use crate::deployment::release;

/// Deletes one backup, every copy first, crash-safely. Image tags that cannot be removed (the engine is
/// unreachable) are named in a warning, for `docker rmi`; the backup goes all the same. A copy on a remote that is
/// no longer configured is named in a warning and forgotten (its object is left).
pub async fn delete_backup(config: &Config, catalog: &Catalog, row: &BackupRow) -> anyhow::Result<()> {
    catalog.mark_deleting(row.id)?;
    for copy in &row.copies {
        delete_copy(config, catalog, copy).await?;
    }
    remove_local_archive(row)?;
    if let Err(e) = release(catalog, row.id).await {
        let tags: Vec<String> = catalog
            .deployment(row.id)?
            .containers
            .into_iter()
            .filter_map(|c| c.rollback_tag)
            .collect();
        tracing::warn!(
            "backup {}: cannot remove its image tags ({e:#}); remove them with `docker rmi {}`",
            row.id,
            tags.join(" ")
        );
    }
    catalog.remove_backup(row.id)?;
    Ok(())
}

/// Removes backup `row`'s local archive, durably (one that is not there is not an error).
pub fn remove_local_archive(row: &BackupRow) -> anyhow::Result<()> {
    if let Some(path) = row.path.as_deref().map(Path::new) {
        // The archive's folder is the storage it lives in (a row keeps its path across `migrate-storage`).
        let (Some(dir), Some(name)) = (path.parent(), path.file_name().and_then(|n| n.to_str())) else {
            anyhow::bail!("backup {} records no archive name: {}", row.id, path.display());
        };
        LocalDir::new(dir).remove(name)?;
    }
    Ok(())
}

/// Deletes one remote copy's object and forgets the copy.
pub async fn delete_copy(config: &Config, catalog: &Catalog, copy: &CopyRow) -> anyhow::Result<()> {
    if config.remote(&copy.location).is_none() {
        tracing::warn!(
            "backup {}: remote {} is no longer configured; its object {} is left there",
            copy.backup_id,
            copy.location,
            copy.key
        );
    } else {
        crate::remotes::open_for(config, copy)?.delete(&copy.key).await?;
    }
    catalog.remove_copy(copy.backup_id, &copy.location)?;
    Ok(())
}

/// Finishes deletions a crash interrupted (rows still marked).
pub async fn finish_interrupted_deletions(config: &Config, catalog: &Catalog) -> anyhow::Result<()> {
    for row in catalog
        .list_backups(&Default::default())?
        .into_iter()
        .filter(|r| r.deleting)
    {
        delete_backup(config, catalog, &row).await?;
    }
    Ok(())
}

//! The deletion every command uses: mark the row, remove the archive and fsync its folder, remove the image tags
//! that kept what the backup's deployment ran, then remove the row — a crash in between leaves a marked row, never
//! one that claims a missing archive.

use std::path::Path;

use hookrun_archive::{LocalDir, Storage};
use hookrun_catalog::{BackupRow, Catalog};

use crate::deployment::release;

/// Deletes one backup, archive first, crash-safely. Image tags that cannot be removed (the engine is unreachable)
/// are named in a warning, for `docker rmi`; the backup goes all the same.
pub async fn delete_backup(catalog: &Catalog, row: &BackupRow) -> anyhow::Result<()> {
    catalog.mark_deleting(row.id)?;
    if let Some(path) = row.path.as_deref().map(Path::new) {
        // The archive's folder is the storage it lives in (a row keeps its path across `migrate-storage`).
        let (Some(dir), Some(name)) = (path.parent(), path.file_name().and_then(|n| n.to_str())) else {
            anyhow::bail!("backup {} records no archive name: {}", row.id, path.display());
        };
        LocalDir::new(dir).remove(name)?;
    }
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

/// Finishes deletions a crash interrupted (rows still marked).
pub async fn finish_interrupted_deletions(catalog: &Catalog) -> anyhow::Result<()> {
    for row in catalog
        .list_backups(&Default::default())?
        .into_iter()
        .filter(|r| r.deleting)
    {
        delete_backup(catalog, &row).await?;
    }
    Ok(())
}

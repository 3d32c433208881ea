//! The deletion every command uses: mark the row, remove the archive and fsync its folder, then remove the row — a
//! crash in between leaves a marked row, never one that claims a missing archive.

use std::path::Path;

use hookrun_archive::{LocalDir, Storage};
use hookrun_catalog::{BackupRow, Catalog};

/// Deletes one backup, archive first, crash-safely.
pub fn delete_backup(catalog: &Catalog, row: &BackupRow) -> anyhow::Result<()> {
    catalog.mark_deleting(row.id)?;
    if let Some(path) = row.path.as_deref().map(Path::new) {
        // The archive's folder is the storage it lives in (a row keeps its path across `migrate-storage`).
        let (Some(dir), Some(name)) = (path.parent(), path.file_name().and_then(|n| n.to_str())) else {
            anyhow::bail!("backup {} records no archive name: {}", row.id, path.display());
        };
        LocalDir::new(dir).remove(name)?;
    }
    catalog.remove_backup(row.id)?;
    Ok(())
}

/// Finishes deletions a crash interrupted (rows still marked).
pub fn finish_interrupted_deletions(catalog: &Catalog) -> anyhow::Result<()> {
    for row in catalog
        .list_backups(&Default::default())?
        .into_iter()
        .filter(|r| r.deleting)
    {
        delete_backup(catalog, &row)?;
    }
    Ok(())
}

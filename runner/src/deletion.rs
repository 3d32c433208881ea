//! The deletion every command uses: mark the row, remove the archive and fsync its folder, then remove the row — a
//! crash in between leaves a marked row, never one that claims a missing archive.

use std::path::Path;

use hookrun_archive::fsync_dir;
use hookrun_catalog::{BackupRow, Catalog};

/// Deletes one backup, archive first, crash-safely.
pub fn delete_backup(catalog: &Catalog, row: &BackupRow) -> anyhow::Result<()> {
    catalog.mark_deleting(row.id)?;
    if let Some(path) = row.path.as_deref().map(Path::new) {
        match std::fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => anyhow::bail!("cannot remove {}: {e}", path.display()),
        }
        if let Some(dir) = path.parent() {
            fsync_dir(dir).map_err(|e| anyhow::anyhow!("cannot sync {}: {e}", dir.display()))?;
        }
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

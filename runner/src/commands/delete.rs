//! `hookrun delete ID`, and the deletion every command uses: mark the row, remove the archive and fsync its folder,
//! then remove the row — a crash in between leaves a marked row, never one that claims a missing archive.

use std::path::Path;

use hookrun_archive::fsync_dir;
use hookrun_catalog::{BackupRow, Catalog};

use crate::config::Check;
use crate::exit::{Exit, UsageError};
use crate::report::out;
use crate::session::Session;

/// Deletes backup `id`.
pub async fn delete(config_path: &Path, id: i64, json: bool) -> anyhow::Result<Exit> {
    let session = Session::open(config_path, Check::Shape, json).await?;
    let catalog = &session.catalog;
    let row = catalog
        .backup(id)?
        .ok_or_else(|| UsageError(format!("no backup with id {id}")))?;
    delete_backup(catalog, &row)?;
    if json {
        out::document(&serde_json::json!({ "deleted": [id] }));
    } else {
        crate::say!("deleted backup {id} ({})", row.path.as_deref().unwrap_or("no archive"));
    }
    Ok(Exit::Success)
}

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

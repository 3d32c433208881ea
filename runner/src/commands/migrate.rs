//! `hookrun migrate-storage NEW_DIR`: moves every archive to a new storage dir, one at a time, each safe on its own:
//! copy (or rename on the same filesystem), fsync, verify the SHA-256 in the new place, point the catalog at it,
//! then remove the old file. Interrupted, it resumes where it stopped when run again.

use std::fs::File;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use anyhow::Context;
use hookrun_archive::{create_private, create_private_dir, fsync_dir};
use hookrun_catalog::{BackupRow, Catalog};

use crate::exit::Exit;
use crate::results::{MigrateResult, Moved};
use crate::session::Session;
use crate::storage::file_sha256;

/// Moves every archive into `new_dir`, telling `on_moved` about each one as soon as it is in its new place.
pub fn migrate(
    session: &Session,
    new_dir: &Path,
    on_moved: &mut dyn FnMut(&Moved),
) -> anyhow::Result<(MigrateResult, Exit)> {
    let (config, catalog) = (&session.config, &session.catalog);
    create_private_dir(new_dir).with_context(|| format!("cannot create {}", new_dir.display()))?;
    let new_dir = std::path::absolute(new_dir)?;
    let mut moved = Vec::new();
    for row in catalog.list_backups(&Default::default())? {
        let Some(old) = row.path.as_deref().map(PathBuf::from) else {
            continue;
        };
        if row.deleting || old.parent() == Some(new_dir.as_path()) {
            continue;
        }
        let target = new_dir.join(old.file_name().context("an archive path without a file name")?);
        move_one(catalog, &row, &old, &target)?;
        on_moved(&Moved { id: row.id, to: target });
        moved.push(row.id);
    }
    let catalog_note = if config.runner.catalog.starts_with(&config.runner.storage_dir) {
        format!(
            " and catalog = \"{}\" (the catalog stays where it is)",
            config.runner.catalog.display()
        )
    } else {
        String::new()
    };
    let next = format!(
        "now set storage_dir = \"{}\"{catalog_note} in the [runner] table of {}",
        new_dir.display(),
        config.path.display()
    );
    let result = MigrateResult {
        moved,
        storage_dir: new_dir,
        next,
    };
    Ok((result, Exit::Success))
}

/// Moves one archive; safe to repeat after an interruption at any point.
fn move_one(catalog: &Catalog, row: &BackupRow, old: &Path, target: &Path) -> anyhow::Result<()> {
    let expected = row.sha256.clone().unwrap_or_default();
    if !old.exists() {
        // Interrupted after the old file went: the copy in the new place must be the one the catalog knows.
        anyhow::ensure!(
            target.exists() && file_sha256(target)? == expected,
            "backup {}: {} is gone",
            row.id,
            old.display()
        );
        catalog.move_backup(row.id, target)?;
        return Ok(());
    }
    if target.exists() && file_sha256(target)? != expected {
        std::fs::remove_file(target)?; // a stale or partial copy from an earlier attempt
    }
    if !target.exists() {
        let same_fs = old.metadata()?.dev() == target.parent().unwrap_or(Path::new("/")).metadata()?.dev();
        if same_fs {
            std::fs::hard_link(old, target)?;
        } else {
            copy_durably(old, target)?;
        }
        fsync_dir(target.parent().unwrap_or(Path::new("/")))?;
    }
    let found = file_sha256(target)?;
    anyhow::ensure!(
        found == expected,
        "backup {}: the copy in {} has SHA-256 {found}, expected {expected}",
        row.id,
        target.display()
    );
    catalog.move_backup(row.id, target)?;
    std::fs::remove_file(old)?;
    fsync_dir(old.parent().unwrap_or(Path::new("/")))?;
    Ok(())
}

/// Copies through a temporary name beside `target`, fsyncs, renames into place.
fn copy_durably(from: &Path, target: &Path) -> anyhow::Result<()> {
    let tmp = target.with_file_name(format!(
        ".{}.partial",
        target.file_name().unwrap_or_default().to_string_lossy()
    ));
    let _ = std::fs::remove_file(&tmp);
    let result = (|| -> io::Result<()> {
        let mut reader = File::open(from)?;
        let mut writer = create_private(&tmp)?;
        io::copy(&mut reader, &mut writer)?;
        writer.sync_all()?;
        std::fs::rename(&tmp, target)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.with_context(|| format!("cannot copy {} to {}", from.display(), target.display()))
}

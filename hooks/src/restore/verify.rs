//! Verifying a backup against its catalog row: the archive read to the end, its SHA-256, size and counts compared,
//! and every rule a restore applies applied to the trees it records, so that only a restorable backup passes.

use std::path::{Path, PathBuf};

use tokio_util::sync::CancellationToken;

use crate::HookError;
use hookrun_archive::{check_extraction, ArchiveContents, ArchiveError};
use hookrun_catalog::{BackupRow, BackupStatus};

/// Reads backup `row`'s archive to the end and checks it against the row, in one pass that also runs the
/// extraction's rules over the entries under `trees` (the archive paths the catalog records for it) without writing
/// anything: a backup a restore would refuse fails here. Reports the archive's bytes read to `progress` (the total
/// is the archive's size). Blocking: call it off the async threads.
pub fn verify_backup(
    row: &BackupRow,
    trees: &[PathBuf],
    cancel: &CancellationToken,
    progress: &dyn Fn(u64),
) -> Result<(), HookError> {
    let path = usable_archive(row)?;
    let checked = check_extraction(path, trees, cancel, progress).map_err(|error| match error {
        // Trees that overlap (recorded twice, or one inside another): no restore of the whole backup could run.
        ArchiveError::Misconfigured(why) => refuse(&path.to_string_lossy(), format!("cannot be restored: {why}")),
        other => other.into(),
    })?;
    check_against_row(row, &checked.archive)
}

/// The archive of a backup that may be read for a restore: a completed backup with a file.
pub fn usable_archive(row: &BackupRow) -> Result<&Path, HookError> {
    if row.status != BackupStatus::Completed {
        let why = row.error.as_deref().unwrap_or("not usable");
        return Err(refuse(
            row.path.as_deref().unwrap_or("-"),
            format!("backup {} is {}: {why}", row.id, row.status),
        ));
    }
    row.path
        .as_deref()
        .map(Path::new)
        .ok_or_else(|| refuse("-", format!("backup {} has no archive", row.id)))
}

/// Compares what a full read of the archive found with what the catalog recorded when it was written.
pub fn check_against_row(row: &BackupRow, contents: &ArchiveContents) -> Result<(), HookError> {
    let recorded = [
        (
            "SHA-256",
            row.sha256.clone().unwrap_or_default(),
            contents.sha256.clone(),
        ),
        ("size", opt(row.size), contents.size.to_string()),
        ("file count", opt(row.file_count), contents.file_count.to_string()),
        ("entry count", opt(row.entry_count), contents.entry_count.to_string()),
        ("byte count", opt(row.bytes), contents.bytes.to_string()),
    ];
    for (what, catalog, archive) in recorded {
        if catalog != archive {
            return Err(refuse(
                row.path.as_deref().unwrap_or("-"),
                format!("its {what} is {archive}, the catalog recorded {catalog}"),
            ));
        }
    }
    Ok(())
}

fn refuse(path: &str, reason: String) -> HookError {
    HookError::Archive(ArchiveError::ArchiveCheck {
        path: path.into(),
        reason,
    })
}

fn opt(value: Option<i64>) -> String {
    value.map_or_else(|| "nothing".to_string(), |v| v.to_string())
}

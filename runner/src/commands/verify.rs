//! `hookrun verify [ID | --all]`: reads each archive to the end — SHA-256, every entry, the gzip trailer — compares
//! it with the catalog, checks on the way that a restore of its trees would accept every entry, and records the
//! result.

use std::path::{Path, PathBuf};

use chrono::Utc;
use hookrun_catalog::{BackupFilter, BackupRow, BackupStatus, Catalog};
use hookrun_hooks::restore;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::config::{self, Check};
use crate::exit::{Exit, UsageError};
use crate::report::out;
use crate::storage::unknown_archives;

#[derive(Serialize)]
struct Verified {
    id: i64,
    path: Option<String>,
    ok: bool,
    error: Option<String>,
}

/// Verifies backup `id`, or every completed backup with `all`.
pub async fn verify(config_path: &Path, id: Option<i64>, all: bool, json: bool) -> anyhow::Result<Exit> {
    let config = config::load(config_path, Check::Shape)?;
    let catalog = Catalog::open(&config.runner.catalog)?;
    let rows = match (id, all) {
        (Some(id), false) => vec![catalog
            .backup(id)?
            .ok_or_else(|| UsageError(format!("no backup with id {id}")))?],
        (None, true) => catalog.list_backups(&BackupFilter {
            status: Some(BackupStatus::Completed),
            ..Default::default()
        })?,
        _ => return Err(UsageError("give a backup ID or --all".into()).into()),
    };
    let mut results = Vec::new();
    for row in rows.iter().filter(|r| !r.deleting) {
        let outcome = verify_backup(&catalog, row).await;
        if !json {
            match &outcome {
                Ok(()) => crate::say!("ok      {} {}", row.id, row.path.as_deref().unwrap_or("-")),
                Err(e) => crate::say!("FAILED  {} {e}", row.id),
            }
        }
        results.push(Verified {
            id: row.id,
            path: row.path.clone(),
            ok: outcome.is_ok(),
            error: outcome.err(),
        });
    }
    // Every archive in storage is the catalog's: with --all, one it does not know fails the check too.
    let unknown = if all {
        unknown_archives(&config.runner.storage_dir, &catalog)?
    } else {
        Vec::new()
    };
    if json {
        out::document(&serde_json::json!({ "verified": results, "unknown_archives": unknown }));
    } else {
        for file in &unknown {
            out::line(&format!("FAILED  {}", file.describe()));
        }
    }
    Ok(if results.iter().all(|r| r.ok) && unknown.is_empty() {
        Exit::Success
    } else {
        Exit::Failed
    })
}

/// Verifies backup `row` (its archive, and that a restore of every tree the catalog records for it would accept
/// it) and records the result. The error is one line naming the archive.
pub async fn verify_backup(catalog: &Catalog, row: &BackupRow) -> Result<(), String> {
    let checked = row.clone();
    let trees: Vec<PathBuf> = catalog
        .backup_sources(row.id)
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|source| source.archive_path.into())
        .collect();
    let result =
        tokio::task::spawn_blocking(move || restore::verify_backup(&checked, &trees, &CancellationToken::new()))
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r.map_err(|e| e.to_string()));
    let error = result.as_ref().err().map(String::as_str);
    if let Err(e) = catalog.record_verification(row.id, result.is_ok(), error, Utc::now()) {
        tracing::error!("cannot record the verification of backup {}: {e}", row.id);
    }
    result
}

//! `hookrun list`: the backups in the catalog, each with its last verification, and the archives in storage the
//! catalog does not know.

use std::path::Path;

use hookrun_archive::size::human_bytes;
use hookrun_catalog::{BackupFilter, BackupRow, BackupStatus, Catalog};

use crate::config::{self, Check};
use crate::exit::Exit;
use crate::report::out;
use crate::session::warn_about_interrupted_runs;
use crate::storage::unknown_archives;

/// Lists backups, optionally of one type and status.
pub fn list(config_path: &Path, kind: Option<String>, status: Option<String>, json: bool) -> anyhow::Result<Exit> {
    let config = config::load(config_path, Check::Shape)?;
    let filter = BackupFilter {
        kind,
        status: status.as_deref().and_then(BackupStatus::parse),
    };
    let (backups, unknown) = if config.runner.catalog.exists() {
        let catalog = Catalog::open(&config.runner.catalog)?;
        warn_about_interrupted_runs(&catalog)?;
        (
            catalog.list_backups(&filter)?,
            unknown_archives(&config.runner.storage_dir, &catalog)?,
        )
    } else {
        (Vec::new(), Vec::new())
    };
    if json {
        out::document(&serde_json::json!({ "backups": backups, "unknown_archives": unknown }));
        return Ok(Exit::Success);
    }
    if backups.is_empty() {
        crate::say!("no backups");
    } else {
        crate::say!(
            "{:>4}  {:<11}  {:<12}  {:<9}  {:<8}  {:<24}  {:>10}  FILE",
            "ID",
            "TYPE",
            "VERSION",
            "STATUS",
            "VERIFIED",
            "CREATED",
            "SIZE"
        );
    }
    for b in &backups {
        let file = b
            .path
            .as_deref()
            .and_then(|p| Path::new(p).file_name())
            .map(|f| f.to_string_lossy().into_owned());
        crate::say!(
            "{:>4}  {:<11}  {:<12}  {:<9}  {:<8}  {:<24}  {:>10}  {}",
            b.id,
            b.kind,
            b.version,
            b.status,
            verified(b),
            b.created_at,
            b.size.map(|s| human_bytes(s as u64)).unwrap_or_else(|| "-".into()),
            file.unwrap_or_else(|| "-".into()),
        );
    }
    for b in backups.iter().filter(|b| b.verify_ok == Some(false)) {
        crate::say!(
            "backup {} failed its last verification ({}): {}",
            b.id,
            b.verified_at.as_deref().unwrap_or("-"),
            b.verify_error.as_deref().unwrap_or("no reason recorded")
        );
    }
    for file in &unknown {
        out::line(&file.describe());
    }
    Ok(Exit::Success)
}

/// The VERIFIED column: the outcome of the last `hookrun verify` (`-` when never verified).
fn verified(b: &BackupRow) -> &'static str {
    match b.verify_ok {
        None => "-",
        Some(true) => "ok",
        Some(false) => "FAILED",
    }
}

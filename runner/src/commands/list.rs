//! `hookrun list`: the backups in the catalog.

use std::path::Path;

use hookrun_hooks::catalog::{BackupFilter, BackupStatus, Catalog};
use hookrun_hooks::size::human_bytes;

use crate::config::{self, Check};
use crate::exit::Exit;
use crate::report::out;
use crate::session::warn_about_interrupted_runs;

/// Lists backups, optionally of one type and status.
pub fn list(config_path: &Path, kind: Option<String>, status: Option<String>, json: bool) -> anyhow::Result<Exit> {
    let config = config::load(config_path, Check::Shape)?;
    let filter = BackupFilter {
        kind,
        status: status.as_deref().and_then(BackupStatus::parse),
    };
    let backups = if config.runner.catalog.exists() {
        let catalog = Catalog::open(&config.runner.catalog)?;
        warn_about_interrupted_runs(&catalog)?;
        catalog.list_backups(&filter)?
    } else {
        Vec::new()
    };
    if json {
        out::document(&serde_json::json!({ "backups": backups }));
        return Ok(Exit::Success);
    }
    if backups.is_empty() {
        crate::say!("no backups");
        return Ok(Exit::Success);
    }
    crate::say!(
        "{:>4}  {:<11}  {:<12}  {:<9}  {:<24}  {:>10}  FILE",
        "ID",
        "TYPE",
        "VERSION",
        "STATUS",
        "CREATED",
        "SIZE"
    );
    for b in backups {
        let file = b
            .path
            .as_deref()
            .and_then(|p| Path::new(p).file_name())
            .map(|f| f.to_string_lossy().into_owned());
        crate::say!(
            "{:>4}  {:<11}  {:<12}  {:<9}  {:<24}  {:>10}  {}",
            b.id,
            b.kind,
            b.version,
            b.status,
            b.created_at,
            b.size.map(|s| human_bytes(s as u64)).unwrap_or_else(|| "-".into()),
            file.unwrap_or_else(|| "-".into()),
        );
    }
    Ok(Exit::Success)
}

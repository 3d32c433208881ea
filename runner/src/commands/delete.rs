//! `hookrun delete ID`: deletes one backup crash-safely (see `deletion`).

use std::path::Path;

use crate::config::Check;
use crate::deletion::delete_backup;
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

//! `hookrun delete ID`: deletes one backup crash-safely (see `deletion`).

use crate::deletion::delete_backup;
use crate::exit::{Exit, UsageError};
use crate::results::DeleteResult;
use crate::session::Session;

/// Deletes backup `id`.
pub async fn delete(session: &Session, id: i64) -> anyhow::Result<(DeleteResult, Exit)> {
    let catalog = &session.catalog;
    let row = catalog
        .backup(id)?
        .ok_or_else(|| UsageError(format!("no backup with id {id}")))?;
    delete_backup(&session.config, catalog, &row).await?;
    crate::metrics::refresh(&session.config, catalog);
    let result = DeleteResult {
        deleted: vec![id],
        backup: row,
    };
    Ok((result, Exit::Success))
}

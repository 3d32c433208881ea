//! `hookrun list`: the backups in the catalog, each with its last verification, and the archives in storage the
//! catalog does not know.

use hookrun_catalog::BackupFilter;

use crate::exit::Exit;
use crate::results::ListResult;
use crate::session::ReadSession;
use crate::storage::unknown_archives;

/// Lists the backups `filter` lets through; a session without a catalog (none exists yet) has none.
pub fn list(session: &ReadSession, filter: &BackupFilter) -> anyhow::Result<(ListResult, Exit)> {
    let result = match &session.catalog {
        Some(catalog) => ListResult {
            backups: catalog.list_backups(filter)?,
            unknown_archives: unknown_archives(&session.config.runner.storage_dir, catalog)?,
        },
        None => ListResult {
            backups: Vec::new(),
            unknown_archives: Vec::new(),
        },
    };
    Ok((result, Exit::Success))
}

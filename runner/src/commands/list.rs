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
        Some(catalog) => {
            let all = catalog.list_backups(&Default::default())?;
            let unknown_archives = unknown_archives(&session.config.runner.storage_dir, &all)?;
            // The same rows `list_backups(filter)` would read, from the one reading of them.
            let backups = all
                .into_iter()
                .filter(|b| filter.kind.as_deref().is_none_or(|k| b.kind.as_str() == k))
                .filter(|b| filter.status.is_none_or(|s| b.status == s))
                .collect();
            ListResult {
                backups,
                unknown_archives,
            }
        }
        None => ListResult {
            backups: Vec::new(),
            unknown_archives: Vec::new(),
        },
    };
    Ok((result, Exit::Success))
}

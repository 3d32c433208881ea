//! `hookrun show ID`: one backup, its run and the run's hook results, and what ran when it was taken.

use crate::exit::{Exit, UsageError};
use crate::results::ShowResult;
use crate::session::ReadSession;

/// Shows backup `id`, in a session opened with `OpenCatalog::IfExists`.
pub fn show(session: &ReadSession, id: i64) -> anyhow::Result<(ShowResult, Exit)> {
    let missing = || {
        UsageError(format!(
            "no backup with id {id} in {}",
            session.config.runner.catalog.display()
        ))
    };
    let catalog = session.catalog.as_ref().ok_or_else(missing)?;
    let backup = catalog.backup(id)?.ok_or_else(missing)?;
    let (run, hooks, services) = match backup.run_id {
        Some(run_id) => (
            catalog.run(run_id)?,
            catalog.hook_results(run_id)?,
            catalog.services(run_id)?,
        ),
        None => (None, Vec::new(), Vec::new()),
    };
    let sources = catalog.backup_sources(backup.id)?;
    let deployment = catalog.deployment(backup.id)?;
    let result = ShowResult {
        backup,
        run,
        hooks,
        services,
        sources,
        deployment,
    };
    Ok((result, Exit::Success))
}

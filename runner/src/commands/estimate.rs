//! `hookrun estimate`: for each backup hook, the files and bytes of each tree it takes, what it does with each of
//! the project's volumes and bind mounts, the archive size expected from a compressed sample, the free space in
//! storage, and the verdict its free-space preflight would reach (see `estimates`); and what the `upload` hooks would
//! move to each remote and how long that would take. `plan` shows the same numbers.

use crate::estimates::{estimates, uploads};
use crate::exit::Exit;
use crate::results::EstimateResult;
use crate::session::ReadSession;

/// Estimates every backup hook of the session's configuration (loaded with `Check::Full`).
pub async fn estimate(session: &ReadSession) -> anyhow::Result<(EstimateResult, Exit)> {
    let backups = estimates(&session.config).await?;
    let uploads = uploads(&session.config, &backups)?;
    Ok((EstimateResult { backups, uploads }, Exit::Success))
}

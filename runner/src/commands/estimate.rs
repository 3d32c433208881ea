//! `hookrun estimate`: for each backup hook, the files and bytes of each tree it takes, what it does with each of
//! the project's volumes and bind mounts, the archive size expected from a compressed sample, the free space in
//! storage, and the verdict its free-space preflight would reach (see `estimates`). `plan` shows the same numbers.

use crate::estimates::estimates;
use crate::exit::Exit;
use crate::results::EstimateResult;
use crate::session::ReadSession;

/// Estimates every backup hook of the session's configuration (loaded with `Check::Full`).
pub async fn estimate(session: &ReadSession) -> anyhow::Result<(EstimateResult, Exit)> {
    let backups = estimates(&session.config).await?;
    Ok((EstimateResult { backups }, Exit::Success))
}

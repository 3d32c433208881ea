//! `hookrun restore ID` and `hookrun rollback`: put a backup's data back (a rollback also its recorded deployment)
//! as a run of its own, journalled like any other so that `hookrun recover` can finish one that died (see
//! `restore_run`).

use crate::event::EventSink;
use crate::exit::Exit;
use crate::restore_run;
pub use crate::restore_run::Pick;
use crate::results::{RestorePlan, RestoreResult};
use crate::session::Session;

/// Which backup a restore puts back and what it would change (see [`restore_run::plan`]). Changes nothing.
pub fn plan(
    session: &Session,
    pick: Pick,
    only: Vec<String>,
    redeploy: bool,
    dry_run: bool,
) -> anyhow::Result<RestorePlan> {
    restore_run::plan(session, pick, only, redeploy, dry_run)
}

/// Carries out `plan` (confirmed, if it had to be) as a restore run of its own; see [`restore_run::execute`].
pub async fn execute(
    session: &Session,
    plan: RestorePlan,
    events: &dyn EventSink,
) -> anyhow::Result<(RestoreResult, Exit)> {
    restore_run::execute(session, plan, events).await
}

//! `hookrun recover`: recovers every run of this storage dir that died without finishing (see `recovery`), and
//! removes what finished restores left beside their targets.

use crate::exit::Exit;
use crate::recovery::{recover_interrupted, remove_leftovers_of_finished_restores};
use crate::results::RecoverResult;
use crate::session::Session;

/// Recovers every interrupted run, in a session opened with [`Session::lock`] (which recovers nothing itself).
/// Exit 3 when a run's services could not be brought back.
pub async fn recover(session: &Session) -> anyhow::Result<(RecoverResult, Exit)> {
    let recovered = recover_interrupted(&session.config, &session.catalog).await?;
    let removed = remove_leftovers_of_finished_restores(&session.catalog)?;
    let exit = if recovered.iter().any(|r| r.error.is_some()) {
        Exit::ServicesDown
    } else {
        Exit::Success
    };
    Ok((RecoverResult { recovered, removed }, exit))
}

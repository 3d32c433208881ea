//! `hookrun recover`: recovers every run of this storage dir that died without finishing (see `recovery`), finishes
//! every upgrade that died (see `upgrade`), and removes what finished restores left beside their targets.

use crate::exit::Exit;
use crate::recovery::remove_leftovers_of_finished_restores;
use crate::results::RecoverResult;
use crate::session::Session;

/// Recovers every interrupted run and finishes every interrupted upgrade, in a session opened with
/// [`Session::lock`] (which recovers nothing itself). Exit 3 when a run's services could not be brought back or an
/// upgrade could not be rolled back.
pub async fn recover(session: &mut Session) -> anyhow::Result<(RecoverResult, Exit)> {
    session.recover().await?;
    let removed = remove_leftovers_of_finished_restores(&session.catalog)?;
    let exit = if session.ensure_recovered().is_err() {
        Exit::ServicesDown
    } else {
        Exit::Success
    };
    let result = RecoverResult {
        recovered: std::mem::take(&mut session.recovered),
        upgrades: std::mem::take(&mut session.recovered_upgrades),
        removed,
    };
    Ok((result, exit))
}

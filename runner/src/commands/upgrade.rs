//! `hookrun upgrade --version OLD --to NEW [-- COMMAND...]`: the upgrade behind a health gate, rolled back when it
//! fails (see `upgrade`, which `hookrun recover` shares to finish an upgrade that died).

use crate::event::EventSink;
use crate::exit::Exit;
use crate::results::UpgradeResult;
use crate::session::Session;
use crate::upgrade;
pub use crate::upgrade::{command_for, UpgradeRequest};

/// Runs the upgrade `request` in a session opened with every run and upgrade that died before recovered; its events
/// (the chain's hooks, the phases, the command's output) go to `events` as it goes.
pub async fn upgrade(
    session: &Session,
    request: UpgradeRequest,
    events: &dyn EventSink,
) -> anyhow::Result<(UpgradeResult, Exit)> {
    upgrade::upgrade(session, request, events).await
}

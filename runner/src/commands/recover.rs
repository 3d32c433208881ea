//! `hookrun recover`: recovers every run of this storage dir that died without finishing (see `recovery`), and
//! removes what finished restores left beside their targets.

use crate::config::Check;
use crate::exit::Exit;
use crate::recovery::{recover_interrupted, remove_leftovers_of_finished_restores, RemovedLeftover};
use crate::report::out;
use crate::session::Session;
use std::path::Path;

/// `hookrun recover`: recovers every run of this storage dir that died without finishing, and says what it did.
pub async fn recover(config_path: &Path, json: bool) -> anyhow::Result<Exit> {
    let session = Session::lock(config_path, Check::Shape)?;
    let report = recover_interrupted(&session.config, &session.catalog).await?;
    let removed = remove_leftovers_of_finished_restores(&session.catalog)?;
    let exit = if report.iter().any(|r| r.error.is_some()) {
        Exit::ServicesDown
    } else {
        Exit::Success
    };
    if json {
        out::document(&serde_json::json!({ "recovered": report, "removed": removed }));
        return Ok(exit);
    }
    if report.is_empty() {
        crate::say!("nothing to recover: no run was interrupted");
    }
    for r in &report {
        out::line(&r.describe());
    }
    print_removed(&removed);
    Ok(exit)
}

/// The lines that say what `remove_leftovers_of_finished_restores` removed.
fn print_removed(removed: &[RemovedLeftover]) {
    for leftover in removed {
        crate::say!("removed {}: {}", leftover.path, leftover.what);
    }
}

//! `hookrun pre-upgrade` and `hookrun backup`: run the configured chain as a run of its own (see `chain_run`).

use hookrun_catalog::RunKind;

use crate::chain;
use crate::chain_run::run_chain;
use crate::event::EventSink;
use crate::exit::{Exit, UsageError};
use crate::report::RunReport;
use crate::session::Session;

/// A `--version` given must say something: refused (exit 2) before anything is opened otherwise.
pub fn check_version(version: Option<&str>) -> anyhow::Result<()> {
    if version.is_some_and(|v| v.trim().is_empty()) {
        return Err(UsageError("--version must not be empty".to_string()).into());
    }
    Ok(())
}

/// Runs the configured chain as a `kind` run of `version` (default: `[runner] version`, else "unknown"), in a
/// session opened with `Check::Full`; its events go to `events` as it goes.
pub async fn run(
    session: &Session,
    kind: RunKind,
    version: Option<String>,
    events: &dyn EventSink,
) -> anyhow::Result<(RunReport, Exit)> {
    check_version(version.as_deref())?;
    let version = version
        .or_else(|| session.config.runner.version.clone())
        .unwrap_or_else(|| "unknown".to_string());
    let chain = chain::build(&session.config)?;
    run_chain(session, kind, &version, &chain, None, events).await
}

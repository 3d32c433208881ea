//! `hookrun pre-upgrade` and `hookrun backup`: journal a run, execute the chain, close the run, report.

use std::path::Path;

use hookrun_catalog::RunKind;

use crate::chain;
use crate::chain_run::run_chain;
use crate::config::Check;
use crate::exit::{Exit, UsageError};
use crate::session::Session;

/// Runs the configured chain as a `kind` run of `version`, after recovering any run that died before.
pub async fn run(config_path: &Path, kind: RunKind, version: Option<String>, json: bool) -> anyhow::Result<Exit> {
    if version.as_deref().is_some_and(|v| v.trim().is_empty()) {
        return Err(UsageError("--version must not be empty".to_string()).into());
    }
    let session = Session::open(config_path, Check::Full, json).await?;
    let version = version
        .or_else(|| session.config.runner.version.clone())
        .unwrap_or_else(|| "unknown".to_string());
    let chain = chain::build(&session.config)?;
    let (exit, _) = run_chain(&session, kind, &version, &chain, None, json).await?;
    Ok(exit)
}

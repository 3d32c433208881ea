//! `hookrun plan`: the resolved chain, and for each backup the trees it takes with their sizes, what it does with
//! each of the project's volumes and bind mounts, the archive size expected and the free-space verdict — the same
//! numbers `hookrun estimate` shows. Reads only: no catalog, no storage dir, no hook is run.

use std::path::PathBuf;

use hookrun_archive::Format;
use serde::Serialize;

use crate::config::{Builtin, HookKind, OnError, RunnerConfig, When};
use crate::estimates::{estimates, HookEstimate};
use crate::exit::Exit;
use crate::session::ReadSession;

/// The chain as it would run.
#[derive(Serialize)]
pub struct PlanResult {
    /// The configuration file.
    pub config: PathBuf,
    pub runner: RunnerConfig,
    pub hooks: Vec<PlannedHook>,
}

/// One hook of the chain.
#[derive(Serialize)]
pub struct PlannedHook {
    pub name: String,
    pub kind: &'static str,
    pub when: When,
    pub on_error: OnError,
    pub timeout_secs: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backup: Option<PlannedBackup>,
}

/// What a backup hook would write.
#[derive(Serialize)]
pub struct PlannedBackup {
    /// `gzip` or `zstd`.
    pub compression: Format,
    pub compression_level: u32,
    pub include_artifacts: bool,
    #[serde(flatten)]
    pub estimate: HookEstimate,
}

/// The plan of a session opened with [`ReadSession::validated`] (`CacheMode::ReadOnly`: what `hooks check` checks
/// first, so that the two accept and refuse the same files with the same message).
pub async fn plan(session: &ReadSession) -> anyhow::Result<(PlanResult, Exit)> {
    let config = &session.config;
    let mut estimates = estimates(config).await?.into_iter();
    let mut hooks = Vec::new();
    for spec in &config.hooks {
        let backup = match &spec.kind {
            HookKind::Builtin(Builtin::Backup(backup)) => Some(PlannedBackup {
                compression: backup.compression.format,
                compression_level: backup.compression.level,
                include_artifacts: backup.include_artifacts,
                estimate: estimates.next().expect("one estimate per backup hook, in order"),
            }),
            _ => None,
        };
        hooks.push(PlannedHook {
            name: spec.name.clone(),
            kind: spec.kind.label(),
            when: spec.when,
            on_error: spec.on_error,
            timeout_secs: spec.timeout.as_secs(),
            backup,
        });
    }
    let result = PlanResult {
        config: config.path.clone(),
        runner: config.runner.clone(),
        hooks,
    };
    Ok((result, Exit::Success))
}

//! `hookrun plan`: the resolved chain, and for each backup the trees it takes with their sizes, what it does with
//! each of the project's volumes and bind mounts, the archive size expected and the free-space verdict — the same
//! numbers `hookrun estimate` shows. Reads only: no catalog, no storage dir, no hook is run.

use std::path::Path;

use hookrun_archive::Format;
use serde::Serialize;

use crate::commands::estimate::print_estimate;
use crate::config::{Builtin, HookKind, OnError, When};
use crate::estimates::{estimates, HookEstimate};
use crate::exit::Exit;
use crate::report::out;

#[derive(Serialize)]
struct PlannedHook {
    name: String,
    kind: &'static str,
    when: When,
    on_error: OnError,
    timeout_secs: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    backup: Option<PlannedBackup>,
}

#[derive(Serialize)]
struct PlannedBackup {
    /// `gzip` or `zstd`.
    compression: Format,
    compression_level: u32,
    include_artifacts: bool,
    #[serde(flatten)]
    estimate: HookEstimate,
}

/// Prints the plan.
pub async fn plan(config_path: &Path, json: bool) -> anyhow::Result<Exit> {
    // First what `hooks check` checks: the two accept and refuse the same files with the same message.
    let config = super::check::validate(config_path, crate::wasm::CacheMode::ReadOnly)?;
    let mut estimates = estimates(&config).await?.into_iter();
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

    if json {
        out::document(&serde_json::json!({ "config": config.path, "runner": config.runner, "hooks": hooks }));
        return Ok(Exit::Success);
    }
    crate::say!("config   {}", config.path.display());
    crate::say!("work dir {}", config.runner.work_dir.display());
    crate::say!("storage  {}", config.runner.storage_dir.display());
    crate::say!("catalog  {}", config.runner.catalog.display());
    for (index, hook) in hooks.iter().enumerate() {
        let timeout = humantime::format_duration(std::time::Duration::from_secs(hook.timeout_secs));
        let (when, on_error) = (
            format!("{:?}", hook.when).to_lowercase(),
            format!("{:?}", hook.on_error).to_lowercase(),
        );
        crate::say!(
            "{:>2}. {:<16} {:<8} when={when} on_error={on_error} timeout={timeout}",
            index + 1,
            hook.name,
            hook.kind
        );
        if let Some(backup) = &hook.backup {
            crate::say!(
                "      as {} level {}{}",
                backup.compression.name(),
                backup.compression_level,
                if backup.include_artifacts {
                    ", with the hooks' artifacts under hooks/<name>/"
                } else {
                    ""
                }
            );
            print_estimate(&backup.estimate, "      ");
        }
    }
    Ok(Exit::Success)
}

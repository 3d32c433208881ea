//! `hookrun plan`: the resolved chain, each backup's sources with their sizes, and the free-space verdict.
//! Reads only: no catalog, no storage dir, no hook is run.

use std::path::{Path, PathBuf};

use hookrun_hooks::archive::{estimate, free_space, measure, resolve_sources, Format, SourceStats};
use hookrun_hooks::size::human_bytes;
use serde::Serialize;

use hookrun_hooks::builtin::Volumes;

use crate::config::{self, Builtin, Check, HookKind, OnError, When};
use crate::exit::Exit;

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
    sources: Vec<PlannedSource>,
    include_artifacts: bool,
    /// Whether the project's volumes are added (see `hookrun estimate` for their sizes).
    volumes: bool,
    /// `gzip` or `zstd`.
    compression: Format,
    compression_level: u32,
    /// The archive size expected from a compressed sample of the configured paths: what the preflight uses.
    estimate_bytes: u64,
    need_bytes: u64,
    free_bytes: u64,
    enough_space: bool,
}

#[derive(Serialize)]
struct PlannedSource {
    path: PathBuf,
    #[serde(flatten)]
    stats: SourceStats,
}

/// Prints the plan.
pub fn plan(config_path: &Path, json: bool) -> anyhow::Result<Exit> {
    super::check::validate(config_path, crate::wasm::CacheMode::ReadOnly)?;
    let config = config::load(config_path, Check::Full)?;
    let free = free_space(nearest_existing(&config.runner.storage_dir))?;
    let mut hooks = Vec::new();
    for spec in &config.hooks {
        let backup = match &spec.kind {
            HookKind::Builtin(Builtin::Backup(backup)) => {
                let mut sources = Vec::new();
                for path in &backup.sources {
                    let roots = resolve_sources(&config.runner.work_dir, std::slice::from_ref(path))?;
                    sources.push(PlannedSource {
                        path: path.clone(),
                        stats: measure(&roots)?,
                    });
                }
                let roots = resolve_sources(&config.runner.work_dir, &backup.sources)?;
                let estimate = estimate(&roots, backup.compression)?.estimated_archive_bytes;
                let need = (estimate as f64 * backup.min_free_factor).ceil() as u64;
                Some(PlannedBackup {
                    sources,
                    include_artifacts: backup.include_artifacts,
                    compression: backup.compression.format,
                    compression_level: backup.compression.level,
                    estimate_bytes: estimate,
                    volumes: backup.volumes != Volumes::None,
                    need_bytes: need,
                    free_bytes: free,
                    enough_space: free >= need,
                })
            }
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
        let doc = serde_json::json!({ "config": config.path, "runner": config.runner, "hooks": hooks });
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(Exit::Success);
    }
    println!("config   {}", config.path.display());
    println!("work dir {}", config.runner.work_dir.display());
    println!(
        "storage  {} ({} free)",
        config.runner.storage_dir.display(),
        human_bytes(free)
    );
    println!("catalog  {}", config.runner.catalog.display());
    for (index, hook) in hooks.iter().enumerate() {
        let timeout = humantime::format_duration(std::time::Duration::from_secs(hook.timeout_secs));
        let (when, on_error) = (
            format!("{:?}", hook.when).to_lowercase(),
            format!("{:?}", hook.on_error).to_lowercase(),
        );
        println!(
            "{:>2}. {:<16} {:<8} when={when} on_error={on_error} timeout={timeout}",
            index + 1,
            hook.name,
            hook.kind
        );
        if let Some(backup) = &hook.backup {
            for source in &backup.sources {
                let (files, bytes) = (source.stats.files, human_bytes(source.stats.bytes));
                println!(
                    "      source {:<24} {files:>8} files {bytes:>10}",
                    source.path.display()
                );
            }
            if backup.volumes {
                println!("      + the Compose project's volumes and bind mounts (sizes: `hookrun estimate`)");
            }
            if backup.include_artifacts {
                println!("      + the hooks' artifacts, under hooks/<name>/");
            }
            let verdict = if backup.enough_space {
                "ok"
            } else {
                "NOT ENOUGH: the backup would fail"
            };
            println!(
                "      archive ~{} as {} level {} (from a compressed sample); needs {} free: {verdict}",
                human_bytes(backup.estimate_bytes),
                backup.compression.name(),
                backup.compression_level,
                human_bytes(backup.need_bytes)
            );
        }
    }
    Ok(Exit::Success)
}

/// `path` or its closest ancestor that exists (the storage dir may not exist before the first run).
fn nearest_existing(path: &Path) -> &Path {
    path.ancestors().find(|p| p.exists()).unwrap_or(Path::new("/"))
}

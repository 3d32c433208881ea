//! `hookrun estimate`: for each backup hook, the bytes and files of each source, the archive size expected from a
//! compressed sample, the free space in storage, and the verdict the backup's free-space preflight would reach.

use std::path::Path;

use hookrun_hooks::archive::{estimate as estimate_trees, free_space, SourceRoot};
use hookrun_hooks::size::human_bytes;
use serde::Serialize;

use crate::config::{self, Builtin, Check, HookKind};
use crate::exit::Exit;
use crate::report::out;

#[derive(Serialize)]
struct SourceEstimate {
    kind: String,
    name: String,
    files: u64,
    bytes: u64,
    estimated_archive_bytes: u64,
}

#[derive(Serialize)]
struct BackupEstimate {
    hook: String,
    sources: Vec<SourceEstimate>,
    bytes: u64,
    estimated_archive_bytes: u64,
    compression_ratio: f64,
    free_bytes: u64,
    need_bytes: u64,
    preflight: &'static str,
}

/// Prints the estimate of every backup hook.
pub async fn estimate(config_path: &Path, json: bool) -> anyhow::Result<Exit> {
    let config = config::load(config_path, Check::Full)?;
    let storage = config
        .runner
        .storage_dir
        .ancestors()
        .find(|p| p.exists())
        .unwrap_or(Path::new("/"))
        .to_path_buf();
    let free = free_space(&storage)?;
    let mut estimates = Vec::new();
    for hook in &config.hooks {
        let HookKind::Builtin(Builtin::Backup(backup)) = &hook.kind else {
            continue;
        };
        let trees = backup
            .trees(&config.runner.work_dir, config.runner.project.as_deref())
            .await?;
        let compression = backup.compression;
        let sources = tokio::task::spawn_blocking(move || {
            trees
                .into_iter()
                .map(|tree| {
                    let root = SourceRoot::new(&tree.host_path, &tree.archive_path);
                    let e = estimate_trees(std::slice::from_ref(&root), compression)?;
                    Ok(SourceEstimate {
                        kind: tree.kind,
                        name: tree.archive_path,
                        files: e.files,
                        bytes: e.bytes,
                        estimated_archive_bytes: e.estimated_archive_bytes,
                    })
                })
                .collect::<Result<Vec<_>, hookrun_hooks::HookError>>()
        })
        .await??;
        let bytes: u64 = sources.iter().map(|s| s.bytes).sum();
        let archive: u64 = sources.iter().map(|s| s.estimated_archive_bytes).sum();
        let need = (archive as f64 * backup.min_free_factor).ceil() as u64;
        estimates.push(BackupEstimate {
            hook: hook.name.clone(),
            bytes,
            estimated_archive_bytes: archive,
            compression_ratio: if bytes == 0 { 1.0 } else { archive as f64 / bytes as f64 },
            free_bytes: free,
            need_bytes: need,
            preflight: if backup.min_free_factor == 0.0 {
                "off"
            } else if free >= need {
                "pass"
            } else {
                "fail"
            },
            sources,
        });
    }
    if json {
        out::document(&serde_json::json!({ "backups": estimates }));
        return Ok(Exit::Success);
    }
    for e in &estimates {
        crate::say!("backup hook {}:", e.hook);
        for s in &e.sources {
            crate::say!(
                "  {:<9} {:<32} {:>8} files {:>10} → ~{}",
                s.kind,
                s.name,
                s.files,
                human_bytes(s.bytes),
                human_bytes(s.estimated_archive_bytes)
            );
        }
        crate::say!(
            "  archive ~{} ({:.0}% of {}); storage has {} free, the preflight needs {}: {}",
            human_bytes(e.estimated_archive_bytes),
            e.compression_ratio * 100.0,
            human_bytes(e.bytes),
            human_bytes(e.free_bytes),
            human_bytes(e.need_bytes),
            e.preflight
        );
    }
    Ok(Exit::Success)
}

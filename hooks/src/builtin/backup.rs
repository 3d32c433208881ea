//! The `backup` built-in: archives the sources and the hooks' artifacts into a verified `.tar.gz` in storage.

use std::path::PathBuf;
use std::time::Instant;

use async_trait::async_trait;
use chrono::Utc;

use crate::archive::{
    archive_file_name, check_free_space, measure, place_without_replacing, resolve_sources,
    temporary_path, write_archive, SourceRoot,
};
use crate::context::ARTIFACTS_DIR;
use crate::{ArchiveInfo, Hook, HookError, Progress, RunContext};

/// How `backup` is configured (`[hook.config]`).
#[derive(Debug, Clone, PartialEq)]
pub struct BackupConfig {
    /// Files and folders to archive, relative to the work dir.
    pub sources: Vec<PathBuf>,
    /// gzip level, 0–9.
    pub compression_level: u32,
    /// Free space required before starting, as a multiple of the sources' size (0 turns the check off).
    pub min_free_factor: f64,
    /// Whether the hooks' artifacts (staging `hooks/<name>/`) go into the archive.
    pub include_artifacts: bool,
}

impl Default for BackupConfig {
    fn default() -> Self {
        Self {
            sources: Vec::new(),
            compression_level: 6,
            min_free_factor: 2.0,
            include_artifacts: true,
        }
    }
}

/// The `backup` hook.
#[derive(Debug)]
pub struct BackupHook {
    name: String,
    config: BackupConfig,
}

impl BackupHook {
    /// A backup hook called `name`.
    pub fn new(name: impl Into<String>, config: BackupConfig) -> Self {
        Self {
            name: name.into(),
            config,
        }
    }

    /// The configured sources plus, when there are any, the hooks' artifacts.
    fn roots(&self, ctx: &RunContext) -> Result<Vec<SourceRoot>, HookError> {
        let mut roots = resolve_sources(&ctx.work_dir, &self.config.sources)?;
        let artifacts = ctx.artifacts_root();
        let has_artifacts =
            std::fs::read_dir(&artifacts).is_ok_and(|mut entries| entries.next().is_some());
        if self.config.include_artifacts && has_artifacts {
            roots.push(SourceRoot::new(artifacts, ARTIFACTS_DIR));
        }
        Ok(roots)
    }
}

#[async_trait]
impl Hook for BackupHook {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &str {
        "backup"
    }

    async fn preflight(&self, ctx: &RunContext) -> Result<(), HookError> {
        let roots = self.roots(ctx)?;
        let storage = ctx.storage_dir.clone();
        let factor = self.config.min_free_factor;
        blocking(move || check_free_space(&storage, measure(&roots)?.bytes, factor)).await
    }

    async fn run(&self, ctx: &mut RunContext) -> Result<(), HookError> {
        let roots = self.roots(ctx)?;
        let storage = ctx.storage_dir.clone();
        std::fs::create_dir_all(&storage).map_err(|source| HookError::Prepare {
            path: storage.clone(),
            source,
        })?;
        let tmp = temporary_path(&storage, ctx.run_id);
        let (kind, version, named_at) = (ctx.kind, ctx.version.clone(), ctx.started_at);
        let (cancel, sink, hook) = (ctx.cancel.clone(), ctx.progress.clone(), self.name.clone());
        let config = self.config.clone();
        let started = Instant::now();

        let (summary, path) = blocking(move || {
            let total = measure(&roots)?.bytes;
            check_free_space(&storage, total, config.min_free_factor)?;
            let report = |done| {
                sink.report(Progress {
                    hook: hook.clone(),
                    done,
                    total,
                    unit: "bytes",
                })
            };
            let summary = write_archive(&roots, &tmp, config.compression_level, &cancel, &report)?;
            let name_for = |attempt| archive_file_name(kind.as_str(), &version, named_at, attempt);
            let path = place_without_replacing(&tmp, &storage, name_for).map_err(|source| {
                let _ = std::fs::remove_file(&tmp);
                HookError::WriteArchive {
                    path: tmp.clone(),
                    source,
                }
            })?;
            Ok((summary, path))
        })
        .await?;

        ctx.archive = Some(ArchiveInfo {
            path,
            size: summary.size,
            sha256: summary.sha256,
            file_count: summary.file_count,
            entry_count: summary.entry_count,
            bytes: summary.bytes,
            compression_level: self.config.compression_level,
            created_at: Utc::now(),
            duration_ms: started.elapsed().as_millis() as u64,
        });
        Ok(())
    }
}

/// Runs filesystem work off the async threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, HookError> + Send + 'static,
) -> Result<T, HookError> {
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic.into_panic()))
}

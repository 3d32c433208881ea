//! The `upload` built-in: copies the run's archive to remotes after the services are back (never inside the
//! downtime), and records each copy in the catalog once the object is complete and checked. `hookrun sync` uploads
//! what runs did not, through the same [`upload_backup`].

use std::path::Path;

use async_trait::async_trait;
use chrono::Utc;
use tokio_util::sync::CancellationToken;

use crate::context::NOTHING_TO_DO_OUTPUT;
use crate::{Hook, HookError, Progress, RunContext};
use hookrun_catalog::{Catalog, NewCopy};
use hookrun_remote::{Remote, RemoteError, Uploaded};

/// The `upload` hook: the remotes it uploads to, each opened (or why it could not be: a credential file that is
/// not there fails this hook, not the backup before it).
#[derive(Debug)]
pub struct UploadHook {
    name: String,
    remotes: Vec<Result<Remote, RemoteError>>,
}

impl UploadHook {
    /// An upload hook called `name`.
    pub fn new(name: impl Into<String>, remotes: Vec<Result<Remote, RemoteError>>) -> Self {
        Self {
            name: name.into(),
            remotes,
        }
    }
}

/// Uploads backup `backup_id`'s archive `file` (SHA-256 `sha256`) to `remote` and records the copy; `progress`
/// hears the bytes sent. Nothing is recorded unless the object is complete and checked.
pub async fn upload_backup(
    remote: &Remote,
    catalog: &Catalog,
    backup_id: i64,
    file: &Path,
    sha256: &str,
    cancel: &CancellationToken,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Uploaded, HookError> {
    let name = file
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| HookError::Misconfigured(format!("backup {backup_id}: {} names no archive", file.display())))?;
    let started = std::time::Instant::now();
    let uploaded = remote.upload(file, name, sha256, cancel, progress).await?;
    catalog.record_copy(&NewCopy {
        backup_id,
        location: remote.name(),
        key: &uploaded.key,
        size: uploaded.size,
        sha256: &uploaded.sha256,
        encrypted: uploaded.encrypted,
        uploaded_at: Utc::now(),
        // An adopted object was only read back: no measure of an upload.
        duration_ms: if uploaded.already_there {
            0
        } else {
            started.elapsed().as_millis() as u64
        },
    })?;
    Ok(uploaded)
}

#[async_trait]
impl Hook for UploadHook {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &str {
        "upload"
    }

    async fn run(&self, ctx: &mut RunContext) -> Result<(), HookError> {
        let Some(archive) = ctx.archive.clone() else {
            ctx.outputs.entry(self.name.clone()).or_default().insert(
                NOTHING_TO_DO_OUTPUT.into(),
                "the run produced no archive to upload".into(),
            );
            return Ok(());
        };
        let mut first_error = None;
        for remote in &self.remotes {
            let remote = match remote {
                Ok(remote) => remote,
                Err(e) => {
                    first_error.get_or_insert(HookError::Misconfigured(e.to_string()));
                    continue;
                }
            };
            let (sink, hook, total) = (ctx.progress.clone(), self.name.clone(), archive.size);
            let progress = move |done: u64| {
                sink.report(Progress {
                    hook: hook.clone(),
                    done,
                    total,
                    unit: "bytes",
                })
            };
            let uploaded = upload_backup(
                remote,
                &ctx.catalog,
                archive.backup_id,
                &archive.path,
                &archive.sha256,
                &ctx.cancel,
                &progress,
            )
            .await;
            match uploaded {
                Ok(uploaded) => {
                    ctx.outputs
                        .entry(self.name.clone())
                        .or_default()
                        .insert(remote.name().to_string(), uploaded.key);
                }
                Err(e) if e.is_cancelled() => return Err(e),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

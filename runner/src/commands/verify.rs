//! `hookrun verify [ID | --all]`: reads each archive to the end — SHA-256, every entry, the gzip trailer — compares
//! it with the catalog, checks on the way that a restore of its trees would accept every entry, and records the
//! result. With `--remote`, it reads back the backups' copies on remotes instead (see [`RemoteCheck`]).

use std::path::PathBuf;

use chrono::Utc;
use hookrun_catalog::{BackupFilter, BackupRow, BackupStatus, Catalog};
use hookrun_hooks::{restore, Progress, ProgressSink};
use hookrun_remote::Identities;
use tokio_util::sync::CancellationToken;

use crate::exit::{Exit, UsageError};
use crate::results::{Verified, VerifyResult};
use crate::session::ReadSession;
use crate::storage::unknown_archives;

/// `verify --remote [NAME]`: the copies to read back (on every remote, or on `name`), decrypted with `identity`
/// when given.
#[derive(Debug, Clone, Copy)]
pub struct RemoteCheck<'a> {
    pub name: Option<&'a str>,
    pub identity: Option<&'a Identities>,
}

/// Reads back backup `row`'s copies (on `only`, or every remote): each object's size and SHA-256 against what was
/// uploaded and, when it can be decrypted (or is not encrypted), the archive's SHA-256 against the catalog's.
/// Records each result on the copy. A backup without a copy there is one failure saying so.
async fn verify_copies(
    session: &ReadSession,
    catalog: &Catalog,
    row: &BackupRow,
    only: Option<&str>,
    identity: Option<&Identities>,
) -> Vec<(Option<String>, Result<(), String>)> {
    let copies: Vec<_> = row
        .copies
        .iter()
        .filter(|c| only.is_none_or(|name| c.location == name))
        .collect();
    if copies.is_empty() {
        let where_ = only.map_or("any remote".to_string(), |n| format!("remote {n}"));
        return vec![(
            only.map(str::to_string),
            Err(format!("backup {} has no copy on {where_}", row.id)),
        )];
    }
    let mut outcomes = Vec::new();
    for copy in copies {
        let outcome = async {
            let remote = crate::remotes::open_for(&session.config, copy).map_err(|e| e.to_string())?;
            let (fetched, _) = remote
                .fetch(&copy.key, copy.encrypted, identity, std::io::sink())
                .await
                .map_err(|e| e.to_string())?;
            crate::remotes::check_fetched(row, copy, &fetched)
        }
        .await;
        let error = outcome.as_ref().err().map(String::as_str);
        if let Err(e) = catalog.record_copy_verification(row.id, &copy.location, outcome.is_ok(), error, Utc::now()) {
            tracing::error!(
                "cannot record the verification of backup {}'s copy on {}: {e}",
                row.id,
                copy.location
            );
        }
        outcomes.push((Some(copy.location.clone()), outcome));
    }
    outcomes
}

/// Verifies backup `id`, or every completed backup with `all`, in a session opened with `OpenCatalog::Always`;
/// `on_verified` hears of each backup as soon as it is verified, `progress` of the bytes of each archive read (its
/// reports name the backup as `backup ID`). Exit 1 when one failed or, with `all`, storage holds
/// an archive the catalog does not know.
pub async fn verify(
    session: &ReadSession,
    id: Option<i64>,
    all: bool,
    remote: Option<RemoteCheck<'_>>,
    on_verified: &mut dyn FnMut(&Verified),
    progress: &ProgressSink,
) -> anyhow::Result<(VerifyResult, Exit)> {
    let Some(catalog) = session.catalog.as_deref() else {
        anyhow::bail!("verify needs the catalog: open the session with OpenCatalog::Always");
    };
    let rows = match (id, all) {
        (Some(id), false) => vec![catalog
            .backup(id)?
            .ok_or_else(|| UsageError(format!("no backup with id {id}")))?],
        (None, true) => catalog.list_backups(&BackupFilter {
            status: Some(BackupStatus::Completed),
            ..Default::default()
        })?,
        _ => return Err(UsageError("give a backup ID or --all".into()).into()),
    };
    let mut verified = Vec::new();
    for row in rows.iter().filter(|r| !r.deleting) {
        let checks = match &remote {
            None if row.local_removed_at.is_some() => continue,
            None => vec![(None, verify_backup(catalog, row, progress).await)],
            Some(remote) => verify_copies(session, catalog, row, remote.name, remote.identity).await,
        };
        for (copy, outcome) in checks {
            let error = outcome.err();
            let result = Verified {
                id: row.id,
                path: row.path.clone(),
                remote: copy,
                ok: error.is_none(),
                error,
            };
            on_verified(&result);
            verified.push(result);
        }
    }
    // Every archive in storage is the catalog's: with --all, one it does not know fails the check too.
    let unknown = if all && remote.is_none() {
        unknown_archives(
            &session.config.runner.storage_dir,
            &catalog.list_backups(&Default::default())?,
        )?
    } else {
        Vec::new()
    };
    let exit = if verified.iter().all(|r| r.ok) && unknown.is_empty() {
        Exit::Success
    } else {
        Exit::Failed
    };
    let result = VerifyResult {
        verified,
        unknown_archives: unknown,
    };
    crate::metrics::refresh(&session.config, catalog);
    Ok((result, exit))
}

/// Verifies backup `row` (its archive, and that a restore of every tree the catalog records for it would accept
/// it) and records the result; `progress` hears of the archive's bytes read. The error is one line naming the
/// archive.
pub async fn verify_backup(catalog: &Catalog, row: &BackupRow, progress: &ProgressSink) -> Result<(), String> {
    let checked = row.clone();
    let trees: Vec<PathBuf> = catalog
        .backup_sources(row.id)
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|source| source.archive_path.into())
        .collect();
    let (sink, hook, total) = (
        progress.clone(),
        format!("backup {}", row.id),
        row.size.unwrap_or(0).max(0) as u64,
    );
    let report = move |done: u64| {
        sink.report(Progress {
            hook: hook.clone(),
            done,
            total,
            unit: "bytes",
        })
    };
    let result = tokio::task::spawn_blocking(move || {
        restore::verify_backup(&checked, &trees, &CancellationToken::new(), &report)
    })
    .await
    .map_err(|e| e.to_string())
    .and_then(|r| r.map_err(|e| e.to_string()));
    let error = result.as_ref().err().map(String::as_str);
    if let Err(e) = catalog.record_verification(row.id, result.is_ok(), error, Utc::now()) {
        tracing::error!("cannot record the verification of backup {}: {e}", row.id);
    }
    result
}

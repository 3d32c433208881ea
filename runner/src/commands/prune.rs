//! `hookrun prune`: deletes the backups no retention rule keeps (see `retention`), each crash-safely.

use chrono::{DateTime, Utc};
use hookrun_catalog::{BackupRow, BackupStatus, RunKind};

use crate::deletion::{delete_backup, finish_interrupted_deletions};
use crate::exit::{Exit, UsageError};
use crate::results::{Kept, PruneResult};
use crate::retention::{kept, to_delete, Candidate, Rules};
use crate::session::Session;

/// The rules must say something: refused (exit 2) before anything is opened otherwise.
pub fn check_rules(rules: &Rules) -> anyhow::Result<()> {
    if rules.keep_last.is_none() && rules.keep_within.is_none() && rules.keep_pre_upgrade.is_none() {
        return Err(UsageError("give at least one of --keep-last, --keep-within, --keep-pre-upgrade".into()).into());
    }
    Ok(())
}

/// Applies `rules` (checked with [`check_rules`]); with `dry_run`, deletes nothing. `on_deleted` hears of each
/// backup as soon as it is deleted (or, with `dry_run`, would be).
pub async fn prune(
    session: &Session,
    rules: &Rules,
    dry_run: bool,
    on_deleted: &mut dyn FnMut(&BackupRow),
) -> anyhow::Result<(PruneResult, Exit)> {
    check_rules(rules)?;
    let catalog = &session.catalog;
    if !dry_run {
        finish_interrupted_deletions(catalog).await?;
    }
    let rows = catalog.list_backups(&Default::default())?;
    let candidates: Vec<Candidate> = rows
        .iter()
        .filter(|r| !r.deleting)
        .map(|r| Candidate {
            id: r.id,
            created_at: DateTime::parse_from_rfc3339(&r.created_at).map_or(DateTime::<Utc>::MIN_UTC, |t| t.to_utc()),
            pre_upgrade: r.kind == RunKind::PreUpgrade,
            usable: r.status == BackupStatus::Completed,
            verified: r.verify_ok == Some(true),
        })
        .collect();
    let doomed = to_delete(&candidates, rules);
    let kept = kept(&candidates, rules);
    for row in rows.iter().filter(|r| doomed.contains(&r.id)) {
        if !dry_run {
            delete_backup(catalog, row).await?;
        }
        on_deleted(row);
    }
    let result = PruneResult {
        dry_run,
        deleted: doomed,
        kept: kept.into_iter().map(|(id, because)| Kept { id, because }).collect(),
        backups: rows,
    };
    Ok((result, Exit::Success))
}

//! `hookrun prune`: applies retention (see `retention`) to each location. The command's rules decide which backups
//! keep their local archive; each `[[remote]]` decides with its own `keep` rules (the command's when it has none)
//! which keep their copy there. A backup no location keeps is deleted (every copy, then the row); one only a remote
//! keeps loses its local archive and stays restorable from there; a copy its remote does not keep is deleted.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use hookrun_catalog::{BackupRow, BackupStatus, RunKind};

use crate::deletion::{delete_backup, delete_copy, finish_interrupted_deletions, remove_local_archive};
use crate::exit::{Exit, UsageError};
use crate::results::{Kept, PruneResult, PrunedCopy};
use crate::retention::{kept, Candidate, Rules};
use crate::session::Session;

/// The rules must say something: refused (exit 2) before anything is opened otherwise.
pub fn check_rules(rules: &Rules) -> anyhow::Result<()> {
    if rules.keep_last.is_none() && rules.keep_within.is_none() && rules.keep_pre_upgrade.is_none() {
        return Err(UsageError("give at least one of --keep-last, --keep-within, --keep-pre-upgrade".into()).into());
    }
    Ok(())
}

fn candidate(row: &BackupRow) -> Candidate {
    Candidate {
        id: row.id,
        created_at: DateTime::parse_from_rfc3339(&row.created_at).map_or(DateTime::<Utc>::MIN_UTC, |t| t.to_utc()),
        pre_upgrade: row.kind == RunKind::PreUpgrade,
        usable: row.status == BackupStatus::Completed,
        verified: row.verify_ok == Some(true),
    }
}

/// Applies `rules` (checked with [`check_rules`]) to local storage and each remote; with `dry_run`, deletes
/// nothing. `on_deleted` hears of each backup as soon as it is deleted entirely (or, with `dry_run`, would be).
pub async fn prune(
    session: &Session,
    rules: &Rules,
    dry_run: bool,
    on_deleted: &mut dyn FnMut(&BackupRow),
) -> anyhow::Result<(PruneResult, Exit)> {
    check_rules(rules)?;
    let (config, catalog) = (&session.config, &session.catalog);
    if !dry_run {
        finish_interrupted_deletions(config, catalog).await?;
    }
    let rows = catalog.list_backups(&Default::default())?;
    let live: Vec<&BackupRow> = rows.iter().filter(|r| !r.deleting).collect();

    // Local storage: the backups whose archive is still here.
    let local: Vec<Candidate> = live
        .iter()
        .filter(|r| r.local_removed_at.is_none())
        .map(|r| candidate(r))
        .collect();
    let local_keeps = kept(&local, rules);
    let mut keeps: BTreeMap<i64, Vec<String>> = local_keeps.clone();
    // Each remote: the backups with a copy there, under its own rules.
    let mut remote_keeps: BTreeSet<(i64, String)> = BTreeSet::new();
    for remote in &config.remotes {
        let name = &remote.spec.name;
        let there: Vec<Candidate> = live
            .iter()
            .filter(|r| r.copies.iter().any(|c| &c.location == name))
            .map(|r| candidate(r))
            .collect();
        for (id, because) in kept(&there, remote.keep.as_ref().unwrap_or(rules)) {
            remote_keeps.insert((id, name.clone()));
            keeps
                .entry(id)
                .or_default()
                .extend(because.into_iter().map(|b| format!("remote {name}: {b}")));
        }
    }

    let mut deleted = Vec::new();
    let mut local_removed = Vec::new();
    let mut copies_deleted = Vec::new();
    for row in &live {
        let local_here = row.local_removed_at.is_none();
        let keep_local = local_here && local_keeps.contains_key(&row.id);
        let kept_copies: Vec<_> = row
            .copies
            .iter()
            .filter(|c| remote_keeps.contains(&(row.id, c.location.clone())))
            .collect();
        if !keep_local && kept_copies.is_empty() {
            if !dry_run {
                delete_backup(config, catalog, row).await?;
            }
            on_deleted(row);
            deleted.push(row.id);
            continue;
        }
        for copy in row.copies.iter().filter(|c| config.remote(&c.location).is_some()) {
            if !remote_keeps.contains(&(row.id, copy.location.clone())) {
                if !dry_run {
                    delete_copy(config, catalog, copy).await?;
                }
                copies_deleted.push(PrunedCopy {
                    backup: row.id,
                    remote: copy.location.clone(),
                    key: copy.key.clone(),
                });
            }
        }
        if local_here && !keep_local {
            if !dry_run {
                prune_local_archive(session, row)?;
            }
            local_removed.push(row.id);
        }
    }
    deleted.sort_unstable();
    let result = PruneResult {
        dry_run,
        deleted,
        local_removed,
        copies_deleted,
        kept: keeps.into_iter().map(|(id, because)| Kept { id, because }).collect(),
        backups: rows,
    };
    if !dry_run {
        crate::metrics::refresh(config, catalog);
    }
    Ok((result, Exit::Success))
}

/// Removes a backup's local archive that only a remote keeps: recorded first, so a crash leaves a row that says
/// "pruned locally" (restores fetch it back), never one that claims a missing archive.
fn prune_local_archive(session: &Session, row: &BackupRow) -> anyhow::Result<()> {
    session.catalog.local_archive_removed(row.id, Utc::now())?;
    remove_local_archive(row)
}

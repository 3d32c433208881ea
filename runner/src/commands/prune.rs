//! `hookrun prune`: deletes the backups no retention rule keeps (see `retention`), each crash-safely.

use std::path::Path;

use chrono::{DateTime, Utc};
use hookrun_catalog::BackupStatus;

use crate::config::Check;
use crate::deletion::{delete_backup, finish_interrupted_deletions};
use crate::exit::{Exit, UsageError};
use crate::report::out;
use crate::retention::{kept, to_delete, Candidate, Rules};
use crate::session::Session;

/// Applies `rules`; with `dry_run`, only says what it would delete. Either way it says why each kept backup is kept.
pub async fn prune(config_path: &Path, rules: Rules, dry_run: bool, json: bool) -> anyhow::Result<Exit> {
    if rules.keep_last.is_none() && rules.keep_within.is_none() && rules.keep_pre_upgrade.is_none() {
        return Err(UsageError("give at least one of --keep-last, --keep-within, --keep-pre-upgrade".into()).into());
    }
    let session = Session::open_unless_dry_run(config_path, Check::Shape, json, dry_run).await?;
    let catalog = &session.catalog;
    if !dry_run {
        finish_interrupted_deletions(catalog)?;
    }
    let rows = catalog.list_backups(&Default::default())?;
    let candidates: Vec<Candidate> = rows
        .iter()
        .filter(|r| !r.deleting)
        .map(|r| Candidate {
            id: r.id,
            created_at: DateTime::parse_from_rfc3339(&r.created_at).map_or(DateTime::<Utc>::MIN_UTC, |t| t.to_utc()),
            pre_upgrade: r.kind == "pre-upgrade",
            usable: r.status == BackupStatus::Completed.as_str(),
            verified: r.verify_ok == Some(true),
        })
        .collect();
    let doomed = to_delete(&candidates, &rules);
    let kept = kept(&candidates, &rules);
    for row in rows.iter().filter(|r| doomed.contains(&r.id)) {
        if !dry_run {
            delete_backup(catalog, row)?;
        }
        if !json {
            let verb = if dry_run { "would delete" } else { "deleted" };
            crate::say!(
                "{verb} backup {} ({} {}, {})",
                row.id,
                row.kind,
                row.created_at,
                row.path.as_deref().unwrap_or("no archive")
            );
        }
    }
    if json {
        let kept: Vec<_> = kept
            .iter()
            .map(|(id, because)| serde_json::json!({ "id": id, "because": because }))
            .collect();
        out::document(&serde_json::json!({ "dry_run": dry_run, "deleted": doomed, "kept": kept }));
        return Ok(Exit::Success);
    }
    for row in rows.iter().filter(|r| kept.contains_key(&r.id)) {
        crate::say!(
            "keeps backup {} ({} {}): {}",
            row.id,
            row.kind,
            row.created_at,
            kept[&row.id].join("; ")
        );
    }
    if doomed.is_empty() {
        crate::say!("nothing to prune: every backup is kept by a rule");
    }
    Ok(Exit::Success)
}

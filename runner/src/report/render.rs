//! Commands' typed results rendered: for people (lines on stdout, through `out`) or as the command's one `--json`
//! document. A JSON document has its keys in alphabetical order at every level, as `serde_json::Value` holds them.
//! Also what a session returns (recovered and interrupted runs) and what long commands say as they go.

use std::path::Path;

use hookrun_archive::size::human_bytes;
use hookrun_catalog::{BackupRow, RunRow, UpgradeStatus};
use serde::Serialize;

use super::human::HumanReporter;
use super::{out, RunReport};
use crate::estimates::HookEstimate;
use crate::recovery::Recovered;
use crate::results::{
    CheckResult, DeleteResult, EstimateResult, ListResult, MigrateResult, Moved, NewHookResult, PlanResult,
    PruneResult, RecoverResult, RestorePlan, RestoreResult, ShowResult, SyncFailure, SyncResult, Synced, UpgradeResult,
    Verified, VerifyResult,
};
use crate::say;
use crate::upgrade::RecoveredUpgrade;

/// A result people can read.
pub trait Human {
    /// Its lines, on stdout.
    fn human(&self);

    /// Whether it serializes with its keys in alphabetical order at every level already (its types declare their
    /// fields so, and a test checks it), so that its document is written as it serializes rather than through a
    /// sorted copy of it: that copy made a list of 100,000 backups three times slower than `sqlite3 -json`.
    const SORTED: bool = false;
}

/// Renders `result` for people, or with `json` as the command's one document, its keys in alphabetical order.
pub fn render<T: Serialize + Human>(result: &T, json: bool) {
    if json && T::SORTED {
        out::document(result);
    } else if json {
        out::sorted_document(result);
    } else {
        result.human();
    }
}

/// What recovering the runs that died before did: a line each on stdout, or under `--json` a warning each on stderr
/// (stdout holds the one document).
pub fn recovered(recovered: &[Recovered], json: bool) {
    for recovered in recovered {
        if json {
            tracing::warn!("{}", recovered.describe());
        } else {
            out::line(&recovered.describe());
        }
    }
}

/// What finishing the upgrades that died before did: a line each on stdout, or under `--json` on stderr.
pub fn recovered_upgrades(upgrades: &[RecoveredUpgrade], json: bool) {
    for u in upgrades {
        let line = format!("upgrade {} (died during {}): {}", u.upgrade_id, u.phase, u.done);
        if json {
            tracing::warn!("{line}");
        } else {
            out::line(&line);
        }
    }
}

/// A warning on stderr for each run that died without finishing and was left as it is.
pub fn interrupted(runs: &[RunRow]) {
    for run in runs {
        tracing::warn!(
            "run {} ({} v{}, started {}) was interrupted during {} and may have left services stopped: \
             run `hookrun recover` (the next backup, restore or prune does it first)",
            run.id,
            run.kind,
            run.version,
            run.started_at,
            run.phase
        );
    }
}

/// A run's result: its summary for people (after the hook lines `human` printed as it went), or its document.
pub fn run(human: &HumanReporter, report: &RunReport, json: bool) {
    if json {
        out::document(report);
    } else {
        human.summary(report);
    }
}

/// A restore's result: [`run`], then (for people) the copies its clean-up kept or removed, a line each.
pub fn restore(human: &HumanReporter, result: &RestoreResult, json: bool) {
    run(human, &result.report, json);
    if !json {
        for line in result.leftovers() {
            out::line(line);
        }
    }
}

/// The line before a restore's run starts (for people).
pub fn restoring(plan: &RestorePlan) {
    say!("restoring backup {}", describe_backup(&plan.row));
}

/// The question a restore asks on a terminal before it changes anything, waiting on the same line for its answer.
pub fn restore_question(plan: &RestorePlan) {
    let places: Vec<String> = plan.targets.iter().map(|t| t.to.display().to_string()).collect();
    let services = plan.stops_project.as_deref().map_or(String::new(), |p| {
        format!(", stopping the services of Compose project {p} meanwhile")
    });
    out::prompt(&format!(
        "Restore backup {}? This replaces {}{services}. [y/N] ",
        describe_backup(&plan.row),
        places.join(", ")
    ));
}

/// A backup in words: `3 (pre-upgrade v1.2.3, created 2026-12-02T03:25:58.123Z)`.
fn describe_backup(backup: &BackupRow) -> String {
    format!(
        "{} ({} v{}, created {})",
        backup.id, backup.kind, backup.version, backup.created_at
    )
}

/// A backup `prune` deleted (or would delete), as it goes (for people).
pub fn pruned(row: &BackupRow, dry_run: bool) {
    let verb = if dry_run { "would delete" } else { "deleted" };
    say!(
        "{verb} backup {} ({} {}, {})",
        row.id,
        row.kind,
        row.created_at,
        row.path.as_deref().unwrap_or("no archive")
    );
}

/// An archive `migrate-storage` moved, as it goes (for people).
pub fn moved(moved: &Moved) {
    say!("moved backup {} to {}", moved.id, moved.to.display());
}

/// A backup `verify` verified, as it goes (for people).
pub fn verified(verified: &Verified) {
    let place = verified
        .remote
        .as_ref()
        .map(|r| format!(" (copy on {r})"))
        .unwrap_or_default();
    match &verified.error {
        None => say!(
            "ok      {}{place} {}",
            verified.id,
            verified.path.as_deref().unwrap_or("-")
        ),
        Some(e) => say!("FAILED  {}{place} {e}", verified.id),
    }
}

impl Human for CheckResult {
    fn human(&self) {
        for hook in &self.hooks {
            say!("ok  {:<16} {} (line {})", hook.name, hook.kind, hook.line);
        }
        say!("{}: {} hooks ok", self.config.display(), self.hooks.len());
    }
}

impl Human for NewHookResult {
    fn human(&self) {
        say!("created {}: a WASM hook crate (see its README.md)", self.dir.display());
        say!("build it:  {}", self.build);
        say!("module:    {}", self.module.display());
    }
}

impl Human for crate::results::InitResult {
    fn human(&self) {
        say!(
            "wrote {} for project {}: {} services, {} volumes, {} bind mounts",
            self.path.display(),
            self.project,
            self.services.len(),
            self.volumes.len(),
            self.binds.len()
        );
        for suggestion in &self.suggestions {
            say!("  a dump hook is suggested (commented out) for {suggestion}");
        }
        say!("check it with `hookrun hooks check`, then see what a backup takes with `hookrun plan`");
    }
}

impl Human for DeleteResult {
    fn human(&self) {
        say!(
            "deleted backup {} ({})",
            self.backup.id,
            self.backup.path.as_deref().unwrap_or("no archive")
        );
    }
}

impl Human for EstimateResult {
    fn human(&self) {
        for e in &self.backups {
            say!("backup hook {}:", e.hook);
            estimate(e, "  ");
        }
    }
}

/// The human lines of one estimate, each prefixed with `indent`.
fn estimate(e: &HookEstimate, indent: &str) {
    for s in &e.estimate.sources {
        say!(
            "{indent}source {:<32} {:<9} {:>8} files {:>10}",
            s.source.archive_path,
            s.source.kind,
            s.stats.files,
            human_bytes(s.stats.bytes)
        );
    }
    for mount in &e.estimate.mounts {
        say!("{indent}mount {}", mount.describe());
    }
    say!(
        "{indent}archive ~{} ({:.0}% of {}, from a compressed sample); storage has {} free, the preflight needs {}: {}",
        human_bytes(e.estimate.estimated_archive_bytes),
        e.estimate.compression_ratio * 100.0,
        human_bytes(e.estimate.bytes),
        human_bytes(e.free_bytes),
        human_bytes(e.estimate.need_bytes),
        e.preflight
    );
}

impl Human for ListResult {
    const SORTED: bool = true;

    fn human(&self) {
        if self.backups.is_empty() {
            say!("no backups");
        } else {
            say!(
                "{:>4}  {:<11}  {:<12}  {:<9}  {:<8}  {:<24}  {:>10}  {:<16}  FILE",
                "ID",
                "TYPE",
                "VERSION",
                "STATUS",
                "VERIFIED",
                "CREATED",
                "SIZE",
                "COPIES"
            );
        }
        for b in &self.backups {
            let file = b
                .path
                .as_deref()
                .and_then(|p| Path::new(p).file_name())
                .map(|f| f.to_string_lossy().into_owned());
            let local = (b.path.is_some() && b.local_removed_at.is_none()).then_some("local");
            let copies: Vec<&str> = local
                .into_iter()
                .chain(b.copies.iter().map(|c| c.location.as_str()))
                .collect();
            say!(
                "{:>4}  {:<11}  {:<12}  {:<9}  {:<8}  {:<24}  {:>10}  {:<16}  {}",
                b.id,
                b.kind,
                b.version,
                b.status,
                verified_column(b),
                b.created_at,
                b.size.map(|s| human_bytes(s as u64)).unwrap_or_else(|| "-".into()),
                if copies.is_empty() {
                    "-".to_string()
                } else {
                    copies.join(",")
                },
                file.unwrap_or_else(|| "-".into()),
            );
        }
        for b in self.backups.iter().filter(|b| b.verify_ok == Some(false)) {
            say!(
                "backup {} failed its last verification ({}): {}",
                b.id,
                b.verified_at.as_deref().unwrap_or("-"),
                b.verify_error.as_deref().unwrap_or("no reason recorded")
            );
        }
        for file in &self.unknown_archives {
            out::line(&file.describe());
        }
    }
}

/// The VERIFIED column: the outcome of the last `hookrun verify` (`-` when never verified).
fn verified_column(b: &BackupRow) -> &'static str {
    match b.verify_ok {
        None => "-",
        Some(true) => "ok",
        Some(false) => "FAILED",
    }
}

impl Human for MigrateResult {
    /// The closing line (each archive moved was said as it went, see [`moved`]).
    fn human(&self) {
        say!("{} archive(s) moved; {}", self.moved.len(), self.next);
    }
}

impl Human for PlanResult {
    fn human(&self) {
        say!("config   {}", self.config.display());
        say!("work dir {}", self.runner.work_dir.display());
        say!("storage  {}", self.runner.storage_dir.display());
        say!("catalog  {}", self.runner.catalog.display());
        for (index, hook) in self.hooks.iter().enumerate() {
            let timeout = humantime::format_duration(std::time::Duration::from_secs(hook.timeout_secs));
            let (when, on_error) = (
                format!("{:?}", hook.when).to_lowercase(),
                format!("{:?}", hook.on_error).to_lowercase(),
            );
            say!(
                "{:>2}. {:<16} {:<8} when={when} on_error={on_error} timeout={timeout}",
                index + 1,
                hook.name,
                hook.kind
            );
            if let Some(backup) = &hook.backup {
                say!(
                    "      as {} level {}{}",
                    backup.compression.name(),
                    backup.compression_level,
                    if backup.include_artifacts {
                        ", with the hooks' artifacts under hooks/<name>/"
                    } else {
                        ""
                    }
                );
                estimate(&backup.estimate, "      ");
            }
        }
        if let Some(project) = &self.runner.project {
            let compose = if self.runner.archive_compose_files {
                ", and its Compose files (config files, .env) under compose/"
            } else {
                ""
            };
            say!(
                "a pre-upgrade backup records every container of {project} (configuration, image ID, kept by a \
                 hookrun-rollback/ tag){compose}"
            );
            let command = self.upgrade.command.as_ref().map_or_else(
                || "the command given after `--`".to_string(),
                |c| format!("`{}`", c.join(" ")),
            );
            say!(
                "hookrun upgrade runs {command} (at most {}), then its gate waits up to {} for every service to be \
                 running and healthy, and {} more to see it stay so",
                humantime::format_duration(self.upgrade.timeout),
                humantime::format_duration(self.upgrade.gate_timeout),
                humantime::format_duration(self.upgrade.healthy_for)
            );
        }
    }
}

impl Human for PruneResult {
    /// Why each kept backup is kept (each deleted one was said as it went, see [`pruned`]).
    fn human(&self) {
        for (row, because) in self.kept_backups() {
            say!(
                "keeps backup {} ({} {}): {}",
                row.id,
                row.kind,
                row.created_at,
                because.join("; ")
            );
        }
        for id in &self.local_removed {
            say!(
                "{} the local archive of backup {id}: only a remote keeps it",
                if self.dry_run { "would remove" } else { "removed" }
            );
        }
        for copy in &self.copies_deleted {
            say!(
                "{} backup {}'s copy on {} ({}): its remote's rules do not keep it",
                if self.dry_run { "would delete" } else { "deleted" },
                copy.backup,
                copy.remote,
                copy.key
            );
        }
        if self.deleted.is_empty() && self.local_removed.is_empty() && self.copies_deleted.is_empty() {
            say!("nothing to prune: every backup is kept by a rule");
        }
    }
}

impl Human for SyncResult {
    /// The totals (each upload was said as it went, see [`synced`]).
    fn human(&self) {
        say!(
            "{} uploaded, {} already there, {} failed",
            self.uploaded.len(),
            self.already,
            self.failed.len()
        );
    }
}

/// One upload of `sync`, as it ends (for people).
pub fn synced(outcome: Result<&Synced, &SyncFailure>) {
    match outcome {
        Ok(s) => say!(
            "uploaded backup {} to {}: {} ({}{}{}) in {:.1}s",
            s.backup,
            s.remote,
            s.key,
            human_bytes(s.bytes),
            if s.encrypted { ", encrypted" } else { "" },
            if s.already_there {
                ", already there from an earlier upload"
            } else {
                ""
            },
            s.duration_ms as f64 / 1000.0
        ),
        Err(f) => say!("FAILED  backup {} to {}: {}", f.backup, f.remote, f.error),
    }
}

impl Human for RecoverResult {
    fn human(&self) {
        if self.recovered.is_empty() && self.upgrades.is_empty() {
            say!("nothing to recover: no run was interrupted");
        }
        for r in &self.recovered {
            out::line(&r.describe());
        }
        for u in &self.upgrades {
            say!("upgrade {} (died during {}): {}", u.upgrade_id, u.phase, u.done);
        }
        for leftover in &self.removed {
            say!("removed {}: {}", leftover.path, leftover.what);
        }
    }
}

impl Human for RestorePlan {
    /// What the restore would do, step by step, the stop and start of the project included (a dry run).
    fn human(&self) {
        say!("restore of backup {} would:", describe_backup(&self.row));
        say!("  check the archive and extract every tree beside its target, with the services still running");
        if let Some(project) = &self.stops_project {
            say!("  stop the running services of Compose project {project}, dependents first");
        }
        for t in &self.targets {
            let verb = if t.replaces { "replace" } else { "create" };
            say!("  {verb} {} with {} from the archive", t.to.display(), t.from.display());
        }
        if let Some(project) = &self.stops_project {
            say!("  start the services of {project} again, dependencies first");
        }
        say!("nothing was changed (dry run)");
    }
}

impl Human for ShowResult {
    fn human(&self) {
        let value = serde_json::to_value(&self.backup).unwrap_or_default();
        for (key, value) in value.as_object().into_iter().flatten() {
            // The archive's writing time is said in words below, not as a bare `duration_ms` one would take for the
            // run's.
            if !value.is_null() && key != "duration_ms" && key != "copies" {
                say!(
                    "{key:<12} {}",
                    value.as_str().map_or_else(|| value.to_string(), str::to_string)
                );
            }
        }
        if let Some(ms) = self.backup.duration_ms {
            say!("written in   {:.2}s (the archive alone)", ms as f64 / 1000.0);
        }
        for copy in &self.backup.copies {
            let verified = match (copy.verify_ok, &copy.verified_at) {
                (Some(true), Some(at)) => format!(", verified {at}"),
                (Some(false), _) => format!(
                    ", last read-back FAILED: {}",
                    copy.verify_error.as_deref().unwrap_or("-")
                ),
                _ => String::new(),
            };
            say!(
                "copy         {}: {} ({}{}, uploaded {}{verified})",
                copy.location,
                copy.key,
                human_bytes(copy.size as u64),
                if copy.encrypted { ", age-encrypted" } else { "" },
                copy.uploaded_at
            );
        }
        if let Some(run) = &self.run {
            let took = run
                .duration_ms
                .map(|ms| format!(", took {:.2}s", ms as f64 / 1000.0))
                .unwrap_or_default();
            say!(
                "run          {} ({}, {}, started {}{took})",
                run.id,
                run.kind,
                run.status.as_str(),
                run.started_at
            );
            if let Some(error) = &run.error {
                say!("run error    {error}");
            }
        }
        for hook in &self.hooks {
            let took = hook.duration_ms.map(|ms| format!(" {ms} ms")).unwrap_or_default();
            let error = hook.error.as_ref().map(|e| format!(": {e}")).unwrap_or_default();
            say!(
                "  {:>2} {:<16} {:<10} {}{took}{error}",
                hook.seq,
                hook.name,
                hook.hook_type,
                hook.status
            );
        }
        for source in &self.sources {
            // The hooks' artifacts were staged for the run only: their folder is gone, the archive holds them.
            let from = match source.kind.as_str() {
                "artifacts" => "the hooks' artifact folders (staged for the run, removed after it)",
                "compose" => "the Compose project's own files (put back by a rollback, listed below)",
                _ => source.host_path.as_str(),
            };
            say!("  source {:<9} {:<32} from {from}", source.kind, source.archive_path);
        }
        for service in &self.services {
            let downtime = service
                .downtime_ms
                .map(|ms| format!(", down {ms} ms"))
                .unwrap_or_default();
            say!("  service {:<12} {}{downtime}", service.service, service.state);
        }
        for c in &self.deployment.containers {
            let state = if c.running { "running" } else { "not running" };
            let kept = c
                .rollback_tag
                .as_deref()
                .map_or_else(|| "image not kept by a tag".to_string(), |tag| format!("kept as {tag}"));
            say!(
                "  ran {:<12} {} {} ({}, {state}; {kept})",
                c.service,
                c.name,
                c.image,
                c.image_id
            );
        }
        for file in &self.deployment.compose_files {
            say!("  compose file {} from {}", file.archive_path, file.host_path);
        }
    }
}

impl Human for VerifyResult {
    /// The archives the catalog does not know (each backup verified was said as it went, see [`verified`]).
    fn human(&self) {
        for file in &self.unknown_archives {
            out::line(&format!("FAILED  {}", file.describe()));
        }
    }
}

impl Human for UpgradeResult {
    fn human(&self) {
        let Some(upgrade) = &self.upgrade else { return };
        if let Some(backup) = self.pre_upgrade.as_ref().and_then(|r| r.backup.as_ref()) {
            let kept = self
                .pre_upgrade
                .as_ref()
                .and_then(|r| r.deployment.as_ref())
                .map(|d| {
                    format!(
                        " with {} container(s) and {} Compose file(s) recorded",
                        d.containers.len(),
                        d.compose_files.len()
                    )
                })
                .unwrap_or_default();
            say!("rollback point: backup {} ({}){kept}", backup.id, backup.status);
        }
        for (name, gate) in [("gate", &self.gate), ("gate after the rollback", &self.rollback_gate)] {
            if let Some(gate) = gate {
                let took = gate.waited_ms as f64 / 1000.0;
                match &gate.failure {
                    None => say!("{name}: passed in {took:.1}s ({} healthy)", gate.expected.join(", ")),
                    Some(why) => say!("{name}: failed after {took:.1}s: {why}"),
                }
            }
        }
        for (service, ms) in &upgrade.downtime {
            say!("service {service}: down {:.1}s in all", *ms as f64 / 1000.0);
        }
        let phases: Vec<String> = upgrade
            .phases
            .iter()
            .map(|(phase, ms)| format!("{phase} {:.1}s", *ms as f64 / 1000.0))
            .collect();
        let outcome = match upgrade.status {
            UpgradeStatus::Upgraded => format!("upgraded {} → {}", upgrade.from_version, upgrade.to_version),
            UpgradeStatus::RolledBack => format!(
                "rolled back to {} (the upgrade to {} failed)",
                upgrade.from_version, upgrade.to_version
            ),
            UpgradeStatus::RollbackFailed => "the rollback failed: a person is needed".to_string(),
            status => format!("{status}: nothing was upgraded"),
        };
        let error = upgrade.error.as_deref().map(|e| format!(": {e}")).unwrap_or_default();
        say!("upgrade {} {outcome} ({}){error}", upgrade.id, phases.join(", "));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::UnknownArchive;
    use hookrun_catalog::{BackupStatus, CopyRow, RunKind};

    /// A document of every kind of value a list holds: a backup with a copy, and an archive the catalog lacks.
    fn a_list() -> ListResult {
        let copy = CopyRow {
            backup_id: 7,
            duration_ms: 1200,
            encrypted: true,
            key: "hookrun/backup.tar.gz.age".into(),
            location: "offsite".into(),
            sha256: "ab".repeat(32),
            size: 4096,
            uploaded_at: "2026-12-04T10:00:00.000Z".into(),
            verified_at: Some("2026-12-04T11:00:00.000Z".into()),
            verify_error: None,
            verify_ok: Some(true),
        };
        let backup = BackupRow {
            bytes: Some(10),
            compression: Some("gzip-6".into()),
            copies: vec![copy],
            created_at: "2026-12-04T09:00:00.000Z".into(),
            deleting: false,
            duration_ms: Some(5),
            entry_count: Some(3),
            error: None,
            file_count: Some(2),
            id: 7,
            local_removed_at: None,
            path: Some("/storage/backup.tar.gz".into()),
            run_id: Some(9),
            sha256: Some("cd".repeat(32)),
            size: Some(4000),
            status: BackupStatus::Completed,
            kind: RunKind::PreUpgrade,
            verified_at: None,
            verify_error: None,
            verify_ok: None,
            version: "1.2.3".into(),
        };
        ListResult {
            backups: vec![backup],
            unknown_archives: vec![UnknownArchive {
                path: "/storage/stray.tar.gz".into(),
                size: 1,
            }],
        }
    }

    #[test]
    fn a_list_serializes_with_its_keys_in_alphabetical_order_at_every_level_as_it_is_declared() {
        let list = a_list();

        let direct = serde_json::to_string_pretty(&list).unwrap();
        let sorted = serde_json::to_string_pretty(&serde_json::to_value(&list).unwrap()).unwrap();

        const { assert!(ListResult::SORTED) };
        assert_eq!(
            direct, sorted,
            "a field of ListResult, BackupRow or CopyRow is out of order"
        );
    }
}

//! What the catalog says, as Prometheus metrics in the text format: written after every run to `[runner]
//! metrics_file` (node_exporter's textfile collector convention: a `.prom` file replaced atomically, so the collector
//! never reads half of one), and printed by `hookrun metrics`. Everything is derived from the catalog, so the file
//! says the same whichever command wrote it last.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use chrono::DateTime;
use hookrun_catalog::{BackupFilter, BackupStatus, Catalog, RunStatus};

/// How many of the newest runs the per-kind metrics are taken from.
const RUNS_READ: usize = 1000;

fn seconds(rfc3339: &str) -> Option<f64> {
    DateTime::parse_from_rfc3339(rfc3339)
        .ok()
        .map(|t| t.timestamp_millis() as f64 / 1000.0)
}

/// A label value, escaped as the text format wants (backslash, double quote, newline).
fn label(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// One metric family: its help, its type, and its samples (`{labels}` → value).
struct Family {
    name: &'static str,
    help: &'static str,
    kind: &'static str,
    samples: Vec<(String, f64)>,
}

impl Family {
    fn new(name: &'static str, kind: &'static str, help: &'static str) -> Self {
        Self {
            name,
            help,
            kind,
            samples: Vec::new(),
        }
    }

    fn add(&mut self, labels: &[(&str, &str)], value: f64) {
        let labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{}\"", label(v))).collect();
        let labels = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{}}}", labels.join(","))
        };
        self.samples.push((labels, value));
    }

    fn write(&self, out: &mut String) {
        let _ = writeln!(out, "# HELP {} {}", self.name, self.help);
        let _ = writeln!(out, "# TYPE {} {}", self.name, self.kind);
        for (labels, value) in &self.samples {
            let _ = writeln!(out, "{}{labels} {value}", self.name);
        }
    }
}

/// The metrics of `catalog`, in the text format.
pub fn render(catalog: &Catalog) -> anyhow::Result<String> {
    let runs = catalog.recent_runs(RUNS_READ)?;
    let mut last_success = Family::new(
        "hookrun_last_success_timestamp_seconds",
        "gauge",
        "When the newest run of this kind that completed finished (Unix time).",
    );
    let mut last_ok = Family::new(
        "hookrun_last_run_success",
        "gauge",
        "Whether the newest finished run of this kind completed (1) or not (0).",
    );
    let mut last_duration = Family::new(
        "hookrun_last_run_duration_seconds",
        "gauge",
        "How long the newest finished run of this kind took.",
    );
    let mut downtime = Family::new(
        "hookrun_last_run_service_downtime_seconds",
        "gauge",
        "How long each service the newest run that stopped services was down.",
    );
    let mut seen_success = Vec::new();
    let mut seen_last = Vec::new();
    let mut downtime_done = false;
    for run in runs.iter().filter(|r| r.status != RunStatus::Running) {
        let kind = run.kind.as_str();
        if !seen_last.contains(&kind) {
            seen_last.push(kind);
            last_ok.add(
                &[("kind", kind)],
                f64::from(u8::from(run.status == RunStatus::Completed)),
            );
            if let Some(ms) = run.duration_ms {
                last_duration.add(&[("kind", kind)], ms as f64 / 1000.0);
            }
        }
        if run.status == RunStatus::Completed && !seen_success.contains(&kind) {
            if let Some(at) = run.finished_at.as_deref().and_then(seconds) {
                seen_success.push(kind);
                last_success.add(&[("kind", kind)], at);
            }
        }
        if !downtime_done {
            let services = catalog.services(run.id)?;
            if !services.is_empty() {
                downtime_done = true;
                for s in services.iter().filter(|s| s.downtime_ms.is_some()) {
                    let ms = s.downtime_ms.unwrap_or(0);
                    downtime.add(&[("service", &s.service)], ms as f64 / 1000.0);
                }
            }
        }
    }

    let backups = catalog.list_backups(&BackupFilter {
        status: Some(BackupStatus::Completed),
        ..Default::default()
    })?;
    let mut size = Family::new(
        "hookrun_last_backup_size_bytes",
        "gauge",
        "The archive size of the newest completed backup of this kind.",
    );
    let mut newest: BTreeMap<&str, i64> = BTreeMap::new();
    for b in &backups {
        if let Some(bytes) = b.size {
            newest.insert(b.kind.as_str(), bytes);
        }
    }
    for (kind, bytes) in &newest {
        size.add(&[("kind", kind)], *bytes as f64);
    }
    let mut count = Family::new(
        "hookrun_backups",
        "gauge",
        "Completed backups held at each location (local storage, or a remote by name).",
    );
    let mut bytes = Family::new(
        "hookrun_backup_bytes",
        "gauge",
        "Bytes of the completed backups held at each location.",
    );
    let local: Vec<_> = backups
        .iter()
        .filter(|b| b.local_removed_at.is_none() && !b.deleting)
        .collect();
    count.add(&[("location", "local")], local.len() as f64);
    bytes.add(
        &[("location", "local")],
        local.iter().filter_map(|b| b.size).sum::<i64>() as f64,
    );
    let mut remotes: BTreeMap<String, (u64, i64)> = BTreeMap::new();
    for copy in backups.iter().flat_map(|b| &b.copies) {
        let entry = remotes.entry(copy.location.clone()).or_default();
        entry.0 += 1;
        entry.1 += copy.size;
    }
    for (location, (n, total)) in &remotes {
        count.add(&[("location", location)], *n as f64);
        bytes.add(&[("location", location)], *total as f64);
    }

    let mut verify_ok = Family::new(
        "hookrun_last_verify_success",
        "gauge",
        "Whether the most recent verification of a backup passed (1) or failed (0).",
    );
    let mut verify_at = Family::new(
        "hookrun_last_verify_timestamp_seconds",
        "gauge",
        "When the most recent verification of a backup ran (Unix time).",
    );
    let last_verified = backups
        .iter()
        .filter_map(|b| Some((seconds(b.verified_at.as_deref()?)?, b.verify_ok?)))
        .max_by(|a, b| a.0.total_cmp(&b.0));
    if let Some((at, ok)) = last_verified {
        verify_ok.add(&[], f64::from(u8::from(ok)));
        verify_at.add(&[], at);
    }

    let mut out = String::new();
    for family in [
        &last_success,
        &last_ok,
        &last_duration,
        &downtime,
        &size,
        &count,
        &bytes,
        &verify_ok,
        &verify_at,
    ] {
        if !family.samples.is_empty() {
            family.write(&mut out);
        }
    }
    Ok(out)
}

/// Writes the metrics of `catalog` to `path` atomically (a temporary file beside it, fsynced, renamed over it), so
/// that a collector reading it never sees half a file.
pub fn write(catalog: &Catalog, path: &Path) -> anyhow::Result<()> {
    use std::io::Write;
    let text = render(catalog)?;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let written = (|| -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        anyhow::bail!("cannot write the metrics file {}: {e}", path.display());
    }
    Ok(())
}

/// After a command changed the catalog: writes `[runner] metrics_file` when one is configured. A failure is
/// logged, never the command's.
pub fn refresh(config: &crate::config::Config, catalog: &Catalog) {
    if let Some(path) = &config.runner.metrics_file {
        if let Err(e) = write(catalog, path) {
            tracing::warn!("{e:#}");
        }
    }
}

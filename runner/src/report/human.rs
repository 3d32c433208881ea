//! The human reporter: one line per hook on stdout as the chain goes, and a progress bar on a terminal.

use std::sync::Mutex;
use std::time::Duration;

use hookrun_archive::size::human_bytes;
use hookrun_hooks::context::{NOTHING_TO_DO_OUTPUT, SUMMARY_OUTPUT};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::{out, RunReport};
use crate::event::{Event, EventSink, Outcome};

/// Renders events as lines; draws byte progress on stderr when it is a terminal.
#[derive(Default)]
pub struct HumanReporter {
    bar: Mutex<Option<ProgressBar>>,
    /// The hook running now: the progress bar is labelled with it (a snapshot runs its backup's work).
    running: Mutex<String>,
    /// Sentences hooks asked the summary to say once.
    notes: Mutex<Vec<String>>,
}

impl HumanReporter {
    fn line(&self, text: String) {
        let bar = self.bar.lock().unwrap_or_else(|p| p.into_inner());
        match bar.as_ref() {
            Some(bar) => bar.suspend(|| out::line(&text)),
            None => out::line(&text),
        }
    }

    fn finish_bar(&self) {
        if let Some(bar) = self.bar.lock().unwrap_or_else(|p| p.into_inner()).take() {
            bar.finish_and_clear();
        }
    }

    /// The closing lines of a run.
    pub fn summary(&self, report: &RunReport) {
        for note in self.notes.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            self.line(note.clone());
        }
        for mount in &report.mounts {
            self.line(mount.describe());
        }
        for service in &report.services {
            let downtime = service
                .downtime_ms
                .map(|ms| format!(", down {:.1}s", ms as f64 / 1000.0))
                .unwrap_or_default();
            self.line(format!(
                "service {} ({}): {}{downtime}",
                service.service, service.container_name, service.state
            ));
        }
        if let Some(backup) = &report.backup {
            let place = backup.path.as_deref().unwrap_or("(no archive)");
            let size = backup.size.map(|s| human_bytes(s as u64)).unwrap_or_default();
            self.line(format!("backup {} {}: {place} {size}", backup.id, backup.status));
            if let Some(sha) = &backup.sha256 {
                self.line(format!("  sha256 {sha}, {} files", backup.file_count.unwrap_or(0)));
            }
        }
        let took = humantime::format_duration(Duration::from_millis(report.duration_ms - report.duration_ms % 10));
        if let (Some(backup), None) = (report.restore_of, &report.error) {
            self.line(format!("restored backup {backup}"));
        }
        match (report.run_id, &report.error) {
            (None, error) => self.line(format!(
                "run refused before anything was touched (nothing recorded): {}",
                error.as_deref().unwrap_or("a preflight check failed")
            )),
            (Some(id), None) => self.line(format!("run {id} {} in {took}", report.status)),
            (Some(id), Some(error)) => self.line(format!("run {id} {} in {took}: {error}", report.status)),
        }
    }
}

impl EventSink for HumanReporter {
    fn emit(&self, event: &Event) {
        match event {
            Event::PreflightFailed { hook, error } => self.line(format!("! preflight of {hook} failed: {error}")),
            Event::Prepared {
                name,
                kind,
                did,
                elapsed,
            } => {
                self.finish_bar();
                self.line(format!(
                    "✓ {name} ({kind}) {:.2}s before the stop: {did}",
                    elapsed.as_secs_f64()
                ));
            }
            Event::HookStarted { name, .. } => *self.running.lock().unwrap_or_else(|p| p.into_inner()) = name.clone(),
            Event::HookSkipped { name, kind, reason, .. } => self.line(format!("- {name} ({kind}) skipped: {reason}")),
            Event::HookFinished {
                name,
                kind,
                outcome,
                elapsed,
                outputs,
                ..
            } => {
                self.finish_bar();
                if let Some(note) = outputs.get(SUMMARY_OUTPUT) {
                    self.notes.lock().unwrap_or_else(|p| p.into_inner()).push(note.clone());
                }
                if let (Outcome::Completed, Some(why)) = (outcome, outputs.get(NOTHING_TO_DO_OUTPUT)) {
                    return self.line(format!("- {name} ({kind}) had nothing left to do: {why}"));
                }
                let took = format!("{:.2}s", elapsed.as_secs_f64());
                self.line(match outcome {
                    Outcome::Completed => format!("✓ {name} ({kind}) {took}"),
                    Outcome::Failed { error } => format!("✗ {name} ({kind}) {took}: {error}"),
                    Outcome::Continued { error } => {
                        format!("~ {name} ({kind}) {took}: {error} (on_error = continue)")
                    }
                });
            }
            Event::Progress(progress) => {
                let mut bar = self.bar.lock().unwrap_or_else(|p| p.into_inner());
                let bar = bar.get_or_insert_with(|| {
                    let bar = ProgressBar::with_draw_target(Some(progress.total), ProgressDrawTarget::stderr());
                    bar.set_style(
                        ProgressStyle::with_template("{prefix} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}")
                            .expect("valid template")
                            .progress_chars("=> "),
                    );
                    let running = self.running.lock().unwrap_or_else(|p| p.into_inner()).clone();
                    // Before the first hook runs (a preparation's progress) the progress names its hook.
                    bar.set_prefix(if running.is_empty() {
                        progress.hook.clone()
                    } else {
                        running
                    });
                    bar
                });
                bar.set_position(progress.done);
            }
            Event::Interrupted { signal } => self.line(format!(
                "! {signal}: stopping the current hook, then running the failure/always hooks"
            )),
            Event::UpgradePhase { phase, doing } => self.line(format!("== {phase}: {doing}")),
            Event::CommandOutput { line } => self.line(format!("  | {line}")),
            Event::Fetched(f) => self.line(format!(
                "== fetched: backup {}'s archive from remote {} ({}, {}) because {}",
                f.backup,
                f.remote,
                f.key,
                hookrun_archive::size::human_bytes(f.bytes),
                f.because
            )),
        }
    }
}

/// Under `--json` (stdout holds the one document): the upgrade's phases and its command's output, on stderr.
pub struct CommandOutputToStderr;

impl EventSink for CommandOutputToStderr {
    fn emit(&self, event: &Event) {
        match event {
            Event::UpgradePhase { phase, doing } => out::error_line(&format!("== {phase}: {doing}")),
            Event::CommandOutput { line } => out::error_line(&format!("  | {line}")),
            _ => {}
        }
    }
}

//! The operations the web UI starts — back up, verify, restore, roll back, upgrade, recover — each through the same
//! library calls as its command, on a thread of its own, one at a time (the storage lock: a second one, or one while
//! a CLI run holds the lock, is refused as `busy: run N`). Each operation keeps what its events said (current hook,
//! bytes done of how many, the services' states from the run's journal, a log) for the page and its live stream.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use chrono::Utc;
use futures_util::FutureExt;
use hookrun_catalog::{Catalog, RunKind};
use hookrun_hooks::ProgressSink;
use serde::Serialize;
use tokio::sync::{oneshot, watch};

use crate::commands;
use crate::commands::restore::Pick;
use crate::config::Check;
use crate::event::{Event, EventSink, Outcome};
use crate::exit::Exit;
use crate::lock::LockHeld;
use crate::session::{ReadSession, Session};

/// The log lines an operation keeps (the oldest go first).
const LOG_LINES: usize = 1000;

/// What an operator asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// `hookrun backup`.
    Backup,
    /// `hookrun verify ID`.
    Verify { id: i64 },
    /// `hookrun restore ID [--only …] --yes`.
    Restore { id: i64, only: Vec<String> },
    /// `hookrun rollback [--to ID] --yes`.
    Rollback { to: Option<i64> },
    /// `hookrun upgrade --version FROM --to TO` with the configured command.
    Upgrade { from: String, to: String },
    /// `hookrun recover`.
    Recover,
}

impl Request {
    /// The operation as the command line would say it.
    pub fn title(&self) -> String {
        match self {
            Request::Backup => "backup".into(),
            Request::Verify { id } => format!("verify {id}"),
            Request::Restore { id, only } if only.is_empty() => format!("restore {id}"),
            Request::Restore { id, only } => format!("restore {id} --only {}", only.join(" ")),
            Request::Rollback { to: None } => "rollback".into(),
            Request::Rollback { to: Some(id) } => format!("rollback --to {id}"),
            Request::Upgrade { from, to } => format!("upgrade --version {from} --to {to}"),
            Request::Recover => "recover".into(),
        }
    }
}

/// Why an operation did not start.
#[derive(Debug)]
pub enum Refusal {
    /// Another operation or run holds the storage lock: `busy: run N (…)`.
    Busy(String),
    /// It could not start (a broken `hooks.toml`, an unknown backup, …): the error, one line.
    Failed(String),
}

/// A service as the run's journal has it now.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceState {
    pub service: String,
    pub state: String,
    pub downtime_ms: Option<i64>,
}

/// How an operation ended.
#[derive(Debug, Clone, Serialize)]
pub struct Finished {
    pub ok: bool,
    pub exit_code: u8,
    /// One line: what happened, or the error.
    pub summary: String,
    /// The command's `--json` document.
    pub document: serde_json::Value,
}

/// What the page shows of an operation, and what its event stream sends.
#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    pub id: u64,
    pub title: String,
    pub started_at: String,
    /// The hook running now (or the backup being verified).
    pub hook: Option<String>,
    pub done: u64,
    pub total: u64,
    pub unit: String,
    /// Whole percent of `total`, when it is known.
    pub percent: Option<u64>,
    pub eta_seconds: Option<u64>,
    /// The run the operation is (or was last) in, from the journal.
    pub run_id: Option<i64>,
    pub services: Vec<ServiceState>,
    pub log: VecDeque<String>,
    pub finished: Option<Finished>,
}

/// Progress of the current hook, for the ETA: when it was first seen and how far it was then.
struct Rate {
    hook: String,
    since: Instant,
    from: u64,
}

/// One operation: its state, and a counter bumped on every change (the stream waits on it).
pub struct Operation {
    state: Mutex<Snapshot>,
    rate: Mutex<Option<Rate>>,
    catalog: Mutex<Option<Arc<Catalog>>>,
    changed: watch::Sender<u64>,
}

impl Operation {
    fn new(id: u64, title: String) -> Self {
        let snapshot = Snapshot {
            id,
            title,
            started_at: Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            hook: None,
            done: 0,
            total: 0,
            unit: String::new(),
            percent: None,
            eta_seconds: None,
            run_id: None,
            services: Vec::new(),
            log: VecDeque::new(),
            finished: None,
        };
        Self {
            state: Mutex::new(snapshot),
            rate: Mutex::new(None),
            catalog: Mutex::new(None),
            changed: watch::channel(0).0,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Snapshot> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The operation as it is now, with its services' states read from the journal.
    pub fn snapshot(&self) -> Snapshot {
        self.refresh_services();
        self.lock().clone()
    }

    /// The counter of changes, bumped on every event and at the end: the event stream waits on it.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    fn bump(&self) {
        self.changed.send_modify(|n| *n += 1);
    }

    fn log(&self, line: String) {
        let mut state = self.lock();
        if state.log.len() == LOG_LINES {
            state.log.pop_front();
        }
        state
            .log
            .push_back(hookrun_archive::escape::escape_controls(&line).into_owned());
    }

    /// The run this process journals now (the newest unfinished run with this pid), and its services' states.
    fn refresh_services(&self) {
        let Some(catalog) = self.catalog.lock().unwrap_or_else(|e| e.into_inner()).clone() else {
            return;
        };
        let finished = self.lock().finished.is_some();
        if !finished {
            let pid = std::process::id() as i64;
            if let Some(run) = catalog
                .unfinished_runs()
                .ok()
                .and_then(|runs| runs.into_iter().rev().find(|r| r.pid == pid))
            {
                self.lock().run_id = Some(run.id);
            }
        }
        let Some(run_id) = self.lock().run_id else { return };
        if let Ok(services) = catalog.services(run_id) {
            self.lock().services = services
                .into_iter()
                .map(|s| ServiceState {
                    service: s.service,
                    state: s.state,
                    downtime_ms: s.downtime_ms,
                })
                .collect();
        }
    }

    fn progress(&self, hook: &str, done: u64, total: u64, unit: &str) {
        let eta = {
            let mut rate = self.rate.lock().unwrap_or_else(|e| e.into_inner());
            match rate.as_ref() {
                Some(r) if r.hook == hook && done > r.from && total > done => {
                    let per_unit = r.since.elapsed().as_secs_f64() / (done - r.from) as f64;
                    Some((per_unit * (total - done) as f64).ceil() as u64)
                }
                Some(r) if r.hook == hook => None,
                _ => {
                    *rate = Some(Rate {
                        hook: hook.to_string(),
                        since: Instant::now(),
                        from: done,
                    });
                    None
                }
            }
        };
        let mut state = self.lock();
        state.hook = Some(hook.to_string());
        state.done = done;
        state.total = total;
        state.unit = unit.to_string();
        state.percent = (total > 0).then(|| (done.min(total) * 100) / total);
        state.eta_seconds = if done >= total {
            Some(0).filter(|_| total > 0)
        } else {
            eta
        };
    }

    fn finish(&self, finished: Finished) {
        self.refresh_services();
        self.log(format!("{} (exit {})", finished.summary, finished.exit_code));
        self.lock().finished = Some(finished);
        self.bump();
    }
}

impl EventSink for Operation {
    fn emit(&self, event: &Event) {
        match event {
            Event::PreflightFailed { hook, error } => self.log(format!("preflight of {hook} refused the run: {error}")),
            Event::HookStarted { name, kind, .. } => {
                {
                    let mut state = self.lock();
                    state.hook = Some(name.clone());
                    state.done = 0;
                    state.total = 0;
                    state.percent = None;
                    state.eta_seconds = None;
                }
                self.log(format!("{name} ({kind}) started"));
            }
            Event::Prepared { name, did, .. } => self.log(format!("{name}, before the stop: {did}")),
            Event::HookSkipped { name, reason, .. } => self.log(format!("{name} skipped: {reason}")),
            Event::HookFinished {
                name, outcome, elapsed, ..
            } => self.log(match outcome {
                Outcome::Completed => format!("{name} completed in {:.1} s", elapsed.as_secs_f64()),
                Outcome::Failed { error } => format!("{name} failed: {error}"),
                Outcome::Continued { error } => format!("{name} failed, the chain goes on: {error}"),
            }),
            Event::Progress(p) => self.progress(&p.hook, p.done, p.total, p.unit),
            Event::Interrupted { signal } => self.log(format!(
                "interrupted by {signal}: stopping, then bringing the services back"
            )),
            Event::UpgradePhase { phase, doing } => self.log(format!("{phase}: {doing}")),
            Event::CommandOutput { line } => self.log(format!("| {line}")),
            Event::Fetched(f) => self.log(format!(
                "fetched backup {} from remote {} ({} bytes): {}",
                f.backup, f.remote, f.bytes, f.because
            )),
        }
        self.bump();
    }
}

/// Every operation started since the server started, and the one running.
#[derive(Default)]
pub struct Operations {
    all: Mutex<Vec<Arc<Operation>>>,
    running: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Operations {
    /// Operation `id`, if this server started it.
    pub fn get(&self, id: u64) -> Option<Arc<Operation>> {
        let all = self.all.lock().unwrap_or_else(|e| e.into_inner());
        all.iter().find(|op| op.lock().id == id).cloned()
    }

    /// Every operation, newest first.
    pub fn list(&self) -> Vec<Snapshot> {
        let all = self.all.lock().unwrap_or_else(|e| e.into_inner()).clone();
        all.iter().rev().map(|op| op.lock().clone()).collect()
    }

    /// Starts `request` on a thread of its own and returns once its session is open (the lock taken), or says why
    /// it could not start.
    pub async fn start(&self, config: PathBuf, request: Request) -> Result<Arc<Operation>, Refusal> {
        if let Some(busy) = self.busy() {
            return Err(Refusal::Busy(busy));
        }
        let id = self.all.lock().unwrap_or_else(|e| e.into_inner()).len() as u64 + 1;
        let op = Arc::new(Operation::new(id, request.title()));
        let (opened, on_open) = oneshot::channel();
        let running = {
            let op = op.clone();
            std::thread::Builder::new()
                .name(format!("hookrun-ui-op-{id}"))
                .spawn(move || run_on_own_runtime(op, config, request, opened))
                .map_err(|e| Refusal::Failed(format!("cannot start a thread: {e}")))?
        };
        match on_open.await {
            Ok(Ok(())) => {
                self.all.lock().unwrap_or_else(|e| e.into_inner()).push(op.clone());
                *self.running.lock().unwrap_or_else(|e| e.into_inner()) = Some(running);
                Ok(op)
            }
            // The thread ends on its own right after saying so.
            Ok(Err(refusal)) => Err(refusal),
            Err(_) => Err(Refusal::Failed("the operation's thread ended before it started".into())),
        }
    }

    /// `busy: …` while an operation of this server runs.
    fn busy(&self) -> Option<String> {
        let all = self.all.lock().unwrap_or_else(|e| e.into_inner());
        let running = all.iter().rev().find(|op| op.lock().finished.is_none())?;
        let state = running.snapshot();
        Some(match state.run_id {
            Some(run) => format!("busy: run {run} ({}, operation {})", state.title, state.id),
            None => format!("busy: operation {} ({})", state.id, state.title),
        })
    }

    /// Waits until the running operation (if any) has ended: a server shutting down lets it bring the services back.
    pub fn wait(&self) {
        let thread = self.running.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(thread) = thread {
            let _ = thread.join();
        }
    }
}

/// The operation's thread: a runtime of its own (the command's futures need not be `Send`), the session opened (the
/// lock taken; `opened` hears whether it was), then the command, and how it ended. A panic ends it as a failure.
fn run_on_own_runtime(
    op: Arc<Operation>,
    config: PathBuf,
    request: Request,
    opened: oneshot::Sender<Result<(), Refusal>>,
) {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            let _ = opened.send(Err(Refusal::Failed(format!("cannot start a runtime: {e}"))));
            return;
        }
    };
    runtime.block_on(async {
        let session = match open(&config, &request).await {
            Ok(session) => session,
            Err(error) => {
                let refusal = match error.downcast_ref::<LockHeld>() {
                    Some(held) => Refusal::Busy(format!("busy: {}", held.holder)),
                    None => Refusal::Failed(format!("{error:#}")),
                };
                let _ = opened.send(Err(refusal));
                return;
            }
        };
        *op.catalog.lock().unwrap_or_else(|e| e.into_inner()) = Some(session.catalog.clone());
        for recovered in &session.recovered {
            op.log(recovered.describe());
        }
        let _ = opened.send(Ok(()));
        let outcome = std::panic::AssertUnwindSafe(execute(&op, session, request))
            .catch_unwind()
            .await;
        let finished = match outcome {
            Ok(Ok(finished)) => finished,
            Ok(Err(error)) => Finished {
                ok: false,
                exit_code: Exit::for_error(&error).code(),
                summary: format!("{error:#}"),
                document: serde_json::Value::Null,
            },
            Err(_) => Finished {
                ok: false,
                exit_code: Exit::Failed.code(),
                summary: "the operation panicked; see the server's log".into(),
                document: serde_json::Value::Null,
            },
        };
        op.finish(finished);
    });
}

/// The session an operation runs in, opened as its command opens it; verify and recover take the lock too, so that
/// the UI runs one operation at a time.
async fn open(config: &std::path::Path, request: &Request) -> anyhow::Result<Session> {
    match request {
        Request::Verify { .. } | Request::Recover => Session::lock(config, Check::Shape),
        Request::Backup | Request::Upgrade { .. } => Session::open(config, Check::Full).await,
        Request::Restore { .. } | Request::Rollback { .. } => Session::open(config, Check::Shape).await,
    }
}

/// Runs the command `request` names in `session`, its events to `op`.
async fn execute(op: &Arc<Operation>, mut session: Session, request: Request) -> anyhow::Result<Finished> {
    let events: &dyn EventSink = op.as_ref();
    if !matches!(request, Request::Recover) {
        session.ensure_recovered()?;
    }
    let (document, summary, exit) = match request {
        Request::Backup => {
            let (report, exit) = commands::run::run(&session, RunKind::Manual, None, events).await?;
            (serde_json::to_value(&report)?, run_summary(&report), exit)
        }
        Request::Verify { id } => {
            let read = ReadSession {
                config: session.config.clone(),
                catalog: Some(session.catalog.clone()),
            };
            let sink = op.clone();
            let progress = ProgressSink::new(move |p| sink.emit(&Event::Progress(p)));
            let (result, exit) = commands::verify::verify(&read, Some(id), false, None, &mut |_| {}, &progress).await?;
            let summary = match result.verified.first() {
                Some(v) if v.ok => format!("backup {id} verified: the archive is whole and restorable"),
                Some(v) => format!("backup {id} failed verification: {}", v.error.as_deref().unwrap_or("")),
                None => format!("backup {id} has no local archive to verify"),
            };
            (serde_json::to_value(&result)?, summary, exit)
        }
        Request::Restore { id, only } => {
            let plan = commands::restore::plan(&session, Pick::Id(id), only, false, false)?;
            let (result, exit) = commands::restore::execute(&session, plan, events).await?;
            (serde_json::to_value(&result.report)?, run_summary(&result.report), exit)
        }
        Request::Rollback { to } => {
            let pick = to.map_or(Pick::NewestPreUpgrade, Pick::Id);
            let plan = commands::restore::plan(&session, pick, Vec::new(), true, false)?;
            let (result, exit) = commands::restore::execute(&session, plan, events).await?;
            (serde_json::to_value(&result.report)?, run_summary(&result.report), exit)
        }
        Request::Upgrade { from, to } => {
            commands::run::check_version(Some(&from))?;
            commands::run::check_version(Some(&to))?;
            let command = commands::upgrade::command_for(&session.config, Vec::new())?;
            let request = commands::upgrade::UpgradeRequest { from, to, command };
            let (result, exit) = commands::upgrade::upgrade(&session, request, events).await?;
            let summary = match &result.upgrade {
                Some(u) => format!(
                    "upgrade {} from {} to {}: {}{}",
                    u.id,
                    u.from_version,
                    u.to_version,
                    u.status,
                    u.error.as_deref().map(|e| format!(": {e}")).unwrap_or_default()
                ),
                None => "the upgrade did not start".into(),
            };
            (serde_json::to_value(&result)?, summary, exit)
        }
        Request::Recover => {
            let (result, exit) = commands::recover::recover(&mut session).await?;
            let mut lines: Vec<String> = result.recovered.iter().map(|r| r.describe()).collect();
            lines.extend(
                result
                    .upgrades
                    .iter()
                    .map(|u| format!("upgrade {}: {}", u.upgrade_id, u.done)),
            );
            let summary = if lines.is_empty() {
                "nothing to recover".to_string()
            } else {
                lines.join("; ")
            };
            (serde_json::to_value(&result)?, summary, exit)
        }
    };
    Ok(Finished {
        ok: exit == Exit::Success,
        exit_code: exit.code(),
        summary,
        document,
    })
}

/// A run's outcome in one line.
fn run_summary(report: &crate::report::RunReport) -> String {
    let what = match (report.run_id, report.restore_of) {
        (Some(run), Some(backup)) => format!("run {run} (restore of backup {backup})"),
        (Some(run), None) => format!("run {run}"),
        (None, _) => "the run".to_string(),
    };
    let backup = report
        .backup
        .as_ref()
        .filter(|_| report.restore_of.is_none())
        .map(|b| format!(", backup {}", b.id))
        .unwrap_or_default();
    match &report.error {
        None => format!("{what} {}{backup}", report.status),
        Some(error) => format!("{what} {}{backup}: {error}", report.status),
    }
}

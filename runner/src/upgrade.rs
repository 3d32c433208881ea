//! The upgrade itself, for `hookrun upgrade` and for `hookrun recover` when an upgrade died: the pre-upgrade chain
//! (its backup records what ran), the upgrade command, the health gate, and — when the command fails, times out or
//! the gate fails — the automatic rollback (the backup's data, Compose files and containers put back, the gate
//! again). Every phase is journalled in the upgrade's catalog row before it starts, so a dead upgrade can be
//! finished as a person would expect (see [`finish_interrupted`]).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use chrono::Utc;
use hookrun_catalog::{BackupStatus, Deployment, NewUpgrade, UpgradePhase, UpgradeRow, UpgradeStatus};
use hookrun_docker::{dependencies_from_files, Engine, Gate};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::Command;

use crate::chain;
use crate::chain_run::run_chain;
use crate::config::Config;
use crate::event::{Event, EventSink};
use crate::exit::{Exit, UsageError};
use crate::interrupt::Interrupt;
use crate::report::RunReport;
use crate::restore_run::{self, Pick};
use crate::results::{GateReport, UpgradeResult};
use crate::session::Session;

/// Lines of the command's output kept in the upgrade's record.
const OUTPUT_TAIL_LINES: usize = 200;

/// How often the downtime watch looks at the project.
const WATCH_EVERY: Duration = Duration::from_millis(250);

/// What `hookrun upgrade` was asked to do.
#[derive(Debug, Clone)]
pub struct UpgradeRequest {
    /// The version running now.
    pub from: String,
    /// The version the command upgrades to.
    pub to: String,
    /// The command after `--`, or `[upgrade] command`.
    pub command: Vec<String>,
}

/// The command of an upgrade: the one given after `--`, else `[upgrade] command`; one of them is needed (exit 2).
pub fn command_for(config: &Config, given: Vec<String>) -> anyhow::Result<Vec<String>> {
    if !given.is_empty() {
        return Ok(given);
    }
    config.upgrade.command.clone().ok_or_else(|| {
        UsageError(format!(
            "no upgrade command: give it after `--` (hookrun upgrade --version OLD --to NEW -- COMMAND...) or set \
             `[upgrade] command` in {}",
            config.path.display()
        ))
        .into()
    })
}

/// Upgrades the configured project from `request.from` to `request.to` and either leaves it healthy on the new
/// version (exit 0) or rolls it back to exactly what ran before (exit 5); exit 1 when the pre-upgrade chain failed
/// (nothing was upgraded, services back), 3 when the rollback failed (a person is needed).
pub async fn upgrade(
    session: &Session,
    request: UpgradeRequest,
    events: &dyn EventSink,
) -> anyhow::Result<(UpgradeResult, Exit)> {
    let (config, catalog) = (&session.config, &session.catalog);
    let project = config.runner.project.clone().ok_or_else(|| {
        UsageError(format!(
            "hookrun upgrade needs `[runner] project` in {}",
            config.path.display()
        ))
    })?;
    let chain = chain::build(config)?;
    let id = catalog.begin_upgrade(&NewUpgrade {
        project: Some(&project),
        from_version: &request.from,
        to_version: &request.to,
        command: &request.command,
        started_at: Utc::now(),
        pid: std::process::id(),
    })?;
    let mut journal = PhaseClock::new(session, id);
    // One listener for the whole upgrade: a signal during the command or the gate rolls the upgrade back.
    let interrupt = Interrupt::listen()?;
    let mut downtime = BTreeMap::new();

    events.emit(&phase(
        UpgradePhase::PreUpgrade,
        format!("backing up {project} before {}", request.to),
    ));
    let (report, chain_exit) = run_chain(
        session,
        hookrun_catalog::RunKind::PreUpgrade,
        &request.from,
        &chain,
        None,
        events,
    )
    .await?;
    add_downtime(&mut downtime, &report);
    let backup = report.backup.clone().filter(|b| b.status == BackupStatus::Completed);
    catalog.upgrade_backup(id, report.run_id, backup.as_ref().map(|b| b.id))?;
    let deployment = report.deployment.clone().unwrap_or_default();
    let refusal = match (&backup, chain_exit) {
        (_, exit) if exit != Exit::Success => Some((
            format!(
                "the pre-upgrade chain failed ({}); nothing was upgraded",
                report.error.as_deref().unwrap_or("see its run")
            ),
            exit,
        )),
        (None, _) => Some((
            "the pre-upgrade chain recorded no usable backup (it needs `backup` and `record` hooks); nothing was \
             upgraded"
                .to_string(),
            Exit::Failed,
        )),
        _ if interrupt.signal().is_some() => Some((
            format!(
                "{} arrived; nothing was upgraded",
                interrupt.signal().unwrap_or_default()
            ),
            Exit::Failed,
        )),
        _ if !deployment.has_containers() && config.upgrade.rollback_command.is_none() => Some((
            "the pre-upgrade backup could not record the project's containers, so a rollback could not put them \
             back; nothing was upgraded"
                .to_string(),
            Exit::Failed,
        )),
        _ => None,
    };
    if let Some((error, exit)) = refusal {
        journal.finish(UpgradeStatus::Failed, Some(&error), &downtime)?;
        return Ok((
            UpgradeResult::new(catalog.upgrade(id)?, Some(report), None, None, None, exit),
            exit,
        ));
    }
    let backup = backup.expect("checked above");

    journal.enter(UpgradePhase::Command)?;
    events.emit(&phase(UpgradePhase::Command, request.command.join(" ")));
    let env = [
        ("HOOKRUN_FROM", request.from.clone()),
        ("HOOKRUN_TO", request.to.clone()),
        ("HOOKRUN_PROJECT", project.clone()),
        ("HOOKRUN_BACKUP_ID", backup.id.to_string()),
    ];
    let watch = DowntimeWatch::start(&project, running_services(&deployment)).await;
    let ran = run_command(&request.command, &env, config, &interrupt, events).await;
    catalog.upgrade_output(id, &ran.tail)?;
    let mut failure = ran.error;

    let mut gate = None;
    if failure.is_none() {
        journal.enter(UpgradePhase::Gate)?;
        let expected = expected_services(&deployment);
        events.emit(&phase(
            UpgradePhase::Gate,
            format!(
                "waiting for {} to be running and healthy for {}",
                expected.iter().cloned().collect::<Vec<_>>().join(", "),
                humantime::format_duration(config.upgrade.healthy_for)
            ),
        ));
        let passed = health_gate(config, &project, expected, &interrupt).await;
        failure = passed.failure.clone().map(|f| format!("health gate: {f}"));
        gate = Some(passed);
    }
    merge(&mut downtime, watch.stop().await);
    if failure.is_none() {
        journal.finish(UpgradeStatus::Upgraded, None, &downtime)?;
        let row = catalog.upgrade(id)?;
        return Ok((
            UpgradeResult::new(row, Some(report), gate, None, None, Exit::Success),
            Exit::Success,
        ));
    }
    let failure = failure.unwrap_or_default();
    let (rollback, rollback_gate, exit) = roll_back(
        session,
        &mut journal,
        backup.id,
        &deployment,
        &failure,
        &mut downtime,
        events,
    )
    .await?;
    let row = catalog.upgrade(id)?;
    Ok((
        UpgradeResult::new(row, Some(report), gate, rollback, rollback_gate, exit),
        exit,
    ))
}

/// Rolls upgrade `journal` back to backup `backup_id` after `failure`: the backup's data, Compose files and
/// containers put back by a restore run of its own, then the gate on the old version. Closes the upgrade's record:
/// `rolled-back` (exit 5) or `rollback-failed` (exit 3).
async fn roll_back(
    session: &Session,
    journal: &mut PhaseClock<'_>,
    backup_id: i64,
    deployment: &Deployment,
    failure: &str,
    downtime: &mut BTreeMap<String, u64>,
    events: &dyn EventSink,
) -> anyhow::Result<(Option<RunReport>, Option<GateReport>, Exit)> {
    let (config, catalog) = (&session.config, &session.catalog);
    journal.enter(UpgradePhase::Rollback)?;
    events.emit(&phase(
        UpgradePhase::Rollback,
        format!("{failure}; putting back backup {backup_id} (data, Compose files, containers)"),
    ));
    let outcome = async {
        let plan = restore_run::plan(session, Pick::Id(backup_id), Vec::new(), true, false)?;
        restore_run::execute(session, plan, events).await
    }
    .await;
    let (report, restored) = match outcome {
        Ok((result, exit)) => {
            if let Some(run_id) = result.report.run_id {
                catalog.upgrade_rollback_run(journal.id, run_id)?;
            }
            add_downtime(downtime, &result.report);
            let error = result.report.error.clone();
            (Some(result.report), (exit == Exit::Success).then_some(()).ok_or(error))
        }
        Err(e) => (None, Err(Some(format!("{e:#}")))),
    };
    if let Err(error) = restored {
        let error = format!(
            "{failure}; the rollback failed: {}",
            error.as_deref().unwrap_or("see its run")
        );
        journal.finish(UpgradeStatus::RollbackFailed, Some(&error), downtime)?;
        return Ok((report, None, Exit::ServicesDown));
    }
    let Some(project) = config.runner.project.clone() else {
        anyhow::bail!("an upgrade needs `[runner] project`");
    };
    let expected: BTreeSet<String> = running_services(deployment);
    let gate = health_gate(config, &project, expected, &Interrupt::default()).await;
    match &gate.failure {
        None => {
            journal.finish(UpgradeStatus::RolledBack, Some(failure), downtime)?;
            Ok((report, Some(gate), Exit::RolledBack))
        }
        Some(gate_failure) => {
            let error = format!("{failure}; rolled back, but the old version fails its health gate: {gate_failure}");
            journal.finish(UpgradeStatus::RollbackFailed, Some(&error), downtime)?;
            Ok((report, Some(gate), Exit::ServicesDown))
        }
    }
}

/// What recovering an upgrade that died did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RecoveredUpgrade {
    pub upgrade_id: i64,
    /// The phase it died in.
    pub phase: UpgradePhase,
    /// What recovery did about it, in a sentence.
    pub done: String,
    /// How it ends now.
    pub status: UpgradeStatus,
}

/// Finishes every upgrade that died (its process gone; the caller holds the lock), as a person would: one that died
/// in its pre-upgrade chain upgraded nothing (the run's own recovery started the services): `interrupted`. One that
/// died during its command, its gate or its rollback is rolled back to its backup (again, from the start: every step
/// of a rollback can be repeated). One that died after its gate passed is left as it is, `upgraded`.
pub async fn finish_interrupted(session: &Session, events: &dyn EventSink) -> anyhow::Result<Vec<RecoveredUpgrade>> {
    let catalog = &session.catalog;
    let mut recovered = Vec::new();
    for row in catalog.upgrades(true)? {
        let mut journal = PhaseClock::resume(session, &row);
        let mut downtime = row.downtime.clone();
        let (status, done) = match (row.phase, row.backup_id) {
            (UpgradePhase::PreUpgrade, _) | (_, None) => {
                let done = "died before its command ran: nothing was upgraded".to_string();
                journal.finish(UpgradeStatus::Interrupted, Some(&done), &downtime)?;
                (UpgradeStatus::Interrupted, done)
            }
            (UpgradePhase::Done, _) => {
                let done = "died after its gate passed: left upgraded".to_string();
                journal.finish(UpgradeStatus::Upgraded, None, &downtime)?;
                (UpgradeStatus::Upgraded, done)
            }
            (phase, Some(backup_id)) => {
                let failure = format!("hookrun died during the upgrade's {phase} phase");
                let deployment = catalog.deployment(backup_id)?;
                let (_, _, exit) = roll_back(
                    session,
                    &mut journal,
                    backup_id,
                    &deployment,
                    &failure,
                    &mut downtime,
                    events,
                )
                .await?;
                let status = if exit == Exit::RolledBack {
                    UpgradeStatus::RolledBack
                } else {
                    UpgradeStatus::RollbackFailed
                };
                (
                    status,
                    format!("{failure}; rolled back to backup {backup_id}: {status}"),
                )
            }
        };
        recovered.push(RecoveredUpgrade {
            upgrade_id: row.id,
            phase: row.phase,
            done,
            status,
        });
    }
    Ok(recovered)
}

/// The upgrade's record, phase by phase: each phase is written before it starts, with how long the one before took.
struct PhaseClock<'a> {
    session: &'a Session,
    id: i64,
    phase: UpgradePhase,
    since: Instant,
}

impl<'a> PhaseClock<'a> {
    fn new(session: &'a Session, id: i64) -> Self {
        Self {
            session,
            id,
            phase: UpgradePhase::PreUpgrade,
            since: Instant::now(),
        }
    }

    fn resume(session: &'a Session, row: &UpgradeRow) -> Self {
        Self {
            session,
            id: row.id,
            phase: row.phase,
            since: Instant::now(),
        }
    }

    fn enter(&mut self, phase: UpgradePhase) -> anyhow::Result<()> {
        let took = self.since.elapsed().as_millis() as u64;
        self.session
            .catalog
            .upgrade_phase(self.id, phase, Some((self.phase, took)))?;
        self.phase = phase;
        self.since = Instant::now();
        Ok(())
    }

    fn finish(
        &mut self,
        status: UpgradeStatus,
        error: Option<&str>,
        downtime: &BTreeMap<String, u64>,
    ) -> anyhow::Result<()> {
        self.enter(UpgradePhase::Done)?;
        self.session
            .catalog
            .finish_upgrade(self.id, status, error, downtime, Utc::now())?;
        Ok(())
    }
}

fn phase(phase: UpgradePhase, doing: String) -> Event {
    Event::UpgradePhase {
        phase: phase.as_str().to_string(),
        doing,
    }
}

/// Services that were running when the backup was taken.
fn running_services(deployment: &Deployment) -> BTreeSet<String> {
    deployment
        .containers
        .iter()
        .filter(|c| c.running)
        .map(|c| c.service.clone())
        .collect()
}

/// The services the gate expects after an upgrade: what ran before, and what the (new) Compose files add.
fn expected_services(deployment: &Deployment) -> BTreeSet<String> {
    let mut expected = running_services(deployment);
    let files: Vec<PathBuf> = deployment
        .compose_files
        .iter()
        .map(|f| PathBuf::from(&f.host_path))
        .filter(|f| f.file_name().is_some_and(|n| n != ".env"))
        .collect();
    match dependencies_from_files(&files) {
        Ok(services) => expected.extend(services.into_keys()),
        Err(e) => tracing::warn!("the gate expects only the services that ran before: {e}"),
    }
    expected
}

/// Waits for `expected` (and every container of the project) to be running and healthy for `[upgrade]
/// healthy_for`; a signal ends the wait as a failure.
async fn health_gate(config: &Config, project: &str, expected: BTreeSet<String>, interrupt: &Interrupt) -> GateReport {
    let began = Instant::now();
    let gate = Gate {
        project: project.to_string(),
        expected: expected.clone(),
        healthy_for: config.upgrade.healthy_for,
        timeout: config.upgrade.gate_timeout,
    };
    let outcome = async {
        let engine = Engine::connect().await.map_err(|e| e.to_string())?;
        tokio::select! {
            result = engine.health_gate(&gate) => match result {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(failed)) => Err(failed.to_string()),
                Err(e) => Err(e.to_string()),
            },
            () = interrupt.fired() => Err(format!("{} arrived", interrupt.signal().unwrap_or("a signal"))),
        }
    }
    .await;
    GateReport {
        expected: expected.into_iter().collect(),
        healthy_for_ms: config.upgrade.healthy_for.as_millis() as u64,
        waited_ms: began.elapsed().as_millis() as u64,
        failure: outcome.err(),
    }
}

/// How the upgrade command went.
struct Ran {
    /// Why it counts as failed (exit status, timeout, signal, could not start).
    error: Option<String>,
    /// The end of its output.
    tail: String,
}

/// Runs the upgrade command in the work dir (no shell unless it names one) with `env`, its output streamed as
/// events and kept in a tail; killed with its whole process group at `[upgrade] timeout` or a signal.
async fn run_command(
    command: &[String],
    env: &[(&str, String)],
    config: &Config,
    interrupt: &Interrupt,
    events: &dyn EventSink,
) -> Ran {
    let program = &command[0];
    let spawned = Command::new(program)
        .args(&command[1..])
        .current_dir(&config.runner.work_dir)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) => {
            return Ran {
                error: Some(format!("upgrade command `{program}` could not start: {e}")),
                tail: String::new(),
            }
        }
    };
    let pgid = child.id().and_then(|id| rustix::process::Pid::from_raw(id as i32));
    let (lines_tx, mut lines_rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let readers = [
        tokio::spawn(forward_lines(child.stdout.take().expect("piped"), lines_tx.clone())),
        tokio::spawn(forward_lines(child.stderr.take().expect("piped"), lines_tx)),
    ];
    let mut tail: VecDeque<String> = VecDeque::new();
    let mut keep = |line: String| {
        events.emit(&Event::CommandOutput { line: line.clone() });
        if tail.len() == OUTPUT_TAIL_LINES {
            tail.pop_front();
        }
        tail.push_back(line);
    };
    let timeout = tokio::time::sleep(config.upgrade.timeout);
    tokio::pin!(timeout);
    let kill = |why: String| {
        if let Some(pgid) = pgid {
            let _ = rustix::process::kill_process_group(pgid, rustix::process::Signal::Kill);
        }
        why
    };
    let mut output_open = true;
    let error = loop {
        tokio::select! {
            line = lines_rx.recv(), if output_open => match line {
                Some(line) => keep(line),
                None => output_open = false,
            },
            status = child.wait() => break match status {
                Ok(status) if status.success() => None,
                Ok(status) => Some(match status.code() {
                    Some(code) => format!("upgrade command `{program}` exited with status {code}"),
                    None => format!("upgrade command `{program}` was killed by a signal"),
                }),
                Err(e) => Some(format!("upgrade command `{program}` could not be waited for: {e}")),
            },
            () = &mut timeout => break Some(kill(format!(
                "upgrade command `{program}` did not finish within {}; it was killed",
                humantime::format_duration(config.upgrade.timeout)
            ))),
            () = interrupt.fired() => break Some(kill(format!(
                "{} arrived during the upgrade command `{program}`; it was killed",
                interrupt.signal().unwrap_or("a signal")
            ))),
        }
    };
    let _ = child.wait().await;
    for reader in readers {
        let _ = reader.await;
    }
    while let Ok(line) = lines_rx.try_recv() {
        keep(line);
    }
    Ran {
        error,
        tail: Vec::from(tail).join("\n"),
    }
}

async fn forward_lines(stream: impl AsyncRead + Unpin, to: tokio::sync::mpsc::UnboundedSender<String>) {
    let mut lines = BufReader::new(stream).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if to.send(line.chars().take(2000).collect()).is_err() {
            break;
        }
    }
}

/// Adds each service's downtime in a run to `downtime`.
fn add_downtime(downtime: &mut BTreeMap<String, u64>, report: &RunReport) {
    for service in &report.services {
        *downtime.entry(service.service.clone()).or_default() += service.downtime_ms.unwrap_or(0).max(0) as u64;
    }
}

fn merge(downtime: &mut BTreeMap<String, u64>, more: BTreeMap<String, u64>) {
    for (service, ms) in more {
        *downtime.entry(service).or_default() += ms;
    }
}

/// Measures, while the upgrade command and the gate run, how long each service of the project had no running
/// container (the command replaces them; hookrun does not stop them itself).
struct DowntimeWatch {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<BTreeMap<String, u64>>,
}

impl DowntimeWatch {
    /// Watches `services` of `project` from now on.
    async fn start(project: &str, services: BTreeSet<String>) -> Self {
        let (stop, mut stopped) = tokio::sync::oneshot::channel();
        let project = project.to_string();
        let task = tokio::spawn(async move {
            let mut totals = BTreeMap::<String, u64>::new();
            let Ok(engine) = Engine::connect().await else {
                return totals;
            };
            let mut last = Instant::now();
            loop {
                if let Ok(containers) = engine.project_containers(&project).await {
                    let elapsed = last.elapsed().as_millis() as u64;
                    last = Instant::now();
                    // A service with no container at all is down too.
                    let mut up: BTreeMap<String, bool> = services.iter().map(|s| (s.clone(), false)).collect();
                    for c in containers {
                        *up.entry(c.service).or_default() |= c.running;
                    }
                    for (service, running) in up {
                        let total = totals.entry(service).or_default();
                        if !running {
                            *total += elapsed;
                        }
                    }
                }
                tokio::select! {
                    _ = &mut stopped => break,
                    () = tokio::time::sleep(WATCH_EVERY) => {}
                }
            }
            totals
        });
        Self { stop, task }
    }

    async fn stop(self) -> BTreeMap<String, u64> {
        let _ = self.stop.send(());
        self.task.await.unwrap_or_default()
    }
}

//! The chain executor: runs hooks in order over one context, applies `when`, `on_error` and timeouts, and emits
//! events. It never prints.

use std::time::{Duration, Instant};

use hookrun_archive::escape::escape_controls;
use hookrun_hooks::{Failure, FailureClass, Hook, HookError, ProgressSink, RunContext};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::{OnError, When};
use crate::event::{Event, EventSink, Outcome};
use crate::interrupt::Interrupt;

/// How long a hook gets to clean up (remove its temporary files, kill its processes) once told to stop.
const GRACE: Duration = Duration::from_secs(30);

/// A hook ready to run, with the rules the chain applies to it.
pub struct ChainHook {
    pub hook: Box<dyn Hook>,
    pub when: When,
    pub on_error: OnError,
    pub timeout: Duration,
    /// Whether it may leave artifacts (false: a hook after the archive, whose files could not reach it).
    pub artifacts: bool,
}

/// How a run went.
#[derive(Debug, Clone, Default)]
pub struct RunOutcome {
    /// The first failure that counted (not `on_error = "continue"` ones).
    pub failure: Option<Failure>,
    /// The signal that interrupted the run, if one did.
    pub interrupted: Option<&'static str>,
    /// A preflight check refused the run: no hook ran, nothing was touched.
    pub refused: bool,
}

/// Runs the preflight checks, then each hook's preparation (with the services still running), then the chain. A
/// refused preflight or a failed preparation ends the run there: nothing was stopped, so no hook runs (not even
/// `always` ones). After the first failure of a hook (or a signal) only `failure` and `always`
/// hooks run.
pub async fn execute(
    chain: &[ChainHook],
    ctx: &mut RunContext,
    sink: &dyn EventSink,
    interrupt: &Interrupt,
) -> RunOutcome {
    for entry in chain.iter().filter(|e| e.when != When::Failure) {
        if let Err(error) = entry.hook.preflight(ctx).await {
            return refuse(entry, ctx, sink, &error.to_string(), error.class(), None);
        }
    }

    // Work before the chain, with the services still running; refused as a preflight is when it fails.
    for entry in chain.iter().filter(|e| e.when != When::Failure) {
        let started = Instant::now();
        match run_one(entry, ctx, sink, Some(interrupt), Phase::Prepare).await {
            Ok(None) => {}
            Ok(Some(did)) => sink.emit(&Event::Prepared {
                name: entry.hook.name().to_string(),
                kind: entry.hook.kind().to_string(),
                did: escape_controls(&did).into_owned(),
                elapsed: started.elapsed(),
            }),
            Err(stop) => {
                let interrupted = match stop {
                    Stop::Interrupted(signal) => Some(signal),
                    _ => None,
                };
                return refuse(entry, ctx, sink, &stop.to_string(), stop.class(), interrupted);
            }
        }
    }

    let mut interrupted = None;
    for (seq, entry) in chain.iter().enumerate() {
        let (name, kind) = (entry.hook.name().to_string(), entry.hook.kind().to_string());
        if let Some(reason) = skip_reason(entry.when, ctx.failure.is_some()) {
            sink.emit(&Event::HookSkipped {
                seq,
                name,
                kind,
                reason: reason.to_string(),
            });
            continue;
        }
        sink.emit(&Event::HookStarted {
            seq,
            name: name.clone(),
            kind: kind.clone(),
        });
        let started = Instant::now();
        // `always` hooks are the clean-up (bringing services back): a signal does not stop them, their timeout does.
        let watch = (interrupted.is_none() && entry.when != When::Always).then_some(interrupt);
        let result = run_one(entry, ctx, sink, watch, Phase::Run)
            .await
            .and_then(|_| no_lost_artifacts(entry, ctx));
        let outcome = match result {
            Ok(()) => Outcome::Completed,
            Err(stop) => {
                if let Stop::Interrupted(signal) = stop {
                    interrupted = Some(signal);
                    sink.emit(&Event::Interrupted {
                        signal: signal.to_string(),
                    });
                }
                let error = escape_controls(&stop.to_string()).into_owned();
                if entry.on_error == OnError::Continue && !matches!(stop, Stop::Interrupted(_)) {
                    Outcome::Continued { error }
                } else {
                    let class = stop.class();
                    match &mut ctx.failure {
                        None => {
                            ctx.failure = Some(Failure {
                                hook: name.clone(),
                                message: error.clone(),
                                class,
                            })
                        }
                        // Services that stay down outrank the failure that came first: the exit code says so.
                        Some(first) => first.class = first.class.max(class),
                    }
                    Outcome::Failed { error }
                }
            }
        };
        let outputs = ctx.outputs.get(&name).cloned().unwrap_or_default();
        sink.emit(&Event::HookFinished {
            seq,
            name,
            kind,
            outcome,
            elapsed: started.elapsed(),
            outputs,
        });
    }
    // A signal that arrived while only `always` hooks were left still fails the run.
    if let (None, Some(signal)) = (interrupted, interrupt.signal()) {
        interrupted = Some(signal);
        if ctx.failure.is_none() {
            let message = format!("interrupted by {signal}");
            ctx.failure = Some(Failure {
                hook: "(signal)".into(),
                message,
                class: FailureClass::Failed,
            });
        }
    }
    RunOutcome {
        failure: ctx.failure.clone(),
        interrupted,
        refused: false,
    }
}

/// Ends a run that `entry`'s preflight or preparation refused with `error`: nothing was stopped, no hook runs.
fn refuse(
    entry: &ChainHook,
    ctx: &mut RunContext,
    sink: &dyn EventSink,
    error: &str,
    class: FailureClass,
    interrupted: Option<&'static str>,
) -> RunOutcome {
    let hook = entry.hook.name().to_string();
    // What a hook reports may hold text from outside (its stderr, a file name): stored and shown escaped.
    let message = escape_controls(error).into_owned();
    sink.emit(&Event::PreflightFailed {
        hook: hook.clone(),
        error: message.clone(),
    });
    let failure = Failure { hook, message, class };
    ctx.failure = Some(failure.clone());
    RunOutcome {
        failure: Some(failure),
        interrupted,
        refused: true,
    }
}

/// A hook that runs after the archive is written (`artifacts = false`) fails if it wrote artifacts all the same:
/// they would never reach a backup.
fn no_lost_artifacts(entry: &ChainHook, ctx: &RunContext) -> Result<(), Stop> {
    if entry.artifacts {
        return Ok(());
    }
    let wrote = std::fs::read_dir(ctx.artifact_dir(entry.hook.name())).is_ok_and(|mut e| e.next().is_some());
    if wrote {
        Err(Stop::Error(HookError::UnarchivedArtifacts))
    } else {
        Ok(())
    }
}

/// Why a hook with this `when` does not run, given whether the run has failed.
fn skip_reason(when: When, failed: bool) -> Option<&'static str> {
    match (when, failed) {
        (When::Success, true) => Some("an earlier hook failed"),
        (When::Failure, false) => Some("nothing failed"),
        _ => None,
    }
}

/// Why a hook did not complete.
enum Stop {
    Error(HookError),
    Timeout(Duration),
    Interrupted(&'static str),
}

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stop::Error(e) => e.fmt(f),
            Stop::Timeout(after) => {
                write!(f, "timed out after {}", humantime::format_duration(*after))
            }
            Stop::Interrupted(signal) => write!(f, "interrupted by {signal}"),
        }
    }
}

/// Runs one hook under its timeout (and, until the first signal, the interrupt), passing its progress on. A hook
/// told to stop gets `GRACE` to clean up.
impl Stop {
    fn class(&self) -> FailureClass {
        match self {
            Stop::Error(e) => e.class(),
            Stop::Timeout(_) | Stop::Interrupted(_) => FailureClass::Failed,
        }
    }
}

/// Which of a hook's steps `run_one` runs.
#[derive(Clone, Copy)]
enum Phase {
    /// `Hook::prepare`, before the chain.
    Prepare,
    /// `Hook::run`, its place in the chain.
    Run,
}

async fn run_one(
    entry: &ChainHook,
    ctx: &mut RunContext,
    sink: &dyn EventSink,
    interrupt: Option<&Interrupt>,
    phase: Phase,
) -> Result<Option<String>, Stop> {
    let cancel = CancellationToken::new();
    let (progress_tx, mut progress_rx) = mpsc::unbounded_channel();
    ctx.cancel = cancel.clone();
    ctx.progress = ProgressSink::new(move |p| {
        let _ = progress_tx.send(p);
    });

    let run = async {
        match phase {
            Phase::Prepare => entry.hook.prepare(ctx).await,
            Phase::Run => entry.hook.run(ctx).await.map(|()| None),
        }
    };
    tokio::pin!(run);
    let deadline = tokio::time::sleep(entry.timeout);
    tokio::pin!(deadline);
    let stop = loop {
        tokio::select! {
            result = &mut run => return result.map_err(Stop::Error),
            Some(progress) = progress_rx.recv() => sink.emit(&Event::Progress(progress)),
            () = &mut deadline => break Stop::Timeout(entry.timeout),
            () = fired(interrupt) => break Stop::Interrupted(interrupt.and_then(Interrupt::signal).unwrap_or("a signal")),
        }
    };
    cancel.cancel();
    if tokio::time::timeout(GRACE, &mut run).await.is_err() {
        tracing::warn!(
            hook = entry.hook.name(),
            "did not stop within {}s of being told to",
            GRACE.as_secs()
        );
    }
    Err(stop)
}

async fn fired(interrupt: Option<&Interrupt>) {
    match interrupt {
        Some(interrupt) => interrupt.fired().await,
        None => std::future::pending().await,
    }
}

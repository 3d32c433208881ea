//! Stopping and starting one container, and waiting until it is really back (running, or healthy when it has a
//! healthcheck).

use std::time::{Duration, Instant};

use bollard::container::{LogsOptions, StartContainerOptions, StopContainerOptions};
use bollard::errors::Error as BollardError;
use bollard::models::HealthStatusEnum;
use chrono::{DateTime, Utc};
use futures_util::StreamExt;

use super::engine::Engine;
use super::project::ProjectContainer;
use crate::DockerError;

/// How often a starting container is looked at.
const POLL: Duration = Duration::from_millis(200);

/// How long a container without a healthcheck must keep running to count as started.
const SETTLE: Duration = Duration::from_secs(1);

/// Log lines attached to a start failure.
const LOG_TAIL_LINES: usize = 10;

/// What a started container reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readiness {
    /// Running (it has no healthcheck).
    Running,
    /// Its healthcheck passes.
    Healthy,
}

/// A container that came back: what it reached and when it was first seen there, which ends its downtime (the
/// settle check that follows only confirms it stayed up).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Started {
    pub readiness: Readiness,
    pub at: DateTime<Utc>,
}

/// Why a container did not come back, with the end of its log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartError {
    pub reason: String,
    pub logs: String,
}

/// A 304 "not modified": the container already was where we wanted it.
fn not_modified(error: &BollardError) -> bool {
    matches!(error, BollardError::DockerResponseServerError { status_code: 304, .. })
}

impl Engine {
    /// Stops `container`, giving it `grace_secs` before the engine kills it. Stopping a stopped container succeeds.
    pub async fn stop(&self, container: &ProjectContainer, grace_secs: i64) -> Result<(), DockerError> {
        match self
            .docker
            .stop_container(&container.id, Some(StopContainerOptions { t: grace_secs }))
            .await
        {
            Ok(()) => Ok(()),
            Err(e) if not_modified(&e) => Ok(()),
            Err(e) => Err(DockerError::StopService {
                service: container.service.clone(),
                container: container.name.clone(),
                source: e,
            }),
        }
    }

    /// Starts container `id` and waits until it runs (and, when it has a healthcheck, is healthy), at most
    /// `timeout`.
    pub async fn start_and_wait(&self, id: &str, timeout: Duration) -> Result<Started, StartError> {
        let fail = |reason: String| async move {
            StartError {
                reason,
                logs: self.logs_tail(id).await,
            }
        };
        match self
            .docker
            .start_container(id, None::<StartContainerOptions<String>>)
            .await
        {
            Ok(()) => {}
            Err(e) if not_modified(&e) => {}
            Err(e) => return Err(fail(format!("start refused: {e}")).await),
        }
        // No deadline arithmetic can overflow: a timeout too long to add is one that never comes.
        let deadline = Instant::now().checked_add(timeout);
        // (since when, and since which engine start) the container has been seen running
        let mut seen_running: Option<(Instant, DateTime<Utc>, Option<String>)> = None;
        loop {
            let state = match self.docker.inspect_container(id, None).await {
                Ok(inspect) => inspect.state.unwrap_or_default(),
                Err(e) => return Err(fail(format!("cannot inspect: {e}")).await),
            };
            let running = state.running.unwrap_or(false);
            // The engine reports a health state only for containers that have a healthcheck.
            let health = state
                .health
                .and_then(|h| h.status)
                .filter(|h| *h != HealthStatusEnum::NONE);
            let wait_healthy = health.is_some();
            if !running && !state.restarting.unwrap_or(false) {
                let code = state.exit_code.unwrap_or_default();
                return Err(fail(format!("exited with code {code}")).await);
            }
            match (wait_healthy, running, health) {
                (false, true, _) => {
                    // A container without a healthcheck must stay up for a moment: one that crashes at once
                    // after starting is "running" for an instant.
                    match &seen_running {
                        Some((since, at, started)) if *started == state.started_at => {
                            if since.elapsed() >= SETTLE {
                                return Ok(Started {
                                    readiness: Readiness::Running,
                                    at: *at,
                                });
                            }
                        }
                        _ => seen_running = Some((Instant::now(), Utc::now(), state.started_at.clone())),
                    }
                }
                (true, true, Some(HealthStatusEnum::HEALTHY)) => {
                    return Ok(Started {
                        readiness: Readiness::Healthy,
                        at: Utc::now(),
                    })
                }
                (true, _, Some(HealthStatusEnum::UNHEALTHY)) => {
                    return Err(fail("its healthcheck reports unhealthy".to_string()).await)
                }
                _ => {}
            }
            if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
                let wanted = if wait_healthy { "healthy" } else { "running" };
                return Err(fail(format!("not {wanted} within {}", humantime::format_duration(timeout))).await);
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// The last lines the container logged, joined with ` | ` (empty when there are none or they cannot be read).
    pub async fn logs_tail(&self, id: &str) -> String {
        let options = LogsOptions::<String> {
            stdout: true,
            stderr: true,
            tail: LOG_TAIL_LINES.to_string(),
            ..Default::default()
        };
        let mut stream = self.docker.logs(id, Some(options));
        let mut lines = Vec::new();
        while let Some(Ok(chunk)) = stream.next().await {
            lines.extend(
                chunk
                    .to_string()
                    .lines()
                    .map(|l| l.trim().to_string())
                    .filter(|l| !l.is_empty()),
            );
        }
        let skip = lines.len().saturating_sub(LOG_TAIL_LINES);
        lines[skip..].join(" | ")
    }
}

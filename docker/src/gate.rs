//! The health gate an upgrade (and its rollback) must pass: every expected service of the project has a container,
//! every container of the project runs (healthy, when it has a healthcheck), none restarts or has exited, and it
//! stays so for a while.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use bollard::models::HealthStatusEnum;

use super::engine::Engine;
use crate::DockerError;

/// How often the gate looks.
const POLL: Duration = Duration::from_millis(500);

/// What the gate waits for.
#[derive(Debug, Clone)]
pub struct Gate {
    /// The Compose project.
    pub project: String,
    /// Services that must each have a running container.
    pub expected: BTreeSet<String>,
    /// How long everything must stay healthy.
    pub healthy_for: Duration,
    /// How long the project gets to become healthy in the first place.
    pub timeout: Duration,
}

/// A gate passed: how long it took in all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GatePassed {
    pub waited: Duration,
}

/// Why the gate failed: the service, and what was wrong with it (with the end of its log).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("service {service}: {reason}")]
pub struct GateFailed {
    pub service: String,
    pub reason: String,
}

/// One container as the gate sees it.
struct Seen {
    id: String,
    service: String,
    verdict: Verdict,
    restarts: i64,
}

enum Verdict {
    Good,
    /// Not yet (its healthcheck is still starting).
    Pending(String),
    /// Failed for good.
    Bad(String),
}

impl Engine {
    /// Waits until the project passes `gate`, or says which service failed it and why. Docker errors (the engine
    /// gone) are errors of their own.
    pub async fn health_gate(&self, gate: &Gate) -> Result<Result<GatePassed, GateFailed>, DockerError> {
        let began = Instant::now();
        let deadline = began.checked_add(gate.timeout);
        let mut healthy_since: Option<Instant> = None;
        let mut first_restarts: HashMap<String, i64> = HashMap::new();
        loop {
            let seen = self.look(&gate.project).await?;
            let mut pending: Option<(String, String)> = None;
            let mut by_service: BTreeMap<&str, usize> = BTreeMap::new();
            for container in &seen {
                *by_service.entry(container.service.as_str()).or_default() += 1;
                let restarts = *first_restarts.entry(container.id.clone()).or_insert(container.restarts);
                if container.restarts > restarts {
                    return Ok(Err(self
                        .failed(
                            container,
                            format!("restarted {} time(s)", container.restarts - restarts),
                        )
                        .await));
                }
                match &container.verdict {
                    Verdict::Good => {}
                    Verdict::Pending(why) => pending = Some((container.service.clone(), why.clone())),
                    Verdict::Bad(why) => return Ok(Err(self.failed(container, why.clone()).await)),
                }
            }
            if let Some(missing) = gate.expected.iter().find(|s| !by_service.contains_key(s.as_str())) {
                pending = Some((missing.clone(), "has no container".to_string()));
            }
            match pending {
                None => {
                    let since = *healthy_since.get_or_insert_with(Instant::now);
                    if since.elapsed() >= gate.healthy_for {
                        return Ok(Ok(GatePassed {
                            waited: began.elapsed(),
                        }));
                    }
                }
                Some((service, why)) => {
                    if healthy_since.is_some() {
                        // It was healthy and is not any more.
                        return Ok(Err(GateFailed { service, reason: why }));
                    }
                    if deadline.is_some_and(|d| Instant::now() >= d) {
                        let waited = humantime::format_duration(gate.timeout);
                        return Ok(Err(GateFailed {
                            service,
                            reason: format!("{why} after {waited}"),
                        }));
                    }
                }
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// The project's containers and the gate's verdict on each.
    async fn look(&self, project: &str) -> Result<Vec<Seen>, DockerError> {
        let mut seen = Vec::new();
        for id in self.project_container_ids(project).await? {
            let inspect = match self.docker.inspect_container(&id, None).await {
                Ok(inspect) => inspect,
                // Removed between the list and now (the upgrade is still replacing it): look again next time.
                Err(_) => continue,
            };
            let labels = inspect.config.and_then(|c| c.labels).unwrap_or_default();
            let state = inspect.state.unwrap_or_default();
            let health = state
                .health
                .and_then(|h| h.status)
                .filter(|h| *h != HealthStatusEnum::NONE);
            let verdict = if state.restarting.unwrap_or(false) {
                Verdict::Bad("is restarting".to_string())
            } else if !state.running.unwrap_or(false) {
                Verdict::Bad(format!("has exited (code {})", state.exit_code.unwrap_or_default()))
            } else {
                match health {
                    Some(HealthStatusEnum::UNHEALTHY) => Verdict::Bad("its healthcheck reports unhealthy".to_string()),
                    Some(HealthStatusEnum::HEALTHY) | None => Verdict::Good,
                    Some(_) => Verdict::Pending("is not healthy yet".to_string()),
                }
            };
            seen.push(Seen {
                service: labels.get("com.docker.compose.service").cloned().unwrap_or_default(),
                restarts: inspect.restart_count.unwrap_or_default(),
                verdict,
                id,
            });
        }
        Ok(seen)
    }

    async fn failed(&self, container: &Seen, reason: String) -> GateFailed {
        let logs = self.logs_tail(&container.id).await;
        GateFailed {
            service: container.service.clone(),
            reason: if logs.is_empty() {
                reason
            } else {
                format!("{reason}; its log ends: {logs}")
            },
        }
    }
}

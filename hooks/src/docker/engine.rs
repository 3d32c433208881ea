//! The connection to the Docker engine: `DOCKER_HOST` or the default socket, checked before anything is touched.

use std::time::Duration;

use bollard::Docker;

use crate::HookError;

/// How long the engine gets to answer the first ping.
const PING_TIMEOUT: Duration = Duration::from_secs(10);

/// A connected engine.
#[derive(Debug, Clone)]
pub struct Engine {
    pub(crate) docker: Docker,
    address: String,
}

impl Engine {
    /// The address hookrun talks to: `DOCKER_HOST`, else the default socket.
    pub fn address() -> String {
        std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".to_string())
    }

    /// Connects and pings the engine, agreeing on an API version both sides speak.
    pub async fn connect() -> Result<Self, HookError> {
        let address = Self::address();
        let unreachable = |reason: String| HookError::EngineUnreachable {
            address: address.clone(),
            reason,
        };
        let docker = Docker::connect_with_defaults().map_err(|e| unreachable(e.to_string()))?;
        match tokio::time::timeout(PING_TIMEOUT, docker.ping()).await {
            Err(_) => return Err(unreachable(format!("no answer within {}s", PING_TIMEOUT.as_secs()))),
            Ok(Err(e)) => return Err(unreachable(e.to_string())),
            Ok(Ok(_)) => {}
        }
        let docker = docker
            .negotiate_version()
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        Ok(Self { docker, address })
    }

    /// Where this engine was reached.
    pub fn reached_at(&self) -> &str {
        &self.address
    }
}

/// A failed engine request, as a hook error.
pub(crate) fn request_failed(action: impl Into<String>) -> impl FnOnce(bollard::errors::Error) -> HookError {
    let action = action.into();
    move |e| HookError::Docker {
        action,
        reason: e.to_string(),
    }
}

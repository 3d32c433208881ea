//! The connection to the Docker engine: `DOCKER_HOST` or the default socket, checked before anything is touched.

use std::time::Duration;

use bollard::Docker;

use crate::DockerError;

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
    pub async fn connect() -> Result<Self, DockerError> {
        let address = Self::address();
        let unreachable = |source| DockerError::EngineUnreachable {
            address: address.clone(),
            source,
        };
        let docker = Docker::connect_with_defaults().map_err(unreachable)?;
        match tokio::time::timeout(PING_TIMEOUT, docker.ping()).await {
            Err(_) => {
                return Err(DockerError::EngineSilent {
                    address,
                    waited: PING_TIMEOUT,
                })
            }
            Ok(Err(e)) => return Err(unreachable(e)),
            Ok(Ok(_)) => {}
        }
        let docker = docker.negotiate_version().await.map_err(unreachable)?;
        Ok(Self { docker, address })
    }

    /// Where this engine was reached.
    pub fn reached_at(&self) -> &str {
        &self.address
    }
}

/// A failed engine request, as a Docker error naming what was asked.
pub(crate) fn request_failed(action: impl Into<String>) -> impl FnOnce(bollard::errors::Error) -> DockerError {
    let action = action.into();
    move |source| DockerError::Request { action, source }
}

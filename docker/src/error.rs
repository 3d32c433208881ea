//! Why the Docker side failed: every variant names the engine, service, container or file concerned and keeps the
//! error that caused it.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

/// A Docker operation's failure. `Display` is the one-line message an operator sees; `source()` is the cause.
#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    /// The engine could not be reached, or did not agree on an API version.
    #[error("cannot reach the Docker engine at {address}: {source}")]
    EngineUnreachable {
        address: String,
        source: bollard::errors::Error,
    },

    /// The engine did not answer its ping in time.
    #[error("cannot reach the Docker engine at {address}: no answer within {}s", waited.as_secs())]
    EngineSilent { address: String, waited: Duration },

    /// The engine refused or failed a request.
    #[error("Docker engine: {action}: {source}")]
    Request {
        action: String,
        source: bollard::errors::Error,
    },

    /// The engine accepted an exec but did not attach its output.
    #[error("Docker engine: {action}: the engine did not attach the output")]
    NotAttached { action: String },

    /// An exec's output could not be passed on to where it goes.
    #[error("Docker engine: {action}: {source}")]
    Output { action: String, source: io::Error },

    /// A service could not be stopped.
    #[error("cannot stop service {service} (container {container}): {source}")]
    StopService {
        service: String,
        container: String,
        source: bollard::errors::Error,
    },

    /// A Compose file could not be read.
    #[error("cannot read compose file {}: {source}", file.display())]
    ComposeFileUnreadable { file: PathBuf, source: io::Error },

    /// A Compose file is not YAML.
    #[error("cannot read compose file {}: {source}", file.display())]
    ComposeFileInvalid { file: PathBuf, source: yaml_serde::Error },

    /// The project is not as the configuration says: a service it does not have, a dependency cycle, a service
    /// with no running container.
    #[error("{0}")]
    Misconfigured(String),
}

impl DockerError {
    /// True when the configuration, not the world, is at fault.
    pub fn is_misconfiguration(&self) -> bool {
        matches!(
            self,
            DockerError::Misconfigured(_)
                | DockerError::ComposeFileUnreadable { .. }
                | DockerError::ComposeFileInvalid { .. }
        )
    }
}

//! Running a program inside one of the project's services: the capability that WASM hooks reach through their
//! `exec` permission, and that the Docker client provides.

use async_trait::async_trait;
use tokio::io::AsyncWrite;

use crate::DockerError;

/// How a program run in a service ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutcome {
    /// Its exit code.
    pub exit_code: i64,
    /// The end of its stderr (bounded).
    pub stderr: String,
    /// Bytes it wrote to stdout.
    pub stdout_bytes: u64,
}

/// Runs programs inside the Compose project's services.
#[async_trait]
pub trait ServiceExec: Send + Sync {
    /// Runs `argv` in a running container of `service`, streaming its stdout into `stdout` as it comes (never
    /// buffered whole), and returns its exit code and the tail of its stderr. If the future is dropped before the
    /// program ends (the hook timed out, the run was interrupted) or returns an error while it runs, the program
    /// and its descendants are killed before the drop or the error returns.
    async fn exec(
        &self,
        service: &str,
        argv: &[String],
        stdout: &mut (dyn AsyncWrite + Unpin + Send),
    ) -> Result<ExecOutcome, DockerError>;
}

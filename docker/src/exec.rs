//! Running a program inside a service through the Docker exec API, its stdout streamed to the caller. A program
//! still running when the caller stops waiting for it (the future is dropped, or its output cannot be written) is
//! killed with its descendants (see [`super::exec_kill`]).

use async_trait::async_trait;
use bollard::container::LogOutput;
use bollard::exec::{CreateExecOptions, StartExecResults};
use futures_util::StreamExt;
use tokio::io::{AsyncWrite, AsyncWriteExt};

use super::engine::{request_failed, Engine};
use super::exec_kill::ExecGuard;
use crate::service_exec::{ExecOutcome, ServiceExec};
use crate::DockerError;

/// Bytes of stderr kept for the outcome.
const STDERR_TAIL: usize = 4096;

/// Runs programs in the running containers of one Compose project, connecting to the engine for each run.
#[derive(Debug, Clone)]
pub struct ProjectExec {
    pub project: String,
}

#[async_trait]
impl ServiceExec for ProjectExec {
    async fn exec(
        &self,
        service: &str,
        argv: &[String],
        stdout: &mut (dyn AsyncWrite + Unpin + Send),
    ) -> Result<ExecOutcome, DockerError> {
        let engine = Engine::connect().await?;
        let containers = engine.project_containers(&self.project).await?;
        let container = containers
            .iter()
            .find(|c| c.service == service && c.running)
            .ok_or_else(|| {
                DockerError::Misconfigured(format!(
                    "service `{service}` of project {} has no running container",
                    self.project
                ))
            })?;
        let docker = &engine.docker;
        let options = CreateExecOptions {
            cmd: Some(argv.to_vec()),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            ..Default::default()
        };
        let action = format!("exec {} in {service}", argv.first().map_or("", String::as_str));
        let created = docker
            .create_exec(&container.id, options)
            .await
            .map_err(request_failed(action.clone()))?;
        // From here on every way out but the program's own end kills it.
        let guard = ExecGuard::new(
            created.id.clone(),
            container.id.clone(),
            format!("`{}` in service {service}", argv.first().map_or("", String::as_str)),
        );
        let StartExecResults::Attached { mut output, .. } = docker
            .start_exec(&created.id, None)
            .await
            .map_err(request_failed(action.clone()))?
        else {
            return Err(DockerError::NotAttached { action });
        };
        let (mut stdout_bytes, mut stderr) = (0u64, Vec::new());
        let write_failed = |source: std::io::Error| DockerError::Output {
            action: action.clone(),
            source,
        };
        while let Some(chunk) = output.next().await {
            match chunk.map_err(request_failed(action.clone()))? {
                LogOutput::StdOut { message } => {
                    stdout.write_all(&message).await.map_err(write_failed)?;
                    stdout_bytes += message.len() as u64;
                }
                LogOutput::StdErr { message } => {
                    stderr.extend_from_slice(&message);
                    let excess = stderr.len().saturating_sub(STDERR_TAIL);
                    stderr.drain(..excess);
                }
                _ => {}
            }
        }
        let inspect = docker
            .inspect_exec(&created.id)
            .await
            .map_err(request_failed(action.clone()))?;
        if inspect.running != Some(true) {
            guard.ended();
        }
        stdout.flush().await.map_err(write_failed)?;
        Ok(ExecOutcome {
            exit_code: inspect.exit_code.unwrap_or(-1),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
            stdout_bytes,
        })
    }
}

//! The `command` built-in: runs an operator's program on the host (a notification, a site-specific check), with
//! the run's facts in its environment and its own artifact folder for files that belong in the backup.

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::process::Stdio;

use async_trait::async_trait;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::Command;

use crate::{Hook, HookError, RunContext};

/// How `command` is configured (`[hook.config]`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CommandConfig {
    /// The program and its arguments; no shell is involved unless you name one.
    pub command: Vec<String>,
    /// Extra environment variables.
    pub env: BTreeMap<String, String>,
    /// Working directory, relative to the work dir (default: the work dir).
    pub cwd: Option<PathBuf>,
}

/// The `command` hook.
#[derive(Debug)]
pub struct CommandHook {
    name: String,
    config: CommandConfig,
}

/// Lines of the program's stderr kept for the error message.
const STDERR_TAIL_LINES: usize = 5;

impl CommandHook {
    /// A command hook called `name`.
    pub fn new(name: impl Into<String>, config: CommandConfig) -> Self {
        Self {
            name: name.into(),
            config,
        }
    }
}

#[async_trait]
impl Hook for CommandHook {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &str {
        "command"
    }

    async fn run(&self, ctx: &mut RunContext) -> Result<(), HookError> {
        let program = self.config.command[0].clone();
        let fail = |reason: String| HookError::Command {
            program: program.clone(),
            reason,
        };
        let artifacts = ctx.artifact_dir(&self.name);
        std::fs::create_dir_all(&artifacts).map_err(|source| HookError::Prepare {
            path: artifacts.clone(),
            source,
        })?;

        let mut child = Command::new(&program)
            .args(&self.config.command[1..])
            .current_dir(ctx.work_dir.join(self.config.cwd.clone().unwrap_or_default()))
            .env("HOOKRUN_RUN_ID", ctx.run_id.to_string())
            .env("HOOKRUN_KIND", ctx.kind.as_str())
            .env("HOOKRUN_VERSION", &ctx.version)
            .env("HOOKRUN_WORK_DIR", &ctx.work_dir)
            .env("HOOKRUN_ARTIFACT_DIR", &artifacts)
            .envs(&self.config.env)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| HookError::CommandStart {
                program: program.clone(),
                source,
            })?;
        let pgid = child.id().and_then(|id| rustix::process::Pid::from_raw(id as i32));

        let hook = self.name.clone();
        let stdout = tokio::spawn(log_lines(child.stdout.take().expect("piped"), hook.clone(), 0));
        let stderr = tokio::spawn(log_lines(child.stderr.take().expect("piped"), hook, STDERR_TAIL_LINES));

        let status = tokio::select! {
            status = child.wait() => status.map_err(|source| HookError::CommandWait {
                program: program.clone(),
                source,
            })?,
            () = ctx.cancel.cancelled() => {
                // The whole process group goes: a shell's children must not outlive the hook.
                if let Some(pgid) = pgid {
                    let _ = rustix::process::kill_process_group(pgid, rustix::process::Signal::Kill);
                }
                let _ = child.wait().await;
                return Err(HookError::Cancelled);
            }
        };
        let _ = stdout.await;
        let tail = stderr.await.unwrap_or_default();
        if status.success() {
            return Ok(());
        }
        let code = status
            .code()
            .map_or_else(|| "a signal".to_string(), |c| format!("status {c}"));
        let tail = Vec::from(tail).join(" | ");
        Err(fail(if tail.is_empty() {
            format!("exited with {code}")
        } else {
            format!("exited with {code}: {tail}")
        }))
    }
}

/// Logs each line the program writes (with the hook's name) and keeps the last `keep` of them.
async fn log_lines(stream: impl AsyncRead + Unpin, hook: String, keep: usize) -> VecDeque<String> {
    let mut lines = BufReader::new(stream).lines();
    let mut tail = VecDeque::with_capacity(keep);
    while let Ok(Some(line)) = lines.next_line().await {
        tracing::info!(hook = %hook, "{line}");
        if keep > 0 {
            if tail.len() == keep {
                tail.pop_front();
            }
            tail.push_back(line.chars().take(500).collect());
        }
    }
    tail
}

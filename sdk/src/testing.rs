//! A host for unit-testing hook logic natively (`cargo test`), without WebAssembly or Docker: give it a config,
//! an artifact folder and canned answers for exec, run the hook with [`run_with`](crate::run_with), then look at
//! what it logged, ran, wrote and set.
//!
//! ```
//! use std::sync::Arc;
//! use hookrun_sdk::testing::{ExecReply, TestHost};
//!
//! fn hook(h: &hookrun_sdk::Hook) -> hookrun_sdk::Result<()> {
//!     h.exec("db", ["pg_dump", "app"]).stdout_to_artifact("app.sql").run_checked()?;
//!     h.set_output("done", "yes")
//! }
//!
//! let dir = tempfile::tempdir().unwrap();
//! let host = Arc::new(
//!     TestHost::new(serde_json::json!({}), dir.path())
//!         .on_exec(|_service, _argv| ExecReply::ok(b"-- dump".to_vec())),
//! );
//! assert_eq!(hookrun_sdk::run_with(host.clone(), hook), 0);
//! assert_eq!(std::fs::read(dir.path().join("app.sql")).unwrap(), b"-- dump");
//! assert_eq!(host.outputs()["done"], "yes");
//! ```

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;

use crate::abi::{
    validate_artifact_path, validate_output, ErrorKind, ExecRequest, ExecResult, HookContext, HostError, LogLevel,
    Reply, Request, Response, StdoutTarget, ABI_MINOR, ABI_VERSION, MAX_CAPTURE,
};
use crate::guest::Host;

/// What a fake program run returns: its stdout bytes, exit code and stderr.
#[derive(Debug, Clone, Default)]
pub struct ExecReply {
    pub stdout: Vec<u8>,
    pub exit_code: i64,
    pub stderr: String,
}

impl ExecReply {
    /// Exit code 0 with this stdout.
    pub fn ok(stdout: impl Into<Vec<u8>>) -> Self {
        Self {
            stdout: stdout.into(),
            ..Self::default()
        }
    }

    /// A failure with this exit code and stderr.
    pub fn failed(exit_code: i64, stderr: impl Into<String>) -> Self {
        Self {
            exit_code,
            stderr: stderr.into(),
            ..Self::default()
        }
    }
}

type ExecHandler = Box<dyn FnMut(&str, &[String]) -> ExecReply + Send>;

#[derive(Default)]
struct Recorded {
    logs: Vec<(LogLevel, String)>,
    outputs: BTreeMap<String, String>,
    execs: Vec<ExecRequest>,
    failure: Option<String>,
}

/// See the module documentation.
pub struct TestHost {
    context: HookContext,
    on_exec: Mutex<Option<ExecHandler>>,
    recorded: Mutex<Recorded>,
}

impl TestHost {
    /// A host whose hook has `config` and writes its artifacts into `artifact_dir` (which must exist).
    pub fn new(config: serde_json::Value, artifact_dir: &Path) -> Self {
        Self {
            context: HookContext {
                abi: [ABI_VERSION, ABI_MINOR],
                hook: "test".to_string(),
                run_id: 1,
                kind: "pre-upgrade".to_string(),
                version: "1.0.0".to_string(),
                project: Some("test".to_string()),
                work_dir: "/work".to_string(),
                services: Vec::new(),
                artifact_dir: artifact_dir.to_string_lossy().into_owned(),
                config,
                archive: None,
                failure: None,
                outputs: BTreeMap::new(),
            },
            on_exec: Mutex::new(None),
            recorded: Mutex::new(Recorded::default()),
        }
    }

    /// Changes the context the hook sees.
    pub fn with_context(mut self, change: impl FnOnce(&mut HookContext)) -> Self {
        change(&mut self.context);
        self
    }

    /// Answers every exec with `handler(service, argv)`. Without one, exec is refused as not permitted.
    pub fn on_exec(self, handler: impl FnMut(&str, &[String]) -> ExecReply + Send + 'static) -> Self {
        *self.on_exec.lock().unwrap() = Some(Box::new(handler));
        self
    }

    /// The lines logged, in order.
    pub fn logs(&self) -> Vec<(LogLevel, String)> {
        self.recorded.lock().unwrap().logs.clone()
    }

    /// The outputs set.
    pub fn outputs(&self) -> BTreeMap<String, String> {
        self.recorded.lock().unwrap().outputs.clone()
    }

    /// The programs run, in order.
    pub fn execs(&self) -> Vec<ExecRequest> {
        self.recorded.lock().unwrap().execs.clone()
    }

    /// The message the hook failed with, if it did.
    pub fn failure(&self) -> Option<String> {
        self.recorded.lock().unwrap().failure.clone()
    }

    fn exec(&self, request: &ExecRequest) -> Response {
        let invalid = |message: String| HostError {
            kind: ErrorKind::Invalid,
            message,
        };
        if request.argv.is_empty() {
            return Err(invalid("exec needs a program".to_string()));
        }
        let mut handler = self.on_exec.lock().unwrap();
        let Some(handler) = handler.as_mut() else {
            return Err(HostError {
                kind: ErrorKind::Denied,
                message: format!(
                    "exec of `{}` in service {} is not permitted",
                    request.argv[0], request.service
                ),
            });
        };
        self.recorded.lock().unwrap().execs.push(request.clone());
        let reply = handler(&request.service, &request.argv);
        let mut stdout = None;
        match &request.stdout {
            StdoutTarget::Artifact { path } => {
                validate_artifact_path(path).map_err(invalid)?;
                let file = Path::new(&self.context.artifact_dir).join(path);
                if let Some(parent) = file.parent() {
                    std::fs::create_dir_all(parent).map_err(|e| invalid(e.to_string()))?;
                }
                std::fs::write(&file, &reply.stdout).map_err(|e| invalid(e.to_string()))?;
            }
            StdoutTarget::Capture => {
                let kept = &reply.stdout[..reply.stdout.len().min(MAX_CAPTURE)];
                stdout = Some(String::from_utf8_lossy(kept).into_owned());
            }
            StdoutTarget::Discard => {}
        }
        Ok(Reply::Exec(ExecResult {
            exit_code: reply.exit_code,
            stderr: reply.stderr,
            stdout_bytes: reply.stdout.len() as u64,
            stdout,
        }))
    }
}

impl Host for TestHost {
    fn call(&self, request: &Request) -> Response {
        match request {
            Request::Context => Ok(Reply::Context(Box::new(self.context.clone()))),
            Request::Log { level, message } => {
                self.recorded.lock().unwrap().logs.push((*level, message.clone()));
                Ok(Reply::Done)
            }
            Request::Exec(exec) => self.exec(exec),
            Request::SetOutput { key, value } => {
                validate_output(key, value).map_err(|message| HostError {
                    kind: ErrorKind::Invalid,
                    message,
                })?;
                self.recorded.lock().unwrap().outputs.insert(key.clone(), value.clone());
                Ok(Reply::Done)
            }
            Request::Fail { message } => {
                self.recorded.lock().unwrap().failure = Some(message.clone());
                Ok(Reply::Done)
            }
        }
    }
}

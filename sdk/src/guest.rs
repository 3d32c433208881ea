//! The API hook authors use: [`Hook`] (typed config, context, logs, artifacts, exec, outputs), the [`Host`] it
//! talks to, and [`run`], which the [`main!`](crate::main) macro calls.

use std::fmt;
use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;

use serde::de::DeserializeOwned;

use crate::abi::{
    validate_artifact_path, validate_output, ExecRequest, ExecResult, HookContext, HostError, LogLevel, Reply, Request,
    Response, StdoutTarget,
};

/// Something a hook reports as its failure: one line for the operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(String);

impl Error {
    /// An error with this message.
    pub fn msg(message: impl fmt::Display) -> Self {
        Self(message.to_string())
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Self::msg(e)
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Self::msg(e)
    }
}

impl From<HostError> for Error {
    fn from(e: HostError) -> Self {
        Self(e.message)
    }
}

impl From<String> for Error {
    fn from(message: String) -> Self {
        Self(message)
    }
}

impl From<&str> for Error {
    fn from(message: &str) -> Self {
        Self(message.to_string())
    }
}

/// A hook's result.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Adds what was being done to an error: `fs::read(p).context("reading the dump")?`.
pub trait Context<T> {
    /// Prefixes the error with `what`.
    fn context(self, what: impl fmt::Display) -> Result<T>;
}

impl<T, E: fmt::Display> Context<T> for std::result::Result<T, E> {
    fn context(self, what: impl fmt::Display) -> Result<T> {
        self.map_err(|e| Error(format!("{what}: {e}")))
    }
}

/// The other side of the ABI: hookrun inside WebAssembly, a [`TestHost`](crate::testing::TestHost) in unit tests,
/// or a debugging stand-in when the hook runs natively.
pub trait Host: Send + Sync {
    /// Carries out one request.
    fn call(&self, request: &Request) -> Response;
}

/// A running hook: its context, its typed configuration and the host's capabilities.
pub struct Hook<C = serde_json::Value> {
    context: HookContext,
    config: C,
    host: Arc<dyn Host>,
}

impl<C: DeserializeOwned> Hook<C> {
    /// Asks `host` for the context and reads the `config` table into `C`.
    pub fn connect(host: Arc<dyn Host>) -> Result<Self> {
        let context = match host.call(&Request::Context)? {
            Reply::Context(context) => *context,
            other => return Err(Error(format!("host answered {other:?} to a context request"))),
        };
        let config =
            serde_json::from_value(context.config.clone()).map_err(|e| Error(format!("invalid config: {e}")))?;
        Ok(Self { context, config, host })
    }
}

impl<C> Hook<C> {
    /// The hook's configuration.
    pub fn config(&self) -> &C {
        &self.config
    }

    /// The run's facts: kind, version, work dir, services, earlier outputs.
    pub fn context(&self) -> &HookContext {
        &self.context
    }

    /// The hook's name in the chain.
    pub fn name(&self) -> &str {
        &self.context.hook
    }

    /// Logs a line at `level`; hookrun shows it with the hook's name.
    pub fn log(&self, level: LogLevel, message: impl Into<String>) {
        // A refused log line (e.g. over the host's cap) is not the hook's failure.
        let _ = self.host.call(&Request::Log {
            level,
            message: message.into(),
        });
    }

    /// Logs at error level.
    pub fn error(&self, message: impl Into<String>) {
        self.log(LogLevel::Error, message)
    }

    /// Logs at warn level.
    pub fn warn(&self, message: impl Into<String>) {
        self.log(LogLevel::Warn, message)
    }

    /// Logs at info level.
    pub fn info(&self, message: impl Into<String>) {
        self.log(LogLevel::Info, message)
    }

    /// Logs at debug level.
    pub fn debug(&self, message: impl Into<String>) {
        self.log(LogLevel::Debug, message)
    }

    /// Where artifact `relative` lives (inside the sandbox). Files there go into the backup under
    /// `hooks/<name>/`.
    pub fn artifact_path(&self, relative: &str) -> Result<PathBuf> {
        validate_artifact_path(relative)?;
        Ok(PathBuf::from(&self.context.artifact_dir).join(relative))
    }

    /// Creates (or truncates) artifact `relative`, creating its folders, and returns it open for writing.
    pub fn create_artifact(&self, relative: &str) -> Result<File> {
        let path = self.artifact_path(relative)?;
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).context(format!("creating {}", parent.display()))?;
        }
        File::create(&path).context(format!("creating {}", path.display()))
    }

    /// Writes artifact `relative` whole.
    pub fn write_artifact(&self, relative: &str, contents: impl AsRef<[u8]>) -> Result<PathBuf> {
        use std::io::Write;
        let path = self.artifact_path(relative)?;
        let mut file = self.create_artifact(relative)?;
        file.write_all(contents.as_ref())
            .and_then(|()| file.sync_all())
            .context(format!("writing {}", path.display()))?;
        Ok(path)
    }

    /// Reads the file at `path` whole (a path in a granted folder, relative paths meaning the work dir's). Its error
    /// names the path; a path outside every granted folder fails as "No such file or directory (os error 44)",
    /// which hookrun follows with what the hook was granted.
    pub fn read(&self, path: impl AsRef<std::path::Path>) -> Result<Vec<u8>> {
        let path = path.as_ref();
        std::fs::read(path).context(format!("cannot read {}", path.display()))
    }

    /// Prepares running `argv` in `service`; the hook's `exec` permission must name both.
    pub fn exec<S: Into<String>>(&self, service: impl Into<String>, argv: impl IntoIterator<Item = S>) -> Exec<'_, C> {
        Exec {
            hook: self,
            request: ExecRequest {
                service: service.into(),
                argv: argv.into_iter().map(Into::into).collect(),
                stdout: StdoutTarget::Discard,
            },
        }
    }

    /// Sets output `key`, which later hooks and the run's report see.
    pub fn set_output(&self, key: &str, value: impl fmt::Display) -> Result<()> {
        let value = value.to_string();
        validate_output(key, &value)?;
        self.host.call(&Request::SetOutput {
            key: key.to_string(),
            value,
        })?;
        Ok(())
    }
}

/// A program about to run in a service; see [`Hook::exec`].
#[must_use = "an Exec does nothing until .run() is called"]
pub struct Exec<'h, C> {
    hook: &'h Hook<C>,
    request: ExecRequest,
}

impl<C> Exec<'_, C> {
    /// Streams stdout into artifact `relative` (created, or truncated) as it comes.
    pub fn stdout_to_artifact(mut self, relative: impl Into<String>) -> Self {
        self.request.stdout = StdoutTarget::Artifact { path: relative.into() };
        self
    }

    /// Returns stdout in [`ExecResult::stdout`] (bounded by [`MAX_CAPTURE`](crate::abi::MAX_CAPTURE)).
    pub fn capture_stdout(mut self) -> Self {
        self.request.stdout = StdoutTarget::Capture;
        self
    }

    /// Runs the program and waits for it. A non-zero exit code is not an error here: look at
    /// [`ExecResult::exit_code`], or use [`Exec::run_checked`].
    pub fn run(self) -> Result<ExecResult> {
        if let StdoutTarget::Artifact { path } = &self.request.stdout {
            validate_artifact_path(path)?;
        }
        match self.hook.host.call(&Request::Exec(self.request))? {
            Reply::Exec(result) => Ok(result),
            other => Err(Error(format!("host answered {other:?} to an exec request"))),
        }
    }

    /// Runs the program and fails unless it exits with 0; the error carries the end of its stderr.
    pub fn run_checked(self) -> Result<ExecResult> {
        let what = format!(
            "`{}` in service {}",
            self.request.argv.first().map_or("", String::as_str),
            self.request.service
        );
        let result = self.run()?;
        if result.exit_code != 0 {
            let stderr = result.stderr.trim();
            let tail = stderr.lines().last().unwrap_or("");
            return Err(Error(format!(
                "{what} exited with code {}{}{}",
                result.exit_code,
                if tail.is_empty() { "" } else { ": " },
                tail
            )));
        }
        Ok(result)
    }
}

/// Connects to `host`, runs `hook`, and tells the host why it failed if it did. Returns the process exit code
/// (0 or 1). [`main!`](crate::main) calls this with the real host.
pub fn run_with<C: DeserializeOwned>(host: Arc<dyn Host>, hook: impl FnOnce(&Hook<C>) -> Result<()>) -> i32 {
    let result = Hook::connect(host.clone()).and_then(|h| hook(&h));
    match result {
        Ok(()) => 0,
        Err(error) => {
            let _ = host.call(&Request::Fail {
                message: error.to_string(),
            });
            1
        }
    }
}

/// Runs `hook` against the host this program finds itself in: hookrun when built for `wasm32-wasip1`, a
/// debugging stand-in (see [`crate::native`]) otherwise.
pub fn run<C: DeserializeOwned>(hook: impl FnOnce(&Hook<C>) -> Result<()>) -> i32 {
    run_with(crate::default_host(), hook)
}

/// Makes `fn main` for a hook function `fn(&Hook<Config>) -> hookrun_sdk::Result<()>`.
///
/// ```no_run
/// fn run(hook: &hookrun_sdk::Hook) -> hookrun_sdk::Result<()> {
///     hook.info("hello");
///     Ok(())
/// }
/// hookrun_sdk::main!(run);
/// ```
#[macro_export]
macro_rules! main {
    ($hook:path) => {
        fn main() {
            let code = $crate::run($hook);
            if code != 0 {
                ::std::process::exit(code);
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TestHost;

    #[test]
    fn a_failed_read_names_its_path() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("here.txt"), b"yes").unwrap();
        let hook: Hook = Hook::connect(Arc::new(TestHost::new(serde_json::json!({}), dir.path()))).unwrap();
        assert_eq!(hook.read(dir.path().join("here.txt")).unwrap(), b"yes");
        let missing = dir.path().join("gone.txt");
        let error = hook.read(&missing).unwrap_err();
        assert!(
            error
                .message()
                .starts_with(&format!("cannot read {}: ", missing.display())),
            "{error}"
        );
    }
}

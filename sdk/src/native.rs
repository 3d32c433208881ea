//! A stand-in host for running a hook natively while debugging it (`cargo run` on your machine): the context and
//! config come from environment variables, logs and outputs go to stderr, and exec is unavailable.
//!
//! - `HOOKRUN_CONFIG`: the `config` table as JSON (default `{}`),
//! - `HOOKRUN_ARTIFACT_DIR`: the artifact folder (default `./artifacts`),
//! - `HOOKRUN_WORK_DIR`, `HOOKRUN_VERSION`, `HOOKRUN_HOOK`: the matching context fields.

use std::collections::BTreeMap;
use std::env;
use std::io::Write;

use crate::abi::{ErrorKind, HookContext, HostError, Reply, Request, Response, ABI_MINOR, ABI_VERSION};
use crate::guest::Host;

/// See the module documentation.
pub struct NativeHost {
    context: HookContext,
}

impl NativeHost {
    /// Reads the context from the environment.
    pub fn from_env() -> Result<Self, String> {
        let var = |name: &str, default: &str| env::var(name).unwrap_or_else(|_| default.to_string());
        let config = serde_json::from_str(&var("HOOKRUN_CONFIG", "{}"))
            .map_err(|e| format!("HOOKRUN_CONFIG is not JSON: {e}"))?;
        let artifact_dir = var("HOOKRUN_ARTIFACT_DIR", "artifacts");
        std::fs::create_dir_all(&artifact_dir).map_err(|e| format!("cannot create {artifact_dir}: {e}"))?;
        Ok(Self {
            context: HookContext {
                abi: [ABI_VERSION, ABI_MINOR],
                hook: var("HOOKRUN_HOOK", "native"),
                run_id: 0,
                kind: "manual".to_string(),
                version: var("HOOKRUN_VERSION", "0.0.0"),
                project: env::var("HOOKRUN_PROJECT").ok(),
                work_dir: var("HOOKRUN_WORK_DIR", "."),
                services: Vec::new(),
                artifact_dir,
                config,
                archive: None,
                failure: None,
                outputs: BTreeMap::new(),
            },
        })
    }
}

impl Host for NativeHost {
    fn call(&self, request: &Request) -> Response {
        let mut err = std::io::stderr().lock();
        match request {
            Request::Context => Ok(Reply::Context(Box::new(self.context.clone()))),
            Request::Log { level, message } => {
                let _ = writeln!(err, "[{level:?}] {message}");
                Ok(Reply::Done)
            }
            Request::SetOutput { key, value } => {
                let _ = writeln!(err, "[output] {key} = {value}");
                Ok(Reply::Done)
            }
            Request::Fail { message } => {
                let _ = writeln!(err, "[failed] {message}");
                Ok(Reply::Done)
            }
            Request::Exec(exec) => Err(HostError {
                kind: ErrorKind::Unavailable,
                message: format!(
                    "cannot run `{}` in service {}: exec needs hookrun (this is a native debug run)",
                    exec.argv.first().map_or("", String::as_str),
                    exec.service
                ),
            }),
        }
    }
}

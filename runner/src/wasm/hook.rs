//! [`WasmHook`]: a chain hook backed by a WebAssembly module. It builds the hook's sandbox from its permissions,
//! runs the module's `_start` under its memory limit until it ends or the run's cancel token fires, and turns
//! whatever happened into one line naming the hook (a "No such file" one saying what the sandbox was granted).

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use hookrun_docker::ServiceExec;
use hookrun_hooks::{Hook, HookError, RunContext};
use hookrun_sdk::abi::{ArchiveSummary, FailureSummary, HookContext, ABI_MINOR, ABI_VERSION, GUEST_ARTIFACT_DIR};
use wasmtime::{Store, Trap};
use wasmtime_wasi::{FsPerms, I32Exit, WasiCtxBuilder};

use super::engine::{first_line, LoadedModule};
use super::host::{Guest, HostState, MemoryExceeded, MemoryLimiter};
use super::output::{last_words, GuestOutput, LogSink};
use super::{Permissions, WasmEngine, WasmError, WasmHookSpec};

/// A chain hook that runs a WebAssembly module.
pub struct WasmHook {
    spec: WasmHookSpec,
    engine: Arc<WasmEngine>,
    exec: Option<Arc<dyn ServiceExec>>,
    loaded: Mutex<Option<LoadedModule>>,
}

impl WasmHook {
    /// A hook running `spec` on `engine`; `exec` runs programs in services for the `exec` capability (none: the
    /// capability answers "unavailable").
    pub fn new(spec: WasmHookSpec, engine: Arc<WasmEngine>, exec: Option<Arc<dyn ServiceExec>>) -> Self {
        Self {
            spec,
            engine,
            exec,
            loaded: Mutex::new(None),
        }
    }

    /// The module, loaded once (compiling off the async runtime).
    async fn module(&self) -> Result<LoadedModule, WasmError> {
        if let Some(loaded) = self.loaded.lock().unwrap().clone() {
            return Ok(loaded);
        }
        let (engine, path) = (self.engine.clone(), self.spec.module.clone());
        let loaded = tokio::task::spawn_blocking(move || engine.load(&path))
            .await
            .map_err(|e| WasmError::Engine(format!("module loader stopped: {e}")))??;
        tracing::debug!(
            hook = %self.spec.name,
            source = ?loaded.source,
            elapsed_ms = loaded.elapsed.as_secs_f64() * 1000.0,
            "module loaded"
        );
        *self.loaded.lock().unwrap() = Some(loaded.clone());
        Ok(loaded)
    }

    fn fail(&self, error: WasmError) -> HookError {
        hook_error(&self.spec.name, error)
    }

    async fn run_module(&self, ctx: &mut RunContext) -> Result<(), WasmError> {
        let loaded = self.module().await?;
        let name = self.spec.name.clone();
        let artifact_dir = ctx.artifact_dir(&name);
        std::fs::create_dir_all(&artifact_dir).map_err(|e| {
            WasmError::Sandbox(format!(
                "cannot create the artifact folder {}: {e}",
                artifact_dir.display()
            ))
        })?;

        let log = Arc::new(Mutex::new(LogSink::new(&name)));
        let stdout = GuestOutput::stdout(log.clone());
        let stderr = GuestOutput::stderr(log.clone());
        let wasi = sandbox(&self.spec, &artifact_dir, &stdout, &stderr)?;
        let guest = Arc::new(Guest {
            name: name.clone(),
            permissions: self.spec.permissions.clone(),
            context: hook_context(&self.spec, ctx),
            exec: self.exec.clone(),
            artifact_dir,
            log: log.clone(),
            stdout: stdout.clone(),
            stderr: stderr.clone(),
        });

        let mut store = Store::new(
            self.engine.engine(),
            HostState {
                wasi,
                memory: MemoryLimiter {
                    limit: self.spec.memory_limit,
                    refused: None,
                },
                guest: Some(guest.clone()),
                pending: None,
                outputs: Default::default(),
                fail_message: None,
            },
        );
        store.limiter(|state| &mut state.memory);
        store.set_epoch_deadline(1);
        store.epoch_deadline_async_yield_and_update(1);

        let linker = self.engine.linker();
        let run = async {
            let instance = linker.instantiate_async(&mut store, &loaded.module).await?;
            let start = instance
                .get_typed_func::<(), ()>(&mut store, "_start")
                .map_err(|_| wasmtime::Error::new(NoStart))?;
            start.call_async(&mut store, ()).await
        };
        let result = tokio::select! {
            result = run => Some(result),
            () = ctx.cancel.cancelled() => None,
        };

        guest.stdout.finish();
        guest.stderr.finish();
        let dropped = log.lock().unwrap().dropped();
        if dropped > 0 {
            tracing::warn!(hook = %name, "{dropped} log lines were dropped (more than the limit)");
        }
        let state = store.data_mut();
        if !state.outputs.is_empty() {
            ctx.outputs
                .entry(name.clone())
                .or_default()
                .extend(std::mem::take(&mut state.outputs));
        }
        let Some(result) = result else {
            return Err(WasmError::Cancelled);
        };
        outcome(result, state, &guest.stderr.tail()).map_err(|e| with_sandbox_hint(e, &guest.permissions))
    }
}

/// What WASI's ENOENT looks like in a Rust guest's error text (`std::io::Error`'s "(os error 44)").
const WASI_ENOENT: &str = "(os error 44)";

/// `error` with [`Permissions::not_granted_hint`] added when the guest's words carry WASI's ENOENT.
fn with_sandbox_hint(error: WasmError, permissions: &Permissions) -> WasmError {
    let hint = |text: Option<String>| {
        text.map(|t| match t.contains(WASI_ENOENT) {
            true => format!("{t} {}", permissions.not_granted_hint()),
            false => t,
        })
    };
    match error {
        WasmError::Exit { code, message } => WasmError::Exit {
            code,
            message: hint(message),
        },
        WasmError::Trap { reason, detail } => WasmError::Trap {
            reason,
            detail: hint(detail),
        },
        other => other,
    }
}

/// The module exports no `_start` function (it is not a WASI command).
#[derive(Debug, thiserror::Error)]
#[error("has no `_start` function")]
struct NoStart;

/// What the module's run means for the hook.
fn outcome(result: wasmtime::Result<()>, state: &HostState, stderr_tail: &str) -> Result<(), WasmError> {
    let error = match result {
        Ok(()) => return Ok(()),
        Err(error) => error,
    };
    if let Some(exit) = error.downcast_ref::<I32Exit>() {
        if exit.0 == 0 {
            return Ok(());
        }
        return Err(WasmError::Exit {
            code: exit.0,
            message: state.fail_message.clone().or_else(|| last_words(stderr_tail)),
        });
    }
    if let Some(exceeded) = error.downcast_ref::<MemoryExceeded>() {
        return Err(WasmError::MemoryLimit {
            limit: exceeded.limit,
            requested: exceeded.requested,
        });
    }
    if let Some(requested) = state.memory.refused {
        return Err(WasmError::MemoryLimit {
            limit: state.memory.limit,
            requested,
        });
    }
    if error.downcast_ref::<NoStart>().is_some() {
        return Err(WasmError::NotCommand);
    }
    if let Some(violation) = error.downcast_ref::<super::host::AbiViolation>() {
        return Err(WasmError::Abi(violation.0.clone()));
    }
    let reason = match error.downcast_ref::<Trap>() {
        Some(trap) => trap.to_string().trim_start_matches("wasm trap: ").to_string(),
        None => first_line(&format!("{error:#}")),
    };
    Err(WasmError::Trap {
        reason,
        detail: last_words(stderr_tail),
    })
}

/// The WASI context of one run: the granted folders and variables, the artifact folder, the guest's output
/// streams, and nothing else (no inherited environment, stdio, arguments or network).
fn sandbox(
    spec: &WasmHookSpec,
    artifact_dir: &std::path::Path,
    stdout: &GuestOutput,
    stderr: &GuestOutput,
) -> Result<wasmtime_wasi::p1::WasiP1Ctx, WasmError> {
    let mut builder = WasiCtxBuilder::new();
    builder
        .args(&[spec.name.as_str()])
        .stdout(stdout.clone())
        .stderr(stderr.clone());
    for (name, value) in spec.permissions.environment(|n| std::env::var(n).ok()) {
        builder.env(name, value);
    }
    for preopen in spec.permissions.sandbox(artifact_dir) {
        let perms = if preopen.writable {
            FsPerms::ReadWrite
        } else {
            FsPerms::ReadOnly
        };
        builder
            .preopened_dir(&preopen.host, &preopen.guest, perms)
            .map_err(|e| WasmError::Sandbox(format!("cannot open {}: {e:#}", preopen.host.display())))?;
    }
    Ok(builder.build_p1())
}

/// What the hook is told about the run.
fn hook_context(spec: &WasmHookSpec, ctx: &RunContext) -> HookContext {
    let mut services: Vec<String> = Vec::new();
    for stopped in &ctx.stopped {
        if !services.contains(&stopped.service) {
            services.push(stopped.service.clone());
        }
    }
    HookContext {
        abi: [ABI_VERSION, ABI_MINOR],
        hook: spec.name.clone(),
        run_id: ctx.run_id,
        kind: ctx.kind.as_str().to_string(),
        version: ctx.version.clone(),
        project: ctx.project.clone(),
        work_dir: ctx.work_dir.to_string_lossy().into_owned(),
        services,
        artifact_dir: GUEST_ARTIFACT_DIR.to_string(),
        config: spec.config.clone(),
        archive: ctx.archive.as_ref().map(|a| ArchiveSummary {
            path: a.path.to_string_lossy().into_owned(),
            size: a.size,
            sha256: a.sha256.clone(),
        }),
        failure: ctx.failure.as_ref().map(|f| FailureSummary {
            hook: f.hook.clone(),
            message: f.message.clone(),
        }),
        outputs: ctx.outputs.clone(),
    }
}

/// A WASM hook's failure as the chain reports it.
/// A WASM hook's failure as a hook error: one line, naming the hook.
pub(crate) fn hook_error(hook: &str, error: WasmError) -> HookError {
    match error {
        WasmError::Cancelled => HookError::Cancelled,
        error => HookError::Wasm {
            hook: hook.to_string(),
            reason: one_line(&error.to_string()),
        },
    }
}

/// `text` on one line: its non-blank lines, trimmed and joined with " | ".
fn one_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" | ")
}

#[async_trait]
impl Hook for WasmHook {
    fn name(&self) -> &str {
        &self.spec.name
    }

    fn kind(&self) -> &str {
        "wasm"
    }

    /// Loads (compiles or reads from the cache) and links the module, and checks its permissions, so a bad
    /// module fails the run before anything is stopped.
    async fn preflight(&self, _ctx: &RunContext) -> Result<(), HookError> {
        let loaded = self.module().await.map_err(|e| self.fail(e))?;
        super::check_loaded(&self.engine, &self.spec, &loaded).map_err(|e| self.fail(e))
    }

    async fn run(&self, ctx: &mut RunContext) -> Result<(), HookError> {
        let result = self.run_module(ctx).await;
        if let Err(error) = &result {
            tracing::debug!(hook = %self.spec.name, "failed: {error}");
        }
        result.map_err(|e| self.fail(e))
    }
}

//! Turns the configured `[[hook]]` tables into hooks the executor can run.

use hookrun_hooks::builtin::{
    BackupHook, CommandHook, NotifyHook, RecordHook, SnapshotHook, StartHook, StopHook, UploadHook,
};
use std::sync::Arc;

use hookrun_docker::ProjectExec;
use hookrun_docker::ServiceExec;
use hookrun_hooks::Hook;

use crate::config::{Builtin, Config, HookKind, HookSpec};
use crate::executor::ChainHook;
use crate::wasm::{CacheMode, WasmEngine, WasmHook};

/// The chain of `config`, in order.
pub fn build(config: &Config) -> anyhow::Result<Vec<ChainHook>> {
    let wasm = wasm_engine(config, CacheMode::ReadWrite)?;
    let exec: Option<Arc<dyn ServiceExec>> = config
        .runner
        .project
        .clone()
        .map(|project| Arc::new(ProjectExec { project }) as Arc<dyn ServiceExec>);
    Ok(config
        .hooks
        .iter()
        .map(|spec| ChainHook {
            hook: instantiate(config, spec, wasm.as_ref(), exec.as_ref()),
            when: spec.when,
            on_error: spec.on_error,
            timeout: spec.timeout,
            artifacts: spec.artifacts,
        })
        .collect())
}

/// The WASM engine, when the chain has WASM hooks; compiled modules are cached in the storage dir (read only in
/// [`CacheMode::ReadOnly`]).
pub fn wasm_engine(config: &Config, cache: CacheMode) -> anyhow::Result<Option<Arc<WasmEngine>>> {
    if !config.hooks.iter().any(|h| matches!(h.kind, HookKind::Wasm(_))) {
        return Ok(None);
    }
    Ok(Some(WasmEngine::with_cache(
        config.runner.storage_dir.join(".cache").join("wasm"),
        cache,
    )?))
}

fn instantiate(
    config: &Config,
    spec: &HookSpec,
    wasm: Option<&Arc<WasmEngine>>,
    exec: Option<&Arc<dyn ServiceExec>>,
) -> Box<dyn Hook> {
    let name = spec.name.clone();
    match &spec.kind {
        HookKind::Builtin(Builtin::Stop(config)) => Box::new(StopHook::new(name, config.clone())),
        HookKind::Builtin(Builtin::Snapshot { backup, config, copies }) => {
            Box::new(SnapshotHook::new(name, backup.clone(), config.clone(), *copies))
        }
        HookKind::Builtin(Builtin::Start(config)) => Box::new(StartHook::new(name, config.clone())),
        HookKind::Builtin(Builtin::Backup(config)) => Box::new(BackupHook::new(name, config.clone())),
        HookKind::Builtin(Builtin::Record) => Box::new(RecordHook::new(name)),
        HookKind::Builtin(Builtin::Command(config)) => Box::new(CommandHook::new(name, config.clone())),
        HookKind::Builtin(Builtin::Upload { remotes }) => Box::new(UploadHook::new(
            name,
            remotes
                .iter()
                .map(|r| crate::remotes::open(config.remote(r).expect("checked when the file was loaded")))
                .collect(),
        )),
        HookKind::Builtin(Builtin::Notify(config)) => Box::new(NotifyHook::new(name, config.clone())),
        HookKind::Wasm(wasm_spec) => {
            let engine = wasm.expect("an engine exists when the chain has WASM hooks").clone();
            Box::new(WasmHook::new(wasm_spec.clone(), engine, exec.cloned()))
        }
    }
}

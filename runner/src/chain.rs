//! Turns the configured `[[hook]]` tables into hooks the executor can run.

use hookrun_hooks::builtin::{BackupHook, CommandHook, RecordHook, StartHook, StopHook};
use hookrun_hooks::Hook;

use crate::config::{Builtin, Config, HookKind, HookSpec};
use crate::executor::ChainHook;

/// The chain of `config`, in order.
pub fn build(config: &Config) -> Vec<ChainHook> {
    config
        .hooks
        .iter()
        .map(|spec| ChainHook {
            hook: instantiate(spec),
            when: spec.when,
            on_error: spec.on_error,
            timeout: spec.timeout,
        })
        .collect()
}

fn instantiate(spec: &HookSpec) -> Box<dyn Hook> {
    let name = spec.name.clone();
    match &spec.kind {
        HookKind::Builtin(Builtin::Stop(config)) => Box::new(StopHook::new(name, config.clone())),
        HookKind::Builtin(Builtin::Start(config)) => Box::new(StartHook::new(name, config.clone())),
        HookKind::Builtin(Builtin::Backup(config)) => Box::new(BackupHook::new(name, config.clone())),
        HookKind::Builtin(Builtin::Record) => Box::new(RecordHook::new(name)),
        HookKind::Builtin(Builtin::Command(config)) => Box::new(CommandHook::new(name, config.clone())),
    }
}

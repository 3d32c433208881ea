//! WebAssembly hooks: user hooks compiled to `wasm32-wasip1` and run by wasmtime in a deny-by-default sandbox
//! (see ARCHITECTURE.md, "The sandbox"). The ABI they speak is defined once, in `hookrun_sdk::abi`.
//!
//! - [`WasmEngine`]: the engine, linker and compiled-module cache shared by all hooks of a process;
//! - [`WasmHook`]: a chain [`Hook`](hookrun_hooks::Hook) running one module as configured by a [`WasmHookSpec`];
//! - [`Permissions`]: what the hook's `permissions` table grants (read in `config::permissions`) and the one place
//!   that decides its requests;
//! - [`check`]: what `hookrun hooks check` does for a WASM hook — load and link, without running;
//! - [`scaffold`]: what `hookrun hooks new NAME` writes.

mod cache;
mod engine;
mod error;
mod hook;
mod host;
mod output;
mod permissions;
pub mod scaffold;

pub use crate::config::{WasmHookSpec, DEFAULT_MEMORY_LIMIT};
pub use cache::{CacheMode, ModuleSource};
pub use engine::{LoadedModule, WasmEngine};
pub use error::WasmError;
pub use hook::WasmHook;
pub use permissions::{ExecGrant, Permissions, Preopen};

use wasmtime::ExternType;

/// Checks a WASM hook without running it: the module loads (compiling it into the cache if needed), imports only
/// what this host provides at its ABI version, links, is a WASI command, fits its memory limit at start, and its
/// granted folders exist.
pub fn check(engine: &WasmEngine, spec: &WasmHookSpec) -> Result<(), WasmError> {
    let loaded = engine.load(&spec.module)?;
    check_loaded(engine, spec, &loaded)
}

pub(crate) fn check_loaded(engine: &WasmEngine, spec: &WasmHookSpec, loaded: &LoadedModule) -> Result<(), WasmError> {
    let module = &loaded.module;
    engine
        .linker()
        .instantiate_pre(module)
        .map_err(|e| WasmError::Link(engine::first_line(&format!("{e:#}"))))?;
    match module.get_export("_start") {
        Some(ExternType::Func(f)) if f.params().len() == 0 && f.results().len() == 0 => {}
        _ => return Err(WasmError::NotCommand),
    }
    for export in module.exports() {
        if let ExternType::Memory(memory) = export.ty() {
            let initial = memory.minimum().saturating_mul(memory.page_size());
            if initial > spec.memory_limit {
                return Err(WasmError::MemoryLimit {
                    limit: spec.memory_limit,
                    requested: initial,
                });
            }
        }
    }
    spec.permissions.check_dirs().map_err(WasmError::Permissions)
}

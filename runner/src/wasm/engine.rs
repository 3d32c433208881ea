//! The WebAssembly engine hookrun shares between its WASM hooks: one wasmtime engine (async, with epoch
//! interruption so a running guest can be stopped), the linker holding WASI preview 1 and the `hookrun_v1`
//! functions, the compiled-module cache, and the ticker that advances the epoch.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hookrun_sdk::abi::{requested_major, ABI_VERSION};
use wasmtime::{Config, Engine, Linker, Module, Store};

use super::cache::{CacheMode, ModuleCache, ModuleSource};
use super::host::{self, HostState, MemoryLimiter};
use super::WasmError;

/// How often the epoch advances: how quickly a running guest notices it must stop.
const EPOCH_TICK: Duration = Duration::from_millis(10);

/// The engine, linker and module cache shared by every WASM hook of a process.
pub struct WasmEngine {
    engine: Engine,
    linker: Linker<HostState>,
    /// `(module, name)` of every import the linker provides.
    provided: HashSet<(String, String)>,
    cache: ModuleCache,
    stop_ticker: Arc<AtomicBool>,
}

/// A module ready to instantiate, and how it was obtained.
#[derive(Clone)]
pub struct LoadedModule {
    pub(crate) module: Module,
    /// Whether it was compiled now or read from the cache.
    pub source: ModuleSource,
    /// How long loading took (reading the file, hashing, compiling or deserializing).
    pub elapsed: Duration,
}

impl WasmEngine {
    /// An engine that keeps compiled modules in `cache_dir` (created when first needed).
    pub fn new(cache_dir: PathBuf) -> Result<Arc<Self>, WasmError> {
        Self::with_cache(cache_dir, CacheMode::ReadWrite)
    }

    /// An engine that reads compiled modules from `cache_dir` and, in [`CacheMode::ReadWrite`], writes there the
    /// ones it compiles.
    pub fn with_cache(cache_dir: PathBuf, mode: CacheMode) -> Result<Arc<Self>, WasmError> {
        let engine_error = |e: wasmtime::Error| WasmError::Engine(e.to_string());
        let mut config = Config::new();
        config.epoch_interruption(true);
        let engine = Engine::new(&config).map_err(engine_error)?;

        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p1::add_to_linker_async(&mut linker, |s: &mut HostState| &mut s.wasi).map_err(engine_error)?;
        host::add_to_linker(&mut linker).map_err(engine_error)?;

        let mut store = Store::new(&engine, HostState::empty());
        let provided = linker
            .iter(&mut store)
            .map(|(module, name, _)| (module.to_string(), name.to_string()))
            .collect();

        let stop_ticker = Arc::new(AtomicBool::new(false));
        let (ticking, stop) = (engine.clone(), stop_ticker.clone());
        std::thread::Builder::new()
            .name("hookrun-wasm-epoch".into())
            .spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    ticking.increment_epoch();
                }
            })
            .map_err(|e| WasmError::Engine(format!("cannot start the epoch ticker: {e}")))?;

        let cache = ModuleCache::new(cache_dir, &engine, mode);
        Ok(Arc::new(Self {
            engine,
            linker,
            provided,
            cache,
            stop_ticker,
        }))
    }

    /// Reads, checks and compiles (or loads from the cache) the module at `path`. Blocks while compiling: call
    /// it off the async runtime (e.g. in `spawn_blocking`).
    pub fn load(&self, path: &Path) -> Result<LoadedModule, WasmError> {
        let started = Instant::now();
        let wasm = std::fs::read(path).map_err(|source| WasmError::ReadModule {
            path: path.to_path_buf(),
            source,
        })?;
        let (module, source) = self.cache.load(&self.engine, &wasm).map_err(|e| WasmError::Compile {
            path: path.to_path_buf(),
            reason: first_line(&e.to_string()),
        })?;
        self.check_imports(&module)?;
        Ok(LoadedModule {
            module,
            source,
            elapsed: started.elapsed(),
        })
    }

    /// Refuses a module that imports what the host does not provide, naming the import or the ABI version it
    /// needs, before linking would fail with a less helpful message.
    fn check_imports(&self, module: &Module) -> Result<(), WasmError> {
        for import in module.imports() {
            let (m, name) = (import.module(), import.name());
            if let Some(Ok(major)) = requested_major(m) {
                if major != ABI_VERSION {
                    return Err(WasmError::AbiVersion {
                        needed: major,
                        host: ABI_VERSION,
                        module: m.to_string(),
                    });
                }
            }
            if !self.provided.contains(&(m.to_string(), name.to_string())) {
                return Err(WasmError::UnknownImport {
                    module: m.to_string(),
                    name: name.to_string(),
                });
            }
        }
        Ok(())
    }

    pub(crate) fn engine(&self) -> &Engine {
        &self.engine
    }

    pub(crate) fn linker(&self) -> &Linker<HostState> {
        &self.linker
    }

    /// The file the compiled form of the module at `path` is cached in.
    pub fn cache_path(&self, path: &Path) -> Result<PathBuf, WasmError> {
        let wasm = std::fs::read(path).map_err(|source| WasmError::ReadModule {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(self.cache.path_for(&wasm))
    }
}

impl Drop for WasmEngine {
    fn drop(&mut self) {
        self.stop_ticker.store(true, Ordering::Relaxed);
    }
}

impl std::fmt::Debug for WasmEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WasmEngine")
            .field("cache", &self.cache)
            .finish_non_exhaustive()
    }
}

impl HostState {
    /// A state with an empty sandbox and no hook, for listing the linker's definitions.
    fn empty() -> Self {
        Self {
            wasi: wasmtime_wasi::WasiCtxBuilder::new().build_p1(),
            memory: MemoryLimiter {
                limit: 0,
                refused: None,
            },
            guest: None,
            pending: None,
            outputs: Default::default(),
            fail_message: None,
        }
    }
}

pub(crate) fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").trim().to_string()
}

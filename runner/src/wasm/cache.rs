//! The on-disk cache of compiled modules, so that a repeated run deserializes (~0.1 ms) instead of compiling
//! (hundreds of milliseconds).
//!
//! A file is keyed by the module's SHA-256 and the engine's `precompile_compatibility_hash` (wasmtime version,
//! compiler settings, CPU features). Deserializing compiled code runs it as native code, so only files hookrun
//! wrote itself are loaded: each starts with a magic line and the SHA-256 of the compiled bytes, the cache folder is
//! private to its owner, and a file owned by another user or writable by others is ignored and recompiled over.

use std::hash::{Hash, Hasher};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use ring::digest::{digest, Context, SHA256};
use wasmtime::{Engine, Module};

const MAGIC: &[u8] = b"hookrun compiled module v1\n";

/// Where compiled modules are kept.
#[derive(Debug)]
pub(crate) struct ModuleCache {
    dir: PathBuf,
    engine_key: String,
    mode: CacheMode,
}

/// Whether a module compiled now is written into the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheMode {
    /// Read cached modules and cache the ones compiled now (creating the folder).
    ReadWrite,
    /// Read cached modules, never write (for commands that touch nothing, like `plan`).
    ReadOnly,
}

/// How a module was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModuleSource {
    /// Compiled now (and written to the cache).
    Compiled,
    /// Deserialized from the cache.
    Cache,
}

/// Feeds `Hash` into SHA-256, so the engine's compatibility hash gives the same key in every process.
struct ShaHasher(Context);

impl Hasher for ShaHasher {
    fn finish(&self) -> u64 {
        0
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

impl ModuleCache {
    pub(crate) fn new(dir: PathBuf, engine: &Engine, mode: CacheMode) -> Self {
        let mut hasher = ShaHasher(Context::new(&SHA256));
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let engine_key = hex::encode(&hasher.0.finish().as_ref()[..8]);
        Self { dir, engine_key, mode }
    }

    /// The file that holds (or will hold) the compiled form of `wasm`.
    pub(crate) fn path_for(&self, wasm: &[u8]) -> PathBuf {
        let module_key = hex::encode(digest(&SHA256, wasm));
        self.dir.join(format!("{module_key}-{}.cwasm", self.engine_key))
    }

    /// The compiled form of `wasm`, from the cache or compiled now (and then cached, best effort).
    pub(crate) fn load(&self, engine: &Engine, wasm: &[u8]) -> Result<(Module, ModuleSource), wasmtime::Error> {
        let path = self.path_for(wasm);
        if let Some(module) = self.read(engine, &path) {
            return Ok((module, ModuleSource::Cache));
        }
        let module = Module::from_binary(engine, wasm)?;
        if self.mode == CacheMode::ReadOnly {
            return Ok((module, ModuleSource::Compiled));
        }
        match module.serialize() {
            Ok(compiled) => {
                if let Err(e) = self.write(&path, &compiled) {
                    tracing::warn!(path = %path.display(), "cannot cache the compiled module: {e}");
                }
            }
            Err(e) => tracing::warn!("cannot serialize the compiled module: {e}"),
        }
        Ok((module, ModuleSource::Compiled))
    }

    fn read(&self, engine: &Engine, path: &Path) -> Option<Module> {
        let meta = std::fs::metadata(path).ok()?;
        let owner_ok = meta.uid() == rustix::process::geteuid().as_raw();
        if !owner_ok || meta.mode() & 0o022 != 0 {
            tracing::warn!(path = %path.display(), "ignoring a cached module hookrun did not write (owner or mode)");
            return None;
        }
        let bytes = std::fs::read(path).ok()?;
        let Some(rest) = bytes.strip_prefix(MAGIC) else {
            tracing::warn!(path = %path.display(), "ignoring a cached module without hookrun's header");
            return None;
        };
        if rest.len() < 32 || digest(&SHA256, &rest[32..]).as_ref() != &rest[..32] {
            tracing::warn!(path = %path.display(), "ignoring a damaged cached module");
            return None;
        }
        // SAFETY: the bytes are a module this engine configuration serialized (the file name carries its
        // compatibility hash), written by hookrun (header, checksum) into a folder only its owner can write.
        match unsafe { Module::deserialize(engine, &rest[32..]) } {
            Ok(module) => Some(module),
            Err(e) => {
                tracing::warn!(path = %path.display(), "cannot load a cached module, recompiling: {e}");
                None
            }
        }
    }

    fn write(&self, path: &Path, compiled: &[u8]) -> std::io::Result<()> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)?;
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        let result = (|| {
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)?;
            file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
            file.write_all(MAGIC)?;
            file.write_all(digest(&SHA256, compiled).as_ref())?;
            file.write_all(compiled)?;
            file.sync_all()?;
            std::fs::rename(&tmp, path)
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result
    }
}

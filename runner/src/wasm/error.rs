//! Why a WASM hook could not be loaded, checked or run. Each message is one line that reads on its own and after
//! the hook's name ("pg-dump: exceeded its memory limit of 256 MiB").

use std::path::PathBuf;

use hookrun_archive::size::human_bytes;

/// A WASM hook's failure.
#[derive(Debug, thiserror::Error)]
pub enum WasmError {
    /// The engine could not be set up.
    #[error("cannot set up the WebAssembly engine: {0}")]
    Engine(String),

    /// The module file could not be read.
    #[error("cannot read module {}: {source}", path.display())]
    ReadModule { path: PathBuf, source: std::io::Error },

    /// The file is not a module this engine can compile.
    #[error("{} is not a valid WebAssembly module: {reason}", path.display())]
    Compile { path: PathBuf, reason: String },

    /// The module was built against an ABI major version this host does not speak.
    #[error("needs ABI v{needed} (imports `{module}`); this hookrun speaks ABI v{host}")]
    AbiVersion { needed: u32, host: u32, module: String },

    /// The module imports something the host does not provide.
    #[error("imports `{module}::{name}`, which hookrun does not provide")]
    UnknownImport { module: String, name: String },

    /// The module's imports do not fit the host's (wrong types).
    #[error("cannot be linked: {0}")]
    Link(String),

    /// The module is not a WASI command.
    #[error("has no `_start` function: build it as a program with `fn main` for wasm32-wasip1")]
    NotCommand,

    /// The permissions are wrong, or name things that are not there.
    #[error("{0}")]
    Permissions(String),

    /// The sandbox could not be built (a granted folder is missing, the artifact folder cannot be created).
    #[error("cannot prepare its sandbox: {0}")]
    Sandbox(String),

    /// The module asked for more memory than its limit.
    #[error(
        "exceeded its memory limit of {} (asked for {})",
        human_bytes(*limit),
        human_bytes(*requested)
    )]
    MemoryLimit { limit: u64, requested: u64 },

    /// The module trapped (a panic, an out-of-bounds access, a stack overflow…).
    #[error("trapped: {reason}{}", detail.as_ref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Trap {
        reason: String,
        /// What the guest said on stderr just before, e.g. its panic message.
        detail: Option<String>,
    },

    /// The module exited with a non-zero code.
    #[error("exited with code {code}{}", message.as_ref().map(|m| format!(": {m}")).unwrap_or_default())]
    Exit { code: i32, message: Option<String> },

    /// The run's cancel token fired (timeout or signal) and the module was stopped.
    #[error("stopped before it finished")]
    Cancelled,

    /// The module misused the ABI (a pointer outside its memory, a request too large).
    #[error("broke the hookrun ABI: {0}")]
    Abi(String),
}

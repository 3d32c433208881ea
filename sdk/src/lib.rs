//! hookrun's SDK: the ABI shared by the hookrun host and its WebAssembly hooks ([`abi`], defined once and used by
//! both sides), and the API hook authors write against ([`Hook`], [`main!`]).
//!
//! # Writing a hook
//!
//! A hook is a `wasm32-wasip1` program whose `main` is made by [`main!`] from a function taking a [`Hook`]. It reads
//! its typed `config` table, logs, writes files into its artifact folder (they end up in the backup archive under
//! `hooks/<name>/`), runs permitted programs inside the project's services, and sets named outputs.
//!
//! ```no_run
//! use hookrun_sdk::{Context, Hook, Result};
//! use serde::Deserialize;
//!
//! #[derive(Deserialize)]
//! struct Config {
//!     service: String,
//!     database: String,
//! }
//!
//! fn run(hook: &Hook<Config>) -> Result<()> {
//!     let c = hook.config();
//!     hook.info(format!("dumping {} from service {}", c.database, c.service));
//!     // Needs `exec = [{ service = "db", programs = ["pg_dump"] }]` in the hook's permissions.
//!     let result = hook
//!         .exec(&c.service, ["pg_dump", "--dbname", &c.database])
//!         .stdout_to_artifact("dump.sql")
//!         .run_checked()
//!         .context("pg_dump")?;
//!     hook.set_output("dump_bytes", result.stdout_bytes)?;
//!     Ok(())
//! }
//!
//! hookrun_sdk::main!(run);
//! ```
//!
//! and in `hooks.toml`:
//!
//! ```toml
//! [[hook]]
//! name = "dump-db"
//! wasm = "hooks/dump_db.wasm"
//! timeout = "10m"
//! config = { service = "db", database = "app" }
//! permissions = { exec = [{ service = "db", programs = ["pg_dump"] }] }
//! ```
//!
//! Build it with `cargo build --target wasm32-wasip1 --release`. `hookrun hooks new NAME` writes such a crate.
//!
//! # The sandbox
//!
//! A hook sees nothing it was not granted: folders named in `permissions.read` / `permissions.write`, environment
//! variables named in `permissions.env`, programs named per service in `permissions.exec`, and always its own
//! artifact folder at [`abi::GUEST_ARTIFACT_DIR`]. Memory and time are bounded. Plain `std::fs` works inside the
//! granted folders; `std::process` and networking do not exist.
//!
//! Paths follow one rule, the work dir's: a relative folder in `hooks.toml` is resolved against `[runner] work_dir`,
//! and a relative path inside the hook means the same. A granted folder is seen at its absolute path on the host
//! and, when it is under the work dir, at its path relative to it too: with `read = ["data"]`,
//! `std::fs::read("data/a.txt")` and `std::fs::read(format!("{}/data/a.txt", hook.context().work_dir))` read the same
//! file. A path outside every granted folder fails with `NotFound` ("No such file or directory (os error 44)"),
//! since for the hook it does not exist.
//!
//! # Testing a hook
//!
//! The SDK builds for your machine too: [`testing::TestHost`] stands in for hookrun so the hook's logic runs
//! under `cargo test`. Run natively (`cargo run`), a hook talks to [`native::NativeHost`] instead.

pub mod abi;
mod guest;
#[cfg(not(all(target_family = "wasm", target_os = "wasi")))]
pub mod native;
pub mod testing;
#[cfg(all(target_family = "wasm", target_os = "wasi"))]
mod wasm;

use std::sync::Arc;

pub use abi::{ExecResult, HookContext, LogLevel, ABI_VERSION};
pub use guest::{run, run_with, Context, Error, Exec, Hook, Host, Result};

/// The host this program runs against: hookrun when built for `wasm32-wasip1`.
#[cfg(all(target_family = "wasm", target_os = "wasi"))]
pub fn default_host() -> Arc<dyn Host> {
    Arc::new(wasm::WasmHost)
}

/// The host this program runs against: [`native::NativeHost`] when built for anything but `wasm32-wasip1`.
#[cfg(not(all(target_family = "wasm", target_os = "wasi")))]
pub fn default_host() -> Arc<dyn Host> {
    match native::NativeHost::from_env() {
        Ok(host) => Arc::new(host),
        Err(message) => Arc::new(Unconfigured(message)),
    }
}

/// A native host whose environment could not be read: every request fails with why.
#[cfg(not(all(target_family = "wasm", target_os = "wasi")))]
struct Unconfigured(String);

#[cfg(not(all(target_family = "wasm", target_os = "wasi")))]
impl Host for Unconfigured {
    fn call(&self, _request: &abi::Request) -> abi::Response {
        Err(abi::HostError {
            kind: abi::ErrorKind::Unavailable,
            message: self.0.clone(),
        })
    }
}

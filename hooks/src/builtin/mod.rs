//! The built-in hooks: native Rust steps named with `builtin = "..."` in `hooks.toml`.

mod backup;
mod command;
mod record;

pub use backup::{BackupConfig, BackupHook};
pub use command::{CommandConfig, CommandHook};
pub use record::RecordHook;

//! The built-in hooks: native Rust steps named with `builtin = "..."` in `hooks.toml`.

mod backup;
mod command;
mod notify;
mod record;
mod snapshot;
mod start;
mod stop;
mod upload;

pub use backup::{BackupConfig, BackupEstimate, BackupHook, BackupPlan, TreeStats, Volumes};
pub use command::{CommandConfig, CommandHook};
pub use notify::{Channel, NotifyConfig, NotifyEvent, NotifyHook, Summary, Target};
pub use record::RecordHook;
pub use snapshot::{Copies, SnapshotHook};
pub use start::{StartConfig, StartHook, DEFAULT_START_TIMEOUT};
pub use stop::{StopConfig, StopHook};
pub use upload::{upload_backup, UploadHook};

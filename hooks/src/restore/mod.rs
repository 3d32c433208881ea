//! Restoring a backup over the live data: verify the archive, extract each tree into a staging folder beside its
//! target (same filesystem), swap the targets atomically, and delete the old copies only once the services run.

mod cleanup;
mod hook;
mod swap;
mod verify;

pub use cleanup::CleanupHook;
pub use hook::{RestoreHook, RestoreTarget};
pub use swap::{remove_any, swap_all, Swap};
pub use verify::verify_backup;

//! Restoring a backup over the live data: extract each tree into a staging folder beside its target (same
//! filesystem) while verifying the archive, then stop, swap the targets atomically, start, and delete the old
//! copies only once the services run. A rollback also puts back the deployment the backup recorded (its Compose files
//! and containers, `redeploy`).

mod cleanup;
mod hook;
mod redeploy;
mod swap;
mod verify;

pub use cleanup::{
    finished_restore_run, leftover_name, leftovers_beside, Cleaned, CleanupHook, Leftover, LeftoverKind, Leftovers,
    SharedLeftovers, KEPT, REMOVED,
};
pub use hook::{swaps_for, RestoreHook, RestoreTarget};
pub use redeploy::RedeployHook;
pub use swap::{swap_all, Swap};
pub use verify::verify_backup;

//! `hookrun restore ID` and `hookrun rollback`: put a backup's data back (a rollback also its recorded deployment)
//! as a run of its own, journalled like any other so that `hookrun recover` can finish one that died. The restore
//! run itself lives in `restore_run`, which `upgrade` shares for its automatic rollback.

pub use crate::restore_run::{execute, plan, Pick};

//! `hookrun upgrade --version OLD --to NEW [-- COMMAND...]`: the upgrade behind a health gate, rolled back when it
//! fails. It lives in `upgrade`, which every session shares to finish an upgrade that died.

pub use crate::upgrade::{command_for, upgrade, UpgradeRequest};

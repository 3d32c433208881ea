//! The `Hook` trait: one step of the chain, built in (native Rust) or a WASM module.

use async_trait::async_trait;

use crate::{HookError, RunContext};

/// One step of a hook chain. The executor calls `preflight` on every hook before the chain starts (nothing may be
/// touched there), then `prepare` on every hook, then `run` on the hooks whose `when` matches, in order, over one
/// shared context.
///
/// A hook must return soon after `ctx.cancel` fires (a timeout or a signal), cleaning up what it started.
#[async_trait]
pub trait Hook: Send + Sync {
    /// The hook's unique name in the chain.
    fn name(&self) -> &str;

    /// What kind of hook this is, e.g. "backup" or "wasm", for reports and the catalog.
    fn kind(&self) -> &str;

    /// Checks that can fail the run before anything is stopped or written (free space, reachable engine).
    async fn preflight(&self, _ctx: &RunContext) -> Result<(), HookError> {
        Ok(())
    }

    /// Work done once every preflight passed and before the first hook runs, with the services still running
    /// (the snapshot's pre-copy), under the hook's timeout and the interrupt. Returns what it did, in a sentence,
    /// if it did anything. A failure refuses the run as a preflight's does: nothing was stopped yet.
    async fn prepare(&self, _ctx: &mut RunContext) -> Result<Option<String>, HookError> {
        Ok(None)
    }

    /// Does the hook's work.
    async fn run(&self, ctx: &mut RunContext) -> Result<(), HookError>;
}

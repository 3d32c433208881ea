//! The `start` built-in (`when = "always"` by default): brings back exactly what `stop` stopped, dependencies
//! first, waiting for each to run (or be healthy), and records each service's downtime.

use std::time::Duration;

use async_trait::async_trait;

use crate::bring_back::bring_back;
use crate::{Hook, HookError, RunContext};

/// How long a service gets to run (or be healthy) when `start_timeout` is not set.
pub const DEFAULT_START_TIMEOUT: Duration = Duration::from_secs(120);

/// How `start` is configured (`[hook.config]`).
#[derive(Debug, Clone, PartialEq)]
pub struct StartConfig {
    /// How long each service gets to run (or be healthy).
    pub start_timeout: Duration,
}

impl Default for StartConfig {
    fn default() -> Self {
        Self {
            start_timeout: DEFAULT_START_TIMEOUT,
        }
    }
}

/// The `start` hook.
#[derive(Debug)]
pub struct StartHook {
    name: String,
    config: StartConfig,
}

impl StartHook {
    /// A start hook called `name`.
    pub fn new(name: impl Into<String>, config: StartConfig) -> Self {
        Self {
            name: name.into(),
            config,
        }
    }
}

#[async_trait]
impl Hook for StartHook {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &str {
        "start"
    }

    async fn run(&self, ctx: &mut RunContext) -> Result<(), HookError> {
        bring_back(&ctx.stopped, &ctx.catalog, ctx.run_id, self.config.start_timeout).await
    }
}

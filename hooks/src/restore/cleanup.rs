//! The last step of a restore run: once the services are back on the restored data, the old copies go.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use super::swap::remove_any;
use crate::{Hook, HookError, RunContext};

/// Removes what the restore set aside.
#[derive(Debug)]
pub struct CleanupHook {
    set_aside: Arc<Mutex<Vec<PathBuf>>>,
}

impl CleanupHook {
    /// Removes the paths `RestoreHook` lists in `set_aside`.
    pub fn new(set_aside: Arc<Mutex<Vec<PathBuf>>>) -> Self {
        Self { set_aside }
    }
}

#[async_trait]
impl Hook for CleanupHook {
    fn name(&self) -> &str {
        "remove-old-copies"
    }

    fn kind(&self) -> &str {
        "cleanup"
    }

    async fn run(&self, _ctx: &mut RunContext) -> Result<(), HookError> {
        let paths = std::mem::take(&mut *self.set_aside.lock().unwrap_or_else(|p| p.into_inner()));
        for path in paths {
            remove_any(&path).map_err(|source| HookError::Prepare { path, source })?;
        }
        Ok(())
    }
}

//! Filesystem work run off the async threads, with its panics passed on as panics.

use crate::HookError;

/// Runs `work` on tokio's blocking pool and returns its result.
pub async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, HookError> + Send + 'static,
) -> Result<T, HookError> {
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic.into_panic()))
}

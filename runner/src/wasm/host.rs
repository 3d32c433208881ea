//! The host side of the ABI: the state each hook's store carries, the `hookrun_v1` functions, and the dispatch of
//! requests (after [`Permissions::authorize`] has decided them).

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};

use hookrun_docker::ServiceExec;
use hookrun_sdk::abi::{
    ErrorKind, ExecRequest, ExecResult, HookContext, HostError, Reply, Request, Response, StdoutTarget, CALL,
    IMPORT_MODULE, MAX_CAPTURE, MAX_OUTPUTS, MAX_REQUEST_BYTES, TAKE_RESPONSE,
};
use tokio::io::AsyncWriteExt;
use wasmtime::{Caller, Extern, Linker, ResourceLimiter};
use wasmtime_wasi::p1::WasiP1Ctx;

use super::output::{truncate, GuestOutput, LogSink};
use super::Permissions;

/// What one hook run's store holds.
pub(crate) struct HostState {
    pub(crate) wasi: WasiP1Ctx,
    pub(crate) memory: MemoryLimiter,
    /// The hook's world; `None` only in the throwaway store used to list the linker's definitions.
    pub(crate) guest: Option<Arc<Guest>>,
    /// The response to the last request, until the guest takes it.
    pub(crate) pending: Option<Vec<u8>>,
    /// Outputs set so far.
    pub(crate) outputs: BTreeMap<String, String>,
    /// Why the hook says it failed.
    pub(crate) fail_message: Option<String>,
}

/// A hook's fixed world for one run.
pub(crate) struct Guest {
    pub(crate) name: String,
    pub(crate) permissions: Permissions,
    pub(crate) context: HookContext,
    pub(crate) exec: Option<Arc<dyn ServiceExec>>,
    /// The artifact folder on the host.
    pub(crate) artifact_dir: PathBuf,
    pub(crate) log: Arc<Mutex<LogSink>>,
    pub(crate) stdout: GuestOutput,
    pub(crate) stderr: GuestOutput,
}

/// Refuses memory growth past the hook's limit, remembering what was asked for.
#[derive(Debug)]
pub(crate) struct MemoryLimiter {
    pub(crate) limit: u64,
    pub(crate) refused: Option<u64>,
}

/// The error a refused memory growth traps with.
#[derive(Debug, thiserror::Error)]
#[error("memory limit of {limit} bytes exceeded (asked for {requested})")]
pub(crate) struct MemoryExceeded {
    pub(crate) limit: u64,
    pub(crate) requested: u64,
}

/// A guest that broke the ABI's rules; it traps with this.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct AbiViolation(pub(crate) String);

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        let desired = desired as u64;
        if desired > self.limit {
            self.refused = Some(desired);
            return Err(wasmtime::Error::new(MemoryExceeded {
                limit: self.limit,
                requested: desired,
            }));
        }
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        // Tables hold function references; a million entries is far beyond any real hook.
        Ok(desired <= 1_000_000)
    }
}

/// Adds `hookrun_v1::call` and `hookrun_v1::take_response` to `linker`.
pub(crate) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.func_wrap_async(
        IMPORT_MODULE,
        CALL,
        |mut caller: Caller<'_, HostState>, (ptr, len): (i32, i32)| {
            Box::new(async move {
                let bytes = read_guest(&mut caller, ptr, len)?;
                let response = match serde_json::from_slice::<Request>(&bytes) {
                    Ok(request) => handle(&mut caller, request).await,
                    Err(e) => Err(HostError {
                        kind: ErrorKind::Invalid,
                        message: format!(
                            "unknown or malformed request (this host speaks ABI {}.{}): {e}",
                            hookrun_sdk::abi::ABI_VERSION,
                            hookrun_sdk::abi::ABI_MINOR
                        ),
                    }),
                };
                let encoded = serde_json::to_vec(&response)?;
                let len = i32::try_from(encoded.len()).map_err(|_| AbiViolation("response too large".into()))?;
                caller.data_mut().pending = Some(encoded);
                Ok(len)
            })
        },
    )?;
    linker.func_wrap(
        IMPORT_MODULE,
        TAKE_RESPONSE,
        |mut caller: Caller<'_, HostState>, ptr: i32, len: i32| -> wasmtime::Result<i32> {
            let pending = caller.data_mut().pending.take().unwrap_or_default();
            let n = pending.len().min(len.max(0) as usize);
            let memory = memory(&mut caller)?;
            memory
                .write(&mut caller, ptr as u32 as usize, &pending[..n])
                .map_err(|_| AbiViolation("take_response: buffer outside guest memory".into()))?;
            Ok(n as i32)
        },
    )?;
    Ok(())
}

fn memory(caller: &mut Caller<'_, HostState>) -> wasmtime::Result<wasmtime::Memory> {
    match caller.get_export("memory") {
        Some(Extern::Memory(memory)) => Ok(memory),
        _ => Err(AbiViolation("the module exports no `memory`".into()).into()),
    }
}

fn read_guest(caller: &mut Caller<'_, HostState>, ptr: i32, len: i32) -> wasmtime::Result<Vec<u8>> {
    let len = len as u32 as usize;
    if len > MAX_REQUEST_BYTES {
        return Err(AbiViolation(format!(
            "request of {len} bytes is larger than the {MAX_REQUEST_BYTES} allowed"
        ))
        .into());
    }
    let memory = memory(caller)?;
    let mut buf = vec![0u8; len];
    memory
        .read(&caller, ptr as u32 as usize, &mut buf)
        .map_err(|_| AbiViolation("call: request outside guest memory".into()))?;
    Ok(buf)
}

/// Authorizes and carries out one request.
async fn handle(caller: &mut Caller<'_, HostState>, request: Request) -> Response {
    let Some(guest) = caller.data().guest.clone() else {
        return Err(HostError {
            kind: ErrorKind::Unavailable,
            message: "no hook is running".into(),
        });
    };
    guest.permissions.authorize(&request)?;
    match request {
        Request::Context => Ok(Reply::Context(Box::new(guest.context.clone()))),
        Request::Log { level, message } => {
            guest.log.lock().unwrap().line(level, &message);
            Ok(Reply::Done)
        }
        Request::SetOutput { key, value } => {
            let outputs = &mut caller.data_mut().outputs;
            if outputs.len() >= MAX_OUTPUTS && !outputs.contains_key(&key) {
                return Err(HostError {
                    kind: ErrorKind::Invalid,
                    message: format!("a hook may set at most {MAX_OUTPUTS} outputs"),
                });
            }
            outputs.insert(key, value);
            Ok(Reply::Done)
        }
        Request::Fail { message } => {
            caller.data_mut().fail_message = Some(truncate(&message, 1000).into_owned());
            Ok(Reply::Done)
        }
        Request::Exec(exec) => run_exec(&guest, exec).await.map(Reply::Exec),
    }
}

/// Runs an authorized exec request, streaming stdout where it asks.
async fn run_exec(guest: &Guest, request: ExecRequest) -> Result<ExecResult, HostError> {
    let failed = |message: String| HostError {
        kind: ErrorKind::Failed,
        message,
    };
    let Some(exec) = guest.exec.clone() else {
        return Err(HostError {
            kind: ErrorKind::Unavailable,
            message: "exec is not available: hookrun has no Docker engine for this run".into(),
        });
    };
    tracing::debug!(hook = %guest.name, service = %request.service, argv = ?request.argv, "exec");
    let (outcome, captured) = match &request.stdout {
        StdoutTarget::Artifact { path } => {
            let file = create_beneath(&guest.artifact_dir, Path::new(path))
                .map_err(|e| failed(format!("cannot create artifact `{path}`: {e}")))?;
            let mut file = tokio::fs::File::from_std(file);
            let outcome = exec.exec(&request.service, &request.argv, &mut file).await;
            let flushed = file.flush().await;
            let outcome = outcome.map_err(|e| failed(e.to_string()))?;
            flushed.map_err(|e| failed(format!("cannot write artifact `{path}`: {e}")))?;
            (outcome, None)
        }
        StdoutTarget::Capture => {
            let mut capture = Capture::default();
            let outcome = exec
                .exec(&request.service, &request.argv, &mut capture)
                .await
                .map_err(|e| failed(e.to_string()))?;
            (outcome, Some(String::from_utf8_lossy(&capture.kept).into_owned()))
        }
        StdoutTarget::Discard => {
            let mut sink = tokio::io::sink();
            let outcome = exec
                .exec(&request.service, &request.argv, &mut sink)
                .await
                .map_err(|e| failed(e.to_string()))?;
            (outcome, None)
        }
    };
    Ok(ExecResult {
        exit_code: outcome.exit_code,
        stderr: outcome.stderr,
        stdout_bytes: outcome.stdout_bytes,
        stdout: captured,
    })
}

/// Creates (or truncates) `relative` under `root`, creating folders, without following any symlink: the guest
/// can make links in its artifact folder, and the host must not be led by one to write elsewhere.
fn create_beneath(root: &Path, relative: &Path) -> std::io::Result<std::fs::File> {
    use rustix::fs::{Mode, OFlags};
    let nofollow_dir = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let mut dir = rustix::fs::open(root, nofollow_dir, Mode::empty())?;
    let names: Vec<_> = relative
        .components()
        .map(|c| match c {
            Component::Normal(name) => Ok(name),
            _ => Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "not a plain relative path",
            )),
        })
        .collect::<Result<_, _>>()?;
    let Some((file, parents)) = names.split_last() else {
        return Err(std::io::ErrorKind::InvalidInput.into());
    };
    for name in parents {
        match rustix::fs::mkdirat(&dir, *name, Mode::from_raw_mode(0o755)) {
            Ok(()) | Err(rustix::io::Errno::EXIST) => {}
            Err(e) => return Err(e.into()),
        }
        dir = rustix::fs::openat(&dir, *name, nofollow_dir, Mode::empty())?;
    }
    let fd = rustix::fs::openat(
        &dir,
        *file,
        OFlags::WRONLY | OFlags::CREATE | OFlags::TRUNC | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o644),
    )?;
    let file = std::fs::File::from(fd);
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    Ok(file)
}

/// Keeps the first [`MAX_CAPTURE`] bytes written and drops the rest.
#[derive(Default)]
struct Capture {
    kept: Vec<u8>,
}

impl tokio::io::AsyncWrite for Capture {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let room = MAX_CAPTURE - self.kept.len();
        self.kept.extend_from_slice(&buf[..buf.len().min(room)]);
        std::task::Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn artifacts_are_created_beneath_the_folder_and_never_through_a_link() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let file = create_beneath(root.path(), Path::new("db/app.sql")).unwrap();
        drop(file);
        assert!(root.path().join("db/app.sql").is_file());

        std::os::unix::fs::symlink(outside.path(), root.path().join("link")).unwrap();
        assert!(create_beneath(root.path(), Path::new("link/x")).is_err());
        std::os::unix::fs::symlink(outside.path().join("f"), root.path().join("file-link")).unwrap();
        assert!(create_beneath(root.path(), Path::new("file-link")).is_err());
        assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
    }
}

//! The real host, reached through the `hookrun_v1` imports when the hook runs inside hookrun.

use crate::abi::{ErrorKind, HostError, Request, Response};
use crate::guest::Host;

#[link(wasm_import_module = "hookrun_v1")]
extern "C" {
    /// Carries out the JSON request at `ptr`; returns the length of the response the host keeps.
    fn call(ptr: *const u8, len: usize) -> usize;
    /// Copies the kept response to `ptr` (at most `len` bytes); returns the bytes copied.
    fn take_response(ptr: *mut u8, len: usize) -> usize;
}

/// hookrun, across the ABI.
pub struct WasmHost;

impl Host for WasmHost {
    fn call(&self, request: &Request) -> Response {
        let bytes = serde_json::to_vec(request).map_err(|e| HostError {
            kind: ErrorKind::Invalid,
            message: format!("cannot encode request: {e}"),
        })?;
        // SAFETY: the host reads `bytes.len()` bytes at `bytes.as_ptr()`, which stay alive for the call, and
        // writes at most `buf.len()` bytes into `buf`.
        let response = unsafe {
            let len = call(bytes.as_ptr(), bytes.len());
            let mut buf = vec![0u8; len];
            let copied = take_response(buf.as_mut_ptr(), buf.len());
            buf.truncate(copied);
            buf
        };
        serde_json::from_slice(&response).map_err(|e| HostError {
            kind: ErrorKind::Invalid,
            message: format!("cannot decode the host's response: {e}"),
        })?
    }
}

//! The ABI between hookrun and its WebAssembly hooks, defined once here and compiled into both sides.
//!
//! # Wire protocol
//!
//! A hook is a WASI preview 1 *command* (a `wasm32-wasip1` binary with `fn main`). Files, the environment and the
//! exit code are plain WASI. What WASI lacks comes through two functions the host provides in the import module
//! [`IMPORT_MODULE`] (`"hookrun_v1"`); the module name carries the ABI's major version, so a host refuses a module
//! built for another major version before running it, with a message that says which version it needs.
//!
//! - `call(request_ptr: i32, request_len: i32) -> i32`: the guest hands the host one [`Request`] as JSON
//!   (at most [`MAX_REQUEST_BYTES`]). The host carries it out and keeps the [`Response`] (JSON) for the guest;
//!   the return value is the response's length in bytes.
//! - `take_response(ptr: i32, len: i32) -> i32`: copies the kept response into guest memory at `ptr` (at most
//!   `len` bytes), forgets it, and returns the number of bytes copied.
//!
//! Minor versions only add [`Request`] variants or optional fields; a host answers a request it does not know with
//! an [`ErrorKind::Invalid`] error rather than a trap.

use std::collections::BTreeMap;
use std::path::{Component, Path};

use serde::{Deserialize, Serialize};

/// The ABI's major version: the number in [`IMPORT_MODULE`].
pub const ABI_VERSION: u32 = 1;

/// The ABI's minor version: additions that older guests do not use.
pub const ABI_MINOR: u32 = 0;

/// The import module that carries the host functions of this major version.
pub const IMPORT_MODULE: &str = "hookrun_v1";

/// What every hookrun import module's name starts with; the major version follows.
pub const IMPORT_MODULE_PREFIX: &str = "hookrun_v";

/// The host function that carries out one request.
pub const CALL: &str = "call";

/// The host function that hands the guest the response to its last request.
pub const TAKE_RESPONSE: &str = "take_response";

/// The import module of WASI preview 1, which the host provides too.
pub const WASI_MODULE: &str = "wasi_snapshot_preview1";

/// Where the hook's own artifact folder appears inside the sandbox. Everything written there ends up in the backup
/// archive under `hooks/<hook name>/`.
pub const GUEST_ARTIFACT_DIR: &str = "/artifacts";

/// The largest request the host reads.
pub const MAX_REQUEST_BYTES: usize = 1 << 20;

/// Log messages longer than this (in bytes) are cut by the host.
pub const MAX_LOG_MESSAGE: usize = 4096;

/// Log lines the host shows from one run of a hook; later ones are counted and dropped.
pub const MAX_LOG_LINES: usize = 1000;

/// How many named outputs a hook may set.
pub const MAX_OUTPUTS: usize = 64;

/// The longest output name.
pub const MAX_OUTPUT_KEY: usize = 64;

/// The longest output value, in bytes.
pub const MAX_OUTPUT_VALUE: usize = 4096;

/// The most stdout the host captures for [`StdoutTarget::Capture`]; the rest is dropped and counted.
pub const MAX_CAPTURE: usize = 64 * 1024;

/// The name of the import module for ABI major version `major`.
pub fn import_module(major: u32) -> String {
    format!("{IMPORT_MODULE_PREFIX}{major}")
}

/// The major version an import module's name asks for: `Some(Ok(2))` for `hookrun_v2`, `Some(Err(..))` for a
/// `hookrun_v…` name without a number, `None` for a module that is not a hookrun one.
pub fn requested_major(module: &str) -> Option<Result<u32, ()>> {
    module
        .strip_prefix(IMPORT_MODULE_PREFIX)
        .map(|rest| rest.parse::<u32>().map_err(|_| ()))
}

/// One thing a hook asks of the host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// The run's facts and the hook's configuration. Answered with [`Reply::Context`].
    Context,
    /// A line for the operator's log, shown with the hook's name. Answered with [`Reply::Done`].
    Log { level: LogLevel, message: String },
    /// Run a program inside one of the project's services. Answered with [`Reply::Exec`].
    Exec(ExecRequest),
    /// Set a named output, visible to later hooks and in the run's report. Answered with [`Reply::Done`].
    SetOutput { key: String, value: String },
    /// Say why the hook is about to exit with a non-zero code; the host reports this as its failure.
    Fail { message: String },
}

/// How important a log line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

/// A program to run inside a service, and where its stdout goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecRequest {
    /// The Compose service.
    pub service: String,
    /// The program (`argv[0]`, matched exactly against the hook's `exec` permission) and its arguments.
    pub argv: Vec<String>,
    /// Where its stdout goes.
    pub stdout: StdoutTarget,
}

/// Where a program's stdout goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "to", rename_all = "snake_case")]
pub enum StdoutTarget {
    /// Streamed into a file in the hook's artifact folder (a relative path; parents are created), never held
    /// whole in memory.
    Artifact { path: String },
    /// Returned in [`ExecResult::stdout`], up to [`MAX_CAPTURE`] bytes.
    Capture,
    /// Thrown away (still counted).
    Discard,
}

/// What the host answers.
pub type Response = Result<Reply, HostError>;

/// A successful answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "snake_case")]
pub enum Reply {
    /// The answer to [`Request::Context`].
    Context(Box<HookContext>),
    /// The request was carried out.
    Done,
    /// The program ran (whatever its exit code).
    Exec(ExecResult),
}

/// A refused or failed request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostError {
    /// What kind of refusal this is.
    pub kind: ErrorKind,
    /// One line saying why.
    pub message: String,
}

/// Kinds of [`HostError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The hook's permissions do not allow it.
    Denied,
    /// The request is malformed or unknown to this host.
    Invalid,
    /// The capability exists but cannot be used here (e.g. no Docker engine).
    Unavailable,
    /// The host tried and failed.
    Failed,
}

impl std::fmt::Display for HostError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for HostError {}

/// How a program run in a service ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecResult {
    /// Its exit code.
    pub exit_code: i64,
    /// The end of its stderr.
    pub stderr: String,
    /// Bytes it wrote to stdout (all of them, wherever they went).
    pub stdout_bytes: u64,
    /// Its stdout, for [`StdoutTarget::Capture`] (cut at [`MAX_CAPTURE`] bytes, lossily decoded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdout: Option<String>,
}

/// What a hook knows about the run it is part of.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HookContext {
    /// The host's ABI version, `[major, minor]`.
    pub abi: [u32; 2],
    /// The hook's name in the chain.
    pub hook: String,
    /// The run's id in the catalog.
    pub run_id: i64,
    /// The run's kind as hookrun names it: `"pre-upgrade"`, `"manual"`, ….
    pub kind: String,
    /// The deployment's version this run belongs to.
    pub version: String,
    /// The Compose project, when configured.
    pub project: Option<String>,
    /// The deployment's folder (a host path; readable only if the hook's permissions grant it).
    pub work_dir: String,
    /// The Compose services the run stopped so far, in order.
    pub services: Vec<String>,
    /// The hook's artifact folder inside the sandbox ([`GUEST_ARTIFACT_DIR`]).
    pub artifact_dir: String,
    /// The hook's `config` table.
    pub config: serde_json::Value,
    /// The archive, once the `backup` hook has written it.
    #[serde(default)]
    pub archive: Option<ArchiveSummary>,
    /// The run's first failure, for hooks that run after one.
    #[serde(default)]
    pub failure: Option<FailureSummary>,
    /// Outputs of earlier hooks: hook name → key → value.
    #[serde(default)]
    pub outputs: BTreeMap<String, BTreeMap<String, String>>,
}

/// The archive a run produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchiveSummary {
    /// Its path on the host.
    pub path: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its SHA-256, lowercase hex.
    pub sha256: String,
}

/// A run's first failure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureSummary {
    /// The hook that failed.
    pub hook: String,
    /// Its one-line error.
    pub message: String,
}

/// Checks a path inside the artifact folder: relative, not empty, and made only of plain names (no `..`, no `.`,
/// no root). Host and guest apply the same rule.
pub fn validate_artifact_path(path: &str) -> Result<(), String> {
    if path.is_empty() {
        return Err("artifact path is empty".to_string());
    }
    if path.len() > 1024 {
        return Err("artifact path is longer than 1024 bytes".to_string());
    }
    for component in Path::new(path).components() {
        match component {
            Component::Normal(_) => {}
            Component::RootDir | Component::Prefix(_) => {
                return Err(format!(
                    "artifact path `{path}` must be relative to the artifact folder"
                ))
            }
            Component::ParentDir | Component::CurDir => {
                return Err(format!(
                    "artifact path `{path}` may hold only plain names (no `.` or `..`)"
                ))
            }
        }
    }
    Ok(())
}

/// Checks an output's name and value against the ABI's limits. Host and guest apply the same rule.
pub fn validate_output(key: &str, value: &str) -> Result<(), String> {
    if key.is_empty() || key.len() > MAX_OUTPUT_KEY {
        return Err(format!("output name must be 1 to {MAX_OUTPUT_KEY} characters"));
    }
    if !key
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
    {
        return Err(format!(
            "output name `{key}` may hold only letters, digits, `_`, `-` and `.`"
        ));
    }
    if value.len() > MAX_OUTPUT_VALUE {
        return Err(format!(
            "output `{key}` is {} bytes; the most is {MAX_OUTPUT_VALUE}",
            value.len()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_import_module_name_carries_the_major_version() {
        assert_eq!(IMPORT_MODULE, import_module(ABI_VERSION));
        assert_eq!(requested_major("hookrun_v1"), Some(Ok(1)));
        assert_eq!(requested_major("hookrun_v2"), Some(Ok(2)));
        assert_eq!(requested_major("hookrun_vx"), Some(Err(())));
        assert_eq!(requested_major("wasi_snapshot_preview1"), None);
    }

    #[test]
    fn requests_round_trip_as_tagged_json() {
        let request = Request::Exec(ExecRequest {
            service: "db".into(),
            argv: vec!["pg_dump".into(), "app".into()],
            stdout: StdoutTarget::Artifact { path: "app.sql".into() },
        });
        let json = serde_json::to_string(&request).unwrap();
        assert_eq!(
            json,
            r#"{"op":"exec","service":"db","argv":["pg_dump","app"],"stdout":{"to":"artifact","path":"app.sql"}}"#
        );
        assert_eq!(serde_json::from_str::<Request>(&json).unwrap(), request);
    }

    #[test]
    fn responses_round_trip() {
        let ok: Response = Ok(Reply::Done);
        let err: Response = Err(HostError {
            kind: ErrorKind::Denied,
            message: "no".into(),
        });
        for response in [ok, err] {
            let json = serde_json::to_vec(&response).unwrap();
            assert_eq!(serde_json::from_slice::<Response>(&json).unwrap(), response);
        }
    }

    #[test]
    fn artifact_paths_stay_inside_the_artifact_folder() {
        assert!(validate_artifact_path("dump.sql").is_ok());
        assert!(validate_artifact_path("db/app.sql").is_ok());
        for bad in ["", "/etc/passwd", "../escape", "a/../../b", "./x"] {
            assert!(validate_artifact_path(bad).is_err(), "{bad} was accepted");
        }
    }

    #[test]
    fn output_names_and_sizes_are_bounded() {
        assert!(validate_output("dump_bytes", "42").is_ok());
        assert!(validate_output("", "x").is_err());
        assert!(validate_output("has space", "x").is_err());
        assert!(validate_output(&"k".repeat(MAX_OUTPUT_KEY + 1), "x").is_err());
        assert!(validate_output("big", &"v".repeat(MAX_OUTPUT_VALUE + 1)).is_err());
    }
}

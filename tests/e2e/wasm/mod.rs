//! WASM hooks, in-process: real guest modules — the test crates in `tests/wasm-modules/`, the examples, a
//! scaffolded hook, all built here for wasm32-wasip1 — run by hookrun's wasmtime host against a real run context.
//! They pin down what a hook can do (context, config, logs, artifacts, exec, outputs), that everything else is
//! refused, and that a hostile hook is contained with a one-line message naming it. Docker is replaced by a fake
//! `ServiceExec` that only records what reaches it. `hookrun hooks new` is driven through the built binary.
//!
//! The shared parts live here (the guests built once, a run to put hooks in, a recording exec, captured logs);
//! the tests are in `sandbox` (what a hook can and cannot do), `limits` (hostile hooks and refused modules, in
//! process and in a real Compose project), `examples` (the example hooks and the scaffold) and `cache`.

use async_trait::async_trait;
use hookrun::wasm::{
    check, ModuleSource, Permissions, WasmEngine, WasmError, WasmHook, WasmHookSpec, DEFAULT_MEMORY_LIMIT,
};
use hookrun_catalog::Catalog;
use hookrun_catalog::RunKind;
use hookrun_docker::{DockerError, ExecOutcome, ServiceExec};
use hookrun_e2e::{build_wasm, build_wasm_example, Sandbox};
use hookrun_hooks::{Hook, HookError, ProgressSink, RunContext};
use hookrun_sdk::abi::{MAX_LOG_LINES, MAX_LOG_MESSAGE};
use serde_json::json;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

mod cache;
mod examples;
mod limits;
mod sandbox;

// ---------------------------------------------------------------------------------------------------------------
// Building the guests (once per test process)

/// The guest modules of this suite, built once.
struct Guests {
    hostile: PathBuf,
    well_behaved: PathBuf,
    pg_dump: PathBuf,
    sqlite_backup: PathBuf,
}

fn guests() -> &'static Guests {
    static GUESTS: OnceLock<Guests> = OnceLock::new();
    GUESTS.get_or_init(|| Guests {
        hostile: build_wasm("tests/wasm-modules", "hostile"),
        well_behaved: build_wasm("tests/wasm-modules", "well-behaved"),
        pg_dump: build_wasm_example("pg-dump"),
        sqlite_backup: build_wasm_example("sqlite-backup"),
    })
}

/// One engine for the whole suite, with its own module cache, so each module is compiled once.
fn engine() -> Arc<WasmEngine> {
    static ENGINE: OnceLock<Arc<WasmEngine>> = OnceLock::new();
    ENGINE
        .get_or_init(|| {
            let cache = tempfile::tempdir().unwrap().keep();
            WasmEngine::new(cache).unwrap()
        })
        .clone()
}

/// A WAT module written to a file in `dir`.
fn wat_module(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(format!("{name}.wasm"));
    std::fs::write(&path, wat::parse_str(text).unwrap()).unwrap();
    path
}

// ---------------------------------------------------------------------------------------------------------------
// A run to put hooks in

/// A run context in its own temp folder (work dir, staging dir, catalog).
struct World {
    dir: tempfile::TempDir,
    ctx: RunContext,
}

impl World {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for sub in ["work", "staging", "storage"] {
            std::fs::create_dir_all(root.join(sub)).unwrap();
        }
        let ctx = RunContext {
            run_id: 7,
            kind: RunKind::PreUpgrade,
            version: "2.5.0".to_string(),
            project: Some("shop".to_string()),
            work_dir: root.join("work"),
            storage_dir: root.join("storage"),
            staging_dir: root.join("staging"),
            started_at: chrono::Utc::now(),
            catalog: Arc::new(Catalog::open(&root.join("catalog.db")).unwrap()),
            archive: None,
            outputs: BTreeMap::new(),
            failure: None,
            stopped: Vec::new(),
            snapshot: Vec::new(),
            mounts: Vec::new(),
            compose_files: None,
            archived_by_snapshot: None,
            cancel: CancellationToken::new(),
            progress: ProgressSink::discard(),
        };
        Self { dir, ctx }
    }

    fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }

    /// A folder under the world's root, created.
    fn folder(&self, relative: &str) -> PathBuf {
        let path = self.path(relative);
        std::fs::create_dir_all(&path).unwrap();
        path
    }

    /// Runs a hook as the executor does: preflight, then run.
    async fn run(&mut self, hook: &WasmHook) -> Result<(), HookError> {
        hook.preflight(&self.ctx).await?;
        hook.run(&mut self.ctx).await
    }

    fn outputs(&self, hook: &str) -> BTreeMap<String, String> {
        self.ctx.outputs.get(hook).cloned().unwrap_or_default()
    }
}

fn spec(name: &str, module: &Path, config: serde_json::Value, permissions: &str) -> WasmHookSpec {
    let permissions: toml::Value = toml::from_str(permissions).unwrap();
    WasmHookSpec {
        name: name.to_string(),
        module: module.to_path_buf(),
        config,
        permissions: Permissions::from_toml(&permissions, Path::new("/")).unwrap(),
        memory_limit: DEFAULT_MEMORY_LIMIT,
    }
}

fn hook(spec: WasmHookSpec, exec: Option<Arc<FakeExec>>) -> WasmHook {
    WasmHook::new(spec, engine(), exec.map(|e| e as Arc<dyn ServiceExec>))
}

/// Asserts that `result` failed with a message naming `hook` and containing each of `needles`.
#[track_caller]
fn assert_failed(result: Result<(), HookError>, hook: &str, needles: &[&str]) -> String {
    let message = match result {
        Ok(()) => panic!("hook {hook} succeeded; expected a failure containing {needles:?}"),
        Err(e) => e.to_string(),
    };
    assert!(
        message.contains(hook),
        "message does not name the hook {hook}: {message}"
    );
    for needle in needles {
        assert!(message.contains(needle), "message lacks {needle:?}: {message}");
    }
    assert!(!message.contains('\n'), "message is not one line: {message}");
    eprintln!("{hook}: {message}");
    message
}

// ---------------------------------------------------------------------------------------------------------------
// A fake Docker: records what reaches it

#[derive(Clone)]
enum FakeBehaviour {
    /// Writes these chunks to stdout, then exits with the code and stderr.
    Output {
        chunks: Vec<Vec<u8>>,
        exit_code: i64,
        stderr: String,
    },
    /// Never finishes.
    Hang,
}

struct FakeExec {
    behaviour: FakeBehaviour,
    calls: Mutex<Vec<(String, Vec<String>)>>,
}

impl FakeExec {
    fn new(behaviour: FakeBehaviour) -> Arc<Self> {
        Arc::new(Self {
            behaviour,
            calls: Mutex::new(Vec::new()),
        })
    }

    fn printing(chunks: &[&[u8]]) -> Arc<Self> {
        Self::new(FakeBehaviour::Output {
            chunks: chunks.iter().map(|c| c.to_vec()).collect(),
            exit_code: 0,
            stderr: String::new(),
        })
    }

    fn calls(&self) -> Vec<(String, Vec<String>)> {
        self.calls.lock().unwrap().clone()
    }
}

#[async_trait]
impl ServiceExec for FakeExec {
    async fn exec(
        &self,
        service: &str,
        argv: &[String],
        stdout: &mut (dyn AsyncWrite + Unpin + Send),
    ) -> Result<ExecOutcome, DockerError> {
        self.calls.lock().unwrap().push((service.to_string(), argv.to_vec()));
        match &self.behaviour {
            FakeBehaviour::Hang => std::future::pending().await,
            FakeBehaviour::Output {
                chunks,
                exit_code,
                stderr,
            } => {
                let mut written = 0;
                for chunk in chunks {
                    stdout.write_all(chunk).await.unwrap();
                    written += chunk.len() as u64;
                    tokio::task::yield_now().await;
                }
                Ok(ExecOutcome {
                    exit_code: *exit_code,
                    stderr: stderr.clone(),
                    stdout_bytes: written,
                })
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Capturing what hooks log

#[derive(Debug, Clone)]
struct Logged {
    level: tracing::Level,
    hook: String,
    message: String,
}

fn logs() -> &'static Mutex<Vec<Logged>> {
    static LOGS: OnceLock<Mutex<Vec<Logged>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        use tracing_subscriber::layer::SubscriberExt;
        let _ = tracing::subscriber::set_global_default(tracing_subscriber::registry().with(Capture));
        Mutex::new(Vec::new())
    })
}

/// The lines logged with `hook = name`.
fn logs_of(name: &str) -> Vec<Logged> {
    logs()
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.hook == name)
        .cloned()
        .collect()
}

struct Capture;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Capture {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: tracing_subscriber::layer::Context<'_, S>) {
        #[derive(Default)]
        struct Fields {
            hook: String,
            message: String,
        }
        impl tracing::field::Visit for Fields {
            fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
                if field.name() == "hook" {
                    self.hook = value.to_string();
                }
            }
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                match field.name() {
                    "message" => self.message = format!("{value:?}"),
                    "hook" => self.hook = format!("{value:?}").trim_matches('"').to_string(),
                    _ => {}
                }
            }
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        if !fields.hook.is_empty() {
            logs().lock().unwrap().push(Logged {
                level: *event.metadata().level(),
                hook: fields.hook,
                message: fields.message,
            });
        }
    }
}

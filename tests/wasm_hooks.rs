//! WASM hooks, in-process: real guest modules — the test crates in `tests/wasm-modules/`, the examples, a
//! scaffolded hook, all built here for wasm32-wasip1 — run by hookrun's wasmtime host against a real run context.
//! They pin down what a hook can do (context, config, logs, artifacts, exec, outputs), that everything else is
//! refused, and that a hostile hook is contained with a one-line message naming it. Docker is replaced by a fake
//! `ServiceExec` that only records what reaches it. `hookrun hooks new` is driven through the built binary.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use hookrun::wasm::{
    check, ModuleSource, Permissions, WasmEngine, WasmError, WasmHook, WasmHookSpec, DEFAULT_MEMORY_LIMIT,
};
use hookrun_catalog::Catalog;
use hookrun_catalog::RunKind;
use hookrun_docker::{DockerError, ExecOutcome, ServiceExec};
use hookrun_e2e::Sandbox;
use hookrun_hooks::{Hook, HookError, ProgressSink, RunContext};
use hookrun_sdk::abi::{MAX_LOG_LINES, MAX_LOG_MESSAGE};
use serde_json::json;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

// ---------------------------------------------------------------------------------------------------------------
// Building the guests (once per test process)

/// The workspace root.
fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// Where cargo builds: `CARGO_TARGET_DIR` when set, like the outer build.
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| workspace().join("target"), PathBuf::from)
}

/// Builds the crate (or workspace) at `dir` for wasm32-wasip1 in release mode.
fn build_wasm(dir: &Path) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let output = Command::new(cargo)
        .args(["build", "--quiet", "--release", "--target", "wasm32-wasip1"])
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", target_dir())
        .output()
        .expect("cargo runs");
    assert!(
        output.status.success(),
        "building {} for wasm32-wasip1 failed (is the target installed? `rustup target add wasm32-wasip1`):\n{}",
        dir.display(),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The `.wasm` file of binary `name` built by [`build_wasm`].
fn wasm_file(name: &str) -> PathBuf {
    let path = target_dir().join("wasm32-wasip1/release").join(format!("{name}.wasm"));
    assert!(path.is_file(), "{} was not built", path.display());
    path
}

/// The guest modules of this suite, built once.
struct Guests {
    hostile: PathBuf,
    well_behaved: PathBuf,
    pg_dump: PathBuf,
    sqlite_backup: PathBuf,
}

fn guests() -> &'static Guests {
    static GUESTS: OnceLock<Guests> = OnceLock::new();
    GUESTS.get_or_init(|| {
        build_wasm(&workspace().join("tests/wasm-modules"));
        build_wasm(&workspace().join("examples/pg-dump"));
        build_wasm(&workspace().join("examples/sqlite-backup"));
        Guests {
            hostile: wasm_file("hostile"),
            well_behaved: wasm_file("well-behaved"),
            pg_dump: wasm_file("pg-dump"),
            sqlite_backup: wasm_file("sqlite-backup"),
        }
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

// ---------------------------------------------------------------------------------------------------------------
// What a hook can do

#[tokio::test]
async fn a_hook_sees_its_context_and_config_and_only_its_granted_world() {
    logs();
    let mut world = World::new();
    let data = world.folder("work/data");
    std::fs::write(data.join("settings.json"), b"{\"mode\":\"prod\"}").unwrap();
    let out = world.folder("export");
    // Variables cargo sets for every test process (the suite never calls set_var: tests run in parallel).
    let granted = std::env::var("CARGO_PKG_NAME").unwrap();
    assert!(std::env::var("CARGO_MANIFEST_DIR").is_ok());
    world.ctx.stopped.push(hookrun_catalog::StoppedService {
        service: "web".into(),
        container_id: "c1".into(),
        container_name: "shop-web-1".into(),
        start_layer: 1,
        stopped_at: chrono::Utc::now(),
    });

    let name = "tour";
    let permissions = format!(
        "read = [{:?}]\nwrite = [{:?}]\nenv = [\"CARGO_PKG_NAME\", \"HOOKRUN_TEST_NEVER_SET\"]",
        data.to_str().unwrap(),
        out.to_str().unwrap()
    );
    let config = json!({
        "copy": { "settings.json": data.join("settings.json") },
        "write": [out.join("report.txt")],
        "env": ["CARGO_PKG_NAME", "HOOKRUN_TEST_NEVER_SET", "CARGO_MANIFEST_DIR"],
    });
    let h = hook(spec(name, &guests().well_behaved, config, &permissions), None);
    assert_eq!(h.kind(), "wasm");
    world.run(&h).await.unwrap();

    let outputs = world.outputs(name);
    assert_eq!(outputs["context.kind"], "pre-upgrade");
    assert_eq!(outputs["context.version"], "2.5.0");
    assert_eq!(outputs["context.services"], "web");
    assert_eq!(outputs["context.abi"], "1.0");
    assert_eq!(outputs["env.CARGO_PKG_NAME"], granted);
    // Granted but not set in hookrun's environment: absent, not empty.
    assert_eq!(outputs["env.HOOKRUN_TEST_NEVER_SET"], "<unset>");
    // Set in hookrun's environment but not granted: invisible.
    assert_eq!(outputs["env.CARGO_MANIFEST_DIR"], "<unset>");

    let artifacts = world.ctx.artifact_dir(name);
    assert_eq!(
        std::fs::read_to_string(artifacts.join("notes/hello.txt")).unwrap(),
        "hello from the sandbox"
    );
    assert_eq!(
        std::fs::read(artifacts.join("settings.json")).unwrap(),
        b"{\"mode\":\"prod\"}"
    );
    assert_eq!(
        std::fs::read_to_string(out.join("report.txt")).unwrap(),
        "written by the hook"
    );

    let logged = logs_of(name);
    for (level, text) in [
        (tracing::Level::ERROR, "a Error line"),
        (tracing::Level::WARN, "a Warn line"),
        (tracing::Level::INFO, "a Info line"),
        (tracing::Level::DEBUG, "a Debug line"),
        (tracing::Level::INFO, "a line on stdout"),
    ] {
        assert!(
            logged.iter().any(|l| l.level == level && l.message == text),
            "no {level} line {text:?} in {logged:?}"
        );
    }
}

#[tokio::test]
async fn a_granted_folder_is_read_by_its_path_relative_to_the_work_dir_as_in_hooks_toml() {
    let mut world = World::new();
    let uploads = world.folder("work/data/uploads");
    std::fs::write(uploads.join("a.txt"), b"one folder, two names").unwrap();
    // A folder of the same relative path beside the work dir: a relative path must never mean it.
    let decoy = world.folder("data/uploads");
    std::fs::write(decoy.join("a.txt"), b"wrong folder").unwrap();
    let granted: toml::Value = toml::from_str(r#"read = ["data/uploads"]"#).unwrap();
    let permissions = Permissions::from_toml(&granted, &world.ctx.work_dir).unwrap();
    assert_eq!(
        permissions.read,
        std::slice::from_ref(&uploads),
        "resolved against the work dir"
    );
    let config = json!({ "copy": {
        "relative.txt": "data/uploads/a.txt",
        "dot-relative.txt": "./data/uploads/a.txt",
        "absolute.txt": uploads.join("a.txt"),
    } });
    let h = hook(
        WasmHookSpec {
            permissions,
            ..spec("paths", &guests().well_behaved, config, "")
        },
        None,
    );
    world.run(&h).await.unwrap();
    let artifacts = world.ctx.artifact_dir("paths");
    for name in ["relative.txt", "dot-relative.txt", "absolute.txt"] {
        assert_eq!(
            std::fs::read(artifacts.join(name)).unwrap(),
            b"one folder, two names",
            "{name}"
        );
    }
}

#[tokio::test]
async fn a_failing_hook_reports_its_own_message() {
    let mut world = World::new();
    let h = hook(
        spec(
            "gives-up",
            &guests().well_behaved,
            json!({ "fail": "the database is not ready" }),
            "",
        ),
        None,
    );
    assert_failed(
        world.run(&h).await,
        "gives-up",
        &["exited with code 1", "the database is not ready"],
    );
    // A message over several lines still makes one line.
    let h = hook(
        spec(
            "verbose",
            &guests().well_behaved,
            json!({ "fail": "first line\n  second line\n" }),
            "",
        ),
        None,
    );
    assert_failed(world.run(&h).await, "verbose", &["first line | second line"]);
    // What it set before failing is kept.
    assert_eq!(world.outputs("gives-up")["context.kind"], "pre-upgrade");
}

#[tokio::test]
async fn exec_runs_a_granted_program_and_streams_its_stdout_into_an_artifact() {
    let mut world = World::new();
    let docker = FakeExec::new(FakeBehaviour::Output {
        chunks: vec![b"-- part 1\n".to_vec(), b"-- part 2\n".to_vec()],
        exit_code: 0,
        stderr: "pg_dump: note\n".into(),
    });
    let config = json!({ "exec": { "service": "db", "argv": ["pg_dump", "--dbname=app"], "artifact": "db/app.sql" } });
    let h = hook(
        spec(
            "dump",
            &guests().well_behaved,
            config,
            r#"exec = [{ service = "db", programs = ["pg_dump"] }]"#,
        ),
        Some(docker.clone()),
    );
    world.run(&h).await.unwrap();

    assert_eq!(
        docker.calls(),
        [(
            "db".to_string(),
            vec!["pg_dump".to_string(), "--dbname=app".to_string()]
        )]
    );
    assert_eq!(
        std::fs::read_to_string(world.ctx.artifact_dir("dump").join("db/app.sql")).unwrap(),
        "-- part 1\n-- part 2\n"
    );
    let outputs = world.outputs("dump");
    assert_eq!(outputs["exec.exit_code"], "0");
    assert_eq!(outputs["exec.stdout_bytes"], "20");
    assert_eq!(outputs["exec.stderr"], "pg_dump: note");
}

#[tokio::test]
async fn exec_can_capture_a_short_stdout_instead() {
    let mut world = World::new();
    let docker = FakeExec::printing(&[b"ok\n"]);
    let config = json!({ "exec": { "service": "db", "argv": ["pg_isready"] } });
    let h = hook(
        spec(
            "ready",
            &guests().well_behaved,
            config,
            r#"exec = [{ service = "db", programs = ["pg_isready"] }]"#,
        ),
        Some(docker),
    );
    world.run(&h).await.unwrap();
    assert_eq!(world.outputs("ready")["exec.stdout"], "ok\n");
}

#[tokio::test]
async fn the_pg_dump_example_streams_the_dump_of_the_configured_database() {
    let mut world = World::new();
    let docker = FakeExec::printing(&[b"PGDMP", b"\x01\x0e\x00 rest of the dump"]);
    let h = hook(
        spec(
            "pg",
            &guests().pg_dump,
            json!({ "service": "postgres", "database": "shop", "user": "shop" }),
            r#"exec = [{ service = "postgres", programs = ["pg_dump"] }]"#,
        ),
        Some(docker.clone()),
    );
    world.run(&h).await.unwrap();
    assert_eq!(
        docker.calls(),
        [(
            "postgres".to_string(),
            [
                "pg_dump",
                "--no-password",
                "--username=shop",
                "--format=custom",
                "--dbname=shop"
            ]
            .map(String::from)
            .to_vec()
        )]
    );
    assert_eq!(
        std::fs::read(world.ctx.artifact_dir("pg").join("shop.dump")).unwrap(),
        b"PGDMP\x01\x0e\x00 rest of the dump"
    );
    assert_eq!(world.outputs("pg")["bytes"], "25");
}

#[tokio::test]
async fn the_sqlite_example_refuses_a_corrupt_database() {
    let mut world = World::new();
    let docker = FakeExec::printing(&[b"*** in database main ***\nPage 7 is never used\n"]);
    let h = hook(
        spec(
            "app-db",
            &guests().sqlite_backup,
            json!({ "service": "app", "database": "/data/app.db" }),
            r#"exec = [{ service = "app", programs = ["sqlite3"] }]"#,
        ),
        Some(docker.clone()),
    );
    assert_failed(
        world.run(&h).await,
        "app-db",
        &["/data/app.db failed its integrity check", "in database main"],
    );
    assert_eq!(docker.calls().len(), 1, "no dump after a failed check");
}

#[tokio::test]
async fn a_scaffolded_hook_builds_and_runs() {
    let dir = tempfile::tempdir().unwrap();
    let crate_dir = dir.path().join("greeter");
    hookrun::wasm::scaffold::scaffold("greeter", &crate_dir).unwrap();
    build_wasm(&crate_dir);
    let mut world = World::new();
    let h = hook(
        spec("greeter", &wasm_file("greeter"), json!({ "greeting": "bonjour" }), ""),
        None,
    );
    world.run(&h).await.unwrap();
    assert_eq!(
        std::fs::read_to_string(world.ctx.artifact_dir("greeter").join("greeting.txt")).unwrap(),
        "bonjour"
    );
    assert_eq!(world.outputs("greeter")["greeting"], "bonjour");
}

#[test]
fn hooks_new_prints_the_build_command_and_the_module_it_writes() {
    let sandbox = Sandbox::new();
    let mut command = sandbox.command(&["hooks", "new", "my-hook"]);
    command.env_remove("CARGO_TARGET_DIR");
    let run = sandbox.run_command(command);
    assert_eq!(run.code, 0, "{}", run.stderr);

    let build = "cd my-hook && cargo build --target wasm32-wasip1 --release";
    assert!(run.stdout.contains(build), "names the cd and the build: {}", run.stdout);
    let module = sandbox.path().join("my-hook/target/wasm32-wasip1/release/my-hook.wasm");
    let printed: Vec<&str> = run.stdout.split_whitespace().filter(|w| w.ends_with(".wasm")).collect();
    assert_eq!(printed, [module.to_str().unwrap()], "{}", run.stdout);
    let readme = std::fs::read_to_string(sandbox.path().join("my-hook/README.md")).unwrap();
    assert!(readme.contains("target/wasm32-wasip1/release/my-hook.wasm"), "{readme}");
    assert!(!readme.contains("my_hook"), "{readme}");

    // The printed command, as a user would paste it, writes exactly the printed file.
    assert!(!module.exists());
    let output = Command::new("sh")
        .args(["-c", build])
        .current_dir(sandbox.path())
        .env_remove("CARGO_TARGET_DIR")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(module.is_file(), "{} was not written", module.display());
    assert!(std::fs::read(&module).unwrap().starts_with(b"\0asm"));
}

#[test]
fn hooks_new_refuses_a_bad_name_or_a_folder_in_use_with_exit_2() {
    let sandbox = Sandbox::new();
    let bad_name = sandbox.run(&["hooks", "new", "Bad Name"]);
    assert_eq!(bad_name.code, 2, "{}", bad_name.stderr);
    assert!(
        bad_name.stderr.contains("`Bad Name` is not a valid hook name"),
        "{}",
        bad_name.stderr
    );
    assert!(!sandbox.path().join("Bad Name").exists());

    let taken = sandbox.path().join("taken");
    std::fs::create_dir_all(&taken).unwrap();
    std::fs::write(taken.join("mine.txt"), b"keep me").unwrap();
    let in_use = sandbox.run(&["hooks", "new", "taken"]);
    assert_eq!(in_use.code, 2, "{}", in_use.stderr);
    assert!(
        in_use.stderr.contains("already exists and is not empty"),
        "{}",
        in_use.stderr
    );
    assert_eq!(
        std::fs::read_dir(&taken).unwrap().count(),
        1,
        "nothing was written into it"
    );
}

// ---------------------------------------------------------------------------------------------------------------
// What a hook cannot do: each permission's negative

#[tokio::test]
async fn exec_of_a_program_not_granted_is_refused_before_it_reaches_docker() {
    let mut world = World::new();
    let docker = FakeExec::printing(&[b"should not run"]);
    let h = hook(
        spec(
            "sneaky",
            &guests().hostile,
            json!({ "attack": "exec", "service": "db", "program": "psql" }),
            r#"exec = [{ service = "db", programs = ["pg_dump"] }]"#,
        ),
        Some(docker.clone()),
    );
    assert_failed(world.run(&h).await, "sneaky", &["may not run `psql` in service `db`"]);
    assert!(docker.calls().is_empty());
    assert!(!world.outputs("sneaky").contains_key("leaked"));
}

#[tokio::test]
async fn exec_in_a_service_not_granted_is_refused_before_it_reaches_docker() {
    let mut world = World::new();
    let docker = FakeExec::printing(&[b"should not run"]);
    let h = hook(
        spec(
            "sneaky-service",
            &guests().hostile,
            json!({ "attack": "exec", "service": "web", "program": "pg_dump" }),
            r#"exec = [{ service = "db", programs = ["pg_dump"] }]"#,
        ),
        Some(docker.clone()),
    );
    assert_failed(
        world.run(&h).await,
        "sneaky-service",
        &["may not run programs in service `web`"],
    );
    assert!(docker.calls().is_empty());
}

#[tokio::test]
async fn exec_without_a_docker_engine_is_unavailable_not_a_crash() {
    let mut world = World::new();
    let h = hook(
        spec(
            "no-docker",
            &guests().hostile,
            json!({ "attack": "exec", "service": "db", "program": "pg_dump" }),
            r#"exec = [{ service = "db", programs = ["pg_dump"] }]"#,
        ),
        None,
    );
    assert_failed(world.run(&h).await, "no-docker", &["exec is not available"]);
}

#[tokio::test]
async fn exec_stdout_is_never_written_through_a_link_out_of_the_artifact_folder() {
    let mut world = World::new();
    let outside = world.folder("outside");
    // As if the hook had made a link in its artifact folder in an earlier step.
    let artifacts = world.ctx.artifact_dir("linker");
    std::fs::create_dir_all(&artifacts).unwrap();
    std::os::unix::fs::symlink(&outside, artifacts.join("escape")).unwrap();
    let docker = FakeExec::printing(&[b"pwned"]);
    let config = json!({ "exec": { "service": "db", "argv": ["pg_dump"], "artifact": "escape/owned" } });
    let h = hook(
        spec(
            "linker",
            &guests().well_behaved,
            config,
            r#"exec = [{ service = "db", programs = ["pg_dump"] }]"#,
        ),
        Some(docker.clone()),
    );
    assert_failed(
        world.run(&h).await,
        "linker",
        &["cannot create artifact `escape/owned`"],
    );
    assert!(docker.calls().is_empty());
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
}

#[tokio::test]
async fn reading_outside_the_granted_folders_is_refused() {
    let world = World::new();
    let granted = world.folder("granted");
    std::os::unix::fs::symlink("/etc/passwd", granted.join("passwd-link")).unwrap();
    let permissions = format!("read = [{:?}]", granted.to_str().unwrap());
    let attempts = [
        "/etc/passwd".to_string(),
        "/artifacts/../../../../etc/passwd".to_string(),
        format!("{}/../../../../etc/passwd", granted.display()),
        format!("{}/passwd-link", granted.display()),
        world.ctx.work_dir.join("x").display().to_string(),
    ];
    for (i, path) in attempts.iter().enumerate() {
        let mut world = World::new();
        let name = format!("reader-{i}");
        let h = hook(
            spec(
                &name,
                &guests().hostile,
                json!({ "attack": "read", "path": path }),
                &permissions,
            ),
            None,
        );
        assert_failed(world.run(&h).await, &name, &["cannot read", path]);
        assert!(!world.ctx.artifact_dir(&name).join("leak").exists(), "{path} leaked");
    }
}

#[tokio::test]
async fn a_read_the_sandbox_refuses_says_the_path_is_not_granted_and_what_would_grant_it() {
    let mut world = World::new();
    let granted = world.folder("granted");
    let out = world.folder("out");
    let permissions = format!(
        "read = [{:?}]\nwrite = [{:?}]",
        granted.to_str().unwrap(),
        out.to_str().unwrap()
    );
    let h = hook(
        spec(
            "nosy",
            &guests().hostile,
            json!({ "attack": "read", "path": "/etc/hostname" }),
            &permissions,
        ),
        None,
    );
    let message = assert_failed(
        world.run(&h).await,
        "nosy",
        &[
            "cannot read /etc/hostname: No such file or directory (os error 44)",
            "not granted",
            &format!("permissions.read: {}", granted.display()),
            &format!("permissions.write: {}", out.display()),
            "/artifacts",
            "[hook.permissions]",
        ],
    );
    // Without grants, the hint says so.
    let h = hook(
        spec(
            "nosier",
            &guests().hostile,
            json!({ "attack": "read", "path": "data/x" }),
            "",
        ),
        None,
    );
    let bare = assert_failed(
        world.run(&h).await,
        "nosier",
        &["permissions.read: none", "permissions.write: none"],
    );
    assert_ne!(message, bare);
}

#[tokio::test]
async fn writing_into_a_read_only_or_ungranted_folder_is_refused() {
    let mut world = World::new();
    let readonly = world.folder("readonly");
    let elsewhere = world.folder("elsewhere");
    let permissions = format!("read = [{:?}]", readonly.to_str().unwrap());
    for (name, target) in [
        ("writer-ro", readonly.join("x")),
        ("writer-elsewhere", elsewhere.join("x")),
    ] {
        let h = hook(
            spec(
                name,
                &guests().hostile,
                json!({ "attack": "write", "path": target }),
                &permissions,
            ),
            None,
        );
        assert_failed(world.run(&h).await, name, &["cannot write"]);
        assert!(!target.exists(), "{} was written", target.display());
    }
}

#[tokio::test]
async fn environment_variables_not_granted_are_invisible() {
    let mut world = World::new();
    let secret = std::env::var("CARGO_MANIFEST_DIR").unwrap();
    let h = hook(
        spec(
            "env-thief",
            &guests().hostile,
            json!({ "attack": "env", "name": "CARGO_MANIFEST_DIR" }),
            r#"env = ["TZ"]"#,
        ),
        None,
    );
    let message = assert_failed(
        world.run(&h).await,
        "env-thief",
        &["cannot read $CARGO_MANIFEST_DIR: environment variable not found"],
    );
    assert!(!message.contains(&secret));
}

// ---------------------------------------------------------------------------------------------------------------
// Hostile hooks are contained

#[tokio::test]
async fn an_infinite_loop_stops_when_the_run_cancels_the_hook() {
    let mut world = World::new();
    let h = hook(
        spec("spinner", &guests().hostile, json!({ "attack": "infinite-loop" }), ""),
        None,
    );
    h.preflight(&world.ctx).await.unwrap();
    let cancel = world.ctx.cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        cancel.cancel();
    });
    let started = Instant::now();
    let result = h.run(&mut world.ctx).await;
    assert!(matches!(result, Err(HookError::Cancelled)), "{result:?}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?} to stop",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_hook_blocked_in_exec_stops_when_the_run_cancels_it() {
    let mut world = World::new();
    let docker = FakeExec::new(FakeBehaviour::Hang);
    let config = json!({ "exec": { "service": "db", "argv": ["pg_dump"], "artifact": "x.sql" } });
    let h = hook(
        spec(
            "stuck",
            &guests().well_behaved,
            config,
            r#"exec = [{ service = "db", programs = ["pg_dump"] }]"#,
        ),
        Some(docker.clone()),
    );
    h.preflight(&world.ctx).await.unwrap();
    let cancel = world.ctx.cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        cancel.cancel();
    });
    let started = Instant::now();
    let result = h.run(&mut world.ctx).await;
    assert!(matches!(result, Err(HookError::Cancelled)), "{result:?}");
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(docker.calls().len(), 1, "the exec had started");
}

#[tokio::test]
async fn a_memory_bomb_hits_the_memory_limit() {
    let mut world = World::new();
    let mut s = spec("hoarder", &guests().hostile, json!({ "attack": "memory-bomb" }), "");
    s.memory_limit = 64 * 1024 * 1024;
    let h = hook(s, None);
    assert_failed(
        world.run(&h).await,
        "hoarder",
        &["exceeded its memory limit of 64.0 MiB"],
    );
}

#[tokio::test]
async fn a_panic_becomes_a_failure_carrying_the_panic_message() {
    let mut world = World::new();
    let h = hook(
        spec("panicky", &guests().hostile, json!({ "attack": "panic" }), ""),
        None,
    );
    assert_failed(
        world.run(&h).await,
        "panicky",
        &["trapped", "panicked at", "boom: the hook gave up"],
    );
}

#[tokio::test]
async fn a_log_flood_is_cut_and_capped() {
    logs();
    let mut world = World::new();
    let h = hook(
        spec(
            "chatterbox",
            &guests().hostile,
            json!({ "attack": "flood", "lines": 20_000, "line_bytes": 10_000, "stderr_bytes": 8 << 20 }),
            "",
        ),
        None,
    );
    world.run(&h).await.unwrap();
    let logged = logs_of("chatterbox");
    // The cap, plus hookrun's own notes about dropping.
    assert!(logged.len() <= MAX_LOG_LINES + 3, "{} lines shown", logged.len());
    assert!(logged.len() >= MAX_LOG_LINES);
    assert!(logged.iter().all(|l| l.message.len() <= MAX_LOG_MESSAGE + 64));
    assert!(logged.iter().any(|l| l.message.contains("bytes cut")));
    assert!(logged.iter().any(|l| l.message.contains("log lines were dropped")));
}

// ---------------------------------------------------------------------------------------------------------------
// Modules the host refuses before running them

const START: &str = r#"(memory (export "memory") 1) (func (export "_start"))"#;

#[tokio::test]
async fn an_import_the_host_does_not_provide_is_named() {
    let mut world = World::new();
    let module = wat_module(
        world.dir.path(),
        "evil",
        &format!(r#"(module (import "env" "steal_secrets" (func)) {START})"#),
    );
    let s = spec("importer", &module, json!({}), "");
    let e = check(&engine(), &s).unwrap_err();
    assert_eq!(
        e.to_string(),
        "imports `env::steal_secrets`, which hookrun does not provide"
    );
    let h = hook(s, None);
    assert_failed(world.run(&h).await, "importer", &["imports `env::steal_secrets`"]);

    let module = wat_module(
        world.dir.path(),
        "unknown-wasi",
        &format!(r#"(module (import "wasi_snapshot_preview1" "sock_connect" (func)) {START})"#),
    );
    assert!(matches!(
        check(&engine(), &spec("w", &module, json!({}), "")),
        Err(WasmError::UnknownImport { .. })
    ));
}

#[tokio::test]
async fn a_module_built_for_another_abi_version_is_refused_saying_so() {
    let world = World::new();
    let module = wat_module(
        world.dir.path(),
        "v2",
        &format!(r#"(module (import "hookrun_v2" "call" (func (param i32 i32) (result i32))) {START})"#),
    );
    let e = check(&engine(), &spec("future", &module, json!({}), "")).unwrap_err();
    assert_eq!(
        e.to_string(),
        "needs ABI v2 (imports `hookrun_v2`); this hookrun speaks ABI v1"
    );
}

#[tokio::test]
async fn a_module_that_misuses_the_abi_is_stopped_with_a_clear_reason() {
    let world = World::new();
    let call = r#"(import "hookrun_v1" "call" (func $call (param i32 i32) (result i32)))"#;
    for (name, body, expected) in [
        (
            "huge-request",
            "(drop (call $call (i32.const 0) (i32.const 2000000)))",
            "broke the hookrun ABI: request of 2000000 bytes is larger than the 1048576 allowed",
        ),
        (
            "wild-pointer",
            "(drop (call $call (i32.const 65000) (i32.const 1000)))",
            "broke the hookrun ABI: call: request outside guest memory",
        ),
    ] {
        let module = wat_module(
            world.dir.path(),
            name,
            &format!(r#"(module {call} (memory (export "memory") 1) (func (export "_start") {body}))"#),
        );
        let mut world = World::new();
        let h = hook(spec(name, &module, json!({}), ""), None);
        assert_failed(world.run(&h).await, name, &[expected]);
    }
}

#[tokio::test]
async fn check_refuses_what_would_fail_at_run_time() {
    let world = World::new();
    let dir = world.dir.path();
    let cases: Vec<(PathBuf, &str)> = vec![
        (
            wat_module(
                dir,
                "reactor",
                r#"(module (memory (export "memory") 1) (func (export "_initialize")))"#,
            ),
            "has no `_start` function",
        ),
        (
            wat_module(
                dir,
                "wrong-signature",
                &format!(r#"(module (import "hookrun_v1" "call" (func (param i64))) {START})"#),
            ),
            "cannot be linked",
        ),
        (
            wat_module(
                dir,
                "huge",
                r#"(module (memory (export "memory") 8192) (func (export "_start")))"#,
            ),
            "exceeded its memory limit of 256.0 MiB (asked for 512.0 MiB)",
        ),
        (
            {
                let p = dir.join("garbage.wasm");
                std::fs::write(&p, b"\0asm but not really").unwrap();
                p
            },
            "is not a valid WebAssembly module",
        ),
        (dir.join("missing.wasm"), "cannot read module"),
    ];
    for (module, expected) in cases {
        let e = check(&engine(), &spec("x", &module, json!({}), "")).unwrap_err();
        assert!(e.to_string().contains(expected), "{}: {e}", module.display());
    }

    let missing = format!("read = [{:?}]", dir.join("nope").to_str().unwrap());
    let e = check(&engine(), &spec("x", &guests().well_behaved, json!({}), &missing)).unwrap_err();
    assert!(e.to_string().starts_with("permissions.read: `"), "{e}");
    check(&engine(), &spec("x", &guests().well_behaved, json!({}), "")).unwrap();
}

// ---------------------------------------------------------------------------------------------------------------
// The compiled-module cache

#[test]
fn compiled_modules_are_cached_and_only_files_hookrun_wrote_are_loaded() {
    let cache = tempfile::tempdir().unwrap();
    let module = &guests().well_behaved;

    let engine = WasmEngine::new(cache.path().to_path_buf()).unwrap();
    assert_eq!(engine.load(module).unwrap().source, ModuleSource::Compiled);
    assert_eq!(engine.load(module).unwrap().source, ModuleSource::Cache);
    // Another process (engine) with the same settings reuses it.
    let again = WasmEngine::new(cache.path().to_path_buf()).unwrap();
    assert_eq!(again.load(module).unwrap().source, ModuleSource::Cache);

    let file = engine.cache_path(module).unwrap();
    assert!(file.is_file());

    // A damaged file is not deserialized: recompiled and rewritten.
    let mut bytes = std::fs::read(&file).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&file, &bytes).unwrap();
    assert_eq!(engine.load(module).unwrap().source, ModuleSource::Compiled);
    assert_eq!(engine.load(module).unwrap().source, ModuleSource::Cache);

    // A file others could have written is not trusted.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o666)).unwrap();
    assert_eq!(engine.load(module).unwrap().source, ModuleSource::Compiled);

    // A file without hookrun's header is not trusted either.
    let raw = wasmtime_free_serialized_stand_in();
    std::fs::write(&file, raw).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(engine.load(module).unwrap().source, ModuleSource::Compiled);
}

/// Bytes that look like a compiled module to nobody but are not hookrun's: an ELF header.
fn wasmtime_free_serialized_stand_in() -> Vec<u8> {
    let mut bytes = b"\x7fELF".to_vec();
    bytes.resize(4096, 0);
    bytes
}

/// Cold (compile) versus cached (deserialize) start of a hook. Run with
/// `cargo test --release -p hookrun-e2e --test wasm_hooks -- --ignored --nocapture start_times`.
#[tokio::test]
#[ignore = "a measurement, not a check"]
async fn start_times() {
    let module = &guests().pg_dump;
    let size = std::fs::metadata(module).unwrap().len();
    let mut cold = Vec::new();
    let mut warm = Vec::new();
    for _ in 0..5 {
        let cache = tempfile::tempdir().unwrap();
        let engine = WasmEngine::new(cache.path().to_path_buf()).unwrap();
        let loaded = engine.load(module).unwrap();
        assert_eq!(loaded.source, ModuleSource::Compiled);
        cold.push(loaded.elapsed);
        let engine = WasmEngine::new(cache.path().to_path_buf()).unwrap();
        let loaded = engine.load(module).unwrap();
        assert_eq!(loaded.source, ModuleSource::Cache);
        warm.push(loaded.elapsed);
    }
    // A whole hook run from the cache: load, instantiate, run, exit.
    let cache = tempfile::tempdir().unwrap();
    let engine = WasmEngine::new(cache.path().to_path_buf()).unwrap();
    engine.load(module).unwrap();
    let mut runs = Vec::new();
    for _ in 0..5 {
        let mut world = World::new();
        let docker = FakeExec::printing(&[b"PGDMP"]);
        let h = WasmHook::new(
            spec(
                "pg",
                module,
                json!({ "database": "app" }),
                r#"exec = [{ service = "db", programs = ["pg_dump"] }]"#,
            ),
            engine.clone(),
            Some(docker as Arc<dyn ServiceExec>),
        );
        let started = Instant::now();
        world.run(&h).await.unwrap();
        runs.push(started.elapsed());
    }
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    println!(
        "module {} ({} KiB): compile {:?}, cached load {:?}, whole cached hook run {:?} (medians of 5)",
        module.display(),
        size / 1024,
        median(&mut cold),
        median(&mut warm),
        median(&mut runs)
    );
}

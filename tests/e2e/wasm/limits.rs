//! Hostile WASM hooks are contained: loops, blocked execs, memory bombs, panics and log floods stop at their limits;
//! modules the host refuses are refused before they run; and in a real Compose project, hostile hooks leave the
//! services running and an exec that outlives its hook is killed with its children.

use super::*;
use hookrun_e2e::deployment::{assert_all_back, world};
use std::process::Stdio;
use std::time::Duration;

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

#[test]
fn hostile_wasm_hooks_are_contained_and_the_services_come_back() {
    let module = hookrun_e2e::build_wasm("tests/wasm-modules", "hostile");
    let hostile = |attack: &str, timeout: &str| {
        format!(
            "[[hook]]\nname = \"hostile\"\nwasm = \"{}\"\ntimeout = \"{timeout}\"\nconfig = {attack}\n",
            module.display()
        )
    };
    let Some(world) = world("{hostile}") else { return };
    let config = std::fs::read_to_string(world.sandbox.config_path()).unwrap();
    let attacks = [
        (hostile("{ attack = \"infinite-loop\" }", "2s"), "timed out after 2s"),
        (hostile("{ attack = \"memory-bomb\" }", "1m"), "memory limit"),
        (hostile("{ attack = \"panic\" }", "1m"), "boom: the hook gave up"),
        (
            hostile("{ attack = \"read\", path = \"/etc/passwd\" }", "1m"),
            "/etc/passwd",
        ),
        (
            hostile("{ attack = \"exec\", service = \"db\", program = \"sh\" }", "1m"),
            "may not run programs in service `db`",
        ),
    ];
    for (hook, expected) in attacks {
        world.sandbox.raw_config(&config.replace("{hostile}", &hook));

        let run = world.sandbox.run(&["pre-upgrade", "--version", "1", "--json"]);

        assert_eq!(
            run.code, 1,
            "{expected}: stdout:\n{}\nstderr:\n{}",
            run.stdout, run.stderr
        );
        let report = run.json();
        let error = report["error"].as_str().unwrap();
        assert!(
            error.starts_with("hook hostile: ") && error.contains(expected),
            "{expected}: {error}"
        );
        assert_eq!(report["backup"]["status"], "failed");
        assert_all_back(&world);
    }

    // A flood of logs, stdout and stderr: the run succeeds and hookrun's memory stays bounded.
    let flood = "{ attack = \"flood\", lines = 200000, line_bytes = 1024, stderr_bytes = 268435456 }";
    world
        .sandbox
        .raw_config(&config.replace("{hostile}", &hostile(flood, "5m")));
    let (run, peak_kib) = world.sandbox.run_measured(&["pre-upgrade", "--version", "1", "--json"]);
    assert_eq!(
        run.code, 0,
        "stdout:\n{}\nstderr (first 2000 bytes):\n{:.2000}",
        run.stdout, run.stderr
    );
    eprintln!("hookrun's peak RSS while the hook flooded it: {} MiB", peak_kib / 1024);
    assert!(
        peak_kib < 200 * 1024,
        "hookrun peaked at {peak_kib} KiB while the hook wrote ~460 MiB"
    );
    assert!(
        run.stderr.len() < 64 << 20,
        "logged output is capped: {} bytes on stderr",
        run.stderr.len()
    );
    assert_all_back(&world);
}

/// A program tree that outlives any short hook: a shell and its two children.
const SLEEPERS: &str = "sleep 100 & sleep 100; wait";

/// Replaces the world's chain with one WASM hook (timeout `timeout`) that runs [`SLEEPERS`] in service `cache`
/// through the exec API and waits for it.
fn sleeper_chain(world: &hookrun_e2e::deployment::World, timeout: &str) {
    let module = hookrun_e2e::build_wasm("tests/wasm-modules", "well-behaved");
    world.sandbox.raw_config(&format!(
        "[runner]\nproject = \"{}\"\nwork_dir = \"work\"\nstorage_dir = \"storage\"\ncatalog = \"catalog.db\"\n\n\
         [[hook]]\nname = \"sleeper\"\nwasm = \"{}\"\ntimeout = \"{timeout}\"\n\
         config = {{ exec = {{ service = \"cache\", argv = [\"sh\", \"-c\", \"{SLEEPERS}\"] }} }}\n\
         permissions = {{ exec = [{{ service = \"cache\", programs = [\"sh\"] }}] }}\n",
        world.project.name,
        module.display()
    ));
}

/// The processes of [`SLEEPERS`] still running in `cache`.
fn sleepers(world: &hookrun_e2e::deployment::World) -> Vec<String> {
    world
        .project
        .processes(&world.docker, "cache")
        .into_iter()
        .filter(|p| p.contains("sleep 100"))
        .collect()
}

/// Waits (bounded: a minute, for a loaded machine) until [`SLEEPERS`] runs in `cache`, all three processes of it.
fn wait_for_sleepers(world: &hookrun_e2e::deployment::World) {
    for _ in 0..1200 {
        if sleepers(world).len() == 3 {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!(
        "the exec never started: {:?}",
        world.project.processes(&world.docker, "cache")
    );
}

/// Asserts that nothing of [`SLEEPERS`] runs in `cache` (allowing the engine a moment to notice the exits).
#[track_caller]
fn assert_no_sleepers(world: &hookrun_e2e::deployment::World, after: &str) {
    let mut left = sleepers(world);
    for _ in 0..10 {
        if left.is_empty() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
        left = sleepers(world);
    }
    panic!("{after}, still running in the container: {left:?}");
}

#[test]
fn a_wasm_hooks_exec_that_times_out_is_killed_with_its_children() {
    let Some(world) = world("") else { return };
    sleeper_chain(&world, "2s");

    let run = world.sandbox.run(&["backup"]);

    assert_eq!(run.code, 1, "stdout:\n{}\nstderr:\n{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("timed out after 2s"), "{}", run.stdout);
    assert_no_sleepers(&world, "hookrun exited after the hook timed out");
    assert!(!run.stderr.contains("left running"), "{}", run.stderr);
}

#[test]
fn a_signal_during_a_wasm_hooks_exec_kills_the_execd_processes() {
    let Some(world) = world("") else { return };
    sleeper_chain(&world, "5m");
    let child = world
        .sandbox
        .command(&["backup"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_sleepers(&world);

    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let output = child.wait_with_output().unwrap();

    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("interrupted by SIGTERM"), "{stdout}");
    assert_no_sleepers(&world, "hookrun exited after SIGTERM");
}

#[test]
fn an_exec_dropped_before_its_program_ends_kills_the_program() {
    use hookrun_docker::ProjectExec;
    use hookrun_docker::ServiceExec;

    let Some(world) = world("") else { return };
    let exec = ProjectExec {
        project: world.project.name.clone(),
    };
    let argv = ["sh", "-c", SLEEPERS].map(String::from);

    let finished = hookrun_e2e::docker::runtime().block_on(async {
        let mut stdout = tokio::io::sink();
        // Dropped when the timeout fires, as a WASM hook's exec is when the hook is dropped.
        tokio::time::timeout(Duration::from_secs(2), exec.exec("cache", &argv, &mut stdout))
            .await
            .is_ok()
    });

    assert!(!finished, "the program ran for less than 2 s");
    assert_no_sleepers(&world, "the exec's future was dropped");
}

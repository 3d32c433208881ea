//! The deployment most end-to-end tests run against: a sandbox whose work dir holds a running Compose project
//! (db with a healthcheck and a named volume ← app with a bind mount ← web; cache alone), a `hooks.toml` for it,
//! and the helpers that pause a run at a phase and check that every service came back.

use std::process::Stdio;
use std::time::Duration;

use crate::docker::{engine, ensure_test_image, unique_project, ComposeProject, TEST_IMAGE};
use crate::Sandbox;

/// db (healthcheck, named volume) ← app (bind mount under the work dir) ← web; cache stands alone.
pub fn compose_yaml() -> String {
    let lp = "trap 'exit 0' TERM; while true; do sleep 0.2; done";
    format!(
        r#"version: "2.4"
services:
  db:
    image: {TEST_IMAGE}
    command: ["sh", "-c", "echo boot >> /data/boots; {lp}"]
    volumes: ["dbdata:/data"]
    healthcheck:
      test: ["CMD", "test", "-f", "/data/boots"]
      interval: 1s
      timeout: 2s
      retries: 30
    stop_grace_period: 5s
  app:
    image: {TEST_IMAGE}
    command: ["sh", "-c", "if [ -f /appdata/refuse-to-start ]; then echo 'app: refusing to start, marker present'; exit 1; fi; {lp}"]
    depends_on:
      db:
        condition: service_healthy
    volumes: ["./appdata:/appdata"]
  web:
    image: {TEST_IMAGE}
    command: ["sh", "-c", "{lp}"]
    depends_on: [app]
  cache:
    image: {TEST_IMAGE}
    command: ["sh", "-c", "{lp}"]
volumes:
  dbdata: {{}}
"#
    )
}

pub const CHAIN: &str = r#"
[[hook]]
name = "stop"
builtin = "stop"

{between}

[[hook]]
name = "backup"
builtin = "backup"
[hook.config]
sources = ["config"]
volumes = "auto"

[[hook]]
name = "record"
builtin = "record"

[[hook]]
name = "start"
builtin = "start"
[hook.config]
start_timeout = "30s"
"#;

/// A hook that waits until the test creates `<sandbox>/go`.
pub const PAUSE: &str = "[[hook]]\nname = \"pause\"\nbuiltin = \"command\"\n[hook.config]\n\
                     command = [\"sh\", \"-c\", \"while [ ! -f ../go ]; do sleep 0.1; done\"]\n";

/// A sandbox without Docker whose chain is backup → `pause` → record: the `pause` hook, after the archive is placed
/// and before it is recorded, waits for `<sandbox>/go`.
pub fn paused_after_backup() -> Sandbox {
    let sandbox = Sandbox::new();
    sandbox.file("data/table.dat", &[7u8; 100_000], 0o640);
    // After the archive, a hook may not write artifacts: they could not reach it.
    let pause = PAUSE.replace("[hook.config]", "artifacts = false\n[hook.config]");
    sandbox.config(&format!(
        "[[hook]]\nname = \"backup\"\nbuiltin = \"backup\"\n[hook.config]\nsources = [\"data\"]\n\n{pause}\n\
         [[hook]]\nname = \"record\"\nbuiltin = \"record\"\n"
    ));
    sandbox
}

/// Fields drop in order: the project goes down before its folder is removed.
pub struct World {
    pub project: ComposeProject,
    pub sandbox: Sandbox,
    pub docker: bollard::Docker,
}

/// A sandbox whose work dir holds a running Compose project, and a hooks.toml for it with `between` placed
/// between `stop` and `backup`.
pub fn world(between: &str) -> Option<World> {
    let docker = engine()?;
    ensure_test_image(&docker);
    let sandbox = Sandbox::new();
    sandbox.file("config/app.env", b"MODE=production\n", 0o644);
    sandbox.file("appdata/uploads/a.txt", b"uploaded file", 0o644);
    let name = unique_project("hrt");
    let project = ComposeProject::up(&name, &sandbox.work(), &compose_yaml());
    project.wait_ready(&docker);
    sandbox.raw_config(&format!(
        "[runner]\nproject = \"{name}\"\nwork_dir = \"work\"\nstorage_dir = \"storage\"\ncatalog = \"catalog.db\"\n{}",
        CHAIN.replace("{between}", between)
    ));
    Some(World {
        project,
        sandbox,
        docker,
    })
}

/// Waits until every service runs again, db healthy.
pub fn assert_all_back(world: &World) {
    world.project.wait_ready(&world.docker);
    let states = world.project.states(&world.docker);
    assert_eq!(states.len(), 4, "{states:?}");
    assert_eq!(states["db"].1.as_deref(), Some("healthy"), "db is healthy again");
}

/// Starts `pre-upgrade` in the background and returns once it waits in its `pause` hook, services stopped.
pub fn paused_run(world: &World) -> std::process::Child {
    let child = world
        .sandbox
        .command(&["pre-upgrade", "--version", "1"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_phase(&world.sandbox, "hook pause");
    child
}

/// Waits (bounded) until the run journal shows `phase`.
pub fn wait_for_phase(sandbox: &Sandbox, phase: &str) {
    for _ in 0..3000 {
        if let Ok(catalog) = rusqlite::Connection::open(sandbox.path().join("catalog.db")) {
            let now: Option<String> = catalog
                .query_row("SELECT phase FROM runs ORDER BY id DESC", [], |r| r.get(0))
                .ok();
            if now.as_deref() == Some(phase) {
                return;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("the run never reached {phase}");
}

//! The `pg-dump` example hook against a real PostgreSQL server in a Compose service: the dump taken by the WASM
//! hook through the Docker exec API lands in the archive, and loading it into a fresh database gives the same rows.

use hookrun_e2e::docker::{engine, ensure_test_image, unique_project, ComposeProject, TEST_IMAGE};
use hookrun_e2e::postgres_image::{ensure_postgres_image, POSTGRES_IMAGE};
use hookrun_e2e::{build_wasm_example, sh, Sandbox};

fn compose_yaml() -> String {
    format!(
        r#"version: "2.4"
services:
  db:
    image: {POSTGRES_IMAGE}
    volumes: ["pgdata:/var/lib/postgresql/data"]
    healthcheck:
      test: ["CMD", "pg_isready"]
      interval: 1s
      timeout: 2s
      retries: 60
    stop_grace_period: 20s
  app:
    image: {TEST_IMAGE}
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.2; done"]
    depends_on:
      db:
        condition: service_healthy
volumes:
  pgdata: {{}}
"#
    )
}

/// Runs SQL in the db service and returns what psql printed (unaligned, tuples only).
fn psql(project: &ComposeProject, database: &str, sql: &str) -> String {
    project.compose(&[
        "exec",
        "-T",
        "db",
        "psql",
        "-X",
        "-A",
        "-t",
        "-v",
        "ON_ERROR_STOP=1",
        "-d",
        database,
        "-c",
        sql,
    ])
}

#[test]
fn pg_dump_hook_dumps_the_database_into_the_archive_and_the_dump_restores_the_same_rows() {
    let Some(docker) = engine() else { return };
    ensure_test_image(&docker);
    ensure_postgres_image(&docker);
    let module = build_wasm_example("pg-dump");
    let sandbox = Sandbox::new();
    let name = unique_project("hrtpg");
    let project = ComposeProject::up(&name, &sandbox.work(), &compose_yaml());
    project.wait_ready(&docker);
    psql(
        &project,
        "postgres",
        "CREATE TABLE items (id int PRIMARY KEY, name text, price numeric(10,2)); \
         INSERT INTO items SELECT g, 'item ' || g || ' ünïcode', g * 1.25 FROM generate_series(1, 5000) g;",
    );
    let expected = psql(&project, "postgres", "SELECT id, name, price FROM items ORDER BY id");
    assert_eq!(expected.lines().count(), 5000);
    sandbox.raw_config(&format!(
        r#"[runner]
project = "{name}"
work_dir = "work"
storage_dir = "storage"
catalog = "catalog.db"

[[hook]]
name = "dump-db"
wasm = "{module}"
timeout = "5m"
config = {{ service = "db", database = "postgres", format = "plain" }}
permissions = {{ exec = [{{ service = "db", programs = ["pg_dump"] }}] }}

[[hook]]
name = "stop"
builtin = "stop"

[[hook]]
name = "backup"
builtin = "backup"
config = {{ volumes = "auto" }}

[[hook]]
name = "record"
builtin = "record"

[[hook]]
name = "start"
builtin = "start"
"#,
        module = module.display()
    ));

    let check = sandbox.run(&["hooks", "check"]);
    let run = sandbox.run(&["pre-upgrade", "--version", "15.0", "--json"]);

    assert_eq!(check.code, 0, "{}{}", check.stdout, check.stderr);
    assert_eq!(run.code, 0, "stdout:\n{}\nstderr:\n{}", run.stdout, run.stderr);
    let archive = &sandbox.archives()[0];
    let extracted = sandbox.path().join("extracted");
    std::fs::create_dir(&extracted).unwrap();
    sh(&format!(
        "tar -xzf '{}' -C '{}' hooks/dump-db/postgres.sql",
        archive.display(),
        extracted.display()
    ));
    let dump = extracted.join("hooks/dump-db/postgres.sql");
    assert!(
        std::fs::metadata(&dump).unwrap().len() > 100_000,
        "the dump holds the table"
    );

    project.wait_ready(&docker);
    psql(&project, "postgres", "CREATE DATABASE fresh");
    sh(&format!(
        "cd '{}' && docker-compose -p {name} exec -T db psql -X -q -v ON_ERROR_STOP=1 -d fresh < '{}'",
        project.dir.display(),
        dump.display()
    ));
    let restored = psql(&project, "fresh", "SELECT id, name, price FROM items ORDER BY id");
    assert_eq!(restored, expected, "the dump restores exactly the seeded rows");
    drop(project);
}

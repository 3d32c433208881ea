//! `hookrun init`: a new user's first `hooks.toml`, written from a running Compose project through the Docker API —
//! on the demo and on the shapes a first project takes (no volumes, only bind mounts, a database with a
//! healthcheck) — is accepted by `hooks check` and its `pre-upgrade` runs; an existing file is never overwritten.

use std::path::Path;

use bollard::image::TagImageOptions;
use hookrun_e2e::demo::Demo;
use hookrun_e2e::docker::{engine, ensure_test_image, runtime, unique_project, ComposeProject, TEST_IMAGE};
use hookrun_e2e::{hookrun_bin, Run, Sandbox};

/// Runs hookrun in `dir` (where the Compose project lives) with `args`.
fn hookrun_in(dir: &Path, args: &[&str]) -> Run {
    let output = std::process::Command::new(hookrun_bin())
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    Run::from_output(output)
}

/// init, then `hooks check` and a `pre-upgrade` of what it wrote: each must succeed. Returns the file's text.
fn init_check_and_run(dir: &Path, project: &str) -> String {
    let config = dir.join("hooks.toml");
    let _ = std::fs::remove_file(&config);
    let init = hookrun_in(dir, &["--json", "init", "--project", project]);
    assert_eq!(init.code, 0, "{}{}", init.stdout, init.stderr);
    crate::json_schemas::assert_document("init", &init.json());
    let text = std::fs::read_to_string(&config).unwrap();
    let check = hookrun_in(dir, &["hooks", "check"]);
    assert_eq!(
        check.code, 0,
        "hooks check accepts what init wrote:\n{text}\n{}",
        check.stderr
    );
    let run = hookrun_in(dir, &["pre-upgrade", "--version", "1.0"]);
    assert_eq!(
        run.code, 0,
        "its pre-upgrade runs:\n{text}\n{}{}",
        run.stdout, run.stderr
    );
    text
}

#[test]
fn init_on_the_demo_writes_a_chain_that_backs_up_its_volume_and_bind_mount_and_never_overwrites() {
    let Some(docker) = engine() else { return };
    let sandbox = Sandbox::new();
    let demo = Demo::up(&sandbox, "hrinit");
    demo.project.wait_ready(&docker);
    let dir = sandbox.path().join("demo");
    let text = init_check_and_run(&dir, &demo.project.name);
    assert!(text.contains(&format!("project = \"{}\"", demo.project.name)), "{text}");
    assert!(
        text.contains("work_dir = \".\""),
        "the Compose folder is the work dir: {text}"
    );
    for service in ["db", "app", "web"] {
        assert!(
            text.contains(&format!("#   {service} (running")),
            "{service} is listed: {text}"
        );
    }
    assert!(text.contains("with a healthcheck"), "{text}");
    assert!(
        text.contains(&format!("#   volume {}_dbdata", demo.project.name)),
        "{text}"
    );
    assert!(
        text.contains("#   bind mount ") && text.contains("/demo/data"),
        "{text}"
    );
    let catalog = rusqlite::Connection::open(dir.join("backups/catalog.db")).unwrap();
    let paths: Vec<String> = catalog
        .prepare("SELECT archive_path FROM backup_sources ORDER BY archive_path")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(paths.iter().any(|p| p.starts_with("volumes/")), "{paths:?}");
    assert!(paths.iter().any(|p| p.starts_with("binds/")), "{paths:?}");

    let again = hookrun_in(&dir, &["init", "--project", &demo.project.name]);
    assert_eq!(again.code, 2, "{}", again.stderr);
    assert!(again.stderr.contains("never overwrites"), "{}", again.stderr);
    assert_eq!(
        std::fs::read_to_string(dir.join("hooks.toml")).unwrap(),
        text,
        "the file is as it was"
    );
    let unknown = hookrun_in(
        sandbox.path(),
        &["--config", "other.toml", "init", "--project", "no-such-project"],
    );
    assert_eq!(unknown.code, 2);
    assert!(
        unknown.stderr.contains("no Compose project no-such-project"),
        "{}",
        unknown.stderr
    );
    assert!(!sandbox.path().join("other.toml").exists());
}

#[test]
fn init_on_a_project_without_volumes_with_only_bind_mounts_or_with_a_database_writes_what_runs() {
    let Some(docker) = engine() else { return };
    ensure_test_image(&docker);
    let lp = "trap 'exit 0' TERM; while true; do sleep 0.2; done";
    let sandbox = Sandbox::new();

    // No volumes, no bind mounts: the backup may be empty (the Compose files are still archived).
    let name = unique_project("hrinitnv");
    let dir = sandbox.path().join("novolumes");
    let project = ComposeProject::up(
        &name,
        &dir,
        &format!(
            "version: \"2.4\"\nservices:\n  web:\n    image: {TEST_IMAGE}\n    command: [\"sh\", \"-c\", \"{lp}\"]\n"
        ),
    );
    let text = init_check_and_run(&dir, &name);
    assert!(
        text.contains("allow_empty = true") && text.contains("#   none"),
        "{text}"
    );
    drop(project);

    // Only a bind mount.
    let name = unique_project("hrinitbm");
    let dir = sandbox.path().join("binds");
    std::fs::create_dir_all(dir.join("files")).unwrap();
    std::fs::write(dir.join("files/a.txt"), "a").unwrap();
    let project = ComposeProject::up(
        &name,
        &dir,
        &format!(
            "version: \"2.4\"\nservices:\n  app:\n    image: {TEST_IMAGE}\n    command: [\"sh\", \"-c\", \"{lp}\"]\n    \
             volumes: [\"./files:/files\"]\n"
        ),
    );
    let text = init_check_and_run(&dir, &name);
    assert!(!text.contains("allow_empty"), "{text}");
    drop(project);

    // A database (an image named like PostgreSQL's) with a healthcheck and a volume: its dump is suggested.
    let name = unique_project("hrinitdb");
    let image = format!("hookrun-e2e/postgres:{name}");
    runtime().block_on(async {
        let options = TagImageOptions {
            repo: "hookrun-e2e/postgres".to_string(),
            tag: name.clone(),
        };
        docker.tag_image(TEST_IMAGE, Some(options)).await.unwrap();
    });
    let dir = sandbox.path().join("database");
    let project = ComposeProject::up(
        &name,
        &dir,
        &format!(
            "version: \"2.4\"\nservices:\n  db:\n    image: {image}\n    command: [\"sh\", \"-c\", \"touch /var/lib/pg/up; {lp}\"]\n    \
             volumes: [\"pgdata:/var/lib/pg\"]\n    healthcheck:\n      test: [\"CMD\", \"test\", \"-f\", \"/var/lib/pg/up\"]\n      \
             interval: 1s\n      retries: 30\nvolumes:\n  pgdata: {{}}\n"
        ),
    );
    project.wait_ready(&docker);
    let text = init_check_and_run(&dir, &name);
    assert!(text.contains("# db runs PostgreSQL"), "{text}");
    assert!(
        text.contains("# wasm = \"examples/pg-dump/"),
        "the dump hook is a commented suggestion: {text}"
    );
    assert!(text.contains("(running, image hookrun-e2e/postgres"), "{text}");
    drop(project);
}

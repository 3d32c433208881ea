//! The example hooks run in process (pg-dump's streamed dump, sqlite-backup refusing a corrupt database) and
//! `hookrun hooks new`: a scaffolded hook builds and runs.

use super::*;

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
    let module = build_wasm(&crate_dir, "greeter");
    let mut world = World::new();
    let h = hook(spec("greeter", &module, json!({ "greeting": "bonjour" }), ""), None);
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

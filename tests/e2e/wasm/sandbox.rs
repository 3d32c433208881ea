//! What a WASM hook can do (its context, config, granted folders, exec of granted programs) and what it cannot:
//! each permission's negative.

use super::*;

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

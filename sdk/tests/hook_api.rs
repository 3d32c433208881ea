//! The guest API as a hook author uses it, run natively against `TestHost`: typed config, artifacts that cannot
//! leave their folder, exec results and errors, outputs, and how a failure reaches the host.

use std::sync::Arc;

use hookrun_sdk::abi::{LogLevel, StdoutTarget};
use hookrun_sdk::testing::{ExecReply, TestHost};
use hookrun_sdk::{run_with, Hook, Result};
use serde::Deserialize;
use serde_json::json;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    database: String,
}

fn host(config: serde_json::Value) -> (tempfile::TempDir, Arc<TestHost>) {
    let dir = tempfile::tempdir().unwrap();
    let host = Arc::new(TestHost::new(config, dir.path()));
    (dir, host)
}

#[test]
fn config_is_typed_and_a_bad_one_fails_the_hook_before_it_runs() {
    let (_dir, h) = host(json!({ "database": "app" }));
    let code = run_with(h.clone(), |hook: &Hook<Config>| {
        assert_eq!(hook.config().database, "app");
        assert_eq!(hook.context().kind, "pre-upgrade");
        Ok(())
    });
    assert_eq!(code, 0);

    let (_dir, h) = host(json!({ "databse": "app" }));
    let code = run_with(h.clone(), |_: &Hook<Config>| -> Result<()> {
        panic!("must not run with a bad config")
    });
    assert_eq!(code, 1);
    let failure = h.failure().unwrap();
    assert!(
        failure.starts_with("invalid config: unknown field `databse`"),
        "{failure}"
    );
}

#[test]
fn artifacts_are_written_inside_the_artifact_folder_only() {
    let (dir, h) = host(json!({}));
    let code = run_with(h.clone(), |hook: &Hook| {
        hook.write_artifact("a/b.txt", "x")?;
        assert!(hook.artifact_path("../escape").is_err());
        assert!(hook.write_artifact("/etc/passwd", "x").is_err());
        Ok(())
    });
    assert_eq!(code, 0, "{:?}", h.failure());
    assert_eq!(std::fs::read_to_string(dir.path().join("a/b.txt")).unwrap(), "x");
}

#[test]
fn run_checked_turns_a_non_zero_exit_into_an_error_with_the_stderr_tail() {
    let dir = tempfile::tempdir().unwrap();
    let h = Arc::new(
        TestHost::new(json!({}), dir.path())
            .on_exec(|_, _| ExecReply::failed(2, "warming up\nFATAL: role \"x\" does not exist\n")),
    );
    let code = run_with(h.clone(), |hook: &Hook| {
        let plain = hook.exec("db", ["psql", "-c", "select 1"]).run()?;
        assert_eq!(plain.exit_code, 2);
        hook.exec("db", ["psql"]).run_checked()?;
        Ok(())
    });
    assert_eq!(code, 1);
    assert_eq!(
        h.failure().unwrap(),
        "`psql` in service db exited with code 2: FATAL: role \"x\" does not exist"
    );
    assert_eq!(h.execs()[0].stdout, StdoutTarget::Discard);
}

#[test]
fn logs_and_outputs_reach_the_host_and_bad_outputs_are_refused() {
    let (_dir, h) = host(json!({}));
    let code = run_with(h.clone(), |hook: &Hook| {
        hook.warn("careful");
        hook.set_output("rows", 42)?;
        assert!(hook.set_output("bad name", 1).is_err());
        Ok(())
    });
    assert_eq!(code, 0);
    assert_eq!(h.logs(), [(LogLevel::Warn, "careful".to_string())]);
    assert_eq!(h.outputs().len(), 1);
    assert_eq!(h.outputs()["rows"], "42");
}

#[test]
fn exec_without_a_grant_is_an_error_the_hook_can_handle() {
    let (_dir, h) = host(json!({}));
    let code = run_with(h.clone(), |hook: &Hook| {
        let err = hook.exec("db", ["pg_dump"]).run().unwrap_err();
        assert!(err.message().contains("not permitted"));
        Ok(())
    });
    assert_eq!(code, 0);
}

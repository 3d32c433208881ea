//! `--json`: stdout is exactly one JSON document, whatever the logs say (they go to stderr).

use hookrun_e2e::Sandbox;

fn sandbox() -> Sandbox {
    let sandbox = Sandbox::new();
    sandbox.file("data/a.txt", b"hello", 0o644);
    sandbox.config(
        "[[hook]]\nname = \"backup\"\nbuiltin = \"backup\"\nconfig = { sources = [\"data\"] }\n\n\
         [[hook]]\nname = \"record\"\nbuiltin = \"record\"\n",
    );
    sandbox
}

#[test]
fn a_run_prints_one_json_document_with_logs_on_stderr() {
    let sandbox = sandbox();
    let mut command = sandbox.command(&["pre-upgrade", "--version", "2.0.0", "--json"]);
    command.env("RUST_LOG", "debug");

    let run = sandbox.run_command(command);

    assert_eq!(run.code, 0, "{}", run.stderr);
    let report = run.json();
    assert_eq!(report["status"], "completed");
    assert_eq!(report["kind"], "pre-upgrade");
    assert_eq!(report["exit_code"], 0);
    assert_eq!(report["backup"]["status"], "completed");
    assert_eq!(report["backup"]["file_count"], 1);
    assert_eq!(report["hooks"].as_array().unwrap().len(), 2);
}

#[test]
fn list_and_show_print_json_too() {
    let sandbox = sandbox();
    assert_eq!(sandbox.run(&["backup", "--version", "1"]).code, 0);

    let list = sandbox.run(&["list", "--json"]).json();
    let id = list["backups"][0]["id"].as_i64().unwrap();
    let show = sandbox.run(&["show", &id.to_string(), "--json"]).json();

    assert_eq!(list["backups"].as_array().unwrap().len(), 1);
    assert_eq!(show["backup"]["type"], "manual");
    assert_eq!(show["run"]["status"], "completed");
    assert_eq!(show["hooks"][0]["name"], "backup");
}

#[test]
fn an_error_is_json_too_when_json_was_asked_for() {
    let sandbox = sandbox();

    let run = sandbox.run(&["show", "42", "--json"]);

    assert_eq!(run.code, 2);
    let doc = run.json();
    assert_eq!(doc["exit_code"], 2);
    assert!(doc["error"].as_str().unwrap().contains("no backup with id 42"));
}

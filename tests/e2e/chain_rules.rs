//! The chain's rules, driven through the binary: order, `when`, `on_error`, timeouts, and what the catalog keeps.

use hookrun_e2e::Sandbox;

/// A `command` hook that appends its name to `log` and exits with `code`.
fn step(name: &str, code: i32, extra: &str) -> String {
    format!(
        "[[hook]]\nname = \"{name}\"\nbuiltin = \"command\"\n{extra}\n[hook.config]\ncommand = [\"sh\", \"-c\", \"echo {name} >> ../log; exit {code}\"]\n\n"
    )
}

fn log(sandbox: &Sandbox) -> Vec<String> {
    std::fs::read_to_string(sandbox.path().join("log"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn hooks_run_in_order_and_when_and_on_error_decide_what_runs_after_a_failure() {
    let sandbox = Sandbox::new();
    sandbox.config(
        &[
            step("first", 0, ""),
            step("tolerated", 1, "on_error = \"continue\""),
            step("after-tolerated", 0, ""),
            step("on-failure-early", 0, "when = \"failure\""),
            step("breaks", 7, ""),
            step("skipped", 0, ""),
            step("on-failure", 0, "when = \"failure\""),
            step("always", 0, "when = \"always\""),
            "[[hook]]\nname = \"record\"\nbuiltin = \"record\"\n".to_string(),
        ]
        .concat(),
    );

    let run = sandbox.run(&["backup", "--json"]);

    assert_eq!(run.code, 1, "a failed hook exits 1\n{}", run.stderr);
    assert_eq!(
        log(&sandbox),
        [
            "first",
            "tolerated",
            "after-tolerated",
            "breaks",
            "on-failure",
            "always"
        ]
    );
    let report = run.json();
    let statuses: Vec<(String, String)> = report["hooks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["name"].as_str().unwrap().to_string(),
                h["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let expect = [
        ("first", "completed"),
        ("tolerated", "continued"),
        ("after-tolerated", "completed"),
        ("on-failure-early", "skipped"),
        ("breaks", "failed"),
        ("skipped", "skipped"),
        ("on-failure", "completed"),
        ("always", "completed"),
        ("record", "completed"),
    ];
    let expect: Vec<(String, String)> = expect.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
    assert_eq!(statuses, expect);
    assert_eq!(report["status"], "failed");
    assert!(report["error"]
        .as_str()
        .unwrap()
        .starts_with("hook breaks: command `sh` exited with status 7"));
    assert_eq!(
        report["backup"]["status"], "failed",
        "record keeps the failed attempt, never as usable"
    );
    let run_status: String = sandbox.catalog_value("SELECT status FROM runs");
    assert_eq!(run_status, "failed");
}

#[test]
fn a_continued_failure_does_not_fail_the_run() {
    let sandbox = Sandbox::new();
    sandbox.config(&[step("flaky", 3, "on_error = \"continue\""), step("next", 0, "")].concat());

    let run = sandbox.run(&["backup", "--json"]);

    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(log(&sandbox), ["flaky", "next"]);
    assert_eq!(run.json()["status"], "completed");
}

#[test]
fn a_hook_after_the_archive_that_writes_artifacts_all_the_same_fails_the_run() {
    let sandbox = Sandbox::new();
    sandbox.file("data/a.txt", b"a", 0o644);
    sandbox.config(
        "[[hook]]\nname = \"backup\"\nbuiltin = \"backup\"\n[hook.config]\nsources = [\"data\"]\n\n\
         [[hook]]\nname = \"notify\"\nbuiltin = \"command\"\nartifacts = false\n[hook.config]\n\
         command = [\"sh\", \"-c\", \"echo dump > \\\"$HOOKRUN_ARTIFACT_DIR/late.sql\\\"\"]\n\n\
         [[hook]]\nname = \"record\"\nbuiltin = \"record\"\n",
    );

    let run = sandbox.run(&["backup", "--json"]);

    assert_eq!(run.code, 1, "{}", run.stderr);
    let error = run.json()["error"].as_str().unwrap().to_string();
    assert!(
        error.starts_with("hook notify: it wrote files into its artifact folder, but it runs after the archive"),
        "{error}"
    );
    assert_eq!(
        run.json()["backup"]["status"],
        "failed",
        "a run that lost artifacts has no usable backup"
    );
}

#[test]
fn a_hook_that_outlives_its_timeout_is_stopped_with_its_children_and_the_chain_goes_on() {
    let sandbox = Sandbox::new();
    sandbox.config(&format!(
        "[[hook]]\nname = \"slow\"\nbuiltin = \"command\"\ntimeout = \"1s\"\n[hook.config]\n\
         command = [\"sh\", \"-c\", \"sleep 600 & echo $! > ../child.pid; wait\"]\n\n{}",
        step("cleanup", 0, "when = \"always\"")
    ));

    let run = sandbox.run(&["backup", "--json"]);

    assert_eq!(run.code, 1, "{}", run.stderr);
    let report = run.json();
    assert_eq!(report["hooks"][0]["status"], "failed");
    assert_eq!(report["hooks"][0]["error"], "timed out after 1s");
    assert_eq!(log(&sandbox), ["cleanup"], "the always hook ran after the timeout");
    let child: i32 = std::fs::read_to_string(sandbox.path().join("child.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let state = std::fs::read_to_string(format!("/proc/{child}/stat")).unwrap_or_default();
    let gone = state.is_empty() || state.rsplit(')').next().unwrap_or("").trim_start().starts_with('Z');
    assert!(gone, "the hook's child process {child} was killed with it: {state}");
}

#[test]
fn a_signal_does_not_stop_an_always_hook_but_still_fails_the_run() {
    let sandbox = Sandbox::new();
    sandbox.config(
        "[[hook]]\nname = \"cleanup\"\nbuiltin = \"command\"\nwhen = \"always\"\n[hook.config]\n\
         command = [\"sh\", \"-c\", \"touch ../started; sleep 2; echo cleanup >> ../log\"]\n",
    );
    let child = sandbox
        .command(&["backup", "--json"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    while !sandbox.path().join("started").exists() {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }

    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let output = child.wait_with_output().unwrap();

    assert_eq!(
        output.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    assert_eq!(log(&sandbox), ["cleanup"], "the always hook ran to its end");
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["hooks"][0]["status"], "completed");
    assert_eq!(report["interrupted"], "SIGTERM");
    assert_eq!(report["status"], "failed");
}

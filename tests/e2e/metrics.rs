//! The Prometheus metrics: after every run (and verify, prune, delete, sync) `[runner] metrics_file` holds what the
//! catalog says, in the text format node_exporter's textfile collector reads, replaced atomically; `hookrun metrics`
//! prints the same. Checked by `promtool check metrics` (Debian's prometheus).

use std::process::{Command, Stdio};

use hookrun_e2e::Sandbox;

const CHAIN: &str = "[[hook]]\nname = \"backup\"\nbuiltin = \"backup\"\n[hook.config]\nsources = [\"config\"]\n\n\
                     [[hook]]\nname = \"record\"\nbuiltin = \"record\"\n";

fn with_metrics(sandbox: &Sandbox, chain: &str) {
    sandbox.raw_config(&format!(
        "[runner]\nwork_dir = \"work\"\nstorage_dir = \"storage\"\ncatalog = \"catalog.db\"\n\
         metrics_file = \"textfile/hookrun.prom\"\n\n{chain}"
    ));
}

/// `promtool check metrics` on `text`: its complaints (none when it exits 0 silently).
fn promtool(text: &str) -> String {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool is installed (Debian's prometheus)");
    use std::io::Write;
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        said
    } else {
        format!("exit {:?}: {said}", out.status.code())
    }
}

/// The value of the sample `name{labels}` in `text`.
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|rest| rest.strip_prefix(' ')))
        .unwrap_or_else(|| panic!("no {series} in:\n{text}"))
        .parse()
        .unwrap()
}

#[test]
fn every_run_leaves_a_metrics_file_promtool_accepts_saying_what_the_catalog_says() {
    let sandbox = Sandbox::new();
    sandbox.file("config/app.env", b"A=1\n", 0o644);
    with_metrics(&sandbox, CHAIN);
    let file = sandbox.path().join("textfile/hookrun.prom");

    let run = sandbox.run(&["backup"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let text = std::fs::read_to_string(&file).expect("the run wrote the metrics file");
    assert_eq!(promtool(&text), "", "promtool accepts it:\n{text}");
    let size: i64 = sandbox.catalog_value("SELECT size FROM backups WHERE id = 1");
    assert_eq!(
        sample(&text, "hookrun_last_backup_size_bytes{kind=\"manual\"}"),
        size as f64
    );
    assert_eq!(sample(&text, "hookrun_last_run_success{kind=\"manual\"}"), 1.0);
    assert_eq!(sample(&text, "hookrun_backups{location=\"local\"}"), 1.0);
    assert_eq!(sample(&text, "hookrun_backup_bytes{location=\"local\"}"), size as f64);
    let finished: String = sandbox.catalog_value("SELECT finished_at FROM runs WHERE id = 1");
    let finished = chrono::DateTime::parse_from_rfc3339(&finished)
        .unwrap()
        .timestamp_millis() as f64
        / 1000.0;
    let succeeded = sample(&text, "hookrun_last_success_timestamp_seconds{kind=\"manual\"}");
    assert_eq!(succeeded, finished);
    let left: Vec<_> = std::fs::read_dir(sandbox.path().join("textfile")).unwrap().collect();
    assert_eq!(left.len(), 1, "only the file: no temporary file is left beside it");

    // verify updates it; `hookrun metrics` prints exactly what the file holds.
    assert_eq!(sandbox.run(&["verify", "1"]).code, 0);
    let text = std::fs::read_to_string(&file).unwrap();
    assert_eq!(sample(&text, "hookrun_last_verify_success"), 1.0);
    let printed = sandbox.run(&["metrics"]);
    assert_eq!(printed.code, 0, "{}", printed.stderr);
    assert_eq!(printed.stdout, text);
    assert_eq!(
        sandbox.run(&["--json", "metrics"]).code,
        2,
        "the text format is not a JSON document"
    );

    // A failed run: the last run of its kind failed, the last success is still the first run's.
    with_metrics(
        &sandbox,
        &format!("[[hook]]\nname = \"fails\"\nbuiltin = \"command\"\n[hook.config]\ncommand = [\"false\"]\n\n{CHAIN}"),
    );
    let failed = sandbox.run(&["backup"]);
    assert_eq!(failed.code, 1, "{}", failed.stderr);
    let text = std::fs::read_to_string(&file).unwrap();
    assert_eq!(promtool(&text), "", "{text}");
    assert_eq!(sample(&text, "hookrun_last_run_success{kind=\"manual\"}"), 0.0);
    assert_eq!(
        sample(&text, "hookrun_last_success_timestamp_seconds{kind=\"manual\"}"),
        succeeded
    );
}

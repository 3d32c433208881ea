//! The `notify` hook against a local HTTP listener standing in for the services: a webhook gets the run's summary
//! (retried after a 500), ntfy a message, a healthchecks.io-style URL its start, success and fail pings; a hanging
//! endpoint costs the run its timeout, not the run; a URL's secret never shows in what hookrun prints.

use std::time::{Duration, Instant};

use hookrun_e2e::listener::{Listener, Reply};
use hookrun_e2e::Sandbox;

const BACKUP: &str = "[[hook]]\nname = \"backup\"\nbuiltin = \"backup\"\n[hook.config]\nsources = [\"config\"]\n\n\
                      [[hook]]\nname = \"record\"\nbuiltin = \"record\"\n";

fn sandbox(chain: &str) -> Sandbox {
    let sandbox = Sandbox::new();
    sandbox.file("config/app.env", b"A=1\n", 0o644);
    sandbox.config(chain);
    sandbox
}

#[test]
fn a_failed_run_posts_its_summary_to_the_webhook_retrying_after_a_500() {
    let hook = Listener::start(&[Reply::Status(500)]);
    let sandbox = sandbox(&format!(
        "[[hook]]\nname = \"fails\"\nbuiltin = \"command\"\n[hook.config]\ncommand = [\"sh\", \"-c\", \"echo no >&2; exit 3\"]\n\n\
         {BACKUP}\n[[hook]]\nname = \"tell\"\nbuiltin = \"notify\"\n[hook.config]\nwebhook = {{ url_env = \"HOOK_URL\" }}\n\
         backoff = \"50ms\"\n"
    ));
    let secret_url = format!("{}/hooks/s3cr3t-token", hook.base);
    let mut command = sandbox.command(&["backup", "--version", "2.0"]);
    command.env("HOOK_URL", &secret_url);
    let run = sandbox.run_command(command);
    assert_eq!(
        run.code, 1,
        "the run failed (its command), not because of the notification: {}",
        run.stderr
    );

    let received = hook.wait_for(2);
    assert_eq!(received.len(), 2, "one retry after the 500, then delivered");
    let delivered = &received[1];
    assert_eq!(
        (delivered.method.as_str(), delivered.path.as_str()),
        ("POST", "/hooks/s3cr3t-token")
    );
    assert_eq!(delivered.header("content-type"), Some("application/json"));
    let summary: serde_json::Value = serde_json::from_str(&delivered.body).unwrap();
    assert_eq!(summary["status"], "failed");
    assert_eq!(summary["kind"], "manual");
    assert_eq!(summary["version"], "2.0");
    assert!(
        summary["error"].as_str().unwrap().starts_with("hook fails: "),
        "{summary}"
    );
    let tail: Vec<&str> = summary["log_tail"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    assert!(tail.iter().any(|l| l.starts_with("fails: failed")), "{tail:?}");
    assert!(tail.iter().any(|l| l == &"record: completed"), "{tail:?}");
    let status: String = sandbox.catalog_value("SELECT status FROM hook_results WHERE name = 'tell'");
    assert_eq!(status, "completed");
    assert!(
        !run.stdout.contains("s3cr3t") && !run.stderr.contains("s3cr3t"),
        "the URL's secret is never printed"
    );
}

#[test]
fn healthchecks_gets_start_and_success_pings_and_ntfy_a_message_from_a_url_file() {
    let service = Listener::start(&[]);
    let sandbox = sandbox(&format!(
        "[[hook]]\nname = \"ping-start\"\nbuiltin = \"notify\"\n[hook.config]\nevent = \"start\"\n\
         healthchecks = {{ url_env = \"HC_URL\" }}\n\n{BACKUP}\n\
         [[hook]]\nname = \"ping-end\"\nbuiltin = \"notify\"\n[hook.config]\nhealthchecks = {{ url_env = \"HC_URL\" }}\n\
         ntfy = {{ url_file = \"ntfy-url\" }}\n"
    ));
    sandbox.file(
        "ntfy-url",
        format!("{}/backups-topic\n", service.base).as_bytes(),
        0o600,
    );
    let mut command = sandbox.command(&["backup"]);
    command.env("HC_URL", format!("{}/ping/1234", service.base));
    let run = sandbox.run_command(command);
    assert_eq!(run.code, 0, "{}", run.stderr);

    let received = service.wait_for(3);
    let paths: Vec<&str> = received.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(
        paths,
        ["/ping/1234/start", "/backups-topic", "/ping/1234"],
        "in the hooks' order, then ntfy, healthchecks"
    );
    let ntfy = &received[1];
    assert_eq!(ntfy.header("title"), Some("hookrun: manual completed"));
    assert!(ntfy.body.starts_with("hookrun manual "), "{}", ntfy.body);
    assert!(ntfy.body.contains(": completed"), "{}", ntfy.body);
}

#[test]
fn a_failed_run_pings_fail_and_a_hanging_endpoint_costs_its_timeout_not_the_run() {
    let service = Listener::start(&[Reply::Hang, Reply::Hang, Reply::Hang]);
    let sandbox = sandbox(&format!(
        "[[hook]]\nname = \"fails\"\nbuiltin = \"command\"\n[hook.config]\ncommand = [\"false\"]\n\n{BACKUP}\n\
         [[hook]]\nname = \"ping\"\nbuiltin = \"notify\"\n[hook.config]\nhealthchecks = {{ url_env = \"HC_URL\" }}\n\
         timeout = \"1s\"\nretries = 2\nbackoff = \"100ms\"\n"
    ));
    let mut command = sandbox.command(&["backup"]);
    command.env("HC_URL", format!("{}/ping/hang-secret", service.base));
    let started = Instant::now();
    let run = sandbox.run_command(command);
    let took = started.elapsed();
    assert_eq!(run.code, 1, "the command failed the run: {}", run.stderr);
    assert!(
        took < Duration::from_secs(20),
        "two hangs of 1 s and a retry, not a hung run: {took:?}"
    );
    let received = service.wait_for(3);
    assert!(
        received.iter().all(|r| r.path == "/ping/hang-secret/fail"),
        "{received:?}"
    );
    assert_eq!(service.pending(), 0);
    let (status, error): (String, String) = {
        let catalog = sandbox.catalog();
        catalog
            .query_row("SELECT status, error FROM hook_results WHERE name = 'ping'", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap()
    };
    assert_eq!(
        status, "continued",
        "a failed notification never fails the run by itself"
    );
    assert!(
        error.contains("healthchecks ($HC_URL)") && error.contains("3 attempts"),
        "{error}"
    );
    assert!(
        !error.contains("hang-secret") && !run.stderr.contains("hang-secret"),
        "{error}\n{}",
        run.stderr
    );
}

#[test]
fn a_notify_hook_without_a_target_or_with_its_variable_unset_is_refused_at_load() {
    let none = sandbox("[[hook]]\nname = \"tell\"\nbuiltin = \"notify\"\n");
    let run = none.run(&["hooks", "check"]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("needs `webhook`, `ntfy` or `healthchecks`"),
        "{}",
        run.stderr
    );
    let unset = sandbox(
        "[[hook]]\nname = \"tell\"\nbuiltin = \"notify\"\n[hook.config]\nwebhook = { url_env = \"HOOKRUN_TEST_UNSET\" }\n",
    );
    let run = unset.run(&["hooks", "check"]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("hooks.toml:10:") && run.stderr.contains("$HOOKRUN_TEST_UNSET is not set"),
        "{}",
        run.stderr
    );
}

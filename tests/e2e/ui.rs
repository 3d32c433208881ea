//! `hookrun ui`, the operator's web UI: in a real browser (headless chromium through WebDriver) on the demo
//! deployment — the list, a backup and its timeline, a verify to 100 %, a restore through its confirmation with the
//! services back (asked of Docker, not the page), a second operation refused while one runs, pages that keep working
//! while a CLI run holds the lock — and, over plain HTTP, everything it must refuse.

use std::time::{Duration, Instant};

use hookrun_e2e::browser::browser;
use hookrun_e2e::demo::{repo, Demo};
use hookrun_e2e::docker::engine;
use hookrun_e2e::ui::{UiServer, TOKEN};
use hookrun_e2e::{hookrun_bin, Run, Sandbox};

/// How long the demo's operations may take here (a stop and a start that waits for the db's healthcheck).
const OPERATION: Duration = Duration::from_secs(120);

fn catalog(sandbox: &Sandbox) -> rusqlite::Connection {
    rusqlite::Connection::open(sandbox.path().join("demo/storage/catalog.db")).unwrap()
}

fn count(sandbox: &Sandbox, sql: &str) -> i64 {
    catalog(sandbox).query_row(sql, [], |r| r.get(0)).unwrap()
}

/// Runs hookrun in the sandbox with `config`.
fn hookrun(sandbox: &Sandbox, args: &[&str]) -> Run {
    let output = std::process::Command::new(hookrun_bin())
        .args(args)
        .current_dir(sandbox.path())
        .env("COMPOSE_DOCKER_CLI_BUILD", "0")
        .output()
        .unwrap();
    Run::from_output(output)
}

/// Waits until the newest run is running in `phase` (a CLI run holding the lock), or panics.
fn wait_for_running_phase(sandbox: &Sandbox, phase: &str) {
    let deadline = Instant::now() + OPERATION;
    while Instant::now() < deadline {
        let now: Option<String> = catalog(sandbox)
            .query_row(
                "SELECT phase FROM runs WHERE status = 'running' ORDER BY id DESC",
                [],
                |r| r.get(0),
            )
            .ok();
        if now.as_deref() == Some(phase) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("no run reached {phase}");
}

/// The repo's chain with a first hook that takes a few seconds (so that a second operation finds the lock held):
/// written to `path`.
fn slow_chain(demo: &Demo, path: &std::path::Path) {
    let slow = demo.hooks_toml.replacen(
        "[[hook]]",
        "[[hook]]\nname = \"settle\"\nbuiltin = \"command\"\n[hook.config]\ncommand = [\"sleep\", \"4\"]\n\n[[hook]]",
        1,
    );
    std::fs::write(path, slow).unwrap();
}

#[test]
fn an_operator_verifies_and_restores_a_backup_in_the_browser_and_the_services_come_back() {
    let Some(docker) = engine() else { return };
    let Some(browser) = browser() else { return };
    let sandbox = Sandbox::new();
    let demo = Demo::up(&sandbox, "hrui");
    demo.project.wait_ready(&docker);
    let made = hookrun(&sandbox, &["pre-upgrade", "--version", "1.2.3"]);
    assert_eq!(made.code, 0, "{}{}", made.stdout, made.stderr);
    let config = sandbox.path().join("hooks.toml");
    let ui = UiServer::start(&config, sandbox.path());
    assert!(ui.banner.contains(&ui.base), "it says where it listens: {}", ui.banner);
    assert!(
        !ui.banner.contains(TOKEN),
        "a token from a file is never printed: {}",
        ui.banner
    );

    // The list: signing in with the token's URL lands on it, without the token in the address.
    browser.open(&ui.sign_in_url());
    assert_eq!(browser.path(), "/");
    let table = browser.text("#backups");
    assert!(
        table.contains("pre-upgrade") && table.contains("1.2.3") && table.contains("completed"),
        "{table}"
    );
    assert!(table.contains("never"), "not verified yet: {table}");
    let outside = browser.eval(
        "return [...document.querySelectorAll('[src],[href]')].map(e => e.getAttribute('src') || \
         e.getAttribute('href')).filter(u => !u.startsWith('/') && !u.startsWith('#'))",
    );
    assert_eq!(outside, serde_json::json!([]), "nothing is loaded from elsewhere");
    browser.screenshot("backups");

    // A backup's page: its timeline has a bar per hook that ran and per service's downtime.
    browser.click("#backups a[href='/backups/1']");
    assert_eq!(browser.path(), "/backups/1");
    let hooks = count(
        &sandbox,
        "SELECT count(*) FROM hook_results WHERE run_id = 1 AND status != 'skipped'",
    );
    let stopped = count(&sandbox, "SELECT count(*) FROM services WHERE run_id = 1");
    assert_eq!(stopped, 3, "the demo's three services were stopped");
    let bars = browser.eval("return document.querySelectorAll('svg.timeline rect').length");
    assert_eq!(
        bars,
        serde_json::json!(hooks + stopped),
        "a bar per hook and per downtime"
    );
    let downtime = browser.eval("return document.querySelector('svg.timeline rect.down title').textContent");
    assert!(downtime.as_str().unwrap().contains(" down for "), "{downtime}");
    browser.screenshot("backup");
    // On a phone: nothing wider than the screen but the tables, which scroll in their own box.
    browser.window(390, 844);
    let overflow = browser.eval("return document.documentElement.scrollWidth > window.innerWidth");
    assert_eq!(overflow, serde_json::json!(false), "the page fits a phone's width");
    browser.screenshot("backup-phone");
    browser.window(1280, 1000);
    // Keyboard: the first Tab reaches the skip link, and every action is a link or a button.
    browser.eval("document.activeElement.blur(); return null");
    browser.keys("body", "\u{e004}");
    let focused = browser.eval("return document.activeElement.className");
    assert_eq!(focused, serde_json::json!("skip"), "Tab reaches the page's first link");

    // Verify: the operation's page follows it to 100 % and says it succeeded; the catalog has the result.
    browser.click("button[value='verify']");
    browser.wait_for_operation_page();
    let status = browser.wait_for_text("#op-status", OPERATION, |t| t != "running");
    assert_eq!(status, "succeeded", "{}", browser.text("#op-log"));
    assert_eq!(browser.text("#op-percent"), "100 %");
    assert_eq!(
        browser.eval("return document.getElementById('op-bar').value"),
        serde_json::json!(100)
    );
    assert!(
        browser.text("#op-outcome").contains("verified"),
        "{}",
        browser.text("#op-outcome")
    );
    assert_eq!(count(&sandbox, "SELECT verify_ok FROM backups WHERE id = 1"), 1);
    browser.screenshot("verify");

    // Restore: the dry run says what it stops and replaces; nothing changes until it is confirmed.
    let app_env = sandbox.path().join("demo/config/app.env");
    let original = std::fs::read_to_string(&app_env).unwrap();
    std::fs::write(&app_env, "BROKEN=yes\n").unwrap();
    browser.open(&format!("{}/backups/1/restore", ui.base));
    let plan = browser.text("#plan");
    assert!(
        plan.contains(&format!("Stop the Compose project {}", demo.project.name)),
        "{plan}"
    );
    assert!(plan.contains("Replace") && plan.contains("demo/config"), "{plan}");
    assert_eq!(
        std::fs::read_to_string(&app_env).unwrap(),
        "BROKEN=yes\n",
        "a dry run changes nothing"
    );
    browser.screenshot("restore-confirm");
    browser.click("button[value='restore']");
    browser.wait_for_operation_page();
    let status = browser.wait_for_text("#op-status", OPERATION, |t| t != "running");
    assert_eq!(status, "succeeded", "{}", browser.text("#op-log"));
    let services = browser.text("#op-services");
    assert!(services.contains("db") && services.contains("started"), "{services}");
    browser.screenshot("restore");
    assert_eq!(
        std::fs::read_to_string(&app_env).unwrap(),
        original,
        "the restore put the file back"
    );
    let states = demo.project.states(&docker);
    for service in ["db", "app", "web"] {
        assert_eq!(states[service].0, "running", "{service} is back: {states:?}");
    }
    assert_eq!(states["db"].1.as_deref(), Some("healthy"), "{states:?}");

    // A second operation while one runs: refused with the run that holds the lock, nothing else started.
    slow_chain(&demo, &config);
    browser.open(&ui.base);
    browser.click("button[value='backup']");
    browser.wait_for_operation_page();
    let first = browser.path();
    wait_for_running_phase(&sandbox, "hook settle");
    let runs = count(&sandbox, "SELECT count(*) FROM runs");
    browser.open(&ui.base);
    browser.click("button[value='backup']");
    let busy = browser.text("#message");
    assert!(busy.starts_with("busy: run "), "{busy}");
    assert_eq!(
        count(&sandbox, "SELECT count(*) FROM runs"),
        runs,
        "nothing else was started"
    );
    browser.screenshot("busy");
    browser.open(&format!("{}{first}", ui.base));
    let status = browser.wait_for_text("#op-status", OPERATION, |t| t != "running");
    assert_eq!(status, "succeeded", "{}", browser.text("#op-log"));

    // A CLI run holds the lock: the pages still read, an operation is refused as busy with the CLI's run.
    let cli = std::process::Command::new(hookrun_bin())
        .args(["backup"])
        .current_dir(sandbox.path())
        .env("COMPOSE_DOCKER_CLI_BUILD", "0")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_for_running_phase(&sandbox, "hook settle");
    let cli_run = count(&sandbox, "SELECT max(id) FROM runs");
    browser.open(&format!("{}/history", ui.base));
    assert!(
        browser.text("#history").contains("running"),
        "the history shows the CLI's run"
    );
    browser.open(&format!("{}/backups/1", ui.base));
    browser.click("button[value='verify']");
    let busy = browser.text("#message");
    assert!(busy.starts_with(&format!("busy: run {cli_run} (manual")), "{busy}");
    let cli = cli.wait_with_output().unwrap();
    assert!(cli.status.success(), "the CLI's run went on undisturbed");
    browser.open(&format!("{}/history", ui.base));
    let history = browser.text("#history");
    assert!(history.contains("restore") && history.contains("manual"), "{history}");
    browser.screenshot("history");

    // Upgrade (configured in the demo's hooks.toml): 1.2.3 to 1.3.0 behind the health gate; then roll it back.
    std::fs::write(&config, &demo.hooks_toml).unwrap();
    browser.open(&ui.base);
    browser.keys("#to", "1.3.0");
    browser.click("button[value='upgrade']");
    browser.wait_for_operation_page();
    let status = browser.wait_for_text("#op-status", OPERATION, |t| t != "running");
    assert_eq!(status, "succeeded", "{}", browser.text("#op-log"));
    assert!(
        browser.text("#op-outcome").contains("upgraded"),
        "{}",
        browser.text("#op-outcome")
    );
    assert!(
        browser.text("#op-log").contains("gate"),
        "the log follows the phases: {}",
        browser.text("#op-log")
    );
    browser.screenshot("upgrade");
    let newest = count(&sandbox, "SELECT max(id) FROM backups WHERE type = 'pre-upgrade'");
    browser.open(&format!("{}/rollback", ui.base));
    let plan = browser.text("#plan");
    assert!(
        plan.contains("Re-create container"),
        "a rollback re-creates what ran: {plan}"
    );
    assert!(
        browser.text("h1").contains(&format!("backup {newest}")),
        "the newest rollback point"
    );
    browser.click("button[value='rollback']");
    browser.wait_for_operation_page();
    let status = browser.wait_for_text("#op-status", OPERATION, |t| t != "running");
    assert_eq!(status, "succeeded", "{}", browser.text("#op-log"));
    let states = demo.project.states(&docker);
    for service in ["db", "app", "web"] {
        assert_eq!(
            states[service].0, "running",
            "{service} is back after the rollback: {states:?}"
        );
    }

    if std::env::var("HOOKRUN_UPDATE_SCREENSHOTS").is_ok_and(|v| v == "1") {
        let docs = repo().join("docs/ui");
        std::fs::create_dir_all(&docs).unwrap();
        browser.open(&format!("{}/backups/1", ui.base));
        std::fs::copy(browser.screenshot("backup"), docs.join("backup.png")).unwrap();
    }
    drop(ui);
    drop(demo);
}

/// A sandbox with one backup (of a folder, no Compose project) and `hookrun ui` on it.
fn small_world() -> (Sandbox, UiServer) {
    let sandbox = Sandbox::new();
    sandbox.file("config/app.env", b"A=1\n", 0o644);
    sandbox.config(
        "[[hook]]\nname = \"backup\"\nbuiltin = \"backup\"\n[hook.config]\nsources = [\"config\"]\n\n\
         [[hook]]\nname = \"record\"\nbuiltin = \"record\"\n",
    );
    let made = sandbox.run(&["backup"]);
    assert_eq!(made.code, 0, "{}", made.stderr);
    let ui = UiServer::start(&sandbox.config_path(), sandbox.path());
    (sandbox, ui)
}

#[test]
fn the_ui_refuses_whoever_lacks_the_token_a_forged_form_or_another_origin_and_runs_nothing() {
    let (sandbox, ui) = small_world();
    let runs = || sandbox.catalog_value::<i64>("SELECT count(*) FROM runs");
    let (cookie, signed_in) = UiServer::cookie();

    let anonymous = ui.request("GET", "/", &[], "");
    assert_eq!(anonymous.status, 401, "no token, no page");
    assert!(!anonymous.body.contains("backups/1"), "nothing of the catalog shows");
    assert_eq!(ui.request("GET", "/?token=wrong-token-0123456789", &[], "").status, 401);
    assert_eq!(
        ui.request("GET", "/backups/1", &[("Cookie", "hookrun_ui=wrong")], "")
            .status,
        401
    );
    assert_eq!(ui.request("POST", "/operations", &[], "action=backup").status, 401);

    let signing_in = ui.request("GET", &format!("/?token={TOKEN}"), &[], "");
    assert_eq!(signing_in.status, 303);
    let set_cookie = signing_in.header("set-cookie").unwrap();
    assert!(
        set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Strict"),
        "{set_cookie}"
    );
    assert_eq!(
        signing_in.header("location"),
        Some("/"),
        "the token leaves the address bar"
    );
    let page = ui.request("GET", "/", &[(cookie, &signed_in)], "");
    assert_eq!(page.status, 200);
    let csp = page.header("content-security-policy").unwrap();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert_eq!(page.header("referrer-policy"), Some("same-origin"));

    let unknown = ui.request("GET", "/backups/999", &[(cookie, &signed_in)], "");
    assert_eq!(unknown.status, 404);
    assert!(unknown.body.contains("no backup with id 999"), "{}", unknown.body);
    assert_eq!(
        ui.request("GET", "/backups/..%2F..%2Fetc", &[(cookie, &signed_in)], "")
            .status,
        404
    );
    assert_eq!(
        ui.request("GET", "/operations/7", &[(cookie, &signed_in)], "").status,
        404
    );

    let before = runs();
    let csrf = ui.csrf();
    let forged = ui.request("POST", "/operations", &[(cookie, &signed_in)], "action=backup");
    assert_eq!(forged.status, 403, "no CSRF token");
    let wrong = ui.request(
        "POST",
        "/operations",
        &[(cookie, &signed_in)],
        "action=backup&csrf=0000",
    );
    assert_eq!(wrong.status, 403, "a wrong CSRF token");
    let form = format!("action=backup&csrf={csrf}");
    let elsewhere = [("Origin", "http://evil.example"), (cookie, signed_in.as_str())];
    assert_eq!(
        ui.request("POST", "/operations", &elsewhere, &form).status,
        403,
        "another origin"
    );
    let cross = [("Sec-Fetch-Site", "cross-site"), (cookie, signed_in.as_str())];
    assert_eq!(
        ui.request("POST", "/operations", &cross, &form).status,
        403,
        "a cross-site request"
    );
    let by_get = ui.request("GET", &format!("/operations?{form}"), &[(cookie, &signed_in)], "");
    assert_eq!(by_get.status, 405, "a GET never starts anything");
    let path = format!("action=restore&id=1&only=..%2F..%2Fetc&csrf={csrf}");
    let outside = ui.request("POST", "/operations", &[(cookie, &signed_in)], &path);
    assert_eq!(outside.status, 400, "a path that is not the backup's is refused");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(runs(), before, "nothing ran");
    assert_eq!(sandbox.archives().len(), 1);

    // The same form from this origin goes through (the checks above can pass).
    let same = [("Origin", ui.base.as_str()), (cookie, signed_in.as_str())];
    let started = ui.request("POST", "/operations", &same, &form);
    assert_eq!(started.status, 303, "{}", started.body);
    assert_eq!(started.header("location"), Some("/operations/1"));
    let deadline = Instant::now() + OPERATION;
    while runs() == before || sandbox.catalog_value::<i64>("SELECT count(*) FROM runs WHERE status = 'running'") > 0 {
        assert!(Instant::now() < deadline, "the backup never ended");
        std::thread::sleep(Duration::from_millis(50));
    }
    let events = ui.request("GET", "/operations/1/events", &[(cookie, &signed_in)], "");
    assert_eq!(events.header("content-type"), Some("text/event-stream"));
    assert!(events.body.contains("\"finished\":{\"ok\":true"), "{}", events.body);
}

#[test]
fn an_interrupted_run_shows_the_recover_action_and_recover_from_the_page_finishes_it() {
    let sandbox = Sandbox::new();
    sandbox
        .config("[[hook]]\nname = \"settle\"\nbuiltin = \"command\"\n[hook.config]\ncommand = [\"sleep\", \"60\"]\n");
    let mut run = sandbox.command(&["backup"]).spawn().unwrap();
    let deadline = Instant::now() + OPERATION;
    let phase = || {
        let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY;
        let catalog = rusqlite::Connection::open_with_flags(sandbox.path().join("catalog.db"), flags).ok()?;
        catalog
            .query_row("SELECT phase FROM runs", [], |r| r.get::<_, String>(0))
            .ok()
    };
    while phase().as_deref() != Some("hook settle") {
        assert!(Instant::now() < deadline, "the run never reached its hook");
        std::thread::sleep(Duration::from_millis(50));
    }
    run.kill().unwrap();
    run.wait().unwrap();
    let ui = UiServer::start(&sandbox.config_path(), sandbox.path());
    let (cookie, signed_in) = UiServer::cookie();

    let history = ui.request("GET", "/history", &[(cookie, &signed_in)], "");
    assert!(history.body.contains("interrupted (not recovered)"), "{}", history.body);
    assert!(
        history.body.contains("value=\"recover\""),
        "the recover action is offered"
    );
    let form = format!("action=recover&csrf={}", ui.csrf());
    let started = ui.request("POST", "/operations", &[(cookie, &signed_in)], &form);
    assert_eq!(started.status, 303, "{}", started.body);
    let events = ui.request("GET", "/operations/1/events", &[(cookie, &signed_in)], "");
    assert!(events.body.contains("\"finished\":{\"ok\":true"), "{}", events.body);
    assert_eq!(
        sandbox.catalog_value::<String>("SELECT status FROM runs WHERE id = 1"),
        "interrupted"
    );
    let history = ui.request("GET", "/history", &[(cookie, &signed_in)], "");
    assert!(
        !history.body.contains("value=\"recover\""),
        "nothing is left to recover"
    );
}

#[test]
fn with_json_it_prints_one_document_saying_where_it_listens() {
    let sandbox = Sandbox::new();
    sandbox.config("[[hook]]\nname = \"record\"\nbuiltin = \"record\"\n");
    let ui = UiServer::start_with(&sandbox.config_path(), sandbox.path(), &["--json"]);
    let document: serde_json::Value = serde_json::from_str(&ui.banner).expect("one JSON document");
    crate::json_schemas::assert_document("ui", &document);
    assert_eq!(document["url"], format!("{}/", ui.base));
    assert_eq!(ui.request("GET", "/login", &[], "").status, 200, "it serves");
}

#[test]
fn listening_beyond_loopback_needs_a_token_file_and_a_token_file_must_be_private() {
    let sandbox = Sandbox::new();
    sandbox.config("[[hook]]\nname = \"record\"\nbuiltin = \"record\"\n");
    let open = sandbox.run(&["ui", "--listen", "0.0.0.0:0"]);
    assert_eq!(open.code, 2, "{}", open.stderr);
    assert!(open.stderr.contains("--token-file"), "{}", open.stderr);
    let token = sandbox.file("token", b"0123456789abcdef0123\n", 0o644);
    let readable = sandbox.run(&["ui", "--token-file", token.to_str().unwrap()]);
    assert_eq!(readable.code, 2, "{}", readable.stderr);
    assert!(readable.stderr.contains("chmod 600"), "{}", readable.stderr);
}

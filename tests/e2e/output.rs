//! What people read is what happened: text from outside hookrun (a hook's stderr, a file name) cannot fake a line,
//! colour is used only on a terminal and never with `NO_COLOR`.

use hookrun_e2e::terminal::Terminal;
use hookrun_e2e::Sandbox;

#[test]
fn a_hooks_control_characters_are_escaped_on_the_terminal_and_in_the_catalog() {
    let sandbox = Sandbox::new();
    // A hook that fails with a stderr made to erase its own line and print a reassuring one instead.
    sandbox.config(
        "[[hook]]\nname = \"sneaky\"\nbuiltin = \"command\"\n[hook.config]\n\
         command = [\"sh\", \"-c\", \"printf 'boom\\\\r\\\\033[2K\\\\033[1A✓ all services restored\\\\007' >&2; exit 3\"]\n",
    );

    let run = sandbox.run(&["backup"]);

    assert_eq!(run.code, 1, "{}", run.stderr);
    for (stream, text) in [("stdout", &run.stdout), ("stderr", &run.stderr)] {
        let raw: Vec<char> = text.chars().filter(|c| c.is_control() && *c != '\n').collect();
        assert!(raw.is_empty(), "{stream} holds raw control characters {raw:?}:\n{text}");
    }
    assert!(
        run.stdout
            .contains("boom\\r\\u{1b}[2K\\u{1b}[1A✓ all services restored\\u{7}"),
        "shown escaped:\n{}",
        run.stdout
    );
    let stored: String = sandbox.catalog_value("SELECT error FROM hook_results WHERE name = 'sneaky'");
    assert!(!stored.chars().any(char::is_control), "stored escaped: {stored:?}");
}

/// A sandbox whose catalog holds a run that died (its pid is gone): every command warns about it on stderr.
fn sandbox_with_a_dead_run() -> Sandbox {
    let sandbox = Sandbox::new();
    sandbox.file("data/a.txt", b"a", 0o644);
    sandbox.config(
        "[[hook]]\nname = \"backup\"\nbuiltin = \"backup\"\nconfig = { sources = [\"data\"] }\n\n\
         [[hook]]\nname = \"record\"\nbuiltin = \"record\"\n",
    );
    assert_eq!(sandbox.run(&["backup"]).code, 0);
    let catalog = rusqlite::Connection::open(sandbox.path().join("catalog.db")).unwrap();
    catalog
        .execute(
            "INSERT INTO runs (kind, version, status, phase, started_at, pid, storage_dir, staging_dir)
             VALUES ('manual', '1', 'running', 'hook backup', '2026-01-01T00:00:00.000Z', 4194303, 'storage', 'x')",
            [],
        )
        .unwrap();
    sandbox
}

#[test]
fn the_log_is_coloured_only_on_a_terminal_and_never_with_no_color() {
    let sandbox = sandbox_with_a_dead_run();
    let warning = "was interrupted during hook backup";

    let piped = sandbox.run(&["list"]);
    let on_terminal = Terminal::spawn(sandbox.command(&["list"])).finish().1;
    let mut no_color = sandbox.command(&["list"]);
    no_color.env("NO_COLOR", "1");
    let no_color = Terminal::spawn(no_color).finish().1;

    assert!(piped.stderr.contains(warning), "{}", piped.stderr);
    assert!(
        !piped.stderr.contains('\u{1b}'),
        "no colour into a pipe: {:?}",
        piped.stderr
    );
    assert!(on_terminal.contains(warning), "{on_terminal}");
    assert!(
        on_terminal.contains("\u{1b}[33mWARN\u{1b}[0m"),
        "the level is coloured on a terminal: {on_terminal:?}"
    );
    assert!(no_color.contains(warning), "{no_color}");
    assert!(!no_color.contains('\u{1b}'), "NO_COLOR is honoured: {no_color:?}");
}

#[test]
fn list_shows_the_last_verification_of_each_backup() {
    let sandbox = Sandbox::new();
    sandbox.file("data/a.txt", &[1u8; 50_000], 0o644);
    sandbox.config(
        "[[hook]]\nname = \"backup\"\nbuiltin = \"backup\"\nconfig = { sources = [\"data\"] }\n\n\
         [[hook]]\nname = \"record\"\nbuiltin = \"record\"\n",
    );
    for _ in 0..3 {
        assert_eq!(sandbox.run(&["backup"]).code, 0);
    }
    assert_eq!(sandbox.run(&["verify", "1"]).code, 0);
    let archive = std::path::PathBuf::from(sandbox.catalog_value::<String>("SELECT path FROM backups WHERE id = 2"));
    let mut bytes = std::fs::read(&archive).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&archive, bytes).unwrap();
    assert_eq!(sandbox.run(&["verify", "2"]).code, 1);

    let list = sandbox.run(&["list"]);

    let verified: Vec<&str> = list
        .stdout
        .lines()
        .skip(1)
        .take(3)
        .map(|l| l.split_whitespace().nth(4).unwrap())
        .collect();
    assert_eq!(verified, ["ok", "FAILED", "-"], "{}", list.stdout);
    assert!(
        list.stdout.contains("backup 2 failed its last verification ("),
        "and why: {}",
        list.stdout
    );
}

/// A sandbox with two backups of `data/a.txt` ("one", then "two") and the file now saying "now".
fn sandbox_with_two_backups() -> Sandbox {
    let sandbox = Sandbox::new();
    sandbox.config(
        "[[hook]]\nname = \"backup\"\nbuiltin = \"backup\"\nconfig = { sources = [\"data\"] }\n\n\
         [[hook]]\nname = \"record\"\nbuiltin = \"record\"\n",
    );
    for content in ["one", "two"] {
        sandbox.file("data/a.txt", content.as_bytes(), 0o644);
        assert_eq!(sandbox.run(&["backup"]).code, 0);
    }
    sandbox.file("data/a.txt", b"now", 0o644);
    sandbox
}

#[test]
fn a_restore_asks_on_a_terminal_and_says_which_backup_it_restored() {
    let sandbox = sandbox_with_two_backups();
    let current = || std::fs::read_to_string(sandbox.work().join("data/a.txt")).unwrap();

    let mut declined = Terminal::spawn(sandbox.command(&["restore", "1"]));
    std::thread::sleep(std::time::Duration::from_millis(500));
    declined.type_line("n");
    let (declined_code, declined_output) = declined.finish();
    let mut accepted = Terminal::spawn(sandbox.command(&["restore", "1"]));
    std::thread::sleep(std::time::Duration::from_millis(500));
    accepted.type_line("y");
    let (accepted_code, accepted_output) = accepted.finish();

    assert!(
        declined_output.contains("Restore backup 1 (manual vunknown, created "),
        "asks, naming the backup: {declined_output}"
    );
    assert_eq!(declined_code, Some(2), "{declined_output}");
    assert!(
        declined_output.contains("not confirmed: nothing was changed"),
        "{declined_output}"
    );
    assert_eq!(accepted_code, Some(0), "{accepted_output}");
    assert!(
        accepted_output.contains("restoring backup 1 (manual"),
        "{accepted_output}"
    );
    assert!(accepted_output.contains("restored backup 1"), "{accepted_output}");
    assert_eq!(current(), "one");

    // Off a terminal, `restore ID` was told which backup: it does not ask.
    let piped = sandbox.run(&["restore", "2"]);
    assert_eq!(piped.code, 0, "{}{}", piped.stdout, piped.stderr);
    assert!(piped.stdout.contains("restored backup 2"), "{}", piped.stdout);
    assert_eq!(current(), "two");
}

#[test]
fn a_dry_run_restore_says_the_project_will_be_stopped_and_changes_nothing() {
    let sandbox = sandbox_with_two_backups();
    let config = std::fs::read_to_string(sandbox.config_path()).unwrap();
    sandbox.raw_config(&config.replace("[runner]\n", "[runner]\nproject = \"shop\"\n"));

    let dry = sandbox.run(&["restore", "1", "--dry-run"]);

    assert_eq!(dry.code, 0, "{}", dry.stderr);
    let lines: Vec<&str> = dry.stdout.lines().collect();
    assert!(
        lines[0].starts_with("restore of backup 1 (manual vunknown, created "),
        "{}",
        dry.stdout
    );
    assert!(
        lines.contains(&"  stop the running services of Compose project shop, dependents first"),
        "{}",
        dry.stdout
    );
    assert!(
        lines.contains(&"  start the services of shop again, dependencies first"),
        "{}",
        dry.stdout
    );
    assert_eq!(lines.last(), Some(&"nothing was changed (dry run)"));
    assert_eq!(
        std::fs::read_to_string(sandbox.work().join("data/a.txt")).unwrap(),
        "now"
    );
}

#[test]
fn prune_says_why_it_keeps_each_backup_it_keeps() {
    let sandbox = sandbox_with_two_backups();
    assert_eq!(sandbox.run(&["backup"]).code, 0);
    assert_eq!(sandbox.run(&["verify", "1"]).code, 0);

    let dry = sandbox.run(&["prune", "--keep-last", "1", "--dry-run"]);

    assert_eq!(dry.code, 0, "{}", dry.stderr);
    let said: Vec<&str> = dry.stdout.lines().collect();
    assert!(
        said.iter().any(|l| l.starts_with("would delete backup 2 ")),
        "{}",
        dry.stdout
    );
    assert!(
        said.iter()
            .any(|l| l.starts_with("keeps backup 1 (")
                && l.ends_with("the newest verified backup, which is always kept")),
        "the oldest is kept, and why: {}",
        dry.stdout
    );
    assert!(
        said.iter()
            .any(|l| l.starts_with("keeps backup 3 (") && l.ends_with("--keep-last 1")),
        "{}",
        dry.stdout
    );
    assert_eq!(sandbox.archives().len(), 3, "a dry run deletes nothing");
}

#[test]
fn show_says_how_long_the_archive_and_the_run_took_and_names_no_staging_folder_that_is_gone() {
    let sandbox = Sandbox::new();
    sandbox.file("data/a.txt", b"a", 0o644);
    sandbox.config(
        "[[hook]]\nname = \"dump\"\nbuiltin = \"command\"\n\
         config = { command = [\"sh\", \"-c\", \"echo rows > \\\"$HOOKRUN_ARTIFACT_DIR/db.sql\\\"\"] }\n\n\
         [[hook]]\nname = \"backup\"\nbuiltin = \"backup\"\nconfig = { sources = [\"data\"] }\n\n\
         [[hook]]\nname = \"record\"\nbuiltin = \"record\"\n",
    );
    assert_eq!(sandbox.run(&["backup"]).code, 0);

    let show = sandbox.run(&["show", "1"]);

    assert_eq!(show.code, 0, "{}", show.stderr);
    assert!(!show.stdout.contains("duration_ms"), "{}", show.stdout);
    assert!(show.stdout.contains("written in   "), "{}", show.stdout);
    assert!(
        show.stdout.contains(", took "),
        "the run's own duration: {}",
        show.stdout
    );
    assert!(!show.stdout.contains(".staging"), "{}", show.stdout);
    assert!(
        show.stdout
            .contains("source artifacts hooks                            from the hooks' artifact folders"),
        "{}",
        show.stdout
    );
}

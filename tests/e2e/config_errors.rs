//! Every class of broken `hooks.toml` is refused with exit 2 and an error that names the file, line and column,
//! before anything is touched, by `hooks check`, `plan` and a run alike.

use hookrun_e2e::Sandbox;

const RUNNER: &str = "[runner]\nwork_dir = \"work\"\nstorage_dir = \"storage\"\n";

/// The smallest module hookrun accepts: a WASI command that imports nothing.
const EMPTY_MODULE: &str = r#"(module (memory (export "memory") 1) (func (export "_start")))"#;

/// A WASM hook (the module `error_for` writes beside hooks.toml) whose `[hook.permissions]` table starts on line 9.
const WASM_HOOK: &str = "\n[[hook]]\nname = \"w\"\nwasm = \"hook.wasm\"\n[hook.permissions]\n";

/// Runs `hookrun hooks check` (and `pre-upgrade` and `plan`, which must refuse it the same way) on `text` and
/// returns the error line.
fn error_for(text: &str) -> String {
    let sandbox = Sandbox::new();
    std::fs::create_dir_all(sandbox.work().join("data")).unwrap();
    // A folder beside hooks.toml that the work dir does not have.
    std::fs::create_dir_all(sandbox.path().join("beside")).unwrap();
    std::fs::write(sandbox.path().join("hook.wasm"), wat::parse_str(EMPTY_MODULE).unwrap()).unwrap();
    sandbox.raw_config(text);
    for args in [&["hooks", "check"][..], &["pre-upgrade", "--version", "1"], &["plan"]] {
        let run = sandbox.run(args);
        assert_eq!(run.code, 2, "{args:?} exits 2 on a bad config\nstderr:\n{}", run.stderr);
        assert!(!sandbox.storage().exists(), "{args:?} touched nothing");
    }
    let line = error_line(&sandbox, &sandbox.run(&["hooks", "check"]));
    assert_eq!(
        error_line(&sandbox, &sandbox.run(&["plan"])),
        line,
        "plan says what hooks check says"
    );
    line.replace("<sandbox>/hooks.toml", "hooks.toml")
}

fn assert_error(text: &str, location: &str, message: &str) {
    let error = error_for(text);
    assert!(
        error.starts_with(&format!("hooks.toml:{location}: ")),
        "expected hooks.toml:{location}, got: {error}"
    );
    assert!(error.contains(message), "expected `{message}` in: {error}");
}

#[test]
fn an_unknown_key_in_a_hook_is_pointed_at() {
    let text = format!("{RUNNER}\n[[hook]]\nname = \"b\"\nbuiltin = \"record\"\ntiemout = \"1s\"\n");
    assert_error(&text, "8:1", "unknown field `tiemout`");
}

#[test]
fn an_unknown_key_in_the_runner_table_is_pointed_at() {
    let text = format!("{RUNNER}storage = \"x\"\n");
    assert_error(&text, "4:1", "unknown field `storage`");
}

#[test]
fn an_unknown_key_in_a_builtin_config_is_pointed_at() {
    let text = format!(
        "{RUNNER}\n[[hook]]\nname = \"b\"\nbuiltin = \"backup\"\n[hook.config]\nsources = [\"data\"]\ncompresion_level = 3\n"
    );
    assert_error(&text, "10:1", "unknown config key `compresion_level` for `backup`");
}

#[test]
fn duplicate_hook_names_are_refused() {
    let hook = "[[hook]]\nname = \"same\"\nbuiltin = \"record\"\n";
    let text = format!("{RUNNER}\n{hook}\n{hook}");
    assert_error(&text, "10:8", "duplicate hook name `same` (first used on line 5)");
}

#[test]
fn an_unknown_builtin_is_refused() {
    let text = format!("{RUNNER}\n[[hook]]\nname = \"b\"\nbuiltin = \"bakcup\"\n");
    assert_error(
        &text,
        "7:11",
        "unknown built-in `bakcup`, expected one of: stop, snapshot, backup, record, start, command",
    );
}

#[test]
fn a_duration_without_a_unit_is_refused() {
    let text = format!("{RUNNER}\n[[hook]]\nname = \"b\"\nbuiltin = \"record\"\ntimeout = 30\n");
    assert_error(&text, "8:11", "a duration needs a unit");
}

#[test]
fn a_duration_that_is_not_one_is_refused() {
    let text = format!("{RUNNER}[runner.defaults]\ntimeout = \"soon\"\n");
    assert_error(&text, "5:11", "invalid duration \"soon\"");
}

#[test]
fn a_duration_too_long_to_count_with_is_refused_where_it_is_written() {
    let text = format!(
        "{RUNNER}project = \"p\"\n\n[[hook]]\nname = \"start\"\nbuiltin = \"start\"\n\
         config = {{ start_timeout = \"9223372036854775807s\" }}\n"
    );
    assert_error(&text, "9:28", "longer than the longest allowed, \"365d\"");
    let text = format!("{RUNNER}[runner.defaults]\ntimeout = \"366d\"\n");
    assert_error(&text, "5:11", "longer than the longest allowed");
}

#[test]
fn the_upgrade_table_is_checked_like_the_rest() {
    let text = format!("{RUNNER}\n[upgrade]\ncommand = []\n");
    assert_error(&text, "6:11", "upgrade.command needs a program");
    let text = format!("{RUNNER}\n[upgrade]\nhealthy_for = 30\n");
    assert_error(&text, "6:15", "a duration needs a unit");
    let text = format!("{RUNNER}\n[upgrade]\ngate = \"1m\"\n");
    assert_error(&text, "6:1", "unknown field `gate`");
}

#[test]
fn remotes_and_uploads_are_checked_at_their_values_and_an_upload_may_not_run_inside_the_downtime() {
    let remote = "[[remote]]\nname = \"r\"\nurl = \"s3://b/p\"\n";
    let text = format!("{RUNNER}\n[[remote]]\nname = \"r\"\nurl = \"http://b\"\n");
    assert_error(&text, "7:7", "is not an s3://bucket[/prefix] URL");
    let text = format!("{RUNNER}\n{remote}access_key_id_file = \"id\"\n");
    assert_error(&text, "8:22", "give both access_key_id_file and secret_access_key_file");
    let text = format!("{RUNNER}\n{remote}encrypt = {{ recipients = [\"age1nope\"] }}\n");
    assert_error(&text, "8:11", "\"age1nope\" is not an age recipient");
    let text = format!(
        "{RUNNER}\n{remote}\n[[hook]]\nname = \"up\"\nbuiltin = \"upload\"\nconfig = {{ remotes = [\"s\"] }}\n"
    );
    assert_error(&text, "12:22", "no remote named `s`; the [[remote]] tables are: r");
    let text = format!(
        "{RUNNER}project = \"p\"\n\n{remote}\n[[hook]]\nname = \"stop\"\nbuiltin = \"stop\"\n\n\
         [[hook]]\nname = \"backup\"\nbuiltin = \"backup\"\nconfig = {{ sources = [\"data\"] }}\n\n\
         [[hook]]\nname = \"upload\"\nbuiltin = \"upload\"\n\n[[hook]]\nname = \"start\"\nbuiltin = \"start\"\n"
    );
    assert_error(
        &text,
        "20:8",
        "hook `upload` would upload while the services are stopped: place it after the start hook",
    );
}

/// A chain whose `dump` hook (a command: it may write artifacts) is placed at `position`.
fn chain_with_dump(position: &str, dump_extra: &str) -> String {
    let dump = format!(
        "[[hook]]\nname = \"dump\"\nbuiltin = \"command\"\n{dump_extra}config = {{ command = [\"true\"] }}\n\n"
    );
    let hooks = [
        ("stop", "[[hook]]\nname = \"stop\"\nbuiltin = \"stop\"\n\n"),
        (
            "snapshot",
            "[[hook]]\nname = \"snapshot\"\nbuiltin = \"snapshot\"\nconfig = { backup = \"backup\" }\n\n",
        ),
        ("start", "[[hook]]\nname = \"start\"\nbuiltin = \"start\"\n\n"),
        (
            "backup",
            "[[hook]]\nname = \"backup\"\nbuiltin = \"backup\"\nconfig = { sources = [\"data\"] }\n\n",
        ),
        ("record", "[[hook]]\nname = \"record\"\nbuiltin = \"record\"\n\n"),
    ];
    let mut text = format!("{RUNNER}project = \"p\"\n\n");
    for (name, hook) in hooks {
        text.push_str(hook);
        if name == position {
            text.push_str(&dump);
        }
    }
    text
}

#[test]
fn a_hook_whose_artifacts_could_never_reach_the_archive_is_refused_naming_both_hooks() {
    // After the snapshot, which writes the archive itself where storage cannot clone (ext4): on every file system.
    assert_error(
        &chain_with_dump("start", ""),
        "20:8",
        "hook `dump` comes after `snapshot` (line 10), which may write the archive before it runs",
    );
    assert_error(
        &chain_with_dump("record", ""),
        "29:8",
        "hook `dump` comes after `snapshot` (line 10)",
    );
    let without_snapshot = chain_with_dump("backup", "").replace(
        "[[hook]]\nname = \"snapshot\"\nbuiltin = \"snapshot\"\nconfig = { backup = \"backup\" }\n\n",
        "",
    );
    assert_error(
        &without_snapshot,
        "20:8",
        "hook `dump` comes after `backup` (line 14), which writes the archive before it runs: its artifacts would \
         never reach the archive; move `dump` before `backup`, or set `artifacts = false` on it if it writes none",
    );
}

#[test]
fn a_hook_before_the_archive_or_that_writes_no_artifacts_is_accepted() {
    let sandbox = Sandbox::new();
    std::fs::create_dir_all(sandbox.work().join("data")).unwrap();
    for text in [
        chain_with_dump("stop", ""),
        chain_with_dump("record", "artifacts = false\n"),
        chain_with_dump("record", "when = \"failure\"\n"),
    ] {
        sandbox.raw_config(&text);
        let run = sandbox.run(&["hooks", "check"]);
        assert_eq!(run.code, 0, "{text}\n{}", run.stderr);
    }
    sandbox.raw_config(&format!(
        "{RUNNER}\n[[hook]]\nname = \"r\"\nbuiltin = \"record\"\nartifacts = false\n"
    ));
    let run = sandbox.run(&["hooks", "check"]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr
            .contains("`artifacts` applies to WASM and `command` hooks only"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_missing_source_is_refused() {
    let text = format!(
        "{RUNNER}\n[[hook]]\nname = \"b\"\nbuiltin = \"backup\"\nconfig = {{ sources = [\"data\", \"dta\"] }}\n"
    );
    assert_error(&text, "8:22", "source dta: not found under the work dir");
}

#[test]
fn overlapping_sources_are_refused_naming_both() {
    for (sources, message) in [
        ("\"data\", \"data\"", "sources `data` and `data` overlap"),
        ("\"data\", \"data/sub\"", "sources `data` and `data/sub` overlap"),
        ("\"data/sub\", \"data\"", "sources `data/sub` and `data` overlap"),
        ("\"./data\", \"data/\"", "sources `./data` and `data/` overlap"),
    ] {
        let text =
            format!("{RUNNER}\n[[hook]]\nname = \"b\"\nbuiltin = \"backup\"\nconfig = {{ sources = [{sources}] }}\n");
        assert_error(&text, "8:22", message);
    }
}

#[test]
fn a_missing_wasm_module_is_refused() {
    let text = format!("{RUNNER}\n[[hook]]\nname = \"w\"\nwasm = \"hooks/missing.wasm\"\n");
    assert_error(&text, "7:8", "WASM module");
}

#[test]
fn a_mistake_in_a_wasm_hooks_permissions_is_pointed_at_its_key_or_value() {
    let cases = [
        (
            "network = true",
            "9:1",
            "permissions: unknown key `network` (known keys: read, write, env, exec)",
        ),
        (
            "read = [\"data\", 7]",
            "9:17",
            "permissions.read[1]: expected a string, found integer",
        ),
        (
            "env = \"TZ\"",
            "9:7",
            "permissions.env: expected an array, found string",
        ),
        (
            "exec = [{ service = \"db\", programs = [\"pg_dump\"], user = \"root\" }]",
            "9:51",
            "permissions.exec[0]: unknown key `user` (known keys: service, programs)",
        ),
        (
            "exec = [{ service = \"db\", programs = [\"pg_dump\"] },\n  { programs = [\"sh\"] }]",
            "10:3",
            "permissions.exec[1]: missing `service`",
        ),
        (
            "read = [\"data\"]\nwrite = [\"data\"]",
            "10:10",
            "permissions: `<sandbox>/work/data` is in both read and write",
        ),
    ];
    for (permissions, location, message) in cases {
        assert_error(&format!("{RUNNER}{WASM_HOOK}{permissions}\n"), location, message);
    }
}

#[test]
fn a_relative_grant_is_a_folder_of_the_work_dir_not_of_the_config_file() {
    // `beside` is next to hooks.toml, `data` in the work dir: only the second is a relative grant that exists.
    let text = format!("{RUNNER}{WASM_HOOK}read = [\"data\", \"beside\"]\n");
    assert_error(
        &text,
        "9:17",
        "permissions.read[1]: `<sandbox>/work/beside`: No such file or directory",
    );
}

#[test]
fn a_missing_work_dir_is_refused() {
    let text = "[runner]\nwork_dir = \"nowhere\"\nstorage_dir = \"storage\"\n";
    assert_error(text, "2:12", "is not a folder");
}

#[test]
fn a_bad_when_is_refused() {
    let text = format!("{RUNNER}\n[[hook]]\nname = \"b\"\nbuiltin = \"record\"\nwhen = \"sometimes\"\n");
    assert_error(&text, "8:8", "unknown variant `sometimes`");
}

#[test]
fn a_hook_name_that_could_escape_its_folder_is_refused() {
    let text = format!("{RUNNER}\n[[hook]]\nname = \"../x\"\nbuiltin = \"record\"\n");
    assert_error(&text, "6:8", "hook name `../x` must be");
}

#[test]
fn broken_toml_is_pointed_at() {
    let text = format!("{RUNNER}\n[[hook]\nname = \"b\"\n");
    assert_error(&text, "5:7", "invalid table header; expected");
}

#[test]
fn a_missing_config_file_names_itself() {
    let sandbox = Sandbox::new();
    let run = sandbox.run(&["pre-upgrade", "--version", "1"]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("hooks.toml: No such file or directory"),
        "{}",
        run.stderr
    );
    assert_eq!(
        run.stderr.matches("No such file or directory").count(),
        1,
        "said once: {}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("run hookrun in the folder that holds it, or pass --config PATH"),
        "with a hint: {}",
        run.stderr
    );
}

#[test]
fn a_snapshot_must_name_a_backup_hook_that_comes_after_it() {
    let text =
        format!("{RUNNER}\n[[hook]]\nname = \"copy\"\nbuiltin = \"snapshot\"\nconfig = {{ backup = \"archive\" }}\n");
    assert_error(
        &text,
        "5:1",
        "snapshot needs `backup = \"archive\"` to name a backup hook that comes after it",
    );
}

/// The line `hookrun` printed for its error, with the sandbox's folder written as `<sandbox>`.
fn error_line(sandbox: &Sandbox, run: &hookrun_e2e::Run) -> String {
    run.stderr
        .lines()
        .find_map(|l| l.strip_prefix("hookrun: "))
        .unwrap_or_else(|| panic!("no error line in:\n{}", run.stderr))
        .replace(&sandbox.path().display().to_string(), "<sandbox>")
}

#[test]
fn plan_refuses_a_wasm_module_that_hooks_check_refuses_with_the_same_line() {
    let start = r#"(memory (export "memory") 1) (func (export "_start"))"#;
    let cases = [
        (
            format!(r#"(module (import "hookrun_v2" "call" (func (param i32 i32) (result i32))) {start})"#),
            "hook w (<sandbox>/hook.wasm): needs ABI v2 (imports `hookrun_v2`); this hookrun speaks ABI v1",
        ),
        (
            format!(r#"(module (import "hookrun_v1" "call" (func (param i64))) {start})"#),
            "hook w (<sandbox>/hook.wasm): cannot be linked:",
        ),
    ];
    for (wat, expected) in cases {
        let sandbox = Sandbox::new();
        std::fs::write(sandbox.path().join("hook.wasm"), wat::parse_str(&wat).unwrap()).unwrap();
        sandbox.raw_config(&format!("{RUNNER}\n[[hook]]\nname = \"w\"\nwasm = \"hook.wasm\"\n"));

        let plan = sandbox.run(&["plan"]);
        assert!(!sandbox.storage().exists(), "plan touched the storage dir");
        let check = sandbox.run(&["hooks", "check"]);

        assert_eq!(check.code, 2, "hooks check: {}", check.stderr);
        assert_eq!(plan.code, 2, "plan: {}\n{}", plan.stdout, plan.stderr);
        let line = error_line(&sandbox, &check);
        assert!(line.starts_with(expected), "{line}");
        assert_eq!(error_line(&sandbox, &plan), line);
    }
}

#[test]
fn plan_accepts_a_module_that_hooks_check_accepts_and_still_touches_nothing() {
    let sandbox = Sandbox::new();
    let module = r#"(module (memory (export "memory") 1) (func (export "_start")))"#;
    std::fs::write(sandbox.path().join("hook.wasm"), wat::parse_str(module).unwrap()).unwrap();
    sandbox.raw_config(&format!("{RUNNER}\n[[hook]]\nname = \"w\"\nwasm = \"hook.wasm\"\n"));

    let plan = sandbox.run(&["plan"]);

    assert_eq!(plan.code, 0, "{}", plan.stderr);
    assert!(plan.stdout.contains("w "), "{}", plan.stdout);
    assert!(
        !sandbox.storage().exists(),
        "plan created the storage dir (the module cache)"
    );
    assert_eq!(sandbox.run(&["hooks", "check"]).code, 0);
}

//! Every class of broken `hooks.toml` is refused with exit 2 and an error that names the file, line and column,
//! before anything is touched.

use hookrun_e2e::Sandbox;

const RUNNER: &str = "[runner]\nwork_dir = \"work\"\nstorage_dir = \"storage\"\n";

/// Runs `hookrun hooks check` (and `pre-upgrade`) on `text` and returns the error line.
fn error_for(text: &str) -> String {
    let sandbox = Sandbox::new();
    std::fs::create_dir_all(sandbox.work().join("data")).unwrap();
    sandbox.raw_config(text);
    for args in [&["hooks", "check"][..], &["pre-upgrade", "--version", "1"]] {
        let run = sandbox.run(args);
        assert_eq!(run.code, 2, "{args:?} exits 2 on a bad config\nstderr:\n{}", run.stderr);
        assert!(!sandbox.storage().exists(), "{args:?} touched nothing");
    }
    let run = sandbox.run(&["hooks", "check"]);
    let line = run
        .stderr
        .lines()
        .find(|l| l.starts_with("hookrun: "))
        .expect("an error line")
        .to_string();
    let file = sandbox.config_path().display().to_string();
    line.strip_prefix("hookrun: ").unwrap().replace(&file, "hooks.toml")
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

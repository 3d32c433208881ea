//! Every `--json` document matches its JSON Schema in `docs/json/`: each command runs through the real binary on real
//! data (a real backup chain, a real catalog) and its document is validated against the schema file, `$ref`s
//! resolved from the local files only. Each document is then changed — a field added, a field removed, a value of
//! the wrong type — and the schema must reject every change: a field the code adds without the schema fails here.
//! No Docker is needed, but for the last test (it skips without an engine unless `HOOKRUN_REQUIRE_DOCKER=1`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;

use hookrun_e2e::deployment::{paused_after_backup, wait_for_phase, world};
use hookrun_e2e::Sandbox;
use jsonschema::{Registry, Validator};
use serde_json::{json, Value};

/// Where every `$id` of the schemas points: a name, under a domain that never resolves, not an address.
const ID_BASE: &str = "https://hookrun.invalid/json/";

/// The folder of the schemas and their reference page.
fn schema_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .join("docs/json")
}

/// Every `*.schema.json` in `docs/json/`, by file name, parsed.
fn schema_files() -> &'static BTreeMap<String, Value> {
    static FILES: OnceLock<BTreeMap<String, Value>> = OnceLock::new();
    FILES.get_or_init(|| {
        let mut files = BTreeMap::new();
        for entry in std::fs::read_dir(schema_dir()).expect("docs/json exists") {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if name.ends_with(".schema.json") {
                let text = std::fs::read_to_string(&path).unwrap();
                let schema = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name} is not JSON: {e}"));
                files.insert(name, schema);
            }
        }
        files
    })
}

/// Every schema file registered under its `$id`, so that `defs.schema.json#/$defs/...` resolves without a network.
fn registry() -> &'static Registry<'static> {
    static REGISTRY: OnceLock<Registry<'static>> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        let resources = schema_files().values().map(|schema| {
            (
                schema["$id"].as_str().expect("every schema has an $id").to_string(),
                schema.clone(),
            )
        });
        Registry::new()
            .extend(resources)
            .expect("the $ids are URIs")
            .prepare()
            .expect("the schemas register")
    })
}

/// The validator of `docs/json/<name>.schema.json`: draft 2020-12, formats (`date-time`) checked, nothing fetched.
fn validator(name: &str) -> &'static Validator {
    static VALIDATORS: OnceLock<BTreeMap<String, Validator>> = OnceLock::new();
    let validators = VALIDATORS.get_or_init(|| {
        schema_files()
            .iter()
            .filter(|(file, _)| file.as_str() != "defs.schema.json")
            .map(|(file, schema)| {
                let validator = jsonschema::options()
                    .with_draft(jsonschema::Draft::Draft202012)
                    .should_validate_formats(true)
                    .with_registry(registry())
                    .offline()
                    .build(schema)
                    .unwrap_or_else(|e| panic!("docs/json/{file} does not compile: {e}"));
                (file.trim_end_matches(".schema.json").to_string(), validator)
            })
            .collect()
    });
    validators
        .get(name)
        .unwrap_or_else(|| panic!("no docs/json/{name}.schema.json"))
}

/// What is wrong with `doc` under schema `name`, one line per error; empty when it matches.
fn errors(name: &str, doc: &Value) -> Vec<String> {
    validator(name)
        .iter_errors(doc)
        .map(|e| format!("at `{}`: {e}", e.instance_path()))
        .collect()
}

/// Asserts that `doc` matches schema `name`, and that the schema rejects each change of it that hookrun never
/// prints (see [`changes`]).
#[track_caller]
pub(crate) fn assert_document(name: &str, doc: &Value) {
    let found = errors(name, doc);
    assert!(
        found.is_empty(),
        "the document does not match docs/json/{name}.schema.json:\n{}\n{doc:#}",
        found.join("\n")
    );
    for (change, changed) in changes(doc) {
        assert!(
            !validator(name).is_valid(&changed),
            "docs/json/{name}.schema.json accepts the document with {change}: it is not strict there\n{doc:#}"
        );
    }
}

/// Runs `hookrun ARGS --json` in `sandbox`, asserts its exit code (and that a document carrying `exit_code` says the
/// same), and returns its one document.
#[track_caller]
fn document(sandbox: &Sandbox, args: &[&str], code: i32) -> Value {
    let args: Vec<&str> = args.iter().copied().chain(["--json"]).collect();
    let run = sandbox.run(&args);
    assert_eq!(
        run.code,
        code,
        "hookrun {}\nstdout:\n{}\nstderr:\n{}",
        args.join(" "),
        run.stdout,
        run.stderr
    );
    let doc = run.json();
    if let Some(said) = doc.get("exit_code") {
        assert_eq!(said, &json!(code), "the document's exit code is the process's: {doc:#}");
    }
    doc
}

/// The changes of `doc` its schema must reject, each named: at every object, a field added (`"surprise": {}`) and
/// each field removed (but the entries of the open maps: a hook's `outputs`, an upgrade's `phases` and `downtime`); every value that is no
/// container replaced by one of another type (a number by a string, a string by a number, a boolean by a string,
/// null by an object); every empty array given an element that is an empty object.
fn changes(doc: &Value) -> Vec<(String, Value)> {
    let mut places = Vec::new();
    collect_places(doc, String::new(), &mut places);
    let mut changes = Vec::new();
    for (pointer, value) in places {
        let mut change = |what: String, apply: &dyn Fn(&mut Value)| {
            let mut changed = doc.clone();
            apply(changed.pointer_mut(&pointer).expect("the place exists"));
            changes.push((format!("{what} at `{pointer}`"), changed));
        };
        match value {
            Value::Object(fields) => {
                change("an unknown field `surprise`".into(), &|v| {
                    v.as_object_mut().unwrap().insert("surprise".into(), json!({}));
                });
                let open_map = ["/outputs", "/phases", "/downtime"]
                    .iter()
                    .any(|m| pointer.ends_with(m));
                if !open_map {
                    for key in fields.keys() {
                        change(format!("`{key}` left out"), &|v| {
                            v.as_object_mut().unwrap().remove(key);
                        });
                    }
                }
            }
            Value::Array(items) if items.is_empty() => change("an element `{}`".into(), &|v| *v = json!([{}])),
            Value::Array(_) => {}
            Value::Number(_) => change("a number as a string".into(), &|v| *v = json!(v.to_string())),
            Value::String(_) => change("a string as a number".into(), &|v| *v = json!(7)),
            Value::Bool(_) => change("a boolean as a string".into(), &|v| *v = json!(v.to_string())),
            Value::Null => change("null as an object".into(), &|v| *v = json!({})),
        }
    }
    changes
}

/// Every value in `value` with its JSON pointer, `value` itself first.
fn collect_places<'a>(value: &'a Value, pointer: String, places: &mut Vec<(String, &'a Value)>) {
    places.push((pointer.clone(), value));
    match value {
        Value::Object(fields) => {
            for (key, field) in fields {
                let escaped = key.replace('~', "~0").replace('/', "~1");
                collect_places(field, format!("{pointer}/{escaped}"), places);
            }
        }
        Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                collect_places(item, format!("{pointer}/{index}"), places);
            }
        }
        _ => {}
    }
}

/// A deployment without Docker (no `[runner] project`, no stop or start): two trees, and a `command` hook whose
/// artifact goes into the archive, before `backup` and `record`.
fn deployment() -> Sandbox {
    let sandbox = Sandbox::new();
    sandbox.file("data/a.txt", b"hello", 0o644);
    sandbox.file("data/sub/b.bin", &[1u8; 4096], 0o600);
    sandbox.file("config/app.env", b"MODE=production\n", 0o644);
    sandbox.config(CHAIN);
    sandbox
}

/// The chain of [`deployment`]: `dump` writes an artifact, `backup` archives both trees and it, `record` records it.
const CHAIN: &str = r#"
[[hook]]
name = "dump"
builtin = "command"
[hook.config]
command = ["sh", "-c", "echo 'one row' > \"$HOOKRUN_ARTIFACT_DIR/dump.sql\""]

[[hook]]
name = "backup"
builtin = "backup"
[hook.config]
sources = ["data", "config"]

[[hook]]
name = "record"
builtin = "record"
"#;

/// A hook that fails after the archive is placed and recorded: its backup is `failed`, with an archive.
const FAILS_AFTER_THE_ARCHIVE: &str =
    "[[hook]]\nname = \"after\"\nbuiltin = \"command\"\nartifacts = false\nconfig = { command = [\"false\"] }\n";

/// Makes a manual backup in `sandbox` and returns its id.
fn backup(sandbox: &Sandbox) -> i64 {
    let doc = document(sandbox, &["backup", "--version", "1.0.0"], 0);
    doc["backup"]["id"].as_i64().expect("the run recorded a backup")
}

/// Starts `hookrun backup` in a [`paused_after_backup`] sandbox and kills it (SIGKILL) once it waits after placing
/// its archive: a run that died, its archive registered and never recorded.
fn kill_a_run_after_its_archive(sandbox: &Sandbox) {
    let _ = std::fs::remove_file(sandbox.path().join("go"));
    let mut child = sandbox
        .command(&["backup", "--version", "1.0.0"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_phase(sandbox, "hook pause");
    child.kill().unwrap();
    child.wait().unwrap();
    std::fs::write(sandbox.path().join("go"), b"").unwrap(); // the orphaned pause hook ends
}

/// Flips one byte in the middle of `archive`.
fn corrupt(archive: &str) {
    let mut bytes = std::fs::read(archive).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(archive, bytes).unwrap();
}

#[test]
fn every_schema_is_draft_2020_12_names_itself_and_describes_and_closes_every_object() {
    let files = schema_files();
    assert!(files.contains_key("defs.schema.json"), "{:?}", files.keys());
    for (file, schema) in files {
        assert_eq!(
            schema["$schema"], "https://json-schema.org/draft/2020-12/schema",
            "{file}"
        );
        assert_eq!(schema["$id"], json!(format!("{ID_BASE}{file}")), "{file}");
        if let Err(e) = jsonschema::meta::validate(schema) {
            panic!("{file} is not a valid schema: {e}");
        }
        let mut problems = Vec::new();
        lint(schema, "", &mut problems);
        assert!(problems.is_empty(), "{file}:\n{}", problems.join("\n"));
    }
}

/// The house rules of a schema, below `at`: every property has a description; every object with properties is
/// closed (`additionalProperties` or `unevaluatedProperties` false), but the `$defs` named `*-fields`, which the
/// objects that add to them close; and every property is required (hookrun prints every field, null when it has no
/// value), but one that a condition (`then`, or one of several under `allOf`) requires where it is printed. Conditions (`if`, `then`, `else`, `not`)
/// only narrow what the properties say and are not linted.
fn lint(schema: &Value, at: &str, problems: &mut Vec<String>) {
    let Some(object) = schema.as_object() else {
        return;
    };
    if let Some(properties) = object.get("properties").and_then(Value::as_object) {
        let closed = object.get("additionalProperties") == Some(&json!(false))
            || object.get("unevaluatedProperties") == Some(&json!(false));
        if !closed && !at.ends_with("-fields") {
            problems.push(format!("{at}: not closed (additionalProperties: false)"));
        }
        let required: BTreeSet<&str> = object
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        // A condition of its own, or each of several under `allOf`.
        let conditions =
            std::iter::once(schema).chain(object.get("allOf").and_then(Value::as_array).into_iter().flatten());
        let required_then: BTreeSet<&str> = conditions
            .filter_map(|c| c.pointer("/then/required").and_then(Value::as_array))
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        for (name, property) in properties {
            if property
                .get("description")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
            {
                problems.push(format!("{at}/properties/{name}: no description"));
            }
            if !required.contains(name.as_str()) && !required_then.contains(name.as_str()) {
                problems.push(format!("{at}/properties/{name}: not required"));
            }
        }
    }
    for (key, value) in object {
        if matches!(key.as_str(), "if" | "then" | "else" | "not") {
            continue;
        }
        match value {
            Value::Object(_) => lint(value, &format!("{at}/{key}"), problems),
            Value::Array(items) => {
                for (index, item) in items.iter().enumerate() {
                    lint(item, &format!("{at}/{key}/{index}"), problems);
                }
            }
            _ => {}
        }
    }
}

#[test]
fn the_reference_page_names_every_command_and_every_schema_file() {
    let page = std::fs::read_to_string(schema_dir().join("README.md")).expect("docs/json/README.md exists");
    let help = |args: &[&str]| {
        let run = Sandbox::new().run(args);
        assert_eq!(run.code, 0, "{}", run.stderr);
        run.stdout
    };
    let commands = hookrun_e2e::listed_commands;
    let mut named = Vec::new();
    for command in commands(&help(&["--help"])) {
        if command == "hooks" {
            named.extend(
                commands(&help(&["hooks", "--help"]))
                    .into_iter()
                    .map(|c| format!("hooks {c}")),
            );
        } else {
            named.push(command);
        }
    }
    assert!(named.len() >= 15, "{named:?}");
    for command in named {
        assert!(
            page.contains(&format!("`hookrun {command}")),
            "docs/json/README.md does not say what `hookrun {command} --json` prints"
        );
    }
    for file in schema_files().keys() {
        assert!(
            page.contains(&format!("`{file}`")),
            "docs/json/README.md does not name {file}"
        );
    }
}

#[test]
fn hooks_check_prints_the_chain_and_hooks_new_the_crate_it_scaffolded() {
    let sandbox = deployment();

    let check = document(&sandbox, &["hooks", "check"], 0);
    let new = document(&sandbox, &["hooks", "new", "my-hook"], 0);

    assert_document("hooks-check", &check);
    assert_eq!(check["hooks"].as_array().unwrap().len(), 3);
    assert_document("hooks-new", &new);
    assert_eq!(new["created"], sandbox.path().join("my-hook").to_str().unwrap());
    assert!(sandbox.path().join("my-hook/Cargo.toml").is_file());
}

#[test]
fn plan_prints_the_chain_with_each_backup_hooks_estimate() {
    let sandbox = deployment();

    let plan = document(&sandbox, &["plan"], 0);

    assert_document("plan", &plan);
    let hooks = plan["hooks"].as_array().unwrap();
    assert_eq!(hooks.len(), 3);
    assert_eq!(hooks[1]["backup"]["sources"].as_array().unwrap().len(), 2);
    assert!(hooks[0].get("backup").is_none(), "only a backup hook has one");
}

#[test]
fn estimate_prints_one_estimate_per_backup_hook() {
    let sandbox = deployment();

    let estimate = document(&sandbox, &["estimate"], 0);

    assert_document("estimate", &estimate);
    assert_eq!(estimate["backups"][0]["files"], 3);
}

#[test]
fn a_completed_backup_prints_the_run_document_with_its_backup() {
    let sandbox = deployment();

    let run = document(&sandbox, &["backup", "--version", "1.0.0"], 0);

    assert_document("run", &run);
    assert_eq!(run["status"], "completed");
    assert_eq!(run["backup"]["status"], "completed");
    assert_eq!(run["hooks"].as_array().unwrap().len(), 3);
}

#[test]
fn a_failed_backup_prints_the_run_document_with_its_error_and_skipped_hooks() {
    let sandbox = deployment();
    sandbox.config(&format!(
        "[[hook]]\nname = \"flaky\"\nbuiltin = \"command\"\non_error = \"continue\"\n\
         config = {{ command = [\"false\"] }}\n\n\
         [[hook]]\nname = \"check\"\nbuiltin = \"command\"\nconfig = {{ command = [\"sh\", \"-c\", \"exit 3\"] }}\n{CHAIN}"
    ));

    let run = document(&sandbox, &["backup"], 1);

    assert_document("run", &run);
    assert_eq!(run["status"], "failed");
    let statuses: Vec<&str> = run["hooks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["continued", "failed", "skipped", "skipped", "completed"]);
    assert_eq!(run["backup"]["status"], "failed", "record recorded the failure");
    assert_eq!(run["backup"]["path"], Value::Null);
}

#[test]
fn a_refused_backup_prints_the_run_document_with_status_refused_and_no_run_id() {
    let sandbox = deployment();
    sandbox.config(&CHAIN.replace(
        "sources = [\"data\", \"config\"]",
        "sources = [\"data\"]\nmin_free_factor = 1e15",
    ));

    let run = document(&sandbox, &["backup"], 1);

    assert_document("run", &run);
    assert_eq!(run["status"], "refused");
    assert_eq!(run["run_id"], Value::Null);
    assert!(
        run["error"].as_str().unwrap().contains("not enough free space"),
        "{run:#}"
    );
}

#[test]
fn list_prints_every_backup_with_its_verification_and_the_unknown_archives() {
    let sandbox = deployment();
    let id = backup(&sandbox);
    document(&sandbox, &["verify", &id.to_string()], 0);
    sandbox.config(&format!("{CHAIN}\n{FAILS_AFTER_THE_ARCHIVE}"));
    document(&sandbox, &["backup"], 1); // the archive is written, the run fails after it: a failed backup with a path
    let known = sandbox.archives().pop().unwrap();
    std::fs::copy(
        &known,
        sandbox.storage().join("backup_manual_v0.9_2026-01-01_00-00-00.tar.gz"),
    )
    .unwrap();

    let list = document(&sandbox, &["list"], 0);

    assert_document("list", &list);
    assert_eq!(list["backups"].as_array().unwrap().len(), 2);
    assert_eq!(list["backups"][0]["verify_ok"], true);
    assert_eq!(list["backups"][1]["status"], "failed");
    assert_eq!(list["unknown_archives"].as_array().unwrap().len(), 1);
}

#[test]
fn show_prints_a_backup_with_its_run_hooks_and_sources_completed_or_failed() {
    let sandbox = deployment();
    let completed = backup(&sandbox);
    sandbox.config(&format!(
        "[[hook]]\nname = \"check\"\nbuiltin = \"command\"\nconfig = {{ command = [\"false\"] }}\n{CHAIN}"
    ));
    let failed = document(&sandbox, &["backup"], 1)["backup"]["id"].as_i64().unwrap();

    let shown = document(&sandbox, &["show", &completed.to_string()], 0);
    let shown_failed = document(&sandbox, &["show", &failed.to_string()], 0);

    assert_document("show", &shown);
    let kinds: Vec<&str> = shown["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["path", "path", "artifacts"]);
    assert_document("show", &shown_failed);
    assert_eq!(shown_failed["run"]["status"], "failed");
    assert_eq!(shown_failed["sources"], json!([]));
}

#[test]
fn verify_prints_each_verification_and_with_all_the_unknown_archives() {
    let sandbox = deployment();
    let good = backup(&sandbox);
    let bad = document(&sandbox, &["backup", "--version", "1.0.0"], 0)["backup"].clone();
    corrupt(bad["path"].as_str().unwrap());
    let known = sandbox.archives().pop().unwrap();
    std::fs::copy(
        &known,
        sandbox.storage().join("backup_manual_v0.9_2026-01-01_00-00-00.tar.gz"),
    )
    .unwrap();

    let one = document(&sandbox, &["verify", &good.to_string()], 0);
    let failed = document(&sandbox, &["verify", &bad["id"].to_string()], 1);
    let all = document(&sandbox, &["verify", "--all"], 1);

    assert_document("verify", &one);
    assert_eq!(one["verified"][0]["ok"], true);
    assert_document("verify", &failed);
    assert_eq!(failed["verified"][0]["ok"], false);
    assert_document("verify", &all);
    assert_eq!(all["verified"].as_array().unwrap().len(), 2);
    assert_eq!(all["unknown_archives"].as_array().unwrap().len(), 1);
}

#[test]
fn recover_prints_the_runs_it_recovered_and_the_copies_it_removed_then_that_nothing_is_left() {
    let sandbox = paused_after_backup();
    std::fs::write(sandbox.path().join("go"), b"").unwrap();
    let id = backup(&sandbox);
    let restore_run = document(&sandbox, &["restore", &id.to_string()], 0)["run_id"].clone();
    // What a restore that failed after its swap keeps beside its target, as the way back.
    let old_copy = sandbox.work().join(format!(".hookrun-old-{restore_run}-0-data"));
    std::fs::create_dir(&old_copy).unwrap();
    kill_a_run_after_its_archive(&sandbox);

    let recovered = document(&sandbox, &["recover"], 0);
    let nothing = document(&sandbox, &["recover"], 0);

    assert_document("recover", &recovered);
    assert_eq!(recovered["recovered"][0]["phase"], "hook pause");
    assert!(recovered["recovered"][0]["archive"].is_string(), "{recovered:#}");
    assert_eq!(recovered["removed"][0]["path"], old_copy.to_str().unwrap());
    assert!(!old_copy.exists());
    assert_document("recover", &nothing);
    assert_eq!(nothing, json!({ "recovered": [], "upgrades": [], "removed": [] }));
}

#[test]
fn a_run_after_one_that_died_names_it_among_the_recovered() {
    let sandbox = paused_after_backup();
    kill_a_run_after_its_archive(&sandbox);

    let run = document(&sandbox, &["backup"], 0);

    assert_document("run", &run);
    assert_eq!(run["recovered"], json!([1]));
}

#[test]
fn restore_prints_the_run_document_and_its_dry_run_what_it_would_do() {
    let sandbox = deployment();
    let id = backup(&sandbox).to_string();
    sandbox.file("data/a.txt", b"changed since", 0o644);

    let plan = document(&sandbox, &["restore", &id, "--dry-run"], 0);
    let restored = document(&sandbox, &["restore", &id], 0);

    assert_document("restore-dry-run", &plan);
    assert_eq!(
        plan["targets"].as_array().unwrap().len(),
        2,
        "the trees, not the artifacts"
    );
    assert_document("run", &restored);
    assert_eq!(restored["kind"], "restore");
    assert_eq!(restored["restore_of"].to_string(), id);
    assert_eq!(std::fs::read(sandbox.work().join("data/a.txt")).unwrap(), b"hello");
}

#[test]
fn a_restore_its_extraction_refuses_prints_the_run_document_with_status_refused() {
    let sandbox = deployment();
    let backup = document(&sandbox, &["backup", "--version", "1.0.0"], 0)["backup"].clone();
    corrupt(backup["path"].as_str().unwrap());

    let refused = document(&sandbox, &["restore", &backup["id"].to_string()], 1);

    assert_document("run", &refused);
    assert_eq!(
        refused["status"], "refused",
        "a corrupt archive stops nothing: {refused:#}"
    );
    assert_eq!(refused["restore_of"], backup["id"]);
}

#[test]
fn rollback_restores_the_pre_upgrade_backup_and_prints_the_run_document() {
    let sandbox = deployment();
    let pre_upgrade = document(&sandbox, &["pre-upgrade", "--version", "1.0.0"], 0);
    assert_document("run", &pre_upgrade);
    backup(&sandbox); // a newer manual backup is no rollback point

    let plan = document(&sandbox, &["rollback", "--dry-run"], 0);
    let rolled_back = document(&sandbox, &["rollback", "--yes"], 0);

    assert_document("restore-dry-run", &plan);
    assert_eq!(plan["backup"], pre_upgrade["backup"]["id"]);
    assert_document("run", &rolled_back);
    assert_eq!(rolled_back["restore_of"], pre_upgrade["backup"]["id"]);
}

#[test]
fn prune_prints_what_it_deleted_and_why_it_kept_the_rest_with_and_without_dry_run() {
    let sandbox = deployment();
    let first = backup(&sandbox);
    document(&sandbox, &["verify", &first.to_string()], 0);
    backup(&sandbox);
    let last = backup(&sandbox);

    let dry = document(&sandbox, &["prune", "--keep-last", "1", "--dry-run"], 0);
    let pruned = document(&sandbox, &["prune", "--keep-last", "1"], 0);

    assert_document("prune", &dry);
    assert_eq!(dry["dry_run"], true);
    assert_document("prune", &pruned);
    assert_eq!(pruned["deleted"], json!([2]));
    let kept: Vec<&Value> = pruned["kept"].as_array().unwrap().iter().map(|k| &k["id"]).collect();
    assert_eq!(
        kept,
        [&json!(first), &json!(last)],
        "the newest verified backup, and the newest"
    );
}

#[test]
fn delete_prints_the_id_it_deleted() {
    let sandbox = deployment();
    let id = backup(&sandbox);

    let deleted = document(&sandbox, &["delete", &id.to_string()], 0);

    assert_document("delete", &deleted);
    assert_eq!(deleted["deleted"], json!([id]));
    assert!(sandbox.archives().is_empty());
}

#[test]
fn migrate_storage_prints_the_backups_it_moved_and_the_new_storage_dir() {
    let sandbox = deployment();
    let id = backup(&sandbox);
    let new_dir = sandbox.path().join("elsewhere");

    let migrated = document(&sandbox, &["migrate-storage", new_dir.to_str().unwrap()], 0);

    assert_document("migrate-storage", &migrated);
    assert_eq!(migrated["moved"], json!([id]));
    assert_eq!(migrated["storage_dir"], new_dir.to_str().unwrap());
}

#[test]
fn every_failure_prints_the_error_document_with_the_processs_exit_code() {
    let sandbox = paused_after_backup();
    std::fs::write(sandbox.path().join("go"), b"").unwrap();
    let id = backup(&sandbox);
    let chain = std::fs::read_to_string(sandbox.config_path()).unwrap();
    sandbox.raw_config(&format!("{chain}\n{FAILS_AFTER_THE_ARCHIVE}"));
    let failed = document(&sandbox, &["backup"], 1)["backup"]["id"].to_string();
    let broken = Sandbox::new();
    broken.config("[[hook]]\nname = \"backup\"\nbuiltin = \"backup\"\nconfig = { sources = [\"missing\"] }\n");

    let mut failures = vec![
        ("an unknown backup", document(&sandbox, &["show", "999"], 2)),
        ("an argument clap refuses", document(&sandbox, &["show", "one"], 2)),
        ("a missing subcommand", document(&sandbox, &["hooks"], 2)),
        ("a configuration it refuses", document(&broken, &["plan"], 2)),
        (
            "a backup that is not usable",
            document(&sandbox, &["restore", &failed], 1),
        ),
    ];
    let _ = std::fs::remove_file(sandbox.path().join("go"));
    let mut holder = sandbox
        .command(&["backup"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_phase(&sandbox, "hook pause");
    failures.push((
        "a lock another run holds",
        document(&sandbox, &["delete", &id.to_string()], 4),
    ));
    std::fs::write(sandbox.path().join("go"), b"").unwrap();
    holder.wait().unwrap();

    for (what, error) in &failures {
        assert!(errors("error", error).is_empty(), "{what}: {error:#}");
        assert_document("error", error);
    }
    assert!(failures[0].1["error"]
        .as_str()
        .unwrap()
        .contains("no backup with id 999"));
}

#[test]
fn the_schemas_reject_documents_hookrun_never_prints() {
    let sandbox = deployment();
    let run = document(&sandbox, &["backup", "--version", "1.0.0"], 0);
    let plan = document(&sandbox, &["plan"], 0);
    let verify = document(&sandbox, &["verify", &run["backup"]["id"].to_string()], 0);
    // `doc` with the field at `pointer` set to `value` (added, when its object lacks it).
    let with = |doc: &Value, pointer: &str, value: Value| {
        let mut changed = doc.clone();
        let (parent, field) = pointer.rsplit_once('/').unwrap();
        let object = changed.pointer_mut(parent).and_then(Value::as_object_mut);
        object
            .unwrap_or_else(|| panic!("no object at {parent}"))
            .insert(field.to_string(), value);
        changed
    };
    let without = |doc: &Value, field: &str| {
        let mut changed = doc.clone();
        changed.as_object_mut().unwrap().remove(field);
        changed
    };

    let rejected = [
        ("run", with(&run, "/surprise", json!(1)), "an unknown field"),
        (
            "run",
            with(&run, "/status", json!("succeeded")),
            "a status that is none of the three",
        ),
        (
            "run",
            with(&run, "/exit_code", json!(1)),
            "a completed run that exits 1",
        ),
        (
            "run",
            with(&run, "/error", json!("hook backup: boom")),
            "a completed run with an error",
        ),
        (
            "run",
            with(&run, "/run_id", Value::Null),
            "a completed run without a run id",
        ),
        ("run", with(&run, "/backup/size", json!("127")), "a size as a string"),
        (
            "run",
            with(&run, "/backup/created_at", json!("yesterday")),
            "a time that is no RFC 3339 time",
        ),
        (
            "run",
            with(&run, "/backup/sha256", json!("ABC")),
            "a SHA-256 that is not one",
        ),
        (
            "run",
            with(&run, "/hooks/2/outputs/backup_id", json!(1)),
            "an output that is not a string",
        ),
        (
            "run",
            with(&run, "/hooks/0/hook_type", json!("teardown")),
            "a hook type that does not exist",
        ),
        (
            "plan",
            with(&plan, "/hooks/0/backup", plan["hooks"][1]["backup"].clone()),
            "a backup estimate on a command hook",
        ),
        (
            "plan",
            with(&plan, "/hooks/1/backup/compression", json!("gzip-6")),
            "a plan's compression with its level",
        ),
        (
            "verify",
            with(&verify, "/verified/0/ok", json!(false)),
            "a failed verification without its error",
        ),
        (
            "error",
            json!({ "error": "no backup with id 9" }),
            "an error without its exit code",
        ),
        (
            "error",
            json!({ "error": "no backup with id 9", "exit_code": 0 }),
            "an error that exits 0",
        ),
        (
            "error",
            json!({ "error": "no backup with id 9", "exit_code": "2" }),
            "an exit code as a string",
        ),
        (
            "error",
            without(&json!({ "error": "x", "exit_code": 2 }), "error"),
            "an error without its message",
        ),
    ];
    for (schema, doc, what) in rejected {
        assert!(
            !validator(schema).is_valid(&doc),
            "docs/json/{schema}.schema.json accepts {what}:\n{doc:#}"
        );
    }
}

#[test]
fn a_pre_upgrade_with_real_services_prints_the_run_document_with_services_and_mounts() {
    let Some(world) = world("") else { return };
    let sandbox = &world.sandbox;

    let run = document(sandbox, &["pre-upgrade", "--version", "1.0.0"], 0);
    let shown = document(sandbox, &["show", &run["backup"]["id"].to_string()], 0);
    let plan = document(sandbox, &["plan"], 0);
    let restore_plan = document(sandbox, &["restore", &run["backup"]["id"].to_string(), "--dry-run"], 0);

    assert_document("run", &run);
    assert_eq!(run["services"].as_array().unwrap().len(), 4);
    assert!(!run["mounts"].as_array().unwrap().is_empty(), "{run:#}");
    assert_document("show", &shown);
    assert_document("plan", &plan);
    assert_document("restore-dry-run", &restore_plan);
    assert!(restore_plan["stops_project"].is_string());
}

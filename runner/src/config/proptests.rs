//! Property tests of the loader: whatever text `hooks.toml` holds, loading it never panics, and a refusal is one
//! `hooks.toml:LINE:COLUMN: message` line. Each property runs 512 cases (together a few seconds in a debug build).

use std::path::Path;

use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use proptest::sample::select;

use super::{parse, Check, ConfigError};

/// Values a key may be given: every TOML type, edge numbers, durations and sizes at and past their limits, paths
/// that escape, grants that collide.
const VALUES: &[&str] = &[
    "\"data\"",
    "\"work\"",
    "\"storage\"",
    "\"\"",
    "\".\"",
    "\"..\"",
    "\"../x\"",
    "\"/\"",
    "\"/artifacts\"",
    "\"artifacts/db\"",
    "\"auto\"",
    "\"gzip\"",
    "\"zstd\"",
    "\"clone\"",
    "\"any\"",
    "\"success\"",
    "\"failure\"",
    "\"always\"",
    "\"abort\"",
    "\"continue\"",
    "\"backup\"",
    "\"stop\"",
    "\"start\"",
    "\"record\"",
    "\"snapshot\"",
    "\"command\"",
    "\"hook.wasm\"",
    "\"30s\"",
    "\"0s\"",
    "\"365d\"",
    "\"366d\"",
    "\"9223372036854775807s\"",
    "\"18446744073709551615ns\"",
    "\"1h 30m\"",
    "\"soon\"",
    "\"256MiB\"",
    "\"0KiB\"",
    "\"18446744073709551615GiB\"",
    "\"sh -c\"",
    "\"\\u00e9t\\u00e9\"",
    "0",
    "1",
    "-1",
    "19",
    "4294967296",
    "9223372036854775807",
    "-9223372036854775808",
    "0.5",
    "-0.0",
    "nan",
    "inf",
    "-inf",
    "1e308",
    "true",
    "false",
    "1979-05-27",
    "1979-05-27T07:32:00Z",
    "07:32:00",
    "[]",
    "[\"data\"]",
    "[\"data\", 7]",
    "[\"data\", \"/data\"]",
    "[\"true\"]",
    "[\"\"]",
    "[[]]",
    "[\"TZ\", \"A B\"]",
    "[{ service = \"db\", programs = [\"pg_dump\"] }]",
    "[{ service = \"\", programs = [] }]",
    "[{ programs = [\"x\"], user = \"root\" }]",
    "[\"db\"]",
    "{}",
    "{ a = 1 }",
    "{ A = \"b\" }",
    "{ read = [\"data\"] }",
];

const RUNNER_KEYS: &[&str] = &[
    "project",
    "work_dir",
    "storage_dir",
    "catalog",
    "version",
    "compose_file",
    "metrics_file",
    "defaults",
    "storage",
];

const HOOK_KEYS: &[&str] = &[
    "name",
    "builtin",
    "wasm",
    "when",
    "on_error",
    "timeout",
    "artifacts",
    "memory_limit",
    "tiemout",
];

const CONFIG_KEYS: &[&str] = &[
    "sources",
    "volumes",
    "compression",
    "compression_level",
    "min_free_factor",
    "include_artifacts",
    "allow_empty",
    "services",
    "stop_timeout",
    "start_timeout",
    "backup",
    "copies",
    "command",
    "env",
    "cwd",
    "compresion_level",
];

const PERMISSION_KEYS: &[&str] = &["read", "write", "env", "exec", "network"];

fn entries(keys: &'static [&'static str], most: usize) -> impl Strategy<Value = Vec<String>> {
    vec(
        (select(keys), select(VALUES)).prop_map(|(key, value)| format!("{key} = {value}")),
        0..most,
    )
}

/// A table written as `[header]` lines or, when `inline`, as `key = { … }` under its parent.
fn table(header: &str, key: &str, lines: &[String], inline: bool) -> String {
    if inline {
        format!("{key} = {{ {} }}\n", lines.join(", "))
    } else {
        format!("[{header}]\n{}\n", lines.join("\n"))
    }
}

/// A `[[hook]]` table: its own keys (a valid name and kind most of the time), maybe a `config` and `permissions`.
fn hook() -> impl Strategy<Value = String> {
    (
        option::weighted(0.9, select(&["\"a\"", "\"b\"", "\"../x\"", "\"\""][..])),
        option::weighted(0.8, select(VALUES)),
        any::<bool>(),
        entries(HOOK_KEYS, 4),
        option::of((entries(CONFIG_KEYS, 5), any::<bool>())),
        option::of((entries(PERMISSION_KEYS, 4), any::<bool>())),
    )
        .prop_map(|(name, kind, wasm, keys, config, permissions)| {
            let mut text = String::from("\n[[hook]]\n");
            if let Some(name) = name {
                text.push_str(&format!("name = {name}\n"));
            }
            if let Some(kind) = kind {
                text.push_str(&format!("{} = {kind}\n", if wasm { "wasm" } else { "builtin" }));
            }
            for line in keys {
                text.push_str(&line);
                text.push('\n');
            }
            let mut sections = String::new();
            for (key, table_lines) in [("config", config), ("permissions", permissions)] {
                if let Some((lines, inline)) = table_lines {
                    let written = table(&format!("hook.{key}"), key, &lines, inline);
                    if inline {
                        text.push_str(&written);
                    } else {
                        sections.push_str(&written);
                    }
                }
            }
            text + &sections
        })
}

/// A whole `hooks.toml`: a `[runner]` table (the usual one most of the time), then hooks.
fn document() -> impl Strategy<Value = String> {
    (
        any::<bool>(),
        entries(RUNNER_KEYS, 4),
        option::of(entries(&["timeout", "tiemout"], 2)),
        vec(hook(), 0..4),
    )
        .prop_map(|(usual, runner, defaults, hooks)| {
            let mut text = String::from("[runner]\n");
            if usual {
                text.push_str("work_dir = \"work\"\nstorage_dir = \"storage\"\nproject = \"p\"\n");
            }
            for line in runner {
                text.push_str(&line);
                text.push('\n');
            }
            if let Some(defaults) = defaults {
                text.push_str(&table("runner.defaults", "defaults", &defaults, false));
            }
            text + &hooks.concat()
        })
}

/// Loads `text` as `<dir>/hooks.toml` at both depths of checking: it must come back Ok or as one line at a place.
fn loads_or_points(dir: &Path, text: &str) -> Result<(), TestCaseError> {
    let path = dir.join("hooks.toml");
    for check in [Check::Shape, Check::Full] {
        match parse(text, &path, check) {
            Ok(_) => {}
            Err(e @ ConfigError::At { .. }) => {
                let message = e.to_string();
                let rest = message
                    .strip_prefix(&format!("{}:", path.display()))
                    .ok_or_else(|| TestCaseError::fail(format!("no file name: {message}")))?;
                let mut parts = rest.splitn(3, ':');
                let line = parts.next().unwrap_or_default();
                let column = parts.next().unwrap_or_default();
                prop_assert!(
                    line.parse::<usize>().is_ok_and(|l| l >= 1) && column.parse::<usize>().is_ok_and(|c| c >= 1),
                    "no line:column: {}",
                    message
                );
                prop_assert!(parts.next().is_some_and(|m| m.starts_with(' ')), "{}", message);
                prop_assert!(!message.contains('\n'), "not one line: {}", message);
            }
            Err(e) => return Err(TestCaseError::fail(format!("not an error at a place: {e}"))),
        }
    }
    Ok(())
}

fn sandbox() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("work/data")).unwrap();
    std::fs::write(dir.path().join("hook.wasm"), b"").unwrap();
    dir
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn any_text_loads_or_is_refused_at_a_place(text in "(?s).{0,300}") {
        let dir = sandbox();
        loads_or_points(dir.path(), &text)?;
    }

    #[test]
    fn toml_like_text_loads_or_is_refused_at_a_place(
        text in "[\\[\\]a-z_=\"{}, .0-9\n#:-]{0,300}",
    ) {
        let dir = sandbox();
        loads_or_points(dir.path(), &format!("[runner]\nwork_dir = \"work\"\n{text}"))?;
    }

    #[test]
    fn plausible_configs_load_or_are_refused_at_a_place(text in document()) {
        let dir = sandbox();
        loads_or_points(dir.path(), &text)?;
    }
}

//! `hookrun hooks new NAME`: writes a new WASM hook crate that builds with
//! `cargo build --target wasm32-wasip1 --release`, uses the SDK, and has a unit test running its logic natively.
//! The build writes `target/wasm32-wasip1/release/NAME.wasm` in the crate's folder ([`module_path()`]): cargo keeps
//! the crate's name as it is, hyphens included.
//!
//! The SDK is not on a registry: the crate gets a copy of this hookrun's SDK in `hookrun-sdk/`, so its ABI is the
//! one this hookrun speaks.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::exit::UsageError;

/// The SDK version new hooks depend on.
const SDK_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The SDK's sources, copied into every new hook crate.
const SDK_FILES: [(&str, &str); 6] = [
    ("lib.rs", include_str!("../../../sdk/src/lib.rs")),
    ("abi.rs", include_str!("../../../sdk/src/abi.rs")),
    ("guest.rs", include_str!("../../../sdk/src/guest.rs")),
    ("native.rs", include_str!("../../../sdk/src/native.rs")),
    ("testing.rs", include_str!("../../../sdk/src/testing.rs")),
    ("wasm.rs", include_str!("../../../sdk/src/wasm.rs")),
];

/// Writes a hook crate called `name` into `dir` (created; it must not exist or be empty): `Cargo.toml`,
/// `src/main.rs` (a working hook with a unit test), `.cargo/config.toml` (default target wasm32-wasip1),
/// `.gitignore`, a `README.md` with the `hooks.toml` snippet, and the SDK in `hookrun-sdk/`. A bad name, or a `dir`
/// that is a file or a folder with something in it, is a [`UsageError`] (exit 2).
pub fn scaffold(name: &str, dir: &Path) -> anyhow::Result<()> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if !valid {
        return Err(UsageError(format!(
            "`{name}` is not a valid hook name: use lowercase letters, digits, `-` and `_`, starting with a letter"
        ))
        .into());
    }
    if dir.exists() {
        if !dir.is_dir() {
            return Err(UsageError(format!("{} already exists and is not a folder", dir.display())).into());
        }
        let mut entries = std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))?;
        if entries.next().is_some() {
            return Err(UsageError(format!("{} already exists and is not empty", dir.display())).into());
        }
    }
    let mut files = vec![
        ("Cargo.toml".to_string(), cargo_toml(name)),
        ("src/main.rs".to_string(), MAIN_RS.replace("{name}", name)),
        (".cargo/config.toml".to_string(), CARGO_CONFIG.to_string()),
        (".gitignore".to_string(), "/target\n".to_string()),
        ("README.md".to_string(), README.replace("{name}", name)),
        ("hookrun-sdk/Cargo.toml".to_string(), sdk_cargo_toml()),
    ];
    for (file, contents) in SDK_FILES {
        files.push((format!("hookrun-sdk/src/{file}"), contents.to_string()));
    }
    for (relative, contents) in files {
        let path = dir.join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&path, contents).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

/// The module `cargo build --target wasm32-wasip1 --release`, run in the crate's folder `dir`, writes for hook
/// `name`: `<target dir>/wasm32-wasip1/release/<name>.wasm`, the target dir being `cargo_target_dir` (the
/// `CARGO_TARGET_DIR` the build will see; relative to `dir`) or else `dir/target`. Absolute when `dir` can be made so.
pub fn module_path(dir: &Path, name: &str, cargo_target_dir: Option<&OsStr>) -> PathBuf {
    let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    let target = match cargo_target_dir {
        Some(target) if !target.is_empty() => dir.join(target),
        _ => dir.join("target"),
    };
    target.join("wasm32-wasip1/release").join(format!("{name}.wasm"))
}

fn cargo_toml(name: &str) -> String {
    format!(
        r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2021"
publish = false

[dependencies]
hookrun-sdk = {{ path = "hookrun-sdk" }}
serde = {{ version = "1", features = ["derive"] }}

[dev-dependencies]
serde_json = "1"
tempfile = "3"

# Its own workspace, so it builds wherever it is put.
[workspace]

[profile.release]
opt-level = "s"
lto = true
codegen-units = 1
strip = true
"#
    )
}

fn sdk_cargo_toml() -> String {
    format!(
        r#"[package]
name = "hookrun-sdk"
version = "{SDK_VERSION}"
edition = "2021"
publish = false
description = "The hookrun SDK, copied by `hookrun hooks new`"

[dependencies]
serde = {{ version = "1", features = ["derive"] }}
serde_json = "1"

[dev-dependencies]
tempfile = "3"
"#
    )
}

const CARGO_CONFIG: &str = r#"# `cargo build --release` builds the hook; `cargo test --target x86_64-unknown-linux-gnu` (your machine's
# target) runs its unit tests natively.
[build]
target = "wasm32-wasip1"
"#;

const MAIN_RS: &str = r#"//! The `{name}` hook for hookrun.

use hookrun_sdk::{Hook, Result};
use serde::Deserialize;

/// The hook's `config` table in hooks.toml.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// Who to greet.
    #[serde(default = "default_greeting")]
    greeting: String,
}

fn default_greeting() -> String {
    "hello".to_string()
}

fn run(hook: &Hook<Config>) -> Result<()> {
    let ctx = hook.context();
    hook.info(format!("{} from {} ({} run for version {})", hook.config().greeting, hook.name(), ctx.kind, ctx.version));
    // Files written here go into the backup archive under hooks/<name>/.
    hook.write_artifact("greeting.txt", &hook.config().greeting)?;
    // To run a program inside a Compose service, grant it in hooks.toml
    // (permissions.exec = [{ service = "db", programs = ["pg_dump"] }]) and:
    // hook.exec("db", ["pg_dump", "app"]).stdout_to_artifact("app.sql").run_checked()?;
    hook.set_output("greeting", &hook.config().greeting)?;
    Ok(())
}

hookrun_sdk::main!(run);

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use hookrun_sdk::testing::TestHost;

    #[test]
    fn writes_its_greeting_and_sets_an_output() {
        let dir = tempfile::tempdir().unwrap();
        let host = Arc::new(TestHost::new(serde_json::json!({ "greeting": "hi" }), dir.path()));
        assert_eq!(hookrun_sdk::run_with(host.clone(), super::run), 0);
        assert_eq!(std::fs::read_to_string(dir.path().join("greeting.txt")).unwrap(), "hi");
        assert_eq!(host.outputs()["greeting"], "hi");
    }
}
"#;

const README: &str = r#"# {name}

A hookrun WASM hook.

    cargo build --target wasm32-wasip1 --release   # writes target/wasm32-wasip1/release/{name}.wasm
    cargo test --target x86_64-unknown-linux-gnu      # the unit tests, natively

In hooks.toml (`wasm` is relative to the folder of hooks.toml):

```toml
[[hook]]
name = "{name}"
wasm = "path/to/{name}/target/wasm32-wasip1/release/{name}.wasm"
timeout = "1m"
config = { greeting = "hello" }
# permissions = { read = ["data"], env = ["TZ"], exec = [{ service = "db", programs = ["pg_dump"] }] }
```
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_a_crate_and_refuses_to_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("my-hook");
        scaffold("my-hook", &target).unwrap();
        let cargo = std::fs::read_to_string(target.join("Cargo.toml")).unwrap();
        assert!(cargo.contains("name = \"my-hook\""));
        assert!(cargo.contains("[workspace]"));
        let main = std::fs::read_to_string(target.join("src/main.rs")).unwrap();
        assert!(main.contains("hookrun_sdk::main!(run);"));
        let abi = std::fs::read_to_string(target.join("hookrun-sdk/src/abi.rs")).unwrap();
        assert!(abi.contains(hookrun_sdk::abi::IMPORT_MODULE));
        let readme = std::fs::read_to_string(target.join("README.md")).unwrap();
        assert!(readme.contains("release/my-hook.wasm"), "{readme}");
        let again = scaffold("my-hook", &target).unwrap_err();
        assert!(again.to_string().contains("not empty"));
        assert!(again.downcast_ref::<UsageError>().is_some(), "exit 2");
        let bad = scaffold("Bad Name", &dir.path().join("x")).unwrap_err();
        assert!(bad.downcast_ref::<UsageError>().is_some(), "exit 2");
        let file = dir.path().join("a-file");
        std::fs::write(&file, b"").unwrap();
        let not_a_folder = scaffold("a-file", &file).unwrap_err();
        assert!(not_a_folder.to_string().contains("is not a folder"));
        assert!(not_a_folder.downcast_ref::<UsageError>().is_some(), "exit 2");
    }

    #[test]
    fn the_module_is_named_after_the_crate_under_its_target_dir() {
        let dir = Path::new("/src/my-hook");
        assert_eq!(
            module_path(dir, "my-hook", None),
            Path::new("/src/my-hook/target/wasm32-wasip1/release/my-hook.wasm")
        );
        assert_eq!(
            module_path(dir, "my-hook", Some(OsStr::new("/cache/target"))),
            Path::new("/cache/target/wasm32-wasip1/release/my-hook.wasm")
        );
        assert_eq!(
            module_path(dir, "my-hook", Some(OsStr::new("out"))),
            Path::new("/src/my-hook/out/wasm32-wasip1/release/my-hook.wasm")
        );
    }
}

//! `hookrun hooks check`: loads and validates every hook without running any; [`validate`] is what it checks,
//! shared with `hookrun plan` so that the two accept and refuse the same files with the same message.

use std::path::Path;

use crate::config::{self, Check, Config, HookKind};
use crate::exit::Exit;
use crate::exit::UsageError;
use crate::report::out;
use crate::wasm::CacheMode;
use crate::{chain, wasm};

/// Validates the configuration, loads and links every WASM hook (without running it), and lists the chain.
pub fn check(config_path: &Path, json: bool) -> anyhow::Result<Exit> {
    let config = validate(config_path, CacheMode::ReadWrite)?;
    if json {
        let hooks: Vec<_> = config
            .hooks
            .iter()
            .map(|h| serde_json::json!({ "name": h.name, "kind": h.kind.label(), "when": h.when, "on_error": h.on_error }))
            .collect();
        out::document(&serde_json::json!({ "ok": true, "hooks": hooks }));
    } else {
        for hook in &config.hooks {
            crate::say!("ok  {:<16} {} (line {})", hook.name, hook.kind.label(), hook.line);
        }
        crate::say!("{}: {} hooks ok", config.path.display(), config.hooks.len());
    }
    Ok(Exit::Success)
}

/// The checks of `hooks check`, which `plan` runs first too: the file loads in full (sources, modules and granted
/// folders exist), and every WASM hook loads, imports only what this host provides at its ABI version, links, is a
/// WASI command and fits its memory limit. A failure is a usage error (exit 2) naming the hook and its module.
/// `cache` says whether modules compiled now are cached in the storage dir (`plan` touches nothing: it does not).
pub fn validate(config_path: &Path, cache: CacheMode) -> anyhow::Result<Config> {
    let config = config::load(config_path, Check::Full)?;
    if let Some(engine) = chain::wasm_engine(&config, cache)? {
        for hook in &config.hooks {
            if let HookKind::Wasm(spec) = &hook.kind {
                wasm::check(&engine, spec)
                    .map_err(|e| UsageError(format!("hook {} ({}): {e}", hook.name, spec.module.display())))?;
            }
        }
    }
    Ok(config)
}

/// Writes a new WASM hook crate called `name` into `dir`, and says how to build it and where the module lands.
pub fn new_hook(name: &str, dir: &Path, json: bool) -> anyhow::Result<Exit> {
    wasm::scaffold::scaffold(name, dir)?;
    let module = wasm::scaffold::module_path(dir, name, std::env::var_os("CARGO_TARGET_DIR").as_deref());
    let build = format!(
        "cd {} && cargo build --target wasm32-wasip1 --release",
        shell_word(&dir.to_string_lossy())
    );
    if json {
        let created = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
        out::document(&serde_json::json!({ "created": created, "build": build, "module": module }));
        return Ok(Exit::Success);
    }
    crate::say!("created {}: a WASM hook crate (see its README.md)", dir.display());
    crate::say!("build it:  {build}");
    crate::say!("module:    {}", module.display());
    Ok(Exit::Success)
}

/// `word` as one shell word: as it is when it holds nothing the shell would split or expand, else single-quoted.
fn shell_word(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+:@%,".contains(c));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

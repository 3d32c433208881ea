//! `hookrun hooks check`: loads and validates every hook without running any.

use std::path::Path;

use crate::config::{self, Check, HookKind};
use crate::exit::Exit;
use crate::exit::UsageError;
use crate::report::out;
use crate::{chain, wasm};

/// Validates the configuration, loads and links every WASM hook (without running it), and lists the chain.
pub fn check(config_path: &Path, json: bool) -> anyhow::Result<Exit> {
    let config = config::load(config_path, Check::Full)?;
    if let Some(engine) = chain::wasm_engine(&config)? {
        for hook in &config.hooks {
            if let HookKind::Wasm(spec) = &hook.kind {
                wasm::check(&engine, spec)
                    .map_err(|e| UsageError(format!("hook {} ({}): {e}", hook.name, spec.module.display())))?;
            }
        }
    }
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

/// Writes a new WASM hook crate called `name` into `dir`.
pub fn new_hook(name: &str, dir: &Path) -> anyhow::Result<Exit> {
    wasm::scaffold::scaffold(name, dir)?;
    crate::say!(
        "created {} — build it with: cargo build --target wasm32-wasip1 --release",
        dir.display()
    );
    Ok(Exit::Success)
}

//! `hookrun hooks check`: loads and validates every hook without running any.

use std::path::Path;

use crate::config::{self, Check};
use crate::exit::Exit;

/// Validates the configuration and lists the chain.
pub fn check(config_path: &Path, json: bool) -> anyhow::Result<Exit> {
    let config = config::load(config_path, Check::Full)?;
    if json {
        let hooks: Vec<_> = config
            .hooks
            .iter()
            .map(|h| serde_json::json!({ "name": h.name, "kind": h.kind.label(), "when": h.when, "on_error": h.on_error }))
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({ "ok": true, "hooks": hooks }))?
        );
    } else {
        for hook in &config.hooks {
            println!("ok  {:<16} {} (line {})", hook.name, hook.kind.label(), hook.line);
        }
        println!("{}: {} hooks ok", config.path.display(), config.hooks.len());
    }
    Ok(Exit::Success)
}

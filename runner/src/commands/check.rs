//! `hookrun hooks check`: the hooks of a validated configuration (see [`ReadSession::validated`]), none run; and
//! `hookrun hooks new`: a new WASM hook crate.

use std::path::Path;

use crate::exit::Exit;
use crate::results::{CheckResult, CheckedHook, NewHookResult};
use crate::session::ReadSession;
use crate::wasm;

/// Lists the chain of a session opened with [`ReadSession::validated`] (`CacheMode::ReadWrite`).
pub fn check(session: &ReadSession) -> (CheckResult, Exit) {
    let config = &session.config;
    let hooks = config
        .hooks
        .iter()
        .map(|h| CheckedHook {
            name: h.name.clone(),
            kind: h.kind.label(),
            when: h.when,
            on_error: h.on_error,
            line: h.line,
        })
        .collect();
    let result = CheckResult {
        ok: true,
        hooks,
        config: config.path.clone(),
    };
    (result, Exit::Success)
}

/// Writes a new WASM hook crate called `name` into `dir`, and says how to build it and where the module lands.
pub fn new_hook(name: &str, dir: &Path) -> anyhow::Result<(NewHookResult, Exit)> {
    wasm::scaffold::scaffold(name, dir)?;
    let module = wasm::scaffold::module_path(dir, name, std::env::var_os("CARGO_TARGET_DIR").as_deref());
    let build = format!(
        "cd {} && cargo build --target wasm32-wasip1 --release",
        shell_word(&dir.to_string_lossy())
    );
    let created = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    let result = NewHookResult {
        created,
        build,
        module,
        dir: dir.to_path_buf(),
    };
    Ok((result, Exit::Success))
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

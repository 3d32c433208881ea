//! `hookrun hooks check`: the hooks of a validated configuration (see [`ReadSession::validated`]), none run; and
//! `hookrun hooks new`: a new WASM hook crate.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::config::{OnError, When};
use crate::exit::Exit;
use crate::session::ReadSession;
use crate::wasm;

/// What `hooks check` found: every hook loads (WASM modules loaded and linked).
#[derive(Debug, Serialize)]
pub struct CheckResult {
    pub ok: bool,
    pub hooks: Vec<CheckedHook>,
    /// The configuration file.
    #[serde(skip)]
    pub config: PathBuf,
}

/// One hook that passed the checks.
#[derive(Debug, Serialize)]
pub struct CheckedHook {
    pub name: String,
    pub kind: &'static str,
    pub when: When,
    pub on_error: OnError,
    /// Its line in the configuration file.
    #[serde(skip)]
    pub line: usize,
}

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

/// The hook crate `hooks new` wrote.
#[derive(Debug, Serialize)]
pub struct NewHookResult {
    /// Its folder, absolute.
    pub created: PathBuf,
    /// The command that builds it.
    pub build: String,
    /// Where the built module lands.
    pub module: PathBuf,
    /// Its folder as given.
    #[serde(skip)]
    pub dir: PathBuf,
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

//! A hostile hook for hookrun's sandbox tests: each run tries one attack, chosen by `config.attack`. Whatever it
//! manages to get past the sandbox it writes into its artifact folder (`leak`) and reports as output `leaked`,
//! so a test can see an escape; otherwise it fails with the error the sandbox gave it.

use std::io::Write;

use hookrun_sdk::{Hook, Result};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(tag = "attack", rename_all = "kebab-case")]
enum Attack {
    /// Spin forever without calling the host.
    InfiniteLoop,
    /// Allocate until something gives.
    MemoryBomb,
    /// Read a file the hook was not given.
    Read { path: String },
    /// Write a file (in a folder granted read-only, or not granted at all).
    Write { path: String },
    /// Run a program in a service (not granted).
    Exec { service: String, program: String },
    /// Send a huge log request, many log lines, and floods of stdout and stderr, then succeed.
    Flood {
        lines: usize,
        line_bytes: usize,
        stderr_bytes: usize,
    },
    /// Panic.
    Panic,
    /// Read an environment variable it was not granted.
    Env { name: String },
}

fn run(hook: &Hook<Attack>) -> Result<()> {
    match hook.config() {
        Attack::InfiniteLoop => {
            let mut n: u64 = 0;
            loop {
                n = std::hint::black_box(n.wrapping_add(1));
            }
        }
        Attack::MemoryBomb => {
            let mut hoard: Vec<Vec<u8>> = Vec::new();
            loop {
                hoard.push(vec![1u8; 16 << 20]);
                std::hint::black_box(&hoard);
            }
        }
        Attack::Read { path } => {
            let stolen = hook.read(path)?;
            leak(hook, &stolen)
        }
        Attack::Write { path } => {
            std::fs::write(path, b"pwned").map_err(|e| format!("cannot write {path}: {e}"))?;
            leak(hook, path.as_bytes())
        }
        Attack::Exec { service, program } => {
            let result = hook.exec(service, [program.as_str()]).run()?;
            leak(hook, format!("exit {}", result.exit_code).as_bytes())
        }
        Attack::Flood {
            lines,
            line_bytes,
            stderr_bytes,
        } => {
            hook.info("x".repeat(900 * 1024));
            let line = "y".repeat(*line_bytes);
            for _ in 0..*lines {
                hook.info(line.clone());
            }
            let chunk = vec![b'z'; 64 * 1024];
            let mut err = std::io::stderr();
            let mut out = std::io::stdout();
            let mut written = 0;
            while written < *stderr_bytes {
                err.write_all(&chunk)?;
                out.write_all(b"a line on stdout\n")?;
                written += chunk.len();
            }
            Ok(())
        }
        Attack::Panic => panic!("boom: the hook gave up"),
        Attack::Env { name } => match std::env::var(name) {
            Ok(value) => leak(hook, value.as_bytes()),
            Err(e) => Err(format!("cannot read ${name}: {e}").into()),
        },
    }
}

fn leak(hook: &Hook<Attack>, what: &[u8]) -> Result<()> {
    hook.write_artifact("leak", what)?;
    hook.set_output("leaked", "yes")
}

hookrun_sdk::main!(run);

//! A well-behaved hook for hookrun's tests: it uses every capability its config asks it to — context, logs at
//! each level, artifacts, a granted folder, granted environment variables, exec — and reports what it saw as
//! outputs, so a test can check each capability from the host side.

use std::collections::BTreeMap;

use hookrun_sdk::{Context, Hook, LogLevel, Result};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// Files to copy into the artifact folder (from granted folders), as `artifact name -> path`.
    #[serde(default)]
    copy: BTreeMap<String, String>,
    /// Files to write (into granted read-write folders).
    #[serde(default)]
    write: Vec<String>,
    /// Environment variables to report as outputs `env.NAME` (`<unset>` when not visible).
    #[serde(default)]
    env: Vec<String>,
    /// A program to run in a service.
    exec: Option<ExecConfig>,
    /// Fail with this message after everything else.
    fail: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExecConfig {
    service: String,
    argv: Vec<String>,
    /// Stream stdout into this artifact; captured into output `exec.stdout` when absent.
    artifact: Option<String>,
}

fn run(hook: &Hook<Config>) -> Result<()> {
    let ctx = hook.context();
    hook.set_output("context.kind", &ctx.kind)?;
    hook.set_output("context.version", &ctx.version)?;
    hook.set_output("context.services", ctx.services.join(","))?;
    hook.set_output("context.abi", format!("{}.{}", ctx.abi[0], ctx.abi[1]))?;
    for level in [LogLevel::Error, LogLevel::Warn, LogLevel::Info, LogLevel::Debug] {
        hook.log(level, format!("a {level:?} line"));
    }
    println!("a line on stdout");
    hook.write_artifact("notes/hello.txt", "hello from the sandbox")?;

    let config = hook.config();
    for (artifact, path) in &config.copy {
        let bytes = std::fs::read(path).context(format!("reading {path}"))?;
        hook.write_artifact(artifact, bytes)?;
    }
    for path in &config.write {
        std::fs::write(path, b"written by the hook").context(format!("writing {path}"))?;
    }
    for name in &config.env {
        let value = std::env::var(name).unwrap_or_else(|_| "<unset>".to_string());
        hook.set_output(&format!("env.{name}"), value)?;
    }
    if let Some(exec) = &config.exec {
        let mut run = hook.exec(&exec.service, exec.argv.iter().map(String::as_str));
        run = match &exec.artifact {
            Some(artifact) => run.stdout_to_artifact(artifact),
            None => run.capture_stdout(),
        };
        let result = run.run()?;
        hook.set_output("exec.exit_code", result.exit_code)?;
        hook.set_output("exec.stdout_bytes", result.stdout_bytes)?;
        hook.set_output("exec.stderr", result.stderr.trim())?;
        if let Some(stdout) = result.stdout {
            hook.set_output("exec.stdout", stdout)?;
        }
    }
    if let Some(message) = &config.fail {
        return Err(message.as_str().into());
    }
    Ok(())
}

hookrun_sdk::main!(run);

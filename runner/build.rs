//! Records the commit hookrun is built from, for `--version`: `git rev-parse --short=12 HEAD` of the source tree, or
//! `unknown` outside a git checkout (a crates.io tarball) or without git.

use std::process::Command;

fn main() {
    let commit = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=HOOKRUN_COMMIT={commit}");
    // A new commit or checkout changes HEAD or the branch it names.
    for path in ["../.git/HEAD", "../.git/refs/heads"] {
        if std::path::Path::new(path).exists() {
            println!("cargo:rerun-if-changed={path}");
        }
    }
}

//! The end-to-end harness: builds the `hookrun` binary once, gives each test its own folder (work dir, storage,
//! `hooks.toml`), runs the binary there and reads the real catalog it wrote.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use sha2::{Digest, Sha256};

#[path = "deployment.rs"]
pub mod deployment;
#[path = "docker_env.rs"]
pub mod docker;
#[path = "postgres_image.rs"]
pub mod postgres_image;
#[path = "terminal.rs"]
pub mod terminal;

/// The `hookrun` binary of this workspace, built (once per test process) in the same profile as the tests.
pub fn hookrun_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("workspace root")
            .to_path_buf();
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
        let status = Command::new(cargo)
            .args(["build", "--quiet", "-p", "hookrun", "--bin", "hookrun"])
            .current_dir(&workspace)
            .status()
            .expect("cargo runs");
        assert!(status.success(), "building hookrun failed");
        let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| workspace.join("target"), PathBuf::from);
        target.join("debug").join("hookrun")
    })
}

/// One test's world: a temp folder holding `work/` (the deployment), `storage/` and `hooks.toml`.
pub struct Sandbox {
    dir: tempfile::TempDir,
}

/// What one invocation of hookrun did.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// What a finished process did.
    pub fn from_output(output: Output) -> Self {
        Self {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// stdout parsed as one JSON document.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not one JSON document ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }
}

impl Default for Sandbox {
    fn default() -> Self {
        Self::new()
    }
}

impl Sandbox {
    /// An empty sandbox with an empty `work/` folder.
    pub fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("hookrun-e2e-")
            .tempdir()
            .expect("temp dir");
        std::fs::create_dir_all(dir.path().join("work")).unwrap();
        Self { dir }
    }

    /// The sandbox's folder.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The deployment's folder.
    pub fn work(&self) -> PathBuf {
        self.path().join("work")
    }

    /// Where archives go.
    pub fn storage(&self) -> PathBuf {
        self.path().join("storage")
    }

    /// The config file.
    pub fn config_path(&self) -> PathBuf {
        self.path().join("hooks.toml")
    }

    /// Writes `hooks.toml`: a `[runner]` table for this sandbox followed by `hooks`.
    pub fn config(&self, hooks: &str) {
        self.raw_config(&format!(
            "[runner]\nwork_dir = \"work\"\nstorage_dir = \"storage\"\ncatalog = \"catalog.db\"\n\n{hooks}"
        ));
    }

    /// Writes `hooks.toml` exactly as given.
    pub fn raw_config(&self, text: &str) {
        std::fs::write(self.config_path(), text).unwrap();
    }

    /// Writes a file under `work/` with the given mode, creating folders.
    pub fn file(&self, relative: &str, content: &[u8], mode: u32) -> PathBuf {
        let path = self.work().join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, content).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    /// A hookrun command in this sandbox, not yet run.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(hookrun_bin());
        command
            .arg("--config")
            .arg(self.config_path())
            .args(args)
            .current_dir(self.path());
        command.env_remove("RUST_LOG");
        command
    }

    /// Runs hookrun with `args` and waits for it.
    pub fn run(&self, args: &[&str]) -> Run {
        Run::from_output(self.command(args).output().expect("hookrun runs"))
    }

    /// Runs hookrun with `args` and returns what it did and its peak resident memory in KiB (from `wait4`).
    #[allow(
        clippy::zombie_processes,
        reason = "the child is reaped by wait4, which also gives its rusage"
    )]
    pub fn run_measured(&self, args: &[&str]) -> (Run, u64) {
        let out = self.path().join(".measured.stdout");
        let err = self.path().join(".measured.stderr");
        let mut command = self.command(args);
        command
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(&err).unwrap());
        let child = command.spawn().expect("hookrun runs");
        let (mut status, mut usage) = (0, unsafe { std::mem::zeroed::<libc::rusage>() });
        let waited = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
        assert_eq!(waited, child.id() as i32, "wait4");
        let code = if libc::WIFEXITED(status) {
            libc::WEXITSTATUS(status)
        } else {
            -1
        };
        let run = Run {
            code,
            stdout: std::fs::read_to_string(out).unwrap_or_default(),
            stderr: std::fs::read_to_string(err).unwrap_or_default(),
        };
        (run, usage.ru_maxrss as u64)
    }

    /// Runs a prepared command and waits for it.
    pub fn run_command(&self, mut command: Command) -> Run {
        Run::from_output(command.output().expect("hookrun runs"))
    }

    /// The catalog hookrun wrote, opened read-only.
    pub fn catalog(&self) -> rusqlite::Connection {
        rusqlite::Connection::open_with_flags(
            self.path().join("catalog.db"),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .expect("catalog exists")
    }

    /// The one value `sql` selects from the catalog, e.g. `"SELECT status FROM runs"`.
    pub fn catalog_value<T: rusqlite::types::FromSql>(&self, sql: &str) -> T {
        self.catalog()
            .query_row(sql, [], |r| r.get(0))
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// Every file name in storage, sorted, hidden ones (temporary files, staging) included.
    pub fn storage_files(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.storage())
            .map(|entries| {
                entries
                    .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }

    /// The archives in storage, `.tar.gz` and `.tar.zst`.
    pub fn archives(&self) -> Vec<PathBuf> {
        self.storage_files()
            .into_iter()
            .filter(|n| (n.ends_with(".tar.gz") || n.ends_with(".tar.zst")) && !n.starts_with('.'))
            .map(|n| self.storage().join(n))
            .collect()
    }

    /// Storage entries that are neither archives, the staging folder, the lock file nor catalog files: what a
    /// failed run must not leave behind.
    pub fn leftovers(&self) -> Vec<String> {
        // The staging folder's own entry and the lock file (it stays: the lock is the flock on it) are not leftovers.
        let mut left: Vec<String> = self
            .storage_files()
            .into_iter()
            .filter(|n| n != ".staging" && n != ".hookrun.lock")
            .collect();
        let staging = self.storage().join(".staging");
        if let Ok(entries) = std::fs::read_dir(&staging) {
            left.extend(entries.map(|e| format!(".staging/{}", e.unwrap().file_name().to_string_lossy())));
        }
        left
    }
}

/// SHA-256 of a file, streamed, lowercase hex.
pub fn sha256_file(path: &Path) -> String {
    let mut file = std::fs::File::open(path).unwrap();
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher).unwrap();
    hex::encode(hasher.finalize())
}

/// Runs a shell command line and returns its stdout, failing the test when it fails.
pub fn sh(script: &str) -> String {
    let output = Command::new("sh").arg("-c").arg(script).output().expect("sh runs");
    assert!(
        output.status.success(),
        "`{script}` failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The parts of a `backups` row that tests look at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupRecord {
    pub status: String,
    pub error: Option<String>,
    pub path: Option<String>,
    pub sha256: Option<String>,
}

/// The `backups` table, oldest first.
pub fn backup_rows(catalog: &rusqlite::Connection) -> Vec<BackupRecord> {
    let mut stmt = catalog
        .prepare("SELECT status, error, path, sha256 FROM backups ORDER BY id")
        .unwrap();
    stmt.query_map([], |r| {
        Ok(BackupRecord {
            status: r.get(0)?,
            error: r.get(1)?,
            path: r.get(2)?,
            sha256: r.get(3)?,
        })
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

/// What a tree holds, entry by entry, for byte-for-byte comparison: kind, permission bits, mtime (seconds),
/// content hash, symlink target.
pub fn tree_manifest(root: &Path) -> std::collections::BTreeMap<PathBuf, String> {
    use std::os::unix::fs::MetadataExt;
    let mut manifest = std::collections::BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            let relative = path.strip_prefix(root).unwrap().to_path_buf();
            let mode = meta.mode() & 0o7777;
            let description = if meta.file_type().is_symlink() {
                format!("symlink -> {}", std::fs::read_link(&path).unwrap().display())
            } else if meta.is_dir() {
                stack.push(path.clone());
                format!("dir {mode:o} mtime {}", meta.mtime())
            } else {
                format!("file {mode:o} mtime {} sha256 {}", meta.mtime(), sha256_file(&path))
            };
            manifest.insert(relative, description);
        }
    }
    manifest
}

/// Builds `examples/<name>` for wasm32-wasip1 (release, into this workspace's target dir) and returns its module.
pub fn build_wasm_example(name: &str) -> PathBuf {
    build_wasm(&format!("examples/{name}"), name)
}

/// Builds the crate or workspace at `dir` (relative to the workspace root) for wasm32-wasip1 and returns the module
/// of its binary `name`.
pub fn build_wasm(dir: &str, name: &str) -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf();
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| workspace.join("target"), PathBuf::from);
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let output = Command::new(cargo)
        .args(["build", "--quiet", "--release", "--target", "wasm32-wasip1"])
        .current_dir(workspace.join(dir))
        .env("CARGO_TARGET_DIR", &target)
        .output()
        .expect("cargo runs");
    assert!(
        output.status.success(),
        "building {dir} for wasm32-wasip1 failed (`rustup target add wasm32-wasip1`?):\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    target.join("wasm32-wasip1/release").join(format!("{name}.wasm"))
}

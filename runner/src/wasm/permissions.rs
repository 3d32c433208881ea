//! A WASM hook's `permissions` table: what its sandbox is given (folders, environment variables) and which
//! programs it may run in which services. Deny by default: what is not listed does not exist for the hook.
//!
//! ```toml
//! [hook.permissions]
//! read = ["data/uploads"]          # preopened read-only; relative: against the work dir
//! write = ["/var/tmp/app-export"]  # preopened read-write
//! env = ["TZ"]                     # copied from hookrun's environment when set
//! exec = [{ service = "db", programs = ["pg_dump"] }]
//! ```
//!
//! Folders and variables are enforced by construction: the sandbox ([`Permissions::sandbox`]) holds only what is
//! listed, plus the hook's own artifact folder. Requests over the ABI are decided in one place,
//! [`Permissions::authorize`], an exhaustive match over every request kind with no catch-all arm.
//!
//! # Paths: one rule, the work dir
//!
//! A relative folder in `read`/`write` is resolved against the work dir (`[runner] work_dir`), and inside the hook a
//! relative path means the same: the hook sees each granted folder at its absolute path and, when it is under the
//! work dir, also at its path relative to the work dir (`data/uploads`, or `.` for the work dir itself). This
//! works because WASI preview 1 resolves paths inside the guest: wasi-libc's current directory is `/`, and it
//! matches a path against the preopened folders' names with leading `/` (and `./`) dropped from both, the longest
//! match winning. So `/data` and `data` are one name inside a hook, and a table where two grants would share a name
//! (or one would hide part of another, `/artifacts` included) is refused. Granting the work dir itself (`.`) makes
//! it what relative paths fall back to when no other granted folder's path matches them.

use std::collections::BTreeSet;
use std::ops::Range;
use std::path::{Component, Path, PathBuf};

use hookrun_sdk::abi::{
    validate_artifact_path, validate_output, ErrorKind, HostError, Request, StdoutTarget, GUEST_ARTIFACT_DIR,
};

use crate::config::{Located, LocatedKey, Node};

/// What one WASM hook may see and do beyond its own artifact folder.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Permissions {
    /// Folders preopened read-only (absolute, normalized).
    pub read: Vec<PathBuf>,
    /// Folders preopened read-write (absolute, normalized).
    pub write: Vec<PathBuf>,
    /// Environment variables passed through by name.
    pub env: Vec<String>,
    /// Programs the hook may run, per Compose service.
    pub exec: Vec<ExecGrant>,
    /// The work dir (absolute, normalized): granted folders under it are also seen at their path relative to it.
    /// `None`: at their absolute paths only.
    pub work_dir: Option<PathBuf>,
}

/// Programs a hook may run in one service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecGrant {
    /// The Compose service.
    pub service: String,
    /// Programs, matched exactly against `argv[0]`.
    pub programs: Vec<String>,
}

/// A folder the sandbox is given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preopen {
    /// The folder on the host.
    pub host: PathBuf,
    /// Where the hook sees it.
    pub guest: String,
    /// Whether the hook may create, change and remove files in it.
    pub writable: bool,
}

/// A mistake in a `permissions` table: one line naming the key, and where it is in the file when known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantError {
    pub span: Option<Range<usize>>,
    pub message: String,
}

const KEYS: &str = "read, write, env, exec";

impl Permissions {
    /// Reads a `permissions` table; relative folders are resolved against `work_dir`. Errors are one line naming
    /// the offending key. Folders are not looked for on disk (see [`Permissions::check_dirs`]).
    pub fn from_toml(value: &toml::Value, work_dir: &Path) -> Result<Permissions, String> {
        Self::from_located(&Located::from(value), work_dir, false).map_err(|e| e.message)
    }

    /// Reads a `permissions` table as written in `hooks.toml`; each error carries the place of the key or value
    /// concerned. Relative folders are resolved against `work_dir`; with `must_exist`, each granted folder must be
    /// one now.
    pub(crate) fn from_located(value: &Located, work_dir: &Path, must_exist: bool) -> Result<Permissions, GrantError> {
        let Node::Table(entries) = &value.node else {
            return Err(error(
                value,
                format!("permissions: expected a table, found {}", value.node.type_str()),
            ));
        };
        let work_dir = normalize(work_dir);
        let (mut read, mut write) = (Vec::new(), Vec::new());
        let mut permissions = Permissions {
            work_dir: Some(work_dir.clone()),
            ..Permissions::default()
        };
        for (key, value) in entries {
            match key.name.as_str() {
                "read" => read = dirs("permissions.read", value, &work_dir, must_exist)?,
                "write" => write = dirs("permissions.write", value, &work_dir, must_exist)?,
                "env" => permissions.env = env_names(value)?,
                "exec" => permissions.exec = exec_grants(value)?,
                other => {
                    return Err(key_error(
                        key,
                        value,
                        format!("permissions: unknown key `{other}` (known keys: {KEYS})"),
                    ))
                }
            }
        }
        if let Some(both) = write.iter().find(|w| read.iter().any(|r| r.path == w.path)) {
            return Err(GrantError {
                span: both.span.clone(),
                message: format!(
                    "permissions: `{}` is in both read and write; list it once (write allows reading)",
                    both.path.display()
                ),
            });
        }
        check_overlaps(&read, &write, &work_dir)?;
        permissions.read = read.into_iter().map(|g| g.path).collect();
        permissions.write = write.into_iter().map(|g| g.path).collect();
        Ok(permissions)
    }

    /// Decides a request made over the ABI. This is the one place where a request is allowed or refused: every
    /// kind of request has its own arm, so a new kind cannot be added without deciding it here.
    pub fn authorize(&self, request: &Request) -> Result<(), HostError> {
        match request {
            // A hook may always learn its own context, log (bounded by the host), and say why it fails.
            Request::Context => Ok(()),
            Request::Log { .. } => Ok(()),
            Request::Fail { .. } => Ok(()),
            // Outputs only land in the hook's own slot; their names and sizes are bounded.
            Request::SetOutput { key, value } => validate_output(key, value).map_err(invalid),
            Request::Exec(exec) => {
                let Some(program) = exec.argv.first() else {
                    return Err(invalid("exec needs a program (argv is empty)".to_string()));
                };
                match &exec.stdout {
                    StdoutTarget::Artifact { path } => validate_artifact_path(path).map_err(invalid)?,
                    StdoutTarget::Capture | StdoutTarget::Discard => {}
                }
                let grant = self.exec.iter().find(|g| g.service == exec.service);
                match grant {
                    Some(grant) if grant.programs.iter().any(|p| p == program) => Ok(()),
                    Some(grant) => Err(denied(format!(
                        "may not run `{program}` in service `{}` (permissions.exec grants there: {})",
                        exec.service,
                        grant.programs.join(", ")
                    ))),
                    None => Err(denied(format!(
                        "may not run programs in service `{}` (permissions.exec grants {})",
                        exec.service,
                        self.granted_services()
                    ))),
                }
            }
        }
    }

    /// The folders the sandbox holds: the hook's artifact folder (writable, at [`GUEST_ARTIFACT_DIR`]), then the
    /// granted ones at their host paths, each one under the work dir also at its path relative to the work dir.
    /// Nothing else is preopened.
    pub fn sandbox(&self, artifact_dir: &Path) -> Vec<Preopen> {
        let granted = |dirs: &[PathBuf], writable: bool| {
            let mut preopens = Vec::new();
            for dir in dirs {
                preopens.push(Preopen {
                    host: dir.clone(),
                    guest: dir.to_string_lossy().into_owned(),
                    writable,
                });
                if let Some(relative) = self.work_dir.as_deref().and_then(|w| relative_name(w, dir)) {
                    preopens.push(Preopen {
                        host: dir.clone(),
                        guest: relative,
                        writable,
                    });
                }
            }
            preopens
        };
        let mut preopens = vec![Preopen {
            host: artifact_dir.to_path_buf(),
            guest: GUEST_ARTIFACT_DIR.to_string(),
            writable: true,
        }];
        preopens.extend(granted(&self.read, false));
        preopens.extend(granted(&self.write, true));
        preopens
    }

    /// What to add to a failure that carries WASI's ENOENT, `os error 44`: inside the sandbox a path that is not
    /// granted does not exist, so it fails as a missing file would (wasi-libc matches paths against the granted
    /// folders inside the guest; the host never sees the path). One line naming what this hook was granted and how
    /// to grant more.
    pub fn not_granted_hint(&self) -> String {
        let list = |dirs: &[PathBuf]| {
            if dirs.is_empty() {
                "none".to_string()
            } else {
                dirs.iter()
                    .map(|d| d.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        };
        format!(
            "(in the sandbox a path that is not granted does not exist: this hook has {GUEST_ARTIFACT_DIR}, \
             permissions.read: {}, permissions.write: {}; to reach another folder, add it to `read` or `write` \
             under [hook.permissions] in hooks.toml)",
            list(&self.read),
            list(&self.write)
        )
    }

    /// The granted variables that are set in `lookup`'s world (hookrun's environment), in order.
    pub fn environment(&self, lookup: impl Fn(&str) -> Option<String>) -> Vec<(String, String)> {
        self.env
            .iter()
            .filter_map(|name| lookup(name).map(|value| (name.clone(), value)))
            .collect()
    }

    /// Problems with the granted folders as the host is now (missing, not a folder), for `hooks check`.
    pub fn check_dirs(&self) -> Result<(), String> {
        for (key, dirs) in [("read", &self.read), ("write", &self.write)] {
            for dir in dirs {
                match std::fs::metadata(dir) {
                    Ok(meta) if meta.is_dir() => {}
                    Ok(_) => return Err(format!("permissions.{key}: `{}` is not a folder", dir.display())),
                    Err(e) => return Err(format!("permissions.{key}: `{}`: {e}", dir.display())),
                }
            }
        }
        Ok(())
    }

    fn granted_services(&self) -> String {
        if self.exec.is_empty() {
            "none".to_string()
        } else {
            self.exec
                .iter()
                .map(|g| format!("`{}`", g.service))
                .collect::<Vec<_>>()
                .join(", ")
        }
    }
}

fn denied(message: String) -> HostError {
    HostError {
        kind: ErrorKind::Denied,
        message,
    }
}

fn invalid(message: String) -> HostError {
    HostError {
        kind: ErrorKind::Invalid,
        message,
    }
}

/// An error at `value`.
fn error(value: &Located, message: String) -> GrantError {
    GrantError {
        span: value.span.clone(),
        message,
    }
}

/// An error at `key` (at its value when the key has no place).
fn key_error(key: &LocatedKey, value: &Located, message: String) -> GrantError {
    GrantError {
        span: key.span.clone().or_else(|| value.span.clone()),
        message,
    }
}

fn array<'v>(key: &str, value: &'v Located) -> Result<&'v [Located], GrantError> {
    match &value.node {
        Node::Array(items) => Ok(items),
        other => Err(error(
            value,
            format!("{key}: expected an array, found {}", other.type_str()),
        )),
    }
}

fn string<'v>(key: &str, value: &'v Located) -> Result<&'v str, GrantError> {
    match &value.node {
        Node::String(s) => Ok(s),
        other => Err(error(
            value,
            format!("{key}: expected a string, found {}", other.type_str()),
        )),
    }
}

/// A granted folder while the table is read: where it is, which entry granted it, and that entry's place.
#[derive(Debug)]
struct Grant {
    path: PathBuf,
    key: String,
    span: Option<Range<usize>>,
}

fn dirs(key: &str, value: &Located, work_dir: &Path, must_exist: bool) -> Result<Vec<Grant>, GrantError> {
    let mut out: Vec<Grant> = Vec::new();
    for (i, item) in array(key, value)?.iter().enumerate() {
        let key = format!("{key}[{i}]");
        let raw = string(&key, item)?;
        if raw.is_empty() {
            return Err(error(item, format!("{key}: empty path")));
        }
        let path = normalize(&work_dir.join(raw));
        if path == Path::new(GUEST_ARTIFACT_DIR) || path.starts_with(GUEST_ARTIFACT_DIR) {
            return Err(error(
                item,
                format!(
                    "{key}: `{}` is where the hook sees its artifact folder; grant another folder",
                    path.display()
                ),
            ));
        }
        if path.to_str().is_none() {
            return Err(error(item, format!("{key}: `{}` is not valid UTF-8", path.display())));
        }
        if must_exist {
            match std::fs::metadata(&path) {
                Ok(meta) if meta.is_dir() => {}
                Ok(_) => return Err(error(item, format!("{key}: `{}` is not a folder", path.display()))),
                Err(e) => return Err(error(item, format!("{key}: `{}`: {e}", path.display()))),
            }
        }
        if !out.iter().any(|g| g.path == path) {
            out.push(Grant {
                path,
                key,
                span: item.span.clone(),
            });
        }
    }
    Ok(out)
}

/// `path` with `.` and `..` resolved lexically (symlinks are left to the sandbox, which does not follow them out).
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// The name `dir` also gets inside the hook: its path relative to `work_dir` (`.` for the work dir itself), or
/// `None` when it is not under the work dir or that name is already its absolute path's (the work dir is `/`).
fn relative_name(work_dir: &Path, dir: &Path) -> Option<String> {
    let relative = dir.strip_prefix(work_dir).ok()?;
    let name = if relative.as_os_str().is_empty() {
        ".".to_string()
    } else {
        relative.to_str()?.to_string()
    };
    (guest_key(&name) != guest_key(dir.to_str()?)).then_some(name)
}

/// What wasi-libc matches a preopened folder's name (or a path) by: the name without its leading `/`, `./` and a
/// lone `.` (so `/data`, `./data` and `data` are one name, and the work dir's `.` is the empty name).
fn guest_key(name: &str) -> &str {
    let mut rest = name;
    loop {
        if let Some(r) = rest.strip_prefix('/') {
            rest = r;
        } else if let Some(r) = rest.strip_prefix("./") {
            rest = r;
        } else if rest == "." {
            rest = "";
        } else {
            return rest;
        }
    }
}

/// One name the sandbox will have, for [`check_overlaps`].
struct GuestName<'g> {
    /// As wasi-libc matches it.
    key: String,
    /// The folder on the host (`None`: the hook's artifact folder).
    host: Option<&'g Path>,
    /// How the name is shown: `/data` or `data`.
    shown: String,
    /// The entry that granted it (`None`: the artifact folder).
    grant: Option<&'g Grant>,
}

impl GuestName<'_> {
    fn describe(&self) -> String {
        match self.grant {
            None => "the hook's artifact folder".to_string(),
            Some(grant) if self.shown.starts_with('/') => grant.key.clone(),
            Some(grant) => format!("{}, its path relative to the work dir", grant.key),
        }
    }
}

/// Refuses grants that would share a name inside the hook, or of which one would hide part of another: two names
/// where one is the other or a folder in it, unless they reach the same folder on the host. The work dir's own
/// name (`.`, the empty name) is exempt: it is what relative paths fall back to.
fn check_overlaps(read: &[Grant], write: &[Grant], work_dir: &Path) -> Result<(), GrantError> {
    let mut names = vec![GuestName {
        key: guest_key(GUEST_ARTIFACT_DIR).to_string(),
        host: None,
        shown: GUEST_ARTIFACT_DIR.to_string(),
        grant: None,
    }];
    for grant in read.iter().chain(write) {
        let absolute = grant.path.to_string_lossy().into_owned();
        names.push(GuestName {
            key: guest_key(&absolute).to_string(),
            host: Some(&grant.path),
            shown: absolute,
            grant: Some(grant),
        });
        if let Some(relative) = relative_name(work_dir, &grant.path) {
            names.push(GuestName {
                key: guest_key(&relative).to_string(),
                host: Some(&grant.path),
                shown: relative,
                grant: Some(grant),
            });
        }
    }
    for (j, later) in names.iter().enumerate() {
        for earlier in &names[..j] {
            let (outer, inner) = if later.key.len() >= earlier.key.len() {
                (earlier, later)
            } else {
                (later, earlier)
            };
            if outer.key.is_empty() {
                continue;
            }
            let Some(rest) = inner.key.strip_prefix(outer.key.as_str()) else {
                continue;
            };
            if !(rest.is_empty() || rest.starts_with('/')) {
                continue;
            }
            let rest = rest.trim_start_matches('/');
            let lines_up = match (outer.host, inner.host) {
                (Some(outer_host), Some(inner_host)) => inner_host == outer_host.join(rest),
                _ => false,
            };
            if lines_up {
                continue;
            }
            let Some(grant) = later.grant else { continue };
            // The entry reported is `later`'s; `earlier` is named with what granted it.
            let later_shown = if later.shown.starts_with('/') {
                format!("`{}`", later.shown)
            } else {
                format!("`{}` (its path relative to the work dir)", later.shown)
            };
            let earlier_shown = format!("`{}` ({})", earlier.shown, earlier.describe());
            let message = if rest.is_empty() {
                format!(
                    "{}: {later_shown} and {earlier_shown} are the same path inside the hook, where a leading `/` \
                     does not count (WASI); grant folders whose paths differ",
                    grant.key
                )
            } else {
                let (inner_shown, outer_shown) = if std::ptr::eq(inner, later) {
                    (later_shown, earlier_shown)
                } else {
                    (earlier_shown, later_shown)
                };
                format!(
                    "{}: inside the hook {inner_shown} would hide part of {outer_shown}, as paths are matched there \
                     without their leading `/` (WASI); grant folders whose paths do not overlap",
                    grant.key
                )
            };
            return Err(GrantError {
                span: grant.span.clone(),
                message,
            });
        }
    }
    Ok(())
}

fn env_names(value: &Located) -> Result<Vec<String>, GrantError> {
    let mut out = Vec::new();
    for (i, item) in array("permissions.env", value)?.iter().enumerate() {
        let key = format!("permissions.env[{i}]");
        let name = string(&key, item)?;
        let valid = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(error(
                item,
                format!("{key}: `{name}` is not a variable name (letters, digits and `_`, not starting with a digit)"),
            ));
        }
        if !out.iter().any(|n| n == name) {
            out.push(name.to_string());
        }
    }
    Ok(out)
}

fn exec_grants(value: &Located) -> Result<Vec<ExecGrant>, GrantError> {
    let mut out: Vec<ExecGrant> = Vec::new();
    for (i, item) in array("permissions.exec", value)?.iter().enumerate() {
        let key = format!("permissions.exec[{i}]");
        let Node::Table(table) = &item.node else {
            return Err(error(
                item,
                format!(
                    "{key}: expected a table like {{ service = \"db\", programs = [\"pg_dump\"] }}, found {}",
                    item.node.type_str()
                ),
            ));
        };
        let mut service = None;
        let mut programs = None;
        for (field, value) in table {
            match field.name.as_str() {
                "service" => {
                    let key = format!("{key}.service");
                    let name = string(&key, value)?;
                    if name.is_empty() {
                        return Err(error(value, format!("{key}: empty service name")));
                    }
                    service = Some(name.to_string());
                }
                "programs" => {
                    let key = format!("{key}.programs");
                    let mut names = BTreeSet::new();
                    for (j, program) in array(&key, value)?.iter().enumerate() {
                        let key = format!("{key}[{j}]");
                        let name = string(&key, program)?;
                        if name.is_empty() || name.chars().any(char::is_whitespace) {
                            return Err(error(
                                program,
                                format!(
                                    "{key}: `{name}` is not a program name (one word, no spaces; arguments are not part of it)"
                                ),
                            ));
                        }
                        names.insert(name.to_string());
                    }
                    if names.is_empty() {
                        return Err(error(value, format!("{key}: name at least one program")));
                    }
                    programs = Some(names.into_iter().collect::<Vec<_>>());
                }
                other => {
                    return Err(key_error(
                        field,
                        value,
                        format!("{key}: unknown key `{other}` (known keys: service, programs)"),
                    ))
                }
            }
        }
        let service = service.ok_or_else(|| error(item, format!("{key}: missing `service`")))?;
        let programs = programs.ok_or_else(|| error(item, format!("{key}: missing `programs`")))?;
        match out.iter_mut().find(|g| g.service == service) {
            Some(existing) => {
                for p in programs {
                    if !existing.programs.contains(&p) {
                        existing.programs.push(p);
                    }
                }
            }
            None => out.push(ExecGrant { service, programs }),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hookrun_sdk::abi::ExecRequest;

    fn parse(text: &str) -> Result<Permissions, String> {
        let value: toml::Value = toml::from_str(text).unwrap();
        Permissions::from_toml(&value, Path::new("/srv/app"))
    }

    fn exec(service: &str, program: &str) -> Request {
        Request::Exec(ExecRequest {
            service: service.into(),
            argv: vec![program.into(), "--help".into()],
            stdout: StdoutTarget::Discard,
        })
    }

    #[test]
    fn an_empty_table_grants_nothing() {
        let p = parse("").unwrap();
        assert_eq!(
            p,
            Permissions {
                work_dir: Some("/srv/app".into()),
                ..Permissions::default()
            }
        );
        assert_eq!(
            p.sandbox(Path::new("/staging/hooks/x")),
            vec![Preopen {
                host: "/staging/hooks/x".into(),
                guest: "/artifacts".into(),
                writable: true
            }]
        );
        assert!(p.environment(|_| Some("v".into())).is_empty());
        let err = p.authorize(&exec("db", "pg_dump")).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Denied);
        assert!(err.message.contains("grants none"), "{}", err.message);
    }

    #[test]
    fn folders_resolve_against_the_work_dir_and_keep_their_access() {
        let p = parse(
            r#"read = ["data", "/etc/app/../app"]
write = ["out/./x"]"#,
        )
        .unwrap();
        assert_eq!(p.read, [PathBuf::from("/srv/app/data"), "/etc/app".into()]);
        assert_eq!(p.write, [PathBuf::from("/srv/app/out/x")]);
        let sandbox = p.sandbox(Path::new("/a"));
        let seen: Vec<_> = sandbox
            .iter()
            .map(|p| (p.guest.as_str(), p.host.as_path(), p.writable))
            .collect();
        assert_eq!(
            seen,
            [
                ("/artifacts", Path::new("/a"), true),
                ("/srv/app/data", Path::new("/srv/app/data"), false),
                ("data", Path::new("/srv/app/data"), false),
                ("/etc/app", Path::new("/etc/app"), false),
                ("/srv/app/out/x", Path::new("/srv/app/out/x"), true),
                ("out/x", Path::new("/srv/app/out/x"), true),
            ]
        );
    }

    #[test]
    fn a_folder_under_the_work_dir_is_also_seen_at_its_relative_path() {
        let p = parse(r#"read = [".", "/srv/app/config"]"#).unwrap();
        let guests: Vec<_> = p.sandbox(Path::new("/a")).into_iter().map(|p| p.guest).collect();
        assert_eq!(guests, ["/artifacts", "/srv/app", ".", "/srv/app/config", "config"]);
        // With the work dir at `/`, the relative name is the absolute one inside the hook: one entry.
        let value: toml::Value = toml::from_str(r#"read = ["data"]"#).unwrap();
        let p = Permissions::from_toml(&value, Path::new("/")).unwrap();
        let guests: Vec<_> = p.sandbox(Path::new("/a")).into_iter().map(|p| p.guest).collect();
        assert_eq!(guests, ["/artifacts", "/data"]);
    }

    #[test]
    fn grants_that_would_share_or_hide_a_name_inside_the_hook_are_refused() {
        let cases = [
            (
                r#"read = ["data", "/data"]"#,
                "permissions.read[1]: `/data` and `data` (permissions.read[0], its path relative to the work dir) \
                 are the same path inside the hook",
            ),
            (
                r#"read = ["artifacts"]"#,
                "permissions.read[0]: `artifacts` (its path relative to the work dir) and `/artifacts` (the hook's \
                 artifact folder) are the same path inside the hook",
            ),
            (
                r#"write = ["artifacts/db"]"#,
                "permissions.write[0]: inside the hook `artifacts/db` (its path relative to the work dir) would \
                 hide part of `/artifacts` (the hook's artifact folder)",
            ),
            (
                r#"read = ["/data"]
write = ["data/x"]"#,
                "permissions.write[0]: inside the hook `data/x` (its path relative to the work dir) would hide part \
                 of `/data` (permissions.read[0])",
            ),
        ];
        for (text, expected) in cases {
            let err = parse(text).unwrap_err();
            assert!(err.starts_with(expected), "{text}:\n{err}\n{expected}");
            assert!(!err.contains('\n'), "{err}");
        }
        // Nested folders that line up on the host, and the work dir itself, are fine.
        parse(
            r#"read = ["data", "."]
write = ["data/out", "/srv/app/data/tmp"]"#,
        )
        .unwrap();
    }

    #[test]
    fn each_mistake_carries_the_place_of_its_key_or_value() {
        let text = r#"[permissions]
read = ["data", 7]
exec = [{ service = "db", programs = ["pg_dump"], user = "root" }, { programs = ["x"] }]
network = true
"#;
        #[derive(serde::Deserialize)]
        struct File {
            permissions: Located,
        }
        let place = |text: &str| {
            let file: File = toml::from_str(text).unwrap();
            let e = Permissions::from_located(&file.permissions, Path::new("/srv/app"), false).unwrap_err();
            (text[e.span.clone().expect("a place")].to_string(), e.message)
        };
        let (at, message) = place(text);
        assert_eq!(at, "7", "{message}");
        assert!(
            message.starts_with("permissions.read[1]: expected a string"),
            "{message}"
        );
        let (at, message) = place(&text.replace(", 7", ""));
        assert_eq!(at, "user", "{message}");
        let (at, message) = place(&text.replace(", 7", "").replace(r#", user = "root""#, ""));
        assert_eq!(at, r#"{ programs = ["x"] }"#, "{message}");
        assert!(message.contains("permissions.exec[1]: missing `service`"), "{message}");
        let fixed = text
            .replace(", 7", "")
            .replace(r#", user = "root""#, "")
            .replace(r#", { programs = ["x"] }"#, "");
        let (at, message) = place(&fixed);
        assert_eq!(at, "network", "{message}");
    }

    #[test]
    fn a_granted_folder_that_is_not_there_is_refused_at_its_entry_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("data")).unwrap();
        std::fs::write(dir.path().join("file"), b"").unwrap();
        let located = |text: &str| Located::from(&toml::from_str::<toml::Value>(text).unwrap());
        let table = located(r#"read = ["data", "missing"]"#);
        assert!(Permissions::from_located(&table, dir.path(), false).is_ok());
        let e = Permissions::from_located(&table, dir.path(), true).unwrap_err();
        assert!(e.message.starts_with("permissions.read[1]: `"), "{}", e.message);
        assert!(e.message.contains("No such file or directory"), "{}", e.message);
        let e = Permissions::from_located(&located(r#"write = ["file"]"#), dir.path(), true).unwrap_err();
        assert!(e.message.ends_with("/file` is not a folder"), "{}", e.message);
    }

    #[test]
    fn only_granted_variables_pass_and_only_when_set() {
        let p = parse(r#"env = ["TZ", "MISSING"]"#).unwrap();
        let env = p.environment(|name| (name != "MISSING").then(|| format!("{name}-value")));
        assert_eq!(env, [("TZ".to_string(), "TZ-value".to_string())]);
    }

    #[test]
    fn exec_is_allowed_only_for_a_granted_program_in_a_granted_service() {
        let p = parse(r#"exec = [{ service = "db", programs = ["pg_dump"] }]"#).unwrap();
        assert!(p.authorize(&exec("db", "pg_dump")).is_ok());

        let wrong_program = p.authorize(&exec("db", "psql")).unwrap_err();
        assert_eq!(wrong_program.kind, ErrorKind::Denied);
        assert_eq!(
            wrong_program.message,
            "may not run `psql` in service `db` (permissions.exec grants there: pg_dump)"
        );

        let wrong_service = p.authorize(&exec("web", "pg_dump")).unwrap_err();
        assert_eq!(wrong_service.kind, ErrorKind::Denied);
        assert!(wrong_service.message.contains("service `web`"));

        // A path to the same program is a different program: matching is exact.
        assert!(p.authorize(&exec("db", "/usr/bin/pg_dump")).is_err());
    }

    #[test]
    fn exec_stdout_cannot_leave_the_artifact_folder() {
        let p = parse(r#"exec = [{ service = "db", programs = ["pg_dump"] }]"#).unwrap();
        let request = Request::Exec(ExecRequest {
            service: "db".into(),
            argv: vec!["pg_dump".into()],
            stdout: StdoutTarget::Artifact {
                path: "../../etc/cron.d/x".into(),
            },
        });
        assert_eq!(p.authorize(&request).unwrap_err().kind, ErrorKind::Invalid);
    }

    #[test]
    fn outputs_are_bounded() {
        let p = Permissions::default();
        let ok = Request::SetOutput {
            key: "bytes".into(),
            value: "1".into(),
        };
        let bad = Request::SetOutput {
            key: "no spaces".into(),
            value: "1".into(),
        };
        assert!(p.authorize(&ok).is_ok());
        assert!(p.authorize(&bad).is_err());
    }

    #[test]
    fn mistakes_are_reported_with_the_key_that_holds_them() {
        let cases = [
            ("network = true", "permissions: unknown key `network`"),
            ("read = \"data\"", "permissions.read: expected an array"),
            ("read = [1]", "permissions.read[0]: expected a string"),
            ("read = [\"/artifacts\"]", "permissions.read[0]: `/artifacts` is where"),
            ("env = [\"A B\"]", "permissions.env[0]: `A B` is not a variable name"),
            ("exec = [\"db\"]", "permissions.exec[0]: expected a table"),
            (
                "exec = [{ programs = [\"x\"] }]",
                "permissions.exec[0]: missing `service`",
            ),
            (
                "exec = [{ service = \"db\" }]",
                "permissions.exec[0]: missing `programs`",
            ),
            (
                "exec = [{ service = \"db\", programs = [] }]",
                "permissions.exec[0].programs: name at least one program",
            ),
            (
                "exec = [{ service = \"db\", programs = [\"sh -c\"] }]",
                "permissions.exec[0].programs[0]: `sh -c` is not a program name",
            ),
            (
                "exec = [{ service = \"db\", programs = [\"x\"], user = \"root\" }]",
                "permissions.exec[0]: unknown key `user`",
            ),
            ("read = [\"d\"]\nwrite = [\"d\"]", "is in both read and write"),
        ];
        for (text, expected) in cases {
            let err = parse(text).unwrap_err();
            assert!(err.starts_with(expected) || err.contains(expected), "{text}: {err}");
            assert!(!err.contains('\n'), "{text}: not one line: {err}");
        }
    }
}

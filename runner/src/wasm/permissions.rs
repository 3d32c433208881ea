//! A WASM hook's `permissions` table: what its sandbox is given (folders, environment variables) and which
//! programs it may run in which services. Deny by default: what is not listed does not exist for the hook.
//!
//! ```toml
//! [hook.permissions]
//! read = ["data/uploads"]          # preopened read-only, at the same path as on the host
//! write = ["/var/tmp/app-export"]  # preopened read-write
//! env = ["TZ"]                     # copied from hookrun's environment when set
//! exec = [{ service = "db", programs = ["pg_dump"] }]
//! ```
//!
//! Folders and variables are enforced by construction: the sandbox ([`Permissions::sandbox`]) holds only what is
//! listed, plus the hook's own artifact folder. Requests over the ABI are decided in one place,
//! [`Permissions::authorize`], an exhaustive match over every request kind with no catch-all arm.

use std::collections::BTreeSet;
use std::path::{Component, Path, PathBuf};

use hookrun_sdk::abi::{
    validate_artifact_path, validate_output, ErrorKind, HostError, Request, StdoutTarget, GUEST_ARTIFACT_DIR,
};

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

const KEYS: &str = "read, write, env, exec";

impl Permissions {
    /// Reads a `permissions` table; relative folders are resolved against `base_dir` (the folder of `hooks.toml`).
    /// Errors are one line naming the offending key.
    pub fn from_toml(value: &toml::Value, base_dir: &Path) -> Result<Permissions, String> {
        let table = value
            .as_table()
            .ok_or_else(|| format!("permissions: expected a table, found {}", value.type_str()))?;
        let mut permissions = Permissions::default();
        for (key, value) in table {
            match key.as_str() {
                "read" => permissions.read = dirs("permissions.read", value, base_dir)?,
                "write" => permissions.write = dirs("permissions.write", value, base_dir)?,
                "env" => permissions.env = env_names(value)?,
                "exec" => permissions.exec = exec_grants(value)?,
                other => return Err(format!("permissions: unknown key `{other}` (known keys: {KEYS})")),
            }
        }
        if let Some(both) = permissions.read.iter().find(|p| permissions.write.contains(p)) {
            return Err(format!(
                "permissions: `{}` is in both read and write; list it once (write allows reading)",
                both.display()
            ));
        }
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
    /// granted ones at their host paths. Nothing else is preopened.
    pub fn sandbox(&self, artifact_dir: &Path) -> Vec<Preopen> {
        let granted = |dirs: &[PathBuf], writable: bool| {
            dirs.iter()
                .map(|dir| Preopen {
                    host: dir.clone(),
                    guest: dir.to_string_lossy().into_owned(),
                    writable,
                })
                .collect::<Vec<_>>()
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

fn array<'v>(key: &str, value: &'v toml::Value) -> Result<&'v Vec<toml::Value>, String> {
    value
        .as_array()
        .ok_or_else(|| format!("{key}: expected an array, found {}", value.type_str()))
}

fn string<'v>(key: &str, value: &'v toml::Value) -> Result<&'v str, String> {
    value
        .as_str()
        .ok_or_else(|| format!("{key}: expected a string, found {}", value.type_str()))
}

fn dirs(key: &str, value: &toml::Value, base_dir: &Path) -> Result<Vec<PathBuf>, String> {
    let mut out: Vec<PathBuf> = Vec::new();
    for (i, item) in array(key, value)?.iter().enumerate() {
        let key = format!("{key}[{i}]");
        let raw = string(&key, item)?;
        if raw.is_empty() {
            return Err(format!("{key}: empty path"));
        }
        let path = normalize(&base_dir.join(raw));
        if path == Path::new(GUEST_ARTIFACT_DIR) || path.starts_with(GUEST_ARTIFACT_DIR) {
            return Err(format!(
                "{key}: `{}` is where the hook sees its artifact folder; grant another folder",
                path.display()
            ));
        }
        if path.to_str().is_none() {
            return Err(format!("{key}: `{}` is not valid UTF-8", path.display()));
        }
        if !out.contains(&path) {
            out.push(path);
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

fn env_names(value: &toml::Value) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for (i, item) in array("permissions.env", value)?.iter().enumerate() {
        let key = format!("permissions.env[{i}]");
        let name = string(&key, item)?;
        let valid = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(format!(
                "{key}: `{name}` is not a variable name (letters, digits and `_`, not starting with a digit)"
            ));
        }
        if !out.iter().any(|n| n == name) {
            out.push(name.to_string());
        }
    }
    Ok(out)
}

fn exec_grants(value: &toml::Value) -> Result<Vec<ExecGrant>, String> {
    let mut out: Vec<ExecGrant> = Vec::new();
    for (i, item) in array("permissions.exec", value)?.iter().enumerate() {
        let key = format!("permissions.exec[{i}]");
        let table = item.as_table().ok_or_else(|| {
            format!(
                "{key}: expected a table like {{ service = \"db\", programs = [\"pg_dump\"] }}, found {}",
                item.type_str()
            )
        })?;
        let mut service = None;
        let mut programs = None;
        for (field, value) in table {
            match field.as_str() {
                "service" => service = Some(string(&format!("{key}.service"), value)?.to_string()),
                "programs" => {
                    let key = format!("{key}.programs");
                    let mut names = BTreeSet::new();
                    for (j, program) in array(&key, value)?.iter().enumerate() {
                        let key = format!("{key}[{j}]");
                        let program = string(&key, program)?;
                        if program.is_empty() || program.chars().any(char::is_whitespace) {
                            return Err(format!(
                                "{key}: `{program}` is not a program name (one word, no spaces; arguments are not part of it)"
                            ));
                        }
                        names.insert(program.to_string());
                    }
                    if names.is_empty() {
                        return Err(format!("{key}: name at least one program"));
                    }
                    programs = Some(names.into_iter().collect::<Vec<_>>());
                }
                other => return Err(format!("{key}: unknown key `{other}` (known keys: service, programs)")),
            }
        }
        let service = service.ok_or_else(|| format!("{key}: missing `service`"))?;
        if service.is_empty() {
            return Err(format!("{key}.service: empty service name"));
        }
        let programs = programs.ok_or_else(|| format!("{key}: missing `programs`"))?;
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
        assert_eq!(p, Permissions::default());
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
    fn folders_resolve_against_the_config_folder_and_keep_their_access() {
        let p = parse(
            r#"read = ["data", "/etc/app/../app"]
write = ["out/./x"]"#,
        )
        .unwrap();
        assert_eq!(p.read, [PathBuf::from("/srv/app/data"), "/etc/app".into()]);
        assert_eq!(p.write, [PathBuf::from("/srv/app/out/x")]);
        let sandbox = p.sandbox(Path::new("/a"));
        assert_eq!(sandbox.len(), 4);
        assert!(!sandbox[1].writable && sandbox[1].guest == "/srv/app/data");
        assert!(sandbox[3].writable && sandbox[3].guest == "/srv/app/out/x");
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

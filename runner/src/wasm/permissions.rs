//! What a WASM hook's `permissions` table grants, in its sandbox: the folders it is given, the environment variables,
//! and which programs it may run in which services. Deny by default: what is not listed does not exist for the hook.
//! The table is read and checked into [`Permissions`] by `config::permissions`; this module gives it its meaning.
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

use std::path::{Path, PathBuf};

use hookrun_sdk::abi::{
    validate_artifact_path, validate_output, ErrorKind, HostError, Request, StdoutTarget, GUEST_ARTIFACT_DIR,
};

use crate::config::relative_name;
pub use crate::config::{ExecGrant, Permissions};

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

/// What the granted table means in the sandbox: the folders it holds, the variables it passes, the requests it
/// allows. The table itself is read (and checked) in `config::permissions`.
impl Permissions {
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
}

//! A WASM hook's `[hook.permissions]` table, read into [`Permissions`]: the folders its sandbox is given, the
//! environment variables passed through, and which programs it may run in which services. The table is a derived
//! type (`deny_unknown_fields`, every entry spanned); what a type cannot say (paths, names, grants that would
//! collide inside the hook) is checked after, each error at the entry concerned. What the grants *mean* in the
//! sandbox, and the one place requests are decided, is `wasm::permissions`.

use std::collections::BTreeSet;
use std::ops::Range;
use std::path::{Path, PathBuf};

use hookrun_sdk::abi::GUEST_ARTIFACT_DIR;
use serde::Deserialize;
use toml::Spanned;

use super::common::normalize;
use super::de::{from_located, DeError, DeErrorKind};
use super::located::Located;

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

/// A mistake in a `permissions` table: one line naming the key, and where it is in the file when known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantError {
    pub span: Option<Range<usize>>,
    pub message: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPermissions {
    #[serde(default)]
    read: Vec<Spanned<String>>,
    #[serde(default)]
    write: Vec<Spanned<String>>,
    #[serde(default)]
    env: Vec<Spanned<String>>,
    #[serde(default)]
    exec: Vec<Spanned<RawExecGrant>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExecGrant {
    service: Spanned<String>,
    programs: Spanned<Vec<Spanned<String>>>,
}

/// How an exec grant is written, for "expected a table like …".
const EXEC_GRANT_EXAMPLE: &str = "a table like { service = \"db\", programs = [\"pg_dump\"] }";

impl Permissions {
    /// Reads a `permissions` table; relative folders are resolved against `work_dir`. Errors are one line naming
    /// the offending key. Folders are not looked for on disk (see `Permissions::check_dirs`).
    pub fn from_toml(value: &toml::Value, work_dir: &Path) -> Result<Permissions, String> {
        Self::from_located(&Located::from(value), work_dir, false).map_err(|e| e.message)
    }

    /// Reads a `permissions` table as written in `hooks.toml`; each error carries the place of the key or value
    /// concerned. Relative folders are resolved against `work_dir`; with `must_exist`, each granted folder must be
    /// one now.
    pub(crate) fn from_located(value: &Located, work_dir: &Path, must_exist: bool) -> Result<Permissions, GrantError> {
        let raw: RawPermissions = from_located(value).map_err(grant_error)?;
        // A value that did not come from the file has no place: its entries' spans are empty.
        let place = |span: Range<usize>| value.span.as_ref().map(|_| span);
        let work_dir = normalize(work_dir);
        let read = dirs("permissions.read", &raw.read, &work_dir, must_exist, &place)?;
        let write = dirs("permissions.write", &raw.write, &work_dir, must_exist, &place)?;
        let env = env_names(&raw.env, &place)?;
        let exec = exec_grants(&raw.exec, &place)?;
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
        Ok(Permissions {
            read: read.into_iter().map(|g| g.path).collect(),
            write: write.into_iter().map(|g| g.path).collect(),
            env,
            exec,
            work_dir: Some(work_dir),
        })
    }
}

/// A deserialization error worded as `permissions.KEY[INDEX]: …`, at its place.
fn grant_error(e: DeError) -> GrantError {
    let key = e.dotted("permissions");
    let message = match &e.kind {
        DeErrorKind::UnknownKey { key: unknown, expected } => {
            format!("{key}: unknown key `{unknown}` (known keys: {})", expected.join(", "))
        }
        DeErrorKind::Missing(field) => format!("{key}: missing `{field}`"),
        DeErrorKind::InvalidType { found, expected, .. } => {
            let expected = match expected.as_str() {
                "a sequence" => "an array",
                "struct RawExecGrant" => EXEC_GRANT_EXAMPLE,
                other if other.starts_with("struct ") || other == "a map" => "a table",
                other => other,
            };
            format!("{key}: expected {expected}, found {found}")
        }
        DeErrorKind::Custom(message) => format!("{key}: {message}"),
    };
    GrantError { span: e.span, message }
}

/// An error at `item`.
fn error(item: &Spanned<String>, place: &impl Fn(Range<usize>) -> Option<Range<usize>>, message: String) -> GrantError {
    GrantError {
        span: place(item.span()),
        message,
    }
}

/// A granted folder while the table is read: where it is, which entry granted it, and that entry's place.
#[derive(Debug)]
struct Grant {
    path: PathBuf,
    key: String,
    span: Option<Range<usize>>,
}

fn dirs(
    key: &str,
    items: &[Spanned<String>],
    work_dir: &Path,
    must_exist: bool,
    place: &impl Fn(Range<usize>) -> Option<Range<usize>>,
) -> Result<Vec<Grant>, GrantError> {
    let mut out: Vec<Grant> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let key = format!("{key}[{i}]");
        let raw = item.get_ref();
        if raw.is_empty() {
            return Err(error(item, place, format!("{key}: empty path")));
        }
        let path = normalize(&work_dir.join(raw));
        if path == Path::new(GUEST_ARTIFACT_DIR) || path.starts_with(GUEST_ARTIFACT_DIR) {
            return Err(error(
                item,
                place,
                format!(
                    "{key}: `{}` is where the hook sees its artifact folder; grant another folder",
                    path.display()
                ),
            ));
        }
        if path.to_str().is_none() {
            return Err(error(
                item,
                place,
                format!("{key}: `{}` is not valid UTF-8", path.display()),
            ));
        }
        if must_exist {
            match std::fs::metadata(&path) {
                Ok(meta) if meta.is_dir() => {}
                Ok(_) => {
                    return Err(error(
                        item,
                        place,
                        format!("{key}: `{}` is not a folder", path.display()),
                    ))
                }
                Err(e) => return Err(error(item, place, format!("{key}: `{}`: {e}", path.display()))),
            }
        }
        if !out.iter().any(|g| g.path == path) {
            out.push(Grant {
                path,
                key,
                span: place(item.span()),
            });
        }
    }
    Ok(out)
}

fn env_names(
    items: &[Spanned<String>],
    place: &impl Fn(Range<usize>) -> Option<Range<usize>>,
) -> Result<Vec<String>, GrantError> {
    let mut out: Vec<String> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let key = format!("permissions.env[{i}]");
        let name = item.get_ref();
        let valid = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(error(
                item,
                place,
                format!("{key}: `{name}` is not a variable name (letters, digits and `_`, not starting with a digit)"),
            ));
        }
        if !out.iter().any(|n| n == name) {
            out.push(name.clone());
        }
    }
    Ok(out)
}

fn exec_grants(
    items: &[Spanned<RawExecGrant>],
    place: &impl Fn(Range<usize>) -> Option<Range<usize>>,
) -> Result<Vec<ExecGrant>, GrantError> {
    let mut out: Vec<ExecGrant> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let key = format!("permissions.exec[{i}]");
        let grant = item.get_ref();
        let service = grant.service.get_ref();
        if service.is_empty() {
            return Err(error(
                &grant.service,
                place,
                format!("{key}.service: empty service name"),
            ));
        }
        let mut names = BTreeSet::new();
        for (j, program) in grant.programs.get_ref().iter().enumerate() {
            let name = program.get_ref();
            if name.is_empty() || name.chars().any(char::is_whitespace) {
                return Err(error(
                    program,
                    place,
                    format!(
                        "{key}.programs[{j}]: `{name}` is not a program name (one word, no spaces; arguments are not part of it)"
                    ),
                ));
            }
            names.insert(name.clone());
        }
        if names.is_empty() {
            return Err(GrantError {
                span: place(grant.programs.span()),
                message: format!("{key}.programs: name at least one program"),
            });
        }
        match out.iter_mut().find(|g| g.service == *service) {
            Some(existing) => {
                for p in names {
                    if !existing.programs.contains(&p) {
                        existing.programs.push(p);
                    }
                }
            }
            None => out.push(ExecGrant {
                service: service.clone(),
                programs: names.into_iter().collect(),
            }),
        }
    }
    Ok(out)
}

/// The name `dir` also gets inside the hook: its path relative to `work_dir` (`.` for the work dir itself), or
/// `None` when it is not under the work dir or that name is already its absolute path's (the work dir is `/`).
pub(crate) fn relative_name(work_dir: &Path, dir: &Path) -> Option<String> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Permissions, String> {
        let value: toml::Value = toml::from_str(text).unwrap();
        Permissions::from_toml(&value, Path::new("/srv/app"))
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

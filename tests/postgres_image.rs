//! A PostgreSQL image for the end-to-end tests, built offline through the Docker API from the host's Debian
//! PostgreSQL 15 (`apt-get install postgresql-15`): its binaries, the shared libraries `ldd` names, its share
//! files, busybox for a shell, and a cluster initialised at build time. Built once per engine and reused.

use std::path::Path;
use std::process::Command;

use bollard::Docker;

use crate::docker::{add_file, build_image, runtime};

/// The image's tag.
pub const POSTGRES_IMAGE: &str = "hookrun-test-postgres:15";

const PG_BIN: &str = "/usr/lib/postgresql/15/bin";
const PG_TREES: &[&str] = &["/usr/lib/postgresql/15", "/usr/share/postgresql/15"];
const PG_PROGRAMS: &[&str] = &["postgres", "initdb", "pg_dump", "psql", "pg_isready", "createdb"];

const DOCKERFILE: &str = r#"FROM scratch
COPY rootfs/ /
COPY --chown=999:999 owned/ /var/
RUN ["/bin/busybox", "--install", "-s", "/bin"]
ENV PATH=/usr/lib/postgresql/15/bin:/bin TZ=UTC PGHOST=/var/run/postgresql PGUSER=postgres
USER postgres
RUN initdb -D /var/lib/postgresql/data --auth=trust --username=postgres --locale=C -E UTF8
CMD ["postgres", "-D", "/var/lib/postgresql/data", "-c", "listen_addresses=", "-c", "unix_socket_directories=/var/run/postgresql"]
"#;

/// Builds the image unless the engine has it.
pub fn ensure_postgres_image(docker: &Docker) {
    runtime().block_on(async {
        if docker.inspect_image(POSTGRES_IMAGE).await.is_ok() {
            return;
        }
        assert!(
            Path::new(PG_BIN).join("postgres").exists(),
            "{PG_BIN}/postgres is missing: apt-get install postgresql-15"
        );
        build_image(docker, POSTGRES_IMAGE, build_context()).await;
    });
}

/// The build context: the Dockerfile, `rootfs/` (files at their host paths) and `owned/` (postgres's folders).
fn build_context() -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    tar.follow_symlinks(true);
    add_file(&mut tar, "Dockerfile", DOCKERFILE.as_bytes(), 0o644);
    add_file(
        &mut tar,
        "rootfs/etc/passwd",
        b"root:x:0:0:root:/:/bin/sh\npostgres:x:999:999::/var/lib/postgresql:/bin/sh\n",
        0o644,
    );
    add_file(&mut tar, "rootfs/etc/group", b"root:x:0:\npostgres:x:999:\n", 0o644);
    add_file(&mut tar, "owned/lib/postgresql/.keep", b"", 0o644);
    add_file(&mut tar, "owned/run/postgresql/.keep", b"", 0o644);
    add_file(&mut tar, "rootfs/tmp/.keep", b"", 0o644);
    tar.append_path_with_name("/bin/busybox", "rootfs/bin/busybox").unwrap();
    for tree in PG_TREES {
        tar.append_dir_all(format!("rootfs{tree}"), tree).unwrap();
    }
    for zone in ["/usr/share/zoneinfo/UTC", "/usr/share/zoneinfo/Etc/UTC"] {
        tar.append_path_with_name(zone, format!("rootfs{zone}")).unwrap();
    }
    for library in shared_libraries() {
        tar.append_path_with_name(&library, format!("rootfs{library}")).unwrap();
    }
    tar.into_inner().unwrap()
}

/// Every shared library the PostgreSQL programs load, and the dynamic loader, as `ldd` lists them.
fn shared_libraries() -> Vec<String> {
    let programs: Vec<String> = PG_PROGRAMS.iter().map(|p| format!("{PG_BIN}/{p}")).collect();
    let output = Command::new("ldd").args(&programs).output().expect("ldd runs");
    let mut libraries: Vec<String> = String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .filter(|word| word.starts_with('/') && !word.ends_with(':'))
        .map(str::to_string)
        .collect();
    libraries.sort();
    libraries.dedup();
    libraries
}

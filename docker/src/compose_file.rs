//! Dependencies read from the project's compose file(s), for engines whose Compose (v1, as Debian ships it) does
//! not label containers with `com.docker.compose.depends_on`: `depends_on`, `links`, `network_mode: service:…`
//! and `volumes_from`.

use std::collections::BTreeSet;
use std::path::PathBuf;

use yaml_serde::Value;

use super::order::Dependencies;
use crate::DockerError;

/// The dependencies declared in `files` (later files add to earlier ones, as Compose merges them).
pub fn dependencies_from_files(files: &[PathBuf]) -> Result<Dependencies, DockerError> {
    let mut deps = Dependencies::new();
    for file in files {
        let text = std::fs::read_to_string(file).map_err(|source| DockerError::ComposeFileUnreadable {
            file: file.clone(),
            source,
        })?;
        let doc: Value = yaml_serde::from_str(&text).map_err(|source| DockerError::ComposeFileInvalid {
            file: file.clone(),
            source,
        })?;
        let Some(services) = doc.get("services").and_then(Value::as_mapping) else {
            continue;
        };
        for (name, service) in services {
            let Some(name) = name.as_str() else { continue };
            deps.entry(name.to_string()).or_default().extend(declared(service));
        }
    }
    Ok(deps)
}

/// The services one service definition depends on.
fn declared(service: &Value) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    match service.get("depends_on") {
        Some(Value::Sequence(list)) => found.extend(list.iter().filter_map(Value::as_str).map(str::to_string)),
        Some(Value::Mapping(map)) => found.extend(map.keys().filter_map(Value::as_str).map(str::to_string)),
        _ => {}
    }
    // `links: ["db", "db:database"]`
    for link in service.get("links").and_then(Value::as_sequence).into_iter().flatten() {
        if let Some(target) = link.as_str().and_then(|l| l.split(':').next()) {
            found.insert(target.to_string());
        }
    }
    if let Some(target) = service
        .get("network_mode")
        .and_then(Value::as_str)
        .and_then(|m| m.strip_prefix("service:"))
    {
        found.insert(target.to_string());
    }
    // `volumes_from: ["db", "service:db:ro"]`; `container:x` names no service.
    for source in service
        .get("volumes_from")
        .and_then(Value::as_sequence)
        .into_iter()
        .flatten()
    {
        let Some(source) = source.as_str() else { continue };
        if source.starts_with("container:") {
            continue;
        }
        let source = source.strip_prefix("service:").unwrap_or(source);
        found.insert(source.split(':').next().unwrap_or(source).to_string());
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_of_compose_dependency_is_found() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("docker-compose.yml");
        std::fs::write(
            &file,
            r#"
version: "2.4"
services:
  web:
    depends_on: [app]
    links: ["cache:redis"]
  app:
    depends_on:
      db: { condition: service_healthy }
  sidecar:
    network_mode: "service:app"
    volumes_from: ["service:db:ro", "container:other"]
  db: {}
  cache: {}
"#,
        )
        .unwrap();

        let deps = dependencies_from_files(&[file]).unwrap();

        let of = |s: &str| deps[s].iter().cloned().collect::<Vec<_>>();
        assert_eq!(of("web"), ["app", "cache"]);
        assert_eq!(of("app"), ["db"]);
        assert_eq!(of("sidecar"), ["app", "db"]);
        assert!(deps["db"].is_empty());
    }
}

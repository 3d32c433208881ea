//! The Compose project's containers, found by the exact label `com.docker.compose.project` (never by name), and
//! the dependencies between their services.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use bollard::container::ListContainersOptions;

use super::compose_file::dependencies_from_files;
use super::engine::{request_failed, Engine};
use super::mounts::ProjectMount;
use super::order::Dependencies;
use crate::DockerError;

const PROJECT_LABEL: &str = "com.docker.compose.project";
const SERVICE_LABEL: &str = "com.docker.compose.service";
const ONEOFF_LABEL: &str = "com.docker.compose.oneoff";
const DEPENDS_ON_LABEL: &str = "com.docker.compose.depends_on";
const CONFIG_FILES_LABEL: &str = "com.docker.compose.project.config_files";
const WORKING_DIR_LABEL: &str = "com.docker.compose.project.working_dir";

/// One container of the project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectContainer {
    pub id: String,
    /// Its name, without Docker's leading `/`.
    pub name: String,
    /// Its Compose service.
    pub service: String,
    /// The image it was created from, as configured (e.g. `postgres:15`).
    pub image: String,
    /// Whether it is running now.
    pub running: bool,
    /// Its own stop timeout (Compose's `stop_grace_period`), in seconds.
    pub stop_timeout: Option<i64>,
    /// Whether it has a healthcheck: `start` then waits for healthy, not just running.
    pub has_healthcheck: bool,
    /// Its labels.
    pub labels: HashMap<String, String>,
    /// Its named volumes and bind mounts.
    pub mounts: Vec<ProjectMount>,
}

/// Which of the project's containers a hook works on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    /// The Compose project name (exact).
    pub project: String,
    /// Only these services, when given.
    pub services: Option<Vec<String>>,
}

impl Engine {
    /// The ids of every container the engine labels as `project`'s (running or not), one-off `run` containers
    /// excluded by their summary's labels.
    pub(crate) async fn project_container_ids(&self, project: &str) -> Result<Vec<String>, DockerError> {
        let filters = HashMap::from([("label".to_string(), vec![format!("{PROJECT_LABEL}={project}")])]);
        let options = ListContainersOptions {
            all: true,
            filters,
            ..Default::default()
        };
        let summaries = self
            .docker
            .list_containers(Some(options))
            .await
            .map_err(request_failed("list containers"))?;
        Ok(summaries
            .into_iter()
            .filter(|s| {
                !s.labels
                    .as_ref()
                    .and_then(|l| l.get(ONEOFF_LABEL))
                    .is_some_and(|v| v.eq_ignore_ascii_case("true"))
            })
            .filter_map(|s| s.id)
            .collect())
    }

    /// The Compose projects that have containers here (running or not), by name.
    pub async fn compose_projects(&self) -> Result<Vec<String>, DockerError> {
        let filters = HashMap::from([("label".to_string(), vec![PROJECT_LABEL.to_string()])]);
        let options = ListContainersOptions {
            all: true,
            filters,
            ..Default::default()
        };
        let listed = self
            .docker
            .list_containers(Some(options))
            .await
            .map_err(request_failed("list containers".to_string()))?;
        let mut names: Vec<String> = listed
            .into_iter()
            .filter_map(|c| c.labels?.get(PROJECT_LABEL).cloned())
            .collect();
        names.sort();
        names.dedup();
        Ok(names)
    }

    /// Every container of `project` (running or not), one-off `run` containers excluded.
    pub async fn project_containers(&self, project: &str) -> Result<Vec<ProjectContainer>, DockerError> {
        let mut containers = Vec::new();
        for id in self.project_container_ids(project).await? {
            let inspect = self
                .docker
                .inspect_container(&id, None)
                .await
                .map_err(request_failed(format!("inspect {id}")))?;
            let config = inspect.config.unwrap_or_default();
            let labels = config.labels.unwrap_or_default();
            // The engine's filter matches exactly; checking again costs nothing and guards the promise.
            if labels.get(PROJECT_LABEL).map(String::as_str) != Some(project)
                || labels.get(ONEOFF_LABEL).is_some_and(|v| v.eq_ignore_ascii_case("true"))
            {
                continue;
            }
            let mounts = inspect
                .mounts
                .unwrap_or_default()
                .into_iter()
                .filter_map(ProjectMount::from_api)
                .collect();
            let has_healthcheck = config
                .healthcheck
                .and_then(|h| h.test)
                .is_some_and(|test| !test.is_empty() && test[0] != "NONE");
            containers.push(ProjectContainer {
                name: inspect.name.unwrap_or_default().trim_start_matches('/').to_string(),
                service: labels.get(SERVICE_LABEL).cloned().unwrap_or_default(),
                image: config.image.clone().unwrap_or_default(),
                running: inspect.state.and_then(|s| s.running).unwrap_or(false),
                stop_timeout: config.stop_timeout,
                has_healthcheck,
                labels,
                mounts,
                id,
            });
        }
        containers.sort_by(|a, b| (&a.service, &a.name).cmp(&(&b.service, &b.name)));
        Ok(containers)
    }
}

impl Selection {
    /// The containers this selection covers, checking that every named service exists in the project.
    pub fn apply(&self, containers: Vec<ProjectContainer>) -> Result<Vec<ProjectContainer>, DockerError> {
        let Some(services) = &self.services else {
            return Ok(containers);
        };
        let known: BTreeSet<&str> = containers.iter().map(|c| c.service.as_str()).collect();
        if let Some(unknown) = services.iter().find(|s| !known.contains(s.as_str())) {
            return Err(DockerError::Misconfigured(format!(
                "service `{unknown}` is not in Compose project {} (it has: {})",
                self.project,
                known.into_iter().collect::<Vec<_>>().join(", ")
            )));
        }
        Ok(containers
            .into_iter()
            .filter(|c| services.contains(&c.service))
            .collect())
    }
}

/// The dependencies between the project's services: from the `com.docker.compose.depends_on` labels Compose v2
/// sets, else from the compose files (`compose_file` when configured, else those Compose recorded in its labels).
pub fn project_dependencies(
    containers: &[ProjectContainer],
    compose_file: Option<&Path>,
) -> Result<Dependencies, DockerError> {
    if containers.iter().any(|c| c.labels.contains_key(DEPENDS_ON_LABEL)) {
        let mut deps = Dependencies::new();
        for container in containers {
            let declared = container.labels.get(DEPENDS_ON_LABEL).map(String::as_str).unwrap_or("");
            // "db:service_healthy:false,cache:service_started:true"
            let names = declared
                .split(',')
                .filter_map(|d| d.split(':').next())
                .filter(|d| !d.is_empty());
            deps.entry(container.service.clone())
                .or_default()
                .extend(names.map(str::to_string));
        }
        return Ok(deps);
    }
    let files: Vec<PathBuf> = match compose_file {
        Some(file) => vec![file.to_path_buf()],
        None => recorded_config_files(containers),
    };
    if files.is_empty() {
        return Ok(Dependencies::new());
    }
    dependencies_from_files(&files)
}

/// The Compose project's own files, as Compose recorded them on its containers: its config files, and the `.env`
/// in its working dir when there is one. Only files that exist.
pub fn project_files(containers: &[ProjectContainer]) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = recorded_config_files(containers)
        .into_iter()
        .filter(|f| f.is_file())
        .collect();
    let working_dir = containers
        .iter()
        .find_map(|c| c.labels.get(WORKING_DIR_LABEL))
        .map(PathBuf::from);
    if let Some(env) = working_dir.map(|dir| dir.join(".env")).filter(|env| env.is_file()) {
        files.push(env);
    }
    files.dedup();
    files
}

/// The compose files Compose recorded on the containers. Compose v1 records them as they were given on its
/// command line (relative to where it ran), and as its working dir the folder of the first file; so a relative
/// name is looked for under the working dir, then by its file name there.
fn recorded_config_files(containers: &[ProjectContainer]) -> Vec<PathBuf> {
    let Some(container) = containers.iter().find(|c| c.labels.contains_key(CONFIG_FILES_LABEL)) else {
        return Vec::new();
    };
    let working_dir = container
        .labels
        .get(WORKING_DIR_LABEL)
        .map(PathBuf::from)
        .unwrap_or_default();
    container.labels[CONFIG_FILES_LABEL]
        .split(',')
        .filter(|f| !f.is_empty())
        .map(|f| {
            let given = working_dir.join(f);
            let by_name = Path::new(f).file_name().map(|name| working_dir.join(name));
            match by_name {
                Some(by_name) if !given.exists() && by_name.exists() => by_name,
                _ => given,
            }
        })
        .collect()
}

//! What runs, as Docker reports it, and putting it back: each container's inspect document and image, the image
//! tags that keep a rollback's images, and re-creating a container from its recorded document (same name, image
//! ID, configuration, mounts, networks and labels).

use std::collections::HashMap;

use bollard::container::{Config, CreateContainerOptions, NetworkingConfig, RemoveContainerOptions};
use bollard::errors::Error as BollardError;
use bollard::image::{RemoveImageOptions, TagImageOptions};
use bollard::models::{ContainerInspectResponse, EndpointSettings};

use super::engine::{request_failed, Engine};
use super::project::ProjectContainer;
use crate::DockerError;

/// One container as Docker reports it now.
#[derive(Debug, Clone)]
pub struct ContainerRecord {
    pub id: String,
    /// Its name, without Docker's leading `/`.
    pub name: String,
    /// Its Compose service.
    pub service: String,
    /// The image reference it was created from.
    pub image: String,
    /// The image it runs (`sha256:…`).
    pub image_id: String,
    /// The image's repository digests.
    pub repo_digests: Vec<String>,
    pub running: bool,
    /// Docker's inspect document, as JSON.
    pub inspect: String,
}

/// Whether the engine answered "not found".
fn not_found(error: &BollardError) -> bool {
    matches!(error, BollardError::DockerResponseServerError { status_code: 404, .. })
}

/// Whether the engine answered "conflict" (e.g. an image in use).
fn conflict(error: &BollardError) -> bool {
    matches!(error, BollardError::DockerResponseServerError { status_code: 409, .. })
}

impl Engine {
    /// Each of `containers` (as [`Engine::project_containers`] found them) with its inspect document and image.
    pub async fn record(&self, containers: &[ProjectContainer]) -> Result<Vec<ContainerRecord>, DockerError> {
        let mut records = Vec::new();
        for container in containers {
            let inspect = self
                .docker
                .inspect_container(&container.id, None)
                .await
                .map_err(request_failed(format!("inspect {}", container.name)))?;
            let image_id = inspect.image.clone().unwrap_or_default();
            let image = inspect
                .config
                .as_ref()
                .and_then(|c| c.image.clone())
                .unwrap_or_else(|| image_id.clone());
            let repo_digests = match self.docker.inspect_image(&image_id).await {
                Ok(found) => found.repo_digests.unwrap_or_default(),
                Err(e) if not_found(&e) => Vec::new(),
                Err(e) => return Err(request_failed(format!("inspect image {image_id}"))(e)),
            };
            records.push(ContainerRecord {
                inspect: serde_json::to_string(&inspect).map_err(|e| {
                    DockerError::Misconfigured(format!("cannot record container {}: {e}", container.name))
                })?,
                id: container.id.clone(),
                name: container.name.clone(),
                service: container.service.clone(),
                image,
                image_id,
                repo_digests,
                running: container.running,
            });
        }
        Ok(records)
    }

    /// Whether the engine has image `id`.
    pub async fn has_image(&self, id: &str) -> Result<bool, DockerError> {
        match self.docker.inspect_image(id).await {
            Ok(_) => Ok(true),
            Err(e) if not_found(&e) => Ok(false),
            Err(e) => Err(request_failed(format!("inspect image {id}"))(e)),
        }
    }

    /// Tags image `image_id` as `reference` (`repo:tag`), so that it stays while the tag does.
    pub async fn tag_image(&self, image_id: &str, reference: &str) -> Result<(), DockerError> {
        let (repo, tag) = reference.rsplit_once(':').unwrap_or((reference, "latest"));
        self.docker
            .tag_image(image_id, Some(TagImageOptions { repo, tag }))
            .await
            .map_err(request_failed(format!("tag image {image_id} as {reference}")))
    }

    /// Removes the tag `reference`; the image goes with it only when nothing else names it or uses it. A tag that is
    /// already gone is fine.
    pub async fn remove_tag(&self, reference: &str) -> Result<(), DockerError> {
        let plain = RemoveImageOptions {
            force: false,
            noprune: false,
        };
        match self.docker.remove_image(reference, Some(plain), None).await {
            Ok(_) => Ok(()),
            Err(e) if not_found(&e) => Ok(()),
            // A container uses the image under this one name: the name goes, the image stays for the container.
            Err(e) if conflict(&e) => {
                let untag = RemoveImageOptions {
                    force: true,
                    noprune: true,
                };
                match self.docker.remove_image(reference, Some(untag), None).await {
                    Ok(_) => Ok(()),
                    Err(e) if not_found(&e) => Ok(()),
                    Err(e) => Err(request_failed(format!("remove image tag {reference}"))(e)),
                }
            }
            Err(e) => Err(request_failed(format!("remove image tag {reference}"))(e)),
        }
    }

    /// Removes container `id` (stopped or not), keeping its volumes. One that is already gone is fine.
    pub async fn remove_container(&self, id: &str, name: &str) -> Result<(), DockerError> {
        let options = RemoveContainerOptions {
            force: true,
            v: false,
            link: false,
        };
        match self.docker.remove_container(id, Some(options)).await {
            Ok(()) => Ok(()),
            Err(e) if not_found(&e) => Ok(()),
            Err(e) => Err(request_failed(format!("remove container {name}"))(e)),
        }
    }

    /// Creates (does not start) a container exactly as the inspect document `inspect` describes it, running image
    /// `image_id`: its name, configuration, labels, host configuration (mounts, ports, restart policy) and networks
    /// with their aliases. Returns the new container's id.
    pub async fn recreate(&self, inspect: &str, image_id: &str) -> Result<String, DockerError> {
        let recorded: ContainerInspectResponse = serde_json::from_str(inspect)
            .map_err(|e| DockerError::Misconfigured(format!("a recorded container cannot be read back: {e}")))?;
        let name = recorded.name.unwrap_or_default().trim_start_matches('/').to_string();
        let mut config: Config<String> = recorded.config.unwrap_or_default().into();
        config.image = Some(image_id.to_string());
        config.host_config = recorded.host_config;
        let endpoints: HashMap<String, EndpointSettings> = recorded
            .network_settings
            .and_then(|n| n.networks)
            .unwrap_or_default()
            .into_iter()
            // What the engine assigned (ids, addresses, DNS names) it assigns again; what was asked for stays.
            .map(|(network, endpoint)| {
                let asked = EndpointSettings {
                    aliases: endpoint.aliases,
                    links: endpoint.links,
                    ipam_config: endpoint.ipam_config,
                    driver_opts: endpoint.driver_opts,
                    ..Default::default()
                };
                (network, asked)
            })
            .collect();
        if !endpoints.is_empty() {
            config.networking_config = Some(NetworkingConfig {
                endpoints_config: endpoints,
            });
        }
        let options = CreateContainerOptions {
            name: name.clone(),
            platform: None,
        };
        let created = self
            .docker
            .create_container(Some(options), config)
            .await
            .map_err(request_failed(format!("re-create container {name}")))?;
        Ok(created.id)
    }
}

/// The tag of hookrun's own that keeps the image `service` of `project` ran when backup `backup_id` was taken:
/// `hookrun-rollback/<project>-<service>:<backup id>`, lowercased, with anything Docker does not allow in a
/// repository name replaced by `-`.
pub fn rollback_tag(project: &str, service: &str, backup_id: i64) -> String {
    let name: String = format!("{project}-{service}")
        .to_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let name = name.trim_matches(|c: char| !c.is_ascii_alphanumeric());
    format!("hookrun-rollback/{name}:{backup_id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rollback_tags_are_valid_docker_references() {
        assert_eq!(rollback_tag("demo", "db", 7), "hookrun-rollback/demo-db:7");
        assert_eq!(rollback_tag("My App", "Web+1", 12), "hookrun-rollback/my-app-web-1:12");
        assert_eq!(rollback_tag("_x", "y_", 1), "hookrun-rollback/x-y:1");
    }
}

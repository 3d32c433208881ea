//! The project's named volumes and bind mounts, as the engine reports them: what `backup` can include with
//! `volumes = "auto"`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use bollard::models::{MountPoint, MountPointTypeEnum};
use serde::Serialize;

use super::project::ProjectContainer;

/// Named volume or bind mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MountKind {
    Volume,
    Bind,
}

/// One volume or bind mount of one container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProjectMount {
    pub kind: MountKind,
    /// The volume's name; for a bind mount, its host path.
    pub name: String,
    /// Where its data is on the host (the volume's mountpoint).
    pub host_path: PathBuf,
    /// Where the container sees it.
    pub destination: String,
}

impl ProjectMount {
    /// A named volume or bind mount from the engine's description; tmpfs and the like have no data to keep.
    pub(crate) fn from_api(mount: MountPoint) -> Option<Self> {
        let kind = match mount.typ? {
            MountPointTypeEnum::VOLUME => MountKind::Volume,
            MountPointTypeEnum::BIND => MountKind::Bind,
            _ => return None,
        };
        let host_path = PathBuf::from(mount.source?);
        let name = match kind {
            MountKind::Volume => mount.name?,
            MountKind::Bind => host_path.to_string_lossy().into_owned(),
        };
        Some(Self {
            kind,
            name,
            host_path,
            destination: mount.destination.unwrap_or_default(),
        })
    }
}

/// Every distinct volume and bind mount of `containers`, sorted by kind and name.
pub fn project_mounts(containers: &[ProjectContainer]) -> Vec<ProjectMount> {
    let mut unique = BTreeMap::new();
    for mount in containers.iter().flat_map(|c| &c.mounts) {
        unique
            .entry((mount.kind, mount.name.clone()))
            .or_insert_with(|| mount.clone());
    }
    unique.into_values().collect()
}

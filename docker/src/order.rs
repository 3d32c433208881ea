//! Dependency order: services grouped in layers, each depending only on earlier layers. Start goes up the layers,
//! stop comes down them; services within a layer are independent and may go in parallel.

use std::collections::{BTreeMap, BTreeSet};

use crate::DockerError;

/// Service → the services it depends on.
pub type Dependencies = BTreeMap<String, BTreeSet<String>>;

/// Groups `services` into layers so that every service comes after its dependencies. Dependencies on services
/// outside `services` are ignored (they are not ours to order). A cycle is an error naming its services.
pub fn layers(services: &BTreeSet<String>, deps: &Dependencies) -> Result<Vec<Vec<String>>, DockerError> {
    let mut remaining: BTreeSet<&String> = services.iter().collect();
    let mut placed: BTreeSet<&String> = BTreeSet::new();
    let mut result = Vec::new();
    while !remaining.is_empty() {
        let ready: Vec<&String> = remaining
            .iter()
            .copied()
            .filter(|s| {
                deps.get(*s)
                    .into_iter()
                    .flatten()
                    .all(|d| placed.contains(d) || !services.contains(d) || d == *s)
            })
            .collect();
        if ready.is_empty() {
            let cycle: Vec<&str> = remaining.iter().map(|s| s.as_str()).collect();
            return Err(DockerError::Misconfigured(format!(
                "the services {} depend on each other in a cycle",
                cycle.join(", ")
            )));
        }
        for service in &ready {
            remaining.remove(*service);
            placed.insert(service);
        }
        result.push(ready.into_iter().cloned().collect());
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deps(pairs: &[(&str, &[&str])]) -> Dependencies {
        pairs
            .iter()
            .map(|(s, d)| (s.to_string(), d.iter().map(|x| x.to_string()).collect()))
            .collect()
    }

    fn set(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn dependencies_come_in_earlier_layers() {
        let graph = deps(&[("web", &["app"]), ("app", &["db", "cache"]), ("worker", &["db"])]);
        let order = layers(&set(&["web", "app", "db", "cache", "worker"]), &graph).unwrap();
        assert_eq!(order, vec![vec!["cache", "db"], vec!["app", "worker"], vec!["web"]]);
    }

    #[test]
    fn dependencies_outside_the_selection_are_ignored() {
        let graph = deps(&[("app", &["db"])]);
        assert_eq!(layers(&set(&["app"]), &graph).unwrap(), vec![vec!["app"]]);
    }

    #[test]
    fn a_cycle_is_an_error_naming_it() {
        let graph = deps(&[("a", &["b"]), ("b", &["a"]), ("c", &[])]);
        let err = layers(&set(&["a", "b", "c"]), &graph).unwrap_err();
        assert_eq!(err.to_string(), "the services a, b depend on each other in a cycle");
    }
}

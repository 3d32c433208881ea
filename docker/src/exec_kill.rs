//! Killing a program started through the exec API that is still running when its caller gave up on it (the hook
//! timed out, the run was interrupted, the future was dropped, writing its output failed).
//!
//! Docker has no API to stop an exec (moby/moby#9098). `inspect_exec` gives the exec's process id in the engine's
//! pid namespace and whether it still runs. When the engine is on this machine and its pid namespace is hookrun's,
//! that process is in `/proc`: [`ExecGuard`] kills it and its descendants. It freezes the tree top down (SIGSTOP
//! each process, then look for its children, so nothing forks behind the walk), then SIGKILLs all of it. Every
//! process is signalled through a pidfd opened before it was checked, so a pid reused meanwhile is never signalled:
//! the root is checked to be the exec's (the engine still reports it running with that pid, and its cgroup names
//! the container), each other process to be the child of one already frozen. When the process cannot be reached
//! (a remote `DOCKER_HOST`, another pid namespace), one warning says that it was left running and why.

use std::os::fd::OwnedFd;
use std::time::Duration;

use rustix::process::{pidfd_open, pidfd_send_signal, Pid, PidfdFlags, Signal};

use super::engine::Engine;
use crate::DockerError;

/// How long killing an abandoned exec may take in all: connecting, inspecting, signalling, seeing it end.
const KILL_DEADLINE: Duration = Duration::from_secs(10);

/// How long the engine gets to notice that a killed exec ended.
const END_WAIT: Duration = Duration::from_secs(3);

/// An exec that was created and may be running. Dropped without [`ExecGuard::ended`], it kills the program.
#[derive(Debug)]
pub(crate) struct ExecGuard {
    exec_id: String,
    container_id: String,
    /// "`sleep` in service cache", for the warning.
    what: String,
    armed: bool,
}

impl ExecGuard {
    pub(crate) fn new(exec_id: String, container_id: String, what: String) -> Self {
        Self {
            exec_id,
            container_id,
            what,
            armed: true,
        }
    }

    /// The program ended by itself: nothing to kill.
    pub(crate) fn ended(mut self) {
        self.armed = false;
    }
}

impl Drop for ExecGuard {
    /// Kills the program before returning, so that hookrun cannot exit (or start the next hook) with it running.
    /// The work runs on a thread of its own with its own runtime and engine connection: the runtime this guard is
    /// dropped on may be shutting down, or be the one thread that is blocked here.
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let (exec_id, container_id) = (self.exec_id.clone(), self.container_id.clone());
        let killer = std::thread::Builder::new()
            .name("hookrun-exec-kill".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| KillError::Runtime(e.to_string()))?;
                runtime.block_on(async {
                    tokio::time::timeout(KILL_DEADLINE, kill_exec(&exec_id, &container_id))
                        .await
                        .unwrap_or(Err(KillError::Deadline(KILL_DEADLINE)))
                })
            });
        let result = match killer {
            Ok(thread) => thread
                .join()
                .unwrap_or_else(|_| Err(KillError::Runtime("the killing thread panicked".into()))),
            Err(e) => Err(KillError::Runtime(e.to_string())),
        };
        match result {
            Ok(Killed::AlreadyEnded) => {}
            Ok(Killed::Tree(count)) => {
                tracing::debug!(exec = %self.exec_id, "killed {} ({count} processes)", self.what);
            }
            Err(error) => tracing::warn!(
                exec = %self.exec_id,
                "{} was left running in its container: {error}",
                self.what
            ),
        }
    }
}

/// What killing found.
#[derive(Debug, PartialEq, Eq)]
enum Killed {
    /// The exec had ended by the time it was inspected.
    AlreadyEnded,
    /// It was killed: this many processes (it and its descendants).
    Tree(usize),
}

/// Why an exec's program could not be killed.
#[derive(Debug, thiserror::Error)]
enum KillError {
    #[error(
        "the Docker engine at {address} runs on another machine, and Docker has no API to stop an exec \
         (moby/moby#9098)"
    )]
    Remote { address: String },

    #[error(
        "its process (pid {pid} for the engine at {address}) is not visible here: the engine runs in another pid \
         namespace, and Docker has no API to stop an exec (moby/moby#9098)"
    )]
    NotVisible { pid: i32, address: String },

    #[error("cannot ask the engine about it: {0}")]
    Engine(#[source] DockerError),

    #[error("cannot signal pid {pid}: {source}")]
    Signal { pid: i32, source: std::io::Error },

    #[error("the engine still reports it running {0:?} after SIGKILL")]
    StillRunning(Duration),

    #[error("killing it took longer than {0:?}")]
    Deadline(Duration),

    #[error("cannot start the killer: {0}")]
    Runtime(String),
}

/// Inspects exec `exec_id` of container `container_id` and, if it still runs, kills its process tree.
async fn kill_exec(exec_id: &str, container_id: &str) -> Result<Killed, KillError> {
    let engine = Engine::connect().await.map_err(KillError::Engine)?;
    let address = engine.reached_at().to_string();
    let Some(pid) = running_pid(&engine, exec_id).await? else {
        return Ok(Killed::AlreadyEnded);
    };
    if is_remote(&address) {
        return Err(KillError::Remote { address });
    }
    let not_visible = || KillError::NotVisible {
        pid,
        address: address.clone(),
    };
    let root = match pidfd_open(Pid::from_raw(pid).ok_or_else(not_visible)?, PidfdFlags::empty()) {
        Ok(fd) => fd,
        // Gone between the inspection and now, or never in this namespace.
        Err(rustix::io::Errno::SRCH) => {
            return match running_pid(&engine, exec_id).await? {
                None => Ok(Killed::AlreadyEnded),
                Some(_) => Err(not_visible()),
            };
        }
        Err(e) => return Err(KillError::Signal { pid, source: e.into() }),
    };
    // The pidfd is held: if the engine still reports this pid running and the process's cgroup names the
    // container, the pidfd is the exec's process (a pid is not reused while its process is alive).
    if !in_container(pid, container_id) {
        return match running_pid(&engine, exec_id).await? {
            None => Ok(Killed::AlreadyEnded),
            Some(_) => Err(not_visible()),
        };
    }
    if running_pid(&engine, exec_id).await? != Some(pid) {
        return Ok(Killed::AlreadyEnded);
    }
    let tree = freeze_tree(pid, root)?;
    let count = tree.len();
    for (pid, fd) in &tree {
        match pidfd_send_signal(fd, Signal::Kill) {
            Ok(()) | Err(rustix::io::Errno::SRCH) => {}
            Err(e) => {
                return Err(KillError::Signal {
                    pid: *pid,
                    source: e.into(),
                })
            }
        }
    }
    let waited = std::time::Instant::now();
    while running_pid(&engine, exec_id).await?.is_some() {
        if waited.elapsed() > END_WAIT {
            return Err(KillError::StillRunning(END_WAIT));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(Killed::Tree(count))
}

/// The exec's pid while the engine reports it running.
async fn running_pid(engine: &Engine, exec_id: &str) -> Result<Option<i32>, KillError> {
    let inspect = engine
        .docker
        .inspect_exec(exec_id)
        .await
        .map_err(|e| KillError::Engine(super::engine::request_failed("inspect exec")(e)))?;
    Ok(match (inspect.running, inspect.pid) {
        (Some(true), Some(pid)) if pid > 0 => i32::try_from(pid).ok(),
        _ => None,
    })
}

/// Whether the engine is reached over the network at an address that is not this machine's.
fn is_remote(address: &str) -> bool {
    let Some((scheme, rest)) = address.split_once("://") else {
        return false;
    };
    match scheme {
        "unix" | "npipe" => false,
        "ssh" => true,
        _ => {
            let host = rest.split('/').next().unwrap_or("");
            let host = host.rsplit_once(':').map_or(host, |(h, port)| {
                if port.chars().all(|c| c.is_ascii_digit()) {
                    h
                } else {
                    host
                }
            });
            let host = host.trim_start_matches('[').trim_end_matches(']');
            !(host == "localhost" || host == "::1" || host.starts_with("127."))
        }
    }
}

/// Whether process `pid` (as this machine sees it) is in the container: its cgroup path names the container's id,
/// as it does under both the cgroupfs (`/docker/<id>`) and systemd (`docker-<id>.scope`) drivers.
fn in_container(pid: i32, container_id: &str) -> bool {
    !container_id.is_empty()
        && std::fs::read_to_string(format!("/proc/{pid}/cgroup")).is_ok_and(|cgroups| cgroups.contains(container_id))
}

/// Stops `root` (held by `root_fd`) and every descendant, top down, and returns them all with their pidfds.
/// A process is stopped before its children are looked for, so none of the tree forks while it is walked.
fn freeze_tree(root: i32, root_fd: OwnedFd) -> Result<Vec<(i32, OwnedFd)>, KillError> {
    let stop = |pid: i32, fd: &OwnedFd| match pidfd_send_signal(fd, Signal::Stop) {
        Ok(()) | Err(rustix::io::Errno::SRCH) => Ok(()),
        Err(e) => Err(KillError::Signal { pid, source: e.into() }),
    };
    stop(root, &root_fd)?;
    let mut tree = vec![(root, root_fd)];
    let mut frontier = vec![root];
    while !frontier.is_empty() {
        let parents = std::mem::take(&mut frontier);
        for (child, parent) in parent_links() {
            if !parents.contains(&parent) || tree.iter().any(|(p, _)| *p == child) {
                continue;
            }
            let Some(child_pid) = Pid::from_raw(child) else {
                continue;
            };
            let Ok(fd) = pidfd_open(child_pid, PidfdFlags::empty()) else {
                continue; // It ended meanwhile.
            };
            // Opened first, checked second: if it is still the frozen parent's child, the pidfd is that child.
            if parent_of(child) != Some(parent) {
                continue;
            }
            stop(child, &fd)?;
            tree.push((child, fd));
            frontier.push(child);
        }
    }
    Ok(tree)
}

/// Every process of this machine's pid namespace with its parent, from `/proc/*/stat`.
fn parent_links() -> Vec<(i32, i32)> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| Some((pid, parent_of(pid)?)))
        .collect()
}

/// The parent of process `pid`: the fourth field of `/proc/<pid>/stat`, read after the command name (which may hold
/// spaces and parentheses, so the last `)` ends it).
fn parent_of(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_parent(&stat)
}

fn parse_parent(stat: &str) -> Option<i32> {
    let (_, after_name) = stat.rsplit_once(')')?;
    after_name.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_parent_is_read_after_a_command_name_with_spaces_and_parentheses() {
        assert_eq!(parse_parent("42 (sleep) S 7 42 42 0 -1"), Some(7));
        assert_eq!(parse_parent("42 (a) b (c)) R 9 1 1"), Some(9));
        assert_eq!(parse_parent("garbage"), None);
    }

    #[test]
    fn only_network_addresses_of_other_machines_are_remote() {
        for local in [
            "unix:///var/run/docker.sock",
            "tcp://127.0.0.1:2375",
            "tcp://localhost:2375",
            "tcp://[::1]:2375",
            "http://localhost",
        ] {
            assert!(!is_remote(local), "{local}");
        }
        for remote in [
            "tcp://10.0.0.5:2376",
            "ssh://deploy@db-host",
            "https://docker.example.com:2376",
        ] {
            assert!(is_remote(remote), "{remote}");
        }
    }

    #[test]
    fn a_process_outside_the_container_is_not_taken_for_the_execs() {
        // This test process is in no container; a pid that does not exist is in none either.
        let id = "c7fcbe87dd7683d84d66e3a52bf096a786222f4df7569610f3c413430e940e5a";
        assert!(!in_container(std::process::id() as i32, id));
        assert!(!in_container(i32::MAX, id));
        assert!(!in_container(std::process::id() as i32, ""));
    }

    #[test]
    fn a_tree_is_frozen_top_down_and_found_whole() {
        // A shell with two children, none in a container: freeze_tree only walks ppid links.
        let mut shell = std::process::Command::new("sh")
            .args(["-c", "sleep 30 & sleep 30 & wait"])
            .spawn()
            .unwrap();
        let root = shell.id() as i32;
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while parent_links().iter().filter(|(_, p)| *p == root).count() < 2 {
            assert!(std::time::Instant::now() < deadline, "the children never started");
            std::thread::sleep(Duration::from_millis(10));
        }
        let fd = pidfd_open(Pid::from_raw(root).unwrap(), PidfdFlags::empty()).unwrap();
        let tree = freeze_tree(root, fd).unwrap();
        assert_eq!(tree.len(), 3, "the shell and its two sleeps");
        for (_, fd) in &tree {
            pidfd_send_signal(fd, Signal::Kill).unwrap();
        }
        assert!(!shell.wait().unwrap().success());
        // The sleeps were reparented when the shell died; they die too (reaped by init, or zombies until then).
        let alive = |pid: i32| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            stat.rsplit_once(')')
                .and_then(|(_, rest)| rest.trim_start().chars().next())
                .is_some_and(|state| state != 'Z' && state != 'X')
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while tree[1..].iter().any(|(pid, _)| alive(*pid)) {
            assert!(std::time::Instant::now() < deadline, "a child outlived SIGKILL");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

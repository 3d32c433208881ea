//! Docker for the end-to-end tests: the engine (or a skip, unless `HOOKRUN_REQUIRE_DOCKER=1`), a tiny test image
//! built offline through the API (`FROM scratch` + Debian's busybox-static), uniquely named Compose projects
//! brought up with docker-compose and removed afterwards, and the engine's own event stream.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock};

use bollard::container::{ListContainersOptions, TopOptions};
use bollard::image::BuildImageOptions;
use bollard::system::EventsOptions;
use bollard::Docker;
use futures_util::StreamExt;

/// The test image: busybox on nothing, a few MiB, built once per engine and reused.
pub const TEST_IMAGE: &str = "hookrun-test-busybox:1";

/// A runtime for the API calls the tests make.
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    })
}

/// The engine, or `None` when it cannot be reached and Docker tests may skip. With `HOOKRUN_REQUIRE_DOCKER=1`
/// (as in CI) an unreachable engine fails the test instead.
pub fn engine() -> Option<Docker> {
    let reached = runtime().block_on(async {
        let docker = Docker::connect_with_defaults().ok()?;
        docker.ping().await.ok()?;
        docker.negotiate_version().await.ok()
    });
    if reached.is_none() {
        assert!(
            std::env::var("HOOKRUN_REQUIRE_DOCKER").as_deref() != Ok("1"),
            "HOOKRUN_REQUIRE_DOCKER=1 but the Docker engine cannot be reached"
        );
        eprintln!("skipped: the Docker engine cannot be reached (set HOOKRUN_REQUIRE_DOCKER=1 to fail instead)");
    }
    reached
}

/// Builds the test image unless the engine already has it: `FROM scratch`, `/bin/busybox` from the host's
/// busybox-static, its applets installed as links.
pub fn ensure_test_image(docker: &Docker) {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        runtime().block_on(async {
            if docker.inspect_image(TEST_IMAGE).await.is_ok() {
                return;
            }
            let busybox = std::fs::read("/bin/busybox").expect("/bin/busybox (apt-get install busybox-static)");
            let dockerfile =
                "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n\
                              ENV PATH=/bin\nCMD [\"sh\"]\n";
            let mut context = tar::Builder::new(Vec::new());
            add_file(&mut context, "Dockerfile", dockerfile.as_bytes(), 0o644);
            add_file(&mut context, "busybox", &busybox, 0o755);
            build_image(docker, TEST_IMAGE, context.into_inner().unwrap()).await;
        })
    });
}

/// Builds image `tag` from a tar build context (its Dockerfile at the root); any error fails the test.
pub async fn build_image(docker: &Docker, tag: &str, context: Vec<u8>) {
    let options = BuildImageOptions {
        t: tag,
        dockerfile: "Dockerfile",
        rm: true,
        ..Default::default()
    };
    let mut build = docker.build_image(options, None, Some(context.into()));
    while let Some(step) = build.next().await {
        let step = step.unwrap_or_else(|e| panic!("building {tag}: {e}"));
        assert!(step.error.is_none(), "building {tag}: {:?}", step.error);
    }
}

/// Appends a file holding `data` with `mode` to a build context.
pub fn add_file(context: &mut tar::Builder<Vec<u8>>, name: &str, data: &[u8], mode: u32) {
    let mut header = tar::Header::new_gnu();
    header.set_size(data.len() as u64);
    header.set_mode(mode);
    header.set_cksum();
    context.append_data(&mut header, name, data).unwrap();
}

/// A uniquely named Compose project, up for the life of the value; `down -v` removes its containers, networks
/// and volumes when dropped.
pub struct ComposeProject {
    pub name: String,
    pub dir: PathBuf,
}

impl ComposeProject {
    /// Writes `compose_yaml` as `dir/docker-compose.yml` and brings it up as project `name`, waiting for
    /// healthchecks.
    pub fn up(name: &str, dir: &Path, compose_yaml: &str) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("docker-compose.yml"), compose_yaml).unwrap();
        let project = Self {
            name: name.to_string(),
            dir: dir.to_path_buf(),
        };
        project.compose(&["up", "-d"]);
        project
    }

    /// Runs docker-compose for this project.
    pub fn compose(&self, args: &[&str]) -> String {
        let output = Command::new("docker-compose")
            .arg("-p")
            .arg(&self.name)
            .args(args)
            .current_dir(&self.dir)
            .output()
            .expect("docker-compose runs");
        assert!(
            output.status.success(),
            "docker-compose {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// The state of each service's container: service → (status, health).
    pub fn states(&self, docker: &Docker) -> HashMap<String, (String, Option<String>)> {
        runtime().block_on(async {
            let filters = HashMap::from([(
                "label".to_string(),
                vec![format!("com.docker.compose.project={}", self.name)],
            )]);
            let options = ListContainersOptions {
                all: true,
                filters,
                ..Default::default()
            };
            let mut states = HashMap::new();
            for summary in docker.list_containers(Some(options)).await.unwrap() {
                let inspect = docker
                    .inspect_container(summary.id.as_deref().unwrap(), None)
                    .await
                    .unwrap();
                let labels = inspect.config.unwrap().labels.unwrap();
                let state = inspect.state.unwrap();
                let status = state.status.map(|s| s.to_string()).unwrap_or_default();
                let health = state.health.and_then(|h| h.status).map(|h| h.to_string());
                states.insert(labels["com.docker.compose.service"].clone(), (status, health));
            }
            states
        })
    }

    /// The command lines of the processes running in `service`'s container, as the engine's `top` lists them.
    pub fn processes(&self, docker: &Docker, service: &str) -> Vec<String> {
        runtime().block_on(async {
            let filters = HashMap::from([(
                "label".to_string(),
                vec![
                    format!("com.docker.compose.project={}", self.name),
                    format!("com.docker.compose.service={service}"),
                ],
            )]);
            let options = ListContainersOptions {
                filters,
                ..Default::default()
            };
            let containers = docker.list_containers(Some(options)).await.unwrap();
            let id = containers
                .first()
                .and_then(|c| c.id.clone())
                .unwrap_or_else(|| panic!("service {service} has no running container"));
            let top = docker
                .top_processes(&id, Some(TopOptions { ps_args: "-o pid,args" }))
                .await
                .unwrap();
            let column = top
                .titles
                .unwrap_or_default()
                .iter()
                .position(|t| t == "COMMAND")
                .expect("a COMMAND column");
            top.processes
                .unwrap_or_default()
                .into_iter()
                .filter_map(|row| row.get(column).cloned())
                .collect()
        })
    }

    /// Waits (bounded) until every service runs and those with a healthcheck are healthy.
    pub fn wait_ready(&self, docker: &Docker) {
        for _ in 0..300 {
            let states = self.states(docker);
            if !states.is_empty()
                && states
                    .values()
                    .all(|(s, h)| s == "running" && h.as_deref().is_none_or(|h| h == "healthy"))
            {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        panic!("project {} did not become ready: {:?}", self.name, self.states(docker));
    }
}

impl Drop for ComposeProject {
    fn drop(&mut self) {
        let _ = Command::new("docker-compose")
            .args(["-p", &self.name, "down", "-v", "--remove-orphans", "-t", "1"])
            .current_dir(&self.dir)
            .output();
    }
}

/// A container event the engine reported.
#[derive(Debug, Clone)]
pub struct ContainerEvent {
    pub project: String,
    pub service: String,
    pub action: String,
    /// Nanoseconds since the epoch.
    pub time_nano: i64,
}

/// Collects the engine's container events from now until dropped.
pub struct EventLog {
    events: Arc<Mutex<Vec<ContainerEvent>>>,
    task: tokio::task::JoinHandle<()>,
}

impl EventLog {
    /// Starts listening (and waits until the engine has accepted the subscription).
    pub fn start(docker: &Docker) -> Self {
        let events = Arc::new(Mutex::new(Vec::new()));
        let sink = events.clone();
        let docker = docker.clone();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let task = runtime().spawn(async move {
            let filters = HashMap::from([("type", vec!["container"])]);
            let mut stream = docker.events(Some(EventsOptions {
                filters,
                ..Default::default()
            }));
            let _ = ready_tx.send(());
            while let Some(Ok(event)) = stream.next().await {
                let attributes = event.actor.and_then(|a| a.attributes).unwrap_or_default();
                let get = |k: &str| attributes.get(k).cloned().unwrap_or_default();
                sink.lock().unwrap().push(ContainerEvent {
                    project: get("com.docker.compose.project"),
                    service: get("com.docker.compose.service"),
                    action: event.action.unwrap_or_default(),
                    time_nano: event.time_nano.unwrap_or_default(),
                });
            }
        });
        ready_rx.recv().unwrap();
        // The subscription is a streamed HTTP request: give the engine a moment to register it.
        std::thread::sleep(std::time::Duration::from_millis(300));
        Self { events, task }
    }

    /// The events so far (after a short pause so that the last ones have arrived).
    pub fn snapshot(&self) -> Vec<ContainerEvent> {
        std::thread::sleep(std::time::Duration::from_millis(500));
        self.events.lock().unwrap().clone()
    }
}

impl Drop for EventLog {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A project name no other test (or earlier run) uses.
pub fn unique_project(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{prefix}{}x{nanos:x}", std::process::id())
}

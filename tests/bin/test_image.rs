//! Builds the busybox test image (also used by the demo deployment) through the Docker API, if the engine lacks it.

fn main() {
    let docker = hookrun_e2e::docker::engine().expect("the Docker engine is reachable");
    hookrun_e2e::docker::ensure_test_image(&docker);
    println!("{}", hookrun_e2e::docker::TEST_IMAGE);
}

//! Builds the test images through the Docker API, if the engine lacks them: busybox (also the one `bench/downtime.sh`
//! uses) and, with `--postgres`, PostgreSQL. Prints each image's name: that is this program's output.

#![allow(clippy::print_stdout)]

fn main() {
    let docker = hookrun_e2e::docker::engine().expect("the Docker engine is reachable");
    hookrun_e2e::docker::ensure_test_image(&docker);
    println!("{}", hookrun_e2e::docker::TEST_IMAGE);
    if std::env::args().any(|a| a == "--postgres") {
        hookrun_e2e::postgres_image::ensure_postgres_image(&docker);
        println!("{}", hookrun_e2e::postgres_image::POSTGRES_IMAGE);
    }
}

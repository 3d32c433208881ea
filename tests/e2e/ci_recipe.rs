//! `docs/ci.md`: its shell steps are the ones both pipeline jobs run, and they do what the page says when run
//! against the demo deployment (`demo/` with the repo's `hooks.toml`, as its own Compose project): a healthy upgrade
//! passes the job, a broken one fails it with hookrun's exit code and error after rolling back.

use std::path::Path;
use std::process::Command;

use hookrun_e2e::demo::{repo, Demo};
use hookrun_e2e::docker::engine;
use hookrun_e2e::{hookrun_bin, Sandbox};

/// The fenced `sh` block after the page's `<!-- recipe` marker.
fn recipe(page: &str) -> String {
    let after = &page[page.find("<!-- recipe").expect("docs/ci.md marks its recipe")..];
    let start = after.find("```sh\n").expect("a sh block follows the marker") + "```sh\n".len();
    let end = after[start..].find("```").unwrap();
    after[start..start + end].to_string()
}

#[test]
fn both_pipeline_jobs_run_the_recipes_steps() {
    let page = std::fs::read_to_string(repo().join("docs/ci.md")).unwrap();
    let steps = recipe(&page);
    for job in ["## GitHub Actions", "## GitLab CI"] {
        let section = &page[page.find(job).unwrap_or_else(|| panic!("docs/ci.md has {job}"))..];
        for line in steps.lines().filter(|l| !l.trim().is_empty()) {
            assert!(section.contains(line.trim()), "{job} runs `{}`", line.trim());
        }
    }
}

/// Runs the recipe with `FROM`/`TO` (and `extra` environment) in the copy of the demo at `root`.
fn run_recipe(root: &Path, steps: &str, extra: &[(&str, &str)]) -> (i32, String, serde_json::Value) {
    let path = format!(
        "{}:{}",
        hookrun_bin().parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let output = Command::new("bash")
        .arg("-euc")
        .arg(steps)
        .current_dir(root)
        .env("PATH", path)
        .env("FROM", "1.2.3")
        .env("TO", "1.3.0")
        .env("COMPOSE_DOCKER_CLI_BUILD", "0")
        .envs(extra.iter().copied())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let document = std::fs::read_to_string(root.join("upgrade.json")).unwrap_or_default();
    let document = serde_json::from_str(&document).unwrap_or_else(|e| {
        panic!(
            "upgrade.json is one document ({e}):\n{document}\nstderr:\n{}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (output.status.code().unwrap_or(-1), stdout, document)
}

#[test]
fn the_recipe_passes_a_healthy_upgrade_of_the_demo_and_fails_a_broken_one_with_hookruns_exit_code() {
    let Some(_docker) = engine() else { return };
    let sandbox = Sandbox::new();
    let root = sandbox.path();
    // The demo as it is in the repo, with the repo's hooks.toml, under a project name of its own.
    let demo = Demo::up(&sandbox, "hrci");
    let steps = recipe(&std::fs::read_to_string(repo().join("docs/ci.md")).unwrap());

    let (code, stdout, doc) = run_recipe(root, &steps, &[]);
    assert_eq!(code, 0, "{stdout}\n{doc:#}");
    assert!(stdout.contains("hookrun upgrade exited 0"), "{stdout}");
    assert_eq!(doc["upgrade"]["status"], "upgraded");

    // Back to 1.2.3 the way the demo starts, then an upgrade whose healthcheck fails.
    demo.project.up_as_is();
    let (code, stdout, doc) = run_recipe(root, &steps, &[("DEMO_BROKEN", "yes")]);
    assert_eq!(code, 5, "{stdout}\n{doc:#}");
    assert!(stdout.contains("hookrun upgrade exited 5"), "{stdout}");
    assert!(stdout.contains("\"error\""), "the job prints the error: {stdout}");
    assert_eq!(doc["upgrade"]["status"], "rolled-back");
    drop(demo);
}

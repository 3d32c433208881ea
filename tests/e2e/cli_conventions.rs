//! hookrun follows its users' habits outside the chain too: clap's shell completions, a man page, a `--version` that
//! names the commit, and the scheduled runs of `docs/scheduled/` (a systemd service and timer that
//! `systemd-analyze verify` accepts, a cron line) whose commands really run.

use std::path::Path;
use std::process::Command;

use hookrun_e2e::demo::repo;
use hookrun_e2e::{hookrun_bin, sh, Sandbox};

fn hookrun_stdout(args: &[&str]) -> String {
    let run = Sandbox::new().run(args);
    assert_eq!(run.code, 0, "{}", run.stderr);
    run.stdout
}

/// The subcommands `hookrun --help` lists.
fn subcommands() -> Vec<String> {
    hookrun_e2e::listed_commands(&hookrun_stdout(&["--help"]))
}

/// What bash completes for the words `line` (the last one being completed), with hookrun's script loaded.
fn bash_completes(line: &str) -> Vec<String> {
    let script = hookrun_stdout(&["completions", "bash"]);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hookrun.bash"), script).unwrap();
    let words: Vec<&str> = line.split(' ').collect();
    let program = format!(
        "source {}; COMP_WORDS=({}); COMP_CWORD={}; COMP_LINE='{line}'; COMP_POINT=${{#COMP_LINE}}; \
         _hookrun hookrun '{}' '{}'; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        dir.path().join("hookrun.bash").display(),
        words.iter().map(|w| format!("'{w}'")).collect::<Vec<_>>().join(" "),
        words.len() - 1,
        words[words.len() - 1],
        words[words.len() - 2],
    );
    let output = Command::new("bash").arg("-c").arg(program).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn bash_completes_subcommands_and_their_flags_and_zsh_and_fish_get_scripts_of_their_own() {
    assert_eq!(bash_completes("hookrun ver"), ["verify"]);
    assert!(bash_completes("hookrun restore --dr").contains(&"--dry-run".to_string()));
    assert!(bash_completes("hookrun completions ").contains(&"fish".to_string()));
    let zsh = hookrun_stdout(&["completions", "zsh"]);
    assert!(zsh.starts_with("#compdef hookrun"), "{}", &zsh[..80.min(zsh.len())]);
    let fish = hookrun_stdout(&["completions", "fish"]);
    for command in subcommands() {
        assert!(zsh.contains(&format!("'{command}:")), "zsh completes {command}");
        assert!(fish.contains(&format!("-a \"{command}\"")), "fish completes {command}");
    }
    let json = Sandbox::new().run(&["--json", "completions", "bash"]);
    assert_eq!(json.code, 2, "a script is not a document: {}", json.stdout);
}

#[test]
fn the_man_page_names_every_subcommand_and_man_renders_it() {
    let page = hookrun_stdout(&["man"]);
    assert!(page.contains(".TH hookrun 1"), "{}", &page[..200.min(page.len())]);
    let commands = subcommands();
    assert!(commands.len() >= 18, "{commands:?}");
    for command in &commands {
        assert!(
            page.contains(&format!("hookrun\\-{}", command.replace('-', "\\-"))),
            "the page names {command}"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hookrun.1"), &page).unwrap();
    let rendered = Command::new("man")
        .arg("-l")
        .arg(dir.path().join("hookrun.1"))
        .env("MANWIDTH", "100")
        .env("MANPAGER", "cat")
        .output()
        .expect("man is installed (Debian's man-db)");
    let text = String::from_utf8_lossy(&rendered.stdout);
    assert!(
        rendered.status.success(),
        "{}",
        String::from_utf8_lossy(&rendered.stderr)
    );
    assert!(
        text.contains("SUBCOMMANDS") && text.contains("hookrun-pre-upgrade(1)"),
        "{text}"
    );
}

#[test]
fn version_names_the_commit_it_was_built_from() {
    let head = sh(&format!("git -C {} rev-parse --short=12 HEAD", repo().display()));
    let version = hookrun_stdout(&["--version"]);
    assert_eq!(
        version.trim(),
        format!("hookrun {} (commit {})", env!("CARGO_PKG_VERSION"), head.trim())
    );
}

/// A deployment of one folder: a `hooks.toml` that backs it up and records it.
fn deployment() -> Sandbox {
    let sandbox = Sandbox::new();
    sandbox.file("config/app.env", b"A=1\n", 0o644);
    sandbox.config(
        "[[hook]]\nname = \"backup\"\nbuiltin = \"backup\"\n[hook.config]\nsources = [\"config\"]\n\n\
         [[hook]]\nname = \"record\"\nbuiltin = \"record\"\n",
    );
    sandbox
}

/// Replaces the docs' binary and folder by the built binary and `sandbox`.
fn localised(text: &str, sandbox: &Sandbox) -> String {
    text.replace("/usr/local/bin/hookrun", &hookrun_bin().display().to_string())
        .replace("/srv/app", &sandbox.path().display().to_string())
}

#[test]
fn the_systemd_service_and_timer_pass_systemd_analyze_verify_and_the_service_runs_backup_then_prune() {
    let docs = repo().join("docs/scheduled");
    let sandbox = deployment();
    let units = tempfile::tempdir().unwrap();
    for unit in ["hookrun-backup.service", "hookrun-backup.timer"] {
        let text = std::fs::read_to_string(docs.join(unit)).unwrap();
        std::fs::write(units.path().join(unit), localised(&text, &sandbox)).unwrap();
    }
    let verify = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(units.path().join("hookrun-backup.service"))
        .arg(units.path().join("hookrun-backup.timer"))
        .output()
        .expect("systemd-analyze is installed (Debian's systemd)");
    let complaints = String::from_utf8_lossy(&verify.stderr);
    let ours: Vec<&str> = complaints.lines().filter(|l| l.contains("hookrun")).collect();
    assert!(verify.status.success() && ours.is_empty(), "{complaints}");

    // What the service runs, in order, as systemd would (each ExecStart= in its working directory).
    let service = std::fs::read_to_string(units.path().join("hookrun-backup.service")).unwrap();
    let commands: Vec<&str> = service.lines().filter_map(|l| l.strip_prefix("ExecStart=")).collect();
    assert_eq!(commands.len(), 2, "backup, then prune");
    for command in commands {
        let run = Command::new("sh")
            .arg("-c")
            .arg(command)
            .current_dir(sandbox.path())
            .output()
            .unwrap();
        assert!(
            run.status.success(),
            "{command}: {}",
            String::from_utf8_lossy(&run.stderr)
        );
    }
    assert_eq!(
        sandbox.catalog_value::<i64>("SELECT count(*) FROM backups WHERE status = 'completed'"),
        1
    );
}

#[test]
fn the_cron_line_is_a_valid_entry_whose_command_backs_up_and_prunes() {
    let page = std::fs::read_to_string(repo().join("docs/scheduled/README.md")).unwrap();
    let after = &page[page.find("<!-- cron -->").expect("the page marks its cron line")..];
    let line = after.lines().nth(2).expect("the line after the fence");
    let fields: Vec<&str> = line.splitn(7, ' ').collect();
    assert_eq!(fields.len(), 7, "minute hour day month weekday user command: {line}");
    for (field, range) in fields[..5].iter().zip([0..60, 0..24, 1..32, 1..13, 0..8]) {
        assert!(
            *field == "*" || field.parse::<u32>().is_ok_and(|v| range.contains(&v)),
            "{field} in {line}"
        );
    }
    assert_eq!(fields[5], "root");
    let sandbox = deployment();
    let run = Command::new("sh")
        .arg("-c")
        .arg(localised(fields[6], &sandbox))
        .current_dir(Path::new("/"))
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    assert_eq!(
        sandbox.catalog_value::<i64>("SELECT count(*) FROM backups WHERE status = 'completed'"),
        1
    );
}

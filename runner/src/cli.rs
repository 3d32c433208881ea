//! The command line: arguments, logging to stderr, dispatch, and errors turned into exit codes.

use std::io::{BufRead, IsTerminal};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use hookrun_catalog::{BackupFilter, BackupRow, BackupStatus, RunKind};
use hookrun_hooks::ProgressSink;
use hookrun_remote::Identities;
use tracing_subscriber::EnvFilter;

use crate::commands;
use crate::commands::restore::Pick;
use crate::config::Check;
use crate::event::{EventSink, Fanout};
use crate::exit::{Exit, UsageError};
use crate::report::human::{CommandOutputToStderr, HumanReporter};
use crate::report::{out, render};
use crate::retention::Rules;
use crate::session::{OpenCatalog, ReadSession, Session};
use crate::wasm::CacheMode;

/// The version `--version` shows: the package's, and the commit it was built from (`build.rs`).
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (commit ", env!("HOOKRUN_COMMIT"), ")");

/// Safe upgrades of Docker Compose deployments: back up, record, and bring the services back, whatever failed.
#[derive(Debug, Parser)]
#[command(name = "hookrun", version = VERSION, about, long_about = None)]
pub struct Cli {
    /// The chain's configuration file.
    #[arg(long, global = true, default_value = "hooks.toml", env = "HOOKRUN_CONFIG")]
    pub config: PathBuf,

    /// Print one JSON document on stdout instead of lines (logs stay on stderr).
    #[arg(long, global = true)]
    pub json: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the chain before an upgrade: the backup is labelled pre-upgrade and is a rollback point.
    PreUpgrade {
        /// The version of the deployment as it is now (before the upgrade).
        #[arg(long = "version")]
        version: String,
    },
    /// Run the chain now, as a manual backup.
    Backup {
        /// The deployment's version (default: `[runner] version`, else "unknown").
        #[arg(long = "version")]
        version: Option<String>,
    },
    /// Upgrade behind a health gate: run the pre-upgrade chain (recording what runs), the upgrade command, then wait
    /// until the project is healthy; roll data, Compose files and containers back when it is not. Exit 0 upgraded,
    /// 5 rolled back, 1 nothing upgraded, 3 the rollback failed.
    Upgrade {
        /// The version running now (the backup is labelled with it).
        #[arg(long = "version")]
        version: String,
        /// The version the command upgrades to.
        #[arg(long)]
        to: String,
        /// The upgrade command after `--` (default: `[upgrade] command`); no shell unless you name one.
        #[arg(last = true)]
        command: Vec<String>,
    },
    /// Show the resolved chain, its sources and their sizes, and the free-space verdict; touches nothing.
    Plan,
    /// List the backups in the catalog, oldest first.
    List {
        /// Only this type: manual or pre-upgrade.
        #[arg(long = "type", value_parser = ["manual", "pre-upgrade"])]
        kind: Option<String>,
        /// Only this status: completed or failed.
        #[arg(long, value_parser = ["completed", "failed"])]
        status: Option<String>,
    },
    /// Show one backup with its run and the run's hook results.
    Show {
        /// The backup's id (see `hookrun list`).
        id: i64,
    },
    /// After a run died (kill -9, power loss): start what it left stopped, clean up, mark it interrupted; remove
    /// what finished restores left beside their targets.
    Recover,
    /// Read archives to the end, check them against the catalog and that a restore would accept them; records the
    /// result.
    Verify {
        /// The backup to verify.
        id: Option<i64>,
        /// Verify every completed backup.
        #[arg(long, conflicts_with = "id")]
        all: bool,
        /// Read back the copies on remotes instead (`--remote=NAME`: on that one only): each object's SHA-256, and
        /// with --identity the archive's after decryption.
        #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "")]
        remote: Option<String>,
        /// The age identity file that decrypts encrypted copies (an `age-keygen` file or an SSH private key).
        #[arg(long, requires = "remote")]
        identity: Option<PathBuf>,
    },
    /// Upload every completed backup that lacks a copy on a remote (or on --remote NAME); resumable.
    Sync {
        /// Only this remote.
        #[arg(long)]
        remote: Option<String>,
    },
    /// Put a backup's data back: verify, stop, extract beside each target, swap, start, remove the old copies.
    Restore {
        /// The backup to restore.
        id: i64,
        /// Only these paths of the archive (e.g. `config` or `volumes/myapp_db`).
        #[arg(long, num_args = 1..)]
        only: Vec<String>,
        /// Say what would change, change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Do not ask (on a terminal, restore asks first).
        #[arg(long)]
        yes: bool,
        /// The age identity file that decrypts a remote copy, when the local archive is missing or damaged.
        #[arg(long)]
        identity: Option<PathBuf>,
    },
    /// Restore the newest verified, completed pre-upgrade backup (or --to ID); asks first on a terminal.
    Rollback {
        /// Roll back to this backup instead.
        #[arg(long)]
        to: Option<i64>,
        /// Do not ask.
        #[arg(long)]
        yes: bool,
        /// Say what would change, change nothing.
        #[arg(long)]
        dry_run: bool,
        /// The age identity file that decrypts a remote copy, when the local archive is missing or damaged.
        #[arg(long)]
        identity: Option<PathBuf>,
    },
    /// Delete the backups no rule keeps (rules combine with OR; the newest verified backup is always kept).
    Prune {
        /// Keep the N newest usable backups.
        #[arg(long)]
        keep_last: Option<usize>,
        /// Keep every backup made within this long of the newest one (e.g. "30d").
        #[arg(long, value_parser = humantime::parse_duration)]
        keep_within: Option<std::time::Duration>,
        /// Keep the N newest usable pre-upgrade backups.
        #[arg(long)]
        keep_pre_upgrade: Option<usize>,
        /// Say what would be deleted, delete nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Delete one backup (its remote copies, its archive, then its row).
    Delete {
        /// The backup to delete.
        id: i64,
    },
    /// Bytes and files per source, the archive size expected from a compressed sample, and the free-space verdict.
    Estimate,
    /// Move every archive to a new storage dir, verified, one at a time (resumable).
    MigrateStorage {
        /// The new storage dir.
        new_dir: PathBuf,
    },
    /// Serve the operator's web UI: the backups, their runs and timelines, and the operations (back up, verify,
    /// restore, roll back, upgrade) with live progress. Prints the URL to open, with its secret token, once.
    Ui {
        /// Where to listen; anything but loopback needs --token-file.
        #[arg(long, default_value = crate::ui::DEFAULT_LISTEN)]
        listen: std::net::SocketAddr,
        /// Read the secret token from this file (only its owner may read it) instead of drawing a new one.
        #[arg(long)]
        token_file: Option<PathBuf>,
    },
    /// Write a commented hooks.toml for a running Compose project (found through the Docker API): stop, snapshot,
    /// start, backup of its volumes and bind mounts, record; dump hooks suggested for its databases. Never
    /// overwrites a file.
    Init {
        /// The Compose project (default: the only one the engine has).
        #[arg(long)]
        project: Option<String>,
    },
    /// Print the shell completion script for bash, zsh or fish (e.g. `hookrun completions bash >
    /// /etc/bash_completion.d/hookrun`).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the Prometheus metrics (text format) the catalog gives: what `[runner] metrics_file` holds after every
    /// run.
    Metrics,
    /// Print hookrun's man page (roff; e.g. `hookrun man > /usr/local/share/man/man1/hookrun.1`).
    Man,
    /// Work with the configured hooks.
    Hooks {
        #[command(subcommand)]
        command: HooksCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum HooksCommand {
    /// Load and validate every hook (WASM modules loaded and linked) without running any.
    Check,
    /// Scaffold a new WASM hook crate using the SDK.
    New {
        /// The hook's name (also the crate's).
        name: String,
        /// Where to create it (default: ./NAME).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

/// Parses the arguments, runs the command, and maps its result to an exit code. Output that could not be written
/// (a closed pipe, a full disk) does not stop the command; it is reported once the command has ended, and a
/// command that succeeded then exits 1.
pub fn main() -> ExitCode {
    let cli = Cli::try_parse().unwrap_or_else(|error| refuse_arguments(error));
    let colour = out::stderr_colour();
    tracing_subscriber::fmt()
        .with_writer(out::LogWriter { colour })
        .with_ansi(false)
        .log_internal_errors(false)
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn")))
        .with_target(false)
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            out::error_line(&format!("hookrun: cannot start: {e}"));
            return ExitCode::from(Exit::Failed.code());
        }
    };
    let json = cli.json;
    let exit = match runtime.block_on(dispatch(cli)) {
        Ok(exit) => exit,
        Err(error) => {
            let exit = Exit::for_error(&error);
            let message = format!("{error:#}");
            out::error_line(&format!("hookrun: {message}"));
            if json {
                out::document(&serde_json::json!({ "error": message, "exit_code": exit.code() }));
            }
            exit
        }
    };
    let exit = match out::stdout_failure() {
        None => exit,
        Some(failure) => {
            out::error_line(&format!(
                "hookrun: could not write to stdout ({failure}); the command itself went on to its end, see the \
                 catalog (`hookrun list`, `hookrun show`) for what it did"
            ));
            if exit == Exit::Success {
                Exit::Failed
            } else {
                exit
            }
        }
    };
    ExitCode::from(exit.code())
}

/// Arguments clap cannot parse: its message on stderr and its exit code (2), as always; under `--json` the error
/// document on stdout too, so that a pipeline gets its one document whatever it passed. `--help` and `--version`
/// are not errors and print what they print.
fn refuse_arguments(error: clap::Error) -> ! {
    let json = std::env::args_os().skip(1).any(|arg| arg == "--json");
    if json && error.use_stderr() {
        let message = match error.kind() {
            // clap prints the help there, which holds no message.
            clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
                "a subcommand is missing (see --help)".to_string()
            }
            // Its message is the first paragraph (what follows is usage and advice), as one line.
            _ => {
                let rendered = error.render().to_string();
                let paragraph: Vec<&str> = rendered
                    .lines()
                    .take_while(|l| !l.trim().is_empty())
                    .map(str::trim)
                    .collect();
                let message = paragraph.join(" ");
                message.strip_prefix("error: ").unwrap_or(&message).to_string()
            }
        };
        out::document(&serde_json::json!({ "error": message, "exit_code": error.exit_code() }));
    }
    error.exit()
}

/// Runs the command: opens its session (saying what recovering interrupted runs did, or warning about them), calls
/// the command, and renders its result for people or as JSON.
async fn dispatch(cli: Cli) -> anyhow::Result<Exit> {
    let (config, json) = (cli.config.as_path(), cli.json);
    let human = HumanReporter::default();
    let silent = Fanout(Vec::new());
    let events: &dyn EventSink = if json { &silent } else { &human };
    match cli.command {
        Command::PreUpgrade { version } => {
            backup(config, RunKind::PreUpgrade, Some(version), json, &human, events).await
        }
        Command::Backup { version } => backup(config, RunKind::Manual, version, json, &human, events).await,
        Command::Upgrade { version, to, command } => {
            commands::run::check_version(Some(&version))?;
            commands::run::check_version(Some(&to))?;
            let session = open(config, Check::Full, json, false).await?;
            let command = commands::upgrade::command_for(&session.config, command)?;
            let request = commands::upgrade::UpgradeRequest {
                from: version,
                to,
                command,
            };
            let output = CommandOutputToStderr;
            let events: &dyn EventSink = if json { &output } else { &human };
            let (result, exit) = commands::upgrade::upgrade(&session, request, events).await?;
            render::render(&result, json);
            Ok(exit)
        }
        Command::Plan => {
            let session = ReadSession::validated(config, CacheMode::ReadOnly)?;
            let (result, exit) = commands::plan::plan(&session).await?;
            render::render(&result, json);
            Ok(exit)
        }
        Command::List { kind, status } => {
            let session = ReadSession::open(config, Check::Shape, OpenCatalog::IfExists)?;
            render::interrupted(&session.interrupted_runs()?);
            let filter = BackupFilter {
                kind,
                status: status.as_deref().and_then(BackupStatus::parse),
            };
            let (result, exit) = commands::list::list(&session, &filter)?;
            render::render(&result, json);
            Ok(exit)
        }
        Command::Recover => {
            let mut session = Session::lock(config, Check::Shape)?;
            let (result, exit) = commands::recover::recover(&mut session).await?;
            render::render(&result, json);
            Ok(exit)
        }
        Command::Verify {
            id,
            all,
            remote,
            identity,
        } => {
            let session = ReadSession::open(config, Check::Shape, OpenCatalog::Always)?;
            let identity = identity.as_deref().map(Identities::from_file).transpose()?;
            let remote = remote.as_deref().map(|name| commands::verify::RemoteCheck {
                name: Some(name).filter(|n| !n.is_empty()),
                identity: identity.as_ref(),
            });
            let mut on_verified = |v: &crate::results::Verified| {
                if !json {
                    render::verified(v);
                }
            };
            let (result, exit) =
                commands::verify::verify(&session, id, all, remote, &mut on_verified, &ProgressSink::discard()).await?;
            render::render(&result, json);
            Ok(exit)
        }
        Command::Sync { remote } => {
            let session = open(config, Check::Shape, json, false).await?;
            let interrupt = crate::interrupt::Interrupt::listen()?;
            let cancel = tokio_util::sync::CancellationToken::new();
            let stopper = {
                let (interrupt, cancel) = (interrupt.clone(), cancel.clone());
                tokio::spawn(async move {
                    interrupt.fired().await;
                    cancel.cancel();
                })
            };
            let mut on_synced = |outcome: Result<&crate::results::Synced, &crate::results::SyncFailure>| {
                if !json {
                    render::synced(outcome);
                }
            };
            let on_progress = |_backup: i64, _remote: &str, _done: u64, _total: u64| {};
            let outcome =
                commands::sync::sync(&session, remote.as_deref(), &cancel, &mut on_synced, &on_progress).await;
            stopper.abort();
            let (result, exit) = outcome?;
            render::render(&result, json);
            Ok(if interrupt.signal().is_some() {
                Exit::Failed
            } else {
                exit
            })
        }
        Command::Restore {
            id,
            only,
            dry_run,
            yes,
            identity,
        } => {
            let confirm = if yes { Confirm::No } else { Confirm::OnTerminal };
            let what = What {
                pick: Pick::Id(id),
                only,
                redeploy: false,
                identity,
            };
            restore(config, what, dry_run, confirm, json, &human, events).await
        }
        Command::Rollback {
            to,
            yes,
            dry_run,
            identity,
        } => {
            let pick = to.map_or(Pick::NewestPreUpgrade, Pick::Id);
            let confirm = if yes { Confirm::No } else { Confirm::Required };
            let what = What {
                pick,
                only: Vec::new(),
                redeploy: true,
                identity,
            };
            restore(config, what, dry_run, confirm, json, &human, events).await
        }
        Command::Prune {
            keep_last,
            keep_within,
            keep_pre_upgrade,
            dry_run,
        } => {
            let rules = Rules {
                keep_last,
                keep_within,
                keep_pre_upgrade,
            };
            commands::prune::check_rules(&rules)?;
            let session = open(config, Check::Shape, json, dry_run).await?;
            let mut on_deleted = |row: &BackupRow| {
                if !json {
                    render::pruned(row, dry_run);
                }
            };
            let (result, exit) = commands::prune::prune(&session, &rules, dry_run, &mut on_deleted).await?;
            render::render(&result, json);
            Ok(exit)
        }
        Command::Estimate => {
            let session = ReadSession::open(config, Check::Full, OpenCatalog::No)?;
            let (result, exit) = commands::estimate::estimate(&session).await?;
            render::render(&result, json);
            Ok(exit)
        }
        Command::Delete { id } => {
            let session = open(config, Check::Shape, json, false).await?;
            let (result, exit) = commands::delete::delete(&session, id).await?;
            render::render(&result, json);
            Ok(exit)
        }
        Command::MigrateStorage { new_dir } => {
            let session = open(config, Check::Shape, json, false).await?;
            let mut on_moved = |moved: &crate::results::Moved| {
                if !json {
                    render::moved(moved);
                }
            };
            let (result, exit) = commands::migrate::migrate(&session, &new_dir, &mut on_moved)?;
            render::render(&result, json);
            Ok(exit)
        }
        Command::Show { id } => {
            let session = ReadSession::open(config, Check::Shape, OpenCatalog::IfExists)?;
            let (result, exit) = commands::show::show(&session, id)?;
            render::render(&result, json);
            Ok(exit)
        }
        Command::Ui { listen, token_file } => {
            let ui = crate::ui::Ui::bind(config, listen, token_file.as_deref()).await?;
            if json {
                out::document(&serde_json::json!({ "url": ui.url, "address": ui.address.to_string() }));
            } else {
                out::line(&format!("hookrun ui: open {} (Ctrl-C stops it)", ui.url));
            }
            let interrupt = crate::interrupt::Interrupt::listen()?;
            ui.serve(async move { interrupt.fired().await }).await?;
            Ok(Exit::Success)
        }
        Command::Init { project } => {
            let (result, exit) = commands::init::init(config, project.as_deref()).await?;
            render::render(&result, json);
            Ok(exit)
        }
        Command::Completions { shell } => {
            refuse_json(json, "completions prints a shell script")?;
            let mut script = Vec::new();
            clap_complete::generate(
                shell,
                &mut <Cli as clap::CommandFactory>::command(),
                "hookrun",
                &mut script,
            );
            out::raw(&script);
            Ok(Exit::Success)
        }
        Command::Metrics => {
            refuse_json(json, "metrics prints Prometheus's text format")?;
            let session = ReadSession::open(config, Check::Shape, OpenCatalog::Always)?;
            let catalog = session.catalog.as_deref().expect("opened always");
            out::raw(crate::metrics::render(catalog)?.as_bytes());
            Ok(Exit::Success)
        }
        Command::Man => {
            refuse_json(json, "man prints a man page")?;
            let mut page = Vec::new();
            clap_mangen::Man::new(<Cli as clap::CommandFactory>::command()).render(&mut page)?;
            out::raw(&page);
            Ok(Exit::Success)
        }
        Command::Hooks {
            command: HooksCommand::Check,
        } => {
            let session = ReadSession::validated(config, CacheMode::ReadWrite)?;
            let (result, exit) = commands::check::check(&session);
            render::render(&result, json);
            Ok(exit)
        }
        Command::Hooks {
            command: HooksCommand::New { name, dir },
        } => {
            let dir = dir.unwrap_or_else(|| PathBuf::from(&name));
            let (result, exit) = commands::check::new_hook(&name, &dir)?;
            render::render(&result, json);
            Ok(exit)
        }
    }
}

/// A command whose output is not a document refuses `--json` (exit 2) rather than print something else.
fn refuse_json(json: bool, what: &str) -> anyhow::Result<()> {
    if json {
        return Err(UsageError(format!("{what}, not JSON: run it without --json")).into());
    }
    Ok(())
}

/// Opens the session of a command that changes storage, and says what recovering the runs that died before did
/// (stdout, or stderr under `--json`), or with `dry_run` warns about those runs; a run whose services could not be
/// brought back stops the command here (exit 3, nothing else done).
async fn open(config: &Path, check: Check, json: bool, dry_run: bool) -> anyhow::Result<Session> {
    let session = Session::open_unless_dry_run(config, check, dry_run).await?;
    render::recovered(&session.recovered, json);
    render::recovered_upgrades(&session.recovered_upgrades, json);
    render::interrupted(&session.interrupted);
    session.ensure_recovered()?;
    Ok(session)
}

/// `pre-upgrade` and `backup`: the chain's hook lines as it goes, then its summary or document.
async fn backup(
    config: &Path,
    kind: RunKind,
    version: Option<String>,
    json: bool,
    human: &HumanReporter,
    events: &dyn EventSink,
) -> anyhow::Result<Exit> {
    commands::run::check_version(version.as_deref())?;
    let session = open(config, Check::Full, json, false).await?;
    let (report, exit) = commands::run::run(&session, kind, version, events).await?;
    render::run(human, &report, json);
    Ok(exit)
}

/// Whether a restore asks before it changes anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Confirm {
    /// `--yes`: never.
    No,
    /// `restore ID`: on a terminal; elsewhere (a script named the backup) it goes on.
    OnTerminal,
    /// `rollback` (which picks the backup itself): on a terminal; elsewhere it refuses without `--yes`.
    Required,
}

/// What a restore puts back: which backup, which of its paths (all when empty), and whether its recorded deployment
/// too (a rollback).
struct What {
    pick: Pick,
    only: Vec<String>,
    redeploy: bool,
    /// Decrypts a remote copy when the local archive cannot be used.
    identity: Option<PathBuf>,
}

/// `restore` and `rollback`: the plan (all a dry run says), the question on a terminal, then the restore's run.
async fn restore(
    config: &Path,
    what: What,
    dry_run: bool,
    confirm: Confirm,
    json: bool,
    human: &HumanReporter,
    events: &dyn EventSink,
) -> anyhow::Result<Exit> {
    let identity = what.identity.as_deref().map(Identities::from_file).transpose()?;
    let session = open(config, Check::Shape, json, dry_run).await?;
    let mut plan = commands::restore::plan(&session, what.pick, what.only, what.redeploy, dry_run)?;
    plan.identity = identity;
    if dry_run {
        render::render(&plan, json);
        return Ok(Exit::Success);
    }
    let on_terminal = std::io::stdin().is_terminal();
    match (confirm, on_terminal) {
        (Confirm::No, _) | (Confirm::OnTerminal, false) => {}
        (Confirm::Required, false) => {
            return Err(UsageError("not on a terminal: pass --yes to roll back without asking".into()).into());
        }
        (Confirm::OnTerminal | Confirm::Required, true) => {
            render::restore_question(&plan);
            let mut answer = String::new();
            std::io::stdin().lock().read_line(&mut answer)?;
            if !matches!(answer.trim(), "y" | "Y" | "yes") {
                return Err(UsageError("not confirmed: nothing was changed".into()).into());
            }
        }
    }
    if !json {
        render::restoring(&plan);
    }
    let (result, exit) = commands::restore::execute(&session, plan, events).await?;
    render::restore(human, &result, json);
    Ok(exit)
}

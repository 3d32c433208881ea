//! The command line: arguments, logging to stderr, dispatch, and errors turned into exit codes.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use hookrun_hooks::RunKind;
use tracing_subscriber::EnvFilter;

use crate::commands;
use crate::exit::Exit;

/// Safe upgrades of Docker Compose deployments: back up, record, and bring the services back, whatever failed.
#[derive(Debug, Parser)]
#[command(name = "hookrun", version, about, long_about = None)]
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
    /// After a run died (kill -9, power loss): start what it left stopped, clean up, mark it interrupted.
    Recover,
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

/// Parses the arguments, runs the command, and maps its result to an exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn")))
        .with_target(false)
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("hookrun: cannot start: {e}");
            return ExitCode::from(Exit::Failed.code());
        }
    };
    let json = cli.json;
    match runtime.block_on(dispatch(cli)) {
        Ok(exit) => ExitCode::from(exit.code()),
        Err(error) => {
            let exit = Exit::for_error(&error);
            let message = format!("{error:#}");
            eprintln!("hookrun: {message}");
            if json {
                println!("{}", serde_json::json!({ "error": message, "exit_code": exit.code() }));
            }
            ExitCode::from(exit.code())
        }
    }
}

async fn dispatch(cli: Cli) -> anyhow::Result<Exit> {
    let (config, json) = (cli.config.as_path(), cli.json);
    match cli.command {
        Command::PreUpgrade { version } => commands::run::run(config, RunKind::PreUpgrade, Some(version), json).await,
        Command::Backup { version } => commands::run::run(config, RunKind::Manual, version, json).await,
        Command::Plan => commands::plan::plan(config, json),
        Command::List { kind, status } => commands::list::list(config, kind, status, json),
        Command::Recover => commands::recover::recover(config, json).await,
        Command::Show { id } => commands::show::show(config, id, json),
        Command::Hooks { command: HooksCommand::Check } => commands::check::check(config, json),
        Command::Hooks { command: HooksCommand::New { name, dir } } => {
            let dir = dir.unwrap_or_else(|| PathBuf::from(&name));
            commands::check::new_hook(&name, &dir)
        }
    }
}

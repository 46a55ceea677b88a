//! The command line: `serve`, `check`, `render`, `contracts`, and the journal commands
//! `alerts list|show|export` and `replay`.
//!
//! Map of the module, one file per command plus what the journal commands share:
//! - `serve`: runs the server ([`crate::server`]) until Ctrl-C or SIGTERM; `check`: validates a config;
//!   `render`: prints the requests an alert would produce; `contracts`: each root's front month, next roll
//!   and expiry;
//! - `alerts`, `replay`: the journal commands; [`args`]: their arguments;
//! - `store`: the journal, opened here or reached through the running server; `client`: the HTTP client of
//!   that server; `output`: what the journal commands print.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};

mod alerts;
pub mod args;
mod check;
mod client;
mod contracts;
mod output;
mod refusals;
mod render;
mod replay;
mod serve;
mod store;

#[derive(Parser, Debug)]
#[command(
    name = "alert-relay",
    version,
    about = "Signed trading alerts in, protective CancelAndBracket orders out."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the relay (embedded default config and paper account unless --config says otherwise).
    Serve {
        /// Config file; without it the embedded default (a copy of the shipped config.toml) is used.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Listen address, overrides server.listen (port 0 picks a free port).
        #[arg(long)]
        listen: Option<String>,
        /// Data directory, overrides server.data_dir.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Log format.
        #[arg(long, value_enum, default_value_t = LogFormat::Text)]
        log_format: LogFormat,
        /// Resolve contract months (`ES1!` → `ES 03-27`) as of this fixed RFC 3339 time instead of now: a
        /// roll tried out on paper before it happens.
        #[arg(long, value_name = "RFC3339")]
        contracts_at: Option<String>,
    },
    /// Validate the config, resolve its secret references and compile every template.
    Check {
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Print the CancelAndBracket request(s) an alert would produce, without executing anything.
    Render {
        /// Template name (file stem in templates_dir, or a built-in).
        #[arg(long)]
        template: String,
        /// Alert body file, or - for standard input.
        #[arg(long)]
        alert: String,
        #[arg(long)]
        config: Option<PathBuf>,
        /// Source name made available to the template as `source`.
        #[arg(long, default_value = "render")]
        source: String,
        /// Resolve contract months as of this RFC 3339 time instead of now.
        #[arg(long, value_name = "RFC3339")]
        at: Option<String>,
    },
    /// For each root: the front month, the next roll date and the expiry (as of now, or --at).
    Contracts {
        #[arg(long)]
        config: Option<PathBuf>,
        /// As of this RFC 3339 time (e.g. 2026-12-11T14:30:00Z) instead of now.
        #[arg(long, value_name = "RFC3339")]
        at: Option<String>,
    },
    /// Inspect the journal: list, show, export records (works with or without a running server).
    Alerts {
        #[command(subcommand)]
        command: args::AlertsCommand,
    },
    /// Run stored alerts again through the current templates: dry-run (default), paper or live.
    Replay(args::ReplayArgs),
    /// The running relay's most recent refused webhooks (wrong secret, unparsable body, blocked address,
    /// unknown source, rate limit...), newest first.
    Refusals {
        #[command(flatten)]
        at: args::Location,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// Print `{"refusals": [...], "count": N}` as `GET /api/refusals` does.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // `serve --log-format json` writes nothing but JSON log lines, its last error included.
    let json_errors = matches!(
        cli.command,
        Command::Serve {
            log_format: LogFormat::Json,
            ..
        }
    );
    let result = match cli.command {
        Command::Serve {
            config,
            listen,
            data_dir,
            log_format,
            contracts_at,
        } => {
            init_logging(log_format, "info");
            serve::serve(
                config.as_deref(),
                listen,
                data_dir,
                log_format,
                contracts_at.as_deref(),
            )
        }
        Command::Check { config } => check::check(config.as_deref()),
        Command::Render {
            template,
            alert,
            config,
            source,
            at,
        } => render::render(config.as_deref(), &template, &alert, &source, at.as_deref()),
        Command::Contracts { config, at } => contracts::contracts(config.as_deref(), at.as_deref()),
        Command::Alerts { command } => {
            init_logging(LogFormat::Text, "warn");
            alerts::alerts(command)
        }
        Command::Replay(args) => {
            init_logging(LogFormat::Text, "warn");
            replay::replay(args)
        }
        Command::Refusals { at, limit, json } => {
            init_logging(LogFormat::Text, "warn");
            refusals::refusals(at, limit, json)
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if json_errors => {
            tracing::error!("{e:#}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(format: LogFormat, default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    // Colours only for a person at a terminal: a log file or journald would get escape codes.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// The runtime of the journal commands (`alerts`, `replay`): two workers.
fn command_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

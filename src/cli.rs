//! The command line: `serve`, `check`, `render`, and the journal commands `alerts list|show|export` and
//! `replay` (implemented in [`crate::inspect`]).

use std::io::Read;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use serde_json::json;

use crate::config::Config;
use crate::server::Server;
use crate::template::Rendered;

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
    },
    /// Inspect the journal: list, show, export records (works with or without a running server).
    Alerts {
        #[command(subcommand)]
        command: crate::inspect::AlertsCommand,
    },
    /// Run stored alerts again through the current templates: dry-run (default), paper or live.
    Replay(crate::inspect::ReplayArgs),
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve {
            config,
            listen,
            data_dir,
            log_format,
        } => {
            init_logging(log_format, "info");
            serve(config.as_deref(), listen, data_dir)
        }
        Command::Check { config } => check(config.as_deref()),
        Command::Render {
            template,
            alert,
            config,
            source,
        } => render(config.as_deref(), &template, &alert, &source),
        Command::Alerts { command } => {
            init_logging(LogFormat::Text, "warn");
            crate::inspect::alerts(command)
        }
        Command::Replay(args) => {
            init_logging(LogFormat::Text, "warn");
            crate::inspect::replay(args)
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(format: LogFormat, default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Loads the config and applies command-line overrides, then validates again.
pub fn load_config(
    path: Option<&Path>,
    listen: Option<String>,
    data_dir: Option<PathBuf>,
) -> anyhow::Result<Config> {
    let mut cfg = Config::load(path)?;
    if let Some(l) = listen {
        cfg.server.listen = l;
    }
    if let Some(d) = data_dir {
        // A data dir given on the command line is relative to the working directory, as usual for flags.
        cfg.server.data_dir = std::env::current_dir().map(|cwd| cwd.join(&d)).unwrap_or(d);
    }
    cfg.validate()
        .map_err(|m| anyhow::anyhow!("{}: {m}", cfg.origin))?;
    Ok(cfg)
}

fn serve(
    path: Option<&Path>,
    listen: Option<String>,
    data_dir: Option<PathBuf>,
) -> anyhow::Result<()> {
    let cfg = load_config(path, listen, data_dir)?;
    let rt = crate::runtime::build(cfg.server.workers).context("cannot start the async runtime")?;
    rt.block_on(async move {
        let addr: SocketAddr = cfg.listen_addr().map_err(anyhow::Error::msg)?;
        // Built before binding: a config or journal that cannot be used is reported before the port is taken.
        let server = Server::build(&cfg)?;
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr} (server.listen / --listen)"))?;
        let running = server.start(listener)?;
        // Before anyone can know the address: a SIGTERM from here on is a graceful stop.
        let stop_signal = shutdown_signal();
        running.run_until(stop_signal).await
    })
}

/// Returns a future that resolves on Ctrl-C or SIGTERM. On Unix both handlers are installed by this call,
/// not when the future is first polled, so call it before the server can be reached: until a handler is
/// installed, SIGTERM kills the process outright. (Elsewhere only Ctrl-C is watched, from the first poll.)
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let (interrupt, term) = {
        use tokio::signal::unix::{signal, SignalKind};
        (
            signal(SignalKind::interrupt()).ok(),
            signal(SignalKind::terminate()).ok(),
        )
    };
    async move {
        #[cfg(unix)]
        {
            async fn next(s: Option<tokio::signal::unix::Signal>) {
                match s {
                    Some(mut s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            }
            tokio::select! {
                _ = next(interrupt) => {},
                _ = next(term) => {},
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

fn check(path: Option<&Path>) -> anyhow::Result<()> {
    let cfg = load_config(path, None, None)?;
    let summary = crate::relay::check(&cfg)?;
    println!("{}: OK — {summary}", cfg.origin);
    Ok(())
}

fn render(path: Option<&Path>, template: &str, alert: &str, source: &str) -> anyhow::Result<()> {
    let cfg = load_config(path, None, None)?;
    let raw = if alert == "-" {
        let mut buf = Vec::new();
        std::io::stdin()
            .read_to_end(&mut buf)
            .context("cannot read the alert from standard input")?;
        buf
    } else {
        std::fs::read(alert).with_context(|| format!("cannot read alert file {alert}"))?
    };
    let instruments = Arc::new(cfg.instruments().map_err(anyhow::Error::msg)?);
    let templates = crate::relay::load_templates(&cfg, &instruments)?;
    let mut body =
        crate::body::parse(&raw, None).map_err(|e| anyhow::anyhow!("unparsable alert: {e}"))?;
    // Never echo a shared secret back, whatever the field is called in the configured sources.
    for s in cfg.sources.values() {
        body.take_secret(&s.token_field);
    }
    let out = match templates.render(template, &body.fields, source)? {
        Rendered::Skipped { reason, key } => json!({
            "template": template, "skipped": true, "reason": reason, "idempotencyKey": key,
        }),
        Rendered::Requests { key, requests } => json!({
            "template": template, "idempotencyKey": key, "requests": requests,
        }),
    };
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}

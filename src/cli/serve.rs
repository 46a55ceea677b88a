//! `serve`: loads the config, builds the runtime (`server.workers`), binds `server.listen` and runs the
//! server ([`crate::server`]) until Ctrl-C or SIGTERM. With `--log-format json` the start-up lines are log
//! events too, so every line the process writes is JSON.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;

use std::sync::Arc;

use super::LogFormat;
use crate::clock::ManualClock;
use crate::config::load_config;
use crate::server::{Server, StartupOutput};

pub(super) fn serve(
    path: Option<&Path>,
    listen: Option<String>,
    data_dir: Option<PathBuf>,
    log_format: LogFormat,
    contracts_at: Option<&str>,
) -> anyhow::Result<()> {
    let cfg = load_config(path, listen, data_dir)?;
    let contracts_at = contracts_at
        .map(|s| super::contracts::parse_at(s, "--contracts-at"))
        .transpose()?;
    let rt = crate::runtime::build(cfg.server.workers).context("cannot start the async runtime")?;
    rt.block_on(async move {
        let addr: SocketAddr = cfg.listen_addr().map_err(anyhow::Error::msg)?;
        // Built before binding: a config or journal that cannot be used is reported before the port is taken.
        let mut server = Server::build(&cfg)?.startup_output(match log_format {
            LogFormat::Text => StartupOutput::Stdout,
            LogFormat::Json => StartupOutput::Log,
        });
        if let Some(at) = contracts_at {
            server = server.with_contracts_clock(Arc::new(ManualClock::new(at.as_ms())));
        }
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

//! A running server: the one start-up and shutdown sequence that `alert-relay serve`, the integration tests
//! (in-process servers) and the benchmark's relay child all go through.
//!
//! ```text
//! let server = Server::build(&cfg)?;        // Relay::build: templates, secrets, the journal
//! let running = server.start(listener)?;    // start-up lines, recovery, <data_dir>/server.json
//! running.run_until(shutdown).await?;       // "listening on", maintenance, HTTP until `shutdown`, drain, flush
//! ```
//!
//! As in mini-redis's `server::run(listener, shutdown)`, the caller binds the listener (`serve` binds
//! `server.listen`, tests `127.0.0.1:0`) and chooses what stops the server (`serve`: Ctrl-C or SIGTERM).
//! Between the steps a caller can take what it needs: [`Server::with_clock`] (old signature vectors in
//! tests), [`Running::relay`] and [`Running::addr`] (in-process tests, the benchmark's reports).
//!
//! While it runs, the server announces itself in `<data_dir>/server.json` ([`ServerInfo`]), so `alerts` and
//! `replay` reach it through its API instead of opening the journal it holds; a clean exit removes the file.

use std::future::Future;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;

use crate::config::Config;
use crate::relay::{Relay, StartupNotes};

/// Where a running server announces itself, inside its data dir.
pub const SERVER_FILE: &str = "server.json";

/// What a running server writes into `<data_dir>/server.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServerInfo {
    pub url: String,
    pub pid: u32,
}

/// The announcement in `data_dir`, if a server wrote one (it may be stale: a killed server leaves it).
pub fn announced(data_dir: &Path) -> Option<ServerInfo> {
    let raw = std::fs::read(data_dir.join(SERVER_FILE)).ok()?;
    serde_json::from_slice(&raw).ok()
}

/// Where the start-up lines (`config: ...` to `listening on http://...`) go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartupOutput {
    /// Standard output, one plain line each: what people and process supervisors read.
    Stdout,
    /// INFO log events (target `alert_relay::startup`), so `--log-format json` prints nothing but JSON.
    /// They are filtered like any event: with `RUST_LOG=warn` add `alert_relay::startup=info` to keep them.
    Log,
    /// Nowhere (the lines are still in [`Running::lines`]).
    Quiet,
}

/// A relay built from a config, its journal open, not yet recovered or reachable.
pub struct Server {
    cfg: Config,
    relay: Arc<Relay>,
    notes: StartupNotes,
    output: StartupOutput,
}

impl Server {
    /// Builds the relay: templates, sources and their secrets, executors, the journal (see [`Relay::build`]).
    pub fn build(cfg: &Config) -> anyhow::Result<Server> {
        let (relay, notes) = Relay::build(cfg)?;
        Ok(Server {
            cfg: cfg.clone(),
            relay,
            notes,
            output: StartupOutput::Stdout,
        })
    }

    /// Signature timestamps are checked against `now_unix` instead of the system clock.
    pub fn with_clock(mut self, now_unix: impl Fn() -> i64 + Send + Sync + 'static) -> Server {
        self.relay = self.relay.with_clock(now_unix);
        self
    }

    /// Contract months resolve by `clock` instead of the system clock (a roll tried out before it happens,
    /// `serve --contracts-at`; tests on either side of a roll).
    pub fn with_contracts_clock(mut self, clock: Arc<dyn crate::clock::Clock>) -> Server {
        self.relay = self.relay.with_contracts_clock(clock);
        self
    }

    /// Prints nothing on standard output (the lines are still in [`Running::lines`]).
    pub fn quiet(self) -> Server {
        self.startup_output(StartupOutput::Quiet)
    }

    /// Where the start-up lines go (standard output unless told otherwise).
    pub fn startup_output(mut self, output: StartupOutput) -> Server {
        self.output = output;
        self
    }

    /// Prints the start-up lines (config, data dir, async workers, build notes), recovers the journal's
    /// unfinished executions (`recovery: ...` lines) and announces the server in `<data_dir>/server.json`.
    /// Nothing is served yet: connections wait in the listener's backlog until [`Running::run_until`].
    /// Call it inside the tokio runtime the server is to run on.
    pub fn start(self, listener: TcpListener) -> anyhow::Result<Running> {
        let Server {
            cfg,
            relay,
            notes,
            output,
        } = self;
        let addr = listener.local_addr()?;
        let mut out = Lines::new(output);
        out.say(format!("config: {}", cfg.origin))?;
        out.say(format!("data dir: {}", cfg.data_dir().display()))?;
        let workers = tokio::runtime::Handle::current().metrics().num_workers();
        out.say(match cfg.server.workers {
            0 => format!("async workers: {workers} (server.workers = 0: one per core but one)"),
            _ => format!("async workers: {workers} (server.workers)"),
        })?;
        for line in &notes.lines {
            out.say(line.clone())?;
        }
        for line in relay.contract_lines() {
            out.say(format!("contracts: {line}"))?;
        }
        for line in relay.recover()? {
            out.say(format!("recovery: {line}"))?;
        }
        // Lets `alerts` / `replay` find this server while it holds the journal.
        let data_dir = cfg.data_dir();
        announce(&data_dir, addr)
            .with_context(|| format!("cannot write {}", data_dir.join(SERVER_FILE).display()))?;
        Ok(Running {
            relay,
            addr,
            lines: out.lines,
            listener,
            data_dir,
            output,
        })
    }
}

/// A recovered relay with its listener, announced in its data dir; [`Running::run_until`] serves it.
pub struct Running {
    pub relay: Arc<Relay>,
    /// The address the listener is bound to (the port chosen when 0 was asked for).
    pub addr: SocketAddr,
    /// The start-up lines printed so far (without `listening on`).
    pub lines: Vec<String>,
    listener: TcpListener,
    data_dir: PathBuf,
    output: StartupOutput,
}

impl Running {
    /// Prints `listening on http://ADDR`, starts the journal maintenance and serves HTTP until `shutdown`
    /// resolves; then stops accepting, lets open connections finish for `server.shutdown_grace_ms`, drains
    /// the executions, flushes the journal and removes `server.json`.
    ///
    /// Whatever makes `shutdown` resolve should be in place before this is called: the line it prints is
    /// what process supervisors and the tests wait for.
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        let Running {
            relay,
            addr,
            listener,
            data_dir,
            output,
            ..
        } = self;
        Lines::new(output).say(format!("listening on http://{addr}"))?;
        relay.spawn_maintenance();
        relay.spawn_settlements();
        relay.spawn_contract_watch();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(crate::web::serve(relay.clone(), listener, async move {
            let _ = stop_rx.await;
        }));
        shutdown.await;
        tracing::info!("shutdown requested: no new connections; finishing in-flight work");
        let _ = stop_tx.send(());
        // Open WebSocket sessions would hold a graceful stop forever: bound it.
        if tokio::time::timeout(relay.shutdown_grace, server)
            .await
            .is_err()
        {
            tracing::warn!("connections still open after the grace period; closing them");
        }
        relay.shutdown().await;
        let _ = std::fs::remove_file(data_dir.join(SERVER_FILE));
        tracing::info!("journal flushed; bye");
        Ok(())
    }
}

/// Start-up lines: kept, and printed or logged as [`StartupOutput`] says.
struct Lines {
    output: StartupOutput,
    lines: Vec<String>,
}

impl Lines {
    fn new(output: StartupOutput) -> Lines {
        Lines {
            output,
            lines: Vec::new(),
        }
    }

    fn say(&mut self, line: String) -> std::io::Result<()> {
        match self.output {
            StartupOutput::Stdout => {
                let mut out = std::io::stdout().lock();
                writeln!(out, "{line}")?;
                out.flush()?;
            }
            StartupOutput::Log => tracing::info!(target: "alert_relay::startup", "{line}"),
            StartupOutput::Quiet => {}
        }
        self.lines.push(line);
        Ok(())
    }
}

/// Announces a server bound to `bound` (an unspecified address is announced as loopback). Written to a
/// temporary file and renamed, so a reader never sees half of it.
fn announce(data_dir: &Path, bound: SocketAddr) -> std::io::Result<()> {
    let mut addr = bound;
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr {
            SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    let info = ServerInfo {
        url: format!("http://{addr}"),
        pid: std::process::id(),
    };
    let path = data_dir.join(SERVER_FILE);
    let tmp = data_dir.join(format!("{SERVER_FILE}.tmp"));
    std::fs::write(&tmp, serde_json::to_vec(&info).unwrap_or_default())?;
    std::fs::rename(&tmp, path)
}

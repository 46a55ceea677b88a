//! The bench's options: clap, each also as an environment variable (`RELAY_BENCH_ALERTS=20000`, …).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// Bare + relay saturation rounds, then the fixed-rate run.
    All,
    /// Saturation rounds only (bare, then relay, each round).
    Saturate,
    /// One relay saturation run.
    Relay,
    /// One bare saturation run.
    Bare,
    /// The fixed-rate run (bare, then relay).
    Rate,
    /// Fixed rate for `--duration` s, one line per `--sample` s.
    Soak,
    /// The template step alone, in this process.
    Render,
    /// One relay saturation run under `perf record`; prints the relay's CPU per alert by stage.
    Profile,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Auth {
    /// The token in the JSON body (TradingView style).
    Token,
    /// An `X-Hub-Signature-256` HMAC header.
    Hmac,
}

/// End-to-end benchmark of `POST /hooks/{source}` against a bare warp server (see the top of main.rs).
#[derive(Debug, Clone, Parser)]
#[command(name = "relay-bench")]
pub struct Opts {
    /// What to run.
    #[arg(long, env = "RELAY_BENCH_MODE", value_enum, default_value_t = Mode::All)]
    pub mode: Mode,
    /// Saturation runs of this many alerts (count-bounded) instead of `--seconds`; render mode: renders
    /// (default 20000).
    #[arg(long, short = 'n', env = "RELAY_BENCH_ALERTS", value_parser = count)]
    pub alerts: Option<usize>,
    /// Seconds per saturation run (time-bounded; ignored when `--alerts` is given).
    #[arg(long, env = "RELAY_BENCH_SECONDS", default_value_t = 15.0)]
    pub seconds: f64,
    /// Requests in flight (one connection each) in saturation runs.
    #[arg(long, short = 'c', env = "RELAY_BENCH_CONCURRENCY", default_value = "64", value_parser = positive)]
    pub concurrency: usize,
    /// Alerts/s in the fixed-rate run and the soak.
    #[arg(long, env = "RELAY_BENCH_RATE", default_value_t = 1000.0)]
    pub rate: f64,
    /// Alerts in the fixed-rate run.
    #[arg(long, env = "RELAY_BENCH_RATE_ALERTS", default_value = "10000", value_parser = count)]
    pub rate_alerts: usize,
    /// Alerts sent (and awaited) at `--concurrency` before each measured run. The default fills the
    /// journal to its retention bound (`journal.max_records` = 100,000 as shipped), so every measured
    /// alert pays for pruning one record: the steady state.
    #[arg(long, env = "RELAY_BENCH_WARMUP", default_value = "100000", value_parser = count)]
    pub warmup: usize,
    /// Saturation rounds, each a bare run then a relay run on fresh servers (default 5 for all and
    /// saturate, 1 otherwise); the figures that count are the medians over the rounds.
    #[arg(long, env = "RELAY_BENCH_ROUNDS", value_parser = positive)]
    pub rounds: Option<usize>,
    /// How alerts are authenticated.
    #[arg(long, env = "RELAY_BENCH_AUTH", value_enum, default_value_t = Auth::Token)]
    pub auth: Auth,
    /// Install an info-level tracing subscriber in the server (writes to /dev/null).
    #[arg(long, env = "RELAY_BENCH_LOG")]
    pub log: bool,
    /// Soak mode: seconds of fixed-rate load.
    #[arg(long, env = "RELAY_BENCH_DURATION", default_value_t = 600)]
    pub duration: u64,
    /// Soak mode: seconds per sample window (printed line).
    #[arg(long, env = "RELAY_BENCH_SAMPLE", default_value = "10", value_parser = positive)]
    pub sample: usize,
    /// Extra TOML merged over the relay's config, e.g. `--config 'journal.cache_mb = 8'`.
    #[arg(long, env = "RELAY_BENCH_CONFIG", default_value = "")]
    pub config: String,
    /// Add a "comment" field of this many filler bytes to every alert (large alerts).
    #[arg(long, env = "RELAY_BENCH_PAD", default_value = "0", value_parser = count)]
    pub pad: usize,
    /// Profile mode: where `perf record` writes (kept for `perf report -i`).
    #[arg(
        long,
        env = "RELAY_BENCH_PERF_DATA",
        default_value = "relay-bench.perf.data"
    )]
    pub perf_data: PathBuf,
    /// Profile mode: perf's sampling frequency (Hz, per thread).
    #[arg(long, env = "RELAY_BENCH_PERF_FREQ", default_value_t = 999)]
    pub perf_freq: u32,
    /// Profile mode: perf's `--call-graph` (`fp` wants a build with `RUSTFLAGS="-C
    /// force-frame-pointers=yes"`; `dwarf` works on any build, with much larger perf data).
    #[arg(long, env = "RELAY_BENCH_PERF_CALL_GRAPH", default_value = "fp")]
    pub perf_call_graph: String,
    /// Internal: serve as a child process (`relay` or `bare`).
    #[arg(long, hide = true)]
    pub serve: Option<String>,
    /// Internal: the child's data directory.
    #[arg(long, hide = true)]
    pub dir: Option<PathBuf>,
    /// Appended by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    pub bench: bool,
}

impl Opts {
    /// How long a saturation run lasts: `--alerts` if given, else `--seconds`.
    pub fn bound(&self) -> Bound {
        match self.alerts {
            Some(n) => Bound::Count(n),
            None => Bound::Time(Duration::from_secs_f64(self.seconds.max(0.1))),
        }
    }
}

/// When a closed-loop run stops.
#[derive(Debug, Clone, Copy)]
pub enum Bound {
    /// After this many requests.
    Count(usize),
    /// Once this much time has passed (requests in flight complete).
    Time(Duration),
}

impl std::fmt::Display for Bound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Bound::Count(n) => write!(f, "{n} alerts"),
            Bound::Time(d) => write!(f, "{} s", d.as_secs_f64()),
        }
    }
}

/// A count, `_` allowed as a separator (`100_000`).
fn count(v: &str) -> Result<usize, String> {
    v.replace('_', "")
        .parse()
        .map_err(|_| format!("not a number: {v}"))
}

fn positive(v: &str) -> Result<usize, String> {
    count(v).map(|n| n.max(1))
}

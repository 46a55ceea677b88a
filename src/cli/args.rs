//! The arguments of `alerts` and `replay`: where the journal is ([`Location`]), which records ([`Filters`]),
//! the `alerts` subcommands, and what a replay does ([`ReplayArgs`], [`Target`], [`Pace`]).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::bail;
use clap::{Args, Subcommand, ValueEnum};

use crate::journal::ListFilter;
use crate::replay::ReplayTarget;

/// Where the journal is: the same `--config` / `--data-dir` as `serve`, and the API token for a running server.
#[derive(Args, Debug, Clone, Default)]
pub struct Location {
    /// Config file; without it the embedded default is used.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Data directory, overrides server.data_dir.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// API token for a running server (default: RELAY_API_TOKEN, then server.api_tokens, then
    /// <data_dir>/api-token).
    #[arg(long, env = "RELAY_API_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

/// Which records: the filters of `GET /api/alerts`.
#[derive(Args, Debug, Clone, Default)]
pub struct Filters {
    /// Only records in this status (accepted, executing, executed, failed, unknown, rejected, skipped,
    /// superseded, expired).
    #[arg(long)]
    pub status: Option<String>,
    /// Only records from this source.
    #[arg(long)]
    pub source: Option<String>,
    /// Received at or after: RFC 3339, unix milliseconds, or an age such as 7d or 12h.
    #[arg(long)]
    pub since: Option<String>,
    /// Received at or before: same forms as --since.
    #[arg(long)]
    pub until: Option<String>,
    /// At most this many records (the newest).
    #[arg(long)]
    pub limit: Option<usize>,
}

#[derive(Subcommand, Debug)]
pub enum AlertsCommand {
    /// List records, newest first (default limit 100).
    List {
        #[command(flatten)]
        at: Location,
        #[command(flatten)]
        filters: Filters,
        /// Print JSON ({"alerts": [...], "count": N}) instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show one record.
    Show {
        id: String,
        #[command(flatten)]
        at: Location,
        /// Print the record as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Settle an alert whose outcome is unknown, after checking the account at the broker yourself.
    Resolve {
        id: String,
        /// What you found: `executed` (the bracket is there) or `failed` (nothing was placed).
        #[arg(long = "as", value_enum)]
        how: crate::settle::Resolution,
        /// Why, kept in the record (e.g. "bracket seen in NinjaTrader at 10:02").
        #[arg(long, default_value = "")]
        note: String,
        #[command(flatten)]
        at: Location,
    },
    /// Write every matching record as JSON lines, oldest first (archive, move machines, `replay --from-file`).
    Export {
        #[command(flatten)]
        at: Location,
        #[command(flatten)]
        filters: Filters,
        #[arg(long, value_enum, default_value_t = ExportFormat::Jsonl)]
        format: ExportFormat,
        /// Output file (default: standard output).
        #[arg(long)]
        output: Option<PathBuf>,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ExportFormat {
    Jsonl,
}

#[derive(Args, Debug)]
pub struct ReplayArgs {
    #[command(flatten)]
    pub at: Location,
    #[command(flatten)]
    pub filters: Filters,
    /// Replay this record (repeatable); the filters are not applied.
    #[arg(long = "id", value_name = "ID")]
    pub ids: Vec<String>,
    /// Replay the records of an `alerts export` file (the filters apply to them).
    #[arg(long, value_name = "FILE.jsonl")]
    pub from_file: Option<PathBuf>,
    /// dry-run prints what would be sent; paper executes on the paper account; live on the configured accounts.
    #[arg(long, value_enum, default_value_t = Target::DryRun)]
    pub to: Target,
    /// Render with this template instead of the one each record used.
    #[arg(long)]
    pub template: Option<String>,
    /// Send every request to this account instead.
    #[arg(long)]
    pub account: Option<String>,
    /// max (no wait), realtime (the original gaps between alerts), or Nx (the gaps divided by N, e.g. 10x).
    #[arg(long, default_value = "max")]
    pub pace: Pace,
    /// Replay even when the lane has executed a newer alert (the replay would move the position backwards).
    #[arg(long)]
    pub force: bool,
    /// Run every selected alert; by default only the newest selected alert of each lane (account,
    /// instrument) runs and the older ones are superseded, as live alerts are.
    #[arg(long)]
    pub every: bool,
    /// Select only originals never re-driven (no `replayedBy`, not a replay themselves), so running the
    /// same outage steps twice does not send everything twice.
    #[arg(long)]
    pub not_replayed: bool,
    /// Resolve continuous symbols (`ES1!`) to the front month of now instead of the one at the original
    /// alert's time (after a roll: the new month).
    #[arg(long)]
    pub re_resolve: bool,
    /// Confirm a live replay without the prompt.
    #[arg(long)]
    pub yes: bool,
    /// Print one JSON document instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Target {
    DryRun,
    Paper,
    Live,
}

impl Target {
    pub(super) fn replay_target(self) -> ReplayTarget {
        match self {
            Target::DryRun => ReplayTarget::DryRun,
            Target::Paper => ReplayTarget::Paper,
            Target::Live => ReplayTarget::Live,
        }
    }

    pub(super) fn as_str(self) -> &'static str {
        match self {
            Target::DryRun => "dry-run",
            Target::Paper => "paper",
            Target::Live => "live",
        }
    }
}

/// How fast a replay goes through its records.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pace {
    Max,
    Realtime,
    /// The original gaps divided by this factor.
    Factor(f64),
}

impl std::str::FromStr for Pace {
    type Err = String;

    fn from_str(s: &str) -> Result<Pace, String> {
        let s = s.trim().to_ascii_lowercase();
        match s.as_str() {
            "max" => Ok(Pace::Max),
            "realtime" | "1x" => Ok(Pace::Realtime),
            _ => s
                .strip_suffix('x')
                .and_then(|n| n.parse::<f64>().ok())
                .filter(|n| n.is_finite() && *n > 0.0)
                .map(Pace::Factor)
                .ok_or_else(|| format!("'{s}' is not a pace; use max, realtime or Nx (e.g. 10x)")),
        }
    }
}

impl Pace {
    /// The wait before a record received `gap_ms` after the previous one.
    pub fn delay(self, gap_ms: u64) -> Duration {
        match self {
            Pace::Max => Duration::ZERO,
            Pace::Realtime => Duration::from_millis(gap_ms),
            Pace::Factor(n) => Duration::from_secs_f64(gap_ms as f64 / 1000.0 / n),
        }
    }
}

impl Filters {
    pub(super) fn is_empty(&self) -> bool {
        self.status.is_none()
            && self.source.is_none()
            && self.since.is_none()
            && self.until.is_none()
            && self.limit.is_none()
    }

    /// The journal filter (its `limit` is set by the caller).
    pub fn to_list_filter(&self) -> anyhow::Result<ListFilter> {
        let status = match &self.status {
            None => None,
            Some(s) => Some(
                crate::journal::parse_status(s).map_err(|e| anyhow::anyhow!("--status: {e}"))?,
            ),
        };
        if self.limit == Some(0) {
            bail!("--limit: must be at least 1");
        }
        Ok(ListFilter {
            status,
            source: self.source.clone(),
            since_ms: self
                .since
                .as_deref()
                .map(|v| parse_time(v, "--since"))
                .transpose()?,
            until_ms: self
                .until
                .as_deref()
                .map(|v| parse_time(v, "--until"))
                .transpose()?,
            instrument: None,
            limit: 0,
        })
    }
}

/// A time: unix milliseconds, RFC 3339 (`2026-11-27T18:00:00Z`), or an age before now (`7d`, `12h`, `30m`).
pub fn parse_time(v: &str, flag: &str) -> anyhow::Result<u64> {
    crate::journal::parse_time(v).map_err(|e| anyhow::anyhow!("{flag}: {e}"))
}

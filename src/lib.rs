//! alert-relay: signed trading alerts in, protective CancelAndBracket orders out — durable, idempotent,
//! rate-limited.
//!
//! Crate map (the pipeline reads top to bottom in [`relay`]):
//! - [`config`]: the config file, its defaults and validation; [`secret`]: `env:`/`file:`/`auto` secrets.
//! - [`source`]: a configured webhook source and its authentication; [`verify`]: Standard Webhooks, HMAC and
//!   token checks over raw bytes; [`netguard`]: sender address allow-lists and trusted proxies.
//! - [`body`]: alert body formats (JSON, `key=value;` text, plain text).
//! - [`template`]: minijinja templates that turn an alert into CancelAndBracket requests.
//! - [`domain`]: trading vocabulary and the one CancelAndBracket request parser/validator;
//!   [`instruments`]: tick sizes and TradingView symbol mapping.
//! - [`journal`]: the sled journal; [`claims`]: its idempotency keys, in memory, rebuilt from the records;
//!   [`record`]: what a journal record holds; [`group_commit`]: many writers, one fsync; [`fsync`]: creating and
//!   syncing directories, so new files survive a power loss.
//! - [`limits`]: governor rate limits; [`sequencer`]: one execution at a time per (account, instrument),
//!   newest bracket supersedes waiting ones; [`engine`]: runs one execution and records each step.
//! - [`executor`]: the backend trait; [`paper`]: the embedded simulated NinjaTrader-style account;
//!   [`crosstrade`]: the live executor (CrossTrade API over HTTP or WebSocket).
//! - [`relay`]: the pipeline that ties it together; [`replay`]: re-running stored alerts; [`api`]: the CrossTrade-compatible operations by name.
//! - [`web`]: the warp transport (HTTP routes, WebSocket RPC); [`error`]: errors and their status codes;
//!   [`metrics`]: Prometheus counters.
//! - [`server`]: a running server (build, recover, announce in `server.json`, serve, drain), the one start-up
//!   sequence of `serve`, the tests and the benchmark; [`runtime`]: the async runtime `serve` runs on.
//! - [`cli`]: the command line, one file per command (`serve`, `check`, `render`, `alerts`, `replay`), with
//!   the journal commands' arguments, journal access, HTTP client and output beside them.
//! - `test_support` (tests only): helpers shared by the unit tests.
#![forbid(unsafe_code)]

pub mod api;
pub mod body;
pub mod claims;
pub mod cli;
pub mod config;
pub mod crosstrade;
pub mod domain;
pub mod engine;
pub mod error;
pub mod executor;
pub mod fsync;
pub mod group_commit;
pub mod instruments;
pub mod journal;
pub mod limits;
pub mod metrics;
pub mod netguard;
pub mod paper;
pub mod record;
pub mod relay;
pub mod replay;
pub mod runtime;
pub mod secret;
pub mod sequencer;
pub mod server;
pub mod source;
pub mod template;
#[cfg(test)]
pub(crate) mod test_support;
pub mod verify;
pub mod web;

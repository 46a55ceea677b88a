//! alert-relay: signed trading alerts in, protective CancelAndBracket orders out — durable, idempotent,
//! rate-limited.
//!
//! Crate map (the pipeline reads top to bottom in [`relay`]):
//! - [`config`]: the config file, its defaults and validation; [`secret`]: `env:`/`file:`/`auto` secrets.
//! - [`source`]: a configured webhook source and its authentication; [`verify`]: Standard Webhooks, HMAC and
//!   token checks over raw bytes; [`netguard`]: sender address allow-lists and trusted proxies.
//! - [`body`]: alert body formats (JSON, `key=value;` text, plain text).
//! - [`template`]: minijinja templates that turn an alert into CancelAndBracket requests.
//! - [`domain`]: trading vocabulary and the one CancelAndBracket request parser/validator; [`command`]: the
//!   commands an alert can ask for (CancelAndBracket, PlaceOrder, ClosePosition); [`gate`]: position gates
//!   and the relay's own request fields; [`request_fields`]: reading one field of a request's arguments;
//!   [`instruments`]: futures roots, tick sizes and TradingView symbol mapping; [`contracts`]: contract
//!   months: the front month at a time, explicit contracts, roll and expiry rules, old-month holdings.
//! - [`journal`]: the sled journal: admission under idempotency keys, record state, listing, pruning, and its
//!   `[journal]` settings (its module doc maps the files); [`claims`]: its idempotency keys, in memory, rebuilt
//!   from the records; [`record`]: what a journal record holds and its status; [`group_commit`]: many writers,
//!   one fsync; [`fsync`]: creating and syncing directories, so new files survive a power loss.
//! - [`clock`]: the wall clock (`now_ms`, the `Clock` trait, `SystemClock`), `ManualClock` for tests, and
//!   `Timestamp` (epoch milliseconds shown as RFC 3339).
//! - [`limits`]: governor rate limits; [`sequencer`]: one execution at a time per (account, instrument),
//!   newest bracket supersedes waiting ones; [`engine`]: runs one execution and records each step;
//!   [`settle`]: settles `unknown` executions by asking the broker for the bracket's OCO id.
//! - [`executor`]: the backend trait; [`paper`]: the embedded simulated NinjaTrader-style account;
//!   [`crosstrade`]: the live executor (CrossTrade API over HTTP or WebSocket).
//! - [`relay`]: the pipeline, one file per stage (ingest, admission, query, status, lifecycle, check);
//!   [`replay`]: re-running stored alerts; [`api`]: the CrossTrade-compatible operations by name.
//! - [`web`]: the warp transport (HTTP routes, WebSocket RPC), and in `web::response` the one mapping of
//!   outcomes and errors to status codes; [`error`]: the relay's error, one variant per thing that went
//!   wrong; [`headers`]: request headers as the domain sees them; [`metrics`]: the Prometheus metrics;
//!   [`refusals`]: the most recent refused webhooks, in memory.
//! - [`notify`]: notifications (webhook, Telegram, Discord, ntfy) of failed and unknown executions, the
//!   kill switch, a degraded broker, refusal bursts; sent in the background, one queue per channel.
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
pub mod clock;
pub mod command;
pub mod config;
pub mod contracts;
pub mod crosstrade;
pub mod domain;
pub mod engine;
pub mod error;
pub mod executor;
pub mod fsync;
pub mod gate;
pub mod group_commit;
pub mod headers;
pub mod instruments;
pub mod journal;
pub mod limits;
pub mod metrics;
pub mod netguard;
pub mod notify;
pub mod paper;
pub mod record;
pub mod refusals;
pub mod relay;
pub mod replay;
pub mod request_fields;
pub mod runtime;
pub mod secret;
pub mod sequencer;
pub mod server;
pub mod settle;
pub mod source;
pub mod template;
#[cfg(test)]
pub(crate) mod test_support;
pub mod verify;
pub mod web;

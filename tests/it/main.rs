//! The integration tests, as one test binary: one link for all of them, one `support` module for what they
//! share. Each module tests one area of the relay against the real server (in this process or as the
//! binary, `CARGO_BIN_EXE_alert-relay`):
//!
//! - `smoke`: the binary accepts and executes a TradingView alert.
//! - `ingress`: every auth scheme, address checks, body formats, HTTP errors, 422s, skips, fan-out, `Prefer: wait`.
//! - `idempotency`: repeats replayed and executed once, reused keys refused, the key's origin.
//! - `ordering`: per-instrument lanes and supersession, inbound and outbound limits, the read API.
//! - `ops`: the kill switch, start-up recovery, SIGTERM, `/readyz`, `/metrics`, retention.
//! - `paper_api`: the CrossTrade-compatible API on the paper broker.
//! - `ws_rpc`: the same API over `GET /ws/stream`.
//! - `live`: execution through the `crosstrade` executor, against fake upstreams and a second relay.
//! - `crash`: SIGKILL during a burst of live executions.
//! - `reliability`: SIGKILL rounds on paper, a journal that cannot be opened, duplicate storms, bad input,
//!   senders that hang up.
//! - `cli`: the journal commands (`alerts`, `replay`), `render` and `check`, run as the binary.
//! - `check`: where alerts go (`check` and `serve`'s start-up lines), samples rendered, JSON start-up logs.
//! - `settle`: `unknown` executions settled by the broker (a scripted upstream, two chained relays across a
//!   SIGKILL) and by an operator.
//! - `contracts`: contract months across a roll (an injected contracts clock): `ES1!` follows the front
//!   month, explicit spellings, 422 for expired or impossible contracts, old-month positions reported and
//!   never closed; the `contracts` command.
//! - `journal_compat`: a journal written by the previously patched sled opens and reads back completely.
//! - `notify`: `[notify]` channels of every kind against local fake endpoints, dead channels, the log.
//! - `dashboard`: the page at `GET /`, `GET /api/accounts`, and the page end to end in a headless Chromium.
//! - `strategy`: the TradingView templates following a strategy on the real position, on paper and through
//!   two chained relays; gates, sequences that stop, one position read per alert; a property over random runs.

mod support;

mod check;
mod cli;
mod contracts;
mod crash;
mod dashboard;
mod idempotency;
mod ingress;
mod journal_compat;
mod live;
mod notify;
mod ops;
mod ordering;
mod paper_api;
mod reliability;
mod settle;
mod smoke;
mod strategy;
mod ws_rpc;

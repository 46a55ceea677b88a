//! What the integration tests share, one concept per file:
//!
//! - `server`: [`TestServer`], the real relay on `127.0.0.1:0` with a temporary data dir, as the binary in a
//!   child process (restarts, SIGKILL) or in this process (an injected clock); its request helpers, and
//!   [`relay_command`] for running the binary's other commands.
//! - `signing`: Standard Webhooks and GitHub-style signatures of test bodies, and the clock they are signed at.
//! - `fixtures`: the test secrets and config, alert bodies, instruments, and small readers of answers.
//! - `burst`: many signed alerts from concurrent senders, to kill a relay in the middle of.
//! - `browser`: a headless Chromium driven over the DevTools protocol, for the dashboard test.
//! - `logged`: [`LoggedRelay`], the relay binary with its log in a file, for tests that read the log.
//! - `upstream`: scripted HTTP upstreams (a CrossTrade, a notification endpoint): reading a request off a
//!   socket, answering it, and [`unanswering_crosstrade`], whose CancelAndBracket never answers.
//! - `wait`: [`eventually`], the one bounded poll: every wait on the relay that it cannot do itself goes
//!   through it (where it can, the tests send `Prefer: wait=N` instead).

pub mod browser;
mod burst;
mod fixtures;
mod logged;
mod server;
mod signing;
mod upstream;
mod wait;

pub use burst::Burst;
pub use fixtures::*;
pub use logged::LoggedRelay;
pub use server::{answer, relay_command, TestServer};
pub use signing::{gh_signature, hdrs, sw_headers, unix_now};
pub use upstream::{read_request, respond, scripted, unanswering_crosstrade, Listing, Reply};
pub use wait::eventually;

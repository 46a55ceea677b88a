//! The relay binary with its info-level log written to a file the test reads (what an operator sees).

use std::process::Child;

use serde_json::Value;

use super::config_text;
use super::server::{api_post, relay_command, serve_until_listening};

/// The contracts clock of [`LoggedRelay`]: no root rolls within 5 days (ES on 2026-12-10, CL on
/// 2026-12-14, GC on 2027-01-28), so no `contracts.roll` reaches a notification channel, whatever today is.
pub const QUIET_CONTRACTS_AT: &str = "2026-11-27T12:00:00Z";

/// The relay binary with info-level logs written to `<dir>/relay.log`, so the test can read them.
pub struct LoggedRelay {
    pub base: String,
    log: std::path::PathBuf,
    child: Child,
    _dir: tempfile::TempDir,
}

impl LoggedRelay {
    pub fn start(dir: tempfile::TempDir, overrides: &str) -> LoggedRelay {
        let d = dir.path();
        let overrides = overrides.replace("{dir}", &d.display().to_string());
        std::fs::write(d.join("config.toml"), config_text(d, &overrides)).unwrap();
        let log = d.join("relay.log");
        let mut cmd = relay_command();
        cmd.env("RUST_LOG", "info")
            .args(["serve", "--listen", "127.0.0.1:0", "--config"])
            .arg(d.join("config.toml"))
            .arg("--data-dir")
            .arg(d.join("data"))
            .args(["--contracts-at", QUIET_CONTRACTS_AT])
            .stderr(std::fs::File::create(&log).unwrap());
        let (child, base, _) = serve_until_listening(cmd, |_| {
            format!(
                "relay did not start: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            )
        });
        LoggedRelay {
            base,
            log,
            child,
            _dir: dir,
        }
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        api_post(
            &reqwest::Client::new(),
            &format!("{}{path}", self.base),
            body,
        )
        .await
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for LoggedRelay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

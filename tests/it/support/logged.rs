//! The relay binary with its info-level log written to a file the test reads (what an operator sees).

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::time::Duration;

use serde_json::Value;

use super::{config_text, relay_command, API_TOKEN};

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
        let mut child = relay_command()
            .env("RUST_LOG", "info")
            .args(["serve", "--listen", "127.0.0.1:0", "--config"])
            .arg(d.join("config.toml"))
            .arg("--data-dir")
            .arg(d.join("data"))
            .args(["--contracts-at", QUIET_CONTRACTS_AT])
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start alert-relay");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let base = loop {
            match rx.recv_timeout(Duration::from_secs(30)) {
                Ok(line) => {
                    if let Some(addr) = line.strip_prefix("listening on ") {
                        break addr.trim().to_string();
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    panic!(
                        "relay did not start: {}",
                        std::fs::read_to_string(&log).unwrap_or_default()
                    );
                }
            }
        };
        std::thread::spawn(move || while rx.recv().is_ok() {});
        LoggedRelay {
            base,
            log,
            child,
            _dir: dir,
        }
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let resp = reqwest::Client::new()
            .post(format!("{}{path}", self.base))
            .bearer_auth(API_TOKEN)
            .json(&body)
            .send()
            .await
            .expect("request");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
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

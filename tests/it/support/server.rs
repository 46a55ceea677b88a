//! The test server: the real relay on 127.0.0.1:0 with a temporary data dir, either as the release-like
//! binary in a child process (restarts, SIGKILL) or in-process (injected clock for old signature vectors),
//! with helpers for the requests the tests make and for waiting on an alert's record.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use std::sync::Arc;

use alert_relay::clock::ManualClock;
use alert_relay::config::Config;
use alert_relay::relay::Relay;
use alert_relay::server::Server;
use reqwest::header::HeaderMap;
use serde_json::{json, Value};

use super::fixtures::{
    config_text, write_files, API_TOKEN, CONTRACTS_AT, CONTRACTS_AT_MS, SW_SECRET,
};
use super::signing::{gh_signature, hdrs, sw_headers};
use super::wait::eventually;

/// Spawns `serve` as `cmd` says (its stdout is piped here) and reads its stdout up to the `listening on`
/// line: the child, the address it printed and the lines so far. Without that line within 30 s the child is
/// killed and the test fails with `failed(lines so far)`. Stdout is drained after, so the child never blocks
/// on a full pipe.
pub(super) fn serve_until_listening(
    mut cmd: Command,
    failed: impl FnOnce(&[String]) -> String,
) -> (Child, String, Vec<String>) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .spawn()
        .expect("start alert-relay");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut lines = Vec::new();
    let base = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                lines.push(line.clone());
                if let Some(addr) = line.strip_prefix("listening on ") {
                    break addr.trim().to_string();
                }
            }
            Err(_) => {
                let _ = child.kill();
                panic!("{}", failed(&lines));
            }
        }
    };
    std::thread::spawn(move || while rx.recv().is_ok() {});
    (child, base, lines)
}

/// `POST url` with the test API token and the JSON `body`: the status and the JSON answer (`null` when it
/// is not JSON).
pub(super) async fn api_post(client: &reqwest::Client, url: &str, body: Value) -> (u16, Value) {
    let resp = client
        .post(url)
        .bearer_auth(API_TOKEN)
        .json(&body)
        .send()
        .await
        .expect("request");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// How long a test waits for an alert to reach a final status (through `Prefer: wait` or by polling).
const FINAL_WITHIN: Duration = Duration::from_secs(20);

/// The binary under test, with warn-level logs, no API token from the environment and no standard input.
pub fn relay_command() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_alert-relay"));
    c.env("RUST_LOG", "warn")
        .env_remove("RELAY_API_TOKEN")
        .stdin(Stdio::null());
    c
}

/// An HTTP answer as (status, JSON body or else the text as a JSON string, headers).
pub async fn answer(resp: reqwest::Response) -> (u16, Value, HeaderMap) {
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await.unwrap();
    let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, v, headers)
}

pub struct TestServer {
    pub base: String,
    pub dir: tempfile::TempDir,
    pub config_path: PathBuf,
    child: Option<Child>,
    /// The server's start-up lines (printed by a child; kept, not printed, in-process).
    pub stdout_lines: Vec<String>,
    runtime_task: Option<tokio::task::JoinHandle<()>>,
    pub client: reqwest::Client,
    /// The relay itself, in process (tests that call it directly, e.g. a daily check made now).
    pub relay: Option<Arc<Relay>>,
}

/// A temp dir holding `files` and the test config with `overrides`, `{dir}` in them replaced by the dir.
fn prepare(overrides: &str, files: &[(&str, &str)]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    write_files(dir.path(), files);
    let overrides = overrides.replace("{dir}", &dir.path().display().to_string());
    let config_path = dir.path().join("config.toml");
    std::fs::write(&config_path, config_text(dir.path(), &overrides)).unwrap();
    (dir, config_path)
}

impl TestServer {
    // ------------------------------------------------------------------------------------------ start, stop

    /// Starts the binary with the test config plus `overrides`.
    pub fn spawn(overrides: &str) -> TestServer {
        Self::spawn_with_files(overrides, &[])
    }

    /// Like [`TestServer::spawn`], with `files` and `{dir}` as in [`TestServer::in_process_with_files`].
    pub fn spawn_with_files(overrides: &str, files: &[(&str, &str)]) -> TestServer {
        let (dir, config_path) = prepare(overrides, files);
        let mut s = TestServer {
            base: String::new(),
            dir,
            config_path,
            child: None,
            stdout_lines: vec![],
            runtime_task: None,
            client: reqwest::Client::new(),
            relay: None,
        };
        s.start_process();
        s
    }

    /// Starts the relay in this process, with a fixed clock for signature timestamps.
    pub async fn in_process(overrides: &str, now_unix: Option<i64>) -> TestServer {
        Self::in_process_with_files(overrides, &[], now_unix).await
    }

    /// Like [`TestServer::in_process`], but first writes `files` into the server's temp dir and replaces
    /// `{dir}` in `overrides` with that dir (secret files, template dirs).
    pub async fn in_process_with_files(
        overrides: &str,
        files: &[(&str, &str)],
        now_unix: Option<i64>,
    ) -> TestServer {
        let contracts = Arc::new(ManualClock::new(CONTRACTS_AT_MS));
        Self::in_process_with_contracts_clock(overrides, files, now_unix, contracts).await
    }

    /// Like [`TestServer::in_process_with_files`], with contract months resolved by `contracts` (a test
    /// moves it across a roll).
    pub async fn in_process_with_contracts_clock(
        overrides: &str,
        files: &[(&str, &str)],
        now_unix: Option<i64>,
        contracts: Arc<ManualClock>,
    ) -> TestServer {
        let (dir, config_path) = prepare(overrides, files);
        let mut cfg = Config::load(Some(&config_path)).unwrap();
        cfg.server.data_dir = dir.path().join("data");
        let mut server = Server::build(&cfg)
            .unwrap()
            .quiet()
            .with_contracts_clock(contracts);
        if let Some(t) = now_unix {
            server = server.with_clock(move || t);
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let running = server.start(listener).unwrap();
        let base = format!("http://{}", running.addr);
        let stdout_lines = running.lines.clone();
        let relay = running.relay.clone();
        let task = tokio::spawn(async move {
            running
                .run_until(std::future::pending())
                .await
                .expect("in-process server");
        });
        TestServer {
            base,
            dir,
            config_path,
            child: None,
            stdout_lines,
            runtime_task: Some(task),
            client: reqwest::Client::new(),
            relay: Some(relay),
        }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// (Re)starts the child process on a fresh port with the same config and data dir.
    pub fn start_process(&mut self) {
        let mut cmd = relay_command();
        cmd.arg("serve")
            .arg("--config")
            .arg(&self.config_path)
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--data-dir")
            .arg(self.data_dir())
            .arg("--contracts-at")
            .arg(CONTRACTS_AT)
            .stderr(Stdio::inherit());
        let (child, base, lines) = serve_until_listening(cmd, |lines| {
            format!("relay did not print 'listening on': {lines:?}")
        });
        self.base = base;
        self.stdout_lines = lines;
        self.child = Some(child);
    }

    /// SIGKILL: no shutdown code runs.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait for exit (20 s at most, then SIGKILL and fail); returns the exit status.
    pub fn terminate(&mut self) -> ExitStatus {
        let mut c = self.child.take().expect("process server");
        let pid = c.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        // A thread waits for the exit, so the wait is bounded without polling.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(c.wait());
        });
        match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(status) => status.expect("wait for the relay"),
            Err(_) => {
                let _ = Command::new("kill").args(["-KILL", &pid]).status();
                panic!("relay did not exit within 20 s of SIGTERM");
            }
        }
    }

    pub fn restart(&mut self) {
        self.kill();
        self.start_process();
    }

    // ------------------------------------------------------------------------------------------ requests

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// `GET /healthz` as JSON.
    pub async fn health(&self) -> Value {
        self.get_text("/healthz")
            .await
            .parse::<Value>()
            .unwrap_or(Value::Null)
    }

    /// Records in the journal (from `/healthz`).
    pub async fn record_count(&self) -> u64 {
        self.health().await["records"]
            .as_u64()
            .expect("healthz has records")
    }

    /// `GET path` without credentials, as text (`/metrics`, `/healthz`).
    pub async fn get_text(&self, path: &str) -> String {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request")
            .text()
            .await
            .unwrap_or_default()
    }

    pub async fn api_get(&self, path: &str) -> (u16, Value) {
        let resp = self
            .client
            .get(self.url(path))
            .bearer_auth(API_TOKEN)
            .send()
            .await
            .expect("request");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    pub async fn api_post(&self, path: &str, body: Value) -> (u16, Value) {
        api_post(&self.client, &self.url(path), body).await
    }

    /// Opens a long of `quantity` `instrument` on the paper account Sim101 (a market order, filled at the
    /// quote), so a bracket has a position to protect. Returns the answer.
    pub async fn buy_at_market(&self, instrument: &str, quantity: u32) -> Value {
        let (st, v) = self
            .api_post(
                "/v1/api/accounts/Sim101/orders/place",
                json!({"instrument": instrument, "action": "Buy", "quantity": quantity, "orderType": "MARKET"}),
            )
            .await;
        assert_eq!(st, 200, "{v}");
        v
    }

    /// Flattens `instrument` on the paper account Sim101 (`POST .../positions/flatten`).
    pub async fn flatten(&self, instrument: &str) {
        let (st, v) = self
            .api_post(
                "/v1/api/accounts/Sim101/positions/flatten",
                json!({"instrument": instrument}),
            )
            .await;
        assert_eq!(st, 200, "{v}");
    }

    /// `GET /api/alerts?{query}`: the alerts array.
    pub async fn alerts(&self, query: &str) -> Vec<Value> {
        let (st, v) = self.api_get(&format!("/api/alerts?{query}")).await;
        assert_eq!(st, 200, "{v}");
        v["alerts"].as_array().cloned().unwrap_or_default()
    }

    pub async fn orders(&self, account: &str) -> Vec<Value> {
        let (st, v) = self
            .api_get(&format!("/v1/api/accounts/{account}/orders"))
            .await;
        assert_eq!(st, 200, "{v}");
        v["orders"].as_array().cloned().unwrap_or_default()
    }

    pub async fn working_orders(&self, account: &str, instrument: &str) -> Vec<Value> {
        self.orders(account)
            .await
            .into_iter()
            .filter(|o| o["instrument"] == instrument && o["state"] == "Working")
            .collect()
    }

    /// POST raw bytes to `path` (with any query string) with the given content type (none: no header).
    pub async fn post_raw(
        &self,
        path: &str,
        body: &[u8],
        content_type: Option<&str>,
        headers: &[(&str, &str)],
    ) -> (u16, Value, HeaderMap) {
        let mut rb = self.client.post(self.url(path)).body(body.to_vec());
        if let Some(ct) = content_type {
            rb = rb.header("content-type", ct);
        }
        for (k, v) in headers {
            rb = rb.header(*k, *v);
        }
        answer(rb.send().await.expect("request")).await
    }

    /// POST an alert as text/plain to `/hooks/{source}` (a TradingView alert carries its token in the body).
    pub async fn post_hook(
        &self,
        source: &str,
        body: &str,
        headers: &[(&str, &str)],
    ) -> (u16, Value, HeaderMap) {
        self.post_raw(
            &format!("/hooks/{source}"),
            body.as_bytes(),
            Some("text/plain"),
            headers,
        )
        .await
    }

    /// [`TestServer::post_hook`] with `Prefer: wait=20`: the relay answers once the alert is final, with its
    /// record (200), unless it refuses or skips the alert at once. Fails if the wait ran out (202).
    pub async fn post_hook_final(
        &self,
        source: &str,
        body: &str,
        headers: &[(&str, &str)],
    ) -> (u16, Value, HeaderMap) {
        let prefer = format!("wait={}", FINAL_WITHIN.as_secs());
        let mut headers = headers.to_vec();
        headers.push(("Prefer", &prefer));
        let (st, v, h) = self.post_hook(source, body, &headers).await;
        assert_ne!(st, 202, "not final within {FINAL_WITHIN:?}: {v}");
        (st, v, h)
    }

    /// [`TestServer::post_hook_final`] that must answer with the final record (200): the record.
    pub async fn post_hook_record(&self, source: &str, body: &str) -> Value {
        let (st, rec, _) = self.post_hook_final(source, body, &[]).await;
        assert_eq!(st, 200, "{rec}");
        rec
    }

    /// POST `body` as JSON to `/hooks/signals`, signed with Standard Webhooks headers under [`SW_SECRET`]
    /// (`webhook-id` = `msg_id`, `webhook-timestamp` = `ts`).
    pub async fn post_signal_sw(
        &self,
        body: &str,
        msg_id: &str,
        ts: i64,
    ) -> (u16, Value, HeaderMap) {
        let h = sw_headers(SW_SECRET, msg_id, ts, body);
        self.post_raw(
            "/hooks/signals",
            body.as_bytes(),
            Some("application/json"),
            &hdrs(&h),
        )
        .await
    }

    /// POST `body` as JSON to `/hooks/github-style`, signed (`X-Hub-Signature-256`) under `GH_SECRET`.
    pub async fn post_signal_gh(&self, body: &str) -> (u16, Value, HeaderMap) {
        self.post_raw(
            "/hooks/github-style",
            body.as_bytes(),
            Some("application/json"),
            &[("X-Hub-Signature-256", &gh_signature(body))],
        )
        .await
    }

    // ------------------------------------------------------------------------------------------ waits

    /// Polls `GET /api/alerts/{id}` until its status is final (20 s at most). For an alert a test posts
    /// itself, [`TestServer::post_hook_final`] lets the relay do the waiting; this is for the rest (an
    /// acknowledgement the test checks, alerts recovered after a restart).
    pub async fn wait_final(&self, id: &str) -> Value {
        self.poll_record(id, "a final status", FINAL_WITHIN, |r| {
            !matches!(r["status"].as_str(), Some("accepted" | "executing"))
        })
        .await
    }

    /// Polls `GET /api/alerts/{id}` until `pred(record)` holds (5 s at most); `what` names the condition.
    pub async fn wait_for(&self, id: &str, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        self.poll_record(id, what, Duration::from_secs(5), pred)
            .await
    }

    /// Polls alert `id`'s record until `pred` holds (it is `what`), for at most `within`.
    pub async fn poll_record(
        &self,
        id: &str,
        what: &str,
        within: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        let path = format!("/api/alerts/{id}");
        let path = path.as_str();
        let observe = move || async move {
            let (st, rec) = self.api_get(path).await;
            assert_eq!(st, 200, "{rec}");
            rec
        };
        eventually(format!("alert {id}: {what}"), within, observe, pred).await
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.kill();
        if let Some(t) = self.runtime_task.take() {
            t.abort();
        }
    }
}

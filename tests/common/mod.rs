//! Test harness: starts the real relay on 127.0.0.1:0 with a temporary data dir, either as the release-like
//! binary in a child process (restarts, SIGKILL) or in-process (injected clock for old signature vectors).
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use alert_relay::config::{Config, EMBEDDED_CONFIG};
use alert_relay::relay::Relay;
use alert_relay::server::Server;
use serde_json::{json, Value};

/// Test secrets, written to files and referenced as `file:` from the test config.
pub const TV_SECRET: &str = "tv-test-secret-0123456789";
pub const SW_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
pub const GH_SECRET: &str = "It's a Secret to Everybody";
pub const API_TOKEN: &str = "test-api-token-abcdef";

/// The shipped config with `overrides` (TOML text) merged over it, table by table, and the test secrets.
pub fn config_text(dir: &Path, overrides: &str) -> String {
    let mut base: toml::Table = toml::from_str(EMBEDDED_CONFIG).expect("shipped config parses");
    for (name, value) in [
        ("tv", TV_SECRET),
        ("sw", SW_SECRET),
        ("gh", GH_SECRET),
        ("api", API_TOKEN),
    ] {
        std::fs::write(dir.join(format!("{name}.secret")), value).unwrap();
    }
    let secrets = format!(
        r#"
[server]
api_tokens = ["file:{d}/api.secret"]
[sources.tradingview]
secret = "file:{d}/tv.secret"
[sources.signals]
secret = "file:{d}/sw.secret"
[sources.github-style]
secret = "file:{d}/gh.secret"
[paper]
cancel_delay_ms = 0
[limits.outbound]
per_second = 1000
burst = 1000
"#,
        d = dir.display()
    );
    merge(&mut base, toml::from_str(&secrets).unwrap());
    merge(
        &mut base,
        toml::from_str(overrides).expect("override TOML parses"),
    );
    toml::to_string(&base).unwrap()
}

fn merge(base: &mut toml::Table, over: toml::Table) {
    for (k, v) in over {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

pub struct TestServer {
    pub base: String,
    pub dir: tempfile::TempDir,
    pub config_path: PathBuf,
    child: Option<Child>,
    /// The server's start-up lines (printed by a child; kept, not printed, in-process).
    pub stdout_lines: Vec<String>,
    runtime_task: Option<tokio::task::JoinHandle<()>>,
    pub relay: Option<Arc<Relay>>,
    pub client: reqwest::Client,
}

impl TestServer {
    /// Starts the binary with the test config plus `overrides`.
    pub fn spawn(overrides: &str) -> TestServer {
        Self::spawn_with_files(overrides, &[])
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// (Re)starts the child process on a fresh port with the same config and data dir.
    pub fn start_process(&mut self) {
        let mut child = Command::new(env!("CARGO_BIN_EXE_alert-relay"))
            .arg("serve")
            .arg("--config")
            .arg(&self.config_path)
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--data-dir")
            .arg(self.data_dir())
            .env("RUST_LOG", "warn")
            .env_remove("RELAY_API_TOKEN")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
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
        self.stdout_lines.clear();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    self.stdout_lines.push(line.clone());
                    if let Some(addr) = line.strip_prefix("listening on ") {
                        self.base = addr.trim().to_string();
                        break;
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    panic!(
                        "relay did not print 'listening on': {:?}",
                        self.stdout_lines
                    );
                }
            }
        }
        // Keep draining stdout so the child never blocks on a full pipe.
        std::thread::spawn(move || while rx.recv().is_ok() {});
        self.child = Some(child);
    }

    /// Starts the relay in this process, with a fixed clock for signature timestamps.
    pub async fn in_process(overrides: &str, now_unix: Option<i64>) -> TestServer {
        Self::in_process_with_files(overrides, &[], now_unix).await
    }

    /// SIGKILL: no shutdown code runs.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait for exit; returns the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut c = self.child.take().expect("process server");
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(c.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(st) = c.try_wait().unwrap() {
                return st;
            }
            if Instant::now() > deadline {
                let _ = c.kill();
                panic!("relay did not exit after SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn restart(&mut self) {
        self.kill();
        self.start_process();
    }

    /// `GET /healthz` as JSON.
    pub async fn health(&self) -> Value {
        self.get_text("/healthz")
            .await
            .parse::<Value>()
            .unwrap_or(Value::Null)
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

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// POST a TradingView-style alert (token in the body) to /hooks/tradingview.
    pub async fn post_hook(
        &self,
        source: &str,
        body: &str,
        headers: &[(&str, &str)],
    ) -> (u16, Value, reqwest::header::HeaderMap) {
        self.post_raw(
            &format!("/hooks/{source}"),
            body.as_bytes(),
            Some("text/plain"),
            headers,
        )
        .await
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
        let resp = self
            .client
            .post(self.url(path))
            .bearer_auth(API_TOKEN)
            .json(&body)
            .send()
            .await
            .expect("request");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// Polls GET /api/alerts/{id} until its status is final.
    pub async fn wait_final(&self, id: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let (st, rec) = self.api_get(&format!("/api/alerts/{id}")).await;
            assert_eq!(st, 200, "{rec}");
            let s = rec["status"].as_str().unwrap_or("");
            if !matches!(s, "accepted" | "executing") {
                return rec;
            }
            assert!(
                Instant::now() < deadline,
                "alert {id} never finished: {rec}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
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
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.kill();
        if let Some(t) = self.runtime_task.take() {
            t.abort();
        }
    }
}

/// (symbol, last price) for the six configured instruments.
pub const MARKETS: [(&str, f64); 6] = [
    ("ES1!", 6000.0),
    ("MES1!", 6000.0),
    ("NQ1!", 21000.0),
    ("MNQ1!", 21000.0),
    ("CL1!", 70.0),
    ("GC1!", 2600.0),
];

/// A TradingView strategy alert as the README tells users to configure it.
pub fn tv_alert(ticker: &str, timenow: &str, position: &str, size: i64, price: f64) -> Value {
    json!({
        "secret": TV_SECRET,
        "ticker": ticker,
        "timenow": timenow,
        "close": price,
        "strategy": {
            "action": if position == "short" { "sell" } else { "buy" },
            "contracts": size,
            "price": price,
            "id": "L1",
            "market_position": position,
            "market_position_size": size,
        }
    })
}

// ------------------------------------------------------------------------------------------------------------
// Helpers for the ingress / idempotency / ordering tests (added; the functions above are unchanged).

/// Shared token of the extra token sources (`kv`, `text`) that tests configure through [`EXTRA_TOKEN_SOURCES`].
pub const KV_SECRET: &str = "kv-test-secret-9876543210";

/// Extra sources for token auth in key=value text (`kv`, template crosstrade-kv) and in `?token=` for plain
/// text (`text`, template `text-alert` from [`TEXT_ALERT_TEMPLATE`]). Needs the files from
/// [`extra_token_files`] and `{dir}` replaced (see [`TestServer::in_process_with_files`]).
pub const EXTRA_TOKEN_SOURCES: &str = r#"
[server]
templates_dir = "{dir}/tpl"
[sources.kv]
auth = "token"
secret = "file:{dir}/kv.secret"
template = "crosstrade-kv"
[sources.text]
auth = "token"
secret = "file:{dir}/kv.secret"
template = "text-alert"
"#;

/// A plain-text template: `<side> <symbol> <qty> <tp> <sl>`, e.g. `buy ES1! 1 6010 5990`. Prices are NOT
/// rounded to the tick, so an off-tick price reaches validation.
pub const TEXT_ALERT_TEMPLATE: &str = r#"
description = "plain text: side symbol qty tp sl"
[vars]
parts = "alert.text | split"
[request]
account = "'Sim101'"
instrument = "parts[1] | instrument"
action = "parts[0] | action"
quantity = "parts[2]"
takeProfit = "parts[3]"
stopLoss = "parts[4]"
"#;

/// The files [`EXTRA_TOKEN_SOURCES`] refers to.
pub fn extra_token_files() -> Vec<(&'static str, &'static str)> {
    vec![
        ("kv.secret", KV_SECRET),
        ("tpl/text-alert.toml", TEXT_ALERT_TEMPLATE),
    ]
}

/// Writes `files` (paths relative to `dir`, parents created).
pub fn write_files(dir: &Path, files: &[(&str, &str)]) {
    for (rel, text) in files {
        let p = dir.join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(p, text).unwrap();
    }
}

impl TestServer {
    /// Like [`TestServer::in_process`], but first writes `files` into the server's temp dir and replaces
    /// `{dir}` in `overrides` with that dir (secret files, template dirs).
    pub async fn in_process_with_files(
        overrides: &str,
        files: &[(&str, &str)],
        now_unix: Option<i64>,
    ) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        write_files(dir.path(), files);
        let overrides = overrides.replace("{dir}", &dir.path().display().to_string());
        let config_path = dir.path().join("config.toml");
        std::fs::write(&config_path, config_text(dir.path(), &overrides)).unwrap();
        let mut cfg = Config::load(Some(&config_path)).unwrap();
        cfg.server.data_dir = dir.path().join("data");
        let mut server = Server::build(&cfg).unwrap().quiet();
        if let Some(t) = now_unix {
            server = server.with_clock(move || t);
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let running = server.start(listener).unwrap();
        let base = format!("http://{}", running.addr);
        let relay = running.relay.clone();
        let stdout_lines = running.lines.clone();
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
            relay: Some(relay),
            client: reqwest::Client::new(),
        }
    }

    /// Like [`TestServer::spawn`], with `files` and `{dir}` as in [`TestServer::in_process_with_files`].
    pub fn spawn_with_files(overrides: &str, files: &[(&str, &str)]) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        write_files(dir.path(), files);
        let overrides = overrides.replace("{dir}", &dir.path().display().to_string());
        let config_path = dir.path().join("config.toml");
        std::fs::write(&config_path, config_text(dir.path(), &overrides)).unwrap();
        let mut s = TestServer {
            base: String::new(),
            dir,
            config_path,
            child: None,
            stdout_lines: vec![],
            runtime_task: None,
            relay: None,
            client: reqwest::Client::new(),
        };
        s.start_process();
        s
    }

    /// POST raw bytes to `path` (with any query string) with the given content type (none: no header).
    pub async fn post_raw(
        &self,
        path: &str,
        body: &[u8],
        content_type: Option<&str>,
        headers: &[(&str, &str)],
    ) -> (u16, Value, reqwest::header::HeaderMap) {
        let mut rb = self.client.post(self.url(path)).body(body.to_vec());
        if let Some(ct) = content_type {
            rb = rb.header("content-type", ct);
        }
        for (k, v) in headers {
            rb = rb.header(*k, *v);
        }
        let resp = rb.send().await.expect("request");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap();
        let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, v, headers)
    }

    /// POST `body` as JSON to `/hooks/signals`, signed with Standard Webhooks headers under [`SW_SECRET`]
    /// (`webhook-id` = `msg_id`, `webhook-timestamp` = `ts`).
    pub async fn post_signal_sw(
        &self,
        body: &str,
        msg_id: &str,
        ts: i64,
    ) -> (u16, Value, reqwest::header::HeaderMap) {
        let h = sw_headers(SW_SECRET, msg_id, ts, body);
        self.post_raw(
            "/hooks/signals",
            body.as_bytes(),
            Some("application/json"),
            &hdrs(&h),
        )
        .await
    }

    /// POST `body` as JSON to `/hooks/github-style`, signed (`X-Hub-Signature-256`) under [`GH_SECRET`].
    pub async fn post_signal_gh(&self, body: &str) -> (u16, Value, reqwest::header::HeaderMap) {
        self.post_raw(
            "/hooks/github-style",
            body.as_bytes(),
            Some("application/json"),
            &[("X-Hub-Signature-256", &gh_signature(body))],
        )
        .await
    }

    /// Records in the journal (from `/healthz`).
    pub async fn record_count(&self) -> u64 {
        self.health().await["records"]
            .as_u64()
            .expect("healthz has records")
    }

    /// `GET /api/alerts?{query}`: the alerts array.
    pub async fn alerts(&self, query: &str) -> Vec<Value> {
        let (st, v) = self.api_get(&format!("/api/alerts?{query}")).await;
        assert_eq!(st, 200, "{v}");
        v["alerts"].as_array().cloned().unwrap_or_default()
    }

    /// Polls `/api/alerts/{id}` until `pred(record)` holds (5 s at most).
    pub async fn wait_for(&self, id: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let (st, rec) = self.api_get(&format!("/api/alerts/{id}")).await;
            assert_eq!(st, 200, "{rec}");
            if pred(&rec) {
                return rec;
            }
            assert!(
                Instant::now() < deadline,
                "alert {id}: condition never held: {rec}"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// Unix seconds now.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Standard Webhooks headers (`webhook-id`, `webhook-timestamp`, `webhook-signature`) for `body`.
pub fn sw_headers(secret: &str, id: &str, ts: i64, body: &str) -> Vec<(String, String)> {
    let key = alert_relay::verify::WebhookSecret::parse(secret).expect("valid whsec secret");
    let sig =
        alert_relay::verify::sign_standard_webhooks(&key, id, &ts.to_string(), body.as_bytes());
    vec![
        ("webhook-id".into(), id.into()),
        ("webhook-timestamp".into(), ts.to_string()),
        ("webhook-signature".into(), sig),
    ]
}

/// `X-Hub-Signature-256` value of `body` under [`GH_SECRET`].
pub fn gh_signature(body: &str) -> String {
    alert_relay::verify::sign_hmac_sha256(GH_SECRET.as_bytes(), body.as_bytes())
}

/// Borrows owned header pairs for `post_hook` / `post_raw`.
pub fn hdrs(h: &[(String, String)]) -> Vec<(&str, &str)> {
    h.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

/// A signal-service alert (absolute TP/SL).
pub fn signal(id: &str, symbol: &str, side: &str, qty: i64, tp: f64, sl: f64) -> Value {
    json!({"id": id, "symbol": symbol, "side": side, "qty": qty, "tp": tp, "sl": sl})
}

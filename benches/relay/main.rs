//! End-to-end benchmark of `POST /hooks/{source}`: durable acknowledgement throughput and latency, end-to-end
//! latency to a live paper bracket, peak RSS, journal bytes and server CPU per alert, against a bare warp
//! server that only answers 202 to the same requests. Options: `cargo bench --bench relay -- --help` (each
//! also as an environment variable, e.g. `RELAY_BENCH_ALERTS=20000`); BENCHMARKS.md has the method.
//!
//!     cargo bench --bench relay                                    # 5 saturation rounds, then fixed rate
//!     cargo bench --bench relay -- --mode saturate --seconds 15    # steady state: see below
//!     cargo bench --bench relay -- --mode rate --rate 1000 --rate-alerts 10000
//!     cargo bench --bench relay -- --mode profile                  # relay CPU per alert by stage (perf)
//!     cargo bench --bench relay -- --mode soak --rate 200 --duration 600 --sample 10
//!
//! **Steady state.** Each measured run is preceded by a warm-up of `--warmup` alerts (default 100,000: the
//! shipped `journal.max_records`), so the relay's journal is at its retention bound and every measured alert
//! also pays for pruning one record; saturation runs are time-bounded (`--seconds`, default 15) unless
//! `--alerts N` asks for a count. A sub-second run on a fresh journal measured 46–52 µs of relay CPU per
//! alert where a user's 15-s load saw 60–80.
//!
//! **Client.** The load comes from `client.rs`, a minimal HTTP/1.1 keep-alive client (one connection per
//! request in flight), not reqwest, which capped the bare server near 78,000 req/s where `wrk` measured
//! about 105,000 on the same machine. `wrk.lua` beside this file sends the same alerts from `wrk`, for a
//! cross-check.
//!
//! Each server (the relay, or the bare warp server) runs in a child process of this binary (`--serve`), so
//! its peak RSS (VmHWM) and CPU are its own; the client runs in this process. Both share the machine's
//! cores. The relay child is started as `alert-relay serve` starts it (`alert_relay::server::Server`), with
//! the shipped config.toml plus: the paper executor, `[paper] cancel_delay_ms = 0`, the default durable
//! journal (every 202 is fsynced first, group commit), secrets in `file:` references, and inbound/outbound
//! limits raised to 1,000,000/s so the limiter is not what is measured. It runs on the runtime of
//! `alert-relay serve` (`server.workers` as shipped: one async worker per core but one); the bare server on
//! tokio's default, one per core, its faster setting here. Retention is as shipped
//! (`journal.max_records` = 100,000).
//!
//! `--mode soak` (not part of `all`) drives the relay at `--rate` alerts/s for `--duration` seconds and prints
//! one line per `--sample` window: server RSS, client ack latency, end-to-end latency, journal size on disk.
//! With the default warm-up it starts at the retention bound; `--warmup 0` starts from an empty journal.

mod client;
mod opts;
mod profile;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use clap::Parser;
use hdrhistogram::Histogram;
use serde_json::{json, Value};

use client::{closed_loop, histogram, open_loop, Outcome, RunStats, Target};
use opts::{Auth, Bound, Mode, Opts};

const TV_SECRET: &str = "bench-tv-secret-0123456789abcdef";
const OTHER_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const API_TOKEN: &str = "bench-api-token-abcdef";

/// (TradingView symbol, last price in config.toml's [paper.initial_quotes], tick size).
const SYMBOLS: [(&str, f64, f64); 6] = [
    ("ES1!", 6000.0, 0.25),
    ("MES1!", 6000.0, 0.25),
    ("NQ1!", 21000.0, 0.25),
    ("MNQ1!", 21000.0, 0.25),
    ("CL1!", 70.0, 0.01),
    ("GC1!", 2600.0, 0.1),
];

fn die(msg: &str) -> ! {
    eprintln!("relay bench: {msg}");
    std::process::exit(2)
}

// The same allocator as the `alert-relay` binary (src/main.rs).
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() {
    let opts = Opts::parse();
    match opts.serve.clone() {
        Some(kind) => serve_child(&kind, opts.dir.as_deref().expect("--dir"), opts.log),
        None => orchestrate(&opts),
    }
}

// ------------------------------------------------------------------------------------------------ server side

fn config_text(dir: &Path, auth: Auth, extra: &str) -> String {
    let mut base: toml::Table =
        toml::from_str(alert_relay::config::EMBEDDED_CONFIG).expect("shipped config parses");
    for (name, value) in [
        ("tv", TV_SECRET),
        ("other", OTHER_SECRET),
        ("api", API_TOKEN),
    ] {
        std::fs::write(dir.join(format!("{name}.secret")), value).unwrap();
    }
    // One bracket per alert, ungated (no position read), placed as an entry on the flat paper account:
    // the same work per alert as the figures in BENCHMARKS.md measured. The shipped tradingview-strategy
    // template follows a strategy instead (a position read, then 1–3 commands per alert).
    let templates = dir.join("templates");
    std::fs::create_dir_all(&templates).unwrap();
    std::fs::write(templates.join("bench-bracket.toml"), BENCH_TEMPLATE).unwrap();
    let auth_lines = match auth {
        Auth::Token => "auth = \"token\"\ntoken_field = \"secret\"",
        Auth::Hmac => "auth = \"hmac-sha256\"\nsignature_header = \"X-Hub-Signature-256\"",
    };
    let over = format!(
        r#"
[server]
api_tokens = ["file:{d}/api.secret"]
shutdown_grace_ms = 120000
[sources.tradingview]
{auth_lines}
secret = "file:{d}/tv.secret"
template = "bench-bracket"
rate_limit = {{ per_second = 1000000, burst = 1000000 }}
[sources.signals]
secret = "file:{d}/other.secret"
[sources.github-style]
secret = "file:{d}/tv.secret"
[paper]
cancel_delay_ms = 0
[limits.outbound]
per_second = 1000000
burst = 1000000
"#,
        d = dir.display()
    );
    merge(&mut base, toml::from_str(&over).expect("override parses"));
    let extra: toml::Table =
        toml::from_str(extra).unwrap_or_else(|e| die(&format!("--config: not TOML: {e}")));
    merge(&mut base, extra);
    toml::to_string(&base).unwrap()
}

/// The bench's TradingView template: one ungated bracket around the strategy's position per alert (the
/// pipeline tests' template too).
const BENCH_TEMPLATE: &str = include_str!("../../tests/fixtures/one-bracket-template.toml");

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

fn proc_status_kb(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// CPU time (user + system) of this process so far, in milliseconds.
fn cpu_ms() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may contain spaces) in parentheses; utime and stime are the
    // 14th and 15th fields, in clock ticks (100 per second on Linux).
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    (f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0)) * 10
}

fn dir_bytes(p: &Path) -> u64 {
    let mut total = 0;
    if let Ok(rd) = std::fs::read_dir(p) {
        for e in rd.flatten() {
            match e.metadata() {
                Ok(m) if m.is_dir() => total += dir_bytes(&e.path()),
                Ok(m) => total += m.len(),
                Err(_) => {}
            }
        }
    }
    total
}

/// A child process: serves until told `report` on stdin, then prints `REPORT <json>` and exits.
fn serve_child(kind: &str, dir: &Path, log: bool) {
    if log {
        // What `alert-relay serve` pays for its info-level log lines, without the terminal.
        let sink = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/null")
            .unwrap();
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("info"))
            .with_writer(Mutex::new(sink))
            .init();
    }
    let cfg = (kind == "relay").then(|| {
        let mut cfg = alert_relay::config::Config::load(Some(&dir.join("config.toml"))).unwrap();
        cfg.server.data_dir = dir.join("data");
        cfg
    });
    // The relay: the runtime of `alert-relay serve` (`server.workers` as shipped: one worker per core but
    // one). The bare server: tokio's default, one worker per core, its faster setting on this machine.
    let rt = match &cfg {
        Some(cfg) => alert_relay::runtime::build(cfg.server.workers).unwrap(),
        None => tokio::runtime::Runtime::new().unwrap(),
    };
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let shutdown = async move {
            let _ = stop_rx.await;
        };
        let relay = if let Some(cfg) = &cfg {
            // What `alert-relay serve` runs, without its start-up lines (this child prints LISTENING).
            let running = alert_relay::server::Server::build(cfg)
                .unwrap()
                .quiet()
                .start(listener)
                .unwrap();
            let relay = running.relay.clone();
            tokio::spawn(running.run_until(shutdown));
            Some(relay)
        } else {
            tokio::spawn(bare_server(listener, shutdown));
            None
        };
        println!("LISTENING {addr}");
        let rss_idle_kb = proc_status_kb("VmRSS:");

        use tokio::io::AsyncBufReadExt;
        let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
        let mut mark = String::new();
        let mut records_at_mark = 0usize;
        let mut disk_at_mark = 0u64;
        let mut cpu_at_mark = cpu_ms();
        while let Ok(Some(line)) = lines.next_line().await {
            if let (Some(r), Some(args)) = (&relay, line.trim().strip_prefix("e2e ")) {
                // Soak sampling: end-to-end latency of the records received in [since, until) (wall ms).
                let mut it = args
                    .split_whitespace()
                    .map(|v| v.parse::<u64>().unwrap_or(0));
                let (since, until) = (it.next().unwrap_or(0), it.next().unwrap_or(0));
                let r = r.clone();
                let out = tokio::task::spawn_blocking(move || window_e2e(&r, since, until))
                    .await
                    .unwrap();
                println!("E2E {out}");
                continue;
            }
            match line.trim() {
                "soakend" => {
                    // Soak: drain, flush, count; no full listing (that would hold every record in memory).
                    let mut out = json!({});
                    if let Some(r) = &relay {
                        let t = Instant::now();
                        r.shutdown().await;
                        out["drainMs"] = json!(t.elapsed().as_millis() as u64);
                        let t = Instant::now();
                        out["records"] = json!(r.journal.record_count());
                        out["countMs"] = json!(t.elapsed().as_millis() as u64);
                        out["diskBytes"] = json!(r.journal.size_on_disk());
                    }
                    out["cpuMs"] = json!(cpu_ms().saturating_sub(cpu_at_mark));
                    out["rssIdleKb"] = json!(rss_idle_kb);
                    out["rssKb"] = json!(proc_status_kb("VmRSS:"));
                    out["hwmKb"] = json!(proc_status_kb("VmHWM:"));
                    println!("SOAKEND {out}");
                    break;
                }
                "mark" => {
                    cpu_at_mark = cpu_ms();
                    if let Some(r) = &relay {
                        // Ids are ULIDs: every record admitted after this point sorts after `mark`.
                        r.journal.flush_now().unwrap();
                        mark = r.journal.next_id();
                        records_at_mark = r.journal.record_count();
                        disk_at_mark = r.journal.size_on_disk();
                    }
                    println!("MARKED");
                }
                "report" => {
                    let report = match &relay {
                        Some(r) => relay_report(r, dir, &mark, records_at_mark, disk_at_mark).await,
                        None => json!({}),
                    };
                    let mut report = report;
                    report["cpuMs"] = json!(cpu_ms().saturating_sub(cpu_at_mark));
                    report["rssIdleKb"] = json!(rss_idle_kb);
                    report["workers"] =
                        json!(tokio::runtime::Handle::current().metrics().num_workers());
                    if report.get("rssKb").is_none() {
                        report["rssKb"] = json!(proc_status_kb("VmRSS:"));
                        report["hwmKb"] = json!(proc_status_kb("VmHWM:"));
                    }
                    println!("REPORT {report}");
                    break;
                }
                _ => {}
            }
        }
        let _ = stop_tx.send(());
    });
    std::process::exit(0);
}

/// Waits for every execution to finish, flushes, and summarises the records admitted after `mark`.
async fn relay_report(
    relay: &Arc<alert_relay::relay::Relay>,
    dir: &Path,
    mark: &str,
    records_at_mark: usize,
    disk_at_mark: u64,
) -> Value {
    use alert_relay::record::Status;
    let t = Instant::now();
    relay.shutdown().await; // waits for the lanes to go idle, then flushes the journal
    let drain_ms = t.elapsed().as_millis() as u64;
    let records = relay.journal.record_count();
    let disk = relay.journal.size_on_disk();
    // The server's memory as the run left it, before this report walks the journal.
    let rss_kb = proc_status_kb("VmRSS:");
    let hwm_kb = proc_status_kb("VmHWM:");
    let mut statuses: BTreeMap<String, u64> = BTreeMap::new();
    let mut ack_us = histogram();
    let mut e2e_ms = histogram();
    let mut exec_ms = histogram();
    let mut errors: BTreeMap<String, u64> = BTreeMap::new();
    let mut measured = 0u64;
    // After the drain every record should be final; the first few that are not are shown whole.
    let mut unfinished: Vec<Value> = Vec::new();
    relay
        .journal
        .for_each(|rec| {
            if rec.id.as_str() <= mark {
                return;
            }
            measured += 1;
            *statuses.entry(rec.status.as_str().to_string()).or_default() += 1;
            if !rec.is_final() && unfinished.len() < 3 {
                unfinished.push(serde_json::to_value(&rec).unwrap_or_default());
            }
            if let Some(a) = rec.timings.ack_us {
                ack_us.saturating_record(a);
            }
            if let Some(e) = rec.executions.first() {
                if e.status == Status::Executed {
                    if let Some(f) = e.finished_at_ms {
                        e2e_ms.saturating_record(f.saturating_sub(rec.received_at_ms));
                        if let Some(s) = e.started_at_ms {
                            exec_ms.saturating_record(f.saturating_sub(s));
                        }
                    }
                } else if let Some(err) = &e.error {
                    let short: String = err.chars().take(120).collect();
                    *errors.entry(short).or_default() += 1;
                }
            }
        })
        .unwrap();
    let mut errors: Vec<(String, u64)> = errors.into_iter().collect();
    errors.sort_by_key(|e| std::cmp::Reverse(e.1));
    errors.truncate(5);
    json!({
        "drainMs": drain_ms,
        "rssKb": rss_kb,
        "hwmKb": hwm_kb,
        "records": records,
        "measured": measured,
        "statuses": statuses,
        "unfinished": unfinished,
        "executionErrors": errors,
        "serverAckUs": pcts(&ack_us),
        "e2eMs": pcts(&e2e_ms),
        "execMs": pcts(&exec_ms),
        "e2eSamples": e2e_ms.len(),
        "diskBytes": disk,
        "diskBytesAtMark": disk_at_mark,
        "recordsAtMark": records_at_mark,
        "dataDirBytes": dir_bytes(&dir.join("data")),
    })
}

/// End-to-end latency (ms) of the executed records received in [since_ms, until_ms), and the other statuses.
fn window_e2e(relay: &Arc<alert_relay::relay::Relay>, since_ms: u64, until_ms: u64) -> Value {
    use alert_relay::journal::ListFilter;
    use alert_relay::record::Status;
    let t = Instant::now();
    let recs = relay
        .journal
        .list(&ListFilter {
            since_ms: Some(since_ms),
            until_ms: Some(until_ms.saturating_sub(1)),
            limit: usize::MAX,
            ..ListFilter::default()
        })
        .unwrap_or_default();
    let mut e2e = histogram();
    let mut statuses: BTreeMap<String, u64> = BTreeMap::new();
    for rec in &recs {
        *statuses.entry(rec.status.as_str().to_string()).or_default() += 1;
        if let Some(e) = rec.executions.first() {
            if e.status == Status::Executed {
                if let Some(f) = e.finished_at_ms {
                    e2e.saturating_record(f.saturating_sub(rec.received_at_ms));
                }
            }
        }
    }
    json!({"e2eMs": pcts(&e2e), "statuses": statuses, "scanMs": t.elapsed().as_millis() as u64})
}

/// Same route shape as the relay's hooks route, reading the body the same way; answers 202 at once.
async fn bare_server(
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) {
    use warp::Filter;
    let route = warp::path!("hooks" / String)
        .and(warp::post())
        .and(warp::any().map(Instant::now))
        .and(warp::addr::remote())
        .and(warp::header::headers_cloned())
        .and(warp::query::<std::collections::HashMap<String, String>>())
        .and(warp::body::stream())
        .then(
            |_source: String,
             _received: Instant,
             _peer: Option<std::net::SocketAddr>,
             _headers: warp::http::HeaderMap,
             _query: std::collections::HashMap<String, String>,
             body| async move {
                use warp::Reply;
                let status = match alert_relay::web::read_body(body, 65536).await {
                    Ok(_) => warp::http::StatusCode::ACCEPTED,
                    Err(_) => warp::http::StatusCode::PAYLOAD_TOO_LARGE,
                };
                warp::reply::with_status(
                    warp::reply::json(&json!({"alertId": "x", "status": "accepted"})),
                    status,
                )
                .into_response()
            },
        );
    warp::serve(route)
        .incoming(listener)
        .graceful(shutdown)
        .run()
        .await;
}

// ------------------------------------------------------------------------------------------------ client side

struct Server {
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::Receiver<String>,
    target: Arc<Target>,
    _dir: tempfile::TempDir,
}

impl Server {
    fn start(kind: &str, opts: &Opts) -> Server {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("config.toml"),
            config_text(dir.path(), opts.auth, &opts.config),
        )
        .unwrap();
        // RELAY_BENCH_WRAP runs the server child under a tool, e.g. RELAY_BENCH_WRAP=heaptrack.
        let mut cmd = match std::env::var("RELAY_BENCH_WRAP") {
            Ok(tool) if !tool.is_empty() => {
                let mut c = Command::new(tool);
                c.arg(std::env::current_exe().unwrap());
                c
            }
            _ => Command::new(std::env::current_exe().unwrap()),
        };
        cmd.arg("--serve").arg(kind).arg("--dir").arg(dir.path());
        if opts.log {
            cmd.arg("--log");
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .env_remove("RELAY_API_TOKEN")
            .spawn()
            .expect("start server child");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut s = Server {
            child,
            stdin,
            lines: rx,
            target: Arc::new(Target::new(([0, 0, 0, 0], 0).into(), "/")),
            _dir: dir,
        };
        let addr = s.expect("LISTENING ", Duration::from_secs(60));
        let addr = addr.trim().parse().expect("the child prints its address");
        s.target = Arc::new(Target::new(addr, "/hooks/tradingview"));
        s
    }

    fn expect(&mut self, prefix: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    if let Some(rest) = line.strip_prefix(prefix) {
                        return rest.to_string();
                    }
                    if prefix.trim() == line.trim() {
                        return String::new();
                    }
                }
                Err(_) => {
                    let _ = self.child.kill();
                    die(&format!("server child did not print '{prefix}' in time"));
                }
            }
        }
    }

    fn command(&mut self, cmd: &str) {
        writeln!(self.stdin, "{cmd}").unwrap();
        self.stdin.flush().unwrap();
    }

    fn mark(&mut self) {
        self.command("mark");
        self.expect("MARKED", Duration::from_secs(60));
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn data_dir(&self) -> PathBuf {
        self._dir.path().join("data")
    }

    /// `field` (e.g. "VmRSS:") of the server child's /proc/<pid>/status, in kB.
    fn child_status_kb(&self, field: &str) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with(field))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|v| v.parse().ok())
            })
            .unwrap_or(0)
    }

    fn soak_end(&mut self) -> Value {
        self.command("soakend");
        let r = self.expect("SOAKEND ", Duration::from_secs(300));
        let _ = self.child.wait();
        serde_json::from_str(&r).unwrap()
    }

    fn report(mut self) -> Value {
        self.command("report");
        let r = self.expect("REPORT ", Duration::from_secs(170));
        let _ = self.child.wait();
        serde_json::from_str(&r).unwrap()
    }
}

/// Builds TradingView strategy alerts (the tradingview-strategy template's format), one per index.
struct AlertGen {
    auth: Auth,
    base_unix: u64,
    /// `"comment":"xxx…",` with `--pad` bytes of filler, or empty.
    pad: String,
}

impl AlertGen {
    fn body(&self, i: usize) -> (Vec<u8>, Option<String>) {
        let (ticker, last, tick) = SYMBOLS[i % SYMBOLS.len()];
        let long = (i / SYMBOLS.len()) % 2 == 0;
        // Off-tick fill prices within ±2 ticks of the last price: the template rounds TP/SL to the tick.
        let jitter = ((i * 7919) % 9) as f64 / 2.0 - 2.0 + 0.37;
        let price = ((last + jitter * tick) * 1e6).round() / 1e6;
        let size = 1 + i % 3;
        // `timenow` makes the template's idempotency key (ticker-timenow-id) unique per alert.
        let timenow = humantime::format_rfc3339_seconds(
            SystemTime::UNIX_EPOCH + Duration::from_secs(self.base_unix + i as u64),
        );
        let secret = match self.auth {
            Auth::Token => format!("\"secret\":\"{TV_SECRET}\","),
            Auth::Hmac => String::new(),
        };
        let body = format!(
            concat!(
                "{{{secret}{pad}\"ticker\":\"{ticker}\",\"timenow\":\"{timenow}\",\"close\":{price},",
                "\"strategy\":{{\"action\":\"{action}\",\"contracts\":{size},\"price\":{price},",
                "\"id\":\"{id}\",\"market_position\":\"{mp}\",\"market_position_size\":{size}}}}}"
            ),
            secret = secret,
            pad = self.pad,
            ticker = ticker,
            timenow = timenow,
            price = price,
            action = if long { "buy" } else { "sell" },
            size = size,
            id = if long { "Long" } else { "Short" },
            mp = if long { "long" } else { "short" },
        )
        .into_bytes();
        let sig = match self.auth {
            Auth::Token => None,
            Auth::Hmac => Some(alert_relay::verify::sign_hmac_sha256(
                TV_SECRET.as_bytes(),
                &body,
            )),
        };
        (body, sig)
    }
}

/// One fixed-rate run against a fresh `kind` server (after a closed-loop warm-up): the client's
/// statistics and the server's report.
fn fixed_rate(
    rt: &tokio::runtime::Runtime,
    kind: &str,
    opts: &Opts,
    gen: &Arc<AlertGen>,
) -> (RunStats, Value) {
    let mut s = Server::start(kind, opts);
    let warmup = Bound::Count(opts.warmup);
    rt.block_on(closed_loop(&s.target, gen, 0, warmup, opts.concurrency));
    s.mark();
    let st = rt.block_on(open_loop(
        &s.target,
        gen,
        opts.warmup,
        opts.rate_alerts,
        opts.rate,
    ));
    (st, s.report())
}

/// What the soak's request tasks record for the current sample window (swapped out at each sample).
struct SoakWindow {
    /// Latency from the due time to the full response, µs, of the responses completed in this window.
    lat_us: Histogram<u64>,
    ok: u64,
    non202: u64,
    errors: BTreeMap<String, u64>,
}

impl Default for SoakWindow {
    fn default() -> Self {
        SoakWindow {
            lat_us: histogram(),
            ok: 0,
            non202: 0,
            errors: BTreeMap::new(),
        }
    }
}

/// Open loop at `rate`/s for `n` alerts (indices `first..first + n`), recording into `window`; `sent` counts
/// dispatched requests, `done` completed ones.
#[allow(clippy::too_many_arguments)] // a driver's knobs, passed once from `soak`
async fn soak_drive(
    target: Arc<Target>,
    gen: Arc<AlertGen>,
    first: usize,
    n: usize,
    rate: f64,
    window: Arc<Mutex<SoakWindow>>,
    sent: Arc<AtomicUsize>,
    done: Arc<AtomicUsize>,
) {
    let start = tokio::time::Instant::now();
    for k in 0..n {
        let due = start + Duration::from_secs_f64(k as f64 / rate);
        tokio::time::sleep_until(due).await;
        let (target, gen, window, done) =
            (target.clone(), gen.clone(), window.clone(), done.clone());
        sent.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(async move {
            let out = target.send_pooled(&target.request(&gen, first + k)).await;
            let lat = due.elapsed().as_micros() as u64;
            {
                let mut w = window.lock().unwrap();
                w.lat_us.saturating_record(lat);
                match out {
                    Outcome::Accepted => w.ok += 1,
                    Outcome::Error(e) => {
                        w.non202 += 1;
                        *w.errors.entry(e).or_default() += 1;
                    }
                }
            }
            done.fetch_add(1, Ordering::Relaxed);
        });
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// `--mode soak`: fixed rate for `--duration` s, one line per `--sample` s window.
fn soak(opts: &Opts, rt: &tokio::runtime::Runtime, gen: &Arc<AlertGen>) {
    let (rate, dur, every) = (opts.rate, opts.duration, opts.sample.max(1) as u64);
    let n = (rate * dur as f64).round() as usize;
    let w = opts.warmup;
    let mut s = Server::start("relay", opts);
    rt.block_on(closed_loop(
        &s.target,
        gen,
        0,
        Bound::Count(w),
        opts.concurrency,
    ));
    s.mark();
    let data = s.data_dir();
    let rss_start = s.child_status_kb("VmRSS:");
    println!(
        "soak: {rate}/s for {dur} s ({n} alerts after a {w}-alert warm-up), a line every {every} s; server RSS after warm-up {:.1} MB, data dir {:.1} MB",
        rss_start as f64 / 1024.0,
        dir_bytes(&data) as f64 / 1e6
    );
    println!("    ack = client-side, from the due time, responses completed in the window; e2e = receivedAtMs → executions[0].finishedAtMs of records received in the window shifted back 2 s (so they have finished), ms resolution; records = warm-up + 202s so far, before retention (journal.max_records, 100,000 as shipped, prunes the oldest)");
    println!(
        "{:>6} {:>8} {:>7} {:>8} {:>9} {:>9} {:>8} {:>8} {:>9} {:>9}",
        "t s",
        "sent",
        "non202",
        "RSS MB",
        "ack p50",
        "ack p99",
        "e2e p50",
        "e2e p99",
        "disk MB",
        "records"
    );
    let window = Arc::new(Mutex::new(SoakWindow::default()));
    let sent = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut e2e_since = now_ms();
    let driver = rt.spawn(soak_drive(
        s.target.clone(),
        gen.clone(),
        w,
        n,
        rate,
        window.clone(),
        sent.clone(),
        done.clone(),
    ));
    // (t, rss kB, ack p99 µs, e2e p99 ms, window latencies)
    type Row = (u64, u64, u64, Option<u64>, Histogram<u64>);
    let mut rows: Vec<Row> = Vec::new();
    let (mut total_ok, mut total_non202) = (0u64, 0u64);
    let mut all_errors: BTreeMap<String, u64> = BTreeMap::new();
    let ticks = dur.div_ceil(every);
    for k in 1..=ticks {
        let t = (k * every).min(dur);
        let due = start + Duration::from_secs(t);
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
        if k == ticks {
            // Last window: wait for the requests still in flight.
            rt.block_on(driver_wait(&sent, &done, n));
        }
        let mut win = std::mem::take(&mut *window.lock().unwrap());
        total_ok += win.ok;
        total_non202 += win.non202;
        for (e, c) in std::mem::take(&mut win.errors) {
            *all_errors.entry(e).or_default() += c;
        }
        let rss = s.child_status_kb("VmRSS:");
        let disk = dir_bytes(&data);
        let until = now_ms().saturating_sub(2000);
        s.command(&format!("e2e {e2e_since} {until}"));
        let e = s.expect("E2E ", Duration::from_secs(60));
        e2e_since = until;
        let e: Value = serde_json::from_str(&e).unwrap();
        let e_n = e["e2eMs"]["n"].as_u64().unwrap_or(0);
        let (e50, e99) = (e["e2eMs"]["p50"].as_u64(), e["e2eMs"]["p99"].as_u64());
        let fmt_e = |v: Option<u64>| match (e_n, v) {
            (0, _) | (_, None) => "-".to_string(),
            (_, Some(v)) => format!("{v} ms"),
        };
        println!(
            "{:>6} {:>8} {:>7} {:>8.1} {:>9} {:>9} {:>8} {:>8} {:>9.1} {:>9}",
            t,
            sent.load(Ordering::Relaxed),
            total_non202,
            rss as f64 / 1024.0,
            format!("{:.2}", win.lat_us.value_at_quantile(0.50) as f64 / 1000.0),
            format!("{:.2}", win.lat_us.value_at_quantile(0.99) as f64 / 1000.0),
            fmt_e(e50),
            fmt_e(e99),
            disk as f64 / 1e6,
            w as u64 + total_ok,
        );
        if e["statuses"]
            .as_object()
            .is_some_and(|m| m.keys().any(|k| k != "executed"))
        {
            println!(
                "       window record statuses: {} (e2e scan {} ms)",
                e["statuses"], e["scanMs"]
            );
        }
        rows.push((
            t,
            rss,
            win.lat_us.value_at_quantile(0.99),
            e99.filter(|_| e_n > 0),
            win.lat_us,
        ));
    }
    let _ = rt.block_on(driver);
    let end = s.soak_end();
    println!(
        "soak done: {} sent, {} × 202, {} non-202; server: {} records (count took {} ms), size_on_disk {:.1} MB, data dir {:.1} MB, CPU {} ms = {:.0} µs/alert, RSS now {:.1} MB, peak (VmHWM) {:.1} MB",
        sent.load(Ordering::Relaxed),
        total_ok,
        total_non202,
        end["records"],
        end["countMs"],
        end["diskBytes"].as_u64().unwrap_or(0) as f64 / 1e6,
        dir_bytes(&data) as f64 / 1e6,
        end["cpuMs"],
        end["cpuMs"].as_u64().unwrap_or(0) as f64 * 1000.0 / n.max(1) as f64,
        end["rssKb"].as_u64().unwrap_or(0) as f64 / 1024.0,
        end["hwmKb"].as_u64().unwrap_or(0) as f64 / 1024.0,
    );
    for (e, c) in all_errors.iter().take(5) {
        println!("    error ×{c}: {e}");
    }
    if rows.is_empty() {
        return;
    }
    let first = &rows[0];
    let last = rows.last().unwrap();
    // The 60-s mark (or the nearest sample after it), the reference for "flat".
    let at60 = rows.iter().find(|r| r.0 >= 60).unwrap_or(last);
    let mb = |kb: u64| kb as f64 / 1024.0;
    let pooled = |pred: &dyn Fn(u64) -> bool| {
        let mut h = histogram();
        for r in rows.iter().filter(|r| pred(r.0)) {
            h.add(&r.4).expect("histograms of one shape add");
        }
        (h.value_at_quantile(0.99), h.len())
    };
    let (p99_first_min, _) = pooled(&|t| t <= 60);
    let (p99_last_min, _) = pooled(&|t| t + 60 > last.0);
    let rss_flat = last.1 as f64 <= at60.1 as f64 * 1.2;
    let p99_flat =
        (p99_last_min as f64) <= (p99_first_min as f64 * 1.5).max(p99_first_min as f64 + 1000.0);
    println!("soak summary:");
    println!(
        "  RSS: first window (t={} s) {:.1} MB, t={} s {:.1} MB, last window (t={} s) {:.1} MB ({:+.1} % vs t={} s), peak {:.1} MB -> {}",
        first.0, mb(first.1), at60.0, mb(at60.1), last.0, mb(last.1),
        (last.1 as f64 / at60.1.max(1) as f64 - 1.0) * 100.0, at60.0,
        mb(end["hwmKb"].as_u64().unwrap_or(0)),
        if rss_flat { "FLAT (last within +20 % of the 60-s mark)" } else { "GROWING (last more than +20 % over the 60-s mark)" }
    );
    println!(
        "  ack p99 (client): first window {}, last window {}; pooled first 60 s {}, last 60 s {} -> {}",
        ms(first.2), ms(last.2), ms(p99_first_min), ms(p99_last_min),
        if p99_flat { "FLAT (last 60 s within +50 % or +1 ms of the first 60 s)" } else { "RISING (last 60 s more than +50 % and +1 ms over the first 60 s)" }
    );
    let e2e_str = |v: Option<u64>| v.map(|v| format!("{v} ms")).unwrap_or("-".into());
    let e2e_max_first = rows.iter().filter(|r| r.0 <= 60).filter_map(|r| r.3).max();
    let e2e_max_last = rows
        .iter()
        .filter(|r| r.0 + 60 > last.0)
        .filter_map(|r| r.3)
        .max();
    println!(
        "  e2e p99: first window {}, last window {}; worst window in the first 60 s {}, in the last 60 s {}",
        e2e_str(first.3), e2e_str(last.3), e2e_str(e2e_max_first), e2e_str(e2e_max_last)
    );
}

/// Waits (up to 60 s) until every dispatched soak request has completed.
async fn driver_wait(sent: &AtomicUsize, done: &AtomicUsize, n: usize) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while (sent.load(Ordering::Relaxed) < n
        || done.load(Ordering::Relaxed) < sent.load(Ordering::Relaxed))
        && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Percentiles of a histogram, for the child's report.
fn pcts(h: &Histogram<u64>) -> Value {
    json!({
        "p50": h.value_at_quantile(0.50), "p90": h.value_at_quantile(0.90),
        "p99": h.value_at_quantile(0.99), "p999": h.value_at_quantile(0.999),
        "max": h.max(), "n": h.len(),
    })
}

fn ms(us: u64) -> String {
    format!("{:.2} ms", us as f64 / 1000.0)
}

/// The median of `v` (the mean of the middle two for an even count); `None` when empty.
fn median(v: &[f64]) -> Option<f64> {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let m = s.len() / 2;
    match s.len() {
        0 => None,
        n if n % 2 == 1 => Some(s[m]),
        _ => Some((s[m - 1] + s[m]) / 2.0),
    }
}

fn print_client(label: &str, st: &mut RunStats) -> f64 {
    let secs = st.elapsed.as_secs_f64();
    let tput = st.ok as f64 / secs;
    println!(
        "{label}: {} × 202 in {:.2} s = {:.0} acknowledged alerts/s; errors: {}",
        st.ok,
        secs,
        tput,
        st.error_count()
    );
    for (e, n) in st.errors.iter().take(5) {
        println!("    error ×{n}: {e}");
    }
    println!(
        "    ack latency (client, request → response): p50 {}  p99 {}  p99.9 {}  max {}",
        ms(st.q(0.50)),
        ms(st.q(0.99)),
        ms(st.q(0.999)),
        ms(st.lat_us.max()),
    );
    tput
}

fn print_server(r: &Value, measured_alerts: usize) {
    let g = |path: &[&str]| -> u64 {
        let mut v = r;
        for p in path {
            v = &v[*p];
        }
        v.as_u64().unwrap_or(0)
    };
    println!(
        "    ack latency (server, timings.ackUs, receipt → fsynced): p50 {}  p99 {}  p99.9 {}",
        ms(g(&["serverAckUs", "p50"])),
        ms(g(&["serverAckUs", "p99"])),
        ms(g(&["serverAckUs", "p999"])),
    );
    println!(
        "    end-to-end (receivedAtMs → executions[0].finishedAtMs, ms resolution, {} executed): p50 {} ms  p99 {} ms  p99.9 {} ms  max {} ms",
        g(&["e2eSamples"]),
        g(&["e2eMs", "p50"]),
        g(&["e2eMs", "p99"]),
        g(&["e2eMs", "p999"]),
        g(&["e2eMs", "max"]),
    );
    println!(
        "    execution only (startedAtMs → finishedAtMs): p50 {} ms  p99 {} ms",
        g(&["execMs", "p50"]),
        g(&["execMs", "p99"]),
    );
    println!(
        "    record statuses: {}; drain after the last 202: {} ms",
        r["statuses"],
        g(&["drainMs"])
    );
    if let Some(recs) = r["unfinished"].as_array().filter(|a| !a.is_empty()) {
        println!("    NOT FINAL after the drain (first {}):", recs.len());
        for rec in recs {
            println!("      {rec}");
        }
    }
    if let Some(errs) = r["executionErrors"].as_array().filter(|a| !a.is_empty()) {
        for e in errs {
            println!(
                "    execution error ×{}: {}",
                e[1],
                e[0].as_str().unwrap_or("")
            );
        }
    }
    let records = g(&["records"]).max(1);
    let disk = g(&["diskBytes"]);
    let delta = disk.saturating_sub(g(&["diskBytesAtMark"]));
    println!(
        "    journal: {} records, size_on_disk {:.1} MB = {:.0} B/record; measured run added {:.1} MB = {:.0} B/alert; data dir {:.1} MB",
        records,
        disk as f64 / 1e6,
        disk as f64 / records as f64,
        delta as f64 / 1e6,
        delta as f64 / measured_alerts.max(1) as f64,
        g(&["dataDirBytes"]) as f64 / 1e6,
    );
    print_rss(r, measured_alerts);
}

fn print_rss(r: &Value, alerts: usize) {
    let cpu = r["cpuMs"].as_u64().unwrap_or(0);
    println!(
        "    server process CPU (user+sys, {} async workers) over the measured run and drain: {} ms = {:.0} µs/alert",
        r["workers"],
        cpu,
        cpu as f64 * 1000.0 / alerts.max(1) as f64
    );
    println!(
        "    server process RSS: idle {:.1} MB, after the run {:.1} MB, peak (VmHWM) {:.1} MB, both read before this report walks the journal  [client runs in another process]",
        r["rssIdleKb"].as_u64().unwrap_or(0) as f64 / 1024.0,
        r["rssKb"].as_u64().unwrap_or(0) as f64 / 1024.0,
        r["hwmKb"].as_u64().unwrap_or(0) as f64 / 1024.0,
    );
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "MET"
    } else {
        "NOT MET"
    }
}

/// `--mode render`: the template step alone, in this process: `--alerts` renders of the bench's alerts
/// through the shipped `tradingview-strategy` template and config, timed as one loop.
fn render(opts: &Opts, gen: &AlertGen) {
    let cfg = alert_relay::config::Config::parse(
        alert_relay::config::EMBEDDED_CONFIG,
        "embedded",
        std::env::temp_dir(),
    )
    .expect("shipped config parses");
    let instruments = Arc::new(cfg.instruments().expect("shipped instruments"));
    let templates =
        alert_relay::relay::load_templates(&cfg, &instruments).expect("shipped templates load");
    let alerts: Vec<serde_json::Map<String, Value>> = (0..SYMBOLS.len() * 2)
        .map(|i| serde_json::from_slice(&gen.body(i).0).expect("bench alert is JSON"))
        .collect();
    let n = opts.alerts.unwrap_or(20_000).max(1);
    let start = Instant::now();
    for i in 0..n {
        std::hint::black_box(
            templates
                .render(
                    "tradingview-strategy",
                    &alerts[i % alerts.len()],
                    "tradingview",
                )
                .expect("bench alert renders"),
        );
    }
    let us = start.elapsed().as_secs_f64() * 1e6 / n as f64;
    println!(
        "template render (tradingview-strategy, shipped config): {n} renders, {us:.2} µs/render"
    );
}

fn orchestrate(opts: &Opts) {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_default();
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    println!(
        "alert-relay bench: mode {:?}, saturation runs of {} at concurrency {}, fixed rate {}/s × {}, warm-up {} alerts before each run, auth {:?}{}; {} cores, {}",
        opts.mode, opts.bound(), opts.concurrency, opts.rate, opts.rate_alerts, opts.warmup, opts.auth,
        if opts.log { ", info logging on" } else { "" }, cores, cpu
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    let base_unix = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - 10_000_000;
    let gen = Arc::new(AlertGen {
        auth: opts.auth,
        base_unix,
        pad: if opts.pad > 0 {
            format!("\"comment\":\"{}\",", "x".repeat(opts.pad))
        } else {
            String::new()
        },
    });
    let (bound, c) = (opts.bound(), opts.concurrency);
    let w = opts.warmup;
    let mut relay_hwm = None;
    let mut relay_alerts = 0u64;
    let mut rate_result: Option<(u64, u64, u64, u64, u64)> = None;

    match opts.mode {
        Mode::Soak => return soak(opts, &rt, &gen),
        Mode::Render => return render(opts, &gen),
        Mode::Profile => return profile::run(opts, &rt, &gen),
        _ => {}
    }

    let (run_bare, run_relay) = (
        matches!(opts.mode, Mode::All | Mode::Saturate | Mode::Bare),
        matches!(opts.mode, Mode::All | Mode::Saturate | Mode::Relay),
    );
    let rounds = opts
        .rounds
        .unwrap_or(if run_bare && run_relay { 5 } else { 1 });
    // One saturated run against a fresh server of `kind`: warm-up, then alerts at `c` until `bound`.
    let saturated = |kind: &str| {
        let mut s = Server::start(kind, opts);
        rt.block_on(closed_loop(&s.target, &gen, 0, Bound::Count(w), c));
        s.mark();
        let st = rt.block_on(closed_loop(&s.target, &gen, w, bound, c));
        (st, s.report())
    };
    let (mut bare_runs, mut relay_runs, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for round in 1..=rounds {
        if rounds > 1 {
            println!("round {round} of {rounds}:");
        }
        if run_bare {
            let (mut st, r) = saturated("bare");
            bare_runs.push(print_client(&format!("bare warp  (C={c})"), &mut st));
            print_rss(&r, st.ok as usize);
        }
        if run_relay {
            let (mut st, r) = saturated("relay");
            relay_runs.push(print_client(&format!("relay      (C={c})"), &mut st));
            print_server(&r, st.ok as usize);
            relay_alerts = relay_alerts.max(st.ok + w as u64);
            relay_hwm = relay_hwm.max(r["hwmKb"].as_u64());
            if st.error_count() > 0 {
                println!(
                    "    WARNING: {} requests were not answered 202",
                    st.error_count()
                );
            }
        }
        if let (Some(b), Some(r)) = (bare_runs.last(), relay_runs.last()) {
            ratios.push(r / b);
            println!("relay / bare warp throughput: {:.3}", r / b);
        }
    }
    let bare_tput = median(&bare_runs);
    let relay_tput = median(&relay_runs);
    let ratio = median(&ratios);
    if rounds > 1 {
        let list = |v: &[f64], digits: usize| {
            v.iter()
                .map(|x| format!("{x:.digits$}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        println!("over {rounds} rounds (median of each):");
        if let Some(b) = bare_tput {
            println!("    bare warp: {b:.0}/s  [{}]", list(&bare_runs, 0));
        }
        if let Some(r) = relay_tput {
            println!("    relay:     {r:.0}/s  [{}]", list(&relay_runs, 0));
        }
        if let Some(q) = ratio {
            println!(
                "    relay / bare warp throughput: {q:.3}  [{}]",
                list(&ratios, 3)
            );
        }
    }
    if matches!(opts.mode, Mode::All | Mode::Rate) {
        // The same open loop against the bare server: the floor that this client, its timer (tokio's has
        // 1-ms ticks, so a send can start up to 1 ms after its due time) and the shared cores put under
        // any server's figures.
        let (mut st, _) = fixed_rate(&rt, "bare", opts, &gen);
        print_client(
            &format!(
                "bare warp at a fixed {}/s (latency from the due time; the client's floor)",
                opts.rate
            ),
            &mut st,
        );
        let (mut st, r) = fixed_rate(&rt, "relay", opts, &gen);
        print_client(
            &format!(
                "relay at a fixed {}/s (latency from the due time)",
                opts.rate
            ),
            &mut st,
        );
        print_server(&r, opts.rate_alerts);
        rate_result = Some((
            st.q(0.50),
            st.q(0.99),
            r["e2eMs"]["p50"].as_u64().unwrap_or(0),
            r["e2eMs"]["p99"].as_u64().unwrap_or(0),
            st.error_count(),
        ));
    }

    println!("targets:");
    if let Some(rt) = relay_tput {
        println!(
            "  >= 10,000 durable alerts/s at C=64: {:.0}/s at C={c} -> {}",
            rt,
            verdict(rt >= 10_000.0 && c == 64)
        );
    }
    if let Some(q) = ratio {
        println!(
            "  >= 0.30 of bare warp: {:.3}{} -> {}",
            q,
            if rounds > 1 {
                format!(" (median of {rounds} rounds)")
            } else {
                String::new()
            },
            verdict(q >= 0.30)
        );
    }
    if let Some((a50, a99, e50, e99, errs)) = rate_result {
        let _ = (a50, e50);
        println!(
            "  ack p99 <= 5 ms at {}/s: {} -> {}",
            opts.rate,
            ms(a99),
            verdict(a99 <= 5_000 && errs == 0 && opts.rate >= 1000.0)
        );
        println!(
            "  end-to-end p99 <= 10 ms at {}/s: {} ms -> {}",
            opts.rate,
            e99,
            verdict(e99 <= 10 && opts.rate >= 1000.0)
        );
    }
    if let Some(h) = relay_hwm {
        println!(
            "  RSS <= 100 MB after 1,000,000 alerts: peak {:.1} MB after {} alerts -> {}",
            h as f64 / 1024.0,
            relay_alerts,
            if relay_alerts >= 1_000_000 {
                verdict(h <= 100 * 1024)
            } else if h > 100 * 1024 {
                "NOT MET (already above 100 MB before 1,000,000 alerts)"
            } else {
                "NOT MEASURED at 1,000,000 (run --mode relay --alerts 1000000)"
            }
        );
    }
}

//! `check` shows where alerts go (one line per source, paper or live), warns about routes that look wrong,
//! and renders every template against its sample; `serve` prints the same lines at start-up, as JSON log
//! events with `--log-format json`.
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::*;

const SHIPPED: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/config.toml"));

/// The shipped config plus `extra`, written into `dir`, with templates from `dir/tpl`.
fn config_in(dir: &Path, extra: &str) -> std::path::PathBuf {
    let path = dir.join("config.toml");
    let cfg = SHIPPED.replace(
        "templates_dir = \"templates\"",
        &format!("templates_dir = \"{}\"", dir.join("tpl").display()),
    );
    std::fs::write(&path, format!("{cfg}\n{extra}")).unwrap();
    path
}

fn check(config: &Path) -> Output {
    relay_command()
        .args(["check", "--config"])
        .arg(config)
        .env("CT_CHECK_TOKEN", "ct-token-123")
        .output()
        .expect("run alert-relay")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).to_string()
}

const TV_LINE: &str =
    "source tradingview: auth token; template tradingview-strategy → Sim101 paper";
const SIGNALS_LINE: &str = "source signals: auth standard-webhooks; template signal-service → from the alert (accounts = alert.accounts | default(source_accounts)), by default Sim101 paper";

#[test]
fn check_prints_one_line_per_source_for_the_shipped_config() {
    let out = relay_command()
        .args([
            "check",
            "--config",
            concat!(env!("CARGO_MANIFEST_DIR"), "/config.toml"),
        ])
        .output()
        .expect("run alert-relay");
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines[..3],
        [
            "source github-style: auth hmac-sha256; templates (alert field 'template') signal-service → from the alert (accounts = alert.accounts | default(source_accounts)), by default Sim101 paper; crosstrade-kv → from the alert (account = account)",
            SIGNALS_LINE,
            TV_LINE,
        ],
        "{stdout}"
    );
    assert!(
        lines[3].contains(
            ": OK — 3 source(s), 5 template(s) compiled, 5 rendered against their sample"
        ),
        "{stdout}"
    );
    // Then the contract months (tests/it/contracts.rs checks their content).
    assert!(lines[4].starts_with("front months as of "), "{stdout}");
    assert!(!stderr.contains("warning:"), "{stderr}");
}

/// A live account nobody routes to, and sources that trade paper only while live accounts exist, are
/// warned about on stderr; check still succeeds. A template that routes to the live account shows its
/// transport.
#[test]
fn check_warns_about_a_live_account_no_source_reaches() {
    let dir = tempfile::tempdir().unwrap();
    let live = "[crosstrade]\ntoken = \"env:CT_CHECK_TOKEN\"\ntransport = \"websocket\"\naccounts = [\"Live1\"]\n";
    let out = check(&config_in(dir.path(), live));
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains(TV_LINE), "{stdout}");
    assert!(
        stderr.contains("warning: live account 'Live1' ([crosstrade] accounts) is reached by no source (only an alert that names it can: sources github-style, signals take accounts from the alert)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("warning: source 'tradingview' reaches only paper accounts (Sim101) while live accounts exist (Live1)\n"),
        "{stderr}"
    );

    // The same with the TradingView template routed to Live1: it is reached, and shown live.
    std::fs::create_dir(dir.path().join("tpl")).unwrap();
    let tv = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/templates/tradingview-strategy.toml"
    ))
    .replace("accounts = \"source_accounts\"", "accounts = [\"Live1\"]");
    std::fs::write(dir.path().join("tpl/tradingview-strategy.toml"), tv).unwrap();
    let out = check(&config_in(dir.path(), live));
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("source tradingview: auth token; template tradingview-strategy → Live1 live (crosstrade-websocket)\n"),
        "{stdout}"
    );
    assert!(!stderr.contains("live account 'Live1'"), "{stderr}");
    assert!(!stderr.contains("source 'tradingview'"), "{stderr}");
}

/// minijinja compiles `ofset(...)` and fails only when it runs: check renders the sample and fails,
/// naming the template, the field and the unknown function. A template without a sample is a warning.
#[test]
fn check_fails_on_a_template_whose_sample_does_not_render() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("tpl")).unwrap();
    let tv = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/templates/tradingview-strategy.toml"
    ));
    let typo = tv.replace("takeProfit = \"offset(", "takeProfit = \"ofset(");
    assert_ne!(typo, tv);
    std::fs::write(dir.path().join("tpl/tv-typo.toml"), &typo).unwrap();
    let no_sample: String = tv
        .lines()
        .filter(|l| {
            !l.starts_with("sample") && !l.starts_with('{') && !l.starts_with(' ') && *l != "'''"
        })
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(dir.path().join("tpl/tv-nosample.toml"), no_sample).unwrap();
    let out = check(&config_in(dir.path(), ""));
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(!out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("template 'tv-typo', field 'requests[3].takeProfit' (ofset(price, side, tp_ticks, 'ticks', instrument))"),
        "{stderr}"
    );
    assert!(stderr.contains("ofset is unknown"), "{stderr}");
    assert!(stderr.contains("tv-typo.toml"), "{stderr}");
    assert!(
        stderr.contains("warning: template 'tv-nosample' (") && stderr.contains("has no `sample`"),
        "{stderr}"
    );
    assert!(!stdout.contains("OK"), "{stdout}");

    // Without the typo it passes, the sample-less template still only warned about.
    std::fs::remove_file(dir.path().join("tpl/tv-typo.toml")).unwrap();
    let out = check(&config_in(dir.path(), ""));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("6 template(s) compiled, 5 rendered against their sample"));
}

/// Starts `serve` on port 0 and collects what it writes until the `listening on` line (on stdout in text
/// mode, a JSON event on stderr in JSON mode); then stops it.
fn serve_until_listening(json: bool) -> (Vec<String>, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = relay_command();
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("data"))
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if json {
        cmd.args(["--log-format", "json"]);
    }
    let mut child = cmd.spawn().expect("start alert-relay");
    let (tx, rx) = std::sync::mpsc::channel();
    for (is_err, pipe) in [
        (
            false,
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
        ),
        (true, Box::new(child.stderr.take().unwrap())),
    ] {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                let _ = tx.send((is_err, line));
            }
        });
    }
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok((is_err, line)) = rx.recv_timeout(left) else {
            let _ = child.kill();
            panic!("no 'listening on'\nstdout: {out:?}\nstderr: {err:?}");
        };
        let listening = if json {
            is_err
                && serde_json::from_str::<Value>(&line).is_ok_and(|v| {
                    v["fields"]["message"]
                        .as_str()
                        .is_some_and(|m| m.starts_with("listening on http://"))
                })
        } else {
            !is_err && line.starts_with("listening on http://")
        };
        if is_err {
            err.push(line)
        } else {
            out.push(line)
        };
        if listening {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    // What was written before the kill.
    while let Ok((is_err, line)) = rx.recv_timeout(Duration::from_millis(200)) {
        if is_err {
            err.push(line)
        } else {
            out.push(line)
        };
    }
    (out, err)
}

#[test]
fn serve_start_up_lines_are_json_with_log_format_json() {
    let (out, err) = serve_until_listening(true);
    assert!(out.is_empty(), "stdout in JSON mode: {out:?}");
    let messages: Vec<String> = err
        .iter()
        .map(|l| {
            let v: Value =
                serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"));
            v["fields"]["message"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    for expected in [
        "config: ",
        "data dir: ",
        "async workers: ",
        "API token: ",
        TV_LINE,
        SIGNALS_LINE,
    ] {
        assert!(
            messages.iter().any(|m| m.starts_with(expected)),
            "{expected}: {messages:?}"
        );
    }
}

#[test]
fn serve_text_start_up_lines_show_sources_and_end_with_listening_on() {
    let (out, err) = serve_until_listening(false);
    assert!(out[0].starts_with("config: "), "{out:?}");
    assert!(out.contains(&TV_LINE.to_string()), "{out:?}");
    assert!(
        out.last()
            .unwrap()
            .starts_with("listening on http://127.0.0.1:"),
        "{out:?}"
    );
    assert!(
        err.iter()
            .all(|l| serde_json::from_str::<Value>(l).is_err()),
        "{err:?}"
    );
}

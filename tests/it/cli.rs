//! The journal commands run as the binary: `alerts list|show|export` and `replay`, against a data dir held
//! by a running server (through its API, found via `server.json`) and against a stopped one (the journal
//! opened directly).
use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use crate::support::*;
use serde_json::{json, Value};

/// A relay with a second TradingView template, `tv-wide`: the tests' pipeline-bracket with a wider
/// take-profit (60 ticks).
fn server() -> TestServer {
    let tv_wide = PIPELINE_BRACKET_TEMPLATE.replace("default(40)", "default(60)");
    assert_ne!(tv_wide, PIPELINE_BRACKET_TEMPLATE);
    TestServer::spawn_with_files(
        "[server]\ntemplates_dir = \"{dir}/tpl\"\n",
        &[("tpl/tv-wide.toml", &tv_wide)],
    )
}

/// Runs `alert-relay ARGS --config .. --data-dir DIR` with no standard input.
fn cli_in(config: &Path, data_dir: &Path, args: &[&str]) -> Output {
    relay_command()
        .args(args)
        .arg("--config")
        .arg(config)
        .arg("--data-dir")
        .arg(data_dir)
        .output()
        .expect("run alert-relay")
}

fn cli(s: &TestServer, args: &[&str]) -> Output {
    cli_in(&s.config_path, &s.data_dir(), args)
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

/// Runs and expects success; returns stdout.
fn ok(o: Output) -> String {
    assert!(
        o.status.success(),
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        stdout(&o),
        String::from_utf8_lossy(&o.stderr)
    );
    stdout(&o)
}

fn json(o: Output) -> Value {
    let text = ok(o);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}):\n{text}"))
}

fn listed_ids(list: &Value) -> Vec<String> {
    list["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_string())
        .collect()
}

/// Two executed TradingView alerts, one skipped (flat), one executed signal: ids oldest first. Each is final
/// when it is answered (`Prefer: wait`).
async fn seed(s: &TestServer) -> Vec<String> {
    let mut out = Vec::new();
    for (t, pos, size) in [
        ("10:00", "long", 1),
        ("10:01", "long", 2),
        ("10:02", "flat", 0),
    ] {
        let body = tv_alert("ES1!", &format!("2026-11-27T{t}:00Z"), pos, size, 6000.0).to_string();
        let (st, v, _) = s.post_hook_final("tradingview", &body, &[]).await;
        assert_eq!(st, 200, "{v}");
        out.push(alert_id(&v));
    }
    let body = signal("sig-1", "NQ1!", "long", 1, 21050.0, 20950.0).to_string();
    let h = sw_headers(SW_SECRET, "msg-1", unix_now(), &body);
    let (st, v, _) = s.post_hook_final("signals", &body, &hdrs(&h)).await;
    assert_eq!(st, 200, "{v}");
    out.push(alert_id(&v));
    out
}

/// list/show/export and their filters give the same answers through the server and from the journal.
fn check_inspection(s: &TestServer, seeded: &[String]) {
    let all = json(cli(s, &["alerts", "list", "--json"]));
    assert_eq!(all["count"], 4, "{all}");
    let mut newest_first = seeded.to_vec();
    newest_first.reverse();
    assert_eq!(listed_ids(&all), newest_first);

    let skipped = json(cli(s, &["alerts", "list", "--status", "skipped", "--json"]));
    assert_eq!(listed_ids(&skipped), vec![seeded[2].clone()]);
    assert_eq!(skipped["alerts"][0]["status"], "skipped");
    let signals = json(cli(s, &["alerts", "list", "--source", "signals", "--json"]));
    assert_eq!(listed_ids(&signals), vec![seeded[3].clone()]);
    let two = json(cli(s, &["alerts", "list", "--limit", "2", "--json"]));
    assert_eq!(listed_ids(&two), newest_first[..2].to_vec());
    let none = json(cli(
        s,
        &["alerts", "list", "--since", "1h", "--until", "2h", "--json"],
    ));
    assert_eq!(none["count"], 0);

    let table = ok(cli(s, &["alerts", "list"]));
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("ID "), "{table}");
    for h in ["RECEIVED", "SOURCE", "STATUS", "REQUEST", "REASON"] {
        assert!(lines[0].contains(h), "{table}");
    }
    assert!(
        lines[1].starts_with(&seeded[3]) && lines[1].contains("Buy 1 NQ 12-26"),
        "{table}"
    );
    assert!(
        lines[2].contains("skipped") && lines[2].contains("when condition is false"),
        "{table}"
    );
    assert!(
        lines[3].contains("executed") && lines[3].contains("Buy 2 ES 12-26"),
        "{table}"
    );
    assert_eq!(lines.last().unwrap(), &"4 record(s)");

    let bad = cli(s, &["alerts", "list", "--status", "nope"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("not a status"));

    let one = json(cli(s, &["alerts", "show", &seeded[1], "--json"]));
    assert_eq!(one["id"], seeded[1].as_str());
    assert_eq!(one["executions"][0]["request"]["quantity"], 2);
    let text = ok(cli(s, &["alerts", "show", &seeded[1]]));
    assert!(
        text.contains(&format!("id:          {}", seeded[1])),
        "{text}"
    );
    assert!(text.contains("status:      executed"), "{text}");
    assert!(
        text.contains("execution 1: Sim101 Buy 2 ES 12-26 tp 6010 sl 5995 -> executed (paper)"),
        "{text}"
    );
    let missing = cli(s, &["alerts", "show", "01NOSUCHALERT"]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no alert with id"));

    let export = ok(cli(s, &["alerts", "export", "--format", "jsonl"]));
    let mut lines = export.lines();
    assert_eq!(
        lines.next(),
        Some(r#"{"alertRelayExport":1}"#),
        "an export names its format version first"
    );
    let exported: Vec<Value> = lines.map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(
        exported
            .iter()
            .map(|r| r["id"].as_str().unwrap())
            .collect::<Vec<_>>(),
        seeded.iter().map(String::as_str).collect::<Vec<_>>(),
        "export is oldest first"
    );
    let file = s.dir.path().join("executed.jsonl");
    ok(cli(
        s,
        &[
            "alerts",
            "export",
            "--status",
            "executed",
            "--output",
            file.to_str().unwrap(),
        ],
    ));
    let text = std::fs::read_to_string(&file).unwrap();
    assert_eq!(
        text.lines().count(),
        1 + 3,
        "the version line and three records: {text}"
    );
    for l in text.lines().skip(1) {
        assert_eq!(
            serde_json::from_str::<Value>(l).unwrap()["status"],
            "executed"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inspect_works_with_the_server_running_and_stopped() {
    let mut s = server();
    let seeded = seed(&s).await;
    let info: Value =
        serde_json::from_slice(&std::fs::read(s.data_dir().join("server.json")).unwrap()).unwrap();
    assert_eq!(info["url"], s.base.as_str());
    assert!(info["pid"].as_u64().unwrap() > 0);
    check_inspection(&s, &seeded);

    let refused = cli(&s, &["alerts", "list", "--token", "wrong-token"]);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("refused the API token"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );

    assert!(s.terminate().success());
    assert!(
        !s.data_dir().join("server.json").exists(),
        "removed on a clean exit"
    );
    check_inspection(&s, &seeded);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_shows_original_against_now_and_marks_changes() {
    let mut s = server();
    let seeded = seed(&s).await;
    let first = seeded[0].as_str();
    for running in [true, false] {
        let same = ok(cli(&s, &["replay", "--id", first]));
        assert!(same.contains(&format!("{first}  ")), "{same}");
        assert!(same.contains("template pipeline-bracket  same"), "{same}");
        assert!(
            same.contains("  was  Sim101 Buy 1 ES 12-26 tp 6010 sl 5995"),
            "{same}"
        );
        assert!(
            same.contains("  now  Sim101 Buy 1 ES 12-26 tp 6010 sl 5995"),
            "{same}"
        );
        assert!(same.contains("planned (dry run: nothing sent)"), "{same}");
        assert!(
            same.contains("summary: dry run of 1 alert(s): planned 1"),
            "{same}"
        );
        assert!(same.contains("changed: none"), "{same}");

        let account = ok(cli(&s, &["replay", "--id", first, "--account", "Sim102"]));
        assert!(account.contains("CHANGED"), "{account}");
        assert!(
            account.contains("  now  Sim102 Buy 1 ES 12-26 tp 6010 sl 5995"),
            "{account}"
        );
        assert!(
            account.contains(&format!("changed (1): {first}")),
            "{account}"
        );

        let v = json(cli(
            &s,
            &[
                "replay",
                "--status",
                "executed",
                "--source",
                "tradingview",
                "--template",
                "tv-wide",
                "--every",
                "--json",
            ],
        ));
        assert_eq!(v["to"], "dry-run");
        let results = v["results"].as_array().unwrap();
        assert_eq!(results.len(), 2, "{v}");
        assert_eq!(results[0]["id"], first, "chronological order");
        assert_eq!(results[0]["template"], "tv-wide");
        assert_eq!(results[0]["changed"], true);
        assert_eq!(results[0]["original"][0]["takeProfit"], 6010.0);
        assert_eq!(results[0]["now"][0]["takeProfit"], 6015.0);
        assert_eq!(results[0]["outcome"], "planned");
        assert_eq!(v["summary"]["outcomes"]["planned"], 2);
        assert_eq!(v["summary"]["changed"].as_array().unwrap().len(), 2);

        // A template that cannot render the alert: the error is reported and the exit code says so.
        let broken = cli(
            &s,
            &["replay", "--id", first, "--template", "signal-service"],
        );
        assert!(!broken.status.success());
        let out = stdout(&broken);
        assert!(out.contains("  now  (error: "), "{out}");
        assert!(out.contains("error 1"), "{out}");
        assert!(String::from_utf8_lossy(&broken.stderr).contains("could not be replayed"));

        let skipped = ok(cli(&s, &["replay", "--status", "skipped"]));
        assert!(skipped.contains("  was  (nothing sent)"), "{skipped}");
        assert!(
            skipped.contains("  now  (skipped: when condition is false"),
            "{skipped}"
        );

        // A dry run records nothing.
        assert_eq!(json(cli(&s, &["alerts", "list", "--json"]))["count"], 4);
        if running {
            s.terminate();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paper_replay_records_a_new_alert_and_replays_of_replays_are_traceable() {
    let mut s = server();
    let seeded = seed(&s).await;
    let original = seeded[1].as_str();
    let (_, before) = s.api_get(&format!("/api/alerts/{original}")).await;
    let orders_before = s.orders("Sim101").await.len();

    // Server running: through POST /api/alerts/{id}/replay.
    let v = json(cli(
        &s,
        &["replay", "--id", original, "--to", "paper", "--json"],
    ));
    let r = &v["results"][0];
    assert_eq!(r["outcome"], "executed", "{v}");
    assert_eq!(v["summary"]["outcomes"]["executed"], 1);
    let first_replay = r["newId"].as_str().unwrap().to_string();
    let (_, rec) = s.api_get(&format!("/api/alerts/{first_replay}")).await;
    assert_eq!(rec["replayOf"], original);
    assert_eq!(rec["status"], "executed");
    let (_, after) = s.api_get(&format!("/api/alerts/{original}")).await;
    assert_eq!(
        after["replayedBy"],
        json!([first_replay]),
        "the original links its replay"
    );
    let mut untouched = after.clone();
    untouched.as_object_mut().unwrap().remove("replayedBy");
    assert_eq!(before, untouched, "and is otherwise untouched");
    let orders = s.orders("Sim101").await;
    assert_eq!(orders.len(), orders_before + 2, "a new TP + SL bracket");
    assert_eq!(s.working_orders("Sim101", "ES 12-26").await.len(), 2);

    // Server stopped: a relay in the CLI process replays the replay.
    s.terminate();
    let text = ok(cli(&s, &["replay", "--id", &first_replay, "--to", "paper"]));
    assert!(text.contains("->   executed as "), "{text}");
    assert!(
        text.contains("summary: replayed to paper: 1 alert(s): executed 1"),
        "{text}"
    );
    let list = json(cli(&s, &["alerts", "list", "--limit", "1", "--json"]));
    let second_replay = list["alerts"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(list["alerts"][0]["replayOf"], first_replay.as_str());
    let table = ok(cli(&s, &["alerts", "list", "--limit", "1"]));
    assert!(
        table.contains(&format!("replay of {first_replay}")),
        "{table}"
    );

    // The chain is visible to a restarted server, and so are the paper orders.
    s.start_process();
    let (_, rec) = s.api_get(&format!("/api/alerts/{second_replay}")).await;
    assert_eq!(rec["replayOf"], first_replay.as_str());
    assert_eq!(rec["status"], "executed");
    let (_, rec) = s.api_get(&format!("/api/alerts/{first_replay}")).await;
    assert_eq!(rec["replayOf"], original);
    assert_eq!(s.orders("Sim101").await.len(), orders_before + 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_replay_needs_yes_or_a_terminal() {
    let s = server();
    let seeded = seed(&s).await;
    let o = cli(&s, &["replay", "--id", &seeded[0], "--to", "live"]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("refusing to replay to live accounts"), "{err}");
    assert!(err.contains("--yes"), "{err}");
    assert_eq!(
        json(cli(&s, &["alerts", "list", "--json"]))["count"],
        4,
        "nothing recorded"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_then_replay_from_file_in_another_data_dir() {
    let s = server();
    let seeded = seed(&s).await;
    let file = s.dir.path().join("all.jsonl");
    ok(cli(
        &s,
        &["alerts", "export", "--output", file.to_str().unwrap()],
    ));
    let f = file.to_str().unwrap();

    let other = tempfile::tempdir().unwrap();
    let elsewhere = other.path().join("data");
    let text = ok(cli_in(
        &s.config_path,
        &elsewhere,
        &["replay", "--from-file", f],
    ));
    for id in &seeded {
        assert!(text.contains(id.as_str()), "{text}");
    }
    assert!(
        text.contains("summary: dry run of 4 alert(s): planned 2, skipped 1, superseded 1"),
        "{text}"
    );
    assert!(
        text.contains("  now  Sim101 Buy 1 NQ 12-26 tp 21050 sl 20950"),
        "{text}"
    );
    assert!(
        !elsewhere.exists(),
        "a dry run from a file needs no journal"
    );

    let v = json(cli_in(
        &s.config_path,
        &elsewhere,
        &[
            "replay",
            "--from-file",
            f,
            "--source",
            "signals",
            "--account",
            "Sim102",
            "--json",
        ],
    ));
    assert_eq!(v["results"].as_array().unwrap().len(), 1);
    assert_eq!(v["results"][0]["changed"], true);

    // Paper execution of an exported record imports it, then replays it.
    let v = json(cli_in(
        &s.config_path,
        &elsewhere,
        &[
            "replay",
            "--from-file",
            f,
            "--status",
            "executed",
            "--limit",
            "1",
            "--to",
            "paper",
            "--json",
        ],
    ));
    assert_eq!(v["results"][0]["id"], seeded[3].as_str());
    assert_eq!(v["results"][0]["outcome"], "executed", "{v}");
    let list = json(cli_in(
        &s.config_path,
        &elsewhere,
        &["alerts", "list", "--json"],
    ));
    assert_eq!(list["count"], 2, "{list}");
    assert_eq!(list["alerts"][0]["replayOf"], seeded[3].as_str());
    assert_eq!(list["alerts"][1]["id"], seeded[3].as_str());

    // With the server running, a record missing from its journal is not executed from a file.
    let foreign = other.path().join("foreign.jsonl");
    let mut rec: Value = serde_json::from_str(
        std::fs::read_to_string(&file)
            .unwrap()
            .lines()
            .nth(1)
            .unwrap(),
    )
    .unwrap();
    rec["id"] = "01KAAAAAAAAAAAAAAAAAAAAAAA".into();
    std::fs::write(&foreign, format!("{rec}\n")).unwrap();
    let o = cli(
        &s,
        &[
            "replay",
            "--from-file",
            foreign.to_str().unwrap(),
            "--to",
            "paper",
        ],
    );
    assert!(!o.status.success());
    assert!(
        stdout(&o).contains("not in the running server's journal"),
        "{}",
        stdout(&o)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pace_divides_the_original_gaps() {
    let s = server();
    let seeded = seed(&s).await;
    let started = Instant::now();
    let text = ok(cli(&s, &["replay", "--since", "0", "--pace", "1000x"]));
    assert!(text.contains("summary: dry run of 4 alert(s)"), "{text}");
    assert!(started.elapsed() < Duration::from_secs(20));
    let pos: Vec<usize> = seeded
        .iter()
        .map(|id| text.find(id.as_str()).unwrap())
        .collect();
    assert!(pos.windows(2).all(|w| w[0] < w[1]), "chronological: {text}");
    ok(cli(
        &s,
        &[
            "replay", "--since", "0", "--pace", "realtime", "--limit", "1",
        ],
    ));
    let bad = cli(&s, &["replay", "--since", "0", "--pace", "fast"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("not a pace"));
    let nothing = cli(&s, &["replay"]);
    assert!(!nothing.status.success());
    assert!(String::from_utf8_lossy(&nothing.stderr).contains("choose what to replay"));
}

/// `render` names the template, the request and the cause of a refusal, each once.
#[test]
fn render_reports_an_invalid_request_once() {
    let dir = tempfile::tempdir().unwrap();
    let alert = dir.path().join("alert.json");
    std::fs::write(
        &alert,
        r#"{"id":"x","symbol":"NQ1!","side":"SHORT","qty":1}"#,
    )
    .unwrap();
    let out = relay_command()
        .args(["render", "--template", "signal-service", "--alert"])
        .arg(&alert)
        .output()
        .expect("run alert-relay");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let cause = "at least one of takeProfit and stopLoss is required";
    assert_eq!(err.matches(cause).count(), 1, "{err}");
    assert!(err.contains("template 'signal-service'"), "{err}");
}

/// `check` refuses what `serve` would: a CrossTrade URL with credentials in it, a token that cannot be sent
/// in a header. The error never shows the token.
#[test]
fn check_refuses_crosstrade_settings_that_serve_would_refuse() {
    let dir = tempfile::tempdir().unwrap();
    let shipped =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config.toml")).unwrap();
    let run = |base_url: &str, token: &str| {
        let config = dir.path().join("config.toml");
        std::fs::write(
            &config,
            format!("{shipped}\n[crosstrade]\nbase_url = \"{base_url}\"\ntoken = \"env:CT_CHECK_TOKEN\"\naccounts = [\"Live1\"]\n"),
        )
        .unwrap();
        relay_command()
            .args(["check", "--config"])
            .arg(&config)
            .env("CT_CHECK_TOKEN", token)
            .output()
            .expect("run alert-relay")
    };
    let good = run("https://app.crosstrade.io", "ct-token-123");
    assert!(
        good.status.success(),
        "{}",
        String::from_utf8_lossy(&good.stderr)
    );
    let creds = run("https://user:pass@app.crosstrade.io", "ct-token-123");
    assert!(!creds.status.success());
    let err = String::from_utf8_lossy(&creds.stderr);
    assert!(
        err.contains("crosstrade.base_url: must not carry credentials"),
        "{err}"
    );
    let control = run("https://app.crosstrade.io", "ct-bad\u{1}token");
    assert!(!control.status.success());
    let err = String::from_utf8_lossy(&control.stderr);
    assert!(err.contains("crosstrade.token"), "{err}");
    assert!(!err.contains("ct-bad"), "{err}");
}

/// Re-driving stored alerts never moves a lane backwards: a replay of an alert whose lane has executed a
/// newer one is refused as stale (409 naming the newer alert; `force` overrides; a dry run marks it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_older_than_its_lane_is_stale_unless_forced() {
    let s = server();
    let seeded = seed(&s).await;
    let (older, newer) = (seeded[0].as_str(), seeded[1].as_str());
    let path = format!("/api/alerts/{older}/replay");
    let (st, v) = s.api_post(&path, json!({"to": "paper"})).await;
    assert_eq!(st, 409, "{v}");
    assert_eq!(v["newerAlertId"], newer, "{v}");
    assert!(v["error"].as_str().unwrap().contains("is stale"), "{v}");
    let (st, v) = s.api_post(&path, json!({})).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["plan"]["stale"], newer, "a dry run marks it: {v}");
    let text = ok(cli(&s, &["replay", "--id", older]));
    assert!(
        text.contains(&format!("STALE: lane has newer alert {newer}")),
        "{text}"
    );
    let (st, v) = s
        .api_post(&path, json!({"to": "paper", "force": true}))
        .await;
    assert_eq!(st, 200, "forced: {v}");
    assert_eq!(v["alert"]["status"], "executed", "{v}");
    // The newest alert of the lane is not stale: the forced replay stands for the older alert, so replaying
    // the newer one moves the lane forward again.
    let (st, v) = s
        .api_post(
            &format!("/api/alerts/{newer}/replay"),
            json!({"to": "paper"}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["alert"]["status"], "executed", "{v}");
}

/// One replay run sends only the newest selected alert per lane (older ones superseded, `--every` runs all),
/// links each original to its replay, and `--not-replayed` then leaves the re-driven ones out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_run_replays_the_newest_per_lane_and_links_it_to_the_original() {
    let s = server();
    let seeded = seed(&s).await;
    let args = [
        "replay",
        "--status",
        "executed",
        "--source",
        "tradingview",
        "--to",
        "paper",
        "--json",
    ];
    let v = json(cli(&s, &args));
    let results = v["results"].as_array().unwrap();
    assert_eq!(results.len(), 2, "{v}");
    assert_eq!(results[0]["id"], seeded[0].as_str());
    assert_eq!(results[0]["outcome"], "superseded", "{v}");
    assert!(
        results[0]["reason"]
            .as_str()
            .unwrap()
            .contains(seeded[1].as_str()),
        "{v}"
    );
    assert_eq!(results[1]["outcome"], "executed", "{v}");
    let replay_id = results[1]["newId"].as_str().unwrap();
    let (_, original) = s.api_get(&format!("/api/alerts/{}", seeded[1])).await;
    assert_eq!(original["replayedBy"], json!([replay_id]), "{original}");
    let (_, older) = s.api_get(&format!("/api/alerts/{}", seeded[0])).await;
    assert!(
        older["replayedBy"].is_null(),
        "superseded: not re-driven: {older}"
    );
    // Replays are counted like webhook alerts: accepted when admitted, then their final status, so a
    // source's executed never exceeds its accepted.
    let metrics = s.get_text("/metrics").await;
    let count = |status: &str| -> u64 {
        let prefix =
            format!("alert_relay_alerts_total{{source=\"tradingview\",status=\"{status}\"}} ");
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .map_or(0, |n| n.trim().parse().unwrap())
    };
    assert_eq!(
        count("executed"),
        3,
        "two alerts and one replay executed: {metrics}"
    );
    assert_eq!(
        count("accepted"),
        3,
        "two alerts and one replay admitted (the flat one is skipped): {metrics}"
    );
    assert_eq!(count("skipped"), 1, "{metrics}");

    // The same outage steps again, never-replayed only: the re-driven alert is left out, and the older one
    // is refused as stale (its lane has executed the newer alert's replay since).
    let mut again = args.to_vec();
    again.push("--not-replayed");
    let v = json(cli(&s, &again));
    let results = v["results"].as_array().unwrap();
    assert_eq!(results.len(), 1, "{v}");
    assert_eq!(results[0]["id"], seeded[0].as_str());
    assert_eq!(results[0]["outcome"], "stale", "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_exits_non_zero_when_an_execution_failed() {
    let s = server();
    let seeded = seed(&s).await;
    // The market moved below the bracket's stop: a Sell stop at 5995 is now above the last price.
    let (st, v) = s
        .api_post(
            "/paper/quote",
            json!({"instrument": "ES 12-26", "price": 5990.0}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let o = cli(&s, &["replay", "--id", &seeded[1], "--to", "paper"]);
    assert!(!o.status.success(), "{}", stdout(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("did not succeed"), "{err}");
    assert!(stdout(&o).contains("failed 1"), "{}", stdout(&o));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_of_an_unknown_format_version_is_refused_by_name() {
    let s = server();
    seed(&s).await;
    let file = s.dir.path().join("future.jsonl");
    let export = ok(cli(&s, &["alerts", "export"]));
    let body: Vec<&str> = export.lines().skip(1).collect();
    std::fs::write(
        &file,
        format!("{{\"alertRelayExport\":2}}\n{}\n", body.join("\n")),
    )
    .unwrap();
    let o = cli(&s, &["replay", "--from-file", file.to_str().unwrap()]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("export format version 2 is not known"),
        "{err}"
    );
    // Without a version line (files written before it existed): read as version 1.
    std::fs::write(&file, format!("{}\n", body.join("\n"))).unwrap();
    ok(cli(&s, &["replay", "--from-file", file.to_str().unwrap()]));
}

//! Test data: the secrets and the config every test server starts from, alert bodies as senders write them,
//! the configured instruments, and small readers of the relay's answers.

use std::path::Path;

use alert_relay::config::EMBEDDED_CONFIG;
use serde_json::{json, Value};

// ------------------------------------------------------------------------------------------ secrets, config

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
    // The pipeline tests (ingress, idempotency, crashes, replay...) drive a TradingView source whose
    // template places one bracket per alert, as an entry on a flat paper account: what they test is the
    // pipeline, not a strategy. The shipped strategy templates have their own tests (tests/it/strategy.rs).
    let secrets = format!(
        r#"
[server]
api_tokens = ["file:{d}/api.secret"]
[sources.tradingview]
secret = "file:{d}/tv.secret"
template = "pipeline-bracket"
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
    let templates_dir = base
        .get("server")
        .and_then(|s| s.get("templates_dir"))
        .and_then(toml::Value::as_str)
        .map_or_else(|| dir.join("templates"), |t| dir.join(t));
    std::fs::create_dir_all(&templates_dir).unwrap();
    std::fs::write(
        templates_dir.join("pipeline-bracket.toml"),
        PIPELINE_BRACKET_TEMPLATE,
    )
    .unwrap();
    toml::to_string(&base).unwrap()
}

/// One bracket around the strategy's position after the order, ungated (`position = "any"`: no position
/// read, CrossTrade's own CancelAndBracket decides, an entry on a flat account): the template the pipeline
/// tests' TradingView source uses, so scripted brokers see exactly the calls they script.
pub const PIPELINE_BRACKET_TEMPLATE: &str =
    include_str!("../../fixtures/one-bracket-template.toml");

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

/// Shared token of the extra token sources (`kv`, `text`) that tests configure through [`EXTRA_TOKEN_SOURCES`].
pub const KV_SECRET: &str = "kv-test-secret-9876543210";

/// Extra sources for token auth in key=value text (`kv`, template crosstrade-kv) and in `?token=` for plain
/// text (`text`, template `text-alert` from [`TEXT_ALERT_TEMPLATE`]). Needs the files from
/// [`extra_token_files`] and `{dir}` replaced (see `TestServer::in_process_with_files`).
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
/// rounded to the tick, so an off-tick price reaches validation. `entry = true`: a bracket on a flat account
/// is placed as the entry, on purpose.
pub const TEXT_ALERT_TEMPLATE: &str = r#"
description = "plain text: side symbol qty tp sl"
[vars]
parts = "alert.text | split"
[request]
account = "'Sim101'"
instrument = "parts[1] | instrument"
action = "parts[0] | action"
quantity = "parts[2]"
entry = "true"
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

/// `"{prefix}1", "{prefix}2", …` up to `n`: the items of a TOML list of account names.
pub fn numbered_accounts(prefix: &str, n: usize) -> String {
    (1..=n)
        .map(|i| format!("\"{prefix}{i}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Overrides for a relay that trades `accounts` (the items of a TOML list) live through the CrossTrade API
/// at `base_url` over `transport` ("http" or "websocket"), with the test API token; its own paper account is
/// `Paper1`. `crosstrade` holds further lines of that table (timeouts); other tables go after the result.
pub fn crosstrade_overrides(
    base_url: &str,
    transport: &str,
    accounts: &str,
    crosstrade: &str,
) -> String {
    format!(
        r#"
[paper]
accounts = ["Paper1"]
[crosstrade]
base_url = "{base_url}"
token = "file:{{dir}}/api.secret"
transport = "{transport}"
accounts = [{accounts}]
{crosstrade}
"#
    )
}

/// Overrides for a relay whose Sim101 trades live through CrossTrade at `base_url` (HTTP) and gives up
/// fast: 300-ms timeouts and a 1-s age limit, so a call nobody answers ends `unknown` within about a second;
/// the broker is asked about it for at most `settle_for` seconds. `extra`: further tables.
pub fn settling_overrides(base_url: &str, settle_for: u64, extra: &str) -> String {
    format!(
        r#"{}
[execution]
max_age_secs = 1
retry_backoff_ms = 50
retry_backoff_max_ms = 100
settle_for_secs = {settle_for}
{extra}
"#,
        crosstrade_overrides(
            base_url,
            "http",
            "\"Sim101\"",
            "request_timeout_ms = 300\nconnect_timeout_ms = 300"
        )
    )
}

// ------------------------------------------------------------------------------------------ instruments

/// (symbol, last price) for the six configured instruments.
pub const MARKETS: [(&str, f64); 6] = [
    ("ES1!", 6000.0),
    ("MES1!", 6000.0),
    ("NQ1!", 21000.0),
    ("MNQ1!", 21000.0),
    ("CL1!", 70.0),
    ("GC1!", 2600.0),
];

/// The time every test server resolves contract months at (`serve --contracts-at`), so `ES1!` is
/// `ES 12-26` whatever the date the tests run on: four days before the December 2026 roll.
pub const CONTRACTS_AT: &str = "2026-12-06T12:00:00Z";
/// [`CONTRACTS_AT`] in epoch milliseconds.
pub const CONTRACTS_AT_MS: u64 = 1_796_558_400_000;

/// The contracts `ES1!` and `NQ1!` resolve to at [`CONTRACTS_AT`].
pub const ES: &str = "ES 12-26";
pub const NQ: &str = "NQ 12-26";

/// CrossTrade's message for a CancelAndBracket call without one of its required fields.
pub const MISSING_FIELDS: &str = "Missing required fields (account, instrument, action, quantity)";

// ------------------------------------------------------------------------------------------ alert bodies

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

/// A signal-service alert (absolute TP/SL).
pub fn signal(id: &str, symbol: &str, side: &str, qty: i64, tp: f64, sl: f64) -> Value {
    json!({"id": id, "symbol": symbol, "side": side, "qty": qty, "tp": tp, "sl": sl})
}

/// Signal `n` of a burst, with id `id`, a long 1 with TP and SL 1 % around the market. It has its own
/// (account, instrument) lane, account `{account_prefix}{n / 6 + 1}`, so no alert of the burst supersedes
/// another.
pub fn lane_signal(id: &str, account_prefix: &str, n: usize) -> String {
    let (symbol, last) = MARKETS[n % MARKETS.len()];
    json!({
        "id": id,
        "symbol": symbol, "side": "long", "qty": 1,
        "tp": last * 1.01, "sl": last * 0.99,
        "accounts": [format!("{account_prefix}{}", n / MARKETS.len() + 1)],
    })
    .to_string()
}

// ------------------------------------------------------------------------------------------ answers

/// The `alertId` of a webhook answer.
pub fn alert_id(v: &Value) -> String {
    v["alertId"]
        .as_str()
        .unwrap_or_else(|| panic!("no alertId in {v}"))
        .to_string()
}

/// A JSON array of strings (order ids).
pub fn ids(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|x| x.as_str().unwrap().to_string())
        .collect()
}

//! No upstream needed: config defaults and build errors, the WebSocket URL derived from the base
//! URL, and WebSocket error frames mapped like HTTP statuses.

use std::time::Duration;

use serde_json::json;

use super::*;
// The transport module, not the sibling `tests::ws` that `super::*` would bring in.
use crate::crosstrade::ws;

#[test]
fn config_defaults_and_transport_names() {
    let cfg: CrossTradeConfig =
        toml::from_str("token = \"env:CT\"\naccounts = [\"Sim101\"]").unwrap();
    assert_eq!(cfg.base_url, "https://app.crosstrade.io");
    assert_eq!(cfg.transport, Transport::Http);
    assert_eq!(
        (
            cfg.request_timeout_ms,
            cfg.connect_timeout_ms,
            cfg.ping_interval_ms
        ),
        (10_000, 5_000, 15_000)
    );
    let cfg: CrossTradeConfig = toml::from_str("transport = \"websocket\"").unwrap();
    assert_eq!(cfg.transport, Transport::Websocket);
    assert!(toml::from_str::<CrossTradeConfig>("transport = \"carrier-pigeon\"").is_err());
    assert!(toml::from_str::<CrossTradeConfig>("tokne = \"env:CT\"").is_err());
}

#[tokio::test]
async fn build_errors_name_the_key_and_never_show_the_token() {
    let ok = config("https://app.crosstrade.io", Transport::Http);
    let cases: Vec<(CrossTradeConfig, Secret, &str)> = vec![
        (
            CrossTradeConfig {
                base_url: "ftp://x".into(),
                ..ok.clone()
            },
            Secret::new(TOKEN),
            "crosstrade.base_url",
        ),
        (
            CrossTradeConfig {
                base_url: "not a url".into(),
                ..ok.clone()
            },
            Secret::new(TOKEN),
            "crosstrade.base_url",
        ),
        (
            CrossTradeConfig {
                base_url: format!("https://u:{TOKEN}@h"),
                ..ok.clone()
            },
            Secret::new(TOKEN),
            "crosstrade.base_url",
        ),
        (ok.clone(), Secret::new("  "), "crosstrade.token"),
        (
            ok.clone(),
            Secret::new(format!("{TOKEN}\nx")),
            "crosstrade.token",
        ),
        (
            CrossTradeConfig {
                request_timeout_ms: 0,
                ..ok.clone()
            },
            Secret::new(TOKEN),
            "crosstrade.request_timeout_ms",
        ),
        (
            CrossTradeConfig {
                accounts: vec![],
                ..ok.clone()
            },
            Secret::new(TOKEN),
            "crosstrade.accounts",
        ),
        (
            CrossTradeConfig {
                accounts: vec!["A".into(), "A".into()],
                ..ok.clone()
            },
            Secret::new(TOKEN),
            "crosstrade.accounts",
        ),
    ];
    for (cfg, token, key) in cases {
        let e = build(&cfg, token).err().expect("must fail");
        assert!(e.starts_with(key), "{e}");
        assert!(!e.contains(TOKEN), "{e}");
    }
    assert!(build(&ok, Secret::new(TOKEN)).is_ok());
}

#[test]
fn websocket_url_is_derived_from_the_base_url() {
    let derive = |s: &str| ws::ws_url(&Url::parse(s).unwrap()).unwrap().to_string();
    assert_eq!(
        derive("https://app.crosstrade.io"),
        "wss://app.crosstrade.io/ws/stream"
    );
    assert_eq!(
        derive("http://127.0.0.1:8080/relay/"),
        "ws://127.0.0.1:8080/relay/ws/stream"
    );
}

#[test]
fn error_frames_map_like_http_statuses() {
    let frame = |v: Value| ws::outcome_from_frame(&v).unwrap_err();
    assert_eq!(
        frame(json!({"id": "1", "error": "no such account"})),
        ExecError::Rejected("no such account".into())
    );
    assert_eq!(
        frame(json!({"id": "1", "error": "x", "status": 401})),
        ExecError::Unauthorized("x".into())
    );
    assert_eq!(
        frame(json!({"id": "1", "error": "x", "status": 408})),
        ExecError::NotConnected
    );
    assert_eq!(
        frame(json!({"id": "1", "error": "x", "status": 429, "retryAfter": 3})),
        ExecError::Throttled {
            retry_after: Some(Duration::from_secs(3))
        }
    );
    assert!(matches!(
        frame(json!({"id": "1", "error": "x", "status": 502})),
        ExecError::Unknown(_)
    ));
    assert!(matches!(frame(json!({"id": "1"})), ExecError::Unknown(_)));
    assert_eq!(
        frame(json!({"id": "1", "data": {"orderIds": [], "success": false, "error": "nope"}})),
        ExecError::Rejected("nope".into())
    );
}

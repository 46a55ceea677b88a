//! What the broker accepts: `place_order` arguments, order ids, the `paper` config and quotes.

use serde_json::{json, Value};

use super::*;
use crate::clock::SystemClock;

fn place_args(v: Value) -> Result<PlaceOrder, PaperError> {
    PlaceOrder::from_args(
        v.as_object().unwrap(),
        &instruments(),
        crate::clock::Timestamp(0),
    )
}

#[test]
fn place_order_args_are_parsed_and_errors_name_the_field() {
    let o = place_args(json!({"instrument":"ES1!","action":"Sell","quantity":2,
        "orderType":"STOPMARKET","stopPrice":"4490.25","limitPrice":4500,"ocoId":"g1","orderId":"my_id-1"}))
    .unwrap();
    assert_eq!(o.instrument, ES);
    assert_eq!(
        (o.action, o.quantity, o.order_type),
        (Action::Sell, 2, OrderType::StopMarket)
    );
    assert_eq!((o.stop_price, o.limit_price), (Some(4490.25), None));
    assert_eq!(o.order_id, Some(OrderId("my_id-1".into())));
    assert_eq!(
        place_args(
            json!({"instrument":"ES 12-26","action":"Buy","quantity":1,"orderType":"market"})
        )
        .unwrap()
        .order_type,
        OrderType::Market
    );

    let base = json!({"instrument":"ES 12-26","action":"Buy","quantity":1,"orderType":"LIMIT","limitPrice":4500});
    let cases: &[(&str, Value, &str)] = &[
        ("instrument", json!("XX"), "instrument:"),
        ("action", json!("Hold"), "action must be"),
        ("action", json!("sell"), "action must be"),
        ("quantity", json!("2"), "quantity must be"),
        ("quantity", json!(0), "quantity must be"),
        ("quantity", json!(1.5), "quantity must be"),
        ("orderType", json!("StopLimit"), "orderType must be"),
        (
            "limitPrice",
            json!(4500.1),
            "limitPrice must be a price on the instrument's tick grid",
        ),
        (
            "limitPrice",
            json!(-1),
            "limitPrice must be a finite positive price",
        ),
        ("limitPrice", json!(null), "limitPrice is required"),
        ("orderId", json!("a/b"), "orderId must be"),
        ("orderId", json!("x".repeat(65)), "orderId must be"),
        ("ocoId", json!("a b"), "ocoId must be"),
        ("action", json!(null), "action is required"),
    ];
    for (field, val, prefix) in cases {
        let mut v = base.clone();
        v[*field] = val.clone();
        let e = place_args(v).unwrap_err().to_string();
        assert!(e.starts_with(prefix), "{field}={val}: {e}");
    }
}

#[test]
fn caller_chosen_order_ids_must_be_unique() {
    let (b, _) = open();
    let o = PlaceOrder {
        order_id: Some(OrderId("mine".into())),
        ..order(Action::Buy, OrderType::Limit, 1, Some(4400.0))
    };
    assert_eq!(b.place_order(SIM, &o).unwrap().order_id.0, "mine");
    let e = b.place_order(OTHER, &o).unwrap_err();
    assert!(matches!(e, PaperError::DuplicateOrderId(_)));
    assert!(e
        .to_string()
        .starts_with("orderId: an order with id 'mine' already exists"));
}

#[test]
fn generated_ids_are_32_hex_and_orders_serialize_camel_case() {
    let (b, _) = open();
    b.set_quote(ES, 4500.0).unwrap();
    let o = b
        .place_order(
            SIM,
            &order(Action::Sell, OrderType::StopMarket, 1, Some(4490.0)),
        )
        .unwrap();
    assert_eq!(o.order_id.0.len(), 32);
    assert!(o
        .order_id
        .0
        .chars()
        .all(|c| matches!(c, '0'..='9' | 'a'..='f')));
    let v = serde_json::to_value(&o).unwrap();
    assert_eq!(v["orderType"], "StopMarket");
    assert_eq!(v["state"], "Working");
    assert_eq!(v["stopPrice"], 4490.0);
    assert_eq!(v["createdAt"], "2026-01-01T00:00:00.000Z");
    let back: Order = serde_json::from_value(v).unwrap();
    assert_eq!(back, o);
}

#[test]
fn config_defaults_and_validation() {
    let c: PaperConfig = config_from_json(json!({}));
    assert_eq!(c, PaperConfig::default());
    assert_eq!(c.accounts, vec!["Sim101".to_string()]);
    assert_eq!(
        (
            c.cancel_delay_ms,
            c.cancel_latency_ms,
            c.max_terminal_orders
        ),
        (100, 50, 1000)
    );
    assert!(serde_json::from_value::<PaperConfig>(json!({"acounts": []})).is_err());

    let (b, _) = open_with(PaperConfig {
        initial_quotes: [("ES1!".to_string(), 4500.25)].into(),
        ..config()
    });
    assert_eq!(b.quote(ES).unwrap().last_price, 4500.25);
    assert!(matches!(b.quote(NQ), Err(PaperError::NoQuote(_))));

    let db = sled::Config::new().temporary(true).open().unwrap();
    let bad = |c: PaperConfig| {
        PaperBroker::open(
            db.open_tree("x").unwrap(),
            c,
            instruments(),
            Arc::new(SystemClock),
        )
        .unwrap_err()
        .to_string()
    };
    assert!(bad(PaperConfig {
        accounts: vec![],
        ..config()
    })
    .starts_with("paper.accounts:"));
    assert!(bad(PaperConfig {
        initial_quotes: [("ZZ".to_string(), 1.0)].into(),
        ..config()
    })
    .starts_with("paper.initial_quotes.\"ZZ\":"));
    assert!(bad(PaperConfig {
        initial_quotes: [(ES.to_string(), 4500.1)].into(),
        ..config()
    })
    .contains("tick grid"));
    assert_eq!(config().snapshot_every, 4096);
    let e = bad(PaperConfig {
        snapshot_every: 0,
        ..config()
    });
    assert!(
        e.starts_with("paper.snapshot_every: must be between 1 and 1000000"),
        "{e}"
    );
}

fn config_from_json(v: Value) -> PaperConfig {
    serde_json::from_value(v).unwrap()
}

#[test]
fn quotes_must_be_positive_and_on_the_grid() {
    let (b, _) = open();
    for p in [0.0, -1.0, f64::NAN, 4500.1] {
        let e = b.set_quote(ES, p).unwrap_err();
        assert!(e.to_string().starts_with("price must be"), "{e}");
    }
}

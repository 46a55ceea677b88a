//! Integration tests of `GET /ws/stream`: authentication on the upgrade, RPC frames for every operation
//! (answered by id, with the same bodies and messages as HTTP), many calls in flight on one connection,
//! ping/pong, and malformed frames that get an error frame without closing the connection.

use std::collections::HashMap;
use std::time::Duration;

use crate::support::*;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

const READ_TIMEOUT: Duration = Duration::from_secs(10);

// ------------------------------------------------------------------------------------------ helpers

fn ws_url(s: &TestServer, query: &str) -> String {
    format!(
        "{}/ws/stream{query}",
        s.base.replacen("http://", "ws://", 1)
    )
}

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Connects with `Authorization: Bearer <token>` when given, else plain (the URL may carry `?token=`).
async fn try_connect(url: &str, bearer: Option<&str>) -> Result<Socket, tungstenite::Error> {
    let mut req = url.into_client_request().unwrap();
    if let Some(t) = bearer {
        req.headers_mut()
            .insert("authorization", format!("Bearer {t}").parse().unwrap());
    }
    let (ws, _resp) = tokio::time::timeout(READ_TIMEOUT, tokio_tungstenite::connect_async(req))
        .await
        .expect("connect timed out")?;
    Ok(ws)
}

struct Ws {
    ws: Socket,
    /// Answers read while waiting for another id.
    pending: HashMap<String, Value>,
}

impl Ws {
    async fn connect(s: &TestServer) -> Ws {
        let ws = try_connect(&ws_url(s, ""), Some(API_TOKEN))
            .await
            .expect("websocket upgrade");
        Ws {
            ws,
            pending: HashMap::new(),
        }
    }

    async fn send_text(&mut self, text: &str) {
        self.ws.send(Message::text(text.to_string())).await.unwrap();
    }

    async fn send(&mut self, v: &Value) {
        self.send_text(&v.to_string()).await;
    }

    /// The next text frame as JSON (control frames skipped), within the read timeout.
    async fn recv(&mut self) -> Value {
        loop {
            let msg = tokio::time::timeout(READ_TIMEOUT, self.ws.next())
                .await
                .expect("no frame within the read timeout")
                .expect("connection closed")
                .expect("read error");
            match msg {
                Message::Text(t) => return serde_json::from_str(t.as_str()).expect("JSON frame"),
                Message::Ping(_) | Message::Pong(_) => continue,
                other => panic!("unexpected frame: {other:?}"),
            }
        }
    }

    /// Sends one rpc frame and waits for its answer (by id).
    async fn rpc(&mut self, id: &str, api: &str, args: Value) -> Value {
        self.send(&json!({"action": "rpc", "id": id, "api": api, "args": args}))
            .await;
        self.answer(id).await
    }

    /// The answer with this id, keeping any other answers for later.
    async fn answer(&mut self, id: &str) -> Value {
        if let Some(v) = self.pending.remove(id) {
            return v;
        }
        loop {
            let v = self.recv().await;
            match v["id"].as_str() {
                Some(got) if got == id => return v,
                Some(got) => {
                    self.pending.insert(got.to_string(), v);
                }
                None => panic!("frame without id while waiting for {id}: {v}"),
            }
        }
    }

    /// rpc that must succeed; returns `data`.
    async fn ok(&mut self, id: &str, api: &str, args: Value) -> Value {
        let v = self.rpc(id, api, args.clone()).await;
        assert!(v.get("error").is_none(), "{api} {args}: {v}");
        assert_eq!(v["id"], id);
        v["data"].clone()
    }

    async fn ping(&mut self, id: &str) {
        self.send(&json!({"action": "ping", "id": id})).await;
        let v = self.recv().await;
        assert_eq!(v, json!({"action": "pong", "id": id}));
    }
}

fn assert_success_shape(data: &Value, qty: u64) {
    assert_eq!(data["success"], true, "{data}");
    assert_eq!(data["quantity"], qty, "{data}");
    assert!(data["ocoId"].is_string(), "{data}");
    let all: Vec<String> = ids(&data["cancelledOrderIds"])
        .into_iter()
        .chain(ids(&data["placedOrderIds"]))
        .collect();
    assert_eq!(ids(&data["orderIds"]), all, "{data}");
}

fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
    k.sort();
    k
}

// ------------------------------------------------------------------------------------------ tests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ws_upgrade_requires_a_token() {
    let s = TestServer::in_process("", None).await;
    for (query, bearer) in [
        ("", None),
        ("?token=wrong", None),
        ("", Some("wrong")),
        ("?token=", None),
    ] {
        match try_connect(&ws_url(&s, query), bearer).await {
            Err(tungstenite::Error::Http(resp)) => {
                assert_eq!(resp.status().as_u16(), 401, "{query} {bearer:?}")
            }
            Err(e) => panic!("{query} {bearer:?}: unexpected error {e}"),
            Ok(_) => panic!("{query} {bearer:?}: upgrade was accepted without a valid token"),
        }
    }
    // Bearer header.
    let mut ws = Ws::connect(&s).await;
    ws.ping("h").await;
    // ?token= for browsers.
    let sock = try_connect(&ws_url(&s, &format!("?token={API_TOKEN}")), None)
        .await
        .expect("upgrade with ?token=");
    let mut ws2 = Ws {
        ws: sock,
        pending: HashMap::new(),
    };
    ws2.ping("q").await;
    let data = ws2.ok("a", "GetAccounts", json!({})).await;
    assert_eq!(data["accounts"][0]["name"], "Sim101");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ws_cancel_and_bracket_answers_like_http() {
    let s = TestServer::in_process("", None).await;
    let mut ws = Ws::connect(&s).await;
    // Long 2 ES with an old stop, protected over WS.
    let placed = ws
        .ok("m", "PlaceOrder", json!({"account": "Sim101", "instrument": ES, "action": "Buy", "quantity": 2, "orderType": "MARKET"}))
        .await;
    assert_eq!(placed["order"]["state"], "Filled");
    let stop = ws
        .ok("s", "PlaceOrder", json!({"account": "Sim101", "instrument": ES, "action": "Sell", "quantity": 2, "orderType": "STOPMARKET", "stopPrice": 5980}))
        .await;
    let v = ws
        .rpc(
            "cab-1",
            "CancelAndBracket",
            json!({"account": "Sim101", "instrument": ES, "action": "Buy", "quantity": 5,
            "takeProfit": 6010, "stopLoss": 5990, "ocoId": "ws-oco"}),
        )
        .await;
    assert_eq!(v["id"], "cab-1");
    assert!(v.get("error").is_none(), "{v}");
    let data = &v["data"];
    assert_success_shape(data, 2);
    assert_eq!(data["ocoId"], "ws-oco");
    assert_eq!(data["cancelledOrderIds"], json!([stop["orderId"]]));
    let legs = s.working_orders("Sim101", ES).await;
    assert_eq!(legs.len(), 2);
    for leg in &legs {
        assert_eq!(leg["action"], "Sell");
        assert_eq!(leg["quantity"], 2);
        assert_eq!(leg["ocoId"], "ws-oco");
    }

    // The same call over HTTP (on NQ) answers with the same shape.
    s.api_post(
        "/v1/api/accounts/Sim101/orders/place",
        json!({"instrument": NQ, "action": "Buy", "quantity": 2, "orderType": "MARKET"}),
    )
    .await;
    let (st, http) = s
        .api_post(
            "/v1/api/accounts/Sim101/orders/cancel_and_bracket",
            json!({"instrument": NQ, "action": "Buy", "quantity": 5, "takeProfit": 21010, "stopLoss": 20990, "ocoId": "http-oco"}),
        )
        .await;
    assert_eq!(st, 200, "{http}");
    assert_eq!(keys(&http), keys(data));
    assert_success_shape(&http, 2);

    // Idempotency over WS: `idempotencyKey` in the frame.
    let frame = json!({"action": "rpc", "id": "i1", "api": "CancelAndBracket", "idempotencyKey": "ws-key",
        "args": {"account": "Sim101", "instrument": ES, "action": "Buy", "quantity": 2, "stopLoss": 5995}});
    ws.send(&frame).await;
    let first = ws.answer("i1").await;
    assert!(first.get("error").is_none(), "{first}");
    // Once the cancels it requested are confirmed (50 ms cancel latency), the account stays as it is
    // unless something executes: a snapshot taken earlier would race that confirmation.
    let orders = settled_orders(&s, "Sim101").await;
    let mut again = frame.clone();
    again["id"] = json!("i2");
    ws.send(&again).await;
    let second = ws.answer("i2").await;
    assert_eq!(
        second["data"], first["data"],
        "replay returns the same outcome"
    );
    assert_eq!(s.orders("Sim101").await, orders, "replay executes nothing");
}

/// The account's orders once none is `CancelPending`.
async fn settled_orders(s: &TestServer, account: &str) -> Vec<Value> {
    eventually(
        "cancels confirmed",
        Duration::from_secs(5),
        || s.orders(account),
        |orders| !orders.iter().any(|o| o["state"] == "CancelPending"),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ws_errors_carry_the_http_messages() {
    let s = TestServer::in_process("", None).await;
    let mut ws = Ws::connect(&s).await;
    s.api_post(
        "/v1/api/accounts/Sim101/orders/place",
        json!({"instrument": ES, "action": "Buy", "quantity": 1, "orderType": "MARKET"}),
    )
    .await;
    let before = s.orders("Sim101").await;

    // Missing fields: the exact CrossTrade message, including a missing account (WS only).
    let full = json!({"account": "Sim101", "instrument": ES, "action": "Buy", "quantity": 1, "stopLoss": 5990});
    for (i, field) in ["account", "instrument", "action", "quantity"]
        .iter()
        .enumerate()
    {
        let mut args = full.clone();
        args.as_object_mut().unwrap().remove(*field);
        let id = format!("miss-{i}");
        let v = ws.rpc(&id, "CancelAndBracket", args).await;
        assert_eq!(v["id"], id.as_str());
        assert_eq!(v["error"], MISSING_FIELDS, "without {field}: {v}");
        assert_eq!(v["status"], 400);
        assert!(v.get("data").is_none());
    }
    let v = ws.rpc("miss-args", "CancelAndBracket", Value::Null).await;
    assert_eq!(v["error"], MISSING_FIELDS, "{v}");

    // Every other refusal: the same message as over HTTP.
    let bad: Vec<Value> = vec![
        json!({"account": "Nope", "instrument": ES, "action": "Buy", "quantity": 1, "stopLoss": 5990}),
        json!({"account": "Sim101", "instrument": "ZZZ", "action": "Buy", "quantity": 1, "stopLoss": 5990}),
        json!({"account": "Sim101", "instrument": ES, "action": "Hold", "quantity": 1, "stopLoss": 5990}),
        json!({"account": "Sim101", "instrument": ES, "action": "Buy", "quantity": 0, "stopLoss": 5990}),
        json!({"account": "Sim101", "instrument": ES, "action": "Buy", "quantity": 1}),
        json!({"account": "Sim101", "instrument": ES, "action": "Buy", "quantity": 1, "stopLoss": 5990.1}),
        json!({"account": "Sim101", "instrument": ES, "action": "Buy", "quantity": 1, "takeProfit": 5980, "stopLoss": 5990}),
        json!({"account": "Sim101", "instrument": ES, "action": "Sell", "quantity": 1, "takeProfit": 5980, "stopLoss": 6010}),
        json!({"account": "Sim101", "instrument": ES, "action": "Buy", "quantity": 1, "stopLoss": 6000}),
    ];
    for (i, args) in bad.into_iter().enumerate() {
        let id = format!("bad-{i}");
        let v = ws.rpc(&id, "CancelAndBracket", args.clone()).await;
        let account = args["account"].as_str().unwrap().to_string();
        let mut body = args.clone();
        body.as_object_mut().unwrap().remove("account");
        let (st, http) = s
            .api_post(
                &format!("/v1/api/accounts/{account}/orders/cancel_and_bracket"),
                body,
            )
            .await;
        assert_eq!(st, 400, "{args}: {http}");
        assert_eq!(v["error"], http["error"], "{args}");
        assert_eq!(v["status"], 400, "{v}");
    }
    // Paper operations: 404 status for an unknown account, same message as HTTP.
    let v = ws.rpc("go", "GetOrders", json!({"account": "Nope"})).await;
    let (st, http) = s.api_get("/v1/api/accounts/Nope/orders").await;
    assert_eq!(st, 404);
    assert_eq!(v["status"], 404);
    assert_eq!(v["error"], http["error"]);
    assert_eq!(
        s.orders("Sim101").await,
        before,
        "refused calls changed the account"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ws_many_calls_in_flight_are_matched_by_id() {
    let s = TestServer::in_process("[paper]\naccounts = [\"Sim101\", \"Sim102\"]\n", None).await;
    let mut ws = Ws::connect(&s).await;
    // (instrument, take profit, stop loss) for an entry Buy bracket around the initial quotes.
    let legs = [
        ("ES 12-26", 6010.0, 5990.0),
        ("MES 12-26", 6005.0, 5995.0),
        ("NQ 12-26", 21050.0, 20950.0),
        ("MNQ 12-26", 21020.0, 20980.0),
        ("CL 01-27", 70.5, 69.5),
    ];
    let mut expected = HashMap::new();
    let mut n = 0u32;
    for account in ["Sim101", "Sim102"] {
        for (instrument, tp, sl) in legs {
            n += 1;
            let id = format!("call-{n}");
            let qty = n;
            ws.send(&json!({"action": "rpc", "id": id, "api": "CancelAndBracket",
                "args": {"account": account, "instrument": instrument, "action": "Buy", "quantity": qty,
                         "takeProfit": tp, "stopLoss": sl, "ocoId": format!("oco-{n}")}}))
                .await;
            expected.insert(id, (account, instrument, qty, tp, sl));
        }
    }
    assert_eq!(expected.len(), 10);
    let mut answers = HashMap::new();
    for _ in 0..10 {
        let v = ws.recv().await;
        let id = v["id"].as_str().expect("answer carries its id").to_string();
        assert!(expected.contains_key(&id), "unexpected answer {v}");
        assert!(answers.insert(id, v).is_none(), "answered twice");
    }
    for (id, (account, instrument, qty, tp, sl)) in &expected {
        let v = &answers[id];
        assert!(v.get("error").is_none(), "{id}: {v}");
        let data = &v["data"];
        assert_success_shape(data, u64::from(*qty));
        let n = id.trim_start_matches("call-");
        assert_eq!(data["ocoId"], format!("oco-{n}"));
        let orders = s.orders(account).await;
        let placed: Vec<&Value> = ids(&data["placedOrderIds"])
            .iter()
            .map(|pid| {
                orders
                    .iter()
                    .find(|o| o["orderId"] == pid.as_str())
                    .unwrap()
            })
            .collect();
        assert_eq!(placed.len(), 2, "{data}");
        for o in placed {
            assert_eq!(o["instrument"], *instrument);
            assert_eq!(o["account"], *account);
            assert_eq!(o["quantity"], *qty);
            assert_eq!(o["action"], "Sell");
            assert_eq!(o["state"], "Working");
            match o["orderType"].as_str().unwrap() {
                "Limit" => assert_eq!(o["limitPrice"], *tp),
                "StopMarket" => assert_eq!(o["stopPrice"], *sl),
                t => panic!("unexpected leg type {t}"),
            }
        }
    }
    for account in ["Sim101", "Sim102"] {
        assert_eq!(s.orders(account).await.len(), 10, "{account}: 5 brackets");
    }
    ws.ping("after").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ws_ping_and_malformed_frames_keep_the_connection() {
    let s = TestServer::in_process("", None).await;
    let mut ws = Ws::connect(&s).await;
    ws.ping("p0").await;
    // Ping without id: pong with a null id.
    ws.send(&json!({"action": "ping"})).await;
    assert_eq!(ws.recv().await, json!({"action": "pong", "id": null}));

    // Invalid JSON.
    ws.send_text("{not json").await;
    let v = ws.recv().await;
    assert!(
        v["error"].as_str().unwrap().contains("not valid JSON"),
        "{v}"
    );
    ws.ping("p1").await;

    // Binary frame.
    ws.ws
        .send(Message::binary(br#"{"action":"ping"}"#.to_vec()))
        .await
        .unwrap();
    let v = ws.recv().await;
    assert!(v["error"].as_str().unwrap().contains("binary"), "{v}");
    ws.ping("p2").await;

    // Unknown action, missing action, a JSON non-object.
    for (i, frame) in [
        json!({"action": "subscribe", "id": "u1"}),
        json!({"id": "u2"}),
        json!([1, 2, 3]),
        json!("rpc"),
    ]
    .into_iter()
    .enumerate()
    {
        ws.send(&frame).await;
        let v = ws.recv().await;
        assert!(
            v["error"].as_str().unwrap().starts_with("action"),
            "{frame}: {v}"
        );
        if let Some(id) = frame.get("id") {
            assert_eq!(&v["id"], id);
        }
        ws.ping(&format!("p3-{i}")).await;
    }

    // args not an object.
    for (i, args) in [json!("Sim101"), json!([1]), json!(5)]
        .into_iter()
        .enumerate()
    {
        let id = format!("args-{i}");
        ws.send(&json!({"action": "rpc", "id": id, "api": "GetOrders", "args": args}))
            .await;
        let v = ws.recv().await;
        assert_eq!(v, json!({"id": id, "error": "args: must be a JSON object"}));
        ws.ping(&format!("p4-{i}")).await;
    }

    // Unknown api, and no api at all.
    let v = ws.rpc("api-1", "DeleteEverything", json!({})).await;
    assert!(v["error"].as_str().unwrap().starts_with("api"), "{v}");
    assert!(
        v["error"].as_str().unwrap().contains("CancelAndBracket"),
        "{v}"
    );
    ws.send(&json!({"action": "rpc", "id": "api-2"})).await;
    let v = ws.recv().await;
    assert_eq!(v["id"], "api-2");
    assert!(v["error"].as_str().unwrap().starts_with("api"), "{v}");
    ws.ping("p5").await;

    // Still fully usable for real calls.
    let data = ws.ok("q", "Quote", json!({"instrument": ES})).await;
    assert_eq!(data, json!({"instrument": ES, "lastPrice": 6000.0}));
    // Nothing above touched the account.
    assert!(s.orders("Sim101").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ws_every_operation_is_callable_by_name() {
    let s = TestServer::in_process("", None).await;
    let mut ws = Ws::connect(&s).await;
    let acct = json!("Sim101");

    let data = ws.ok("1", "GetAccounts", json!({})).await;
    let (_, http) = s.api_get("/v1/api/accounts").await;
    assert_eq!(data, http);

    let data = ws
        .ok(
            "2",
            "SetQuote",
            json!({"instrument": "ES1!", "price": 6002.5}),
        )
        .await;
    assert_eq!(
        data,
        json!({"instrument": ES, "lastPrice": 6002.5, "filledOrderIds": [], "cancelledOrderIds": []})
    );
    let data = ws.ok("3", "Quote", json!({"instrument": ES})).await;
    assert_eq!(data, json!({"instrument": ES, "lastPrice": 6002.5}));

    let m = ws
        .ok("4", "PlaceOrder", json!({"account": acct, "instrument": ES, "action": "Buy", "quantity": 2, "orderType": "MARKET"}))
        .await;
    assert_eq!(m["success"], true);
    assert_eq!(m["order"]["fillPrice"], 6002.5);
    let lim = ws
        .ok("5", "PlaceOrder", json!({"account": acct, "instrument": NQ, "action": "Buy", "quantity": 1, "orderType": "LIMIT", "limitPrice": 20900, "orderId": "ws-lim"}))
        .await;
    assert_eq!(lim["orderId"], "ws-lim");
    assert_eq!(lim["order"]["state"], "Working");

    let data = ws.ok("6", "GetOrders", json!({"account": acct})).await;
    let (_, http) = s.api_get("/v1/api/accounts/Sim101/orders").await;
    assert_eq!(data, http);
    assert_eq!(data["orders"].as_array().unwrap().len(), 2);

    let data = ws.ok("7", "GetPositions", json!({"account": acct})).await;
    let (_, http) = s.api_get("/v1/api/accounts/Sim101/positions").await;
    assert_eq!(data, http);
    assert_eq!(data["positions"][0]["quantity"], 2);

    let data = ws
        .ok(
            "8",
            "CancelOrder",
            json!({"account": acct, "orderId": "ws-lim"}),
        )
        .await;
    assert_eq!(data["orderId"], "ws-lim");
    assert!(
        matches!(
            data["order"]["state"].as_str(),
            Some("CancelPending" | "Cancelled")
        ),
        "{data}"
    );
    let v = ws.rpc("8b", "CancelOrder", json!({"account": acct})).await;
    assert!(v["error"].as_str().unwrap().starts_with("orderId"), "{v}");
    let v = ws
        .rpc(
            "8c",
            "CancelOrder",
            json!({"account": acct, "orderId": "nope"}),
        )
        .await;
    assert_eq!(v["status"], 404, "{v}");

    let data = ws
        .ok("9", "CancelAndBracket", json!({"account": acct, "instrument": ES, "action": "Buy", "quantity": 2, "takeProfit": 6010, "stopLoss": 5990}))
        .await;
    assert_success_shape(&data, 2);
    assert_eq!(s.working_orders("Sim101", ES).await.len(), 2);

    let bracket: Vec<Value> = s
        .working_orders("Sim101", ES)
        .await
        .iter()
        .map(|o| o["orderId"].clone())
        .collect();
    let data = ws
        .ok("10", "Flatten", json!({"account": acct, "instrument": ES}))
        .await;
    assert_eq!(data["success"], true);
    assert_eq!(data["cancelledOrderIds"], json!(bracket), "{data}");
    assert_eq!(data["closingOrders"][0]["quantity"], 2);
    assert!(s.working_orders("Sim101", ES).await.is_empty());
    let data = ws.ok("11", "GetPositions", json!({"account": acct})).await;
    assert_eq!(data["positions"][0]["quantity"], 0);
    let data = ws.ok("12", "Flatten", json!({"account": acct})).await;
    assert_eq!(data["closingOrders"], json!([]));

    // Missing arguments are named.
    let v = ws.rpc("13", "Quote", json!({})).await;
    assert!(
        v["error"].as_str().unwrap().starts_with("instrument"),
        "{v}"
    );
    let v = ws.rpc("14", "GetPositions", json!({})).await;
    assert!(v["error"].as_str().unwrap().starts_with("account"), "{v}");
    let v = ws
        .rpc("15", "SetQuote", json!({"instrument": ES, "price": "abc"}))
        .await;
    assert!(v["error"].as_str().unwrap().starts_with("price"), "{v}");
    ws.ping("end").await;
}

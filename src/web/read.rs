//! The read API: `GET /api/alerts`, `GET /api/alerts/{id}`, `GET /api/refusals`, `GET /api/contracts`,
//! `GET /healthz`, `GET /metrics`.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::json;
use warp::reply::Response;
use warp::{Filter, Rejection, Reply as _};

use super::{bearer_ok, respond, unauthorized, with_relay};
use crate::relay::{record_reply, Relay};

pub fn routes(relay: Arc<Relay>) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    let auth = warp::header::optional::<String>("authorization");
    let list = warp::path!("api" / "alerts")
        .and(warp::get())
        .and(auth)
        .and(warp::query::<BTreeMap<String, String>>())
        .and(with_relay(relay.clone()))
        .then(
            |authz: Option<String>, q: BTreeMap<String, String>, relay: Arc<Relay>| async move {
                if !bearer_ok(&relay, authz.as_deref(), None) {
                    return respond(Err(unauthorized()));
                }
                respond(relay.list_alerts(&q).await.map(|recs| {
                    json!({
                        "alerts": recs.iter().map(record_reply).collect::<Vec<_>>(),
                        "count": recs.len(),
                    })
                }))
            },
        );
    let one = warp::path!("api" / "alerts" / String)
        .and(warp::get())
        .and(auth)
        .and(with_relay(relay.clone()))
        .map(|id: String, authz: Option<String>, relay: Arc<Relay>| {
            if !bearer_ok(&relay, authz.as_deref(), None) {
                return respond(Err(unauthorized()));
            }
            respond(relay.get_alert(&id).map(|rec| record_reply(&rec)))
        });
    let refusals = warp::path!("api" / "refusals")
        .and(warp::get())
        .and(auth)
        .and(warp::query::<BTreeMap<String, String>>())
        .and(with_relay(relay.clone()))
        .map(
            |authz: Option<String>, q: BTreeMap<String, String>, relay: Arc<Relay>| {
                if !bearer_ok(&relay, authz.as_deref(), None) {
                    return respond(Err(unauthorized()));
                }
                let limit = match q.get("limit").map(|v| v.parse::<usize>()) {
                    None => crate::refusals::DEFAULT_KEPT,
                    Some(Ok(n)) if n >= 1 => n,
                    Some(_) => {
                        return respond(Err(crate::error::RelayError::InvalidRequest(
                            "limit: must be a whole number from 1".into(),
                        )))
                    }
                };
                let recent = relay.refusals.recent(limit);
                respond(Ok(json!({"refusals": recent, "count": recent.len()})))
            },
        );
    let contracts = warp::path!("api" / "contracts")
        .and(warp::get())
        .and(auth)
        .and(with_relay(relay.clone()))
        .map(|authz: Option<String>, relay: Arc<Relay>| {
            if !bearer_ok(&relay, authz.as_deref(), None) {
                return respond(Err(unauthorized()));
            }
            respond(Ok(relay.contracts_view()))
        });
    let health = warp::path!("healthz")
        .and(warp::get())
        .and(with_relay(relay.clone()))
        .then(|relay: Arc<Relay>| async move {
            let health = relay.health().await;
            let status = if health.unavailable {
                warp::http::StatusCode::SERVICE_UNAVAILABLE
            } else {
                warp::http::StatusCode::OK
            };
            warp::reply::with_status(warp::reply::json(&health.body), status).into_response()
        });
    let ready = warp::path!("readyz")
        .and(warp::get())
        .and(with_relay(relay.clone()))
        .then(|relay: Arc<Relay>| async move {
            match relay.readiness().await {
                Ok(v) => warp::reply::json(&v).into_response(),
                Err(v) => warp::reply::with_status(
                    warp::reply::json(&v),
                    warp::http::StatusCode::SERVICE_UNAVAILABLE,
                )
                .into_response(),
            }
        });
    let metrics = warp::path!("metrics")
        .and(warp::get())
        .and(with_relay(relay))
        .map(|relay: Arc<Relay>| {
            warp::reply::with_header(
                relay.metrics_text(),
                "content-type",
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )
            .into_response()
        });
    list.or(one)
        .unify()
        .or(refusals)
        .unify()
        .or(contracts)
        .unify()
        .or(health)
        .unify()
        .or(ready)
        .unify()
        .or(metrics)
        .unify()
}

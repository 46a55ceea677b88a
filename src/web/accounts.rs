//! `GET /api/accounts` (Bearer): every configured account's positions, working orders and OCO pairs.

use std::sync::Arc;

use serde_json::json;
use warp::reply::Response;
use warp::{Filter, Rejection};

use super::{bearer_ok, respond, unauthorized, with_relay};
use crate::relay::Relay;

pub fn routes(relay: Arc<Relay>) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("api" / "accounts")
        .and(warp::get())
        .and(warp::header::optional::<String>("authorization"))
        .and(with_relay(relay))
        .then(|authz: Option<String>, relay: Arc<Relay>| async move {
            if !bearer_ok(&relay, authz.as_deref(), None) {
                return respond(Err(unauthorized()));
            }
            let accounts = relay.accounts().await;
            respond(Ok(json!({"accounts": accounts, "count": accounts.len()})))
        })
}

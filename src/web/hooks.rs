//! `POST /hooks/{source}`: signed alerts in.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use warp::http::HeaderMap;
use warp::reply::Response;
use warp::{Filter, Rejection};

use super::response::{domain_headers, error_response, ingested_response, prefer_wait};
use super::{read_body, with_relay};
use crate::relay::{Inbound, Relay, UNKNOWN_PEER};

pub fn routes(relay: Arc<Relay>) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("hooks" / String)
        .and(warp::post())
        .and(warp::any().map(Instant::now))
        .and(warp::addr::remote())
        .and(warp::header::headers_cloned())
        .and(warp::query::<HashMap<String, String>>())
        .and(warp::body::stream())
        .and(with_relay(relay))
        .then(
            |source: String,
             received: Instant,
             peer: Option<SocketAddr>,
             headers: HeaderMap,
             mut query: HashMap<String, String>,
             body,
             relay: Arc<Relay>| async move {
                let body = match read_body(body, relay.body_limit).await {
                    Ok(b) => b,
                    Err(e) => return error_response(&e),
                };
                let inbound = Inbound {
                    source,
                    peer: peer.map(|p| p.ip()).unwrap_or(UNKNOWN_PEER),
                    headers: domain_headers(&headers),
                    wait: prefer_wait(&headers),
                    query_token: query.remove("token"),
                    body,
                    received,
                };
                ingested_response(relay.ingest(inbound).await)
            },
        )
}

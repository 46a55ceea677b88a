//! `POST /hooks/{source}`: signed alerts in.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use warp::http::HeaderMap;
use warp::reply::Response;
use warp::{Filter, Rejection};

use super::response::{domain_headers, error_response, ingested_response, prefer_wait, status_of};
use super::{read_body, with_relay};
use crate::error::RelayError;
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
                let peer = peer.map(|p| p.ip()).unwrap_or(UNKNOWN_PEER);
                let body = match read_body(body, relay.body_limit).await {
                    Ok(b) => b,
                    Err(e) => {
                        log_refusal(&relay, &source, peer, &e, false);
                        return error_response(&e);
                    }
                };
                // Only whether it holds one: the body of a refused request is never logged.
                let placeholder = body.windows(2).any(|w| w == b"{{");
                let name = source.clone();
                let inbound = Inbound {
                    source,
                    peer,
                    headers: domain_headers(&headers),
                    wait: prefer_wait(&headers),
                    query_token: query.remove("token"),
                    body,
                    received,
                };
                let result = relay.ingest(inbound).await;
                if let Err(e) = &result {
                    log_refusal(&relay, &name, peer, e, placeholder);
                }
                ingested_response(result)
            },
        )
}

/// One WARN line per refused webhook (source, client address, status, reason, and a hint where one helps),
/// also kept in the relay's refusal log. Never the secret or the body (the reasons carry neither).
fn log_refusal(relay: &Relay, source: &str, client: IpAddr, e: &RelayError, placeholder: bool) {
    let status = status_of(e).as_u16();
    let hint = match e {
        RelayError::Body(_) | RelayError::Template(_) if placeholder => {
            "TradingView did not substitute a placeholder ({{...}} left in the body): is the alert a strategy alert, and is the placeholder spelled as TradingView documents it?"
        }
        RelayError::Authentication(_) => {
            "check the secret in the alert message against the source's secret"
        }
        RelayError::UnknownSource(_) => "check the webhook URL's /hooks/{source} against [sources]",
        RelayError::AddressNotAllowed(_) => {
            "add the sender to allow_ips, or list the proxy in trusted_proxies"
        }
        RelayError::RateLimited { .. } => "raise the source's rate_limit or send fewer alerts",
        _ => "",
    };
    let source: String = source.chars().take(64).collect();
    let reason = e.to_string();
    relay.refused(
        &source,
        &client.to_string(),
        status,
        &reason,
        (!hint.is_empty()).then_some(hint),
    );
    if hint.is_empty() {
        tracing::warn!(%source, %client, status, reason = %e, "webhook refused");
    } else {
        tracing::warn!(%source, %client, status, reason = %e, hint, "webhook refused");
    }
}

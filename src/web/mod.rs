//! The HTTP transport (warp): thin filters that extract what a request carries and hand it to the relay.
//! Nothing here decides anything about alerts; every status code comes from [`response`]. `dashboard` serves
//! the operator's page (`assets/dashboard/`, embedded), a client of these routes.

mod accounts;
mod admin;
mod crosstrade;
mod dashboard;
mod hooks;
mod read;
pub mod response;
mod ws;

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;

use serde_json::json;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::{Filter, Rejection, Reply as _};

use crate::error::RelayError;
use crate::relay::Relay;
pub use response::{error_response, respond};

/// All routes, with one `recover` that turns every rejection into a JSON error.
pub fn routes(
    relay: Arc<Relay>,
) -> impl Filter<Extract = (Response,), Error = Infallible> + Clone + Send + Sync + 'static {
    hooks::routes(relay.clone())
        .or(read::routes(relay.clone()))
        .unify()
        .or(crosstrade::routes(relay.clone()))
        .unify()
        .or(admin::routes(relay.clone()))
        .unify()
        .or(accounts::routes(relay.clone()))
        .unify()
        .or(dashboard::routes())
        .unify()
        .or(ws::routes(relay))
        .unify()
        .recover(recover)
        .unify()
}

/// Serves until `shutdown` resolves.
pub async fn serve(
    relay: Arc<Relay>,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    warp::serve(routes(relay))
        .incoming(listener)
        .graceful(shutdown)
        .run()
        .await;
}

fn with_relay(
    relay: Arc<Relay>,
) -> impl Filter<Extract = (Arc<Relay>,), Error = Infallible> + Clone {
    warp::any().map(move || relay.clone())
}

/// Checks `Authorization: Bearer <token>` (or, for browsers on WebSocket, `?token=`).
pub fn bearer_ok(relay: &Relay, authorization: Option<&str>, query_token: Option<&str>) -> bool {
    let presented = authorization
        .and_then(|h| {
            h.strip_prefix("Bearer ")
                .or_else(|| h.strip_prefix("bearer "))
        })
        .map(str::trim)
        .or(query_token);
    presented.is_some_and(|t| relay.api_token_ok(t))
}

pub fn unauthorized() -> RelayError {
    RelayError::Authentication(
        "missing or invalid bearer token: send Authorization: Bearer <token> (see server.api_tokens, RELAY_API_TOKEN or <data_dir>/api-token)".into(),
    )
}

async fn recover(err: Rejection) -> Result<Response, Infallible> {
    let e = if err.is_not_found() {
        RelayError::NotFound("no such endpoint; see README for the API".into())
    } else if err.find::<warp::reject::MethodNotAllowed>().is_some() {
        return Ok(warp::reply::with_status(
            warp::reply::json(&json!({"error": "method not allowed for this endpoint"})),
            StatusCode::METHOD_NOT_ALLOWED,
        )
        .into_response());
    } else if err.find::<warp::reject::PayloadTooLarge>().is_some() {
        RelayError::BodyTooLarge("body too large".into())
    } else if let Some(e) = err.find::<warp::reject::InvalidQuery>() {
        RelayError::InvalidRequest(format!("invalid query string: {e}"))
    } else if let Some(e) = err.find::<warp::reject::MissingHeader>() {
        RelayError::InvalidRequest(format!("missing header: {}", e.name()))
    } else if let Some(e) = err.find::<warp::reject::InvalidHeader>() {
        RelayError::InvalidRequest(format!("invalid header: {}", e.name()))
    } else {
        tracing::debug!(?err, "unhandled rejection");
        RelayError::InvalidRequest(format!("bad request: {err:?}"))
    };
    Ok(error_response(&e))
}

/// Reads a request body of at most `limit` bytes, whether or not it declares its length.
pub async fn read_body<S, B>(stream: S, limit: usize) -> Result<bytes::Bytes, RelayError>
where
    S: futures_util::Stream<Item = Result<B, warp::Error>>,
    B: bytes::Buf,
{
    use futures_util::StreamExt;
    let mut out = bytes::BytesMut::new();
    futures_util::pin_mut!(stream);
    while let Some(chunk) = stream.next().await {
        let mut chunk = chunk
            .map_err(|e| RelayError::InvalidRequest(format!("could not read the body: {e}")))?;
        if out.len() + chunk.remaining() > limit {
            return Err(RelayError::BodyTooLarge(format!(
                "body exceeds the limit of {limit} bytes (server.body_limit_bytes)"
            )));
        }
        while chunk.has_remaining() {
            let n = chunk.chunk().len();
            out.extend_from_slice(chunk.chunk());
            chunk.advance(n);
        }
    }
    Ok(out.freeze())
}
